/**
 * The named caches (key → bytes with an optional expiry) and counter groups (key → int64) of
 * the cache state machine, with their expiry index and memory accounting. Pure and synchronous:
 * `nowMs` is always the state machine's log clock, passed in.
 *
 * Expiry: an entry with `expiresAtMs <= now` is expired. It is never returned, counts as absent
 * for putIfAbsent/replace/delete, and is physically removed by `purgeExpired` (the `expire`
 * command, or a write that would otherwise hit a capacity limit). The index is a min-heap in
 * (expiresAtMs, cache, key) order with lazy deletion, rebuilt from the live entries when stale
 * items outnumber them, so its size stays below 2 × entries with a TTL + 1024.
 *
 * Entries are never mutated (a put makes a new one; `decoded` is a reader's memo, not state),
 * so a snapshot can capture the maps by reference and stream them while later commands apply.
 */
import type { CacheErrorInfo, CacheLimitName } from './errors.js';
import { MinHeap } from './min-heap.js';
import type { CacheLimits } from './options.js';

export interface Entry {
  readonly value: Uint8Array;
  readonly expiresAtMs: number | null;
  /**
   * Not state: a local reader's memo of the decoded value (`getLocal`,
   * client/cache-local-values.ts), undefined until its first read of this entry. Never encoded,
   * compared or read by the state machine; set in every new entry so that all have one shape.
   */
  decoded: unknown;
}

export interface Cache {
  readonly entries: Map<string, Entry>;
  bytes: number;
  ttlCount: number;
}

export interface CounterGroup {
  readonly values: Map<string, bigint>;
  bytes: number;
}

interface ExpiryItem {
  readonly atMs: number;
  readonly cache: string;
  readonly key: string;
  readonly entry: Entry;
}

/** Accounted bytes of an entry besides key and value (map slot, entry object, index item). */
export const ENTRY_OVERHEAD_BYTES = 96;
/** Accounted bytes of a counter besides its key. */
export const COUNTER_OVERHEAD_BYTES = 64;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export class KvStore {
  readonly caches = new Map<string, Cache>();
  readonly counters = new Map<string, CounterGroup>();
  /** Accounted bytes of every entry and counter (what `bytesMax` bounds). */
  bytes = 0;
  private ttlCount = 0;
  private readonly expiry = new MinHeap<ExpiryItem>(expiryLess);

  constructor(private readonly limits: CacheLimits) {}

  /** The live value, or null when absent or expired at `nowMs`. */
  get(cacheName: string, key: string, nowMs: number): Uint8Array | null {
    const e = this.caches.get(cacheName)?.entries.get(key);
    return e === undefined || isExpired(e, nowMs) ? null : e.value;
  }

  /**
   * Stores `value` (expiring `ttlMs` after `nowMs`, or never) and returns the previous live value.
   * With `onlyIfAbsent`, a live value is left alone (and returned).
   */
  put(
    cacheName: string,
    key: string,
    value: Uint8Array,
    ttlMs: number | undefined,
    nowMs: number,
    onlyIfAbsent: boolean,
  ): { previous: Uint8Array | null; stored: boolean } | CacheErrorInfo {
    const tooLarge =
      checkBytes('cache name', cacheName, this.limits.keyBytesMax, 'keyBytesMax') ??
      checkBytes('key', key, this.limits.keyBytesMax, 'keyBytesMax');
    if (tooLarge !== undefined) return tooLarge;
    if (value.length > this.limits.valueBytesMax) {
      return tooLargeError('value', value.length, this.limits.valueBytesMax, 'valueBytesMax');
    }
    const existing = this.caches.get(cacheName);
    const current = existing?.entries.get(key);
    const previous = current === undefined || isExpired(current, nowMs) ? null : current.value;
    if (onlyIfAbsent && previous !== null) return { previous, stored: false };
    const added = ENTRY_OVERHEAD_BYTES + utf8Length(key) + value.length;
    // The common case, an overwrite that fits: the capacity checks below would all pass.
    const fits =
      existing !== undefined &&
      current !== undefined &&
      this.bytes + added - entryBytes(key, current) <= this.limits.bytesMax;
    if (!fits) {
      const delta = () => added - entryBytes(key, this.caches.get(cacheName)?.entries.get(key));
      const full = this.capacity(cacheName, 'cache', key, delta, nowMs);
      if (full !== null) return full;
    }
    const cache = fits ? existing : this.cacheFor(cacheName);
    const entry: Entry = {
      value,
      expiresAtMs: ttlMs === undefined ? null : nowMs + ttlMs,
      decoded: undefined,
    };
    // The slot may have gone with a purge in capacity(): read it again.
    const replaced = fits ? current : cache.entries.get(key);
    if (replaced !== undefined) this.unaccount(cache, key, replaced);
    cache.entries.set(key, entry);
    cache.bytes += added;
    this.bytes += added;
    if (entry.expiresAtMs !== null) {
      cache.ttlCount++;
      this.ttlCount++;
      this.expiry.push({ atMs: entry.expiresAtMs, cache: cacheName, key, entry });
      this.compactExpiryIndex();
    }
    return { previous, stored: true };
  }

  /** Removes the entry; returns its value when it was live. */
  remove(cacheName: string, key: string, nowMs: number): Uint8Array | null {
    const cache = this.caches.get(cacheName);
    const e = cache?.entries.get(key);
    if (cache === undefined || e === undefined) return null;
    this.removeEntry(cacheName, cache, key, e);
    return isExpired(e, nowMs) ? null : e.value;
  }

  /** Removes every entry of one cache; returns how many were live. */
  clear(cacheName: string, nowMs: number): number {
    const cache = this.caches.get(cacheName);
    if (cache === undefined) return 0;
    const live = liveCount(cache, nowMs);
    this.bytes -= cache.bytes;
    this.ttlCount -= cache.ttlCount;
    this.caches.delete(cacheName);
    this.compactExpiryIndex();
    return live;
  }

  /** Removes every cache (and counter group when `counters`); returns the live entries removed. */
  clearAll(counters: boolean, nowMs: number): number {
    let removed = 0;
    for (const cache of this.caches.values()) {
      removed += liveCount(cache, nowMs);
      this.bytes -= cache.bytes;
    }
    this.caches.clear();
    this.ttlCount = 0;
    this.expiry.clear();
    if (counters) {
      for (const g of this.counters.values()) {
        removed += g.values.size;
        this.bytes -= g.bytes;
      }
      this.counters.clear();
    }
    return removed;
  }

  /**
   * Physically removes expired entries, earliest expiry first, at most `max`; `more` says whether
   * expired ones remain.
   */
  purgeExpired(nowMs: number, max: number): { removed: number; more: boolean } {
    let removed = 0;
    for (;;) {
      const top = this.expiry.peek();
      if (top === undefined || top.atMs > nowMs) return { removed, more: false };
      const cache = this.caches.get(top.cache);
      const live = cache?.entries.get(top.key) === top.entry;
      if (live && removed >= max) return { removed, more: true };
      this.expiry.pop();
      if (live) {
        this.removeEntry(top.cache, cache!, top.key, top.entry);
        removed++;
      }
    }
  }

  /** The earliest expiry in the index (possibly of an entry already gone), or null. */
  nextExpiryMs(): number | null {
    return this.expiry.peek()?.atMs ?? null;
  }

  counterGet(group: string, key: string): bigint | null {
    return this.counters.get(group)?.values.get(key) ?? null;
  }

  /** Sets (`add` false) or adds (saturating at the int64 bounds); returns the new value. */
  counterWrite(group: string, key: string, n: bigint, add: boolean, nowMs: number): bigint | CacheErrorInfo {
    const tooLarge =
      checkBytes('counter name', group, this.limits.keyBytesMax, 'keyBytesMax') ??
      checkBytes('key', key, this.limits.keyBytesMax, 'keyBytesMax');
    if (tooLarge !== undefined) return tooLarge;
    const current = this.counters.get(group)?.values.get(key);
    const value = add ? saturate((current ?? 0n) + n) : n;
    if (current === undefined) {
      const added = COUNTER_OVERHEAD_BYTES + utf8Length(key);
      const full = this.capacity(group, 'counter', key, () => added, nowMs);
      if (full !== null) return full;
      const g = this.groupFor(group);
      g.bytes += added;
      this.bytes += added;
      g.values.set(key, value);
    } else {
      this.counters.get(group)!.values.set(key, value);
    }
    return value;
  }

  counterDelete(group: string, key: string): boolean {
    const g = this.counters.get(group);
    if (g === undefined || !g.values.delete(key)) return false;
    const bytes = COUNTER_OVERHEAD_BYTES + utf8Length(key);
    g.bytes -= bytes;
    this.bytes -= bytes;
    if (g.values.size === 0) this.counters.delete(group);
    return true;
  }

  counterClear(group: string): number {
    const g = this.counters.get(group);
    if (g === undefined) return 0;
    this.bytes -= g.bytes;
    this.counters.delete(group);
    return g.values.size;
  }

  /** Inserts an entry read from a snapshot (no limit checks: the snapshot's state was valid). */
  restoreEntry(cacheName: string, key: string, entry: Entry): void {
    const cache = this.cacheFor(cacheName);
    const bytes = ENTRY_OVERHEAD_BYTES + utf8Length(key) + entry.value.length;
    cache.entries.set(key, entry);
    cache.bytes += bytes;
    this.bytes += bytes;
    if (entry.expiresAtMs !== null) {
      cache.ttlCount++;
      this.ttlCount++;
    }
  }

  restoreCounter(group: string, key: string, value: bigint): void {
    const g = this.groupFor(group);
    const bytes = COUNTER_OVERHEAD_BYTES + utf8Length(key);
    g.values.set(key, value);
    g.bytes += bytes;
    this.bytes += bytes;
  }

  /** Builds the expiry index from the entries (after a restore, or when stale items pile up). */
  rebuildExpiryIndex(): void {
    const items: ExpiryItem[] = [];
    for (const [cacheName, cache] of this.caches) {
      if (cache.ttlCount === 0) continue;
      for (const [key, entry] of cache.entries) {
        if (entry.expiresAtMs !== null) items.push({ atMs: entry.expiresAtMs, cache: cacheName, key, entry });
      }
    }
    this.expiry.rebuild(items);
  }

  /** Size of the expiry index, stale items included (tests check its bound). */
  get expiryIndexSize(): number {
    return this.expiry.size;
  }

  // ---- internals -----------------------------------------------------------------------------

  /**
   * Whether one more entry fits in `name` (`delta`: how many bytes the write adds, read afresh at
   * each check); when not, expired entries are purged first and the check repeated. Null when it
   * fits, else the HQL_CACHE_FULL error.
   */
  private capacity(
    name: string,
    kind: 'cache' | 'counter',
    key: string,
    delta: () => number,
    nowMs: number,
  ): CacheErrorInfo | null {
    let fault = this.capacityFault(name, kind, key, delta());
    if (fault !== null) {
      this.purgeExpired(nowMs, Number.POSITIVE_INFINITY);
      fault = this.capacityFault(name, kind, key, delta());
    }
    if (fault === null) return null;
    const what: Record<typeof fault, string> = {
      entriesPerCacheMax: `${kind} '${name}' holds ${this.limits.entriesPerCacheMax} entries (entriesPerCacheMax)`,
      cachesMax: `${this.caches.size + this.counters.size} caches and counter groups exist (cachesMax ${this.limits.cachesMax})`,
      bytesMax: `caches and counters hold ${this.bytes} of ${this.limits.bytesMax} bytes (bytesMax)`,
    };
    return { code: 'HQL_CACHE_FULL', message: `cache full: ${what[fault]}`, limit: fault };
  }

  private capacityFault(
    name: string,
    kind: 'cache' | 'counter',
    key: string,
    bytes: number,
  ): 'entriesPerCacheMax' | 'cachesMax' | 'bytesMax' | null {
    const map = kind === 'cache' ? this.caches.get(name)?.entries : this.counters.get(name)?.values;
    if (map === undefined && this.caches.size + this.counters.size >= this.limits.cachesMax)
      return 'cachesMax';
    if (map !== undefined && !map.has(key) && map.size >= this.limits.entriesPerCacheMax) {
      return 'entriesPerCacheMax';
    }
    if (bytes > 0 && this.bytes + bytes > this.limits.bytesMax) return 'bytesMax';
    return null;
  }

  private cacheFor(name: string): Cache {
    let cache = this.caches.get(name);
    if (cache === undefined) {
      cache = { entries: new Map(), bytes: 0, ttlCount: 0 };
      this.caches.set(name, cache);
    }
    return cache;
  }

  private groupFor(name: string): CounterGroup {
    let g = this.counters.get(name);
    if (g === undefined) {
      g = { values: new Map(), bytes: 0 };
      this.counters.set(name, g);
    }
    return g;
  }

  private removeEntry(cacheName: string, cache: Cache, key: string, e: Entry): void {
    cache.entries.delete(key);
    this.unaccount(cache, key, e);
    if (cache.entries.size === 0) this.caches.delete(cacheName);
  }

  private unaccount(cache: Cache, key: string, e: Entry): void {
    const bytes = entryBytes(key, e);
    cache.bytes -= bytes;
    this.bytes -= bytes;
    if (e.expiresAtMs !== null) {
      cache.ttlCount--;
      this.ttlCount--;
    }
  }

  private compactExpiryIndex(): void {
    if (this.expiry.size > 2 * this.ttlCount + 1024) this.rebuildExpiryIndex();
  }
}

export function isExpired(e: Entry, nowMs: number): boolean {
  return e.expiresAtMs !== null && e.expiresAtMs <= nowMs;
}

function liveCount(cache: Cache, nowMs: number): number {
  if (cache.ttlCount === 0) return cache.entries.size;
  let n = 0;
  for (const e of cache.entries.values()) if (!isExpired(e, nowMs)) n++;
  return n;
}

function entryBytes(key: string, e: Entry | undefined): number {
  return e === undefined ? 0 : ENTRY_OVERHEAD_BYTES + utf8Length(key) + e.value.length;
}

function expiryLess(a: ExpiryItem, b: ExpiryItem): boolean {
  if (a.atMs !== b.atMs) return a.atMs < b.atMs;
  if (a.cache !== b.cache) return a.cache < b.cache;
  return a.key < b.key;
}

export function saturate(v: bigint): bigint {
  return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : v;
}

/** UTF-8 length of a string without encoding it (lone surrogates count as U+FFFD, 3 bytes). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

export function checkBytes(
  what: string,
  s: string,
  max: number,
  limit: CacheLimitName,
): CacheErrorInfo | undefined {
  // Cheap first: a string of at most max/3 UTF-16 units cannot exceed max bytes.
  if (s.length * 3 <= max) return undefined;
  const n = utf8Length(s);
  return n > max ? tooLargeError(what, n, max, limit) : undefined;
}

export function tooLargeError(what: string, n: number, max: number, limit: CacheLimitName): CacheErrorInfo {
  return {
    code: 'HQL_CACHE_TOO_LARGE',
    message: `${what} of ${n} bytes is larger than ${max} bytes (${limit})`,
    limit,
  };
}
