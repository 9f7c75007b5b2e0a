import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planPositional } from '../../src/sm/sql/params.js';
import { checkStatement } from '../../src/sm/sql/statement-guard.js';
import { splitStatements, tokenize } from '../../src/sm/sql/tokenizer.js';

const texts = (sql: string) => splitStatements(sql).map((s) => s.text);

function plan(sql: string) {
  const [s] = splitStatements(sql);
  assert.ok(s !== undefined);
  return planPositional(s.text, s.tokens);
}

function guard(sql: string, mode: 'write' | 'read' = 'write') {
  const [s] = splitStatements(sql);
  assert.ok(s !== undefined);
  return checkStatement(s, mode)?.code ?? null;
}

describe('tokenizer', () => {
  test('string literals, quoted identifiers, blobs and comments are single units', () => {
    const kinds = tokenize(`SELECT 'a;''b', "c""d", [e f], \`g\`, x'00ff', 1e-5, 0x1F -- c;
      /* ; */ ?1, :n, @n, $n, $1`).map((t) => `${t.kind}:${t.text}`);
    assert.deepEqual(kinds, [
      'word:SELECT',
      "string:'a;''b'",
      'punct:,',
      'quoted:"c""d"',
      'punct:,',
      'quoted:[e f]',
      'punct:,',
      'quoted:`g`',
      'punct:,',
      "blob:x'00ff'",
      'punct:,',
      'number:1e-5',
      'punct:,',
      'number:0x1F',
      'param:?1',
      'punct:,',
      'param::n',
      'punct:,',
      'param:@n',
      'punct:,',
      'param:$n',
      'punct:,',
      'param:$1',
    ]);
  });

  test('U+FEFF where a token starts is a space, as SQLite reads it; inside a name it is part of the name', async () => {
    const words = (sql: string) => tokenize(sql).map((t) => `${t.kind}:${t.text}`);
    assert.deepEqual(words('\ufeffBEGIN'), ['word:BEGIN']);
    assert.deepEqual(words('SELECT 1;\ufeff\ufeff PRAGMA x'), [
      'word:SELECT',
      'number:1',
      'punct:;',
      'word:PRAGMA',
      'word:x',
    ]);
    assert.deepEqual(words('SELECT a\ufeffb'), ['word:SELECT', 'word:a\ufeffb']);
    assert.deepEqual(texts('SELECT 1;\ufeffBEGIN'), ['SELECT 1', 'BEGIN']);
    // What SQLite itself makes of the same texts.
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(':memory:');
    try {
      assert.deepEqual(db.prepare('\ufeffSELECT 1 AS x').get(), { x: 1 });
      assert.deepEqual(db.prepare('SELECT 1 AS \ufeffx').get(), { x: 1 });
      assert.deepEqual(db.prepare('SELECT 1 AS x\ufeffy').get(), { 'x\ufeffy': 1 });
    } finally {
      db.close();
    }
  });

  test('unterminated literals and comments run to the end of the input', () => {
    assert.deepEqual(
      tokenize("SELECT 'abc; DROP").map((t) => t.kind),
      ['word', 'string'],
    );
    assert.deepEqual(texts('SELECT 1 /* ; SELECT 2'), ['SELECT 1']);
  });
});

describe('splitStatements', () => {
  test('splits at top-level semicolons and drops empty statements', () => {
    assert.deepEqual(texts("SELECT ';'; ;  SELECT 2 -- x; y\n;"), ["SELECT ';'", 'SELECT 2']);
  });

  test('keeps a trigger body with its inner statements and CASE … END together', () => {
    const sql = `CREATE TRIGGER t AFTER INSERT ON a BEGIN
        UPDATE a SET v = CASE WHEN new.v > 0 THEN 1 ELSE 0 END;
        INSERT INTO b VALUES (new.id);
      END; SELECT 1`;
    const parts = texts(sql);
    assert.equal(parts.length, 2);
    assert.match(parts[0] ?? '', /^CREATE TRIGGER[\s\S]*END$/);
    assert.equal(parts[1], 'SELECT 1');
  });
});

describe('planPositional', () => {
  test('rewrites every parameter to ? and orders values like SQLite numbers them', () => {
    assert.deepEqual(plan('SELECT ?, ?'), { text: 'SELECT ?, ?', order: [0, 1], expected: 2 });
    assert.deepEqual(plan('SELECT ?2, ?1, ?2'), { text: 'SELECT ?, ?, ?', order: [1, 0, 1], expected: 2 });
    assert.deepEqual(plan('SELECT $2, $1'), { text: 'SELECT ?, ?', order: [1, 0], expected: 2 });
    assert.deepEqual(plan('SELECT ?3, ?'), { text: 'SELECT ?, ?', order: [2, 3], expected: 4 });
    assert.deepEqual(plan('SELECT :a, ?, :a'), { text: 'SELECT ?, ?, ?', order: [0, 1, 0], expected: 2 });
    // A statement's text ends at its last token: the trailing comment is not part of it.
    assert.deepEqual(plan('SELECT \'?\', "?" -- ?'), { text: 'SELECT \'?\', "?"', order: [], expected: 0 });
  });

  test('a parameter number out of range is HQL_INVALID_PARAMS', () => {
    const r = plan('SELECT ?0');
    assert.ok('code' in r && r.code === 'HQL_INVALID_PARAMS');
    assert.ok('code' in plan('SELECT ?40000'));
  });
});

describe('statement guard', () => {
  test('write mode allows ordinary DML, DDL and header PRAGMAs', () => {
    for (const sql of [
      'INSERT INTO t VALUES (1)',
      'WITH x AS (SELECT 1) SELECT * FROM x',
      'CREATE TABLE main.t (a)',
      'CREATE UNIQUE INDEX IF NOT EXISTS i ON t (a)',
      'PRAGMA user_version = 3',
      'PRAGMA main.table_info(t)',
      "PRAGMA 'table_info'('t')",
      "INSERT INTO t VALUES ('_hq_meta'), ('pragma_data_version')",
      "SELECT datetime('now', '+1 day')",
      "INSERT INTO t VALUES ('localtime')",
    ]) {
      assert.equal(guard(sql), null, sql);
    }
  });

  test('write mode rejects what breaks transactions or replication', () => {
    const cases: [string, string][] = [
      ['begin', 'HQL_STATEMENT_NOT_ALLOWED'],
      ['END TRANSACTION', 'HQL_STATEMENT_NOT_ALLOWED'],
      ['RELEASE sp', 'HQL_STATEMENT_NOT_ALLOWED'],
      ['DETACH x', 'HQL_STATEMENT_NOT_ALLOWED'],
      ["VACUUM INTO '/tmp/x'", 'HQL_STATEMENT_NOT_ALLOWED'],
      ['PRAGMA synchronous = OFF', 'HQL_STATEMENT_NOT_ALLOWED'],
      ['PRAGMA temp.user_version', 'HQL_STATEMENT_NOT_ALLOWED'],
      ['PRAGMA page_count', 'HQL_STATEMENT_NOT_ALLOWED'],
      ['CREATE TEMPORARY VIEW v AS SELECT 1', 'HQL_STATEMENT_NOT_ALLOWED'],
      ['CREATE TEMP TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END', 'HQL_STATEMENT_NOT_ALLOWED'],
      ['CREATE INDEX IF NOT EXISTS other.i ON t (a)', 'HQL_STATEMENT_NOT_ALLOWED'],
      ['SELECT * FROM [_HQ_META]', 'HQL_STATEMENT_NOT_ALLOWED'],
      ['EXPLAIN QUERY PLAN SELECT 1', 'HQL_STATEMENT_NOT_ALLOWED'],
      ['EXPLAIN PRAGMA recursive_triggers = OFF', 'HQL_STATEMENT_NOT_ALLOWED'],
      ['PRAGMA "foreign_keys" = 0', 'HQL_STATEMENT_NOT_ALLOWED'],
      ["PRAGMA 'main'.writable_schema(1)", 'HQL_STATEMENT_NOT_ALLOWED'],
      ['PRAGMA user_version = 1 2', 'HQL_STATEMENT_NOT_ALLOWED'],
      ['SELECT * FROM "pragma_data_version"', 'HQL_STATEMENT_NOT_ALLOWED'],
      ["CREATE TABLE 'temp'.x (a)", 'HQL_STATEMENT_NOT_ALLOWED'],
      ["CREATE TABLE '_migrations' (a)", 'HQL_STATEMENT_NOT_ALLOWED'],
      ["SELECT strftime('%s', 'now', 'LocalTime')", 'HQL_NONDETERMINISTIC'],
      ["SELECT date('now', 'utc')", 'HQL_NONDETERMINISTIC'],
      ['SELECT sqlite_offset(a) FROM t', 'HQL_NONDETERMINISTIC'],
    ];
    for (const [sql, code] of cases) assert.equal(guard(sql), code, sql);
  });

  test('read mode allows introspection but no assignments or transactions', () => {
    assert.equal(guard('PRAGMA page_count', 'read'), null);
    assert.equal(guard('SELECT * FROM _hq_meta', 'read'), null);
    assert.equal(guard('PRAGMA query_only = 0', 'read'), 'HQL_STATEMENT_NOT_ALLOWED');
    assert.equal(guard('PRAGMA foreign_keys = OFF', 'read'), 'HQL_STATEMENT_NOT_ALLOWED');
    assert.equal(guard('BEGIN', 'read'), 'HQL_STATEMENT_NOT_ALLOWED');
    assert.equal(guard("ATTACH 'x' AS y", 'read'), 'HQL_STATEMENT_NOT_ALLOWED');
    assert.equal(guard('PRAGMA foreign_keys(0)', 'read'), 'HQL_STATEMENT_NOT_ALLOWED');
    assert.equal(guard('EXPLAIN PRAGMA query_only = 0', 'read'), 'HQL_STATEMENT_NOT_ALLOWED');
    assert.equal(guard('EXPLAIN QUERY PLAN SELECT * FROM t', 'read'), null);
    assert.equal(guard('PRAGMA table_info(t)', 'read'), null);
  });
});
