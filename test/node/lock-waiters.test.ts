/**
 * Waiting for a lock on a node that lags behind the leader (src/node/cache-locks.ts): the
 * leader's state machine applies every command at once; this node's replica applies the same
 * log only when the test lets it catch up, in one batch, as a follower cut off from the leader
 * does when it comes back. A grant whose lease ended before this node applied it is never
 * handed to the caller: the attempt is withdrawn and made again.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HiqliteError } from '../../src/lib/errors.js';
import { LockWaiters } from '../../src/node/cache-locks.js';
import type { Entry } from '../../src/raft/types.js';
import type { CacheCommand } from '../../src/sm/cache/command.js';
import type { CacheResult } from '../../src/sm/cache/result.js';
import { CacheStateMachine } from '../../src/sm/cache/state-machine.js';
import { chunksOf, commandEntry, snapshotBytes, T0 } from '../sm/cache-helpers.js';
import { ManualClock } from '../support/manual-clock.js';

/** A leader that applies each command as it comes and a lagging replica of the same log. */
class LaggingNode {
  readonly log: Entry[] = [];
  readonly leader = new CacheStateMachine();
  readonly replica: CacheStateMachine;
  /** Log time: the stamp of the next command, and this node's log clock. */
  nowMs = T0;
  readonly clock = new ManualClock();
  readonly waiters: LockWaiters;
  /** The commands this node's waiters proposed, by type. */
  readonly proposed: string[] = [];
  constructor(
    /** Long by default: renewals of wait leases stay out of the tests that do not look at them. */
    readonly waitLeaseMs = 600_000,
  ) {
    this.replica = new CacheStateMachine({ hooks: { onLockGranted: (g) => this.waiters.granted(g) } });
    this.waiters = this.waitersWith(async (c) => {
      this.proposed.push(
        c.type === 'lockAcquire' || c.type === 'lockCancel' ? `${c.type} ${c.holderId}` : c.type,
      );
      return this.propose(c);
    });
  }

  /** LockWaiters of this node whose proposals go through `write`. */
  waitersWith(write: (c: CacheCommand) => Promise<{ index: number; result: CacheResult }>): LockWaiters {
    return new LockWaiters({
      clock: this.clock,
      write,
      view: (key) => this.replica.lock(key),
      nowMs: () => this.nowMs,
      applied: () => this.replica.appliedIndex(),
      waitLeaseMs: this.waitLeaseMs,
    });
  }

  /** The leader applies `c` at the current log time; its result. */
  propose(c: CacheCommand): { index: number; result: CacheResult } {
    const entry = commandEntry(this.log.length + 1, c, this.nowMs);
    this.log.push(entry);
    const [r] = this.leader.applySync([entry], [true]);
    return { index: entry.index, result: r as CacheResult };
  }

  /** The fencing token of the holder of 'k' on the leader. */
  heldToken(): number {
    const token = this.leader.lock('k')?.token;
    assert.ok(token !== undefined, "'k' is held");
    return token;
  }

  /** The lagging replica applies everything it missed, in one batch. */
  catchUp(): void {
    const missing = this.log.slice(this.replica.appliedIndex());
    this.replica.applySync(
      missing,
      missing.map(() => false),
    );
  }
}

/** Lets promise continuations and immediate callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/** x holds 'k' (a 1 s lease) and w waits for it on the lagging node. */
async function waiterBehindX() {
  const n = new LaggingNode();
  n.propose({ type: 'lockAcquire', key: 'k', holderId: 'x', leaseMs: 1000 });
  n.catchUp();
  let got: Awaited<ReturnType<LockWaiters['acquire']>> | undefined;
  const acquiring = n.waiters.acquire({ key: 'k', holderId: 'w', leaseMs: 1000 }).then((g) => {
    got = g;
  });
  await settle();
  return { n, acquiring, result: () => got };
}

describe('LockWaiters on a node that lags behind the leader', () => {
  test('a grant whose lease ended in the same batch is not handed out; the next attempt is', async () => {
    const { n, acquiring, result } = await waiterBehindX();
    // Behind w in the queue: y. x releases (w is granted the lock), and while this node is cut
    // off w's lease ends in log time and the lock passes on to y.
    n.propose({ type: 'lockAcquire', key: 'k', holderId: 'y', leaseMs: 1000 });
    n.nowMs += 100;
    n.propose({ type: 'lockRelease', key: 'k', token: n.heldToken() });
    assert.equal(n.leader.lock('k')?.holderId, 'w');
    n.nowMs += 1500;
    n.propose({ type: 'expire' });
    assert.equal(n.leader.lock('k')?.holderId, 'y');
    // This node comes back: it applies w's grant and its end in one batch.
    n.catchUp();
    await settle();
    assert.equal(result(), undefined, "w's stale grant was not handed out");
    assert.deepEqual(n.proposed, ['lockAcquire w', 'lockCancel w', 'lockAcquire w~1']);
    assert.deepEqual(n.leader.lock('k')?.waiters, ['w~1']);
    // y releases: the new attempt is granted, with its whole lease left.
    n.nowMs += 10;
    n.propose({ type: 'lockRelease', key: 'k', token: n.heldToken() });
    n.catchUp();
    await acquiring;
    assert.deepEqual(result(), {
      token: n.heldToken(),
      holderId: 'w~1',
      expiresAtMs: n.nowMs + 1000,
      remainingMs: 1000,
      waitedMs: 0,
    });
  });

  test('a grant inside a snapshot that no longer shows it: the waiter tries again instead of waiting for good', async () => {
    const { n, acquiring, result } = await waiterBehindX();
    n.catchUp(); // this node applied w's acquire: w waits behind x
    n.nowMs += 100;
    n.propose({ type: 'lockRelease', key: 'k', token: n.heldToken() });
    n.nowMs += 1500;
    n.propose({ type: 'expire' });
    assert.equal(n.leader.lock('k'), null, "w's lease ended; nobody holds the lock");
    // This node learns of it through a snapshot of the leader: no grant is reported to its
    // hooks, and the lock shows neither holder nor waiter.
    await n.replica.restoreFrom(chunksOf(await snapshotBytes(n.leader), 4096));
    assert.equal(n.replica.appliedIndex(), n.log.length);
    assert.equal(n.replica.lock('k'), null);
    assert.equal(result(), undefined);
    n.clock.advance(1000); // the waiter looks at the lock itself
    await settle();
    assert.deepEqual(n.proposed, ['lockAcquire w', 'lockCancel w', 'lockAcquire w~1']);
    await acquiring;
    // The lock was free: the new attempt got it at once.
    assert.deepEqual(result(), {
      token: n.heldToken(),
      holderId: 'w~1',
      expiresAtMs: n.nowMs + 1000,
      remainingMs: 1000,
      // It waited for the waiter's look at the lock itself (the node's monotonic clock).
      waitedMs: 1000,
    });
  });

  test('a try-lock whose grant was answered after its lease ended tries again: granted, or busy', async () => {
    const n = new LaggingNode();
    // The first answer comes back late: this node's log time is already past its lease.
    let writes = 0;
    const late = n.waitersWith(async (c) => {
      const out = n.propose(c);
      if (writes++ === 0) n.nowMs += 2000;
      return out;
    });
    const g = await late.acquire({ key: 'k', holderId: 't', leaseMs: 1000, waitMs: 0 });
    assert.deepEqual(g, {
      token: n.heldToken(),
      holderId: 't~1',
      expiresAtMs: n.nowMs + 1000,
      remainingMs: 1000,
      waitedMs: 0,
    });
    assert.equal(
      n.leader.lock('k')?.holderId,
      't~1',
      'the stale holder was withdrawn, the new attempt holds',
    );
    // Held now: another try-lock is busy (null), as it would be without the lag.
    assert.equal(await n.waiters.acquire({ key: 'k', holderId: 'u', leaseMs: 1000, waitMs: 0 }), null);
  });

  test("remainingMs is the lease left in this node's log time when it answers", async () => {
    const n = new LaggingNode();
    n.propose({ type: 'lockAcquire', key: 'k', holderId: 'x', leaseMs: 1000 });
    n.catchUp();
    const acquiring = n.waiters.acquire({ key: 'k', holderId: 'w', leaseMs: 5000 });
    await settle();
    n.nowMs += 100;
    n.propose({ type: 'lockRelease', key: 'k', token: n.heldToken() });
    const grantedAt = n.nowMs;
    // This node applies the grant 1.5 s of log time later.
    n.nowMs += 1500;
    n.catchUp();
    const g = await acquiring;
    assert.deepEqual(g, {
      token: n.heldToken(),
      holderId: 'w',
      expiresAtMs: grantedAt + 5000,
      remainingMs: 3500,
      waitedMs: 0,
    });
  });

  test('every grant stale (a lease too short for this cluster): gives up after a bounded number of attempts', async () => {
    const n = new LaggingNode();
    const never = n.waitersWith(async (c) => {
      const out = n.propose(c);
      n.nowMs += 5000;
      return out;
    });
    await assert.rejects(never.acquire({ key: 'k', holderId: 'z', leaseMs: 1000 }), (e: unknown) => {
      assert.ok(e instanceof HiqliteError);
      assert.equal(e.code, 'HQL_TIMEOUT');
      assert.equal(e.retryable, false, 'asking again would end the same way');
      assert.match(e.message, /leaseMs 1000 is shorter than a grant takes to reach it/);
      return true;
    });
    assert.equal(never.size, 0, 'no waiter left behind');
  });

  test('a signal aborted while the acquire is being proposed ends the wait, and the waiter is withdrawn', async () => {
    const n = new LaggingNode();
    n.propose({ type: 'lockAcquire', key: 'k', holderId: 'x', leaseMs: 1000 });
    n.catchUp();
    const ac = new AbortController();
    let answer: () => void = () => {};
    const proposed: string[] = [];
    const slow = n.waitersWith(async (c) => {
      proposed.push(c.type);
      // The acquire's answer comes only after the caller gave up.
      if (c.type === 'lockAcquire') await new Promise<void>((r) => (answer = r));
      return n.propose(c);
    });
    const acquiring = slow.acquire({ key: 'k', holderId: 'w', leaseMs: 1000 }, ac.signal);
    await settle();
    ac.abort();
    answer();
    await assert.rejects(acquiring, { code: 'HQL_ABORTED' });
    assert.deepEqual(proposed, ['lockAcquire', 'lockCancel']);
    assert.deepEqual(n.leader.lock('k')?.waiters, [], 'withdrawn from the queue');
    assert.equal(slow.size, 0);
  });

  // Found from outside: while the leader changed, an abort took 2.1 s and a wait of 2,000 ms up to
  // 3.6 s, each call waiting for a proposal (the acquire, the withdrawal) to commit.
  test('an abort ends the call at once while the acquire cannot commit; the waiter is withdrawn once it did', async () => {
    const n = new LaggingNode();
    n.propose({ type: 'lockAcquire', key: 'k', holderId: 'x', leaseMs: 1000 });
    n.catchUp();
    const ac = new AbortController();
    let commit: () => void = () => {};
    const proposed: string[] = [];
    const stuck = n.waitersWith(async (c) => {
      proposed.push(c.type);
      if (c.type === 'lockAcquire') await new Promise<void>((r) => (commit = r));
      return n.propose(c);
    });
    const acquiring = stuck.acquire({ key: 'k', holderId: 'w', leaseMs: 1000 }, ac.signal);
    await settle();
    ac.abort();
    // Rejected while the acquire is still uncommitted.
    await assert.rejects(acquiring, { code: 'HQL_ABORTED' });
    assert.deepEqual(proposed, ['lockAcquire']);
    commit();
    await settle();
    assert.deepEqual(proposed, ['lockAcquire', 'lockCancel']);
    assert.deepEqual(n.leader.lock('k')?.waiters, [], 'withdrawn from the queue');
  });

  test('a wait that runs out ends at its waitMs although its withdrawal cannot commit yet', async () => {
    const n = new LaggingNode();
    n.propose({ type: 'lockAcquire', key: 'k', holderId: 'x', leaseMs: 60_000 });
    n.catchUp();
    let commitCancel: () => void = () => {};
    const stuck = n.waitersWith(async (c) => {
      if (c.type === 'lockCancel') await new Promise<void>((r) => (commitCancel = r));
      return n.propose(c);
    });
    const acquiring = stuck.acquire({ key: 'k', holderId: 'w', leaseMs: 1000, waitMs: 500 });
    await settle();
    n.catchUp();
    n.clock.advance(500);
    await assert.rejects(acquiring, {
      code: 'HQL_TIMEOUT',
      message: "lock 'k' was not granted within 500 ms",
    });
    assert.deepEqual(n.leader.lock('k')?.waiters, ['w'], 'not yet withdrawn');
    commitCancel();
    await settle();
    assert.deepEqual(n.leader.lock('k')?.waiters, [], 'withdrawn behind the call');
  });
});

describe('wait leases: a waiter whose node died is passed over', () => {
  test("the node renews its waiters' wait leases while they wait, and stops when they stop", async () => {
    const n = new LaggingNode(3000);
    n.propose({ type: 'lockAcquire', key: 'k', holderId: 'x', leaseMs: 60_000 });
    // Queued from a node that then died (kill -9): nobody renews its wait lease.
    n.propose({ type: 'lockAcquire', key: 'k', holderId: 'dead', leaseMs: 60_000, waitLeaseMs: 3000 });
    n.catchUp();
    let got: Awaited<ReturnType<LockWaiters['acquire']>> | undefined;
    const acquiring = n.waiters.acquire({ key: 'k', holderId: 'w', leaseMs: 1000 }).then((g) => {
      got = g;
    });
    await settle();
    for (let i = 0; i < 5; i++) {
      n.nowMs += 1000;
      n.clock.advance(1000);
      await settle();
    }
    const renewals = n.proposed.filter((p) => p === 'lockWaitRenew').length;
    assert.equal(renewals, 5, 'one renewal every third of the wait lease');
    assert.deepEqual(n.leader.lock('k')?.waiters, ['dead', 'w']);
    // x releases: the dead waiter's wait lease ran out 2 s ago, the live one's was renewed.
    n.propose({ type: 'lockRelease', key: 'k', token: n.heldToken(), holderId: 'x' });
    assert.equal(n.leader.lock('k')?.holderId, 'w');
    n.catchUp();
    await acquiring;
    assert.equal(got?.holderId, 'w');
    n.clock.advance(10_000);
    await settle();
    assert.equal(n.proposed.filter((p) => p === 'lockWaitRenew').length, renewals, 'no waiter, no renewal');
    assert.equal(n.clock.pendingTimers, 0);
  });

  test('the acquire of a waiter carries the wait lease; a try-lock has none and renews nothing', async () => {
    const n = new LaggingNode(3000);
    const commands: CacheCommand[] = [];
    const waiters = n.waitersWith(async (c) => {
      commands.push(c);
      return n.propose(c);
    });
    n.propose({ type: 'lockAcquire', key: 'k', holderId: 'x', leaseMs: 60_000 });
    n.catchUp();
    assert.equal(await waiters.acquire({ key: 'k', holderId: 't', leaseMs: 1000, waitMs: 0 }), null);
    n.clock.advance(5000);
    await settle();
    assert.deepEqual(commands, [{ type: 'lockAcquire', key: 'k', holderId: 't', leaseMs: 1000, waitMs: 0 }]);
    const waiting = waiters.acquire({ key: 'k', holderId: 'w', leaseMs: 1000, waitMs: 1500 });
    await settle();
    assert.deepEqual(commands[1], {
      type: 'lockAcquire',
      key: 'k',
      holderId: 'w',
      leaseMs: 1000,
      waitMs: 1500,
      waitLeaseMs: 3000,
    });
    n.clock.advance(1000);
    await settle();
    assert.deepEqual(commands[2], {
      type: 'lockWaitRenew',
      waitLeaseMs: 3000,
      keys: ['k'],
      holderIds: ['w'],
    });
    n.clock.advance(1000);
    await assert.rejects(waiting, (e: HiqliteError) => e.code === 'HQL_TIMEOUT');
  });
});
