/**
 * A growable array with cheap removal at both ends, for per-index tables of a log that is
 * appended and truncated at the back and purged at the front. `get(i)` is O(1); removed front
 * slots are reclaimed by compacting once they make up half the backing array.
 */
import { assert } from '../lib/assert.js';

const COMPACT_AFTER = 1024;

export class IndexDeque<T> {
  private items: T[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  get(i: number): T {
    assert(i >= 0 && i < this.length, `deque index ${i} outside [0, ${this.length})`);
    return this.items[this.head + i] as T;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** Keeps the first `length` items. */
  truncate(length: number): void {
    assert(length >= 0 && length <= this.length, `deque truncate to ${length} of ${this.length}`);
    this.items.length = this.head + length;
  }

  /** Removes the first `count` items. */
  dropFront(count: number): void {
    assert(count >= 0 && count <= this.length, `deque dropFront ${count} of ${this.length}`);
    this.head += count;
    if (this.head === this.items.length) {
      this.clear();
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
