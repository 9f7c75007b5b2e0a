/** A clock that moves only when told (not a test file itself). */
import type { Clock, TimerHandle } from '../../src/lib/clock.js';

export class ManualClock implements Clock {
  private timers = new Map<number, { atMs: number; callback: () => void }>();
  private nextId = 1;
  private monotonic = 0;

  constructor(private wall: number) {}

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
    for (let fired = 0; fired < 10_000; fired++) {
      let due: [number, { atMs: number; callback: () => void }] | undefined;
      for (const t of this.timers)
        if (t[1].atMs <= end && (due === undefined || t[1].atMs < due[1].atMs)) due = t;
      if (due === undefined) break;
      this.timers.delete(due[0]);
      this.wall += due[1].atMs - this.monotonic;
      this.monotonic = due[1].atMs;
      due[1].callback();
    }
    this.wall += end - this.monotonic;
    this.monotonic = end;
  }
}
