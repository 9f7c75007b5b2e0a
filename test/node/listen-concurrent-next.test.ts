/**
 * A listen() iterator whose next() is called again before the last call settled (two consumers
 * of one iterator, Promise.race, a prefetch): the calls are served in call order, each with its
 * own notification, as an async generator's are. Before, the remote client threw an assertion
 * ("one next() at a time") where nothing caught it, and an embedded node left a call hanging.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { connect, type HiqliteClient, start } from '../../src/index.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';
import { within } from '../support/within.js';

async function overlappingNexts(db: HiqliteClient, channel: string): Promise<void> {
  const it = db.listen<number>(channel);
  const pending = [it.next(), it.next(), it.next()];
  // The listener is live once a notification sent now reaches it: send until the first arrives.
  for (let i = 1; i <= 3; i++) await db.notify(channel, i);
  const got = await within(Promise.all(pending), 10_000, 'three overlapping next() calls');
  assert.deepEqual(
    got.map((r) => [r.done, r.value?.payload]),
    [
      [false, 1],
      [false, 2],
      [false, 3],
    ],
  );
  // return() while a next() waits: the waiting call ends with done, and so does any later one.
  const waiting = it.next();
  await it.return?.();
  assert.deepEqual(await within(waiting, 10_000, 'next() after return()'), { done: true, value: undefined });
  assert.deepEqual(await it.next(), { done: true, value: undefined });
}

for (const thread of ['worker', 'main'] as const) {
  describe(`listen(): overlapping next() calls, embedded node on thread '${thread}' and a remote client`, () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-listen-next-'));
    const opened: { close(): Promise<void> }[] = [];
    after(async () => {
      for (const c of opened.reverse()) await c.close();
      rmSync(root, { recursive: true, force: true });
    });

    test('each call gets its own notification, in order', async () => {
      const cfg = await oneNodeConfig(root);
      const node = await start(cfg, { thread });
      opened.push(node);
      await node.waitUntilHealthy({ timeoutMs: 20_000 });
      await overlappingNexts(node, 'embedded');
      const remote = await connect({
        nodes: [cfg.nodes[0]?.addrApi ?? ''],
        secretApi: TEST_SECRETS.secretApi,
      });
      opened.push(remote);
      await overlappingNexts(remote, 'remote');
    });
  });
}
