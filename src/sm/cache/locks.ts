/**
 * Distributed locks with leases in log time and fencing tokens.
 *
 * - A lock has at most one holder; others queue FIFO (at most `lockWaitersPerKeyMax`).
 * - A holder's lease covers [grant, grant + leaseMs) of the log clock; at `expiresAtMs <= now`
 *   the lease is over and the next waiter is granted, in the same command (`expireLeases` runs
 *   before every command, so any command that advances the clock passes expired locks on).
 *   Hence no two holders of a key have overlapping leases in log time.
 * - Every grant takes the next value of one counter (`fenceNext`, in the snapshot), raised to the
 *   grant's log time in µs first, so tokens are strictly increasing per key across holders,
 *   leaders, restarts and snapshots, and across a group founded anew (a restore, a full restart
 *   of in-memory caches), whose log time starts later; a resource refuses a write with a token
 *   below the highest it saw.
 * - Renew and release name the token: a stale one (the lease ran out, another holds it) is
 *   ignored. A waiter whose `waitMs` passed is skipped when its turn comes.
 * - A waiter has a wait lease too (`waitLeaseMs` of its acquire, `aliveUntilMs`): the node it
 *   waits on renews it (`lockWaitRenew`) while the wait goes on, and a waiter whose wait lease
 *   ran out is skipped when its turn comes. So a waiter whose node died (kill -9, power loss)
 *   does not get the lock, to hold it for a whole lease with nobody to renew or release it.
 * - Invariant: a key with no holder has no waiters (it is removed).
 *
 * Expired leases are found through a min-heap in (expiresAtMs, key, token) order with lazy
 * deletion (renewals leave stale items), rebuilt when stale items outnumber the holders.
 */
import { assert } from '../../lib/assert.js';
import type { CacheErrorInfo } from './errors.js';
import { checkBytes } from './kv.js';
import { MinHeap } from './min-heap.js';
import type { CacheLimits } from './options.js';
import type { LockAcquireOutcome } from './result.js';

export interface Holder {
  readonly holderId: string;
  readonly token: number;
  leaseMs: number;
  expiresAtMs: number;
}

export interface Waiter {
  readonly holderId: string;
  readonly leaseMs: number;
  /** Dropped from the queue when its turn comes at or after this time; null: waits forever. */
  readonly deadlineMs: number | null;
  /**
   * Its wait lease: dropped when its turn comes at or after this time unless renewed before;
   * null: no wait lease (an acquire without `waitLeaseMs`, written by an older build).
   */
  aliveUntilMs: number | null;
}

/** Whether the waiter still waits at `nowMs` (its wait and its wait lease not over). */
function stillWaiting(w: Waiter, nowMs: number, ignoreWaitLeases = false): boolean {
  return (
    (w.deadlineMs === null || w.deadlineMs > nowMs) &&
    (ignoreWaitLeases || w.aliveUntilMs === null || w.aliveUntilMs > nowMs)
  );
}

/**
 * Test only: make the lock table wrong on purpose, so that the cache simulator's planted-bug
 * hunt proves its wait-lease audit sees it (test/sim/cache/wait-lease-audit.ts). Never set
 * outside tests.
 */
export interface LockTablePlantedBugs {
  /** Grant the lock to a waiter whose wait lease ran out (its node died): as before ed9b208. */
  readonly ignoreWaitLeases?: boolean;
}

export interface LockState {
  holder: Holder;
  waiters: Waiter[];
}

/** A queued waiter was granted the lock (reported to the runtime, which wakes the waiter). */
export interface LockGrant {
  readonly key: string;
  readonly holderId: string;
  readonly token: number;
  readonly expiresAtMs: number;
  /** The log index of the command that granted it. */
  readonly index: number;
}

/**
 * Tokens per millisecond of log time: a token is at least its grant's log time in µs (safe
 * integers until the year 2255), with room for 1,000 grants per millisecond before the counter
 * runs ahead of the clock (it then goes on counting: still strictly increasing).
 */
export const TOKEN_PER_LOG_MS = 1000;

interface LeaseItem {
  readonly atMs: number;
  readonly key: string;
  readonly token: number;
}

export class LockTable {
  readonly locks = new Map<string, LockState>();
  /** The token of the next grant. */
  fenceNext = 1;
  private readonly leases = new MinHeap<LeaseItem>(leaseLess);

  constructor(
    private readonly limits: CacheLimits,
    private readonly onGrant: (g: LockGrant) => void,
    private readonly plantedBugs: LockTablePlantedBugs = {},
  ) {}

  acquire(
    key: string,
    holderId: string,
    leaseMs: number,
    waitMs: number | undefined,
    nowMs: number,
    waitLeaseMs?: number,
  ): LockAcquireOutcome | CacheErrorInfo {
    const tooLarge =
      checkBytes('lock key', key, this.limits.keyBytesMax, 'keyBytesMax') ??
      checkBytes('holder id', holderId, this.limits.holderIdBytesMax, 'holderIdBytesMax');
    if (tooLarge !== undefined) return tooLarge;
    const state = this.locks.get(key);
    if (state === undefined) {
      if (this.locks.size >= this.limits.locksMax) {
        return {
          code: 'HQL_CACHE_FULL',
          message: `cache full: ${this.locks.size} locks are held (locksMax)`,
          limit: 'locksMax',
        };
      }
      const holder = this.grant(holderId, leaseMs, nowMs);
      this.locks.set(key, { holder, waiters: [] });
      this.pushLease(key, holder);
      return { type: 'lockAcquire', state: 'granted', token: holder.token, expiresAtMs: holder.expiresAtMs };
    }
    const { holder, waiters } = state;
    if (holder.holderId === holderId) {
      return { type: 'lockAcquire', state: 'granted', token: holder.token, expiresAtMs: holder.expiresAtMs };
    }
    const queued = waiters.findIndex((w) => w.holderId === holderId);
    if (queued !== -1) {
      // The same attempt again (a retry): it is alive.
      const w = waiters[queued] as Waiter;
      if (waitLeaseMs !== undefined) w.aliveUntilMs = nowMs + waitLeaseMs;
      return { type: 'lockAcquire', state: 'queued', position: queued + 1 };
    }
    if (waitMs === 0) return { type: 'lockAcquire', state: 'busy' };
    if (waiters.length >= this.limits.lockWaitersPerKeyMax) {
      state.waiters = waiters.filter((w) => stillWaiting(w, nowMs));
      if (state.waiters.length >= this.limits.lockWaitersPerKeyMax) {
        return {
          code: 'HQL_CACHE_FULL',
          message: `cache full: lock '${key}' has ${state.waiters.length} waiters (lockWaitersPerKeyMax)`,
          limit: 'lockWaitersPerKeyMax',
        };
      }
    }
    state.waiters.push({
      holderId,
      leaseMs,
      deadlineMs: waitMs === undefined ? null : nowMs + waitMs,
      aliveUntilMs: waitLeaseMs === undefined ? null : nowMs + waitLeaseMs,
    });
    return { type: 'lockAcquire', state: 'queued', position: state.waiters.length };
  }

  /** `holderId` undefined: an entry from before renewals named their holder (the token decides). */
  renew(
    key: string,
    token: number,
    holderId: string | undefined,
    leaseMs: number | undefined,
    nowMs: number,
  ): number | null {
    const holder = this.locks.get(key)?.holder;
    if (holder === undefined || holder.token !== token) return null;
    if (holderId !== undefined && holder.holderId !== holderId) return null;
    if (leaseMs !== undefined) holder.leaseMs = leaseMs;
    holder.expiresAtMs = nowMs + holder.leaseMs;
    this.pushLease(key, holder);
    return holder.expiresAtMs;
  }

  /** `holderId` undefined: an entry from before releases named their holder (the token decides). */
  release(key: string, token: number, holderId: string | undefined, nowMs: number, index: number): boolean {
    const state = this.locks.get(key);
    if (state === undefined || state.holder.token !== token) return false;
    if (holderId !== undefined && state.holder.holderId !== holderId) return false;
    this.passOn(key, state, nowMs, index);
    return true;
  }

  /**
   * Renews the wait lease of each waiter named (`keys[i]`, `holderIds[i]`) to now + `waitLeaseMs`;
   * one no longer queued (granted, dropped, withdrawn) is ignored. Returns how many were renewed.
   */
  renewWaits(
    keys: readonly string[],
    holderIds: readonly string[],
    waitLeaseMs: number,
    nowMs: number,
  ): number {
    assert(keys.length === holderIds.length, 'one key per waiter');
    let renewed = 0;
    for (let i = 0; i < keys.length; i++) {
      const w = this.locks.get(keys[i] as string)?.waiters.find((x) => x.holderId === holderIds[i]);
      if (w === undefined) continue;
      w.aliveUntilMs = nowMs + waitLeaseMs;
      renewed++;
    }
    return renewed;
  }

  cancel(key: string, holderId: string, nowMs: number, index: number): 'waiter' | 'holder' | 'none' {
    const state = this.locks.get(key);
    if (state === undefined) return 'none';
    if (state.holder.holderId === holderId) {
      this.passOn(key, state, nowMs, index);
      return 'holder';
    }
    const i = state.waiters.findIndex((w) => w.holderId === holderId);
    if (i === -1) return 'none';
    state.waiters.splice(i, 1);
    return 'waiter';
  }

  /** Ends every lease with `expiresAtMs <= nowMs`, earliest first, passing each lock on. */
  expireLeases(nowMs: number, index: number): void {
    for (;;) {
      const top = this.leases.peek();
      if (top === undefined || top.atMs > nowMs) return;
      this.leases.pop();
      const state = this.locks.get(top.key);
      if (state !== undefined && state.holder.token === top.token && state.holder.expiresAtMs === top.atMs) {
        this.passOn(top.key, state, nowMs, index);
      }
    }
  }

  /** The earliest lease end in the index (possibly of a renewed or released lease), or null. */
  nextLeaseEndMs(): number | null {
    return this.leases.peek()?.atMs ?? null;
  }

  get waiting(): number {
    let n = 0;
    for (const s of this.locks.values()) n += s.waiters.length;
    return n;
  }

  /** Inserts a lock read from a snapshot. */
  restore(key: string, state: LockState): void {
    this.locks.set(key, state);
  }

  rebuildLeaseIndex(): void {
    const items: LeaseItem[] = [];
    for (const [key, s] of this.locks) items.push({ atMs: s.holder.expiresAtMs, key, token: s.holder.token });
    this.leases.rebuild(items);
  }

  /** Size of the lease index, stale items included (tests check its bound). */
  get leaseIndexSize(): number {
    return this.leases.size;
  }

  // ---- internals -----------------------------------------------------------------------------

  private grant(holderId: string, leaseMs: number, nowMs: number): Holder {
    // Never below the grant's log time in microseconds: a cache group founded anew (a restore
    // from a backup, which holds no cache state; a full restart with cache_storage_disk = false;
    // node 1 founding the group again) starts counting above every token of the one before it,
    // whose log time lay in the past, so rows fenced by old tokens do not refuse its holders.
    const token = Math.max(this.fenceNext, Math.floor(nowMs) * TOKEN_PER_LOG_MS);
    assert(Number.isSafeInteger(token), 'fencing token overflow');
    this.fenceNext = token + 1;
    return { holderId, token, leaseMs, expiresAtMs: nowMs + leaseMs };
  }

  /** The holder is gone: the first waiter still waiting gets the lock, or the key is removed. */
  private passOn(key: string, state: LockState, nowMs: number, index: number): void {
    for (;;) {
      const w = state.waiters.shift();
      if (w === undefined) {
        this.locks.delete(key);
        return;
      }
      if (!stillWaiting(w, nowMs, this.plantedBugs.ignoreWaitLeases)) continue;
      state.holder = this.grant(w.holderId, w.leaseMs, nowMs);
      this.pushLease(key, state.holder);
      this.onGrant({
        key,
        holderId: w.holderId,
        token: state.holder.token,
        expiresAtMs: state.holder.expiresAtMs,
        index,
      });
      return;
    }
  }

  private pushLease(key: string, holder: Holder): void {
    this.leases.push({ atMs: holder.expiresAtMs, key, token: holder.token });
    if (this.leases.size > 2 * this.locks.size + 1024) this.rebuildLeaseIndex();
  }
}

function leaseLess(a: LeaseItem, b: LeaseItem): boolean {
  if (a.atMs !== b.atMs) return a.atMs < b.atMs;
  if (a.key !== b.key) return a.key < b.key;
  return a.token < b.token;
}
