/**
 * The value mapping between JavaScript and SQLite, in both directions.
 *
 * Into SQLite (parameters):
 *   null → NULL; string → TEXT; Uint8Array → BLOB; bigint → INTEGER (must fit in int64);
 *   number → INTEGER when it is an integer in the safe range, else REAL (NaN binds as NULL);
 *   boolean → INTEGER 0/1; Date → TEXT ISO-8601 `YYYY-MM-DDTHH:MM:SS.sssZ` (UTC, which SQLite's
 *   date functions parse). Booleans and Dates are normalized before a command is encoded, so
 *   the log only carries the five SQLite types.
 * Out of SQLite (rows): INTEGER → number, or bigint outside ±(2^53−1); REAL → number;
 *   TEXT → string; BLOB → Uint8Array; NULL → null.
 */

import { isWellFormed } from '../../lib/utf8.js';
import { sqlError } from './errors.js';
import { PARAMS_MAX } from './params.js';

export type SqlValue = null | number | bigint | string | Uint8Array;
/** A result row keyed by column name; with duplicate names the last column wins. */
export type Row = Record<string, SqlValue>;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export function isInt64(v: bigint): boolean {
  return v >= INT64_MIN && v <= INT64_MAX;
}

export function isSqlValue(v: unknown): v is SqlValue {
  return (
    v === null ||
    typeof v === 'number' ||
    typeof v === 'string' ||
    (typeof v === 'bigint' && isInt64(v)) ||
    v instanceof Uint8Array
  );
}

/** Whether normalizeValue takes `v` (checked without copying or converting it). */
export function isBindable(v: unknown): boolean {
  return isSqlValue(v) || typeof v === 'boolean' || (v instanceof Date && !Number.isNaN(v.getTime()));
}

/** Normalizes a user-supplied parameter value to one of the five SQLite types. */
export function normalizeValue(v: unknown, where: string): SqlValue {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw sqlError('HQL_INVALID_PARAMS', `${where}: invalid Date`);
    return v.toISOString();
  }
  if (v instanceof Uint8Array) return copyBytes(v);
  if (typeof v === 'bigint' && !isInt64(v)) {
    throw sqlError('HQL_INVALID_PARAMS', `${where}: bigint ${v} does not fit in a 64-bit INTEGER`);
  }
  if (isSqlValue(v)) return v;
  const kind = v === undefined ? 'undefined' : typeof v === 'object' ? 'an object' : typeof v;
  throw sqlError(
    'HQL_INVALID_PARAMS',
    `${where}: ${kind} cannot be bound (use null, number, bigint, string, Uint8Array, boolean or Date)`,
  );
}

/** A plain Uint8Array copy: no shared memory with the caller, no Buffer subclass. */
export function copyBytes(v: Uint8Array): Uint8Array {
  const out = new Uint8Array(v.byteLength);
  out.set(v);
  return out;
}

/**
 * What better-sqlite3 is given to bind: it binds every JS number as REAL, so integers go as
 * bigint. -0 is the integer 0, as a write stores it (its command's encoding has no -0) and as
 * the remote client sends it (found from outside: `SELECT ?, typeof(?1)` of -0 was REAL -0
 * embedded and INTEGER 0 remotely).
 */
export function toBindValue(v: SqlValue): null | number | bigint | string | Buffer {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return v;
}

/** Maps a value read with `safeIntegers(true)` to the public mapping above. */
export function fromSqlite(v: unknown): SqlValue {
  if (typeof v === 'bigint') {
    return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
  }
  if (v instanceof Uint8Array) {
    // better-sqlite3 returns a Buffer that owns its memory; a plain view keeps the type uniform.
    return Object.getPrototypeOf(v) === Uint8Array.prototype
      ? v
      : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }
  if (v === null || typeof v === 'number' || typeof v === 'string') return v;
  throw new TypeError(`unexpected value from SQLite: ${typeof v}`);
}

/**
 * What a row's values weigh in the bounds on rows (query_result_bytes_max, a write's rows): a
 * string its length, a BLOB its bytes, anything else 8.
 */
export function rowValueBytes(row: readonly unknown[]): number {
  let bytes = 0;
  for (const v of row) bytes += typeof v === 'string' ? v.length : v instanceof Uint8Array ? v.byteLength : 8;
  return bytes;
}

export function toRow(columns: readonly string[], values: readonly unknown[]): Row {
  const row: Row = {};
  for (let i = 0; i < columns.length; i++) {
    const name = columns[i] as string;
    const value = fromSqlite(values[i]);
    // A column named __proto__ must become a property, not the object's prototype.
    if (name === '__proto__') {
      Object.defineProperty(row, name, { value, enumerable: true, writable: true, configurable: true });
    } else {
      row[name] = value;
    }
  }
  return row;
}

/** Restores the value mapping after a msgpack round trip (bins decode as Buffer). */
export function reviveRow(row: Record<string, unknown>): Row {
  const out: Row = {};
  for (const [name, value] of Object.entries(row)) {
    const v = fromSqlite(value);
    if (name === '__proto__') {
      Object.defineProperty(out, name, { value: v, enumerable: true, writable: true, configurable: true });
    } else {
      out[name] = v;
    }
  }
  return out;
}

/**
 * HQL_INVALID_PARAMS when a read's SQL text or a string parameter holds a lone UTF-16 surrogate:
 * UTF-8 cannot carry it, and the read bound something else (the embedded reader the bytes ED A0
 * 80, a remote client U+FFFD), as writes are refused for (command.ts, wellFormed). One level
 * deep: the parameters are scalars (or refused elsewhere).
 */
export function checkReadText(sql: unknown, params: unknown, what: string): void {
  const bad = (v: unknown) => typeof v === 'string' && !isWellFormed(v);
  if (bad(sql))
    throw sqlError(
      'HQL_INVALID_PARAMS',
      `${what}: sql holds a lone UTF-16 surrogate, which UTF-8 cannot carry`,
    );
  if (typeof params !== 'object' || params === null) return;
  // Counted before anything else looks at them: 300,000 named parameters held the thread for
  // seconds (found by an outside probe: a leader lost its term to one HTTP /query).
  const count = Array.isArray(params) ? params.length : Object.keys(params).length;
  if (count > PARAMS_MAX)
    throw sqlError(
      'HQL_INVALID_PARAMS',
      `${what}: ${count} parameters, more than a statement can take (${PARAMS_MAX})`,
    );
  const entries = Array.isArray(params)
    ? params.map((v, i) => [`[${i}]`, v] as const)
    : Object.entries(params).map(([k, v]) => [`.${k}`, v] as const);
  for (const [at, v] of entries)
    if (bad(v))
      throw sqlError(
        'HQL_INVALID_PARAMS',
        `${what}: params${at} holds a lone UTF-16 surrogate, which UTF-8 cannot carry`,
      );
}
