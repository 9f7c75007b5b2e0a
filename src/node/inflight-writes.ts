/**
 * The writes a node is carrying out for its callers (both groups; the application's, remote
 * clients' and other nodes'). A graceful shutdown refuses new writes, then waits for these, at most
 * `shutdown_timeout_ms`, so that their callers get their outcomes: closing the groups under
 * them would answer each with HQL_OUTCOME_UNKNOWN, although most commit a moment later.
 */
import type { Clock } from '../lib/clock.js';

export class InflightWrites {
  private count = 0;
  private idle: Array<() => void> = [];

  get size(): number {
    return this.count;
  }

  /** A write starts; every enter() is matched by one leave() (try/finally). */
  enter(): void {
    this.count++;
  }

  leave(): void {
    this.count--;
    if (this.count === 0 && this.idle.length > 0) for (const wake of this.idle.splice(0)) wake();
  }

  /** Counts `write` while it runs (enter/leave around it). */
  async track<T>(write: () => Promise<T>): Promise<T> {
    this.enter();
    try {
      return await write();
    } finally {
      this.leave();
    }
  }

  /** Resolves true once no write is in flight, false when `timeoutMs` passes first. */
  drained(timeoutMs: number, clock: Clock): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const wake = () => {
        clock.clearTimer(timer);
        resolve(true);
      };
      const timer = clock.setTimer(() => {
        const i = this.idle.indexOf(wake);
        if (i >= 0) this.idle.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      this.idle.push(wake);
    });
  }
}
