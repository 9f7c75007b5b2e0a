/**
 * A lock waiter on a node that falls behind (src/node/cache-locks.ts). The waiter's node is
 * paused (SIGSTOP) while the lock is granted to it on the leader; no renewal comes, its lease
 * ends in log time and the lock passes to the next waiter. When the node runs again it applies
 * the grant and its end together. Its waiter must not be told it holds the lock (it used to
 * get the ended grant's token while the next holder held the lock): it queues again and gets
 * the lock, with a higher fencing token, once the holder releases it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { DistributedLock } from '../../src/index.js';
import { eventually, sleep, TestCluster } from './harness.js';

/** The cache group's leader, as node `id` sees it. */
async function cacheLeader(cluster: TestCluster, id: number): Promise<number | null> {
  const m = (await cluster.metricsOf(id)) as unknown as { cache?: { leaderId?: number | null } };
  return m.cache?.leaderId ?? null;
}

/** The cache group's applied index on node `id` (its /health). */
async function cacheApplied(cluster: TestCluster, id: number): Promise<number> {
  const body = (await cluster.http(id, '/health')).body as { cache?: { appliedIndex?: number } };
  return body.cache?.appliedIndex ?? -1;
}

describe("a lock granted while the waiter's node was paused", () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.create({ nodes: 3 });
  });

  after(async () => {
    await cluster?.close();
  });

  test('is not handed out after its lease ended; the waiter gets the lock after the next holder', async () => {
    const leader = await eventually('a cache group leader', () => cacheLeader(cluster, 1));
    const lagging = [1, 2, 3].find((id) => id !== leader)!;
    // The waiter's connection must outlive the pause: pings unanswered for 30 s are tolerated.
    const keepalive = { keepaliveIntervalMs: 200, keepaliveTimeoutMs: 30_000 };
    const holder = await cluster.client([leader], keepalive);
    const waiter = await cluster.client([lagging], keepalive);
    const next = await cluster.client([leader], keepalive);

    const held = await holder.lock('job', { leaseMs: 60_000 });
    let waiterLock: DistributedLock | null = null;
    const waiting = waiter.lock('job', { leaseMs: 2000 }).then((l) => {
      waiterLock = l;
      return l;
    });
    // Queued on the leader, and the lagging node has applied its place in the queue.
    await eventually('the waiter queued', async () => {
      const text = String((await cluster.http(leader, '/metrics')).body);
      return /^hiqlite_cache_lock_waiters 1$/m.test(text);
    });
    await sleep(300);

    cluster.pause(lagging);
    try {
      const nextLock = next.lock('job', { leaseMs: 60_000 });
      await eventually('the next waiter queued', async () => {
        const text = String((await cluster.http(leader, '/metrics')).body);
        return /^hiqlite_cache_lock_waiters 2$/m.test(text);
      });
      // The waiter is granted (on the leader), never hears of it, and its 2 s lease ends.
      await held.release();
      const nextHeld = await nextLock;
      assert.ok(nextHeld.token > held.token + 1, `the waiter's grant came between: ${nextHeld.token}`);
      cluster.resume(lagging);

      // The lagging node catches up (it has applied the grant and its end, and the waiter's
      // next attempt): the waiter's ended grant must not have reached the waiter.
      const target = await cacheApplied(cluster, leader);
      await eventually(
        'the lagging node caught up',
        async () => (await cacheApplied(cluster, lagging)) >= target,
      );
      await sleep(500);
      assert.equal(waiterLock, null, 'the waiter was told it holds a lock another holder holds');
      await nextHeld.release();
      const got = await waiting;
      assert.ok(got.token > nextHeld.token, `token ${got.token} after the next holder's ${nextHeld.token}`);
      assert.equal(got.lost.aborted, false);
      await got.release();
    } finally {
      cluster.resume(lagging);
    }
  });
});
