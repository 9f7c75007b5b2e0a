/**
 * Tracks the applied index of a state machine and lets readers wait for it (read-your-writes:
 * a write returns its log index; a later read on any node passes it as `minIndex`). Whoever
 * applies entries calls `advance()` after the SQLite transaction committed, so a read that starts
 * after the wait resolves sees the entry.
 */
import { whenAborted } from '../../lib/abort.js';
import type { Clock } from '../../lib/clock.js';
import { HiqliteError } from '../../lib/errors.js';
import { sqlError } from './errors.js';

/** The part of a Clock the watcher needs; without one, Node's timers are used. */
export type WatchTimers = Pick<Clock, 'setTimer' | 'clearTimer'>;

const nodeTimers: WatchTimers = {
  setTimer: (callback, delayMs) => setTimeout(callback, delayMs) as unknown as ReturnType<Clock['setTimer']>,
  clearTimer: (handle) => clearTimeout(handle as unknown as NodeJS.Timeout),
};

export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

interface Waiter {
  readonly minIndex: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export const WAITERS_MAX_DEFAULT = 10_000;

export class AppliedIndexWatcher {
  private index: number;
  private readonly waiters = new Set<Waiter>();
  private readonly listeners: Array<(index: number) => void> = [];

  constructor(
    initialIndex = 0,
    readonly waitersMax = WAITERS_MAX_DEFAULT,
    private readonly timers: WatchTimers = nodeTimers,
  ) {
    this.index = initialIndex;
  }

  get current(): number {
    return this.index;
  }

  /**
   * Calls `listener` with each new index, before waiters resume (a node on a worker thread
   * mirrors its applied index into shared memory: src/client/node-worker.ts).
   */
  onAdvance(listener: (index: number) => void): void {
    this.listeners.push(listener);
  }

  /** Monotonic: a lower index (a stale notification) is ignored. */
  advance(index: number): void {
    if (!(index > this.index)) return;
    this.index = index;
    for (const listener of this.listeners) listener(index);
    for (const w of this.waiters) {
      if (w.minIndex <= index) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  /** Resolves once `current >= minIndex`; rejects with HQL_TIMEOUT / HQL_ABORTED / HQL_OVERLOADED. */
  waitFor(minIndex: number, options: WaitOptions = {}): Promise<void> {
    if (minIndex <= this.index) return Promise.resolve();
    const { signal, timeoutMs } = options;
    if (signal?.aborted)
      return Promise.reject(sqlError('HQL_ABORTED', 'aborted before the index was applied'));
    if (this.waiters.size >= this.waitersMax) {
      return Promise.reject(
        new HiqliteError(
          'HQL_OVERLOADED',
          `more than ${this.waitersMax} reads are waiting for an applied index`,
          {
            retryable: true,
          },
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<Clock['setTimer']> | undefined;
      let stopListening = () => {};
      const cleanup = () => {
        if (timer !== undefined) this.timers.clearTimer(timer);
        stopListening();
        this.waiters.delete(waiter);
      };
      const waiter: Waiter = {
        minIndex,
        resolve: () => {
          cleanup();
          resolve();
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      };
      stopListening = whenAborted(signal, () =>
        waiter.reject(sqlError('HQL_ABORTED', `aborted while waiting for applied index ${minIndex}`)),
      );
      if (timeoutMs !== undefined) {
        timer = this.timers.setTimer(
          () =>
            waiter.reject(
              sqlError(
                'HQL_TIMEOUT',
                `index ${minIndex} not applied within ${Math.round(timeoutMs)} ms (applied: ${this.index})`,
              ),
            ),
          timeoutMs,
        );
      }
      this.waiters.add(waiter);
    });
  }

  /** Rejects every waiter (the state machine is closing). */
  close(reason: unknown): void {
    for (const w of [...this.waiters]) w.reject(reason);
  }
}
