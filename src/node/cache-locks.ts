/**
 * Waiting for a distributed lock on this node. `lockAcquire` is replicated; when it is queued,
 * the grant comes later, in whatever entry ends the previous holder's lease or releases it: the
 * state machine reports it through its `onLockGranted` hook, which wakes the waiter with that
 * holder id here. A grant made inside a snapshot this node installed is never reported, so a
 * waiter also looks at the lock itself now and then.
 *
 * A waiter that gives up (its `waitMs` passed, or its signal fired) is withdrawn with
 * `lockCancel` before the call fails: if the lock was granted meanwhile, that releases it, so an
 * abandoned grant never blocks the queue for a whole lease.
 */
import type { Clock, TimerHandle } from '../lib/clock.js';
import { HiqliteError } from '../lib/errors.js';
import type { CacheCommand } from '../sm/cache/command.js';
import { cacheErrorFromInfo } from '../sm/cache/errors.js';
import type { LockGrant } from '../sm/cache/locks.js';
import type { CacheResult } from '../sm/cache/result.js';
import type { LockView } from '../sm/cache/state-machine.js';

export interface LockGrantInfo {
  readonly token: number;
  readonly expiresAtMs: number;
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
  grant: LockGrantInfo | null;
  wake: (() => void) | null;
}

/** How often a waiter looks at the lock itself (for grants inside an installed snapshot). */
const RECHECK_INTERVAL_MS = 1000;

export class LockWaiters {
  private readonly waiting = new Map<string, Waiting>();

  constructor(
    private readonly d: {
      readonly clock: Clock;
      readonly write: (
        c: CacheCommand,
        timeoutMs?: number,
      ) => Promise<{ index: number; result: CacheResult }>;
      readonly view: (key: string) => LockView | null;
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
    if (signal?.aborted === true) throw aborted(req.key);
    if (this.waiting.has(req.holderId)) {
      throw new HiqliteError('HQL_INVALID_PARAMS', `lock holder id ${req.holderId} is already waiting`, {
        retryable: false,
      });
    }
    const w: Waiting = { key: req.key, grant: null, wake: null };
    // Registered before proposing: the grant may be applied before the acquire's result arrives.
    this.waiting.set(req.holderId, w);
    const startedMs = this.d.clock.monotonicMs();
    try {
      const command: CacheCommand = {
        type: 'lockAcquire',
        key: req.key,
        holderId: req.holderId,
        leaseMs: req.leaseMs,
        ...(req.waitMs === undefined ? {} : { waitMs: req.waitMs }),
      };
      let out: { index: number; result: CacheResult };
      try {
        out = await this.d.write(command);
      } catch (e) {
        await this.cancel(req);
        throw e;
      }
      if (!out.result.ok) throw cacheErrorFromInfo(out.result.error);
      const v = out.result.value;
      if (v.type !== 'lockAcquire') throw new Error(`lockAcquire answered ${v.type}`);
      if (v.state === 'granted') return { token: v.token, expiresAtMs: v.expiresAtMs };
      if (v.state === 'busy') return null;
      const remainingMs =
        req.waitMs === undefined ? null : Math.max(0, req.waitMs - (this.d.clock.monotonicMs() - startedMs));
      const outcome = await this.wait(req, w, remainingMs, signal);
      if (outcome !== 'granted' || w.grant === null) {
        await this.cancel(req);
        throw outcome === 'aborted'
          ? aborted(req.key)
          : new HiqliteError('HQL_TIMEOUT', `lock '${req.key}' was not granted within ${req.waitMs} ms`, {
              retryable: true,
            });
      }
      return w.grant;
    } finally {
      this.waiting.delete(req.holderId);
    }
  }

  /** Fails every waiter (shutdown). */
  closeAll(error: Error): void {
    for (const w of this.waiting.values()) {
      w.grant = null;
      (w as { closed?: Error }).closed = error;
      w.wake?.();
    }
  }

  private wait(
    req: LockRequest,
    w: Waiting,
    remainingMs: number | null,
    signal: AbortSignal | undefined,
  ): Promise<'granted' | 'timeout' | 'aborted'> {
    const { clock } = this.d;
    return new Promise((resolve, reject) => {
      let deadline: TimerHandle | null = null;
      let recheck: TimerHandle | null = null;
      const finish = (r: 'granted' | 'timeout' | 'aborted' | Error) => {
        if (deadline !== null) clock.clearTimer(deadline);
        if (recheck !== null) clock.clearTimer(recheck);
        signal?.removeEventListener('abort', onAbort);
        w.wake = null;
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      const onAbort = () => finish('aborted');
      w.wake = () => {
        const closed = (w as { closed?: Error }).closed;
        finish(closed ?? 'granted');
      };
      if (w.grant !== null) return finish('granted');
      if (remainingMs !== null) deadline = clock.setTimer(() => finish('timeout'), remainingMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      const look = () => {
        const v = this.d.view(req.key);
        if (v !== null && v.holderId === req.holderId) {
          w.grant = { token: v.token, expiresAtMs: v.expiresAtMs };
          return finish('granted');
        }
        recheck = clock.setTimer(look, RECHECK_INTERVAL_MS, { keepAlive: false });
      };
      recheck = clock.setTimer(look, RECHECK_INTERVAL_MS, { keepAlive: false });
    });
  }

  /** Withdraws the holder id (best effort: if this fails, its wait or lease still ends in log time). */
  private async cancel(req: LockRequest): Promise<void> {
    try {
      await this.d.write({ type: 'lockCancel', key: req.key, holderId: req.holderId });
    } catch {
      // The node may be shutting down; the queue drops the waiter at its waitMs, a lease ends.
    }
  }
}

function aborted(key: string): HiqliteError {
  return new HiqliteError('HQL_ABORTED', `waiting for lock '${key}' was aborted`, { retryable: true });
}
