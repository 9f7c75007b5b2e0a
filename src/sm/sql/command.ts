/**
 * Commands of the SQL state machine and their binary codec (the payload of a Raft log entry).
 *
 * Wire format: one version byte (`COMMAND_FORMAT_VERSION`) followed by standard msgpack (no
 * msgpackr records, so other languages can produce commands) of
 * `{ nowMs, seed, session?, valueBytesMax?, command }`. The decoder treats its input as untrusted: anything that
 * is not exactly a valid command is a `SqlError` with code `HQL_MALFORMED_COMMAND`, never a crash
 * and never a partially valid object. Encoding validates with the same code, so whatever encodes
 * also decodes.
 */
import { clientSession, SESSION_PROTECT_MS_MAX, SESSION_PROTECT_MS_MIN } from '../../lib/client-session.js';
import { isPlainObject, namedParamsProblem } from '../../lib/named-params.js';
import { isWellFormed } from '../../lib/utf8.js';
import { packVersioned, unpackVersioned } from '../../protocol/versioned-msgpack.js';
import { SqlError, type SqlErrorInfo, sqlError } from './errors.js';
import { isStmtRef, PARAMS_MAX, type ParamValue, type StmtRef } from './params.js';
import { copyBytes, isInt64, normalizeValue } from './values.js';

export type { Params, ParamValue, StmtRef } from './params.js';

/** What callers may pass as a parameter; booleans and Dates are normalized when encoding. */
export type ParamInput = ParamValue | boolean | Date;
export type ParamsOf<P> = readonly P[] | Readonly<Record<string, P>>;

export interface ExecuteCommand<P = ParamValue> {
  readonly type: 'execute';
  readonly sql: string;
  readonly params: ParamsOf<P>;
  /** Return the statement's rows (RETURNING, or a SELECT). */
  readonly returning: boolean;
}

export interface TxnStatement<P = ParamValue> {
  readonly sql: string;
  readonly params: ParamsOf<P>;
}

/** All statements or none. A statement may bind `{ $ref: [i, row, column] }` from statement i < its own. */
export interface TxnCommand<P = ParamValue> {
  readonly type: 'txn';
  readonly statements: readonly TxnStatement<P>[];
}

/** Several `;`-separated statements without parameters; one result (or error) per statement. */
export interface BatchCommand {
  readonly type: 'batch';
  readonly sql: string;
}

export interface Migration {
  /** Positive, strictly increasing. */
  readonly id: number;
  readonly name: string;
  readonly sql: string;
  /** Opaque (typically hex SHA-256 of `sql`); a changed checksum of an applied id is an error. */
  readonly checksum: string;
}

export interface MigrateCommand {
  readonly type: 'migrate';
  readonly migrations: readonly Migration[];
}

export type Command<P = ParamValue> = ExecuteCommand<P> | TxnCommand<P> | BatchCommand | MigrateCommand;
export type CommandInput = Command<ParamInput>;

/** Exactly-once: a client numbers its writes; one outstanding write per clientId. */
export interface Session {
  readonly clientId: string;
  readonly seq: number;
  /**
   * The proposer's `session_protect_ms` (lib/client-session.ts): how long after it was last seen
   * this session is never forgotten for room. Absent in entries written before the stamp existed.
   */
  readonly protectMs?: number;
}

export interface CommandEnvelope<P = ParamValue> {
  readonly command: Command<P>;
  readonly session?: Session;
  /** The proposer's clock: every replica evaluates 'now' / CURRENT_TIMESTAMP as this instant. */
  readonly nowMs: number;
  /** Seeds random() / randomblob() for this command, identically on every replica. */
  readonly seed: number;
  /**
   * The proposer's `sql_value_bytes_max`: the largest string, blob or row the command may make
   * or read (SQLite's SQLITE_LIMIT_LENGTH), set on the writer of every replica while it runs, so
   * a statement over it fails alike everywhere (SQLITE_TOOBIG). Absent in entries written before
   * the stamp existed: those run under the bound the writer's connection opened with (better-sqlite3
   * sets V8's longest string, 536,870,888 bytes), as they did.
   */
  readonly valueBytesMax?: number;
}

/**
 * The largest `valueBytesMax`: SQLite's compile-time bound on a string, blob or row
 * (SQLITE_MAX_LENGTH, which better-sqlite3 leaves at its default). A connection opens at V8's
 * longest string, below it.
 */
export const SQLITE_LENGTH_MAX = 1_000_000_000;
/**
 * The smallest `valueBytesMax`: twice the largest result a client session keeps (1 MiB), which
 * the writer stores under the command's limit.
 */
export const VALUE_BYTES_MAX_MIN = 2 * 1024 * 1024;

export const COMMAND_FORMAT_VERSION = 1;
export const TXN_STATEMENTS_MAX = 100_000;
export const MIGRATIONS_MAX = 10_000;
export const CLIENT_ID_LENGTH_MAX = 256;
/** 9999-12-31T23:59:59.999Z: SQLite's date functions stop at year 9999. */
export const NOW_MS_MAX = 253_402_300_799_999;

/**
 * Normalizes, validates and encodes a command envelope. Throws `SqlError` on invalid input:
 * HQL_INVALID_PARAMS, the caller's input (HQL_MALFORMED_COMMAND is for bytes that do not decode:
 * a txn without statements or with a `$ref` to a later one was that over HTTP, while the clients,
 * checking their arguments first, said HQL_INVALID_PARAMS).
 */
export function encodeCommand(envelope: CommandEnvelope<ParamInput>): Uint8Array {
  let valid: CommandEnvelope;
  try {
    valid = validateEnvelope(normalizeEnvelope(envelope));
  } catch (e) {
    if (!(e instanceof SqlError) || e.code !== 'HQL_MALFORMED_COMMAND') throw e;
    throw sqlError('HQL_INVALID_PARAMS', e.message.replace(/^malformed command: (command\.)?/, ''));
  }
  return packVersioned(COMMAND_FORMAT_VERSION, toWire(valid));
}

/** Decodes untrusted bytes. Throws `SqlError` (`HQL_MALFORMED_COMMAND`) on anything invalid. */
export function decodeCommand(bytes: Uint8Array): CommandEnvelope {
  return validateEnvelope(unpackVersioned(bytes, COMMAND_FORMAT_VERSION, malformed, 'user'));
}

/** Like decodeCommand, but returns the error data instead of throwing. */
export function tryDecodeCommand(bytes: Uint8Array): CommandEnvelope | SqlErrorInfo {
  try {
    return decodeCommand(bytes);
  } catch (e) {
    if (e instanceof SqlError) return e.info;
    throw e;
  }
}

// ---- normalization (encode side) -------------------------------------------------------------

/**
 * The packed form of a valid envelope. A txn names each distinct SQL text once: a statement
 * whose SQL equals an earlier one's carries that statement's index instead of the text (a txn
 * of 1,000 equal INSERTs then carries the text once, not 1,000 times: smaller log entries,
 * less to send, checksum, store and decode).
 */
function toWire(e: CommandEnvelope): CommandEnvelope | Record<string, unknown> {
  if (e.command.type !== 'txn') return e;
  const first = new Map<string, number>();
  const statements = e.command.statements.map((s, i) => {
    const earlier = first.get(s.sql);
    if (earlier !== undefined) return { sql: earlier, params: s.params };
    first.set(s.sql, i);
    return s;
  });
  return { ...e, command: { type: 'txn', statements } };
}

function normalizeEnvelope(e: CommandEnvelope<ParamInput>): unknown {
  return {
    nowMs: e.nowMs,
    seed: e.seed,
    ...(e.session === undefined ? {} : { session: normalizeSession(e.session) }),
    ...(e.valueBytesMax === undefined ? {} : { valueBytesMax: e.valueBytesMax }),
    command: normalizeCommand(e.command),
  };
}

function normalizeSession(s: Session): Session {
  return clientSession(s.clientId, s.seq, s.protectMs);
}

function normalizeCommand(c: CommandInput): unknown {
  if (typeof c !== 'object' || c === null) return c;
  switch (c.type) {
    case 'execute':
      return {
        type: c.type,
        sql: wellFormed(c.sql, 'sql'),
        params: normalizeParams(c.params, -1),
        returning: c.returning,
      };
    case 'txn':
      return {
        type: c.type,
        statements: Array.isArray(c.statements)
          ? c.statements.map((s, i) => ({
              sql: wellFormed(s?.sql, `statements[${i}].sql`),
              params: normalizeParams(s?.params, i),
            }))
          : c.statements,
      };
    case 'batch':
      return { type: c.type, sql: wellFormed(c.sql, 'sql') };
    case 'migrate':
      return {
        type: c.type,
        migrations: Array.isArray(c.migrations)
          ? c.migrations.map((m, i) => ({
              id: m?.id,
              name: wellFormed(m?.name, `migrations[${i}].name`),
              sql: wellFormed(m?.sql, `migrations[${i}].sql`),
              checksum: m?.checksum,
            }))
          : c.migrations,
      };
    default:
      return c;
  }
}

/**
 * `stmt` is the statement's index in a txn, -1 for an execute. Paths of error messages are only
 * built on the error path: this runs for every parameter of every write.
 */
function normalizeParams(params: unknown, stmt: number): unknown {
  if (params === undefined) return [];
  if (Array.isArray(params)) {
    const out: unknown[] = new Array(params.length);
    for (let i = 0; i < params.length; i++) out[i] = normalizeParam(params[i], stmt, i);
    return out;
  }
  if (isPlainObject(params)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(params)) {
      // The decoder refuses the name (entries already in logs were refused with it, so it stays
      // refused); `out[k] =` would have set out's prototype, and the parameter gone missing.
      if (k === '__proto__')
        throw sqlError(
          'HQL_INVALID_PARAMS',
          `${paramPath(stmt, k, '')}: a write's parameter may not be named __proto__ (rename it)`,
        );
      out[k] = normalizeParam(v, stmt, k);
    }
    return out;
  }
  return params;
}

function normalizeParam(v: unknown, stmt: number, key: number | string): unknown {
  if (typeof v === 'string') return isWellFormed(v) ? v : wellFormed(v, paramPath(stmt, key, ''));
  if (typeof v === 'number' || v === null) return v;
  if (isStmtRef(v)) return { $ref: v.$ref };
  return normalizeValue(v, paramPath(stmt, key, ''));
}

/**
 * `v` unless it is a string with a lone UTF-16 surrogate, which UTF-8 cannot carry: SQLite was
 * given it as bytes that are not UTF-8 and read it back as U+FFFD (three of them), a value other
 * than the one written (found over HTTP, `"\ud800"` in a JSON body). Refused when a write is
 * made (encoded), never when it is applied: entries already in a log apply as they did.
 */
function wellFormed(v: unknown, path: string): unknown {
  if (typeof v !== 'string' || isWellFormed(v)) return v;
  throw sqlError(
    'HQL_INVALID_PARAMS',
    `${path} holds a lone UTF-16 surrogate, which UTF-8 cannot carry (it would read back as U+FFFD)`,
  );
}

/** `params[0]`, `statements[3].params.name`; with `prefix` 'command.' as the decoder names them. */
function paramPath(stmt: number, key: number | string, prefix: string): string {
  const base = stmt < 0 ? `${prefix}params` : `${prefix}statements[${stmt}].params`;
  return typeof key === 'number' ? `${base}[${key}]` : `${base}.${key}`;
}

// ---- validation (both sides) -----------------------------------------------------------------

function malformed(path: string, message: string): never {
  throw sqlError('HQL_MALFORMED_COMMAND', `malformed command: ${path}: ${message}`);
}

function record(v: unknown, path: string, required: readonly string[], optional: readonly string[] = []) {
  if (!isPlainObject(v)) malformed(path, 'expected a map');
  for (const key of Object.keys(v)) {
    if (!required.includes(key) && !optional.includes(key)) malformed(path, `unexpected field '${key}'`);
  }
  for (const key of required) {
    if (!(key in v)) malformed(path, `missing field '${key}'`);
  }
  return v;
}

function str(v: unknown, path: string, lengthMax = Number.POSITIVE_INFINITY): string {
  if (typeof v !== 'string') malformed(path, 'expected a string');
  if (v.length > lengthMax) malformed(path, `longer than ${lengthMax}`);
  return v;
}

/** msgpack decodes int64 as bigint: accept both forms of an integer. */
function int(v: unknown, path: string, min: number, max: number): number {
  const n =
    typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    malformed(path, `expected an integer in [${min}, ${max}]`);
  }
  return n;
}

function list(v: unknown, path: string, lengthMax: number): readonly unknown[] {
  if (!Array.isArray(v)) malformed(path, 'expected an array');
  if (v.length > lengthMax) malformed(path, `more than ${lengthMax} elements`);
  return v;
}

function validateEnvelope(raw: unknown): CommandEnvelope {
  const r = record(raw, 'envelope', ['nowMs', 'seed', 'command'], ['session', 'valueBytesMax']);
  const nowMs = int(r.nowMs, 'nowMs', 0, NOW_MS_MAX);
  const seed = int(r.seed, 'seed', 0, 0xffff_ffff);
  const limit =
    r.valueBytesMax === undefined
      ? {}
      : { valueBytesMax: int(r.valueBytesMax, 'valueBytesMax', VALUE_BYTES_MAX_MIN, SQLITE_LENGTH_MAX) };
  const command = validateCommand(r.command);
  if (r.session === undefined) return { nowMs, seed, ...limit, command };
  const s = record(r.session, 'session', ['clientId', 'seq'], ['protectMs']);
  const clientId = str(s.clientId, 'session.clientId', CLIENT_ID_LENGTH_MAX);
  if (clientId.length === 0) malformed('session.clientId', 'empty');
  const session: Session = clientSession(
    clientId,
    int(s.seq, 'session.seq', 0, Number.MAX_SAFE_INTEGER),
    s.protectMs === undefined
      ? undefined
      : int(s.protectMs, 'session.protectMs', SESSION_PROTECT_MS_MIN, SESSION_PROTECT_MS_MAX),
  );
  return { nowMs, seed, session, ...limit, command };
}

function validateCommand(raw: unknown): Command {
  if (!isPlainObject(raw)) malformed('command', 'expected a map');
  switch (raw.type) {
    case 'execute': {
      const c = record(raw, 'command', ['type', 'sql', 'params', 'returning']);
      if (typeof c.returning !== 'boolean') malformed('command.returning', 'expected a boolean');
      return {
        type: 'execute',
        sql: str(c.sql, 'command.sql'),
        params: validateParams(c.params, -1, 0),
        returning: c.returning,
      };
    }
    case 'txn': {
      const c = record(raw, 'command', ['type', 'statements']);
      const raws = list(c.statements, 'command.statements', TXN_STATEMENTS_MAX);
      const statements: TxnStatement[] = new Array(raws.length);
      for (let i = 0; i < raws.length; i++) statements[i] = validateTxnStatement(raws[i], i, statements);
      if (statements.length === 0) malformed('command.statements', 'empty');
      return { type: 'txn', statements };
    }
    case 'batch': {
      const c = record(raw, 'command', ['type', 'sql']);
      return { type: 'batch', sql: str(c.sql, 'command.sql') };
    }
    case 'migrate': {
      const c = record(raw, 'command', ['type', 'migrations']);
      const migrations = list(c.migrations, 'command.migrations', MIGRATIONS_MAX).map((m, i) => {
        const path = `command.migrations[${i}]`;
        const r = record(m, path, ['id', 'name', 'sql', 'checksum']);
        return {
          id: int(r.id, `${path}.id`, 1, Number.MAX_SAFE_INTEGER),
          name: str(r.name, `${path}.name`),
          sql: str(r.sql, `${path}.sql`),
          checksum: str(r.checksum, `${path}.checksum`),
        };
      });
      return { type: 'migrate', migrations };
    }
    default:
      return malformed('command.type', `unknown command type ${JSON.stringify(String(raw.type))}`);
  }
}

/**
 * `record(s, path, ['sql', 'params'])` without the per-statement allocations: a txn may hold
 * 100,000. `sql` is a string, or the index of an earlier statement whose SQL this one repeats
 * (see toWire).
 */
function validateTxnStatement(s: unknown, i: number, earlier: readonly TxnStatement[]): TxnStatement {
  if (!isPlainObject(s)) malformed(statementPath(i), 'expected a map');
  for (const key in s) {
    if (key !== 'sql' && key !== 'params') malformed(statementPath(i), `unexpected field '${key}'`);
  }
  if (!('sql' in s)) malformed(statementPath(i), "missing field 'sql'");
  if (!('params' in s)) malformed(statementPath(i), "missing field 'params'");
  let sql = s.sql;
  if (typeof sql === 'number') {
    if (!(Number.isInteger(sql) && sql >= 0 && sql < i)) {
      malformed(`${statementPath(i)}.sql`, 'expected a string or the index of an earlier statement');
    }
    sql = earlier[sql]!.sql;
  } else if (typeof sql !== 'string') malformed(`${statementPath(i)}.sql`, 'expected a string');
  return { sql: sql as string, params: validateParams(s.params, i, i) };
}

/**
 * `stmt`: the statement's index in a txn, -1 for an execute (it names the path in errors).
 * `refsBelow`: statements with an index below this may be referenced (0 = no refs allowed).
 */
function validateParams(
  raw: unknown,
  stmt: number,
  refsBelow: number,
): readonly ParamValue[] | Record<string, ParamValue> {
  if (Array.isArray(raw)) {
    if (raw.length > PARAMS_MAX) malformed(paramsPath(stmt), `more than ${PARAMS_MAX} elements`);
    const out: ParamValue[] = new Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = validateParam(raw[i], stmt, i, refsBelow);
    return out;
  }
  const problem = namedParamsProblem(raw);
  if (problem !== null) malformed(paramsPath(stmt), problem);
  const named = raw as Record<string, unknown>;
  const keys = Object.keys(named);
  if (keys.length > PARAMS_MAX) malformed(paramsPath(stmt), `more than ${PARAMS_MAX} parameters`);
  const out: Record<string, ParamValue> = {};
  for (const key of keys) {
    if (key === '__proto__') malformed(paramsPath(stmt), 'invalid parameter name "__proto__"');
    out[key] = validateParam(named[key], stmt, key, refsBelow);
  }
  return out;
}

function statementPath(i: number): string {
  return `command.statements[${i}]`;
}

function paramsPath(stmt: number): string {
  return stmt < 0 ? 'command.params' : `command.statements[${stmt}].params`;
}

const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

function validateParam(v: unknown, stmt: number, key: number | string, refsBelow: number): ParamValue {
  if (v === null || typeof v === 'number' || typeof v === 'string') return v;
  const path = paramPath(stmt, key, 'command.');
  if (typeof v === 'bigint') {
    if (!isInt64(v)) malformed(path, 'integer outside the 64-bit range');
    return v >= SAFE_MIN && v <= SAFE_MAX ? Number(v) : v;
  }
  if (v instanceof Uint8Array) return copyBytes(v);
  if (isPlainObject(v)) {
    if (refsBelow === 0) malformed(path, '$ref is only valid in a later statement of a txn');
    const r = record(v, path, ['$ref']);
    const parts = list(r.$ref, `${path}.$ref`, 3);
    if (parts.length !== 3) malformed(`${path}.$ref`, 'expected [statementIndex, rowIndex, column]');
    const column =
      typeof parts[2] === 'string' ? parts[2] : int(parts[2], `${path}.$ref[2]`, 0, Number.MAX_SAFE_INTEGER);
    const ref: StmtRef = {
      $ref: [
        int(parts[0], `${path}.$ref[0]`, 0, refsBelow - 1),
        int(parts[1], `${path}.$ref[1]`, 0, Number.MAX_SAFE_INTEGER),
        column,
      ],
    };
    return ref;
  }
  return malformed(path, `unsupported value type ${typeof v}`);
}
