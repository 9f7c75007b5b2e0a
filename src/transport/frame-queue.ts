/**
 * A FIFO of encoded frames waiting for a socket, bounded by frame count and by bytes. `push`
 * refuses what does not fit (the caller drops the message: Raft tolerates loss and resends);
 * `pushAlways` is for snapshot frames whose sender already waited for room.
 */
import { assert } from '../lib/assert.js';
import { IndexDeque } from '../lib/index-deque.js';

export class FrameQueue {
  private readonly items = new IndexDeque<Uint8Array>();
  private bytesQueued = 0;

  constructor(
    readonly framesMax: number,
    readonly bytesMax: number,
  ) {
    assert(framesMax >= 1 && bytesMax >= 1, 'queue bounds');
  }

  get length(): number {
    return this.items.length;
  }

  get bytes(): number {
    return this.bytesQueued;
  }

  /** Appends `frame` if both bounds allow it; false (and nothing queued) otherwise. */
  push(frame: Uint8Array): boolean {
    if (this.length >= this.framesMax || this.bytesQueued + frame.byteLength > this.bytesMax) return false;
    this.pushAlways(frame);
    return true;
  }

  pushAlways(frame: Uint8Array): void {
    this.items.push(frame);
    this.bytesQueued += frame.byteLength;
  }

  /** True when at most half of each bound is used: a waiting snapshot sender may continue. */
  hasHalfRoom(): boolean {
    return this.length * 2 <= this.framesMax && this.bytesQueued * 2 <= this.bytesMax;
  }

  /** Removes the oldest frames, at least one and then as many as fit in `bytesMax`. */
  takeBatch(bytesMax: number): Uint8Array[] {
    const batch: Uint8Array[] = [];
    let bytes = 0;
    while (this.items.length > 0) {
      const next = this.items.get(0);
      if (batch.length > 0 && bytes + next.byteLength > bytesMax) break;
      batch.push(next);
      bytes += next.byteLength;
      this.items.dropFront(1);
    }
    this.bytesQueued -= bytes;
    return batch;
  }

  /** Drops everything; returns how many frames were dropped. */
  clear(): number {
    const dropped = this.length;
    this.items.clear();
    this.bytesQueued = 0;
    return dropped;
  }
}
