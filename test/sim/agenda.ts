/**
 * What both simulators (simulation.ts for the SQL group, cache/simulation.ts for the cache group)
 * drive their runs with: the agenda loop, and timers of a simulated process on the agenda.
 */
import type { Clock, TimerHandle } from '../../src/lib/clock.js';
import type { EventQueue } from './event-queue.js';
import { fail } from './failure.js';
import type { Trace } from './trace.js';

/**
 * Resolves once every promise continuation queued so far has run, and those they queued in turn
 * (a macrotask runs only after the microtask queue is empty). Nothing else runs in between: every
 * timer of a simulated node is an agenda event, so the order stays the seed's.
 */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Runs the agenda's events due up to `untilUs`, each followed by every continuation it caused;
 * then lets virtual time reach `untilUs` (every process may be stalled). More than `eventsMax`
 * events in the run (`count` counts them) is a runaway scenario; `after` runs after each event
 * (it throws to fail the run: a failure raised where none could be thrown, the pollers).
 */
export async function runAgenda(a: {
  readonly queue: EventQueue;
  readonly trace: Trace;
  readonly untilUs: number;
  readonly eventsMax: number;
  count(): number;
  after(): void;
}): Promise<void> {
  const { queue, trace, untilUs } = a;
  for (;;) {
    const t = queue.peekTimeUs();
    if (t === null || t > untilUs) break;
    const ev = queue.pop();
    if (ev === null) break;
    if (a.count() > a.eventsMax) fail('liveness', `runaway scenario: more than ${a.eventsMax} events`);
    trace.mix(ev.timeUs, ev.subject, ev.seq);
    ev.run();
    await settle();
    a.after();
  }
  queue.advanceTo(untilUs);
}

/**
 * A process's timers as agenda events: `schedule(delayMs, fire)` posts `fire` (in the process's
 * life, at its clock's rate); a cleared timer's event does nothing.
 */
export function agendaTimers(
  schedule: (delayMs: number, fire: () => void) => void,
): Pick<Clock, 'setTimer' | 'clearTimer'> {
  return {
    setTimer: (callback, delayMs) => {
      const timer = { cancelled: false };
      schedule(delayMs, () => {
        if (timer.cancelled) return;
        timer.cancelled = true;
        callback();
      });
      return timer as unknown as TimerHandle;
    },
    clearTimer: (handle) => {
      (handle as unknown as { cancelled: boolean }).cancelled = true;
    },
  };
}

/**
 * A simulated process's stalls (a GC pause, an overloaded host): while stalled it handles
 * nothing; what reaches it waits and runs, in arrival order, once it resumes.
 */
export class ProcessStall {
  private untilUs = 0;

  constructor(
    private readonly queue: EventQueue,
    private readonly trace: Trace,
    private readonly id: number,
  ) {}

  get paused(): boolean {
    return this.queue.now < this.untilUs;
  }

  /** Stall for `durationUs` (longer if already stalled longer). */
  pause(durationUs: number): void {
    this.untilUs = Math.max(this.untilUs, this.queue.now + durationUs);
    this.trace.note(this.queue.now, `n${this.id} paused for ${Math.round(durationUs / 1000)}ms`);
  }

  /** The process died: a new life starts unstalled. */
  reset(): void {
    this.untilUs = 0;
  }

  /** Runs `fn` in `life` now, or when the process resumes if it is stalled; never once it is dead. */
  whenRunning(life: { readonly dead: boolean }, kind: string, fn: () => void): void {
    if (life.dead) return;
    if (!this.paused) {
      fn();
      return;
    }
    this.queue.after(this.untilUs - this.queue.now, kind, this.id, () => this.whenRunning(life, kind, fn));
  }
}
