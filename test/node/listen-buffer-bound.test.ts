/**
 * An embedded listener holds at most `cache_listener_buffer_max` notifications unread, whichever
 * thread its node runs on; one more and it gets HQL_LAGGED, with `missed` counting every one it
 * did not get. Before, with the node on its own thread (the default), a listener held that many
 * on the application's thread and as many again in the node's: 20 unread of a bound of 10 were
 * all delivered (found by an outside probe).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type HiqliteNode, start } from '../../src/index.js';
import { oneNodeConfig } from '../support/one-node-config.js';

const BOUND = 10;

/** Reads `it` until it ends: the payloads delivered, and the HQL_LAGGED's `missed` (or null). */
async function readAll(
  it: AsyncIterator<{ payload: unknown }>,
): Promise<{ got: unknown[]; missed: number | null }> {
  const got: unknown[] = [];
  for (;;) {
    let r: IteratorResult<{ payload: unknown }>;
    try {
      r = await it.next();
    } catch (e) {
      const err = e as { code?: string; missed?: number };
      assert.equal(err.code, 'HQL_LAGGED', String(e));
      return { got, missed: err.missed ?? -1 };
    }
    if (r.done === true) return { got, missed: null };
    got.push(r.value.payload);
    if (r.value.payload === 'end') return { got, missed: null };
  }
}

for (const thread of ['worker', 'main'] as const) {
  describe(`an embedded listener's buffer (thread '${thread}')`, () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-listen-bound-'));
    let node: HiqliteNode;
    before(async () => {
      node = await start({ ...(await oneNodeConfig(root)), cacheListenerBufferMax: BOUND }, { thread });
    });
    after(async () => {
      await node?.close();
      rmSync(root, { recursive: true, force: true });
    });

    test(`${BOUND} unread are all delivered`, async () => {
      const it = node.listen('full')[Symbol.asyncIterator]();
      for (let i = 1; i < BOUND; i++) await node.notify('full', i);
      await node.notify('full', 'end');
      const { got, missed } = await readAll(it);
      assert.equal(missed, null);
      assert.deepEqual(got, [...Array.from({ length: BOUND - 1 }, (_, i) => i + 1), 'end']);
      await it.return?.();
    });

    for (const unread of [BOUND + 1, 2 * BOUND]) {
      test(`${unread} unread: HQL_LAGGED, every notification delivered or counted missed`, async () => {
        const it = node.listen(`over-${unread}`)[Symbol.asyncIterator]();
        for (let i = 1; i <= unread; i++) await node.notify(`over-${unread}`, i);
        const { got, missed } = await readAll(it);
        assert.notEqual(missed, null, `lagged (delivered ${got.length})`);
        assert.ok(got.length < BOUND, `fewer than the bound delivered before the lag (${got.length})`);
        assert.deepEqual(
          got,
          Array.from({ length: got.length }, (_, i) => i + 1),
          'in order, from the first',
        );
        // The lag counts what was dropped after the bound was passed: at least the unread ones.
        assert.equal(
          got.length + (missed ?? 0) >= BOUND + 1,
          true,
          `delivered ${got.length}, missed ${missed}`,
        );
      });
    }
  });
}
