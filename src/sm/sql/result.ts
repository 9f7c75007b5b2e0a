/**
 * Results of applied commands. Plain data (structured-clone and msgpack friendly): they cross
 * the worker boundary and are stored in the session table for exactly-once replies. Every
 * replica computes the same result for the same entry, so storing them keeps replicas identical.
 */
import { MapsPackr } from '../../protocol/msgpack-maps.js';
import type { SqlErrorInfo } from './errors.js';
import { fromSqlite, type Row, reviveRow } from './values.js';

export interface StatementOutcome {
  /** Rows inserted, updated or deleted by the statement (0 for a read). */
  readonly rowsAffected: number;
  /** The connection's last inserted rowid after the statement (0 before any insert in the command). */
  readonly lastInsertRowid: number | bigint;
  /** Present when rows were requested (execute `returning`) or, in a txn/batch, when the statement returns rows. */
  readonly rows?: readonly Row[];
}

export type BatchStatementResult =
  | { readonly ok: true; readonly value: StatementOutcome }
  | { readonly ok: false; readonly error: SqlErrorInfo };

export interface MigrateOutcome {
  /** Ids applied by this command, in order; already-applied ids (same name and checksum) are skipped. */
  readonly applied: readonly number[];
}

export type CommandResult =
  | { readonly ok: true; readonly type: 'noop' }
  | { readonly ok: true; readonly type: 'execute'; readonly value: StatementOutcome }
  | { readonly ok: true; readonly type: 'txn'; readonly value: readonly StatementOutcome[] }
  | { readonly ok: true; readonly type: 'batch'; readonly value: readonly BatchStatementResult[] }
  | { readonly ok: true; readonly type: 'migrate'; readonly value: MigrateOutcome }
  | { readonly ok: false; readonly error: SqlErrorInfo };

export function failure(error: SqlErrorInfo): CommandResult {
  return { ok: false, error };
}

const packr = new MapsPackr({ useRecords: false });

export function encodeResult(result: CommandResult): Uint8Array {
  const packed = packr.pack(result);
  return new Uint8Array(packed.buffer.slice(packed.byteOffset, packed.byteOffset + packed.byteLength));
}

/** Decodes a stored result (written by this module) and restores the value mapping. */
export function decodeResult(bytes: Uint8Array): CommandResult {
  const raw = packr.unpack(bytes) as CommandResult;
  if (!raw.ok) return raw;
  switch (raw.type) {
    case 'noop':
    case 'migrate':
      return raw;
    case 'execute':
      return { ...raw, value: reviveOutcome(raw.value) };
    case 'txn':
      return { ...raw, value: raw.value.map(reviveOutcome) };
    case 'batch':
      return {
        ...raw,
        value: raw.value.map(
          (r): BatchStatementResult => (r.ok ? { ok: true, value: reviveOutcome(r.value) } : r),
        ),
      };
  }
}

function reviveOutcome(o: StatementOutcome): StatementOutcome {
  const base = {
    rowsAffected: Number(o.rowsAffected),
    lastInsertRowid: fromSqlite(o.lastInsertRowid) as number | bigint,
  };
  return o.rows === undefined
    ? base
    : { ...base, rows: o.rows.map((r) => reviveRow(r as Record<string, unknown>)) };
}
