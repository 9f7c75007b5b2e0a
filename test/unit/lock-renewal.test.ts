/**
 * A held lock's renewals (client/cache-client.ts DistributedLock), on a manual clock: when its
 * holder is told that it can no longer count on the lock (`lock.lost`). A renewal that fails for
 * good (the node stopped serving: HQL_IO, not retryable) tells it at once; a passing failure (a
 * leader change) or an unknown outcome only once the lease has run out since the last renewal
 * that succeeded (counted from the grant when the node said how much of it was left); a process
 * that stood still past its lease knows it before it sends anything.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CacheApi, type CacheOps } from '../../src/client/cache-client.js';
import { HiqliteError, outcomeUnknown } from '../../src/lib/errors.js';
import { ManualClock } from '../support/manual-clock.js';

const LEASE_MS = 600; // renewed every 200 ms

/** A client on a manual clock whose lock is granted at once and whose renewals answer `renewal()`. */
function client(renewal: () => Promise<unknown>, remainingMs?: number) {
  const clock = new ManualClock();
  const renewalsAtMs: number[] = [];
  const ops = {
    cacheLock: async () => ({
      token: 1,
      expiresAtMs: clock.wallMs() + LEASE_MS,
      ...(remainingMs === undefined ? {} : { remainingMs }),
    }),
    cacheWrite: async (command: { type: string }) => {
      if (command.type === 'lockRenew') {
        renewalsAtMs.push(clock.monotonicMs() - t0);
        return renewal();
      }
      return { type: command.type };
    },
  } as unknown as CacheOps;
  const t0 = clock.monotonicMs();
  return { api: new CacheApi(ops, clock), clock, t0, renewalsAtMs };
}

/** Lets the promise continuations queued so far run (a renewal's answer). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/** Runs the clock for `ms` in 1 ms steps; the time (from `t0`) at which `lost` aborted, or null. */
async function lostWithin(
  c: ReturnType<typeof client>,
  lost: AbortSignal,
  ms: number,
): Promise<number | null> {
  let at: number | null = lost.aborted ? c.clock.monotonicMs() - c.t0 : null;
  lost.addEventListener('abort', () => {
    at = c.clock.monotonicMs() - c.t0;
  });
  for (let i = 0; i < ms && at === null; i++) {
    c.clock.advance(1);
    await settle();
  }
  return at;
}

const refusedForGood = () =>
  Promise.reject(new HiqliteError('HQL_IO', 'node 1 stopped serving: ENOSPC', { retryable: false }));
const noLeader = () => Promise.reject(new HiqliteError('HQL_UNAVAILABLE', 'no leader', { retryable: true }));

describe('a held lock and its renewals', () => {
  test('renewed every third of its lease while renewals succeed: never lost', async () => {
    const c = client(async () => ({ type: 'lockRenew', renewed: true, expiresAtMs: 0 }));
    const lock = await c.api.lock('job', { leaseMs: LEASE_MS });
    assert.equal(await lostWithin(c, lock.lost, 5 * LEASE_MS), null);
    assert.deepEqual(c.renewalsAtMs.slice(0, 5), [200, 400, 600, 800, 1000]);
    await lock.release();
  });

  test('a renewal refused: lost at once', async () => {
    const c = client(async () => ({ type: 'lockRenew', renewed: false, expiresAtMs: null }));
    const lock = await c.api.lock('job', { leaseMs: LEASE_MS });
    assert.equal(await lostWithin(c, lock.lost, 5 * LEASE_MS), 200);
    // Said as what happened, not as a lease that ran out here (most of it was left).
    const reason = lock.lost.reason as { code?: string; message?: string };
    assert.equal(reason.code, 'HQL_TIMEOUT');
    assert.match(reason.message ?? '', /a renewal was refused, the lock is no longer this holder's/);
  });

  test('a renewal failing for good (the node stopped serving): lost at it, before the lease ends', async () => {
    const c = client(refusedForGood);
    const lock = await c.api.lock('job', { leaseMs: LEASE_MS });
    assert.equal(await lostWithin(c, lock.lost, 5 * LEASE_MS), 200);
    assert.deepEqual(c.renewalsAtMs, [200]);
  });

  for (const [what, renewal] of [
    ['a passing failure (a leader change)', noLeader],
    ['an unknown outcome', () => Promise.reject(outcomeUnknown('the leader stepped down'))],
  ] as const)
    test(`${what}: renewed again, lost exactly when the lease runs out`, async () => {
      const c = client(renewal);
      const lock = await c.api.lock('job', { leaseMs: LEASE_MS });
      assert.equal(await lostWithin(c, lock.lost, 5 * LEASE_MS), LEASE_MS);
      assert.deepEqual(c.renewalsAtMs, [200, 400]);
    });

  test('a grant that arrived late: its lease counts from the grant, so it is lost when what was left runs out', async () => {
    // The node answered with 150 ms of the 600 ms lease left (the grant was applied late).
    const c = client(noLeader, 150);
    const lock = await c.api.lock('job', { leaseMs: LEASE_MS });
    assert.equal(await lostWithin(c, lock.lost, 5 * LEASE_MS), 150);
    assert.deepEqual(c.renewalsAtMs, [75], 'renewed at half of what was left');
  });

  test('a process that stood still past its lease: lost at once, before any renewal is sent', async () => {
    const c = client(async () => ({ type: 'lockRenew', renewed: true, expiresAtMs: 0 }));
    const lock = await c.api.lock('job', { leaseMs: LEASE_MS });
    c.clock.stall(LEASE_MS + 100); // a long GC pause: the renewal timer fires late
    assert.equal(await lostWithin(c, lock.lost, 10), LEASE_MS + 100, 'as soon as it runs again');
    assert.deepEqual(c.renewalsAtMs, [], 'without a renewal');
  });

  test('after standing still past its lease, reading lock.lost says so before any timer of the process runs', async () => {
    const c = client(async () => ({ type: 'lockRenew', renewed: true, expiresAtMs: 0 }));
    const lock = await c.api.lock('job', { leaseMs: LEASE_MS });
    c.clock.advance(50);
    assert.equal(lock.lost.aborted, false);
    assert.equal(lock.remainingMs(), LEASE_MS - 50);
    c.clock.stall(LEASE_MS); // the renewal timer is overdue and has not run
    assert.equal(lock.lost.aborted, true, 'the holder checks right before it acts: the lease is over');
    assert.equal(lock.remainingMs(), 0);
    await settle();
    assert.deepEqual(c.renewalsAtMs, [], 'no renewal for a lease that is over');
  });

  test('remainingMs counts from the grant and from each renewal that succeeded (from when it was sent)', async () => {
    const c = client(async () => ({ type: 'lockRenew', renewed: true, expiresAtMs: 0 }), 450);
    const lock = await c.api.lock('job', { leaseMs: LEASE_MS });
    assert.equal(lock.remainingMs(), 450, 'what the grant had left when the node answered');
    c.clock.advance(150);
    assert.equal(lock.remainingMs(), 300);
    assert.equal(await lostWithin(c, lock.lost, 50), null);
    assert.deepEqual(c.renewalsAtMs, [200], 'renewed at a third of the lease');
    assert.equal(lock.remainingMs(), LEASE_MS, 'renewed just now');
    c.clock.advance(100);
    assert.equal(lock.remainingMs(), LEASE_MS - 100);
    await lock.release();
    assert.equal(lock.remainingMs(), 0, 'released');
  });

  // A renewal in flight when the leader died answers only after the new leader is elected: the
  // holder was told at that answer, after another client already held the lock (found from
  // outside: 0.6-2 s after the lease's end).
  test("a renewal that hangs past the lease: lost at the lease's end, not when it answers", async () => {
    let answer: (v: unknown) => void = () => {};
    let first = true;
    const c = client(() => {
      if (!first) return new Promise(() => {});
      first = false;
      return new Promise((r) => {
        answer = r;
      });
    });
    const lock = await c.api.lock('job', { leaseMs: LEASE_MS });
    assert.equal(await lostWithin(c, lock.lost, 5 * LEASE_MS), LEASE_MS);
    // Its late answer does not bring it back.
    answer({ type: 'lockRenew', renewed: true, expiresAtMs: 0 });
    await settle();
    assert.equal(lock.lost.aborted, true);
    assert.equal(lock.remainingMs(), 0);
  });

  // Found from outside: a holder whose lease had run out and whose lock another client then took
  // released it without error and read `lost.aborted` false: it never learnt.
  test('a release the lock state machine finds stale (not this holder any more): lost says so', async () => {
    for (const released of [true, false]) {
      const clock = new ManualClock();
      const ops = {
        cacheLock: async () => ({ token: 1, expiresAtMs: clock.wallMs() + LEASE_MS }),
        cacheWrite: async (command: { type: string }) =>
          command.type === 'lockRelease' ? { type: 'lockRelease', released } : { type: command.type },
      } as unknown as CacheOps;
      const lock = await new CacheApi(ops, clock).lock('job', { leaseMs: LEASE_MS });
      await lock.release();
      assert.equal(lock.lost.aborted, !released, `released: ${released}`);
    }
  });

  // Found from outside: a 2 ms lease was handed out with `lost` false while the next client could
  // already take the lock: the answer's travel had been added to the lease.
  test("the grant's round trip is taken off its lease; a lease that ran out on the way is not handed out", async () => {
    for (const [roundTripMs, waitedMs, remainingMs, expect] of [
      [40, 30, 450, 440], // 10 ms travelling: 440 ms left on arrival
      [40, 40, 450, 450], // all of it on the node (waiting its turn): nothing travelled
      [40, undefined, 450, 450], // an older node that does not say: as before
      [40, 30, 8, 'refused'], // the lease ended on the way
      [40, 30, 10.5, 'refused'], // under a whole millisecond left: lost as it arrives
    ] as const) {
      const clock = new ManualClock();
      const released: number[] = [];
      const ops = {
        cacheLock: async () => {
          clock.advance(roundTripMs);
          return {
            token: 7,
            expiresAtMs: clock.wallMs() + remainingMs,
            remainingMs,
            ...(waitedMs === undefined ? {} : { waitedMs }),
          };
        },
        cacheWrite: async (command: { type: string; token?: number }) => {
          if (command.type === 'lockRelease') released.push(command.token ?? -1);
          return { type: command.type, released: true };
        },
      } as unknown as CacheOps;
      const api = new CacheApi(ops, clock);
      const what = `round trip ${roundTripMs}, waited ${waitedMs}, remaining ${remainingMs}`;
      if (expect === 'refused') {
        await assert.rejects(api.lock('job', { leaseMs: LEASE_MS }), (e: HiqliteError) => {
          assert.equal(e.code, 'HQL_TIMEOUT', what);
          assert.match(e.message, /ran out before the grant reached this client/);
          return true;
        });
        await settle();
        assert.deepEqual(released, [7], `${what}: released at once`);
        await assert.rejects(api.tryLock('job', { leaseMs: LEASE_MS }), /ran out before the grant/);
      } else {
        const lock = await api.lock('job', { leaseMs: LEASE_MS });
        assert.equal(lock.remainingMs(), expect, what);
        assert.equal(lock.lost.aborted, false, what);
        await lock.release();
      }
    }
  });
});
