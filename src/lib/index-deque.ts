/**
 * A growable array with cheap removal at both ends: per-index tables of a log (appended and
 * truncated at the back, purged at the front) and FIFO queues. `get(i)` is O(1). A removed slot
 * is cleared at once, so the deque never keeps a removed item alive (a log cache of 900 KB
 * entries once held every evicted entry until 1,024 had been evicted); the emptied front of the
 * backing array is reclaimed by compacting once it makes up half of it.
 */
import { assert } from './assert.js';

const COMPACT_AFTER = 1024;

export class IndexDeque<T> {
  private items: Array<T | undefined> = [];
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

  /** Removes and returns the first item (undefined when empty). */
  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const item = this.items[this.head] as T;
    this.dropFront(1);
    return item;
  }

  /** Keeps the first `length` items. */
  truncate(length: number): void {
    assert(length >= 0 && length <= this.length, `deque truncate to ${length} of ${this.length}`);
    this.items.length = this.head + length;
  }

  /** Removes the first `count` items. */
  dropFront(count: number): void {
    assert(count >= 0 && count <= this.length, `deque dropFront ${count} of ${this.length}`);
    if (count === this.length) {
      this.clear();
      return;
    }
    // Bounded by count: each removed slot is cleared so its item can be collected.
    for (let i = 0; i < count; i++) this.items[this.head + i] = undefined;
    this.head += count;
    if (this.head >= COMPACT_AFTER && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
