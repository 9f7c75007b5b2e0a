/**
 * Messages between SqlWorker (main thread) and the state-machine worker thread. Everything is
 * structured-clone data; errors travel as `SerializedError` and are rebuilt as typed errors.
 */
import { HiqliteError } from '../../lib/errors.js';
import { SqlError, type SqlErrorInfo } from './errors.js';
import type { CommandResult } from './result.js';
import type { AppliedState, ApplyEntry, SqlStateMachineOptions } from './state-machine.js';

export type WorkerStateMachineOptions = Omit<SqlStateMachineOptions, 'onRestoreProgress'>;

export interface WorkerInit {
  readonly dir: string;
  readonly options: WorkerStateMachineOptions;
}

export type WorkerRequest =
  | { readonly id: number; readonly op: 'applyBatch'; readonly entries: readonly ApplyEntry[] }
  | { readonly id: number; readonly op: 'snapshot'; readonly destPath: string }
  | { readonly id: number; readonly op: 'restore'; readonly fromPath: string }
  | { readonly id: number; readonly op: 'reset' }
  | { readonly id: number; readonly op: 'appliedState' }
  | { readonly id: number; readonly op: 'close' };

export interface ApplyBatchReply {
  readonly results: CommandResult[];
  readonly applied: AppliedState;
}

export interface SerializedError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly retryable?: boolean;
  readonly info?: SqlErrorInfo;
}

/** id 0 is the startup reply (the state machine opened, or failed to). */
export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: SerializedError };

export function serializeError(e: unknown): SerializedError {
  if (e instanceof SqlError)
    return { name: e.name, message: e.message, code: e.code, retryable: e.retryable, info: e.info };
  if (e instanceof HiqliteError)
    return { name: e.name, message: e.message, code: e.code, retryable: e.retryable };
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: 'Error', message: String(e) };
}

export function deserializeError(s: SerializedError): Error {
  if (s.info !== undefined) return new SqlError(s.info);
  if (s.code !== undefined) {
    return new HiqliteError(s.code as HiqliteError['code'], s.message, { retryable: s.retryable ?? false });
  }
  const e = new Error(s.message);
  e.name = s.name;
  return e;
}
