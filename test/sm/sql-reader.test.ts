import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { SqlError } from '../../src/sm/sql/errors.js';
import { type QueryParams, SqlReader } from '../../src/sm/sql/reader.js';
import { SqlStateMachine } from '../../src/sm/sql/state-machine.js';
import { cmd, exec, Log, makeTempDir } from './sql-test-helpers.js';

function isCode(code: string) {
  return (e: unknown) => e instanceof SqlError && e.sqlCode === code;
}

describe('SqlReader', () => {
  const { dir, cleanup } = makeTempDir();
  const sm = SqlStateMachine.open(dir);
  const log = new Log();
  sm.applyBatch(
    log.entries(
      cmd(exec('CREATE TABLE t (id INTEGER PRIMARY KEY, big INTEGER, b BLOB, r REAL, s TEXT)')),
      cmd(exec('INSERT INTO t VALUES (1, ?, ?, 0.25, NULL)', [2n ** 62n, new Uint8Array([7, 8])])),
    ),
  );
  const reader = SqlReader.open(sm.path, { applied: sm.applied });
  after(() => {
    reader.close();
    sm.close();
    cleanup();
  });

  test('returns rows with the value mapping', () => {
    assert.deepEqual(reader.query('SELECT * FROM t'), [
      { id: 1, big: 2n ** 62n, b: new Uint8Array([7, 8]), r: 0.25, s: null },
    ]);
  });

  test('binds positional and named parameters like writes do', () => {
    assert.deepEqual(reader.query('SELECT $2 AS a, ?1 AS b', [1, 2]), [{ a: 2, b: 1 }]);
    assert.deepEqual(reader.query('SELECT id FROM t WHERE id = :id AND r = @r', { id: 1, r: 0.25 }), [
      { id: 1 },
    ]);
    assert.deepEqual(reader.query('SELECT ? AS flag', [true]), [{ flag: 1 }]);
    assert.throws(() => reader.query('SELECT ?', []), isCode('HQL_INVALID_PARAMS'));
    // The same SQL with both parameter styles, each prepared from its own text.
    assert.deepEqual(reader.query('SELECT :a AS a, :b AS b', { b: 2, a: 1 }), [{ a: 1, b: 2 }]);
    assert.deepEqual(reader.query('SELECT :a AS a, :b AS b', [1, 2]), [{ a: 1, b: 2 }]);
    assert.deepEqual(reader.query('SELECT ? AS d', [new Date(0)]), [{ d: '1970-01-01T00:00:00.000Z' }]);
    assert.deepEqual(reader.query('SELECT typeof(?) AS t', [3]), [{ t: 'integer' }]);
    assert.deepEqual(reader.query('SELECT typeof(?) AS t', [3.5]), [{ t: 'real' }]);
    assert.throws(
      () => reader.query('SELECT ?, ?', [1, undefined] as unknown as QueryParams),
      (e: unknown) => isCode('HQL_INVALID_PARAMS')(e) && /params\[1\]/.test((e as Error).message),
    );
    assert.throws(
      () => reader.query('SELECT :x', { x: { nested: true } } as unknown as QueryParams),
      (e: unknown) => isCode('HQL_INVALID_PARAMS')(e) && /params\.x/.test((e as Error).message),
    );
  });

  test('rejects statements that write or change the connection', () => {
    assert.throws(() => reader.query('INSERT INTO t (id) VALUES (2)'), isCode('HQL_READONLY'));
    assert.throws(() => reader.query('CREATE TABLE x (a)'), isCode('HQL_READONLY'));
    assert.throws(() => reader.query('PRAGMA user_version = 3'), isCode('HQL_STATEMENT_NOT_ALLOWED'));
    assert.throws(() => reader.query('BEGIN'), isCode('HQL_STATEMENT_NOT_ALLOWED'));
    assert.throws(() => reader.query('SELECT * FROM nope'), isCode('HQL_SQL'));
    assert.equal(reader.query('SELECT count(*) AS n FROM t')[0]?.n, 1);
  });

  test('an open read transaction does not block the writer (WAL)', () => {
    const other = new Database(sm.path, { readonly: true });
    try {
      other.exec('BEGIN');
      assert.equal(other.prepare('SELECT count(*) FROM t').pluck().get(), 1);
      sm.applyBatch(log.entries(cmd(exec('INSERT INTO t (id) VALUES (2)'))));
      // The open transaction keeps its snapshot; a new read sees the write.
      assert.equal(other.prepare('SELECT count(*) FROM t').pluck().get(), 1);
      assert.equal(reader.query('SELECT count(*) AS n FROM t')[0]?.n, 2);
      other.exec('COMMIT');
    } finally {
      other.close();
    }
  });

  test('waitForApplied resolves once the index is applied, and the read sees it', async () => {
    const target = log.last + 1;
    const waiting = reader.waitForApplied(target, { timeoutMs: 10_000 });
    sm.applyBatch(log.entries(cmd(exec('INSERT INTO t (id) VALUES (?)', [100]))));
    await waiting;
    assert.equal(reader.visibleAppliedIndex(), target);
    assert.deepEqual(reader.query('SELECT id FROM t WHERE id = 100'), [{ id: 100 }]);
    await reader.waitForApplied(1);
  });

  test('waitForApplied fails with HQL_TIMEOUT or HQL_ABORTED', async () => {
    await assert.rejects(reader.waitForApplied(log.last + 10, { timeoutMs: 5 }), isCode('HQL_TIMEOUT'));
    const controller = new AbortController();
    const waiting = reader.waitForApplied(log.last + 10, { signal: controller.signal });
    controller.abort();
    await assert.rejects(waiting, isCode('HQL_ABORTED'));
  });
});

test('a cached query sees the new columns after the schema changes', async () => {
  const { SqlStateMachine } = await import('../../src/sm/sql/state-machine.js');
  const { prepareForProposal } = await import('../../src/sm/sql/determinism.js');
  const { SqlReader } = await import('../../src/sm/sql/reader.js');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'hql-reader-schema-'));
  const sm = SqlStateMachine.open(dir);
  const reader = SqlReader.open(join(dir, 'hiqlite.db'), { applied: sm.applied });
  let index = 0;
  const exec = (sql: string) =>
    sm.applyBatch([
      {
        index: ++index as never,
        term: 1 as never,
        data: prepareForProposal(
          { type: 'execute', sql, params: [], returning: false },
          { nowMs: 0, seed: 1 },
        ),
      },
    ]);
  try {
    exec('CREATE TABLE s (a INTEGER, b INTEGER)');
    exec('INSERT INTO s VALUES (1, 2)');
    assert.deepEqual(reader.query('SELECT * FROM s'), [{ a: 1, b: 2 }]);
    exec('ALTER TABLE s RENAME COLUMN b TO c');
    assert.deepEqual(reader.query('SELECT * FROM s'), [{ a: 1, c: 2 }]);
    exec('ALTER TABLE s ADD COLUMN d TEXT');
    assert.deepEqual(reader.query('SELECT * FROM s'), [{ a: 1, c: 2, d: null }]);
  } finally {
    reader.close();
    sm.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
