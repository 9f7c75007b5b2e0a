/**
 * close() releases the locks its client holds: the next waiter gets each at once instead of after
 * its lease (a deploy that stops a leader-only job hands the job over without waiting out the
 * lease), and release() or `await using` after close() resolves instead of failing HQL_CLOSED;
 * any other call made once close() was called is refused (HQL_CLOSED), not carried out.
 * Remote clients and embedded nodes on either thread alike.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { connect, type HiqliteClient, type HiqliteError, start } from '../../src/index.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';

/** Far longer than any wait below: a lock not released by close() is still held after it. */
const LEASE_MS = 120_000;

for (const thread of ['worker', 'main'] as const) {
  describe(`close() releases held locks (embedded node on thread '${thread}', remote clients)`, () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-lock-close-'));
    const opened: { close(): Promise<void> }[] = [];
    after(async () => {
      for (const c of opened.reverse()) await c.close();
      rmSync(root, { recursive: true, force: true });
    });

    test('a remote holder closes: the waiter is granted within its wait, long before the lease', async () => {
      const cfg = await oneNodeConfig(root);
      const node = await start(cfg, { thread });
      opened.push(node);
      await node.waitUntilHealthy({ timeoutMs: 20_000 });
      const remote = () =>
        connect({ nodes: [cfg.nodes[0]?.addrApi ?? ''], secretApi: TEST_SECRETS.secretApi });
      const holder = await remote();
      const waiter: HiqliteClient = await remote();
      opened.push(waiter);
      const held = await holder.lock('job', { leaseMs: LEASE_MS });
      const other = await holder.lock('report', { leaseMs: LEASE_MS });
      const next = waiter.lock('job', { leaseMs: LEASE_MS, waitMs: 30_000 });
      const closing = holder.close();
      // Asked after close() was called, while it releases the locks: refused, not carried out.
      const isClosed = (e: HiqliteError) => e.code === 'HQL_CLOSED';
      await assert.rejects(holder.cache('x').put('late', 1), isClosed);
      await assert.rejects(holder.query('SELECT 1'), isClosed);
      await assert.rejects(holder.tryLock('late'), isClosed);
      await closing;
      assert.equal(await waiter.cache('x').get('late', { consistency: 'linearizable' }), null);
      const granted = await next;
      assert.ok(granted.token > held.token, 'a newer fencing token');
      assert.notEqual(
        await waiter.tryLock('report', { leaseMs: 1000 }),
        null,
        'every held lock was released',
      );
      // After close(), release() has nothing left to do.
      await held.release();
      await other[Symbol.asyncDispose]();
      await granted.release();

      // The embedded node's own locks: released by its close(); after a restart from the same data
      // directory (locks are replicated state, kept on disk) the lock is free at once.
      const mine = await node.lock('nightly', { leaseMs: LEASE_MS });
      await waiter.close();
      await node.close();
      await mine.release();
      const again = await start(cfg, { thread });
      opened.push(again);
      await again.waitUntilHealthy({ timeoutMs: 20_000 });
      const taken = await again.tryLock('nightly', { leaseMs: 1000 });
      assert.ok(taken !== null, "the closed node's lock was released, not left to its lease");
      assert.ok(taken.token > mine.token);
      await taken.release();
    });
  });
}
