import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle } from '../lib/clock.js';

/** The longest delay one Node.js timer holds: a longer one would fire after 1 ms. */
export const TIMER_MS_MAX = 2 ** 31 - 1;

/**
 * A timer of any length: a delay beyond TIMER_MS_MAX (a lock wait of 25 days and more, which
 * the cache group accepts up to 100 years) is waited in steps, so it does not fire at once.
 */
class LongTimer {
  private t: NodeJS.Timeout | null = null;

  constructor(
    private readonly callback: () => void,
    delayMs: number,
    private readonly keepAlive: boolean,
  ) {
    this.arm(performance.now() + delayMs);
  }

  clear(): void {
    if (this.t !== null) clearTimeout(this.t);
    this.t = null;
  }

  private arm(dueMs: number): void {
    const leftMs = dueMs - performance.now();
    this.t = setTimeout(
      () => {
        this.t = null;
        if (performance.now() >= dueMs) this.callback();
        else this.arm(dueMs);
      },
      Math.max(0, Math.min(TIMER_MS_MAX, leftMs)),
    );
    if (!this.keepAlive) this.t.unref();
  }
}

/** The real clock. A timer keeps the process alive unless `keepAlive: false`. */
export const systemClock: Clock = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
  setTimer(callback, delayMs, options) {
    if (delayMs > TIMER_MS_MAX)
      return new LongTimer(callback, delayMs, options?.keepAlive !== false) as unknown as TimerHandle;
    const t = setTimeout(callback, delayMs);
    if (options?.keepAlive === false) t.unref();
    return t as unknown as TimerHandle;
  },
  clearTimer(handle) {
    if (handle instanceof LongTimer) handle.clear();
    else clearTimeout(handle as unknown as NodeJS.Timeout);
  },
};
