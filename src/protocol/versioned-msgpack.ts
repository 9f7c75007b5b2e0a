/**
 * The payload form of replicated commands (the SQL and the cache state machines): one format
 * version byte, then standard msgpack (no msgpackr records, so other languages can produce it).
 * Decoding treats its input as untrusted: whatever is wrong is reported through `malformed`.
 */
import { Packr } from 'msgpackr';
import { MapsPackr } from './msgpack-maps.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
/** For payloads with maps keyed by the user's strings (a SQL command's named parameters). */
const keyedPackr = new MapsPackr({ useRecords: false });

/** `version` followed by the msgpack of `value`, in a fresh buffer. */
export function packVersioned(version: number, value: unknown): Uint8Array {
  const packed = packr.pack(value);
  // A fresh buffer: msgpackr's output may be a view of its reusable internal buffer.
  const out = new Uint8Array(packed.length + 1);
  out[0] = version;
  out.set(packed, 1);
  return out;
}

/** The value of bytes made by packVersioned(version, …); anything else goes to `malformed`. */
export function unpackVersioned(
  bytes: Uint8Array,
  version: number,
  malformed: (path: string, why: string) => never,
  /**
   * 'user': the payload may hold maps keyed by the user's strings, whose key `__proto__` must
   * stay a key (msgpack-maps.ts); 'fixed': only the format's own keys (a cache command).
   */
  keys: 'user' | 'fixed' = 'fixed',
): unknown {
  if (!(bytes instanceof Uint8Array) || bytes.length < 2) malformed('command', 'too short');
  if (bytes[0] !== version) {
    malformed('command', `unsupported format version ${bytes[0]} (this node understands ${version})`);
  }
  try {
    return (keys === 'user' ? keyedPackr : packr).unpack(bytes.subarray(1));
  } catch (e) {
    return malformed('command', `not valid msgpack: ${e instanceof Error ? e.message : String(e)}`);
  }
}
