/**
 * A fast decoder for the common cache commands (put, replace, putIfAbsent, delete, get,
 * getRemove; with or without a session), straight from the msgpack bytes to the validated
 * envelope. It gives exactly what command.ts's generic path (msgpackr, then validation) gives for
 * the same bytes, or `undefined` when the input holds anything outside its subset or anything
 * invalid; the caller then decodes generically, which also reports every error. So it never
 * decides that input is invalid, and never throws.
 *
 * Why: applying a command is mostly decoding it (bench/cache-apply.ts, docs/BENCHMARKS.md "fifth
 * round"), on every replica and every application-thread mirror, and the generic path builds a
 * tree of objects with msgpackr (string extraction, key cache) and then walks it to validate.
 *
 * The subset: maps (fixmap or map16) whose keys are exactly the fields of their place, each
 * once, in any order; ASCII strings (fixstr, str8, str16) of at most `ASCII_LENGTH_MAX` units
 * (msgpackr's decoding of other UTF-8, valid or not, is its own); byte strings (bin 8/16/32);
 * integers as positive fixint, uint 8/16/32, int 8/16/32 or float64 (msgpackr reads these as
 * the same number). Not: 64-bit integers, float32, arrays, extensions, other command types.
 */
import { SESSION_PROTECT_MS_MAX, SESSION_PROTECT_MS_MIN } from '../../lib/client-session.js';
import type { CacheCommand, CacheCommandEnvelope, CacheSession } from './command.js';

/** Largest string read here; longer ones go the generic way (names and keys are short). */
const ASCII_LENGTH_MAX = 4096;

let src: Uint8Array = new Uint8Array(0);
/** A Buffer view of `src`, made when a long string is read (for its native latin1 decoding). */
let srcBuffer: Buffer | null = null;
let view = new DataView(src.buffer);
let pos = 0;
let end = 0;
/** Set when the input leaves the subset (or is invalid); the result is then discarded. */
let bail = false;

const EMPTY = new Uint8Array(0);

/**
 * The envelope in `bytes` after `start` (to the end), as the generic decoder would give it
 * (limits: nowMs ≤ nowMsMax, ttlMs in [1, durationMsMax]), or undefined: decode generically.
 */
export function readCommonEnvelope(
  bytes: Uint8Array,
  start: number,
  nowMsMax: number,
  durationMsMax: number,
): CacheCommandEnvelope | undefined {
  // A plain Uint8Array: its slice() copies into a plain Uint8Array (a Buffer's would be a view).
  src =
    bytes.constructor === Uint8Array
      ? bytes
      : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  pos = start;
  end = bytes.length;
  bail = false;
  const e = envelope(nowMsMax, durationMsMax);
  const ok = !bail && pos === end;
  src = EMPTY; // no reference to the entry kept
  srcBuffer = null;
  return ok ? e : undefined;
}

function out(): undefined {
  bail = true;
  return undefined;
}

function mapHeader(): number {
  if (pos >= end) return out() ?? 0;
  const t = src[pos++] as number;
  if (t >= 0x80 && t < 0x90) return t - 0x80;
  if (t === 0xde && pos + 2 <= end) {
    pos += 2;
    return view.getUint16(pos - 2);
  }
  return out() ?? 0;
}

/** The length of the string starting at `pos` (its header read), or -1 when not an ASCII string. */
function strHeader(): number {
  if (pos >= end) return -1;
  const t = src[pos++] as number;
  let n: number;
  if (t >= 0xa0 && t < 0xc0) n = t - 0xa0;
  else if (t === 0xd9 && pos + 1 <= end) n = src[pos++] as number;
  else if (t === 0xda && pos + 2 <= end) {
    n = view.getUint16(pos);
    pos += 2;
  } else return -1;
  if (n > end - pos || n > ASCII_LENGTH_MAX) return -1;
  for (let i = pos; i < pos + n; i++) if ((src[i] as number) >= 0x80) return -1;
  return n;
}

/**
 * Strings of 13 to 64 units recently read, by a hash of their bytes: session ids (and long cache
 * names or keys) recur in every batch, and handing out the same string object each time spares
 * the maps of the state its hashing (a new string is hashed at its first map lookup). Shorter
 * strings are built afresh (cheap to build and to hash). Bounded (`INTERN_SLOTS`); only the
 * identity of a string changes, never its value.
 */
const INTERN_SLOTS = 1024;
const INTERN_LENGTH_MIN = 13;
const INTERN_LENGTH_MAX = 64;
const interned: Array<string | undefined> = new Array(INTERN_SLOTS).fill(undefined);

/** ASCII bytes as a string (latin1 is the same text for them), decoded natively. */
function latin1(from: number, to: number): string {
  srcBuffer ??= Buffer.from(src.buffer, src.byteOffset, src.byteLength);
  return srcBuffer.toString('latin1', from, to);
}

function str(): string {
  const n = strHeader();
  if (n < 0) return out() ?? '';
  const from = pos;
  pos += n;
  // Up to 12 units a concatenation is a flat string (a longer one would be a rope).
  if (n < INTERN_LENGTH_MIN) {
    let s = '';
    for (let i = from; i < pos; i++) s += String.fromCharCode(src[i] as number);
    return s;
  }
  if (n > INTERN_LENGTH_MAX) return latin1(from, pos);
  let h = n;
  for (let i = from; i < pos; i++) h = Math.imul(h ^ (src[i] as number), 0x01000193);
  const slot = (h >>> 0) % INTERN_SLOTS;
  const known = interned[slot];
  if (known !== undefined && known.length === n) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (known.charCodeAt(i) !== src[from + i]) {
        same = false;
        break;
      }
    }
    if (same) return known;
  }
  const s = latin1(from, pos); // ASCII: latin1 is the same text
  interned[slot] = s;
  return s;
}

/** Which of `names` the next key is (its index), or -1 (also: not a string). */
function key(names: readonly Uint8Array[]): number {
  const n = strHeader();
  if (n < 0) return -1;
  const from = pos;
  pos += n;
  outer: for (let k = 0; k < names.length; k++) {
    const name = names[k] as Uint8Array;
    if (name.length !== n) continue;
    for (let i = 0; i < n; i++) if (name[i] !== src[from + i]) continue outer;
    return k;
  }
  return -1;
}

/** An integer in [lo, hi], as the generic `int` gives it (-0 is 0). */
function int(lo: number, hi: number): number {
  if (pos >= end) return out() ?? 0;
  const t = src[pos++] as number;
  let v: number;
  if (t < 0x80) v = t;
  else if (t >= 0xe0) v = t - 0x100;
  else {
    const size =
      t === 0xcc || t === 0xd0 ? 1 : t === 0xcd || t === 0xd1 ? 2 : t === 0xce || t === 0xd2 ? 4 : 8;
    if (pos + size > end) return out() ?? 0;
    switch (t) {
      case 0xcc:
        v = src[pos] as number;
        break;
      case 0xcd:
        v = view.getUint16(pos);
        break;
      case 0xce:
        v = view.getUint32(pos);
        break;
      case 0xd0:
        v = view.getInt8(pos);
        break;
      case 0xd1:
        v = view.getInt16(pos);
        break;
      case 0xd2:
        v = view.getInt32(pos);
        break;
      case 0xcb:
        v = view.getFloat64(pos);
        break;
      default:
        return out() ?? 0;
    }
    pos += size;
  }
  if (!Number.isSafeInteger(v) || v < lo || v > hi) return out() ?? 0;
  return v + 0;
}

/** A copy of a byte string (values outlive the entry). */
function bytes(): Uint8Array {
  if (pos >= end) return out() ?? EMPTY;
  const t = src[pos++] as number;
  let n: number;
  if (t === 0xc4 && pos + 1 <= end) n = src[pos++] as number;
  else if (t === 0xc5 && pos + 2 <= end) {
    n = view.getUint16(pos);
    pos += 2;
  } else if (t === 0xc6 && pos + 4 <= end) {
    n = view.getUint32(pos);
    pos += 4;
  } else return out() ?? EMPTY;
  if (n > end - pos) return out() ?? EMPTY;
  pos += n;
  return src.slice(pos - n, pos);
}

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

const ENVELOPE_KEYS = [ascii('nowMs'), ascii('session'), ascii('command')];
const SESSION_KEYS = [ascii('clientId'), ascii('seq'), ascii('protectMs')];
const COMMAND_KEYS = [ascii('type'), ascii('cache'), ascii('key'), ascii('value'), ascii('ttlMs')];
const TYPE_NAMES = ['put', 'replace', 'putIfAbsent', 'delete', 'get', 'getRemove'] as const;
const TYPE_KEYS = TYPE_NAMES.map(ascii);

function envelope(nowMsMax: number, durationMsMax: number): CacheCommandEnvelope | undefined {
  const n = mapHeader();
  if (bail || (n !== 2 && n !== 3)) return out();
  let nowMs = -1;
  let session: CacheSession | undefined;
  let command: CacheCommand | undefined;
  for (let i = 0; i < n && !bail; i++) {
    switch (key(ENVELOPE_KEYS)) {
      case 0:
        if (nowMs !== -1) return out();
        nowMs = int(0, nowMsMax);
        break;
      case 1:
        if (session !== undefined) return out();
        session = sessionOf();
        break;
      case 2:
        if (command !== undefined) return out();
        command = commandOf(durationMsMax);
        break;
      default:
        return out();
    }
  }
  if (bail || nowMs === -1 || command === undefined || (n === 3) !== (session !== undefined)) return out();
  return session === undefined ? { nowMs, command } : { nowMs, session, command };
}

function sessionOf(): CacheSession | undefined {
  const n = mapHeader();
  if (n !== 2 && n !== 3) return out();
  let clientId: string | undefined;
  let seq = -1;
  let protectMs = -1;
  for (let i = 0; i < n && !bail; i++) {
    switch (key(SESSION_KEYS)) {
      case 0:
        if (clientId !== undefined) return out();
        clientId = str();
        break;
      case 1:
        if (seq !== -1) return out();
        seq = int(0, Number.MAX_SAFE_INTEGER);
        break;
      case 2:
        if (protectMs !== -1) return out();
        protectMs = int(SESSION_PROTECT_MS_MIN, SESSION_PROTECT_MS_MAX);
        break;
      default:
        return out();
    }
  }
  if (bail || clientId === undefined || clientId.length === 0 || seq === -1) return out();
  if ((n === 3) !== (protectMs !== -1)) return out();
  return protectMs === -1 ? { clientId, seq } : { clientId, seq, protectMs };
}

function commandOf(durationMsMax: number): CacheCommand | undefined {
  const n = mapHeader();
  if (bail || n < 3 || n > 5) return out();
  let type = -1;
  let cache: string | undefined;
  let k: string | undefined;
  let value: Uint8Array | undefined;
  let ttlMs = -1;
  for (let i = 0; i < n && !bail; i++) {
    switch (key(COMMAND_KEYS)) {
      case 0:
        if (type !== -1) return out();
        type = key(TYPE_KEYS);
        if (type === -1) return out();
        break;
      case 1:
        if (cache !== undefined) return out();
        cache = str();
        break;
      case 2:
        if (k !== undefined) return out();
        k = str();
        break;
      case 3:
        if (value !== undefined) return out();
        value = bytes();
        break;
      case 4:
        if (ttlMs !== -1) return out();
        ttlMs = int(1, durationMsMax);
        break;
      default:
        return out();
    }
  }
  if (bail || type === -1 || cache === undefined || k === undefined) return out();
  const t = TYPE_NAMES[type] as (typeof TYPE_NAMES)[number];
  if (t === 'put' || t === 'replace' || t === 'putIfAbsent') {
    if (value === undefined || n !== (ttlMs === -1 ? 4 : 5)) return out();
    if (ttlMs === -1) return { type: t, cache, key: k, value };
    return { type: t, cache, key: k, value, ttlMs };
  }
  if (n !== 3) return out(); // value or ttlMs on a command without them
  return { type: t, cache, key: k };
}
