/**
 * The bounded in-flight window of one follower in replicate state (etcd's tracker.Inflights):
 * each AppendEntries sent is recorded by its last index and payload bytes; an acknowledgement
 * up to index i frees every message whose last index is <= i. The window is full when either
 * the message count or the byte total reaches its maximum (at least one message may always be
 * in flight, so a single entry larger than the byte budget still makes progress).
 */
import { assert } from '../lib/assert.js';
import type { LogIndex } from './types.js';

export class Inflights {
  private readonly lastIndices: LogIndex[] = [];
  private readonly sizes: number[] = [];
  private head = 0;
  private bytesTotal = 0;

  constructor(
    readonly countMax: number,
    readonly bytesMax: number,
  ) {
    assert(countMax >= 1, 'inflight count max must be >= 1');
    assert(bytesMax >= 1, 'inflight bytes max must be >= 1');
  }

  get count(): number {
    return this.lastIndices.length - this.head;
  }

  get bytes(): number {
    return this.bytesTotal;
  }

  full(): boolean {
    return this.count >= this.countMax || (this.count > 0 && this.bytesTotal >= this.bytesMax);
  }

  add(lastIndex: LogIndex, bytes: number): void {
    assert(!this.full(), 'inflights: add to a full window');
    const n = this.count;
    if (n > 0)
      assert(lastIndex > (this.lastIndices[this.lastIndices.length - 1] as number), 'inflights out of order');
    this.lastIndices.push(lastIndex);
    this.sizes.push(bytes);
    this.bytesTotal += bytes;
  }

  /** Free every in-flight message whose last index is <= index. */
  freeLE(index: LogIndex): void {
    while (this.head < this.lastIndices.length && (this.lastIndices[this.head] as number) <= index) {
      this.bytesTotal -= this.sizes[this.head] as number;
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > this.lastIndices.length) {
      this.lastIndices.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
    if (this.count === 0) this.bytesTotal = 0;
  }

  /**
   * Free the oldest in-flight message. A heartbeat response proves the follower is reachable
   * while the window is full: if an append was lost, this lets one more go out and reveal the
   * gap through the follower's rejection (etcd's FreeFirstOne).
   */
  freeFirstOne(): void {
    const first = this.lastIndices[this.head];
    if (first !== undefined) this.freeLE(first);
  }

  reset(): void {
    this.lastIndices.length = 0;
    this.sizes.length = 0;
    this.head = 0;
    this.bytesTotal = 0;
  }
}
