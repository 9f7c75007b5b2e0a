/**
 * Executes one decoded command on the writer connection, inside the savepoint the state machine
 * opened for it. Returns the command's result; a deterministic failure is a result, not an
 * exception. Throws only for (a) environmental failures (classifyCommandError rethrows them) and
 * (b) `TransactionLostError` when a statement rolled back the whole SQLite transaction
 * (`INSERT OR ROLLBACK`, `RAISE(ROLLBACK, …)`), which the state machine handles by re-applying
 * the batch one command per transaction.
 */
import type Database from 'better-sqlite3';
import { AccessGuard, type StatementKind, statementKind } from './access-guard.js';
import type { BatchCommand, Command, ExecuteCommand, MigrateCommand, TxnCommand } from './command.js';
import { classifyCommandError, SqlError, type SqlErrorInfo, sqlError } from './errors.js';
import { Lru } from './lru.js';
import { applyMigrations } from './migrations.js';
import {
  bindArgs,
  type Params,
  type PositionalPlan,
  planPositional,
  type RefResolver,
  type StmtRef,
} from './params.js';
import type { BatchStatementResult, CommandResult, StatementOutcome } from './result.js';
import { type SqlStatement, splitStatements } from './tokenizer.js';
import { fromSqlite, rowValueBytes, type SqlValue, toRow } from './values.js';
import { checkWriteBounds, checkWriteStatement } from './write-bounds.js';

export class TransactionLostError extends Error {
  override readonly name = 'TransactionLostError';
  constructor(readonly info: SqlErrorInfo) {
    super(`a statement rolled back the whole transaction: ${info.message}`);
  }
}

/** A statement that passed the token guard, with its positional rewrite. */
interface ParsedStatement {
  readonly statement: SqlStatement;
  readonly positional: PositionalPlan | SqlErrorInfo;
  readonly kind: StatementKind;
}

function parsedStatement(statement: SqlStatement): ParsedStatement {
  return {
    statement,
    positional: planPositional(statement.text, statement.tokens),
    kind: statementKind(statement),
  };
}

/** The raw output of a statement that returns rows, for `$ref` lookups. */
interface RawRows {
  readonly columns: readonly string[];
  readonly values: readonly (readonly unknown[])[];
}

/** execute(returning) → 'always' / 'never'; txn and batch report rows of statements that return some. */
type RowsWanted = 'always' | 'ifReturned' | 'never';

export interface ExecContext {
  readonly index: number;
  readonly nowMs: number;
  /**
   * Most bytes of rows one command's statements may return (RETURNING, a SELECT sent as a
   * write), counted as ROW_OVERHEAD_BYTES per row plus its values; beyond, the command fails
   * with HQL_RESULT_TOO_LARGE and is not applied. The same on every replica (the command's
   * `valueBytesMax` stamp): every replica keeps the result for retries (sessions).
   */
  readonly rowsBytesMax: number;
}

/** What a returned row counts besides its values (rowsBytesMax): its array and row object. */
export const ROW_OVERHEAD_BYTES = 64;

export class CommandExecutor {
  private readonly parsed: Lru<string, ParsedStatement | SqlErrorInfo>;
  private readonly prepared: Lru<string, Database.Statement>;
  private readonly counters: Database.Statement;
  private readonly access: AccessGuard;

  constructor(
    private readonly db: Database.Database,
    statementCacheMax: number,
  ) {
    this.parsed = new Lru(statementCacheMax);
    this.prepared = new Lru(statementCacheMax);
    this.access = new AccessGuard(db, statementCacheMax);
    this.counters = db.prepare('SELECT changes(), last_insert_rowid()').raw(true).safeIntegers(true);
  }

  /** Drops cached statements (after a restore replaced the schema wholesale). */
  clearCaches(): void {
    this.prepared.clear();
    this.access.invalidate();
  }

  /** What the command being run may return (ExecContext.rowsBytesMax), and has so far. */
  private rowsBudget = { max: Number.POSITIVE_INFINITY, used: 0 };

  run(command: Command, ctx: ExecContext): CommandResult {
    // A rolled-back batch or command may have undone DDL since the last look (access-guard.ts).
    this.access.observe();
    this.rowsBudget = { max: ctx.rowsBytesMax, used: 0 };
    switch (command.type) {
      case 'execute':
        return this.execute(command);
      case 'txn':
        return this.txn(command);
      case 'batch':
        return this.batch(command);
      case 'migrate':
        return this.migrate(command, ctx);
    }
  }

  private execute(c: ExecuteCommand): CommandResult {
    const parsed = this.parse(c.sql);
    if ('code' in parsed) return { ok: false, error: parsed };
    try {
      const { outcome } = this.runParsed(parsed, c.params, c.returning ? 'always' : 'never', undefined, true);
      return { ok: true, type: 'execute', value: outcome };
    } catch (e) {
      return { ok: false, error: this.handle(e, {}) };
    }
  }

  private txn(c: TxnCommand): CommandResult {
    const outputs: (RawRows | null)[] = [];
    const outcomes: StatementOutcome[] = new Array(c.statements.length);
    const resolve: RefResolver = (ref) => resolveRef(ref, outputs);
    // A txn often repeats one statement (1,000 INSERTs): look it up once per run of equal SQL.
    let lastSql: string | null = null;
    let parsed: ParsedStatement | SqlErrorInfo | null = null;
    for (let i = 0; i < c.statements.length; i++) {
      const s = c.statements[i]!;
      if (s.sql !== lastSql) {
        lastSql = s.sql;
        parsed = this.parse(s.sql);
      }
      if ('code' in parsed!) return { ok: false, error: { ...parsed, statementIndex: i } };
      try {
        const { outcome, raw } = this.runParsed(parsed!, s.params, 'ifReturned', resolve, true);
        outputs.push(raw);
        outcomes[i] = outcome;
      } catch (e) {
        return { ok: false, error: this.handle(e, { statementIndex: i }) };
      }
    }
    return { ok: true, type: 'txn', value: outcomes };
  }

  private batch(c: BatchCommand): CommandResult {
    const statements = splitStatements(c.sql);
    if (statements.length === 0)
      return { ok: false, error: { code: 'HQL_SQL', message: 'no SQL statement' } };
    // Check every statement before running any: a forbidden statement fails the whole command.
    for (let i = 0; i < statements.length; i++) {
      const err = checkWriteStatement(statements[i]!, 'apply');
      if (err !== null) return { ok: false, error: { ...err, statementIndex: i } };
    }
    const results: BatchStatementResult[] = [];
    for (let i = 0; i < statements.length; i++) {
      const statement = statements[i]!;
      try {
        const { outcome } = this.runParsed(
          parsedStatement(statement),
          [],
          'ifReturned',
          undefined,
          false,
          true,
        );
        results.push({ ok: true, value: outcome });
      } catch (e) {
        const error = this.handle(e, { statementIndex: i });
        // Past the rows budget the whole batch fails (a RETURNING statement's writes are done by
        // the time its rows are read: only the command's rollback undoes them).
        if (e instanceof RowsBudgetError) return { ok: false, error };
        results.push({ ok: false, error });
      }
    }
    return { ok: true, type: 'batch', value: results };
  }

  private migrate(c: MigrateCommand, ctx: ExecContext): CommandResult {
    try {
      return applyMigrations(this.db, c.migrations, ctx, (statement, extra) => {
        try {
          const bounds = checkWriteBounds(statement, 'apply');
          if (bounds !== null) return { ...bounds, ...extra };
          this.runParsed(parsedStatement(statement), [], 'never', undefined, false);
          return null;
        } catch (e) {
          return this.handle(e, extra);
        }
      });
    } catch (e) {
      return { ok: false, error: this.handle(e, {}) };
    }
  }

  /** Parses and token-guards one statement's SQL (cached: the result depends on the text only). */
  private parse(sql: string): ParsedStatement | SqlErrorInfo {
    const hit = this.parsed.get(sql);
    if (hit !== undefined) return hit;
    const statements = splitStatements(sql);
    let result: ParsedStatement | SqlErrorInfo;
    if (statements.length !== 1) {
      result = {
        code: 'HQL_SQL',
        message:
          statements.length === 0
            ? 'no SQL statement'
            : 'one statement expected (use a batch or txn command for several)',
      };
    } else {
      const statement = statements[0]!;
      result = checkWriteStatement(statement, 'apply') ?? parsedStatement(statement);
    }
    this.parsed.set(sql, result);
    return result;
  }

  /**
   * Runs one statement after the access guard has judged what its compiled program touches
   * (access-guard.ts); a statement that changes the schema runs in its own savepoint and is
   * undone if the schema it leaves is refused.
   */
  private runParsed(
    parsed: ParsedStatement,
    params: Params,
    rows: RowsWanted,
    resolve: RefResolver | undefined,
    cache: boolean,
    standsAlone = false,
  ): { outcome: StatementOutcome; raw: RawRows | null } {
    const plan = parsed.positional;
    const verdict =
      'code' in plan
        ? this.access.check(parsed.statement.text, 0, parsed.kind)
        : this.access.check(plan.text, plan.order.length, parsed.kind);
    if (verdict.error !== null) throw new SqlError(verdict.error);
    return this.access.runGuardingRowids(verdict, standsAlone, () =>
      verdict.changesSchema
        ? this.access.runSchemaChange(() => this.runChecked(parsed, params, rows, resolve, false))
        : this.runChecked(parsed, params, rows, resolve, cache),
    );
  }

  private runChecked(
    parsed: ParsedStatement,
    params: Params,
    rows: RowsWanted,
    resolve: RefResolver | undefined,
    cache: boolean,
  ): { outcome: StatementOutcome; raw: RawRows | null } {
    let text = parsed.statement.text;
    if (Array.isArray(params)) {
      if ('code' in parsed.positional) throw sqlError(parsed.positional.code, parsed.positional.message);
      text = parsed.positional.text;
    }
    const plan: PositionalPlan =
      'code' in parsed.positional ? { text, order: [], expected: 0 } : parsed.positional;
    const args = bindArgs(plan, params, resolve);
    const stmt = this.prepare(text, cache);
    if (!stmt.reader) {
      const info = stmt.run(args);
      const base = {
        rowsAffected: info.changes,
        lastInsertRowid: fromSqlite(info.lastInsertRowid) as number | bigint,
      };
      return { outcome: rows === 'always' ? { ...base, rows: [] } : base, raw: null };
    }
    const columns = stmt.columns().map((c) => c.name);
    // Rows nobody reads (execute without `returning`, a migration) are stepped through and
    // dropped; the others are kept within the command's budget, so one short statement
    // (`INSERT … SELECT zeroblob(1e6) FROM <1,000 rows> RETURNING x`) cannot hold gigabytes on
    // every replica at once.
    const it = stmt.raw(true).iterate(args) as IterableIterator<unknown[]>;
    const values = rows === 'never' ? stepThrough(it) : this.keepBounded(it, stmt.readonly);
    const [changes, lastInsertRowid] = this.counters.get() as [bigint, bigint];
    const outcome: StatementOutcome = {
      rowsAffected: stmt.readonly ? 0 : Number(changes),
      lastInsertRowid: fromSqlite(lastInsertRowid) as number | bigint,
      ...(values === null ? {} : { rows: values.map((v) => toRow(columns, v)) }),
    };
    return { outcome, raw: values === null ? null : { columns, values } };
  }

  /**
   * The rows of a running statement while the command's rows stay within its budget; past it
   * the statement is stopped and the command fails (HQL_RESULT_TOO_LARGE): at the same row on
   * every replica, and rolled back with the command (a batch as a whole: RowsBudgetError).
   */
  private keepBounded(it: IterableIterator<unknown[]>, readonly: boolean): unknown[][] {
    const budget = this.rowsBudget;
    const out: unknown[][] = [];
    for (const row of it) {
      budget.used += ROW_OVERHEAD_BYTES + rowValueBytes(row);
      if (budget.used > budget.max) {
        it.return?.();
        throw new RowsBudgetError({
          code: 'HQL_RESULT_TOO_LARGE',
          message: `the rows this ${readonly ? 'statement' : 'write'} returns pass ${budget.max} bytes at row ${out.length + 1} (sql_value_bytes_max; a row counts ${ROW_OVERHEAD_BYTES} bytes plus its values): nothing of the command was applied. Return fewer rows or columns (RETURNING), or none`,
        });
      }
      out.push(row);
    }
    return out;
  }

  private prepare(text: string, cache: boolean): Database.Statement {
    const hit = cache ? this.prepared.get(text) : undefined;
    if (hit !== undefined) return hit;
    let stmt: Database.Statement;
    try {
      stmt = this.db.prepare(text).safeIntegers(true);
    } catch (e) {
      // A script the splitter cut differently from SQLite: a syntax problem, not a parameter one.
      if (e instanceof RangeError && /statement/.test(e.message)) throw sqlError('HQL_SQL', e.message);
      throw e;
    }
    if (cache) this.prepared.set(text, stmt);
    return stmt;
  }

  /** Classifies a failure; a statement that ended the transaction aborts the whole command. */
  private handle(e: unknown, extra: Partial<SqlErrorInfo>): SqlErrorInfo {
    if (e instanceof TransactionLostError) throw e;
    const info = classifyCommandError(e, 'apply', extra);
    if (!this.db.inTransaction) throw new TransactionLostError(info);
    return info;
  }
}

/** The command's rows passed its budget (ExecContext.rowsBytesMax): the command fails as a whole. */
class RowsBudgetError extends SqlError {}

/** Runs a statement's rows to the end without keeping them (what it writes is done meanwhile). */
function stepThrough(it: IterableIterator<unknown[]>): null {
  for (const _ of it) {
    // dropped
  }
  return null;
}

function resolveRef(ref: StmtRef, outputs: readonly (RawRows | null)[]): SqlValue {
  const [statementIndex, rowIndex, column] = ref.$ref;
  const out = outputs[statementIndex];
  const where = `$ref [${statementIndex}, ${rowIndex}, ${JSON.stringify(column)}]`;
  if (out === undefined || out === null) {
    throw sqlError(
      'HQL_INVALID_PARAMS',
      `${where}: statement ${statementIndex} returns no rows (add RETURNING)`,
    );
  }
  const row = out.values[rowIndex];
  if (row === undefined) {
    throw sqlError(
      'HQL_INVALID_PARAMS',
      `${where}: statement ${statementIndex} returned ${out.values.length} row(s)`,
    );
  }
  const col = typeof column === 'number' ? column : out.columns.indexOf(column);
  if (col < 0 || col >= out.columns.length) {
    throw sqlError('HQL_INVALID_PARAMS', `${where}: no such column (columns: ${out.columns.join(', ')})`);
  }
  return fromSqlite(row[col]);
}
