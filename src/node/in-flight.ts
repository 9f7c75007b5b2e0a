/**
 * What is under way and must be let finish before something closes: a count with a wait for
 * zero. A graceful shutdown refuses new work, then waits, at most a deadline, for what is in
 * flight so that its callers get their outcomes: the node's writes (both groups; the
 * application's, remote clients' and other nodes'), before its groups close under them; each API
 * connection's requests, and the HTTP requests, before the port closes.
 */
import type { Clock } from '../lib/clock.js';
import type { Timers } from '../transport/timers.js';

export class InFlight {
  private count = 0;
  private idle: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  /** Work starts; every enter() is matched by one leave() (try/finally). */
  enter(): void {
    this.count++;
  }

  leave(): void {
    this.count--;
    if (this.count === 0 && this.idle.length > 0) for (const wake of this.idle.splice(0)) wake();
  }

  /** Counts `work` while it runs (enter/leave around it). */
  async track<T>(work: () => Promise<T>): Promise<T> {
    this.enter();
    try {
      return await work();
    } finally {
      this.leave();
    }
  }

  /** Resolves true once nothing is in flight, false when `timeoutMs` passes first. */
  drained(timeoutMs: number, time: Clock | Timers): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    if (timeoutMs <= 0) return Promise.resolve(false);
    const after = (fn: () => void): (() => void) => {
      if ('setTimer' in time) {
        const h = time.setTimer(fn, timeoutMs);
        return () => time.clearTimer(h);
      }
      const h = time.setTimeout(fn, timeoutMs);
      return () => time.clearTimeout(h);
    };
    return new Promise<boolean>((resolve) => {
      const wake = () => {
        cancel();
        resolve(true);
      };
      const cancel = after(() => {
        const i = this.idle.indexOf(wake);
        if (i >= 0) this.idle.splice(i, 1);
        resolve(false);
      });
      this.idle.push(wake);
    });
  }
}
