/**
 * What a cache value (and a notification's payload) may be: a value that reads back as itself.
 * Values travel as standard msgpack (no msgpackr records), decoded with maps as plain objects, so
 * that every client and the HTTP routes read the same bytes. Accepted, and read back equal:
 * `null`, booleans, numbers (`-0` reads back as `0`), strings, bigints in the int64/uint64 range,
 * `Uint8Array`s (a `Buffer` reads back as a `Uint8Array`), `Date`s, arrays and plain objects
 * (prototype `Object.prototype` or `null`) of these, `undefined` inside them, nested at most
 * CACHE_VALUE_DEPTH_MAX deep.
 *
 * Everything else is refused with the reason, before anything is proposed: before, msgpackr
 * stored it in another shape (a `Map` or a class instance read back as a plain object, a `Set`,
 * `RegExp` or `Error` as an array, a `Float32Array` or `ArrayBuffer` as bytes, a key `__proto__`
 * as `__proto_`, a lone surrogate as U+FFFD, a symbol key as nothing), and a `Map` with an object
 * or array key was stored as msgpack no reader could decode: every read of it, every `entries()`
 * of its cache and every listener of its channel failed with HQL_MALFORMED_COMMAND.
 *
 * `cacheValueProblem` checks a caller's value (the clients, the HTTP routes' JSON);
 * `cacheValueBytesProblem` checks bytes a remote client encoded (adoptClientCacheCommand): they
 * must decode, to a value of the same rules.
 */
import { Packr } from 'msgpackr';
import { isWellFormed } from '../../lib/utf8.js';
import { msgpackProblem } from '../../protocol/msgpack-check.js';

/** How deep arrays and objects may nest in a cache value (a cycle is refused as too deep). */
export const CACHE_VALUE_DEPTH_MAX = 256;

/** Keys of one object in a cache value (msgpack maps of the value codec have a 16-bit count). */
export const CACHE_VALUE_KEYS_MAX = 65_535;

/**
 * The codec of cache values. copyBuffers: a decoded binary value must not be a view of the stored
 * bytes (a caller writing into it would change the replica). writeFunction: msgpack has no
 * functions, and msgpackr would otherwise store one as nothing (checked first by
 * cacheValueProblem; kept as a second guard).
 */
export const cacheValuePackr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: 'bigint',
  copyBuffers: true,
  writeFunction: () => {
    throw new Error('a function is not a msgpack value');
  },
});

/** Null when `value` may be stored as a cache value, else why not (naming where in it). */
export function cacheValueProblem(value: unknown): string | null {
  const checked = checkedCacheValue(value);
  return checked instanceof ValueProblem ? checked.reason : null;
}

/**
 * `value` checked as cacheValueProblem does, and copied as it was read: its arrays and objects are
 * new ones holding what each element and property was when it was checked (a Uint8Array, a Date
 * and a primitive as they are). Pack the copy, not `value`: each getter of `value` runs once, so a
 * getter that answers something else the second time (a Map after a plain object) cannot put
 * bytes no reader decodes into the replicas.
 */
export function checkedCacheValue(value: unknown): unknown | ValueProblem {
  if (value === undefined) return new ValueProblem('a cache value cannot be undefined');
  return checkedAt(value, 'the value', 0);
}

/** Why a value is refused (checkedCacheValue). */
export class ValueProblem {
  constructor(readonly reason: string) {}
}

/** Null when `bytes` (msgpack from a remote client) decode to a value cacheValueProblem accepts. */
export function cacheValueBytesProblem(bytes: Uint8Array): string | null {
  // First without recursion: a string that is not UTF-8 (decoded, it became U+FFFD) and a value
  // nested deeper than any reader takes are refused before the decoder sees them.
  const shape = msgpackProblem(bytes, CACHE_VALUE_DEPTH_MAX);
  if (shape !== null) return `the value is not msgpack a reader can decode as it was sent (${shape})`;
  let v: unknown;
  try {
    v = cacheValuePackr.unpack(bytes);
  } catch (e) {
    return `the value is not msgpack a reader can decode (${e instanceof Error ? e.message : String(e)})`;
  }
  if (v === undefined) return null;
  const checked = checkedAt(v, 'the value', 0);
  return checked instanceof ValueProblem ? checked.reason : null;
}

/** `where` for a message: a path nested hundreds deep is shortened to its ends. */
function shortPath(where: string): string {
  return where.length <= 120 ? where : `${where.slice(0, 60)}…${where.slice(-40)}`;
}

function checkedAt(v: unknown, where: string, depth: number): unknown | ValueProblem {
  switch (typeof v) {
    case 'undefined':
    case 'boolean':
    case 'number':
    case 'bigint':
      return v;
    case 'string':
      return isWellFormed(v)
        ? v
        : new ValueProblem(
            `${shortPath(where)} holds a lone UTF-16 surrogate (it would read back as U+FFFD)`,
          );
    case 'function':
      return new ValueProblem(`${shortPath(where)} is a function: not a msgpack value`);
    case 'symbol':
      return new ValueProblem(`${shortPath(where)} is a symbol: not a msgpack value`);
  }
  if (v === null) return v;
  if (v instanceof Date)
    return Number.isNaN(v.getTime())
      ? new ValueProblem(`${shortPath(where)} is an invalid Date (it would read back as null)`)
      : v;
  if (depth >= CACHE_VALUE_DEPTH_MAX)
    return new ValueProblem(
      `${shortPath(where)} is nested more than ${CACHE_VALUE_DEPTH_MAX} levels deep (or is part of a cycle)`,
    );
  const proto: unknown = Object.getPrototypeOf(v);
  if (Array.isArray(v)) {
    if (proto !== Array.prototype)
      return new ValueProblem(`${shortPath(where)} is a subclass of Array: pass a plain array`);
    // msgpack holds an array's elements only: named properties beside them would be left out.
    const keys = Object.keys(v);
    if (keys.length > v.length || Object.getOwnPropertySymbols(v).length > 0) {
      const named = keys.find((k) => !/^(0|[1-9][0-9]*)$/.test(k));
      return new ValueProblem(
        `${shortPath(where)} is an array with ${named === undefined ? 'a symbol' : `the named property "${named.length > 40 ? `${named.slice(0, 40)}…` : named}"`} beside its elements (it would be left out): pass a plain array, or an object`,
      );
    }
    const n = v.length;
    const copy: unknown[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const x = checkedAt(v[i], `${where}[${i}]`, depth + 1);
      if (x instanceof ValueProblem) return x;
      copy[i] = x;
    }
    return copy;
  }
  if (v instanceof Uint8Array) return v;
  if (proto === Object.prototype || proto === null) {
    const o = v as Record<string, unknown>;
    if (Object.getOwnPropertySymbols(o).length > 0)
      return new ValueProblem(
        `${shortPath(where)} has a symbol key: not a msgpack value (it would be left out)`,
      );
    const keys = Object.keys(o);
    // msgpackr writes an object with a 16-bit key count (its fast path): more keys did not encode.
    if (keys.length > CACHE_VALUE_KEYS_MAX)
      return new ValueProblem(
        `${shortPath(where)} has ${keys.length} keys, more than an object in a cache value can have (${CACHE_VALUE_KEYS_MAX}): split it, or store its entries as an array`,
      );
    const copy: Record<string, unknown> = {};
    for (const k of keys) {
      if (k === '__proto__')
        return new ValueProblem(
          `${shortPath(where)} has the key "__proto__", which cannot be read back as such`,
        );
      if (!isWellFormed(k))
        return new ValueProblem(
          `${shortPath(where)} has a key with a lone UTF-16 surrogate (it would read back as U+FFFD)`,
        );
      const x = checkedAt(o[k], `${where}.${k.length > 40 ? `${k.slice(0, 40)}…` : k}`, depth + 1);
      if (x instanceof ValueProblem) return x;
      copy[k] = x;
    }
    return copy;
  }
  return new ValueProblem(`${shortPath(where)} is ${described(v as object)}`);
}

/** Why an object other than a plain object, array, Uint8Array or Date is refused, with the way out. */
function described(v: object): string {
  if (v instanceof Map) return 'a Map, which would read back as a plain object: pass Object.fromEntries(map)';
  if (v instanceof Set) return 'a Set, which would read back as an array: pass [...set]';
  if (ArrayBuffer.isView(v))
    return `a ${v.constructor.name}, which would read back as its bytes: pass a Uint8Array (new Uint8Array(x.buffer, x.byteOffset, x.byteLength))`;
  if (v instanceof ArrayBuffer || v instanceof SharedArrayBuffer)
    return `an ${v.constructor.name}: pass a Uint8Array of it (new Uint8Array(buffer))`;
  const name =
    typeof v.constructor === 'function' && v.constructor.name !== '' ? v.constructor.name : 'an object';
  return `an instance of ${name}, which would not read back as one: only plain objects, arrays, Uint8Array and Date are stored (convert it, e.g. to a plain object)`;
}
