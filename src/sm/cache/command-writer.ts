/**
 * The leader's fast path for encoding the common cache commands (put, replace, putIfAbsent,
 * delete, get, getRemove, with or without a session): the envelope's bytes written directly,
 * byte for byte what `packVersioned` (msgpackr) gives for the validated envelope, with the
 * validation folded in. It takes only what it can write exactly — plain objects of exactly the
 * expected fields, safe non-negative integers, ASCII strings shorter than 65,536 characters,
 * plain byte arrays — and returns null for anything else, so the generic path (command.ts)
 * encodes it or reports the error, with the same codes and messages as always.
 * `test/sm/cache-command-writer.test.ts` compares the two on random envelopes.
 *
 * msgpackr's choices reproduced here: maps as map16 (its default without `variableMapSize`), strings in their shortest header
 * (fixstr, str8, str16), integers up to 2^32 − 1 in their shortest unsigned form and larger
 * ones as float64, byte arrays as bin8/16/32.
 */
import { SESSION_PROTECT_MS_MAX, SESSION_PROTECT_MS_MIN } from '../../lib/client-session.js';
import type { CacheCommand, CacheCommandEnvelope } from './command.js';

/** The limits the generic validation applies to the fields written here. */
export interface WriterBounds {
  readonly formatVersion: number;
  readonly nowMsMax: number;
  readonly durationMsMax: number;
}

const STR16_MAX = 0xffff;

/** A float64's bytes, read big-endian whatever the machine's order (no DataView per number). */
const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const F64_ORDER = (() => {
  F64[0] = 2; // 0x4000000000000000: the sign/exponent byte is the big-endian first
  return F64_BYTES[7] === 0x40 ? [7, 6, 5, 4, 3, 2, 1, 0] : [0, 1, 2, 3, 4, 5, 6, 7];
})();

/**
 * Encoded bytes and the validated envelope, or null: use the generic path. The envelope's value
 * is a view of the bytes' copy of it (not the caller's array; one allocation less): replicated
 * bytes are never written to, and cache values are decoded with copies before they are returned.
 */
export function writeCommonEnvelope(
  envelope: CacheCommandEnvelope,
  bounds: WriterBounds,
): { bytes: Uint8Array; envelope: CacheCommandEnvelope } | null {
  if (
    envelope === null ||
    typeof envelope !== 'object' ||
    Object.getPrototypeOf(envelope) !== Object.prototype
  )
    return null;
  const { nowMs, session, command } = envelope;
  if (!isUint(nowMs, 0, bounds.nowMsMax)) return null;
  const envelopeKeys = session === undefined ? 2 : 3;
  if (countKeys(envelope) !== envelopeKeys) return null;
  let clientId = '';
  let seq = 0;
  let protectMs: number | undefined;
  let sessionKeys = 2;
  if (session !== undefined) {
    if (
      session === null ||
      typeof session !== 'object' ||
      Object.getPrototypeOf(session) !== Object.prototype
    )
      return null;
    clientId = session.clientId;
    seq = session.seq;
    protectMs = session.protectMs;
    if (protectMs !== undefined) {
      if (!isUint(protectMs, SESSION_PROTECT_MS_MIN, SESSION_PROTECT_MS_MAX)) return null;
      sessionKeys = 3;
    }
    if (countKeys(session) !== sessionKeys) return null;
    if (!isAscii(clientId) || clientId.length === 0 || !isUint(seq, 0, Number.MAX_SAFE_INTEGER)) return null;
  }
  if (command === null || typeof command !== 'object' || Object.getPrototypeOf(command) !== Object.prototype)
    return null;
  const c = command as unknown as Record<string, unknown>;
  const type = c.type;
  const cache = c.cache;
  const key = c.key;
  if (!isAscii(cache) || !isAscii(key)) return null;
  let value: Uint8Array | null = null;
  let ttlMs: number | undefined;
  let fields: number;
  switch (type) {
    case 'put':
    case 'replace':
    case 'putIfAbsent': {
      const v = c.value;
      if (!(v instanceof Uint8Array) || v.constructor !== Uint8Array) return null;
      value = v;
      ttlMs = c.ttlMs as number | undefined;
      fields = 4;
      if (ttlMs !== undefined) {
        if (!isUint(ttlMs, 1, bounds.durationMsMax)) return null;
        fields = 5;
      }
      break;
    }
    case 'delete':
    case 'get':
    case 'getRemove':
      fields = 3;
      break;
    default:
      return null;
  }
  if (countKeys(c) !== fields) return null;

  // Sizes first, then one buffer.
  let size = 1 + 3; // format version, envelope map
  size += 6 + uintBytes(nowMs); // "nowMs"
  if (session !== undefined) size += 8 + 3 + 9 + strBytes(clientId) + 4 + uintBytes(seq); // "session" {clientId, seq}
  if (protectMs !== undefined) size += 10 + uintBytes(protectMs); // "protectMs" in the session
  size += 8 + 3; // "command", its map
  size += 5 + strBytes(type); // "type"
  size += 6 + strBytes(cache); // "cache"
  size += 4 + strBytes(key); // "key"
  if (value !== null) size += 6 + binBytes(value.length); // "value"
  if (ttlMs !== undefined) size += 6 + uintBytes(ttlMs); // "ttlMs"

  const out = new Uint8Array(size);
  let p = 0;
  out[p++] = bounds.formatVersion;
  p = writeMapHeader(out, p, envelopeKeys);
  p = writeStr(out, p, 'nowMs');
  p = writeUint(out, p, nowMs);
  if (session !== undefined) {
    p = writeStr(out, p, 'session');
    p = writeMapHeader(out, p, sessionKeys);
    p = writeStr(out, p, 'clientId');
    p = writeStr(out, p, clientId);
    p = writeStr(out, p, 'seq');
    p = writeUint(out, p, seq);
    if (protectMs !== undefined) {
      p = writeStr(out, p, 'protectMs');
      p = writeUint(out, p, protectMs);
    }
  }
  p = writeStr(out, p, 'command');
  p = writeMapHeader(out, p, fields);
  p = writeStr(out, p, 'type');
  p = writeStr(out, p, type);
  p = writeStr(out, p, 'cache');
  p = writeStr(out, p, cache);
  p = writeStr(out, p, 'key');
  p = writeStr(out, p, key);
  let copy: Uint8Array | null = null;
  if (value !== null) {
    p = writeStr(out, p, 'value');
    p = writeBinHeader(out, p, value.length);
    out.set(value, p);
    copy = out.subarray(p, p + value.length);
    p += value.length;
  }
  if (ttlMs !== undefined) {
    p = writeStr(out, p, 'ttlMs');
    p = writeUint(out, p, ttlMs);
  }
  if (p !== size) return null; // never: sizes and writes disagree (the generic path is right)

  let validCommand: CacheCommand;
  if (copy === null) validCommand = { type: type as 'delete' | 'get' | 'getRemove', cache, key };
  else if (ttlMs === undefined) validCommand = { type: type as 'put', cache, key, value: copy };
  else validCommand = { type: type as 'put', cache, key, value: copy, ttlMs };
  const valid: CacheCommandEnvelope =
    session === undefined
      ? { nowMs, command: validCommand }
      : {
          nowMs,
          session: protectMs === undefined ? { clientId, seq } : { clientId, seq, protectMs },
          command: validCommand,
        };
  return { bytes: out, envelope: valid };
}

function countKeys(o: object): number {
  let n = 0;
  for (const k in o) if (Object.hasOwn(o, k)) n++;
  return n;
}

function isUint(v: unknown, lo: number, hi: number): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= lo && v <= hi && !Object.is(v, -0);
}

function isAscii(s: unknown): s is string {
  if (typeof s !== 'string' || s.length > STR16_MAX) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

function uintBytes(v: number): number {
  if (v < 0x80) return 1;
  if (v <= 0xff) return 2;
  if (v <= 0xffff) return 3;
  if (v <= 0xffffffff) return 5;
  return 9;
}

function strBytes(s: string): number {
  const n = s.length;
  return (n < 32 ? 1 : n <= 0xff ? 2 : 3) + n;
}

function binBytes(n: number): number {
  return (n <= 0xff ? 2 : n <= 0xffff ? 3 : 5) + n;
}

function writeUint(out: Uint8Array, p: number, v: number): number {
  if (v < 0x80) {
    out[p] = v;
    return p + 1;
  }
  if (v <= 0xff) {
    out[p] = 0xcc;
    out[p + 1] = v;
    return p + 2;
  }
  if (v <= 0xffff) {
    out[p] = 0xcd;
    out[p + 1] = v >>> 8;
    out[p + 2] = v & 0xff;
    return p + 3;
  }
  if (v <= 0xffffffff) {
    out[p] = 0xce;
    out[p + 1] = v >>> 24;
    out[p + 2] = (v >>> 16) & 0xff;
    out[p + 3] = (v >>> 8) & 0xff;
    out[p + 4] = v & 0xff;
    return p + 5;
  }
  out[p] = 0xcb;
  F64[0] = v;
  for (let i = 0; i < 8; i++) out[p + 1 + i] = F64_BYTES[F64_ORDER[i] as number] as number;
  return p + 9;
}

/** An ASCII string (checked by the caller). */
function writeStr(out: Uint8Array, p: number, s: string): number {
  const n = s.length;
  if (n < 32) out[p++] = 0xa0 | n;
  else if (n <= 0xff) {
    out[p++] = 0xd9;
    out[p++] = n;
  } else {
    out[p++] = 0xda;
    out[p++] = n >>> 8;
    out[p++] = n & 0xff;
  }
  for (let i = 0; i < n; i++) out[p + i] = s.charCodeAt(i);
  return p + n;
}

/** msgpackr writes an object's map with a 16-bit count (map16) unless `variableMapSize` is set. */
function writeMapHeader(out: Uint8Array, p: number, n: number): number {
  out[p] = 0xde;
  out[p + 1] = 0;
  out[p + 2] = n;
  return p + 3;
}

function writeBinHeader(out: Uint8Array, p: number, n: number): number {
  if (n <= 0xff) {
    out[p] = 0xc4;
    out[p + 1] = n;
    return p + 2;
  }
  if (n <= 0xffff) {
    out[p] = 0xc5;
    out[p + 1] = n >>> 8;
    out[p + 2] = n & 0xff;
    return p + 3;
  }
  out[p] = 0xc6;
  out[p + 1] = n >>> 24;
  out[p + 2] = (n >>> 16) & 0xff;
  out[p + 3] = (n >>> 8) & 0xff;
  out[p + 4] = n & 0xff;
  return p + 5;
}
