/**
 * A node shut down while its application waits for a lock withdraws the waiter from the lock's
 * queue (replicated state): otherwise the waiter is granted the lock when its turn comes, with
 * nobody behind it, and holds it for its whole lease (found from outside: a node closed while its
 * application waited made the next waiter wait 20 s, its lease). One node with its log on disk,
 * so the queue outlives the restart as it outlives the node on a cluster.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect, type HiqliteError, start } from '../../src/index.js';
import { eventually } from '../cluster/harness.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';

for (const thread of ['worker', 'main'] as const) {
  test(`a node on ${thread === 'worker' ? 'its own thread' : "the application's thread"} shut down under its application's lock wait leaves no waiter queued`, async () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-waiter-shutdown-'));
    const cfg = await oneNodeConfig(root);
    let db = await start(cfg, { thread });
    const holder = await connect({ nodes: [cfg.nodes[0]!.addrApi], secretApi: TEST_SECRETS.secretApi });
    try {
      const held = await holder.lock('job', { leaseMs: 60_000 });
      const waiting = db.lock('job', { leaseMs: 60_000 }).catch((e: HiqliteError) => e);
      const waiters = async () => (await db.metrics()).cache?.stats.lockWaiters;
      await eventually('the application to wait in the queue', async () => (await waiters()) === 1);
      await db.close();
      const ended = await waiting;
      assert.equal((ended as HiqliteError).code, 'HQL_CLOSED');
      db = await start(cfg, { thread });
      assert.equal(await waiters(), 0, 'the waiter was withdrawn before the node shut down');
      // The holder (its client reconnected) releases: the lock is free, not granted to nobody.
      await eventually('the holder to release', async () => {
        try {
          await held.release();
          return true;
        } catch {
          return false;
        }
      });
      const next = await holder.tryLock('job');
      assert.ok(next !== null, 'the lock went to the gone waiter');
      await next.release();
    } finally {
      await holder.close();
      await db.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
}
