/**
 * Commands of the cache state machine and their binary codec (the payload of a log entry of the
 * cache group).
 *
 * Wire format: one version byte (`CACHE_COMMAND_FORMAT_VERSION`) followed by standard msgpack (no
 * msgpackr records) of `{ nowMs, session?, command }`. `nowMs` is the proposing node's clock; the
 * state machine's clock is the largest `nowMs` applied so far (see state-machine.ts). The decoder
 * treats its input as untrusted: anything that is not exactly a valid command is a `CacheError`
 * with code `HQL_MALFORMED_COMMAND`, never another exception and never a partially valid object.
 * Encoding validates with the same code, so whatever encodes also decodes. Byte limits that
 * depend on the options (key and value sizes) are checked when the command is applied.
 */
import { assert } from '../../lib/assert.js';
import { clientSession, SESSION_PROTECT_MS_MAX, SESSION_PROTECT_MS_MIN } from '../../lib/client-session.js';
import { packVersioned, unpackVersioned } from '../../protocol/versioned-msgpack.js';
import { readCommonEnvelope } from './command-reader.js';
import { type WriterBounds, writeCommonEnvelope } from './command-writer.js';
import { CacheError, type CacheErrorInfo } from './errors.js';
import { CACHE_LIMIT_BOUNDS } from './options.js';

export type CacheCommand =
  /** Stores the value; without `ttlMs` the entry never expires (an earlier TTL is cleared). */
  | {
      readonly type: 'put';
      readonly cache: string;
      readonly key: string;
      readonly value: Uint8Array;
      readonly ttlMs?: number;
    }
  | { readonly type: 'delete'; readonly cache: string; readonly key: string }
  /** Removes every entry of one cache (not counters). */
  | { readonly type: 'clear'; readonly cache: string }
  /** Removes every cache, and every counter group when `counters`. */
  | { readonly type: 'clearAll'; readonly counters: boolean }
  /** A linearizable read: served through the log. */
  | { readonly type: 'get'; readonly cache: string; readonly key: string }
  /** Atomic take: returns the value and removes it. */
  | { readonly type: 'getRemove'; readonly cache: string; readonly key: string }
  /** Stores the value and returns the previous one. */
  | {
      readonly type: 'replace';
      readonly cache: string;
      readonly key: string;
      readonly value: Uint8Array;
      readonly ttlMs?: number;
    }
  /** Stores the value only when the key holds none (or an expired one). */
  | {
      readonly type: 'putIfAbsent';
      readonly cache: string;
      readonly key: string;
      readonly value: Uint8Array;
      readonly ttlMs?: number;
    }
  /** Physically removes expired entries (at most `expireBatchMax`); the leader proposes it periodically. */
  | { readonly type: 'expire' }
  /** Adds `delta`, saturating at the int64 bounds; an absent key starts at 0. */
  | { readonly type: 'counterAdd'; readonly counter: string; readonly key: string; readonly delta: bigint }
  | { readonly type: 'counterSet'; readonly counter: string; readonly key: string; readonly value: bigint }
  | { readonly type: 'counterGet'; readonly counter: string; readonly key: string }
  | { readonly type: 'counterDelete'; readonly counter: string; readonly key: string }
  | { readonly type: 'counterClear'; readonly counter: string }
  | { readonly type: 'notify'; readonly channel: string; readonly payload: Uint8Array }
  /**
   * Grants the lock to `holderId` for `leaseMs` of log time, or queues it (FIFO). A waiter not
   * granted within `waitMs` is dropped from the queue. Idempotent per holder id.
   */
  | {
      readonly type: 'lockAcquire';
      readonly key: string;
      readonly holderId: string;
      readonly leaseMs: number;
      readonly waitMs?: number;
      /**
       * The waiter's wait lease: dropped from the queue when its turn comes after it ran out
       * unless renewed (`lockWaitRenew`). Absent in entries of older builds: no wait lease.
       */
      readonly waitLeaseMs?: number;
    }
  /**
   * Renews the wait lease of the waiters named (`keys[i]`, `holderIds[i]`: at most
   * LOCK_WAIT_RENEW_WAITERS_MAX) to now + `waitLeaseMs`: the node they wait on is alive.
   */
  | {
      readonly type: 'lockWaitRenew';
      readonly waitLeaseMs: number;
      readonly keys: readonly string[];
      readonly holderIds: readonly string[];
    }
  /**
   * Extends the holder's lease to now + `leaseMs` (default: its lease); a stale token is ignored,
   * as is one of another holder (`holderId`, when given: the fencing token is no secret, it is
   * written into the rows it guards, so the token alone must not let anyone else renew).
   */
  | {
      readonly type: 'lockRenew';
      readonly key: string;
      readonly token: number;
      readonly leaseMs?: number;
      readonly holderId?: string;
    }
  /** Releases the lock; a stale token, or another holder's (`holderId`, when given), is ignored. */
  | { readonly type: 'lockRelease'; readonly key: string; readonly token: number; readonly holderId?: string }
  /** Withdraws `holderId`: leaves the queue, or releases the lock if it was granted meanwhile. */
  | { readonly type: 'lockCancel'; readonly key: string; readonly holderId: string };

export type CacheCommandType = CacheCommand['type'];

/** Exactly-once: a client numbers its writes; one outstanding write per clientId. */
export interface CacheSession {
  readonly clientId: string;
  readonly seq: number;
  /**
   * The proposer's `session_protect_ms` (lib/client-session.ts): how long after it was last seen
   * this session is never forgotten for room. Absent in entries written before the stamp existed.
   */
  readonly protectMs?: number;
}

export interface CacheCommandEnvelope {
  /** The proposer's clock (ms since the epoch). */
  readonly nowMs: number;
  readonly session?: CacheSession;
  readonly command: CacheCommand;
}

export const CACHE_COMMAND_FORMAT_VERSION = 1;
/** 9999-12-31T23:59:59.999Z, like the SQL group. */
export const NOW_MS_MAX = 253_402_300_799_999;
/** The longest TTL, lease or wait: 100 years (now + it stays a safe integer). */
export const DURATION_MS_MAX = 100 * 366 * 24 * 60 * 60 * 1000;
/** Waiters one `lockWaitRenew` names at most. */
export const LOCK_WAIT_RENEW_WAITERS_MAX = 1024;
/** A string field is refused by the codec above this many UTF-16 units (limits are finer). */
export const STRING_LENGTH_MAX = 1 << 20;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const WRITER_BOUNDS: WriterBounds = {
  formatVersion: CACHE_COMMAND_FORMAT_VERSION,
  nowMsMax: NOW_MS_MAX,
  durationMsMax: DURATION_MS_MAX,
};

/** Validates and encodes a command envelope. Throws `CacheError` (`HQL_MALFORMED_COMMAND`). */
export function encodeCacheCommand(envelope: CacheCommandEnvelope): Uint8Array {
  return writeCommonEnvelope(envelope, WRITER_BOUNDS)?.bytes ?? encodeCacheCommandGeneric(envelope);
}

/**
 * encodeCacheCommand without the fast writer of common commands (command-writer.ts): msgpackr
 * of the validated envelope. The fast writer's bytes are these bytes (its property test).
 */
export function encodeCacheCommandGeneric(envelope: CacheCommandEnvelope): Uint8Array {
  return packVersioned(CACHE_COMMAND_FORMAT_VERSION, validateEnvelope(envelope));
}

/**
 * encodeCacheCommand, also returning the validated envelope: exactly what `decodeCacheCommand`
 * of the bytes gives (same fields, canonical types, byte values that are not the caller's arrays:
 * copies, or views of the returned bytes for the common commands), so a state
 * machine may apply it instead of decoding the bytes again (CacheStateMachine.encodeForProposal).
 */
export function encodeCacheCommandValidated(envelope: CacheCommandEnvelope): {
  readonly bytes: Uint8Array;
  readonly envelope: CacheCommandEnvelope;
} {
  return writeCommonEnvelope(envelope, WRITER_BOUNDS) ?? encodeCacheCommandValidatedGeneric(envelope);
}

function encodeCacheCommandValidatedGeneric(envelope: CacheCommandEnvelope): {
  readonly bytes: Uint8Array;
  readonly envelope: CacheCommandEnvelope;
} {
  const valid = validateEnvelope(envelope);
  const bytes = packVersioned(CACHE_COMMAND_FORMAT_VERSION, valid);
  // UTF-8 replaces a lone surrogate by U+FFFD: such a string decodes as another string.
  return { bytes, envelope: wellFormed(valid) ? valid : decodeCacheCommand(bytes) };
}

/** Any surrogate (pairs too: rare in keys, and the fallback is merely slower). */
const SURROGATE = /[\uD800-\uDFFF]/;

function wellFormed(e: CacheCommandEnvelope): boolean {
  if (e.session !== undefined && SURROGATE.test(e.session.clientId)) return false;
  const c = e.command as unknown as Record<string, unknown>;
  for (const k in c) {
    const v = c[k];
    if (typeof v === 'string' && SURROGATE.test(v)) return false;
    if (Array.isArray(v) && v.some((x) => typeof x === 'string' && SURROGATE.test(x))) return false;
  }
  return true;
}

// ---- batches ---------------------------------------------------------------------------------

/**
 * The first byte of a log entry holding several commands (a batch): the leader groups the
 * writes proposed in one turn of its event loop into one entry (CacheGroup), so that the Raft
 * work per entry (log append, replication, acknowledgement, commit) is shared. Layout after this
 * byte: a u32 (big endian) count, then per command a u32 length and the command's own bytes as
 * `encodeCacheCommand` makes them (version 1). Each command keeps its session, its clock stamp
 * and its result; applying the batch is applying its commands one by one at the entry's index.
 * Nodes of a build without batches read this byte as an unknown format version, so a batch is
 * a log format change (HANDSHAKE_VERSION, docs/ARCHITECTURE.md "Upgrades").
 */
export const CACHE_BATCH_FORMAT_VERSION = 2;
/** The most commands one batch entry holds (a decoder refuses more). */
export const CACHE_BATCH_COMMANDS_MAX = 1024;
/** Bytes a batch adds to its commands: the version byte and count, plus a length per command. */
export const CACHE_BATCH_HEADER_BYTES = 5;
export const CACHE_BATCH_ITEM_OVERHEAD_BYTES = 4;

/**
 * Commands that may share an entry: those whose outcome names no log index and starts nothing
 * that a listener or lock waiter tells apart by index (not notify, locks or expire).
 */
export function isBatchable(c: CacheCommand): boolean {
  switch (c.type) {
    case 'put':
    case 'delete':
    case 'get':
    case 'getRemove':
    case 'replace':
    case 'putIfAbsent':
    case 'counterAdd':
    case 'counterSet':
    case 'counterGet':
    case 'counterDelete':
      return true;
    default:
      return false;
  }
}

/** True when the entry payload is a batch (decodeCacheBatch), else a single command. */
export function isCacheBatch(bytes: Uint8Array): boolean {
  return bytes.length > 0 && bytes[0] === CACHE_BATCH_FORMAT_VERSION;
}

/** Frames encoded commands (each made by encodeCacheCommand, each batchable) into one batch payload. */
export function encodeCacheBatch(items: readonly Uint8Array[]): Uint8Array {
  assert(items.length >= 1 && items.length <= CACHE_BATCH_COMMANDS_MAX, 'a batch holds 1 to 1024 commands');
  let size = CACHE_BATCH_HEADER_BYTES;
  for (const it of items) size += CACHE_BATCH_ITEM_OVERHEAD_BYTES + it.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = CACHE_BATCH_FORMAT_VERSION;
  view.setUint32(1, items.length);
  let at = CACHE_BATCH_HEADER_BYTES;
  for (const it of items) {
    view.setUint32(at, it.length);
    out.set(it, at + CACHE_BATCH_ITEM_OVERHEAD_BYTES);
    at += CACHE_BATCH_ITEM_OVERHEAD_BYTES + it.length;
  }
  return out;
}

/**
 * Decodes an untrusted batch payload: every command valid and batchable, the framing exact (no
 * byte missing or left over). Throws `CacheError` (`HQL_MALFORMED_COMMAND`, or HQL_CACHE_TOO_LARGE
 * as decodeCacheCommand does) for the whole batch: a batch applies completely or not at all.
 */
export function decodeCacheBatch(bytes: Uint8Array): CacheCommandEnvelope[] {
  if (!(bytes instanceof Uint8Array) || bytes.length < CACHE_BATCH_HEADER_BYTES)
    malformed('batch', 'too short');
  if (bytes[0] !== CACHE_BATCH_FORMAT_VERSION) malformed('batch', `not a batch (format ${bytes[0]})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(1);
  if (count < 1 || count > CACHE_BATCH_COMMANDS_MAX)
    malformed('batch', `holds ${count} commands (1 to ${CACHE_BATCH_COMMANDS_MAX})`);
  // Each command takes at least its length field and 2 bytes: a count the bytes cannot hold is refused before any work.
  if (count * (CACHE_BATCH_ITEM_OVERHEAD_BYTES + 2) > bytes.length - CACHE_BATCH_HEADER_BYTES)
    malformed('batch', `${count} commands do not fit in ${bytes.length} bytes`);
  const out: CacheCommandEnvelope[] = new Array(count);
  let at = CACHE_BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + CACHE_BATCH_ITEM_OVERHEAD_BYTES > bytes.length) malformed(`batch[${i}]`, 'truncated');
    const len = view.getUint32(at);
    at += CACHE_BATCH_ITEM_OVERHEAD_BYTES;
    if (len > bytes.length - at) malformed(`batch[${i}]`, 'truncated');
    const envelope = decodeCacheCommand(bytes.subarray(at, at + len));
    if (!isBatchable(envelope.command))
      malformed(`batch[${i}].command.type`, `${envelope.command.type} is never batched`);
    out[i] = envelope;
    at += len;
  }
  if (at !== bytes.length) malformed('batch', `${bytes.length - at} bytes after the last command`);
  return out;
}

/** Like decodeCacheBatch, but returns the error data instead of throwing. */
export function tryDecodeCacheBatch(bytes: Uint8Array): CacheCommandEnvelope[] | CacheErrorInfo {
  try {
    return decodeCacheBatch(bytes);
  } catch (e) {
    if (e instanceof CacheError) return e.info;
    throw e;
  }
}

/** Decodes untrusted bytes. Throws `CacheError` (`HQL_MALFORMED_COMMAND`) on anything invalid. */
export function decodeCacheCommand(bytes: Uint8Array): CacheCommandEnvelope {
  // The common commands are read by command-reader.ts (the same result, faster), the rest and every error here.
  if (bytes instanceof Uint8Array && bytes.length >= 2 && bytes[0] === CACHE_COMMAND_FORMAT_VERSION) {
    const envelope = readCommonEnvelope(bytes, 1, NOW_MS_MAX, DURATION_MS_MAX);
    if (envelope !== undefined) return envelope;
  }
  return decodeCacheCommandGeneric(bytes);
}

/**
 * decodeCacheCommand without the fast reader (command-reader.ts): msgpackr, then validation. The
 * reference the fast reader must agree with (test/sm/cache-command-reader.test.ts).
 */
export function decodeCacheCommandGeneric(bytes: Uint8Array): CacheCommandEnvelope {
  return validateEnvelope(unpackVersioned(bytes, CACHE_COMMAND_FORMAT_VERSION, malformed));
}

/** Like decodeCacheCommand, but returns the error data instead of throwing. */
export function tryDecodeCacheCommand(bytes: Uint8Array): CacheCommandEnvelope | CacheErrorInfo {
  try {
    return decodeCacheCommand(bytes);
  } catch (e) {
    if (e instanceof CacheError) return e.info;
    throw e;
  }
}

// ---- validation ------------------------------------------------------------------------------

function validateEnvelope(raw: unknown): CacheCommandEnvelope {
  const r = record(raw, 'envelope', ENVELOPE_FIELDS, SESSION_OPTIONAL);
  const nowMs = int(r.nowMs, 'nowMs', 0, NOW_MS_MAX);
  const command = validateCommand(r.command);
  if (r.session === undefined) return { nowMs, command };
  const s = record(r.session, 'session', SESSION_FIELDS, SESSION_FIELDS_OPTIONAL);
  const clientId = str(s.clientId, 'session.clientId');
  if (clientId.length === 0) malformed('session.clientId', 'empty');
  const session: CacheSession = clientSession(
    clientId,
    int(s.seq, 'session.seq', 0, Number.MAX_SAFE_INTEGER),
    s.protectMs === undefined
      ? undefined
      : int(s.protectMs, 'session.protectMs', SESSION_PROTECT_MS_MIN, SESSION_PROTECT_MS_MAX),
  );
  return { nowMs, session, command };
}

// Field lists, allocated once (decoding is on the apply path of every entry).
const NONE: readonly string[] = [];
const ENVELOPE_FIELDS = ['nowMs', 'command'];
const SESSION_OPTIONAL = ['session'];
const SESSION_FIELDS = ['clientId', 'seq'];
const SESSION_FIELDS_OPTIONAL = ['protectMs'];
const CACHE_KEY = ['type', 'cache', 'key'];
const CACHE_FIELDS = ['type', 'cache'];
const VALUE_FIELDS = ['type', 'cache', 'key', 'value'];
const TTL_OPTIONAL = ['ttlMs'];
const CLEAR_ALL_FIELDS = ['type', 'counters'];
const TYPE_ONLY = ['type'];
const COUNTER_KEY = ['type', 'counter', 'key'];
const COUNTER_DELTA = ['type', 'counter', 'key', 'delta'];
const COUNTER_VALUE = ['type', 'counter', 'key', 'value'];
const COUNTER_FIELDS = ['type', 'counter'];
const NOTIFY_FIELDS = ['type', 'channel', 'payload'];
const ACQUIRE_FIELDS = ['type', 'key', 'holderId', 'leaseMs'];
const WAIT_OPTIONAL = ['waitMs', 'waitLeaseMs'];
const WAIT_RENEW_FIELDS = ['type', 'waitLeaseMs', 'keys', 'holderIds'];
const TOKEN_FIELDS = ['type', 'key', 'token'];
const LEASE_OPTIONAL = ['leaseMs', 'holderId'];
const HOLDER_OPTIONAL = ['holderId'];
const CANCEL_FIELDS = ['type', 'key', 'holderId'];

function validateCommand(raw: unknown): CacheCommand {
  if (!isPlainObject(raw)) return malformed('command', 'expected a map');
  const type = raw.type;
  switch (type) {
    case 'put':
    case 'replace':
    case 'putIfAbsent': {
      const c = record(raw, 'command', VALUE_FIELDS, TTL_OPTIONAL);
      const cache = str(c.cache, 'command.cache');
      const key = str(c.key, 'command.key');
      const value = bytes(c.value, 'command.value');
      if (c.ttlMs === undefined) return { type, cache, key, value };
      return { type, cache, key, value, ttlMs: int(c.ttlMs, 'command.ttlMs', 1, DURATION_MS_MAX) };
    }
    case 'delete':
    case 'get':
    case 'getRemove': {
      const c = record(raw, 'command', CACHE_KEY, NONE);
      return { type, cache: str(c.cache, 'command.cache'), key: str(c.key, 'command.key') };
    }
    case 'clear': {
      const c = record(raw, 'command', CACHE_FIELDS, NONE);
      return { type, cache: str(c.cache, 'command.cache') };
    }
    case 'clearAll': {
      const c = record(raw, 'command', CLEAR_ALL_FIELDS, NONE);
      if (typeof c.counters !== 'boolean') malformed('command.counters', 'expected a boolean');
      return { type, counters: c.counters };
    }
    case 'expire':
      record(raw, 'command', TYPE_ONLY, NONE);
      return { type };
    case 'counterAdd': {
      const c = record(raw, 'command', COUNTER_DELTA, NONE);
      return { type, ...counterKey(c), delta: int64(c.delta, 'command.delta') };
    }
    case 'counterSet': {
      const c = record(raw, 'command', COUNTER_VALUE, NONE);
      return { type, ...counterKey(c), value: int64(c.value, 'command.value') };
    }
    case 'counterGet':
    case 'counterDelete': {
      const c = record(raw, 'command', COUNTER_KEY, NONE);
      return { type, ...counterKey(c) };
    }
    case 'counterClear': {
      const c = record(raw, 'command', COUNTER_FIELDS, NONE);
      return { type, counter: str(c.counter, 'command.counter') };
    }
    case 'notify': {
      const c = record(raw, 'command', NOTIFY_FIELDS, NONE);
      return {
        type,
        channel: str(c.channel, 'command.channel'),
        payload: bytes(c.payload, 'command.payload'),
      };
    }
    case 'lockAcquire': {
      const c = record(raw, 'command', ACQUIRE_FIELDS, WAIT_OPTIONAL);
      const holderId = str(c.holderId, 'command.holderId');
      if (holderId.length === 0) malformed('command.holderId', 'empty');
      const base = {
        type,
        key: str(c.key, 'command.key'),
        holderId,
        leaseMs: int(c.leaseMs, 'command.leaseMs', 1, DURATION_MS_MAX),
      };
      return {
        ...base,
        ...(c.waitMs === undefined ? {} : { waitMs: int(c.waitMs, 'command.waitMs', 0, DURATION_MS_MAX) }),
        ...(c.waitLeaseMs === undefined
          ? {}
          : { waitLeaseMs: int(c.waitLeaseMs, 'command.waitLeaseMs', 1, DURATION_MS_MAX) }),
      };
    }
    case 'lockWaitRenew': {
      const c = record(raw, 'command', WAIT_RENEW_FIELDS, NONE);
      const keys = strings(c.keys, 'command.keys');
      const holderIds = strings(c.holderIds, 'command.holderIds');
      if (keys.length !== holderIds.length) {
        malformed('command.holderIds', `${holderIds.length} holder ids for ${keys.length} keys`);
      }
      return {
        type,
        waitLeaseMs: int(c.waitLeaseMs, 'command.waitLeaseMs', 1, DURATION_MS_MAX),
        keys,
        holderIds,
      };
    }
    case 'lockRenew': {
      const c = record(raw, 'command', TOKEN_FIELDS, LEASE_OPTIONAL);
      return {
        type,
        key: str(c.key, 'command.key'),
        token: token(c.token),
        ...(c.leaseMs === undefined
          ? {}
          : { leaseMs: int(c.leaseMs, 'command.leaseMs', 1, DURATION_MS_MAX) }),
        ...optionalHolder(c),
      };
    }
    case 'lockRelease': {
      const c = record(raw, 'command', TOKEN_FIELDS, HOLDER_OPTIONAL);
      return { type, key: str(c.key, 'command.key'), token: token(c.token), ...optionalHolder(c) };
    }
    case 'lockCancel': {
      const c = record(raw, 'command', CANCEL_FIELDS, NONE);
      return { type, key: str(c.key, 'command.key'), holderId: str(c.holderId, 'command.holderId') };
    }
    default:
      return malformed('command.type', `unknown command type ${JSON.stringify(String(type))}`);
  }
}

function counterKey(c: Record<string, unknown>): { counter: string; key: string } {
  return { counter: str(c.counter, 'command.counter'), key: str(c.key, 'command.key') };
}

/** A renewal's or release's holder id (entries written before it was sent have none). */
function optionalHolder(c: Record<string, unknown>): { holderId?: string } {
  if (c.holderId === undefined) return {};
  const holderId = str(c.holderId, 'command.holderId');
  if (holderId.length === 0) malformed('command.holderId', 'empty');
  return { holderId };
}

function token(v: unknown): number {
  return int(v, 'command.token', 1, Number.MAX_SAFE_INTEGER);
}

// ---- helpers ---------------------------------------------------------------------------------

function malformed(path: string, why: string): never {
  throw new CacheError({
    code: 'HQL_MALFORMED_COMMAND',
    message: `malformed cache command: ${path}: ${why}`,
  });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A map with exactly the `required` fields and possibly the `optional` ones, nothing else. */
function record(
  raw: unknown,
  path: string,
  required: readonly string[],
  optional: readonly string[],
): Record<string, unknown> {
  if (!isPlainObject(raw)) malformed(path, 'expected a map');
  for (const key in raw) {
    if (!required.includes(key) && !optional.includes(key)) malformed(path, `unexpected field '${key}'`);
  }
  for (const key of required) {
    if (!Object.hasOwn(raw, key) || raw[key] === undefined) malformed(path, `missing field '${key}'`);
  }
  return raw;
}

function str(v: unknown, path: string): string {
  if (typeof v !== 'string') malformed(path, 'expected a string');
  // Too large, not malformed: the same error as a key over cache_key_bytes_max, whatever its size.
  if (v.length > STRING_LENGTH_MAX) {
    // Named as the caller knows it (`key`, not the codec's `command.key`).
    const field = path.slice(path.lastIndexOf('.') + 1);
    throw new CacheError({
      code: 'HQL_CACHE_TOO_LARGE',
      message: `${field} of ${v.length} characters is larger than any can be (keyBytesMax is at most ${CACHE_LIMIT_BOUNDS.keyBytesMax[1]} bytes)`,
    });
  }
  return v;
}

/** 1 to LOCK_WAIT_RENEW_WAITERS_MAX strings (copied into a plain array). */
function strings(v: unknown, path: string): string[] {
  if (!Array.isArray(v)) malformed(path, 'expected an array');
  if (v.length < 1 || v.length > LOCK_WAIT_RENEW_WAITERS_MAX) {
    malformed(path, `expected 1 to ${LOCK_WAIT_RENEW_WAITERS_MAX} items, got ${v.length}`);
  }
  return v.map((x, i) => str(x, `${path}[${i}]`));
}

function int(v: unknown, path: string, lo: number, hi: number): number {
  if (typeof v === 'bigint' && v >= BigInt(lo) && v <= BigInt(hi)) return Number(v);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < lo || v > hi) {
    malformed(path, `expected an integer in [${lo}, ${hi}]`);
  }
  return v + 0; // -0 is 0: what is applied is what any decoder of the bytes gets
}

function int64(v: unknown, path: string): bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) malformed(path, 'expected an integer');
    return BigInt(v);
  }
  if (typeof v !== 'bigint' || v < INT64_MIN || v > INT64_MAX) malformed(path, 'expected a 64-bit integer');
  return v;
}

/** A copy: msgpackr may hand out views of the input buffer, and values outlive the entry. */
function bytes(v: unknown, path: string): Uint8Array {
  if (!(v instanceof Uint8Array)) malformed(path, 'expected bytes');
  // A plain Uint8Array's slice is a plain copy (a Buffer's would be a view: copy through a plain view).
  return v.constructor === Uint8Array ? v.slice() : new Uint8Array(v.buffer, v.byteOffset, v.length).slice();
}
