/**
 * Decoded cache values for `cache(name).getLocal(key)`: the synchronous local read (issue 12).
 *
 * A stored entry is never changed (a write stores a new entry object, sm/cache/kv.ts), so its
 * value is decoded once, at the first `getLocal` of that entry, and kept beside the bytes in the
 * entry's `decoded` slot: later reads of the same version are a lookup, a newer version (put,
 * replace) is a new entry, and a version that left the replica (deleted, expired and purged, a
 * snapshot installed) is collected with its entry. Expiry is not judged here: the replica
 * returns only live entries. Memory: a value read this way is held twice (bytes and decoded)
 * while its entry lives; the `cache_*` bounds count the bytes only.
 *
 * A value handed to several callers must not let one of them change what the others (or the
 * next read) see, so a decoded value is shared only when it can be made immutable:
 *
 * - primitives, and plain objects and arrays of them (deep-frozen once, at the first read): the
 *   same frozen value for every read; writing to it throws in strict mode, and is ignored
 *   silently in sloppy mode;
 * - a `Uint8Array` value (typed arrays cannot be frozen): decoded once, a copy per read (one
 *   allocation and a copy of the bytes: `getLocal` of a large binary value costs its size);
 * - anything else (a `Uint8Array` or a msgpack extension such as a `Date` inside an object, or
 *   nesting deeper than `SHARED_DEPTH_MAX`): decoded afresh per read, as `get()` does.
 */
import { decodeCacheValue } from './cache-client.js';

/** A stored version of one key (sm/cache/kv.ts `Entry`). */
export interface LocalCacheEntry {
  readonly value: Uint8Array;
  readonly expiresAtMs: number | null;
  /** This module's memo (undefined until the first read). */
  decoded: unknown;
}

/** Deeper values are decoded per read instead of frozen (the freeze walk is recursive). */
export const SHARED_DEPTH_MAX = 64;

/** A decoded value that cannot be shared between reads: copied bytes, or decoded per read. */
class PerRead {
  constructor(readonly bytes: Uint8Array | null) {}
}

/** The decoded value of `entry`, safe to hand to a caller (see above). */
export function localValueOf(entry: LocalCacheEntry): unknown {
  let d = entry.decoded;
  if (d === undefined) {
    // Never undefined after this: msgpack has no undefined, and PerRead is an object.
    d = sharedForm(decodeCacheValue(entry.value));
    entry.decoded = d;
  }
  if (!(d instanceof PerRead)) return d;
  return d.bytes === null ? decodeCacheValue(entry.value) : d.bytes.slice();
}

/** The value itself once deep-frozen, or a PerRead telling how to hand it out per read. */
function sharedForm(v: unknown): unknown {
  if (v instanceof Uint8Array) return new PerRead(v);
  return freezable(v, 0) ? deepFreeze(v) : new PerRead(null);
}

function freezable(v: unknown, depth: number): boolean {
  if (v === null || typeof v !== 'object') return true;
  if (depth >= SHARED_DEPTH_MAX) return false;
  if (Array.isArray(v)) return v.every((x) => freezable(x, depth + 1));
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const k of Object.keys(v)) if (!freezable((v as Record<string, unknown>)[k], depth + 1)) return false;
  return true;
}

/** Freezes a value `freezable` accepted, depth first. */
function deepFreeze<T>(v: T): T {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) for (const x of v) deepFreeze(x);
  else for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  return Object.freeze(v);
}
