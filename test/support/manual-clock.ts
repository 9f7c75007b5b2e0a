/** A clock that moves only when told: wall and monotonic time, and timers fired in order. */
import type { Clock, TimerHandle } from '../../src/lib/clock.js';

export class ManualClock implements Clock {
  private timers = new Map<number, { atMs: number; callback: () => void }>();
  private nextId = 1;

  /** Starts at `wall` (default: November 2023) and monotonic time `monotonic`. */
  constructor(
    private wall = 1_700_000_001_000,
    private monotonic = 1_000,
  ) {}

  monotonicMs(): number {
    return this.monotonic;
  }

  wallMs(): number {
    return this.wall;
  }

  setTimer(callback: () => void, delayMs: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { atMs: this.monotonic + Math.max(0, delayMs), callback });
    return id as unknown as TimerHandle;
  }

  clearTimer(handle: TimerHandle): void {
    this.timers.delete(handle as unknown as number);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves both clocks by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.monotonic + ms;
    for (let fired = 0; fired < 100_000; fired++) {
      let due: [number, { atMs: number; callback: () => void }] | undefined;
      for (const t of this.timers)
        if (t[1].atMs <= end && (due === undefined || t[1].atMs < due[1].atMs)) due = t;
      if (due === undefined) break;
      this.timers.delete(due[0]);
      // An overdue timer (after stall()) fires at the present, never back in time.
      const at = Math.max(this.monotonic, due[1].atMs);
      this.wall += at - this.monotonic;
      this.monotonic = at;
      due[1].callback();
    }
    this.wall += end - this.monotonic;
    this.monotonic = end;
  }

  /**
   * Moves both clocks by `ms` without firing anything: the process stood still (a long GC
   * pause, a blocked event loop). The timers that fell due fire, late, at the next advance().
   */
  stall(ms: number): void {
    this.monotonic += ms;
    this.wall += ms;
  }
}
