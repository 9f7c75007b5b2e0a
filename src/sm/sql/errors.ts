/**
 * Typed errors of the SQL state machine. A command's own failure (constraint violation, syntax
 * error, forbidden statement) is a deterministic *result* — every replica computes the same one —
 * so it travels as plain data (`SqlErrorInfo`, structured-clone and msgpack friendly) and becomes
 * a thrown `SqlError` only at the API edge. Environmental failures (I/O, disk full, corruption)
 * are not deterministic: they are thrown out of `applyBatch` as `HiqliteError` and must stop the
 * apply loop, because recording them as a result would make replicas diverge.
 */
import Database from 'better-sqlite3';
import { type ErrorCode, HiqliteError } from '../../lib/errors.js';

/** The subset of lib/errors.ts's ErrorCode that the SQL state machine produces. */
export type SqlErrorCode = Extract<
  ErrorCode,
  /** SQLite rejected the statement: syntax error, no such table, wrong argument count, … */
  | 'HQL_SQL'
  /** A UNIQUE / NOT NULL / CHECK / FOREIGN KEY / trigger RAISE constraint failed. */
  | 'HQL_CONSTRAINT'
  /** Parameters do not match the statement (count, names, types, `$ref` out of range). */
  | 'HQL_INVALID_PARAMS'
  /** The statement would make replicas diverge (`'localtime'`, `total_changes()`, …). */
  | 'HQL_NONDETERMINISTIC'
  /** Transaction control, ATTACH, VACUUM, TEMP objects, connection PRAGMAs, reserved tables. */
  | 'HQL_STATEMENT_NOT_ALLOWED'
  /** Command bytes that do not decode to a valid command (untrusted input). */
  | 'HQL_MALFORMED_COMMAND'
  /** Migration ids not increasing, or a new migration older than the newest applied one. */
  | 'HQL_MIGRATION_ORDER'
  /** An applied migration was sent again with a different name or checksum. */
  | 'HQL_MIGRATION_CHANGED'
  /** A session sequence number lower than the last one applied: its result is gone. */
  | 'HQL_SESSION_STALE'
  /** A duplicate of an applied command whose result was too large to keep. */
  | 'HQL_SESSION_RESULT_UNAVAILABLE'
  /** A new client session found the session table full of sessions that may not be forgotten yet. */
  | 'HQL_SESSIONS_FULL'
  /** A read-only connection was given a statement that writes. */
  | 'HQL_READONLY'
  /** `waitForApplied` did not see the index in time. */
  | 'HQL_TIMEOUT'
  /** The caller's AbortSignal fired. */
  | 'HQL_ABORTED'
  /** A read returned more than `query_rows_max` / `query_result_bytes_max`; a write returned rows past its value bound. */
  | 'HQL_RESULT_TOO_LARGE'
>;

/** The data form of an error: what a command result carries and a session stores. */
export interface SqlErrorInfo {
  readonly code: SqlErrorCode;
  readonly message: string;
  /** SQLite's extended result code name, e.g. `SQLITE_CONSTRAINT_UNIQUE`. */
  readonly sqliteCode?: string;
  /** Which statement of a txn / batch / migration failed (0-based). */
  readonly statementIndex?: number;
  /** Which migration failed. */
  readonly migrationId?: number;
}

const RETRYABLE_CODES: ReadonlySet<SqlErrorCode> = new Set(['HQL_TIMEOUT', 'HQL_SESSIONS_FULL']);

/** Codes only SQL produces: a client rebuilds an error with one of these as a SqlError. */
export const SQL_ONLY_CODES: ReadonlySet<string> = new Set<SqlErrorCode>([
  'HQL_SQL',
  'HQL_CONSTRAINT',
  'HQL_INVALID_PARAMS',
  'HQL_NONDETERMINISTIC',
  'HQL_STATEMENT_NOT_ALLOWED',
  'HQL_MALFORMED_COMMAND',
  'HQL_MIGRATION_ORDER',
  'HQL_MIGRATION_CHANGED',
  'HQL_SESSION_STALE',
  'HQL_SESSION_RESULT_UNAVAILABLE',
  'HQL_READONLY',
  'HQL_RESULT_TOO_LARGE',
]);

/**
 * A query stopped at its limit (`query_timeout_ms`, a read's `timeoutMs`): not retryable, the
 * same query would run as long again. The one form of it, whichever side noticed first: the
 * read thread's interrupt or the pool's deadline (they raced, and a remote client saw either
 * message, one retryable and one not: found from outside).
 */
export function queryTimeoutError(limitMs: number, cause?: unknown): HiqliteError {
  return new HiqliteError(
    'HQL_TIMEOUT',
    `the query ran longer than its limit of ${Math.round(limitMs)} ms and was interrupted`,
    {
      retryable: false,
      ...(cause === undefined ? {} : { cause }),
    },
  );
}

export class SqlError extends HiqliteError {
  override readonly name: string = 'SqlError';
  readonly info: SqlErrorInfo;

  constructor(info: SqlErrorInfo, options: { cause?: unknown } = {}) {
    super(info.code, info.message, {
      retryable: RETRYABLE_CODES.has(info.code),
      cause: options.cause,
    });
    this.info = info;
  }

  get sqlCode(): SqlErrorCode {
    return this.info.code;
  }

  /** SQLite's extended result code name, e.g. `SQLITE_CONSTRAINT_UNIQUE` (`info.sqliteCode`). */
  get sqliteCode(): string | undefined {
    return this.info.sqliteCode;
  }

  /** Which statement of a txn / batch / migration failed, 0-based (`info.statementIndex`). */
  get statementIndex(): number | undefined {
    return this.info.statementIndex;
  }

  /** Which migration failed (`info.migrationId`). */
  get migrationId(): number | undefined {
    return this.info.migrationId;
  }
}

export function sqlError(code: SqlErrorCode, message: string, extra: Partial<SqlErrorInfo> = {}): SqlError {
  return new SqlError({ ...extra, code, message });
}

/**
 * A read's `minIndex` beyond what the cluster had committed when the leader was asked: no
 * acknowledged write of this cluster has that index (it came from another cluster, or from before
 * the cluster was restored from a backup). Refused at once; it waited for its whole deadline.
 */
export function beyondTheLog(minIndex: number, committed: number): SqlError {
  return sqlError(
    'HQL_INVALID_PARAMS',
    `minIndex ${minIndex} is beyond the cluster's log (committed: ${committed}): it is no acknowledged write's index of this cluster (another cluster's, or one from before a restore)`,
  );
}

/**
 * SQLite primary result codes whose failure depends only on the statement and the database
 * content, so every replica fails identically. Everything else (IOERR, FULL, NOMEM, BUSY,
 * CORRUPT, …) depends on the node and is fatal for the apply loop.
 */
const DETERMINISTIC_SQLITE_CODES: ReadonlySet<string> = new Set([
  'SQLITE_ERROR',
  'SQLITE_CONSTRAINT',
  'SQLITE_MISMATCH',
  'SQLITE_TOOBIG',
  'SQLITE_RANGE',
  'SQLITE_AUTH',
  'SQLITE_SCHEMA',
]);

function primaryCode(code: string): string {
  const second = code.indexOf('_', 'SQLITE_'.length);
  return second === -1 ? code : code.slice(0, second);
}

/** What the connection was doing when SQLite failed: applying log entries, or a read. */
export type SqliteWork = 'apply' | 'read';

/**
 * Turns an exception raised while executing a command into a deterministic error result, or
 * rethrows it when it is not deterministic (environmental failure or programmer error).
 */
/** What SQLITE_TOOBIG means here, by where it happened (the text is part of a write's result: fixed). */
const TOO_BIG_HINT: Readonly<Record<SqliteWork, string>> = {
  apply:
    "a string, blob or row larger than the sql_value_bytes_max of the node that proposed the write (a bound parameter, a value the statement makes, or a row it writes or reads), or the bound of the SQLite connection (V8's longest string, 536870888 bytes)",
  read: "a string, blob or row larger than the sql_value_bytes_max of the node that ran the read, or the bound of the SQLite connection (V8's longest string, 536870888 bytes)",
};

export function classifyCommandError(
  e: unknown,
  during: SqliteWork,
  extra: Partial<SqlErrorInfo> = {},
): SqlErrorInfo {
  if (e instanceof SqlError) return { ...e.info, ...extra };
  if (e instanceof Database.SqliteError) {
    const primary = primaryCode(e.code);
    if (!DETERMINISTIC_SQLITE_CODES.has(primary)) throw fatalSqliteError(e, during);
    const code: SqlErrorCode = primary === 'SQLITE_CONSTRAINT' ? 'HQL_CONSTRAINT' : 'HQL_SQL';
    const message = primary === 'SQLITE_TOOBIG' ? `${e.message}: ${TOO_BIG_HINT[during]}` : e.message;
    return { ...extra, code, message, sqliteCode: e.code };
  }
  // better-sqlite3 reports parameter mismatches ("Too few parameter values", "Missing named
  // parameter", "bigint is too big") as RangeError before SQLite runs anything.
  if (e instanceof RangeError && !/call stack/i.test(e.message)) {
    // A bound value over the connection's length limit: "The bound string, buffer, or bigint is too big".
    const message = /too big/i.test(e.message) ? `${e.message}: ${TOO_BIG_HINT[during]}` : e.message;
    return { ...extra, code: 'HQL_INVALID_PARAMS', message };
  }
  throw e;
}

/**
 * `e` is a better-sqlite3 `SqliteError`, typed by the fields used: this module's declarations are
 * part of the package's public types, and better-sqlite3's types are a dev dependency only.
 */
export function fatalSqliteError(
  e: { readonly code: string; readonly message: string },
  during: SqliteWork,
): HiqliteError {
  const corrupt = e.code.startsWith('SQLITE_CORRUPT') || e.code === 'SQLITE_NOTADB';
  if (corrupt) {
    // The remedy: a restart checks the file, moves a damaged one aside and rebuilds it
    // (state-machine.ts, checkDatabaseAtStart).
    return new HiqliteError(
      'HQL_CORRUPTION',
      `the node's database file is damaged (${e.code}: ${e.message}) during ${during === 'apply' ? 'an apply' : 'a read'}: ` +
        'restart the node: it moves the damaged file aside and rebuilds it from its snapshot and log, or from the leader',
      { retryable: false, cause: e },
    );
  }
  // SQLite says "database or disk is full" for both; name the likely one.
  const full =
    e.code === 'SQLITE_FULL'
      ? ' (no space left on the disk of data_dir, or the database reached its max_page_count)'
      : '';
  const what = during === 'apply' ? 'state machine cannot apply' : 'the read failed';
  return new HiqliteError('HQL_IO', `${what}: ${e.code}: ${e.message}${full}`, {
    retryable: false,
    cause: e,
  });
}

/** Rebuilds a thrown error from a result's error data (what the runtime hands to the caller). */
export function errorFromInfo(info: SqlErrorInfo): SqlError {
  return new SqlError(info);
}
