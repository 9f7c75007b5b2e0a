/**
 * Waiting for a distributed lock on this node. `lockAcquire` is replicated; when it is queued,
 * the grant comes later, in whatever entry ends the previous holder's lease or releases it: the
 * state machine reports it through its `onLockGranted` hook, which wakes the waiter with that
 * holder id here. A grant made inside a snapshot this node installed is never reported, so a
 * waiter also looks at the lock itself now and then.
 *
 * A grant is handed to the caller only while it still holds, in this node's log time: a node
 * that lagged (cut off from the leader, or slow) may apply a grant whose lease already ended —
 * in the same batch of entries that passed the lock on, or in a snapshot that no longer shows
 * it. Such a grant is stale: the attempt is withdrawn and made again under a new holder id (at
 * the back of the queue) while the caller's `waitMs` allows, at most STALE_ATTEMPTS_MAX times. The grant carries the lease left
 * when this node answered (`remainingMs`), so the holder counts its lease from the grant, not
 * from when the answer reached it.
 *
 * A waiter that gives up (its `waitMs` passed, or its signal fired) is withdrawn with
 * `lockCancel`: if the lock was granted meanwhile, that releases it, so an abandoned grant never
 * blocks the queue for a whole lease. The call fails at once, the withdrawal goes on behind it
 * (found from outside: while the leader changed, a wait of 2,000 ms ended after up to 3.6 s, and
 * an abort after 2.1 s, both waiting for the withdrawal to commit). Should it never commit (this
 * node stops), the state machine drops the waiter at its `waitMs` and a grant's lease ends.
 *
 * A waiter this node queued has a wait lease in log time (`waitLeaseMs`, cache_lock_wait_lease_ms)
 * that this node renews for all its waiters in one `lockWaitRenew` every third of it. A node
 * that dies (kill -9, power loss) renews nothing: its waiters are skipped when their turn comes
 * once their wait lease ran out. Before, such a waiter stayed queued until its `waitMs` (without
 * one, for ever) and, when its turn came, got the lock and held it for its whole lease with
 * nobody to renew or release it (found from outside). A live waiter whose renewals could not
 * commit for two thirds of the wait lease (no leader) may be skipped too: this node then finds it
 * gone and queues it again under a new holder id, behind the others.
 */
import { raceAbort, whenAborted } from '../lib/abort.js';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { abortedError, HiqliteError } from '../lib/errors.js';
import { inTime } from '../lib/in-time.js';
import { type CacheCommand, LOCK_WAIT_RENEW_WAITERS_MAX } from '../sm/cache/command.js';
import { cacheErrorFromInfo } from '../sm/cache/errors.js';
import type { LockGrant } from '../sm/cache/locks.js';
import type { CacheResult } from '../sm/cache/result.js';
import type { LockView } from '../sm/cache/state-machine.js';

export interface LockGrantInfo {
  readonly token: number;
  /**
   * The holder id the lock was granted to (an attempt's own: retries add a suffix); renewals and
   * the release name it. Absent from a node of a version before it.
   */
  readonly holderId?: string;
  /** When the lease ends, in log time (ms since the epoch). */
  readonly expiresAtMs: number;
  /** The lease left when the node answered, in ms of log time (0 < remainingMs <= leaseMs). */
  readonly remainingMs: number;
  /**
   * How long this node had the request before it answered (its monotonic clock): the caller
   * counts the lease from when it sent the request plus this, a time the grant cannot precede,
   * so the answer's travel never lengthens the lease it believes in. Absent from older nodes.
   */
  readonly waitedMs?: number;
}

export interface LockRequest {
  readonly key: string;
  /** Unique per attempt (a random id): a retry with the same id is the same attempt. */
  readonly holderId: string;
  readonly leaseMs: number;
  /** How long to wait in the queue; 0: try-lock; undefined: until granted or aborted. */
  readonly waitMs?: number;
}

interface Waiting {
  readonly key: string;
  grant: { readonly token: number; readonly expiresAtMs: number } | null;
  wake: (() => void) | null;
}

/** How often a waiter looks at the lock itself (for grants inside an installed snapshot). */
const RECHECK_INTERVAL_MS = 1000;
/**
 * Attempts of one acquire whose grants were stale before it gives up (HQL_TIMEOUT, not
 * retryable: so many in a row mean a lease too short for this cluster, not a passing lag).
 */
const STALE_ATTEMPTS_MAX = 16;

/** One attempt's end: a grant, busy (try-lock), or a grant that was stale or gone. */
type AttemptResult = LockGrantInfo | null | 'stale';

export class LockWaiters {
  private readonly waiting = new Map<string, Waiting>();
  private renewTimer: TimerHandle | null = null;
  private closed = false;

  constructor(
    private readonly d: {
      readonly clock: Clock;
      readonly write: (
        c: CacheCommand,
        timeoutMs?: number,
      ) => Promise<{ index: number; result: CacheResult }>;
      readonly view: (key: string) => LockView | null;
      /** This node's log time (the clock the state machine's leases run on). */
      readonly nowMs: () => number;
      /** The index of the last entry this node's state machine applied. */
      readonly applied: () => number;
      /** A queued waiter's wait lease in log time; renewed every third of it while it waits. */
      readonly waitLeaseMs: number;
      /** Test only (see CachePlantedBugs, cache-group.ts). */
      readonly plantedBugs?: { readonly handStaleGrants?: boolean };
    },
  ) {}

  get size(): number {
    return this.waiting.size;
  }

  /** The state machine granted a queued waiter. */
  granted(g: LockGrant): void {
    const w = this.waiting.get(g.holderId);
    if (w === undefined || w.key !== g.key) return;
    w.grant = { token: g.token, expiresAtMs: g.expiresAtMs };
    w.wake?.();
  }

  async acquire(req: LockRequest, signal?: AbortSignal): Promise<LockGrantInfo | null> {
    const startedMs = this.d.clock.monotonicMs();
    // Bounded: STALE_ATTEMPTS_MAX attempts, each bounded by the caller's wait.
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted === true) throw aborted(req.key);
      const holderId = attempt === 0 ? req.holderId : `${req.holderId}~${attempt}`;
      // Whole ms (the command's waitMs is an integer), never past the caller's wait.
      const leftMs =
        req.waitMs === undefined || attempt === 0
          ? req.waitMs
          : Math.max(0, Math.floor(req.waitMs - (this.d.clock.monotonicMs() - startedMs)));
      if (attempt > 0 && leftMs === 0 && req.waitMs !== 0) throw notGranted(req);
      const r = await this.attempt(
        { ...req, holderId, ...(leftMs === undefined ? {} : { waitMs: leftMs }) },
        req,
        signal,
      );
      // A try-lock too: its next attempt finds the lock held (null) or free (granted).
      if (r === null) return null;
      if (r !== 'stale') return { ...r, waitedMs: this.d.clock.monotonicMs() - startedMs };
      if (attempt + 1 >= STALE_ATTEMPTS_MAX) {
        throw new HiqliteError(
          'HQL_TIMEOUT',
          `lock '${req.key}': ${STALE_ATTEMPTS_MAX} grants in a row had ended before this node could hand them out: leaseMs ${req.leaseMs} is shorter than a grant takes to reach it (or it lags far behind the leader)`,
          { retryable: false },
        );
      }
    }
  }

  /**
   * One attempt under `req.holderId` (`req.waitMs`: what is left of the caller's, `whole`): a
   * grant that still holds, null (busy), or stale.
   */
  private async attempt(
    req: LockRequest,
    whole: LockRequest,
    signal: AbortSignal | undefined,
  ): Promise<AttemptResult> {
    if (this.waiting.has(req.holderId)) {
      throw new HiqliteError('HQL_INVALID_PARAMS', `lock holder id ${req.holderId} is already waiting`, {
        retryable: false,
      });
    }
    const w: Waiting = { key: req.key, grant: null, wake: null };
    // Registered before proposing: the grant may be applied before the acquire's result arrives.
    this.waiting.set(req.holderId, w);
    if (req.waitMs !== 0) this.renewWaitsSoon();
    const startedMs = this.d.clock.monotonicMs();
    try {
      const command: CacheCommand = {
        type: 'lockAcquire',
        key: req.key,
        holderId: req.holderId,
        leaseMs: req.leaseMs,
        ...(req.waitMs === undefined ? {} : { waitMs: req.waitMs }),
        ...(req.waitMs === 0 ? {} : { waitLeaseMs: this.d.waitLeaseMs }),
      };
      let out: { index: number; result: CacheResult };
      const proposed = this.d.write(command);
      try {
        out = await raceAbort(proposed, signal, () => aborted(req.key));
      } catch (e) {
        if (signal?.aborted === true) {
          // The acquire may still commit (a leader change holds it up): withdrawn once it did.
          void proposed.then(
            () => this.cancel(req),
            () => this.cancel(req),
          );
          throw e;
        }
        await this.cancel(req);
        throw e;
      }
      if (!out.result.ok) throw cacheErrorFromInfo(out.result.error);
      const v = out.result.value;
      if (v.type !== 'lockAcquire') throw new Error(`lockAcquire answered ${v.type}`);
      if (v.state === 'busy') return null;
      if (v.state === 'granted') {
        // Answered by the command's own apply (here or on the leader): only its lease can have ended.
        return (await this.usable(req, v, false)) ?? 'stale';
      }
      const remainingMs =
        req.waitMs === undefined ? null : Math.max(0, req.waitMs - (this.d.clock.monotonicMs() - startedMs));
      const outcome = await this.wait(req, w, out.index, remainingMs, signal);
      if (outcome === 'gone') {
        await this.cancel(req);
        return 'stale';
      }
      if (outcome !== 'granted' || w.grant === null) {
        void this.cancel(req);
        throw outcome === 'aborted' ? aborted(req.key) : notGranted(whole);
      }
      return (await this.usable(req, w.grant, true)) ?? 'stale';
    } finally {
      this.waiting.delete(req.holderId);
    }
  }

  /**
   * The grant with the lease it has left, or null (after withdrawing the holder id) when it no
   * longer holds in this node's log time. `applied`: the grant came from this node's state
   * machine, which shows whether it still holds after everything applied with it.
   */
  private async usable(
    req: LockRequest,
    grant: { readonly token: number; readonly expiresAtMs: number },
    applied: boolean,
  ): Promise<LockGrantInfo | null> {
    const remainingMs = Math.min(req.leaseMs, grant.expiresAtMs - this.d.nowMs());
    const view = applied ? this.d.view(req.key) : null;
    const holds = !applied || (view !== null && view.holderId === req.holderId && view.token === grant.token);
    if (this.d.plantedBugs?.handStaleGrants === true)
      return {
        token: grant.token,
        holderId: req.holderId,
        expiresAtMs: grant.expiresAtMs,
        remainingMs: req.leaseMs,
      };
    if (holds && remainingMs > 0)
      return { token: grant.token, holderId: req.holderId, expiresAtMs: grant.expiresAtMs, remainingMs };
    // Released if it is still recorded as the holder (its lease over but not yet passed on).
    await this.cancel(req);
    return null;
  }

  /**
   * Shutdown: ends every wait with `error` and withdraws its waiter from the lock's queue, waiting
   * at most `withinMs` for the withdrawals. A waiter left there was granted the lock when its turn
   * came, with nobody behind it, and held it for its whole lease (found from outside: a node
   * closed while its application waited made the next waiter wait 20 s). Ended first, so a grant
   * arriving meanwhile is not handed out (the withdrawal releases it).
   */
  async closeAndWithdraw(error: Error, withinMs: number): Promise<void> {
    const waiters = [...this.waiting].map(([holderId, w]) => ({ key: w.key, holderId }));
    this.closeAll(error);
    if (waiters.length === 0) return;
    await inTime(Promise.all(waiters.map((w) => this.cancel(w))), withinMs, null, this.d.clock);
  }

  /** Fails every waiter (shutdown): no more waits nor renewals. */
  closeAll(error: Error): void {
    this.closed = true;
    if (this.renewTimer !== null) this.d.clock.clearTimer(this.renewTimer);
    this.renewTimer = null;
    this.failAll(error);
  }

  /** Fails every waiter (their group is founded anew: its queues are gone); later waits go on. */
  failAll(error: Error): void {
    for (const w of this.waiting.values()) {
      w.grant = null;
      (w as { closed?: Error }).closed = error;
      w.wake?.();
    }
  }

  /**
   * Waits for the grant of the acquire applied at `index`: 'gone' when this node has applied it
   * and the lock shows the holder id neither holding nor queued (granted and over, or dropped,
   * inside an installed snapshot).
   */
  private wait(
    req: LockRequest,
    w: Waiting,
    index: number,
    remainingMs: number | null,
    signal: AbortSignal | undefined,
  ): Promise<'granted' | 'timeout' | 'aborted' | 'gone'> {
    const { clock } = this.d;
    return new Promise((resolve, reject) => {
      let deadline: TimerHandle | null = null;
      let recheck: TimerHandle | null = null;
      let stopListening = () => {};
      const finish = (r: 'granted' | 'timeout' | 'aborted' | 'gone' | Error) => {
        if (deadline !== null) clock.clearTimer(deadline);
        if (recheck !== null) clock.clearTimer(recheck);
        stopListening();
        w.wake = null;
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      w.wake = () => {
        const closed = (w as { closed?: Error }).closed;
        finish(closed ?? 'granted');
      };
      if (w.grant !== null) return finish('granted');
      // Aborted while the acquire was being proposed too.
      if (signal?.aborted === true) return finish('aborted');
      if (remainingMs !== null) deadline = clock.setTimer(() => finish('timeout'), remainingMs);
      stopListening = whenAborted(signal, () => finish('aborted'));
      const look = () => {
        const v = this.d.view(req.key);
        if (v !== null && v.holderId === req.holderId) {
          w.grant = { token: v.token, expiresAtMs: v.expiresAtMs };
          return finish('granted');
        }
        if (this.d.applied() >= index && (v === null || !v.waiters.includes(req.holderId)))
          return finish('gone');
        recheck = clock.setTimer(look, RECHECK_INTERVAL_MS, { keepAlive: false });
      };
      recheck = clock.setTimer(look, RECHECK_INTERVAL_MS, { keepAlive: false });
    });
  }

  /** Schedules the next renewal of this node's waiters' wait leases (one round at a time). */
  private renewWaitsSoon(): void {
    if (this.renewTimer !== null || this.closed) return;
    const everyMs = Math.max(1, Math.floor(this.d.waitLeaseMs / 3));
    this.renewTimer = this.d.clock.setTimer(
      () => {
        void this.renewWaits(everyMs).finally(() => {
          this.renewTimer = null;
          if (this.waiting.size > 0) this.renewWaitsSoon();
        });
      },
      everyMs,
      { keepAlive: false },
    );
  }

  /**
   * Renews the wait lease of every waiter of this node (not granted yet), in commands of at most
   * LOCK_WAIT_RENEW_WAITERS_MAX, each given a third of the wait lease. Best effort: one that does
   * not commit leaves the leases to the next round (or to lapse, see the top of the file).
   */
  private async renewWaits(withinMs: number): Promise<void> {
    const keys: string[] = [];
    const holderIds: string[] = [];
    for (const [holderId, w] of this.waiting) {
      if (w.grant !== null) continue;
      keys.push(w.key);
      holderIds.push(holderId);
    }
    const rounds: Promise<unknown>[] = [];
    for (let i = 0; i < keys.length; i += LOCK_WAIT_RENEW_WAITERS_MAX) {
      const command: CacheCommand = {
        type: 'lockWaitRenew',
        waitLeaseMs: this.d.waitLeaseMs,
        keys: keys.slice(i, i + LOCK_WAIT_RENEW_WAITERS_MAX),
        holderIds: holderIds.slice(i, i + LOCK_WAIT_RENEW_WAITERS_MAX),
      };
      rounds.push(this.d.write(command, withinMs));
    }
    await Promise.allSettled(rounds);
  }

  /** Withdraws the holder id (best effort: if this fails, its wait or lease still ends in log time). */
  private async cancel(req: Pick<LockRequest, 'key' | 'holderId'>): Promise<void> {
    try {
      await this.d.write({ type: 'lockCancel', key: req.key, holderId: req.holderId });
    } catch {
      // The node may be shutting down; the queue drops the waiter at its waitMs, a lease ends.
    }
  }
}

function notGranted(req: LockRequest): HiqliteError {
  return new HiqliteError('HQL_TIMEOUT', `lock '${req.key}' was not granted within ${req.waitMs} ms`, {
    retryable: true,
  });
}

function aborted(key: string): HiqliteError {
  return abortedError(`waiting for lock '${key}' was aborted`);
}
