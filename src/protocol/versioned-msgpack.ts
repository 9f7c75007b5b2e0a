/**
 * The payload form of replicated commands (the SQL and the cache state machines): one format
 * version byte, then standard msgpack (no msgpackr records, so other languages can produce it).
 * Decoding treats its input as untrusted: whatever is wrong is reported through `malformed`.
 */
import { MapsPackr } from './msgpack-maps.js';

const packr = new MapsPackr({ useRecords: false });

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
): unknown {
  if (!(bytes instanceof Uint8Array) || bytes.length < 2) malformed('command', 'too short');
  if (bytes[0] !== version) {
    malformed('command', `unsupported format version ${bytes[0]} (this node understands ${version})`);
  }
  try {
    return packr.unpack(bytes.subarray(1));
  } catch (e) {
    return malformed('command', `not valid msgpack: ${e instanceof Error ? e.message : String(e)}`);
  }
}
