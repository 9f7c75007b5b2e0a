/**
 * A held lock's renewals (client/cache-client.ts DistributedLock): when its holder is told that
 * it can no longer count on the lock (`lock.lost`). A renewal that fails for good (the node
 * stopped serving: HQL_IO, not retryable) tells it at once; a passing failure (a leader change)
 * or an unknown outcome only once the lease has run out since the last renewal that succeeded
 * (counted from the grant when the node said how much of it was left); a process that stood
 * still past its lease knows it before it sends anything.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CacheApi, type CacheOps } from '../../src/client/cache-client.js';
import { HiqliteError, outcomeUnknown } from '../../src/lib/errors.js';

const LEASE_MS = 600; // renewed every 200 ms

/** A client whose lock is granted at once and whose renewals fail with `renewal()`. */
function client(renewal: () => Promise<never>, remainingMs?: number) {
  let renewals = 0;
  const ops = {
    cacheLock: async () => ({
      token: 1,
      expiresAtMs: Date.now() + LEASE_MS,
      ...(remainingMs === undefined ? {} : { remainingMs }),
    }),
    cacheWrite: async (command: { type: string }) => {
      if (command.type === 'lockRenew') {
        renewals++;
        return renewal();
      }
      return { type: command.type };
    },
  } as unknown as CacheOps;
  return { api: new CacheApi(ops), renewals: () => renewals };
}

/** Milliseconds from `t0` until `lock.lost` aborts, or null if not within `withinMs`. */
function lostAfter(lost: AbortSignal, t0: number, withinMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), withinMs);
    lost.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(performance.now() - t0);
    });
  });
}

describe('a held lock whose renewals fail', () => {
  test('for good (the node stopped serving): lost at the first renewal, before the lease ends', async () => {
    const c = client(() =>
      Promise.reject(new HiqliteError('HQL_IO', 'node 1 stopped serving: ENOSPC', { retryable: false })),
    );
    const t0 = performance.now();
    const lock = await c.api.lock('job', { leaseMs: LEASE_MS });
    const ms = await lostAfter(lock.lost, t0, 3 * LEASE_MS);
    assert.ok(ms !== null, 'the lock is lost');
    assert.equal(c.renewals(), 1, 'after one renewal');
    assert.ok(ms < LEASE_MS, `lost after ${Math.round(ms)} ms, before the ${LEASE_MS} ms lease`);
  });

  for (const [what, error] of [
    [
      'a passing failure (a leader change)',
      new HiqliteError('HQL_UNAVAILABLE', 'no leader', { retryable: true }),
    ],
    ['an unknown outcome', outcomeUnknown('the leader stepped down')],
  ] as const)
    test(`${what}: renewed again, lost only once the lease ran out`, async () => {
      const c = client(() => Promise.reject(error));
      // Measured from before the grant: the lease runs from a moment after it.
      const t0 = performance.now();
      const lock = await c.api.lock('job', { leaseMs: LEASE_MS });
      const ms = await lostAfter(lock.lost, t0, 5 * LEASE_MS);
      assert.ok(ms !== null, 'the lock is lost in the end');
      assert.ok(c.renewals() >= 2, `renewed ${c.renewals()} times before giving up`);
      assert.ok(ms >= LEASE_MS, `lost after ${Math.round(ms)} ms, not before the lease ran out`);
    });

  test('a grant that arrived late: its lease counts from the grant, so it is lost when what was left runs out', async () => {
    // The node answered with 150 ms of the 600 ms lease left (the grant was applied late).
    const c = client(
      () => Promise.reject(new HiqliteError('HQL_UNAVAILABLE', 'no leader', { retryable: true })),
      150,
    );
    const t0 = performance.now();
    const lock = await c.api.lock('job', { leaseMs: LEASE_MS });
    const ms = await lostAfter(lock.lost, t0, 5 * LEASE_MS);
    assert.ok(ms !== null, 'the lock is lost');
    assert.ok(c.renewals() >= 1, 'a renewal was tried first');
    assert.ok(ms < LEASE_MS, `lost after ${Math.round(ms)} ms, not a whole lease after the answer`);
  });

  test('a process that stood still past its lease: lost at once, before any renewal is sent', async () => {
    const c = client(() => Promise.reject(new Error('no renewal may be sent')));
    const lock = await c.api.lock('job', { leaseMs: LEASE_MS });
    // The event loop blocked for longer than the lease (a long GC pause, a synchronous call).
    const until = performance.now() + LEASE_MS + 100;
    while (performance.now() < until) {
      // blocked
    }
    const ms = await lostAfter(lock.lost, performance.now(), LEASE_MS);
    assert.ok(ms !== null, 'the lock is lost');
    assert.equal(c.renewals(), 0, 'without a renewal');
  });
});
