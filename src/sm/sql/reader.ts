/**
 * Local reads on a read-only connection. In WAL mode a reader never blocks the writer and the
 * writer never blocks a reader; each query sees the last committed batch. Reads use SQLite's
 * built-in date and random functions (real clock): they are local and never replicated.
 *
 * Statements that write are rejected before they run (`stmt.readonly`), as are transaction
 * control, ATTACH/DETACH and PRAGMA assignments (see statement-guard.ts): a read connection must
 * not keep a transaction open or change its settings. Queries run synchronously on the caller's
 * thread; reads for other processes run on a read pool's threads (read-pool.ts). A reader opened
 * with `interruptible` can give a query a time limit that interrupts it (interrupt.ts).
 */
import Database from 'better-sqlite3';
import { HiqliteError } from '../../lib/errors.js';
import type { LogIndex } from '../../raft/types.js';
import { AppliedIndexWatcher, type WaitOptions } from './applied-watch.js';
import { classifyCommandError, queryTimeoutError, SqlError, sqlError } from './errors.js';
import { type ConnectionWatch, isInterrupted, watchConnection } from './interrupt.js';
import { Lru } from './lru.js';
import { bindArgs, type PositionalPlan, planPositional } from './params.js';
import { configureReader, readMeta } from './schema.js';
import { checkStatement } from './statement-guard.js';
import { isWord, splitStatements } from './tokenizer.js';
import { type Row, rowValueBytes, type SqlValue, toRow } from './values.js';

export interface SqlReaderOptions {
  /** Shared with the writer (SqlStateMachine.applied / SqlWorker.applied) for waitForApplied. */
  readonly applied?: AppliedIndexWatcher;
  readonly statementCacheMax?: number;
  readonly busyTimeoutMs?: number;
  /**
   * Register the connection with the interrupt watchdog, so that `query(…, { timeoutMs })`
   * interrupts a statement at its deadline. Ignored when the extension is not built
   * (`interruptible` then stays false).
   */
  readonly interruptible?: boolean;
  /**
   * Most rows one query may return: beyond, it stops and fails with HQL_RESULT_TOO_LARGE
   * instead of building an answer of unbounded size. Default: no bound (the embedder's own
   * synchronous reads); reads served for other processes get `query_rows_max`.
   */
  readonly rowsMax?: number;
  /**
   * Most bytes of values one query may return (a string counts its length, a BLOB its bytes,
   * anything else 8): beyond, HQL_RESULT_TOO_LARGE. `query_rows_max` alone let ten rows of 50 MB
   * through, and encoding such an answer held the serving node's thread for seconds (its
   * leadership lost). Default: no bound, as rowsMax.
   */
  readonly resultBytesMax?: number;
  /**
   * The largest string, blob or row (bytes) a query may make or read (SQLite's
   * SQLITE_LIMIT_LENGTH; SQLITE_TOOBIG beyond, `HQL_SQL`): `zeroblob(900000000)` in a read
   * allocates that much before any result bound sees it. Needs an interruptible reader (the
   * extension sets it). Default: the connection's own (V8's longest string).
   */
  readonly valueBytesMax?: number;
}

export interface ReaderQueryOptions {
  /** Interrupt the statement after this long (HQL_TIMEOUT). Needs an interruptible reader. */
  readonly timeoutMs?: number;
}

export type QueryParams =
  | readonly (SqlValue | boolean | Date)[]
  | Readonly<Record<string, SqlValue | boolean | Date>>;

/**
 * Everything a query needs that depends only on its SQL text (and the schema): parsed and
 * checked once, then prepared once per parameter style (an array binds the rewritten text, an
 * object the original).
 */
interface ReadPlan {
  readonly text: string;
  readonly positional: PositionalPlan;
  /**
   * A PRAGMA the read guard allowed: a report that assigns nothing (statement-guard.ts). SQLite
   * calls `PRAGMA journal_mode` a write even without an argument (it could switch the mode), so
   * its own read-only flag would refuse an allowed report with HQL_READONLY.
   */
  readonly allowedPragma: boolean;
  forArray: Prepared | null;
  forObject: Prepared | null;
}

export class SqlReader {
  readonly applied: AppliedIndexWatcher;
  private readonly plans: Lru<string, ReadPlan>;
  private schemaCheckedAt = -1;
  private schemaVersion = -1;
  private closed = false;
  private readonly watch: ConnectionWatch | null;
  private readonly rowsMax: number;
  private readonly resultBytesMax: number;

  private constructor(
    private readonly db: Database.Database,
    options: SqlReaderOptions,
  ) {
    this.plans = new Lru(options.statementCacheMax ?? 256);
    this.applied = options.applied ?? new AppliedIndexWatcher(this.visibleAppliedIndex());
    this.watch = options.interruptible === true ? watchConnection(db) : null;
    if (options.valueBytesMax !== undefined) {
      if (this.watch === null) {
        throw new HiqliteError(
          'HQL_INVALID_CONFIG',
          'valueBytesMax needs an interruptible reader (the extension sets the limit)',
          { retryable: false },
        );
      }
      this.watch.limitLength(options.valueBytesMax);
    }
    this.rowsMax = options.rowsMax ?? Number.POSITIVE_INFINITY;
    this.resultBytesMax = options.resultBytesMax ?? Number.POSITIVE_INFINITY;
  }

  /** Whether a query's `timeoutMs` interrupts it (the extension is built and was loaded). */
  get interruptible(): boolean {
    return this.watch !== null;
  }

  /** The connection's id for `interruptConnection` (interrupt.ts), or null. */
  get connectionId(): number | null {
    return this.watch?.id ?? null;
  }

  /** Opens a read-only connection on the state machine's database file (which must exist). */
  static open(dbPath: string, options: SqlReaderOptions = {}): SqlReader {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      configureReader(db, options.busyTimeoutMs ?? 5_000);
      return new SqlReader(db, options);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** Runs one read statement; rows use the value mapping of values.ts. */
  query(sql: string, params: QueryParams = [], options: ReaderQueryOptions = {}): Row[] {
    if (this.closed) throw new HiqliteError('HQL_CLOSED', 'reader closed', { retryable: false });
    const { timeoutMs } = options;
    if (timeoutMs === undefined) return this.run(sql, params);
    if (this.watch === null) {
      throw new HiqliteError('HQL_UNAVAILABLE', 'this reader cannot interrupt a query (timeoutMs)', {
        retryable: false,
      });
    }
    this.watch.arm(timeoutMs);
    try {
      return this.run(sql, params);
    } catch (e) {
      // Interrupted while it ran (a SqlError around SQLite's), or before: the interrupt can land
      // in the schema check or the prepare, which throw SQLite's own error (SQLITE_INTERRUPT
      // reached a caller once in 400 reads with limits of 0 to 3 ms).
      if (isInterrupted(e)) throw queryTimeoutError(timeoutMs, e);
      if (e instanceof SqlError && isInterrupted(e.cause)) throw queryTimeoutError(timeoutMs, e.cause);
      throw e;
    } finally {
      this.watch.disarm();
    }
  }

  private run(sql: string, params: QueryParams): Row[] {
    this.checkSchema();
    const plan = this.plan(sql);
    try {
      const prepared = Array.isArray(params)
        ? (plan.forArray ?? this.prepare(plan, true))
        : (plan.forObject ?? this.prepare(plan, false));
      const args = bindArgs(plan.positional, params);
      if (!prepared.readonly)
        throw sqlError('HQL_READONLY', 'a read cannot write: use execute / txn for writes');
      if (!prepared.returnsRows) {
        prepared.stmt.run(args);
        // SQLite counts BEGIN and SAVEPOINT as read-only. The token layer refuses them; should a
        // spelling ever get past it (a leading U+FEFF did), the connection is not left holding
        // a transaction: its reads would see that snapshot for good, stale even when
        // linearizable.
        if (this.db.inTransaction) {
          this.db.exec('ROLLBACK');
          throw sqlError(
            'HQL_STATEMENT_NOT_ALLOWED',
            'transaction control is not allowed on a read connection',
          );
        }
        return [];
      }
      const raw =
        Number.isFinite(this.rowsMax) || Number.isFinite(this.resultBytesMax)
          ? allBounded(
              prepared.stmt.iterate(args) as IterableIterator<unknown[]>,
              this.rowsMax,
              this.resultBytesMax,
            )
          : (prepared.stmt.all(args) as unknown[][]);
      // Column names are read after the statement ran: a statement prepared against a stale
      // schema is re-prepared by SQLite when it runs, and only then names the new columns.
      let columns = prepared.columns;
      if (columns === null || (raw.length > 0 && (raw[0] as unknown[]).length !== columns.length)) {
        columns = prepared.stmt.columns().map((c) => c.name);
        prepared.columns = columns;
      }
      const rows: Row[] = new Array(raw.length);
      for (let i = 0; i < raw.length; i++) rows[i] = toRow(columns, raw[i] as unknown[]);
      return rows;
    } catch (e) {
      if (e instanceof SqlError) throw e;
      if (isInterrupted(e))
        throw new SqlError({ code: 'HQL_ABORTED', message: 'the query was interrupted' }, { cause: e });
      // Environmental failures make classifyCommandError throw a HiqliteError (HQL_IO, …).
      throw new SqlError(classifyCommandError(e, 'read'), { cause: e });
    }
  }

  /** The applied index of the data this connection reads now (from `_hq_meta`). */
  visibleAppliedIndex(): LogIndex {
    return (readMeta(this.db)?.applied_index ?? 0) as LogIndex;
  }

  /** Resolves when the state machine has applied `minIndex` (read-your-writes). */
  waitForApplied(minIndex: number, options: WaitOptions = {}): Promise<void> {
    return this.applied.waitFor(minIndex, options);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private plan(sql: string): ReadPlan {
    const hit = this.plans.get(sql);
    if (hit !== undefined) return hit;
    const statements = splitStatements(sql);
    if (statements.length !== 1) {
      throw sqlError(
        'HQL_SQL',
        statements.length === 0 ? 'no SQL statement' : 'a query takes exactly one statement',
      );
    }
    const statement = statements[0]!;
    const err = checkStatement(statement, 'read');
    if (err !== null) throw new SqlError(err);
    const positional = planPositional(statement.text, statements[0]!.tokens);
    if ('code' in positional) throw new SqlError(positional);
    const plan: ReadPlan = {
      text: statement.text,
      positional,
      allowedPragma: isWord(statement.tokens[0], 'PRAGMA'),
      forArray: null,
      forObject: null,
    };
    this.plans.set(sql, plan);
    return plan;
  }

  /**
   * Cached column names go stale when the schema changes (ALTER TABLE). The schema changes only
   * through applied writes, so the schema version is read again only when the applied index has
   * moved since the last look; a new version empties the statement cache.
   */
  private checkSchema(): void {
    const applied = this.applied.current;
    if (applied === this.schemaCheckedAt) return;
    // Read before it counts as checked: a read interrupted here checks again next time.
    const version = this.db.pragma('schema_version', { simple: true }) as number;
    this.schemaCheckedAt = applied;
    if (version !== this.schemaVersion) {
      this.schemaVersion = version;
      this.plans.clear();
    }
  }

  /**
   * Prepares the plan's statement with what every call would otherwise ask it again: whether it
   * only reads, and its column names (raw mode is switched on once, here).
   */
  private prepare(plan: ReadPlan, forArray: boolean): Prepared {
    const stmt = this.db.prepare(forArray ? plan.positional.text : plan.text).safeIntegers(true);
    const returnsRows = stmt.reader;
    if (returnsRows) stmt.raw(true);
    const prepared: Prepared = {
      stmt,
      readonly: stmt.readonly || plan.allowedPragma,
      returnsRows,
      columns: null,
    };
    if (forArray) plan.forArray = prepared;
    else plan.forObject = prepared;
    return prepared;
  }
}

interface Prepared {
  readonly stmt: Database.Statement;
  readonly readonly: boolean;
  readonly returnsRows: boolean;
  /** Known after the first run (see query). */
  columns: readonly string[] | null;
}

/** The rows of a running statement, at most `rowsMax`; one more stops it (HQL_RESULT_TOO_LARGE). */
function allBounded(rows: IterableIterator<unknown[]>, rowsMax: number, bytesMax: number): unknown[][] {
  const out: unknown[][] = [];
  let bytes = 0;
  for (const row of rows) {
    if (out.length >= rowsMax) {
      rows.return?.();
      throw sqlError(
        'HQL_RESULT_TOO_LARGE',
        `the query returns more than ${rowsMax} rows (query_rows_max): page through it (LIMIT / a key range), or aggregate`,
      );
    }
    bytes += rowValueBytes(row);
    if (bytes > bytesMax) {
      rows.return?.();
      throw sqlError(
        'HQL_RESULT_TOO_LARGE',
        `the query's answer is larger than ${bytesMax} bytes (query_result_bytes_max) at row ${out.length + 1}: page through it (LIMIT / a key range), select fewer or smaller columns, or aggregate`,
      );
    }
    out.push(row);
  }
  return out;
}
