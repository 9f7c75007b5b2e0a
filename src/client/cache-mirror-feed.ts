/**
 * The node thread's side of the application thread's cache mirror (cache-mirror.ts): sends the
 * entries the cache group applies, and a snapshot whenever the mirror cannot follow by entries
 * alone (at start, after the node installed a snapshot or reset its state, after the window
 * overflowed, and when the mirror asks for one because it found a gap).
 *
 * The window: at most `inflightBytesMax` bytes of entries and chunks not yet acknowledged by the
 * mirror. Snapshot chunks wait for room below half of it, so entries applied meanwhile keep
 * room. An entry batch that does not fit is not queued: the epoch is lost (`mirror-lost`), and
 * once every byte in flight is acknowledged a new epoch starts with a fresh snapshot. An
 * application that stops reading its messages therefore holds a bounded amount, and the mirror
 * is never silently behind: until it is live again the application reads through the node's
 * thread.
 */
import { assert } from '../lib/assert.js';
import type { CacheApplyObserver } from '../node/cache-group.js';
import type { Entry } from '../raft/types.js';
import type { CacheStateMachine } from '../sm/cache/state-machine.js';
import { type MirrorEvent, packEntries } from './cache-mirror-wire.js';

export interface MirrorFeedOptions {
  /** The node's cache state machine (its applied state is what the mirror copies). */
  readonly sm: CacheStateMachine;
  /** Queues an event for the application thread, in order (the buffer of `transfer` moves). */
  readonly post: (event: MirrorEvent, transfer: ArrayBuffer | null) => void;
  readonly inflightBytesMax: number;
  /** A snapshot could not be produced (a broken invariant): reported, the feed stays lost. */
  readonly onError: (e: unknown) => void;
}

type FeedState = 'live' | 'snapshot' | 'lost' | 'closed';

class Abandoned extends Error {}

export class MirrorFeed implements CacheApplyObserver {
  private state: FeedState = 'lost';
  private epoch = 0;
  private inflightBytes = 0;
  private wakeRoom: (() => void) | null = null;

  constructor(private readonly o: MirrorFeedOptions) {
    assert(Number.isSafeInteger(o.inflightBytesMax) && o.inflightBytesMax > 0, 'inflightBytesMax');
  }

  /** Begins the first epoch (a snapshot of the current state). */
  start(): void {
    assert(this.epoch === 0, 'the feed started twice');
    this.resync();
  }

  get inflight(): number {
    return this.inflightBytes;
  }

  // ---- CacheApplyObserver ----------------------------------------------------------------------

  applied(entries: readonly Entry[]): void {
    if (this.state !== 'live' && this.state !== 'snapshot') return;
    if (entries.length === 0) return;
    const bytes = packEntries(entries);
    if (this.inflightBytes > 0 && this.inflightBytes + bytes.byteLength > this.o.inflightBytesMax) {
      this.lose();
      return;
    }
    this.inflightBytes += bytes.byteLength;
    const first = entries[0] as Entry;
    const last = entries[entries.length - 1] as Entry;
    this.o.post(
      { type: 'mirror-entries', epoch: this.epoch, bytes, first: first.index, last: last.index },
      bytes.buffer as ArrayBuffer,
    );
  }

  replaced(): void {
    if (this.state === 'live' || this.state === 'snapshot') this.lose();
  }

  // ---- from the application thread -------------------------------------------------------------

  /** The mirror applied (or dropped) this many bytes of what was sent. */
  ack(bytes: number): void {
    this.inflightBytes -= bytes;
    assert(this.inflightBytes >= 0, `mirror acknowledged more than was sent (${this.inflightBytes})`);
    const wake = this.wakeRoom;
    this.wakeRoom = null;
    wake?.();
    if (this.state === 'lost' && this.inflightBytes === 0) this.resync();
  }

  /** The mirror found a gap or a snapshot it could not read in `epoch`: start over. */
  resyncRequested(epoch: number): void {
    if (epoch === this.epoch && (this.state === 'live' || this.state === 'snapshot')) this.lose();
  }

  close(): void {
    this.state = 'closed';
    const wake = this.wakeRoom;
    this.wakeRoom = null;
    wake?.();
  }

  // ---- epochs ----------------------------------------------------------------------------------

  private lose(): void {
    this.state = 'lost';
    this.o.post({ type: 'mirror-lost', epoch: this.epoch }, null);
    const wake = this.wakeRoom;
    this.wakeRoom = null;
    wake?.();
    if (this.inflightBytes === 0) queueMicrotask(() => this.resyncIfDrained());
  }

  private resyncIfDrained(): void {
    if (this.state === 'lost' && this.inflightBytes === 0) this.resync();
  }

  /**
   * A new epoch: the snapshot is captured synchronously here (writeSnapshot copies references
   * before its first await), so entries applied from now on follow it.
   */
  private resync(): void {
    const epoch = ++this.epoch;
    this.state = 'snapshot';
    this.o.post({ type: 'mirror-snapshot', epoch, index: this.o.sm.appliedIndex() }, null);
    const sending = this.o.sm.writeSnapshot(async (chunk) => {
      // A chunk may be a small view of a 1 MiB buffer: send only its bytes.
      const own = chunk.byteLength * 2 < chunk.buffer.byteLength ? chunk.slice() : chunk;
      const half = Math.floor(this.o.inflightBytesMax / 2);
      // Bounded: every round waits for an acknowledgement or the end of the epoch.
      while (this.inflightBytes > 0 && this.inflightBytes + own.byteLength > half) {
        if (this.epoch !== epoch || this.state !== 'snapshot') throw new Abandoned();
        await new Promise<void>((r) => {
          this.wakeRoom = r;
        });
      }
      if (this.epoch !== epoch || this.state !== 'snapshot') throw new Abandoned();
      this.inflightBytes += own.byteLength;
      this.o.post({ type: 'mirror-chunk', epoch, chunk: own }, own.buffer as ArrayBuffer);
    });
    sending.then(
      () => {
        if (this.epoch !== epoch || this.state !== 'snapshot') return;
        this.o.post({ type: 'mirror-snapshot-end', epoch }, null);
        this.state = 'live';
      },
      (e: unknown) => {
        if (e instanceof Abandoned || this.state === 'closed') return;
        if (this.epoch === epoch) this.state = 'lost';
        this.o.onError(e);
      },
    );
  }
}
