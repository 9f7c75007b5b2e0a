/**
 * The listener lag metric (`metrics().cache.listenerLag`, `hiqlite_cache_listener_lag`) counts the
 * notifications an embedded listener has not read, on either thread. With the node on its own
 * thread (the default) the notifications wait on the application's thread, and the metric read 0
 * while thousands waited unread (found from outside; `thread: 'main'` counted them).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { start } from '../../src/index.js';
import { eventually } from '../cluster/harness.js';
import { oneNodeConfig } from '../support/one-node-config.js';

const SENT = 50;

for (const thread of ['worker', 'main'] as const) {
  describe(`the listener lag metric, node on ${thread === 'worker' ? 'its own thread' : "the application's thread"}`, () => {
    test('counts what an embedded listener has not read, and nothing once it is gone', async () => {
      const root = mkdtempSync(join(tmpdir(), 'hq-lag-metric-'));
      const db = await start(await oneNodeConfig(root), { thread });
      try {
        const lag = async () => (await db.metrics()).cache?.listenerLag;
        const listener = db.listen('lagging')[Symbol.asyncIterator]();
        // The first read subscribes; the rest are left unread.
        const first = listener.next();
        await db.notify('lagging', 0);
        assert.equal((await first).value?.payload, 0);
        for (let i = 1; i <= SENT; i++) await db.notify('lagging', i);
        await eventually(`a lag of ${SENT}`, async () => (await lag()) === SENT);
        await listener.return?.();
        await eventually('no lag once the listener is gone', async () => (await lag()) === 0);
      } finally {
        await db.close();
        rmSync(root, { recursive: true, force: true });
      }
    });
  });
}
