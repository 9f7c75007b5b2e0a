/**
 * A bounded least-recently-used map (prepared statements, parsed SQL).
 *
 * A hit only stamps the entry with a counter: hits are the hot path (every query looks up its
 * statement) and must not mutate the Map. Eviction, on an insert beyond the bound, scans for
 * the smallest stamp: O(entriesMax), on a miss, which costs a SQLite prepare anyway.
 */
interface Slot<V> {
  value: V;
  used: number;
}

export class Lru<K, V> {
  private readonly entries = new Map<K, Slot<V>>();
  private clock = 0;

  constructor(readonly entriesMax: number) {
    if (!(Number.isInteger(entriesMax) && entriesMax >= 1)) throw new RangeError('entriesMax must be >= 1');
  }

  get(key: K): V | undefined {
    const slot = this.entries.get(key);
    if (slot === undefined) return undefined;
    slot.used = ++this.clock;
    return slot.value;
  }

  set(key: K, value: V): void {
    const slot = this.entries.get(key);
    if (slot !== undefined) {
      slot.value = value;
      slot.used = ++this.clock;
      return;
    }
    if (this.entries.size >= this.entriesMax) this.evictOldest();
    this.entries.set(key, { value, used: ++this.clock });
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private evictOldest(): void {
    let oldestKey: K | undefined;
    let oldest = Number.POSITIVE_INFINITY;
    for (const [key, slot] of this.entries) {
      if (slot.used < oldest) {
        oldest = slot.used;
        oldestKey = key;
      }
    }
    if (oldestKey !== undefined) this.entries.delete(oldestKey);
  }
}
