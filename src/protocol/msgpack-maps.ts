/**
 * msgpack decoding whose maps keep every key. msgpackr, decoding maps as objects, renames a key
 * `__proto__` to `__proto_` (so that a map cannot set an object's prototype): a column
 * `__proto__` of a row read remotely came back as `__proto_` (overwriting a real `__proto_`
 * column), and a named parameter `__proto__` of a write was missing when the write applied.
 *
 * Bytes that hold `__proto__` anywhere (a key, or only a string value: the check does not tell
 * them apart, it looks for the nine bytes) are decoded with maps as Maps, then made objects
 * whose `__proto__` is an own property; all other bytes go msgpackr's fast path unchanged.
 */
import { Buffer } from 'node:buffer';
import { type Options, Packr } from 'msgpackr';

const PROTO_KEY = Buffer.from('__proto__', 'latin1');

/** Whether the bytes hold the string `__proto__` anywhere (then they take the slow path). */
export function holdsProtoKey(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(PROTO_KEY) !== -1;
}

/** A decoded value with its Maps made objects (keys as strings; `__proto__` an own property). */
function objectsOf(v: unknown): unknown {
  if (v instanceof Map) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v) {
      const key = String(k);
      const value = objectsOf(x);
      if (key === '__proto__') {
        Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
      } else o[key] = value;
    }
    return o;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = objectsOf(v[i]);
  }
  return v;
}

/**
 * A Packr (maps as objects) whose unpack keeps a key `__proto__`. The options are msgpackr's;
 * `mapsAsObjects` is implied.
 */
export class MapsPackr {
  private readonly fast: Packr;
  private readonly slow: Packr;

  constructor(options: Omit<Options, 'mapsAsObjects'>) {
    this.fast = new Packr({ ...options, mapsAsObjects: true });
    this.slow = new Packr({ ...options, mapsAsObjects: false });
  }

  pack(value: unknown): Buffer {
    return this.fast.pack(value);
  }

  unpack(bytes: Uint8Array): unknown {
    return holdsProtoKey(bytes) ? objectsOf(this.slow.unpack(bytes)) : this.fast.unpack(bytes);
  }
}
