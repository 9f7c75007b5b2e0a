/**
 * Time enters the code only through a Clock (STYLE.md habit 2), so tests and the simulator can
 * substitute their own. The system implementation lives in src/node/system-clock.ts.
 */
export interface TimerHandle {
  readonly __timer: unique symbol;
}

export interface Clock {
  /** Milliseconds on a monotonic scale (not wall-clock time). */
  monotonicMs(): number;
  /** Wall-clock milliseconds since the epoch (for values that must mean a date). */
  wallMs(): number;
  /**
   * Fires once after `delayMs`, however long (Infinity: never; the system clock waits past Node's
   * 2^31 - 1 ms limit in steps). `keepAlive: false` for housekeeping timers that must not keep
   * the process running.
   */
  setTimer(callback: () => void, delayMs: number, options?: { keepAlive: boolean }): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}
