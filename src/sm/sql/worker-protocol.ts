/**
 * Messages between SqlWorker (main thread) and the state-machine worker thread. Errors travel as
 * `SerializedError` and are rebuilt as typed errors.
 *
 * The hot path, applyBatch, does not structured-clone its entries: they travel packed into one
 * ArrayBuffer that is transferred (not copied). Results come back only for the entries somebody
 * waits for (on a follower: none), by structured clone, or as transferred msgpack when large.
 *
 *   entries: u32 count, then per entry f64 index, f64 term, u8 kind (0 noop, 1 command,
 *            2 config), u32 length, bytes (command data, or the config entry's membership)
 */
import { HiqliteError } from '../../lib/errors.js';
import { SqlError, type SqlErrorInfo } from './errors.js';
import type { CommandResult } from './result.js';
import type { AppliedState, ApplyEntry, DamagedDatabase, SqlStateMachineOptions } from './state-machine.js';

export type WorkerStateMachineOptions = Omit<SqlStateMachineOptions, 'onRestoreProgress'>;

export interface WorkerInit {
  readonly dir: string;
  readonly options: WorkerStateMachineOptions;
}

export type WorkerRequest =
  | {
      readonly id: number;
      readonly op: 'applyBatch';
      readonly entries: ArrayBuffer;
      /** Per entry: is its result wanted (someone waits for it)? */
      readonly wanted: readonly boolean[];
    }
  | { readonly id: number; readonly op: 'snapshot'; readonly destPath: string }
  | { readonly id: number; readonly op: 'restore'; readonly fromPath: string }
  | { readonly id: number; readonly op: 'reset' }
  | { readonly id: number; readonly op: 'appliedState' }
  | { readonly id: number; readonly op: 'close' };

export interface ApplyBatchReply {
  /** One per entry; undefined where the result was not wanted; large results as msgpack (result.ts). */
  readonly results: readonly (CommandResult | Uint8Array | undefined)[];
  readonly applied: AppliedState;
}

const ENTRY_HEADER = 8 + 8 + 1 + 4;
const KIND_NOOP = 0;
const KIND_COMMAND = 1;
const KIND_CONFIG = 2;

export function packEntries(entries: readonly ApplyEntry[]): ArrayBuffer {
  let size = 4;
  for (const e of entries) size += ENTRY_HEADER + (e.data?.byteLength ?? e.membership?.byteLength ?? 0);
  const buf = new ArrayBuffer(size);
  const view = new DataView(buf);
  const bytes = new Uint8Array(buf);
  view.setUint32(0, entries.length, true);
  let at = 4;
  for (const e of entries) {
    const body = e.data ?? e.membership ?? null;
    view.setFloat64(at, e.index, true);
    view.setFloat64(at + 8, e.term, true);
    view.setUint8(
      at + 16,
      e.data !== null ? KIND_COMMAND : e.membership !== undefined ? KIND_CONFIG : KIND_NOOP,
    );
    view.setUint32(at + 17, body?.byteLength ?? 0, true);
    at += ENTRY_HEADER;
    if (body !== null) {
      bytes.set(body, at);
      at += body.byteLength;
    }
  }
  return buf;
}

/** The entries of packEntries, as views into `buf` (which the receiver owns after the transfer). */
export function unpackEntries(buf: ArrayBuffer): ApplyEntry[] {
  const view = new DataView(buf);
  const count = view.getUint32(0, true);
  const entries: ApplyEntry[] = new Array(count);
  let at = 4;
  for (let i = 0; i < count; i++) {
    const index = view.getFloat64(at, true) as ApplyEntry['index'];
    const term = view.getFloat64(at + 8, true) as ApplyEntry['term'];
    const kind = view.getUint8(at + 16);
    const length = view.getUint32(at + 17, true);
    at += ENTRY_HEADER;
    const body = new Uint8Array(buf, at, length);
    at += length;
    entries[i] =
      kind === KIND_COMMAND
        ? { index, term, data: body }
        : kind === KIND_CONFIG
          ? { index, term, data: null, membership: body }
          : { index, term, data: null };
  }
  return entries;
}

export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly retryable?: boolean;
  readonly info?: SqlErrorInfo;
  /** A file system or SQLite error's own code (`EISDIR`, `SQLITE_CANTOPEN`), kept for the caller to type it. */
  readonly errno?: string;
}

/** The value of the startup reply. */
export interface WorkerStarted {
  readonly state: AppliedState;
  /** The writer connection's id for `interruptConnection` (interrupt.ts), or null. */
  readonly connectionId: number | null;
  /** The damaged database file the state machine found and moved aside when it opened, or null. */
  readonly damaged: DamagedDatabase | null;
}

/** id 0 is the startup reply (the state machine opened: WorkerStarted, or failed to). */
export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: SerializedError };

export function serializeError(e: unknown): SerializedError {
  if (e instanceof SqlError)
    return { name: e.name, message: e.message, code: e.code, retryable: e.retryable, info: e.info };
  if (e instanceof HiqliteError)
    return { name: e.name, message: e.message, code: e.code, retryable: e.retryable };
  if (e instanceof Error) {
    const errno = (e as { code?: unknown }).code;
    return typeof errno === 'string'
      ? { name: e.name, message: e.message, errno }
      : { name: e.name, message: e.message };
  }
  return { name: 'Error', message: String(e) };
}

export function deserializeError(s: SerializedError): Error {
  if (s.info !== undefined) return new SqlError(s.info);
  if (s.code !== undefined) {
    return new HiqliteError(s.code as HiqliteError['code'], s.message, { retryable: s.retryable ?? false });
  }
  const e = new Error(s.message);
  e.name = s.name;
  return s.errno === undefined ? e : Object.assign(e, { code: s.errno });
}
