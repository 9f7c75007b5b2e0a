/**
 * Internal state is not writable by user SQL by any route (issue 9): a corpus of bypass attempts
 * — every quoting style, schema qualification, EXPLAIN, pragma spellings and pragma functions,
 * triggers and views (also ones that predate the guard), foreign keys, ALTER/DROP, sqlite_*
 * tables — each refused with HQL_STATEMENT_NOT_ALLOWED, leaving the state machine's tables, the
 * schema and the writer's connection settings as they were; and a corpus of legitimate
 * statements that must keep working.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import type { CommandInput } from '../../src/sm/sql/command.js';
import { SqlError } from '../../src/sm/sql/errors.js';
import { SqlReader } from '../../src/sm/sql/reader.js';
import type { CommandResult } from '../../src/sm/sql/result.js';
import { SqlStateMachine } from '../../src/sm/sql/state-machine.js';
import { cmd, exec, Log, makeTempDir } from './sql-test-helpers.js';

/** Connection settings a statement could change on the writer or a reader. */
const CONNECTION_PRAGMAS = [
  'foreign_keys',
  'recursive_triggers',
  'defer_foreign_keys',
  'query_only',
  'writable_schema',
  'ignore_check_constraints',
  'reverse_unordered_selects',
  'legacy_alter_table',
  'trusted_schema',
  'automatic_index',
  'cell_size_check',
  'cache_size',
  'cache_spill',
  'synchronous',
  'journal_mode',
  'journal_size_limit',
  'busy_timeout',
  'secure_delete',
  'temp_store',
  'locking_mode',
  'read_uncommitted',
  'count_changes',
  'full_column_names',
  'short_column_names',
  'analysis_limit',
  'threads',
  'max_page_count',
  'user_version',
  'application_id',
];

function connectionState(db: Database.Database): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of CONNECTION_PRAGMAS) out[p] = db.pragma(p, { simple: true });
  out.tempObjects = db.prepare('SELECT count(*) FROM temp.sqlite_schema').pluck().get();
  return out;
}

/** The state machine's tables and the whole schema, without the applied position. */
function internalState(db: Database.Database): Record<string, unknown> {
  const rows = (sql: string) => db.prepare(sql).safeIntegers(true).raw(true).all();
  return {
    meta: rows('SELECT id, membership, format FROM _hq_meta ORDER BY id'),
    sessions: rows('SELECT * FROM _hq_sessions ORDER BY client_id'),
    counters: rows('SELECT * FROM _hq_counters ORDER BY id'),
    migrations: rows('SELECT * FROM _migrations ORDER BY id'),
    schema: rows('SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name'),
    stat1: rows('SELECT * FROM sqlite_stat1 ORDER BY 1, 2, 3'),
  };
}

function describeResult(r: CommandResult | undefined): string {
  return JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));
}

/** Statements a replicated write must refuse, with every route to the internal tables. */
const WRITE_BYPASSES: readonly string[] = [
  // The spellings SQLite accepts for one table.
  "DELETE FROM '_hq_meta'",
  "DELETE FROM '_hq_sessions'",
  "DELETE FROM main.'_hq_sessions'",
  "DELETE /* c */ FROM /* d */ '_hq_sessions' -- e",
  'DELETE FROM "_HQ_SESSIONS"',
  'DELETE FROM [_hq_counters]',
  'DELETE FROM `_hq_counters`',
  "UPDATE '_hq_counters' SET id = 5",
  "INSERT INTO '_hq_sessions' VALUES ('intruder', 1, NULL, 0, NULL)",
  "REPLACE INTO '_hq_counters' (id) VALUES (7)",
  "INSERT INTO '_hq_counters' (id) VALUES (0) ON CONFLICT DO UPDATE SET id = 9",
  "INSERT INTO t (a, b) SELECT applied_index, 0 FROM '_hq_meta'",
  "INSERT INTO t (a) SELECT count(*) FROM '_hq_sessions' RETURNING a",
  "WITH x AS (SELECT * FROM '_hq_meta') INSERT INTO t (a) SELECT id FROM x",
  // _migrations is written by the migrate command only.
  'DELETE FROM _migrations',
  "DELETE FROM '_migrations'",
  "INSERT INTO _migrations VALUES (99, 'x', 'y', 1, 1)",
  'UPDATE "_migrations" SET checksum = \'z\'',
  // DDL on, or naming, the reserved tables.
  "DROP TABLE '_hq_counters'",
  'DROP TABLE _migrations',
  "ALTER TABLE '_hq_meta' RENAME TO m",
  "ALTER TABLE '_hq_sessions' ADD COLUMN x",
  "ALTER TABLE '_migrations' RENAME TO mig",
  "ALTER TABLE '_hq_meta' DROP COLUMN format",
  "ALTER TABLE t RENAME TO '_hq_t'",
  'ALTER TABLE t RENAME TO "_HQ_T2"',
  "CREATE TABLE '_hq_x' (a)",
  "CREATE VIEW '_hq_v' AS SELECT 1",
  "CREATE INDEX i_sessions ON '_hq_sessions' (last_seen_ms)",
  "CREATE INDEX '_hq_i' ON t (a)",
  "CREATE TABLE c AS SELECT * FROM '_hq_sessions'",
  "CREATE TABLE c (x REFERENCES '_hq_counters' (id))",
  "CREATE TABLE c (x, FOREIGN KEY (x) REFERENCES '_migrations' (id))",
  // Triggers on, or writing, the reserved tables; views reading them.
  "CREATE TRIGGER tr AFTER UPDATE ON '_hq_meta' BEGIN INSERT INTO t VALUES (1, 1); END",
  "CREATE TRIGGER tr BEFORE DELETE ON main.'_hq_counters' BEGIN SELECT 1; END",
  "CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM '_hq_sessions'; END",
  "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE '_migrations' SET name = 'x'; END",
  "CREATE TRIGGER tr AFTER INSERT ON t WHEN (SELECT applied_index FROM '_hq_meta') > 0 BEGIN SELECT 1; END",
  "CREATE TRIGGER tr INSTEAD OF INSERT ON v BEGIN DELETE FROM '_hq_meta'; END",
  "CREATE TRIGGER tr AFTER UPDATE OF b ON t BEGIN INSERT INTO '_hq_counters' VALUES (3); END",
  "CREATE VIEW vm AS SELECT * FROM '_hq_meta'",
  // Triggers and views created before the guard existed: refused where they are used.
  'INSERT INTO legacy_t VALUES (1)',
  'INSERT INTO legacy_v VALUES (1)',
  'INSERT INTO t (a) SELECT applied_index FROM legacy_meta_view',
  'DELETE FROM legacy_parent',
  'INSERT INTO t (a) SELECT data_version FROM legacy_data_version',
  // EXPLAIN in writes (and the PRAGMAs SQLite runs while preparing it).
  'EXPLAIN PRAGMA recursive_triggers = OFF',
  'EXPLAIN PRAGMA foreign_keys = OFF',
  'explain query plan PRAGMA defer_foreign_keys = ON',
  'EXPLAIN DELETE FROM t',
  'EXPLAIN QUERY PLAN SELECT 1',
  // PRAGMA spellings.
  'PRAGMA "recursive_triggers" = OFF',
  "PRAGMA 'foreign_keys' = 0",
  'PRAGMA [defer_foreign_keys] = 1',
  'pragma Recursive_Triggers(0)',
  'PRAGMA main.writable_schema = 1',
  'PRAGMA "main".writable_schema(1)',
  "PRAGMA 'main' . /* c */ writable_schema = ON",
  '-- comment\nPRAGMA/**/foreign_keys/**/=/**/0',
  'PRAGMA query_only = 1',
  'PRAGMA case_sensitive_like = 1',
  'PRAGMA ignore_check_constraints = 1',
  'PRAGMA legacy_alter_table = ON',
  'PRAGMA trusted_schema = 0',
  'PRAGMA reverse_unordered_selects = 1',
  'PRAGMA optimize',
  'PRAGMA schema_version = 1',
  'PRAGMA user_version = 1 = 2',
  'PRAGMA user_version(1) foreign_keys',
  // Pragma functions that report node-local values or write statistics.
  'INSERT INTO t (a) SELECT data_version FROM pragma_data_version',
  "INSERT INTO t (a) SELECT * FROM 'pragma_page_count'",
  'SELECT * FROM "pragma_freelist_count"',
  'SELECT * FROM main.pragma_optimize',
  'SELECT * FROM [PRAGMA_COMPILE_OPTIONS]',
  // Statistics SQLite only loads with the schema; the other databases.
  'DELETE FROM sqlite_stat1',
  "INSERT INTO sqlite_stat1 VALUES ('t', NULL, '1')",
  "UPDATE 'sqlite_stat1' SET stat = '9'",
  'DROP TABLE sqlite_stat1',
  "CREATE TABLE 'temp'.x (a)",
  'CREATE TABLE "temp"."x" (a)',
  'CREATE TEMP VIEW tv AS SELECT 1',
  'CREATE VIEW temp.tv AS SELECT 1',
  'SELECT * FROM temp.sqlite_schema',
  "ATTACH ':memory:' AS x",
  'VACUUM',
  'SAVEPOINT x',
  'BEGIN',
  'COMMIT',
  'ROLLBACK',
  'RELEASE x',
  // dbstat reports the node's file layout (a write copying it made replicas differ).
  "INSERT INTO t (a) SELECT payload FROM dbstat WHERE name = 't'",
  'INSERT INTO t (a) SELECT pgsize FROM "DBSTAT"',
  'CREATE VIRTUAL TABLE ds USING dbstat',
  "INSERT INTO t (a) SELECT pgsize FROM 'dbstat'",
];

/**
 * The spellings of one statement SQLite reads as that statement: a U+FEFF (UTF-8 BOM) is a
 * space to SQLite wherever a token starts; read as part of a name, it hid every statement above
 * from the guard.
 */
function spellings(sql: string): string[] {
  return [sql, `\ufeff${sql}`, `\ufeff \ufeff${sql}`, sql.replace(' ', ' \ufeff')];
}

/** Legitimate statements that must still work, in order (later ones use earlier ones). */
const WRITE_LEGITIMATE: readonly string[] = [
  'CREATE TABLE u (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER DEFAULT 0)',
  "INSERT INTO u (name) VALUES ('_hq_meta'), ('pragma_data_version')",
  "INSERT INTO u (name) VALUES ('a') ON CONFLICT (name) DO UPDATE SET n = n + 1",
  "INSERT INTO u (name) VALUES ('a') ON CONFLICT (name) DO UPDATE SET n = n + 1",
  "REPLACE INTO u (id, name) VALUES (10, 'r')",
  'CREATE TABLE log (msg TEXT)',
  "CREATE TRIGGER u_ins AFTER INSERT ON u BEGIN INSERT INTO log VALUES ('ins ' || new.name); END",
  "INSERT INTO u (name) VALUES ('b')",
  "\ufeffINSERT INTO u (name) VALUES ('after a BOM')",
  'CREATE VIEW uv AS SELECT id, name FROM u',
  'CREATE TRIGGER uv_ins INSTEAD OF INSERT ON uv BEGIN INSERT INTO u (name) VALUES (new.name); END',
  "INSERT INTO uv (name) VALUES ('via view')",
  'CREATE INDEX u_n ON u (n)',
  'ALTER TABLE u ADD COLUMN extra TEXT',
  'ALTER TABLE u RENAME COLUMN extra TO extra2',
  'ALTER TABLE log RENAME TO log2',
  'CREATE TABLE child (id INTEGER PRIMARY KEY, u_id INTEGER REFERENCES u (id) ON DELETE CASCADE)',
  'INSERT INTO child (u_id) VALUES (1)',
  'DELETE FROM u WHERE id = 1',
  'CREATE TABLE s (id INTEGER PRIMARY KEY AUTOINCREMENT, v)',
  'INSERT INTO s (v) VALUES (1)',
  "UPDATE sqlite_sequence SET seq = 100 WHERE name = 's'",
  'ANALYZE',
  'ANALYZE u',
  'REINDEX',
  'REINDEX u',
  'PRAGMA user_version = 3',
  "PRAGMA main.application_id = 'x'",
  'PRAGMA table_info(u)',
  "PRAGMA 'table_info'('u')",
  "INSERT INTO log2 SELECT name FROM pragma_table_info('u')",
  'INSERT INTO log2 SELECT count(*) FROM _migrations',
  'SELECT * FROM sqlite_schema',
  'CREATE VIRTUAL TABLE f USING fts5(body)',
  "INSERT INTO f VALUES ('hello world')",
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 5) INSERT INTO log2 SELECT x FROM c',
  "UPDATE u SET n = 5 WHERE name = 'b' RETURNING id",
  'DROP TRIGGER uv_ins',
  'DROP VIEW uv',
  'DROP INDEX u_n',
  'DROP TABLE child',
  'DELETE FROM log2',
  // DDL with nothing to do (SQLite compiles it to a JournalMode query): it was refused.
  'CREATE TABLE IF NOT EXISTS u (id)',
  'CREATE TABLE IF NOT EXISTS u (id)',
  'DROP TABLE IF EXISTS never_created',
  'CREATE INDEX IF NOT EXISTS u_name ON u (name)',
  'CREATE INDEX IF NOT EXISTS u_name ON u (name)',
  'DROP INDEX IF EXISTS never_created_either',
];

describe('internal state is not writable by user SQL by any route', () => {
  const { dir, cleanup } = makeTempDir();
  let sm: SqlStateMachine;
  let writer: Database.Database;
  const log = new Log();
  const apply = (c: CommandInput, session?: { clientId: string; seq: number }) =>
    sm.applyBatch(log.entries(cmd(c, session === undefined ? {} : { session })))[0];

  before(() => {
    sm = SqlStateMachine.open(dir);
    for (const sql of [
      'CREATE TABLE t (a, b)',
      'CREATE VIEW v AS SELECT a, b FROM t',
      'CREATE TABLE legacy_t (a)',
      'CREATE VIEW legacy_v AS SELECT a FROM legacy_t',
      'CREATE TABLE legacy_parent (id INTEGER PRIMARY KEY)',
      'CREATE TABLE legacy_child (p INTEGER REFERENCES legacy_parent (id) ON DELETE CASCADE)',
      'INSERT INTO legacy_parent VALUES (1)',
      'INSERT INTO legacy_child VALUES (1)',
      'ANALYZE',
    ]) {
      const r = apply(exec(sql));
      assert.ok(r?.ok, `${sql}: ${describeResult(r)}`);
    }
    apply(exec('INSERT INTO t VALUES (1, 1)'), { clientId: 'c1', seq: 1 });
    sm.close();
    // Triggers and views a user could create before the guard saw SQLite's view of a statement.
    const raw = new Database(`${dir}/hiqlite.db`);
    raw.exec(`
      CREATE TRIGGER legacy_t_ins AFTER INSERT ON legacy_t BEGIN DELETE FROM _hq_sessions; END;
      CREATE TRIGGER legacy_v_ins INSTEAD OF INSERT ON legacy_v BEGIN UPDATE _hq_counters SET id = 9; END;
      CREATE VIEW legacy_meta_view AS SELECT applied_index FROM _hq_meta;
      CREATE TRIGGER legacy_child_del AFTER DELETE ON legacy_child BEGIN DELETE FROM _migrations; END;
      CREATE VIEW legacy_data_version AS SELECT * FROM pragma_data_version;
    `);
    raw.close();
    sm = SqlStateMachine.open(dir);
    writer = (sm as unknown as { db: Database.Database }).db;
  });

  after(() => {
    sm.close();
    cleanup();
  });

  test('every bypass attempt is refused and changes nothing, alone and in every command shape', () => {
    const shapes: [string, (sql: string) => CommandInput][] = [
      ['execute', (sql) => exec(sql)],
      [
        'txn',
        (sql) => ({
          type: 'txn',
          statements: [
            { sql: 'INSERT INTO t VALUES (2, 2)', params: [] },
            { sql, params: [] },
          ],
        }),
      ],
      ['batch', (sql) => ({ type: 'batch', sql: `INSERT INTO t VALUES (3, 3);\n${sql}` })],
    ];
    for (const sql of WRITE_BYPASSES.flatMap(spellings)) {
      for (const [shape, make] of shapes) {
        const state = internalState(writer);
        const settings = connectionState(writer);
        const rowsOfT = writer.prepare('SELECT count(*) FROM t').pluck().get();
        const r = apply(make(sql));
        const what = `${shape}: ${sql}`;
        assert.ok(r !== undefined, what);
        const error = r.ok ? (r.type === 'batch' ? r.value.find((s) => !s.ok)?.error : undefined) : r.error;
        assert.equal(error?.code, 'HQL_STATEMENT_NOT_ALLOWED', `${what} → ${describeResult(r)}`);
        if (shape === 'txn')
          assert.equal(writer.prepare('SELECT count(*) FROM t').pluck().get(), rowsOfT, what);
        assert.deepEqual(internalState(writer), state, what);
        assert.deepEqual(connectionState(writer), settings, what);
        assert.equal(sm.appliedIndex(), log.last, what);
      }
    }
  });

  test('a migration cannot write the internal tables either', () => {
    const state = internalState(writer);
    const r = apply({
      type: 'migrate',
      migrations: [
        { id: 1, name: 'evil', sql: "CREATE TABLE m1 (a); DELETE FROM '_hq_sessions';", checksum: 'c' },
      ],
    });
    assert.ok(r !== undefined && !r.ok, describeResult(r));
    assert.equal(r.error.code, 'HQL_STATEMENT_NOT_ALLOWED');
    assert.deepEqual(internalState(writer), state);
  });

  test('a retried write is still applied once after an attempt to clear the sessions', () => {
    const first = apply(exec('INSERT INTO t VALUES (7, 7)'), { clientId: 'retry', seq: 1 });
    assert.ok(first?.ok);
    assert.equal(apply(exec("DELETE FROM '_hq_sessions'"))?.ok, false);
    const retried = apply(exec('INSERT INTO t VALUES (7, 7)'), { clientId: 'retry', seq: 1 });
    assert.deepEqual(retried, first);
    assert.equal(writer.prepare('SELECT count(*) FROM t WHERE a = 7').pluck().get(), 1);
  });

  test('legitimate statements keep working', () => {
    for (const sql of WRITE_LEGITIMATE) {
      const settings = connectionState(writer);
      const r = apply(exec(sql));
      assert.ok(r?.ok, `${sql} → ${describeResult(r)}`);
      if (!/^PRAGMA (main\.)?(user_version|application_id)/.test(sql)) {
        assert.deepEqual(connectionState(writer), settings, sql);
      }
    }
    assert.deepEqual(
      writer
        .prepare("SELECT name FROM u WHERE name IN ('via view', 'pragma_data_version') ORDER BY name")
        .pluck()
        .all(),
      ['pragma_data_version', 'via view'],
    );
    assert.equal(writer.prepare("SELECT seq FROM sqlite_sequence WHERE name = 's'").pluck().get(), 100);
    // A snapshot of this database opens and checks as valid (nothing internal was damaged).
    assert.equal(writer.pragma('integrity_check', { simple: true }), 'ok');
  });

  test('a legitimate migration creates tables and triggers', () => {
    const r = apply({
      type: 'migrate',
      migrations: [
        {
          id: 10,
          name: 'ok',
          sql: 'CREATE TABLE m2 (a); CREATE TRIGGER m2_ins AFTER INSERT ON m2 BEGIN UPDATE m2 SET a = a + 1 WHERE rowid = new.rowid; END; INSERT INTO m2 VALUES (1);',
          checksum: 'c',
        },
      ],
    });
    assert.ok(r?.ok, describeResult(r));
    assert.equal(writer.prepare('SELECT a FROM m2').pluck().get(), 2);
  });
});

describe('a read connection stays a plain reader whatever the spelling', () => {
  const { dir, cleanup } = makeTempDir();
  const sm = SqlStateMachine.open(dir);
  sm.applyBatch(new Log().entries(cmd(exec('CREATE TABLE t (a)')), cmd(exec('INSERT INTO t VALUES (1)'))));
  const reader = SqlReader.open(sm.path, { applied: sm.applied });
  const db = (reader as unknown as { db: Database.Database }).db;
  after(() => {
    reader.close();
    sm.close();
    cleanup();
  });

  test('PRAGMA assignments in any spelling, also under EXPLAIN, are refused and change nothing', () => {
    for (const sql of [
      'EXPLAIN PRAGMA foreign_keys = 0',
      'EXPLAIN QUERY PLAN PRAGMA query_only = 0',
      'PRAGMA foreign_keys(0)',
      'PRAGMA "query_only" = 0',
      "PRAGMA 'query_only'(0)",
      'PRAGMA main.query_only = false',
      'PRAGMA recursive_triggers = 0',
      'PRAGMA cache_size = 10',
      'PRAGMA journal_mode(DELETE)',
      'PRAGMA user_version = 3',
      'PRAGMA optimize',
      'SELECT * FROM pragma_optimize',
      'SELECT * FROM "pragma_optimize"',
      'PRAGMA writable_schema = 1',
      'BEGIN',
      'SAVEPOINT s',
      "ATTACH 'x.db' AS x",
    ].flatMap(spellings)) {
      const settings = connectionState(db);
      assert.throws(
        () => reader.query(sql),
        (e: unknown) => e instanceof SqlError && e.sqlCode === 'HQL_STATEMENT_NOT_ALLOWED',
        sql,
      );
      assert.deepEqual(connectionState(db), settings, sql);
      assert.equal(db.inTransaction, false, sql);
    }
  });

  test('introspection, EXPLAIN of a query and the internal tables stay readable', () => {
    for (const sql of [
      'EXPLAIN SELECT * FROM t',
      'EXPLAIN QUERY PLAN SELECT * FROM t',
      'PRAGMA table_info(t)',
      "PRAGMA main.'table_info'('t')",
      'PRAGMA foreign_keys',
      'PRAGMA page_count',
      "SELECT * FROM pragma_table_info('t')",
      'SELECT applied_index FROM _hq_meta',
      'SELECT * FROM _migrations',
    ]) {
      const settings = connectionState(db);
      assert.ok(Array.isArray(reader.query(sql)), sql);
      assert.deepEqual(connectionState(db), settings, sql);
    }
  });
});
