/**
 * Deterministic SQL: the same log entry must produce the same database on every replica.
 *
 * Time and randomness enter replicated state only through the log entry (`nowMs`, `seed`):
 *
 * - Proposer: `prepareForProposal(command, { nowMs, seed, session })` stamps the proposer's clock
 *   and a seed into the envelope and statically rejects what can never be deterministic (see
 *   statement-guard.ts), so the caller gets the error without spending a log entry.
 * - Apply: the writer connection overrides SQLite's non-deterministic built-ins with functions
 *   driven by the command being applied (`installDeterministicFunctions`):
 *     random(), randomblob(N)         → a PRNG seeded with the command's `seed`;
 *     CURRENT_TIMESTAMP/DATE/TIME     → `nowMs` (SQLite compiles these keywords into calls of
 *                                       current_timestamp()/current_date()/current_time(), so
 *                                       the override also covers `DEFAULT CURRENT_TIMESTAMP`);
 *     date, time, datetime, julianday, unixepoch, strftime, timediff
 *                                     → evaluated by SQLite's own built-ins on a private
 *                                       in-memory connection, with a time value of 'now' (or a
 *                                       missing one) replaced by `nowMs`;
 *                                       the modifiers 'localtime'/'utc' fail (node time zone);
 *     total_changes(), sqlite_offset(X) → fail (connection history, file layout).
 *   Overriding at apply time instead of rewriting SQL text also catches 'now' arriving through a
 *   bound parameter, a column value, a view, a trigger or a column DEFAULT.
 * - changes() and last_insert_rowid() are per-connection state that leaks from earlier commands
 *   (and differ after a restart); the state machine resets both before every command
 *   (`resetConnectionCounters`), so they are deterministic within a command.
 */
import Database from 'better-sqlite3';
import { assert } from '../../lib/assert.js';
import { Prng } from '../../lib/prng.js';
import {
  type CommandEnvelope,
  type CommandInput,
  encodeCommand,
  type ParamInput,
  type Session,
} from './command.js';
import { SqlError, type SqlErrorInfo, sqlError } from './errors.js';
import { Lru } from './lru.js';
import { DATE_FUNCTIONS, NODE_LOCAL_MODIFIERS } from './statement-guard.js';
import { splitStatements } from './tokenizer.js';
import { checkWriteStatement, WRITE_RECURSION_ROWS_MAX_DEFAULT } from './write-bounds.js';

export interface ProposalContext {
  /** The proposer's wall clock in ms since the epoch. */
  readonly nowMs: number;
  /** A uint32 from the proposer's random source. */
  readonly seed: number;
  readonly session?: Session;
  /** `write_recursion_rows_max` (write-bounds.ts); its default when omitted. */
  readonly recursionRowsMax?: number;
  /** `sql_value_bytes_max`, stamped into the entry (CommandEnvelope.valueBytesMax); none when omitted. */
  readonly valueBytesMax?: number;
}

/**
 * Validates a command on the proposer and encodes it as the log entry payload. Throws
 * `SqlError` when the command is malformed or contains a statement that is not allowed or not
 * deterministic.
 */
export function prepareForProposal(command: CommandInput, ctx: ProposalContext): Uint8Array {
  const envelope: CommandEnvelope<ParamInput> = {
    command,
    nowMs: Math.floor(ctx.nowMs),
    seed: ctx.seed >>> 0,
    ...(ctx.session === undefined ? {} : { session: ctx.session }),
    ...(ctx.valueBytesMax === undefined ? {} : { valueBytesMax: ctx.valueBytesMax }),
  };
  // Encoding validates the command's structure first, so the static check can trust it.
  const bytes = encodeCommand(envelope);
  const error = staticCheck(command, ctx.recursionRowsMax);
  if (error !== null) throw new SqlError(error);
  return bytes;
}

const OK = Symbol('ok');
/** Verdicts of `staticCheck` for single statements, by SQL text (bounded). */
const singleVerdicts = new Lru<string, SqlErrorInfo | typeof OK>(1024);

/**
 * The static checks of a write being proposed; apply runs them too (it cannot trust the
 * proposer's version), but for the bound on a recursive CTE's rows, a node's own setting.
 */
export function staticCheck(
  command: CommandInput,
  recursionRowsMax = WRITE_RECURSION_ROWS_MAX_DEFAULT,
): SqlErrorInfo | null {
  const at = { recursionRowsMax };
  switch (command.type) {
    case 'execute':
      return checkSingle(command.sql, -1, at);
    case 'txn':
      for (let i = 0; i < command.statements.length; i++) {
        const err = checkSingle(command.statements[i]!.sql, i, at);
        if (err !== null) return err;
      }
      return null;
    case 'batch':
      return checkScript(command.sql, {}, at);
    case 'migrate':
      for (let i = 0; i < command.migrations.length; i++) {
        const m = command.migrations[i]!;
        const prev = command.migrations[i - 1];
        if (prev !== undefined && !(m.id > prev.id)) {
          return {
            code: 'HQL_MIGRATION_ORDER',
            message: `migration ids must increase: ${m.id} follows ${prev.id}`,
            migrationId: m.id,
          };
        }
        const err = checkScript(m.sql, { migrationId: m.id }, at);
        if (err !== null) return err;
      }
      return null;
  }
}

/**
 * One statement (of an execute, or statement `statementIndex` of a txn; -1: none). The verdict
 * depends on the SQL text alone; applications repeat the same statements (a txn of 1,000
 * identical INSERTs), so it is remembered instead of tokenizing every time.
 */
function checkSingle(
  sql: string,
  statementIndex: number,
  at: { readonly recursionRowsMax: number },
): SqlErrorInfo | null {
  // The verdict depends on the bound too (nodes of one process may set it differently).
  const key = `${at.recursionRowsMax}\u0000${sql}`;
  let verdict = singleVerdicts.get(key);
  if (verdict === undefined) {
    verdict = singleVerdict(sql, at) ?? OK;
    singleVerdicts.set(key, verdict);
  }
  if (verdict === OK) return null;
  return statementIndex < 0 ? { ...verdict } : { statementIndex, ...verdict };
}

function singleVerdict(sql: string, at: { readonly recursionRowsMax: number }): SqlErrorInfo | null {
  const statements = splitStatements(sql);
  if (statements.length !== 1) {
    return {
      code: 'HQL_SQL',
      message:
        statements.length === 0
          ? 'no SQL statement'
          : 'one statement expected (use a batch or txn command for several)',
    };
  }
  return checkWriteStatement(statements[0]!, at);
}

function checkScript(
  sql: string,
  extra: Partial<SqlErrorInfo>,
  at: { readonly recursionRowsMax: number },
): SqlErrorInfo | null {
  const statements = splitStatements(sql);
  for (let i = 0; i < statements.length; i++) {
    const err = checkWriteStatement(statements[i]!, at);
    if (err !== null) return { ...extra, ...err, statementIndex: i };
  }
  return null;
}

/** ISO-like strings SQLite's date functions parse, from a ms timestamp (UTC). */
export function sqliteTimeStrings(nowMs: number) {
  const iso = new Date(nowMs).toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  return {
    /** What 'now' is replaced with: millisecond precision, like SQLite's own 'now'. */
    now: `${iso.slice(0, 10)} ${iso.slice(11, 23)}`,
    timestamp: `${iso.slice(0, 10)} ${iso.slice(11, 19)}`,
    date: iso.slice(0, 10),
    time: iso.slice(11, 19),
  };
}

/** randomblob(N) beyond this fails instead of allocating without bound. */
export const RANDOM_BLOB_BYTES_MAX = 16 * 1024 * 1024;

/**
 * The per-command source of time and randomness for the overridden functions. Outside a
 * command it is inactive and the functions fail: the state machine's own statements never call
 * them, so a call there is a programmer error.
 */
export class DeterministicEnv {
  private active = false;
  private nowMs = 0;
  private seed = 0;
  // Built on first use in a command: most commands call neither time nor random functions.
  private prng: Prng | null = null;
  private times: ReturnType<typeof sqliteTimeStrings> | null = null;

  begin(nowMs: number, seed: number): void {
    this.active = true;
    this.nowMs = nowMs;
    this.seed = seed;
    this.prng = null;
    this.times = null;
  }

  end(): void {
    this.active = false;
  }

  current() {
    assert(this.active, 'deterministic SQL function called outside of a command');
    this.times ??= sqliteTimeStrings(this.nowMs);
    return this.times;
  }

  /** A uniformly distributed signed 64-bit integer, like SQLite's random(). */
  randomInt64(): bigint {
    const prng = this.random();
    const hi = BigInt(Math.floor(prng.next() * 2 ** 32));
    const lo = BigInt(Math.floor(prng.next() * 2 ** 32));
    return BigInt.asIntN(64, (hi << 32n) | lo);
  }

  randomBytes(n: number): Buffer {
    const prng = this.random();
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = Math.floor(prng.next() * 256);
    return out;
  }

  private random(): Prng {
    assert(this.active, 'deterministic SQL function called outside of a command');
    this.prng ??= new Prng(this.seed);
    return this.prng;
  }
}

/** SQLite's integer conversion of a function argument, close enough for randomblob(N). */
function toInteger(v: unknown): number {
  if (typeof v === 'bigint')
    return v > BigInt(RANDOM_BLOB_BYTES_MAX + 1) ? RANDOM_BLOB_BYTES_MAX + 1 : Number(v);
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : 0;
  if (typeof v === 'string') {
    const m = /^\s*[+-]?\d+/.exec(v);
    return m === null ? 0 : Number.parseInt(m[0], 10);
  }
  return 0;
}

function nondeterministic(message: string): SqlError {
  return sqlError('HQL_NONDETERMINISTIC', message);
}

/**
 * Installs the overrides on the writer connection. Date functions are registered as
 * deterministic, like SQLite's built-ins, so they stay usable in indexes and generated columns.
 * Returns a function that closes the private helper connection.
 */
export function installDeterministicFunctions(db: Database.Database, env: DeterministicEnv): () => void {
  const helper = new Database(':memory:');
  const calls = new Map<string, Database.Statement>();
  const builtin = (name: string, args: unknown[]): unknown => {
    const key = `${name}/${args.length}`;
    let stmt = calls.get(key);
    if (stmt === undefined) {
      const placeholders = args.map(() => '?').join(', ');
      stmt = helper.prepare(`SELECT ${name}(${placeholders})`).pluck().safeIntegers(true);
      calls.set(key, stmt);
    }
    return stmt.get(...args);
  };

  db.function('random', { varargs: false }, () => env.randomInt64());
  db.function('randomblob', { safeIntegers: true }, (n: unknown) => {
    const bytes = Math.max(1, toInteger(n));
    if (bytes > RANDOM_BLOB_BYTES_MAX) {
      throw sqlError('HQL_SQL', `randomblob(${bytes}) exceeds ${RANDOM_BLOB_BYTES_MAX} bytes`);
    }
    return env.randomBytes(bytes);
  });
  const constant = { deterministic: true, varargs: false } as const;
  db.function('current_timestamp', constant, () => env.current().timestamp);
  db.function('current_date', constant, () => env.current().date);
  db.function('current_time', constant, () => env.current().time);

  for (const [name, firstModifier] of DATE_FUNCTIONS) {
    db.function(name, { deterministic: true, varargs: true, safeIntegers: true }, (...args: unknown[]) => {
      const { now } = env.current();
      const timeArgs = name === 'strftime' ? [1] : name === 'timediff' ? [0, 1] : [0];
      for (let i = firstModifier; i < args.length; i++) {
        const a = args[i];
        if (typeof a === 'string' && NODE_LOCAL_MODIFIERS.has(a.trim().toLowerCase())) {
          throw nondeterministic(`${name}(…, '${a.trim()}') depends on the node's time zone`);
        }
      }
      const bound = [...args];
      // SQLite treats a missing time value as 'now' (date() is date('now'), strftime(f) is strftime(f, 'now')).
      if (name !== 'timediff' && bound.length === timeArgs[0]) bound.push(now);
      let subsec = false;
      for (const i of timeArgs) {
        const a = bound[i];
        if (typeof a !== 'string') continue;
        const lower = a.toLowerCase();
        // SQLite's own test: the time value equals 'now', case-insensitively (date.c, isDate).
        if (lower === 'now') bound[i] = now;
        // And, since 3.42, 'subsec' or 'subsecond' as the time value: 'now' with subsecond
        // precision (date.c, parseDateOrTime). Left to SQLite, each replica read its own clock:
        // unixepoch('subsec') stored values milliseconds apart on the three nodes.
        else if (lower === 'subsec' || lower === 'subsecond') {
          bound[i] = now;
          subsec = true;
        }
      }
      // The precision it asked for, as a modifier (applied after the others; timediff has none).
      if (subsec && name !== 'timediff') bound.push('subsec');
      return builtin(name, bound);
    });
  }

  db.function('total_changes', { varargs: true }, () => {
    throw nondeterministic('total_changes() counts the connection history, which differs between replicas');
  });
  db.function('sqlite_offset', { varargs: true }, () => {
    throw nondeterministic('sqlite_offset() depends on the file layout, which differs between replicas');
  });
  return () => helper.close();
}
