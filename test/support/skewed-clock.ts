/** The system clock with its wall time `offsetMs` off (timers and the monotonic clock are real). */
import type { Clock } from '../../src/lib/clock.js';
import { systemClock } from '../../src/node/system-clock.js';

export function skewedClock(): Clock & { offsetMs: number } {
  const c = {
    offsetMs: 0,
    monotonicMs: () => systemClock.monotonicMs(),
    wallMs: () => systemClock.wallMs() + c.offsetMs,
    setTimer: systemClock.setTimer,
    clearTimer: systemClock.clearTimer,
  };
  return c;
}
