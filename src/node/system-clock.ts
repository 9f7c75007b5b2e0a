import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle } from '../lib/clock.js';

/** The real clock. A timer keeps the process alive unless `keepAlive: false`. */
export const systemClock: Clock = {
  monotonicMs: () => performance.now(),
  wallMs: () => Date.now(),
  setTimer(callback, delayMs, options) {
    const t = setTimeout(callback, delayMs);
    if (options?.keepAlive === false) t.unref();
    return t as unknown as TimerHandle;
  },
  clearTimer(handle) {
    clearTimeout(handle as unknown as NodeJS.Timeout);
  },
};
