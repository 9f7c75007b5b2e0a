/**
 * What a write statement touches, from SQLite's own view of it rather than from its spelling.
 * The second layer of the statement guard (statement-guard.ts is the first, from tokens); it
 * runs on the writer connection, where the replicated schema is.
 *
 * SQLite accepts many spellings of one table (`_hq_meta`, `"_HQ_META"`, `'_hq_meta'`,
 * `main.[_hq_meta]`) and reaches tables through views, triggers and foreign-key actions that the
 * statement's text never names. better-sqlite3 offers no authorizer callback, so the guard reads
 * the program SQLite compiled instead: `EXPLAIN <statement>` lists its bytecode, trigger and
 * foreign-key-action sub-programs included, and every table or index the program opens, clears
 * or drops appears as a root page (OpenRead/OpenWrite p2, Clear/Destroy p1) that sqlite_schema
 * maps back to an object. A write statement is refused (HQL_STATEMENT_NOT_ALLOWED) when its
 * program:
 *   - opens a `_hq_*` table or index at all: writing them breaks the state machine, and reading
 *     them is not deterministic (`_hq_meta` holds the last *batch's* position, which differs
 *     between replicas) — except ANALYZE and REINDEX, which read every table and rebuild indexes
 *     from their content;
 *   - writes, clears or drops `_migrations` (reading it is deterministic and allowed);
 *   - writes `sqlite_stat1`/`sqlite_stat4` other than by ANALYZE or DDL (SQLite loads statistics
 *     only with the schema, so a direct write would leave the writer planning with the old ones
 *     and a restarted replica with the new ones; DROP TABLE / DROP INDEX delete the dropped
 *     object's rows, which is allowed, but a statistics table itself is not dropped);
 *   - writes `sqlite_schema` other than by DDL (it needs `writable_schema`, which the token layer
 *     never lets through; this is the second check);
 *   - uses a `pragma_*` table-valued function outside the write allowlist, however spelled or
 *     reached (a view, a trigger): such a function reports node-local values
 *     (`pragma_data_version`) or writes statistics from the connection's history
 *     (`pragma_optimize`). The program names the virtual table only by its address (`VOpen`
 *     P4 `vtab:<address>`); an eponymous table lives as long as the connection, so the guard
 *     learns each pragma's address once by compiling `SELECT * FROM pragma_<name>` for every
 *     name in SQLite's own `PRAGMA pragma_list`;
 *   - touches a database other than `main` outside DDL, or contains VACUUM / journal-mode /
 *     checkpoint opcodes.
 * A statement whose program changes the schema runs in its own savepoint, and the schema it
 * leaves is then checked against the one before (`runSchemaChange`); a violation is rolled back
 * and refused. The new schema must keep the state machine's own objects exactly as they were,
 * name nothing new with a reserved name, have no index or trigger on a reserved table, no
 * foreign key to one, nothing in `temp`, and every new or rewritten view and trigger must pass
 * the checks above when compiled (a view is compiled as `SELECT * FROM v`; a trigger through the
 * INSERT, UPDATE and DELETE that fire it). Triggers and views that predate these checks are still
 * caught where they are used, because their sub-programs are part of the using statement's
 * bytecode.
 *
 * Verdicts depend on the SQL text and the schema, so they are cached per text and dropped
 * whenever the schema cookie (`PRAGMA schema_version`) is seen to change, in either direction: a
 * rolled-back DDL brings back an old cookie value with a different schema, so a verdict is only
 * ever reused under the cookie it was computed with, observed without a change in between. The
 * executor observes the cookie at the start of every command and after every schema change.
 * Every replica computes the same verdict from the same log entry: it depends only on replicated
 * state and the SQLite version.
 */
import type Database from 'better-sqlite3';
import { SqlError, type SqlErrorInfo } from './errors.js';
import { Lru } from './lru.js';
import {
  asciiLower,
  DBSTAT_REFUSED,
  isReservedName,
  MIGRATIONS_TABLE_NAME,
  WRITE_PRAGMA_FUNCTIONS,
} from './statement-guard.js';
import type { SqlStatement } from './tokenizer.js';
import { isWord } from './tokenizer.js';

/** How a statement may legitimately touch SQLite's own tables, from its first keyword. */
export type StatementKind = 'ddl' | 'analyze' | 'reindex' | 'pragma' | 'other';

export function statementKind(statement: SqlStatement): StatementKind {
  const first = statement.tokens[0];
  if (isWord(first, 'CREATE', 'DROP', 'ALTER')) return 'ddl';
  if (isWord(first, 'ANALYZE')) return 'analyze';
  if (isWord(first, 'REINDEX')) return 'reindex';
  if (isWord(first, 'PRAGMA')) return 'pragma';
  return 'other';
}

export interface AccessVerdict {
  readonly error: SqlErrorInfo | null;
  /** The program changes the schema: run it through `runSchemaChange`. */
  readonly changesSchema: boolean;
  /**
   * Tables the program may give a new row a rowid SQLite chooses (`NewRowid`, sub-programs
   * included): after the statement, `checkRowidRoom` must find none of them at the largest rowid.
   */
  readonly newRowid: readonly string[];
  /** The same for AUTOINCREMENT tables (SQLite fails with SQLITE_FULL there, never picks at random). */
  readonly newRowidAutoincrement: readonly string[];
}

const ALLOWED: AccessVerdict = {
  error: null,
  changesSchema: false,
  newRowid: [],
  newRowidAutoincrement: [],
};

/**
 * SQLite's largest rowid. Once a table holds it, SQLite picks a *random* rowid for a new row
 * (sqlite3.c OP_NewRowid, from a PRNG seeded from the operating system): every replica would
 * store the row under another rowid.
 */
const ROWID_MAX = 9223372036854775807n;

/** sqlite3.c OPFLAG_P2ISREG: P2 of an Open* opcode is a register holding a new btree's root. */
const P2_IS_REGISTER = 0x10;
/** Root page of sqlite_schema. */
const SCHEMA_ROOT = 1;

/** Opcodes of a program that changes the schema (sqlite3.c: DDL and ANALYZE code generation). */
const SCHEMA_OPCODES: ReadonlySet<string> = new Set([
  'SetCookie',
  'ParseSchema',
  'DropTable',
  'DropIndex',
  'DropTrigger',
  'CreateBtree',
  'Destroy',
  'VCreate',
  'VDestroy',
  'SqlExec',
  'LoadAnalysis',
]);

/** Opcodes no replicated write may contain (VACUUM, PRAGMA journal_mode / wal_checkpoint). */
/**
 * AutoCommit (BEGIN, COMMIT, ROLLBACK) and Savepoint (SAVEPOINT, RELEASE, ROLLBACK TO) are the
 * token layer's to refuse too: seen here as well, a spelling the tokens missed (a leading U+FEFF
 * once) cannot open or end the command's transaction.
 */
const FORBIDDEN_OPCODES: ReadonlySet<string> = new Set([
  'Vacuum',
  'IncrVacuum',
  'Checkpoint',
  'AutoCommit',
  'Savepoint',
]);

/** sqlite3.c PAGER_JOURNALMODE_QUERY: a JournalMode opcode with this P3 changes nothing. */
const PAGER_JOURNALMODE_QUERY = -1;

/** The SQL functions ATTACH and DETACH compile to (a Function opcode whose P4 names them). */
const ATTACH_FUNCTIONS = /^sqlite_(attach|detach)\b/;

type RootClass = 'internal' | 'migrations' | 'stat' | 'user';

interface RootInfo {
  readonly name: string;
  readonly cls: RootClass;
  readonly type: string;
}

interface SchemaRow {
  readonly type: string;
  readonly name: string;
  readonly tbl_name: string;
  readonly rootpage: number | null;
  readonly sql: string | null;
}

/** EXPLAIN rows in raw mode: addr, opcode, p1, p2, p3, p4, p5, comment. */
type OpRow = readonly [number, string, number, number, number, unknown, number, unknown];

function classify(tableName: string): RootClass {
  const lower = asciiLower(tableName);
  if (lower === MIGRATIONS_TABLE_NAME) return 'migrations';
  if (isReservedName(lower)) return 'internal';
  if (lower.startsWith('sqlite_stat')) return 'stat';
  return 'user';
}

function rowKey(r: SchemaRow): string {
  return `${r.type}\u0000${asciiLower(r.name)}\u0000${asciiLower(r.tbl_name)}\u0000${r.sql ?? ''}`;
}

function quoteName(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function refused(message: string): SqlErrorInfo {
  return { code: 'HQL_STATEMENT_NOT_ALLOWED', message };
}

export class AccessGuard {
  private schemaVersion = -1;
  private roots: Map<number, RootInfo> | null = null;
  private rows: SchemaRow[] | null = null;
  /** `vtab:<address>` → pragma name, for the pragma functions writes may not use. */
  private pragmaTables: Map<string, string> | null = null;
  private readonly verdicts: Lru<string, AccessVerdict>;
  private readonly stmts: ReturnType<typeof prepareGuardStatements>;
  /** `SELECT max(rowid)` per table (checkRowidRoom), dropped with everything schema-derived. */
  private readonly maxRowid = new Map<string, Database.Statement>();

  constructor(
    private readonly db: Database.Database,
    cacheMax: number,
  ) {
    this.verdicts = new Lru(cacheMax);
    this.stmts = prepareGuardStatements(db);
  }

  /** Reads the schema cookie; any change drops everything derived from the schema. */
  observe(): void {
    const version = this.stmts.schemaVersion.get() as number;
    if (version !== this.schemaVersion) {
      this.schemaVersion = version;
      this.forget();
    }
  }

  /** The schema was replaced behind the executor's back (restore, reset). */
  invalidate(): void {
    this.schemaVersion = -1;
    this.forget();
  }

  /**
   * The verdict for one statement that passed the token layer. `text` is the statement with
   * every parameter written `?` and `binds` their number (EXPLAIN compiles the same program
   * whatever the values). Throws what preparing the statement throws (syntax error, no such
   * table): the statement would fail the same way.
   */
  check(text: string, binds: number, kind: StatementKind): AccessVerdict {
    // A PRAGMA is fully decided by the token layer; SQLite acts on most of them while preparing.
    if (kind === 'pragma') return ALLOWED;
    // The kind is a function of the text (its first keyword): the text alone is the key.
    const hit = this.verdicts.get(text);
    if (hit !== undefined) return hit;
    const ops = this.explain(text, binds);
    const verdict = this.judge(ops, kind);
    this.verdicts.set(text, verdict);
    return verdict;
  }

  /**
   * Runs a statement whose program changes the schema in its own savepoint and checks the schema
   * it leaves; a violation is rolled back and thrown as a SqlError (HQL_STATEMENT_NOT_ALLOWED).
   */
  runSchemaChange<T>(run: () => T): T {
    const before = this.schemaRows();
    this.stmts.savepoint.run();
    let result: T;
    try {
      result = run();
    } catch (e) {
      this.undo();
      throw e;
    }
    // Nothing derived from the schema before the statement applies to the one it left.
    this.forget();
    let violation: SqlErrorInfo | null;
    try {
      violation = this.validateSchema(before);
    } catch (e) {
      this.undo();
      throw e;
    }
    if (violation !== null) {
      this.undo();
      throw new SqlError(violation);
    }
    this.stmts.release.run();
    this.observe();
    return result;
  }

  private undo(): void {
    // A statement that rolled back the whole transaction took the savepoint with it.
    if (this.db.inTransaction) {
      this.stmts.rollbackTo.run();
      this.stmts.release.run();
    }
    this.forget();
    this.observe();
  }

  private forget(): void {
    this.roots = null;
    this.rows = null;
    this.verdicts.clear();
    this.maxRowid.clear();
  }

  /**
   * After a statement whose program may choose rowids (`AccessVerdict.newRowid`): refuses it
   * (HQL_NONDETERMINISTIC; the command's savepoint undoes it) when it left one of those tables holding the largest
   * rowid, or inserted into a table that held it. SQLite would pick random rowids there, which
   * differ on every replica; refusing depends on replicated state only, so every replica
   * refuses alike. So no insert stores the largest rowid; a table an UPDATE moved a row to it
   * takes no more inserts until that row is deleted or renumbered.
   */
  private checkRowidRoom(tables: readonly string[]): void {
    for (const table of tables) {
      if (this.maxRowidOf(table) === ROWID_MAX) {
        throw new SqlError({
          code: 'HQL_NONDETERMINISTIC',
          message: `'${table}' holds the largest rowid (${ROWID_MAX}): SQLite would choose a random rowid for a new row there, different on every replica, so inserts into it are refused; delete or renumber that row`,
        });
      }
    }
  }

  private explain(text: string, binds: number): OpRow[] {
    const stmt = this.db.prepare(`EXPLAIN ${text}`).raw(true);
    return stmt.all(new Array(binds).fill(null)) as OpRow[];
  }

  private schemaRows(): SchemaRow[] {
    this.rows ??= this.stmts.schema.all() as SchemaRow[];
    return this.rows;
  }

  private rootMap(): Map<number, RootInfo> {
    if (this.roots !== null) return this.roots;
    const roots = new Map<number, RootInfo>();
    for (const r of this.schemaRows()) {
      if (r.rootpage === null || r.rootpage <= 0) continue;
      roots.set(r.rootpage, { name: r.name, cls: classify(r.tbl_name), type: r.type });
    }
    this.roots = roots;
    return roots;
  }

  /**
   * Runs a statement under the rules on SQLite's largest rowid (`verdict.newRowid`,
   * `newRowidAutoincrement`): afterwards `checkRowidRoom`; an AUTOINCREMENT table at the largest
   * rowid fails a new row with SQLITE_FULL, which otherwise means this node's disk is full (fatal
   * for apply) and here is a result (HQL_SQL) alike on every replica. A statement that stands on
   * its own (a batch's: its failure is its result, the others go on) runs in a savepoint of its
   * own, so a refusal also undoes it; elsewhere the command's savepoint does.
   */
  runGuardingRowids<T>(verdict: AccessVerdict, standsAlone: boolean, run: () => T): T {
    if (verdict.newRowid.length === 0 && verdict.newRowidAutoincrement.length === 0) return run();
    const own = standsAlone && verdict.newRowid.length > 0;
    if (own) this.stmts.rowidSavepoint.run();
    try {
      const result = run();
      this.checkRowidRoom(verdict.newRowid);
      if (own) this.stmts.rowidRelease.run();
      return result;
    } catch (e) {
      // A statement that rolled back the whole transaction took the savepoint with it.
      if (own && this.db.inTransaction) {
        this.stmts.rowidRollbackTo.run();
        this.stmts.rowidRelease.run();
      }
      const code = e instanceof Error ? (e as Error & { code?: unknown }).code : undefined;
      const table =
        code === 'SQLITE_FULL' ? this.exhaustedAutoincrement(verdict.newRowidAutoincrement) : null;
      if (table === null) throw e;
      throw new SqlError({
        code: 'HQL_SQL',
        message: `the AUTOINCREMENT of '${table}' is exhausted: it reached the largest rowid (${ROWID_MAX}), so SQLite gives a new row no rowid (SQLITE_FULL); delete or renumber that row and lower its sqlite_sequence entry`,
        sqliteCode: 'SQLITE_FULL',
      });
    }
  }

  /**
   * A statement failed with SQLITE_FULL: the AUTOINCREMENT table among `tables` whose counter or
   * largest rowid is at the largest rowid, if any. SQLite then refuses a new row before writing
   * anything, on every replica alike (a result, not a full disk, which only this node has).
   */
  private exhaustedAutoincrement(tables: readonly string[]): string | null {
    for (const table of tables) {
      if (this.maxRowidOf(table) === ROWID_MAX) return table;
      let seq: unknown;
      try {
        seq = this.db
          .prepare('SELECT seq FROM main.sqlite_sequence WHERE name = ?')
          .pluck()
          .safeIntegers(true)
          .get(table);
      } catch {
        continue; // no sqlite_sequence: no AUTOINCREMENT table
      }
      if (typeof seq === 'bigint' && seq >= ROWID_MAX) return table;
    }
    return null;
  }

  private maxRowidOf(table: string): unknown {
    let stmt = this.maxRowid.get(table);
    if (stmt === undefined) {
      stmt = this.db
        .prepare(`SELECT max(rowid) FROM main.${quoteName(table)}`)
        .pluck()
        .safeIntegers(true);
      this.maxRowid.set(table, stmt);
    }
    return stmt.get();
  }

  /** Applies the access rules to a compiled program (its sub-programs included). */
  private judge(ops: readonly OpRow[], kind: StatementKind): AccessVerdict {
    const roots = this.rootMap();
    let changesSchema = false;
    let where = '';
    /** Cursor → root page of the (sub-)program being read: cursors are numbered per program. */
    const writeCursors = new Map<number, number>();
    const newRowid = new Set<string>();
    const autoincrement = new Set<string>();
    for (const [, opcode, p1, p2, p3, p4, p5] of ops) {
      let error: SqlErrorInfo | null = null;
      switch (opcode) {
        case 'Init':
          // A sub-program starts with Init whose P4 is "-- TRIGGER name" (sqlite3.c codeRowTrigger).
          if (typeof p4 === 'string' && p4.startsWith('-- TRIGGER ')) where = ` (in trigger ${p4.slice(11)})`;
          writeCursors.clear();
          break;
        case 'NewRowid': {
          const target = roots.get(writeCursors.get(p1) ?? 0);
          // P3: the register of the AUTOINCREMENT counter (sqlite3.c OP_NewRowid), 0 without.
          if (target?.type === 'table') (p3 !== 0 ? autoincrement : newRowid).add(target.name);
          break;
        }
        case 'OpenRead':
        case 'ReopenIdx':
          if (p3 === 0 && (p5 & P2_IS_REGISTER) === 0) error = this.read(roots.get(p2), kind);
          break;
        case 'OpenWrite':
          if ((p5 & P2_IS_REGISTER) !== 0) {
            // Only DDL and ANALYZE open a btree they create in the same program.
            if (kind === 'other' || kind === 'reindex')
              error = refused('the statement writes an unknown btree');
          } else if (p3 !== 0) error = this.otherDatabase(kind);
          else {
            error = this.write(p2, roots.get(p2), kind, false);
            writeCursors.set(p1, p2);
          }
          break;
        case 'Clear':
          error = p2 !== 0 ? this.otherDatabase(kind) : this.write(p1, roots.get(p1), kind, false);
          break;
        case 'Destroy':
          error = p3 !== 0 ? this.otherDatabase(kind) : this.write(p1, roots.get(p1), kind, true);
          break;
        case 'VOpen': {
          const table = typeof p4 === 'string' ? this.forbiddenPragmaTables().get(p4) : undefined;
          if (table === 'dbstat') error = refused(DBSTAT_REFUSED);
          else if (table !== undefined) {
            error = refused(
              `${table} is not allowed in a replicated write: it reports or changes node-local state`,
            );
          }
          break;
        }
        case 'Transaction':
          if (p1 !== 0) error = this.otherDatabase(kind);
          break;
        case 'JournalMode':
          // P3 -1 (PAGER_JOURNALMODE_QUERY) only asks: SQLite compiles a DDL with nothing to do
          // (`CREATE TABLE IF NOT EXISTS` of a table that exists, `DROP TABLE IF EXISTS` of
          // none) to it (sqlite3ForceNotReadOnly), and such statements were refused.
          if (p3 !== PAGER_JOURNALMODE_QUERY)
            error = refused('JournalMode is not allowed in a replicated write');
          break;
        case 'Function':
        case 'PureFunc':
          if (typeof p4 === 'string' && ATTACH_FUNCTIONS.test(p4))
            error = refused('ATTACH / DETACH is not allowed on a replicated database');
          break;
        default:
          if (FORBIDDEN_OPCODES.has(opcode))
            error = refused(`${opcode} is not allowed in a replicated write`);
      }
      if (error !== null) {
        const message = error.message + where;
        return { error: { ...error, message }, changesSchema, newRowid: [], newRowidAutoincrement: [] };
      }
      if (SCHEMA_OPCODES.has(opcode)) changesSchema = true;
    }
    return changesSchema || newRowid.size > 0 || autoincrement.size > 0
      ? {
          error: null,
          changesSchema,
          newRowid: [...newRowid].sort(),
          newRowidAutoincrement: [...autoincrement].sort(),
        }
      : ALLOWED;
  }

  private forbiddenPragmaTables(): Map<string, string> {
    if (this.pragmaTables !== null) return this.pragmaTables;
    const tables = new Map<string, string>();
    for (const name of this.stmts.pragmaList.all() as string[]) {
      if (WRITE_PRAGMA_FUNCTIONS.has(name) || !/^[a-z_]+$/.test(name)) continue;
      let ops: OpRow[];
      try {
        ops = this.explain(`SELECT * FROM pragma_${name}`, 0);
      } catch {
        continue; // a pragma without a table-valued function
      }
      for (const op of ops)
        if (op[1] === 'VOpen' && typeof op[5] === 'string') tables.set(op[5], `pragma_${name}`);
    }
    // dbstat (a replica's file layout), when this SQLite has it.
    try {
      for (const op of this.explain('SELECT * FROM dbstat', 0))
        if (op[1] === 'VOpen' && typeof op[5] === 'string') tables.set(op[5], 'dbstat');
    } catch {
      // built without it
    }
    this.pragmaTables = tables;
    return tables;
  }

  private read(target: RootInfo | undefined, kind: StatementKind): SqlErrorInfo | null {
    if (target?.cls !== 'internal' || kind === 'analyze' || kind === 'reindex') return null;
    return refused(
      `'${target.name}' belongs to the state machine: a write may not read or change it (query it with a read)`,
    );
  }

  private write(
    root: number,
    target: RootInfo | undefined,
    kind: StatementKind,
    destroy: boolean,
  ): SqlErrorInfo | null {
    if (root === SCHEMA_ROOT) {
      return kind === 'ddl' || kind === 'analyze'
        ? null
        : refused('sqlite_schema may only change through DDL');
    }
    if (target === undefined) return null;
    switch (target.cls) {
      case 'user':
        return null;
      case 'stat':
        // DROP TABLE / DROP INDEX delete the dropped object's statistics. Dropping a statistics
        // table would leave the writer planning with the statistics it loaded.
        return kind === 'analyze' || (kind === 'ddl' && !destroy)
          ? null
          : refused(
              `'${target.name}' may only be written by ANALYZE: SQLite loads statistics with the schema`,
            );
      case 'internal':
      case 'migrations':
        // REINDEX rebuilds indexes (a WITHOUT ROWID table is its primary-key index) from their
        // content: nothing changes.
        if (kind === 'reindex') return null;
        return refused(
          `'${target.name}' belongs to the state machine: user SQL may not write it (${target.cls === 'migrations' ? 'use the migrate command' : 'reserved'})`,
        );
    }
  }

  private otherDatabase(kind: StatementKind): SqlErrorInfo | null {
    // ALTER and DROP also rewrite references in the (always empty) temp schema.
    if (kind === 'ddl' || kind === 'analyze') return null;
    return refused("only the 'main' database is replicated");
  }

  /** Checks the schema a DDL statement left against the one before it. */
  private validateSchema(before: readonly SchemaRow[]): SqlErrorInfo | null {
    if ((this.stmts.tempObjects.get() as number) > 0) {
      return refused('TEMP objects are not allowed: they are not replicated, snapshotted or persisted');
    }
    const after = this.stmts.schema.all() as SchemaRow[];
    const internal = (rows: readonly SchemaRow[]) =>
      rows
        .filter((r) => isReservedName(r.tbl_name) || isReservedName(r.name))
        .map(rowKey)
        .sort()
        .join('\n');
    if (internal(before) !== internal(after)) {
      return refused("the state machine's own tables (_hq_*, _migrations) may not be altered or dropped");
    }
    const known = new Set(before.map(rowKey));
    const byName = new Map(after.map((r) => [`${r.type}:${asciiLower(r.name)}`, r]));
    for (const row of after) {
      if (known.has(rowKey(row))) continue;
      const error = this.checkNewObject(row, byName);
      if (error !== null) return error;
    }
    return null;
  }

  private checkNewObject(row: SchemaRow, byName: ReadonlyMap<string, SchemaRow>): SqlErrorInfo | null {
    if (isReservedName(row.name) || isReservedName(row.tbl_name)) {
      return refused(
        `${row.type} '${row.name}' would name or attach to a table reserved for the state machine`,
      );
    }
    switch (row.type) {
      case 'table': {
        const parents = this.stmts.foreignKeys.all(row.name) as string[];
        const parent = parents.find(isReservedName);
        if (parent === undefined) return null;
        return refused(
          `table '${row.name}' may not reference '${parent}', which belongs to the state machine`,
        );
      }
      case 'view':
        return this.compiled([`SELECT * FROM main.${quoteName(row.name)}`], `view '${row.name}'`);
      case 'trigger': {
        const target =
          byName.get(`table:${asciiLower(row.tbl_name)}`) ?? byName.get(`view:${asciiLower(row.tbl_name)}`);
        if (target === undefined) return null;
        const table = `main.${quoteName(target.name)}`;
        const columns = (this.stmts.columns.all(target.name) as { name: string; hidden: number }[])
          .filter((c) => c.hidden === 0)
          .map((c) => quoteName(c.name));
        const firing = [`INSERT INTO ${table} DEFAULT VALUES`, `DELETE FROM ${table}`];
        if (columns.length > 0)
          firing.push(`UPDATE ${table} SET ${columns.map((c) => `${c} = ${c}`).join(', ')}`);
        return this.compiled(firing, `trigger '${row.name}'`);
      }
      default:
        return null;
    }
  }

  /** Compiles statements that use a new object and applies the write rules to their programs. */
  private compiled(statements: readonly string[], what: string): SqlErrorInfo | null {
    for (const sql of statements) {
      let ops: OpRow[];
      try {
        ops = this.explain(sql, 0);
      } catch {
        continue; // e.g. a view cannot be deleted from without an INSTEAD OF trigger
      }
      const { error } = this.judge(ops, 'other');
      if (error !== null) return { ...error, message: `${what}: ${error.message}` };
    }
    return null;
  }
}

function prepareGuardStatements(db: Database.Database) {
  return {
    schemaVersion: db.prepare('PRAGMA schema_version').pluck(),
    pragmaList: db.prepare('SELECT name FROM pragma_pragma_list').pluck(),
    schema: db.prepare('SELECT type, name, tbl_name, rootpage, sql FROM main.sqlite_schema'),
    tempObjects: db.prepare('SELECT count(*) FROM temp.sqlite_schema').pluck(),
    foreignKeys: db.prepare('SELECT "table" FROM pragma_foreign_key_list(?, \'main\')').pluck(),
    columns: db.prepare("SELECT name, hidden FROM pragma_table_xinfo(?, 'main')"),
    savepoint: db.prepare('SAVEPOINT hq_ddl'),
    rowidSavepoint: db.prepare('SAVEPOINT hq_rowid'),
    rowidRollbackTo: db.prepare('ROLLBACK TO hq_rowid'),
    rowidRelease: db.prepare('RELEASE hq_rowid'),
    rollbackTo: db.prepare('ROLLBACK TO hq_ddl'),
    release: db.prepare('RELEASE hq_ddl'),
  };
}
