/**
 * The simulator's agenda: events ordered by virtual time, ties broken by scheduling order, so
 * that one seed always runs the same events in the same order (no wall clock, no timers).
 */
import { assert } from '../../src/lib/assert.js';

/** Virtual time in microseconds (integers: no float drift between runs). */
export type TimeUs = number;

export interface SimEvent {
  readonly timeUs: TimeUs;
  /** Scheduling order: the tie-breaker that makes equal-time events deterministic. */
  readonly seq: number;
  /** Short constant label for the trace ('tick', 'deliver', 'disk', …). */
  readonly kind: string;
  /** Node (or client) the event concerns, -1 when none: hashed into the trace. */
  readonly subject: number;
  readonly run: () => void;
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.timeUs < b.timeUs || (a.timeUs === b.timeUs && a.seq < b.seq);
}

/** A binary min-heap of events, bounded so a runaway scenario fails loudly instead of eating memory. */
export class EventQueue {
  private readonly heap: SimEvent[] = [];
  private seqNext = 0;
  private nowUs: TimeUs = 0;

  constructor(private readonly eventsMax: number) {
    assert(eventsMax > 0, 'eventsMax must be positive');
  }

  get now(): TimeUs {
    return this.nowUs;
  }

  get size(): number {
    return this.heap.length;
  }

  /** Schedule `run` at `delayUs` from now (0 = after every event already due now). */
  after(delayUs: number, kind: string, subject: number, run: () => void): void {
    assert(Number.isInteger(delayUs) && delayUs >= 0, `bad delay ${delayUs}`);
    assert(this.heap.length < this.eventsMax, `event queue full (${this.eventsMax})`);
    const ev: SimEvent = { timeUs: this.nowUs + delayUs, seq: this.seqNext++, kind, subject, run };
    this.heap.push(ev);
    this.siftUp(this.heap.length - 1);
  }

  /** Remove the earliest event and advance the clock to it; null when empty. */
  pop(): SimEvent | null {
    const top = this.heap[0];
    if (top === undefined) return null;
    const last = this.heap.pop() as SimEvent;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    assert(top.timeUs >= this.nowUs, 'virtual time went backwards');
    this.nowUs = top.timeUs;
    return top;
  }

  /** Let virtual time pass up to `timeUs` (no event may be due before it). */
  advanceTo(timeUs: TimeUs): void {
    const next = this.heap[0];
    assert(next === undefined || next.timeUs >= timeUs, 'advancing past a due event');
    if (timeUs > this.nowUs) this.nowUs = timeUs;
  }

  /** Time of the earliest event, or null when empty. */
  peekTimeUs(): TimeUs | null {
    return this.heap[0]?.timeUs ?? null;
  }

  private siftUp(i: number): void {
    const h = this.heap;
    const ev = h[i] as SimEvent;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent] as SimEvent;
      if (!before(ev, p)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = ev;
  }

  private siftDown(i: number): void {
    const h = this.heap;
    const n = h.length;
    const ev = h[i] as SimEvent;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && before(h[r] as SimEvent, h[l] as SimEvent) ? r : l;
      const c = h[child] as SimEvent;
      if (!before(c, ev)) break;
      h[i] = c;
      i = child;
    }
    h[i] = ev;
  }
}
