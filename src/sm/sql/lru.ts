/** A bounded least-recently-used map (prepared statements, parsed SQL). */
export class Lru<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(readonly entriesMax: number) {
    if (!(Number.isInteger(entriesMax) && entriesMax >= 1)) throw new RangeError('entriesMax must be >= 1');
  }

  get(key: K): V | undefined {
    const v = this.entries.get(key);
    if (v === undefined) return undefined;
    // Map keeps insertion order: re-inserting marks the entry as most recently used.
    this.entries.delete(key);
    this.entries.set(key, v);
    return v;
  }

  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.entriesMax) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
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
}
