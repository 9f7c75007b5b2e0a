import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { AssertionError } from '../../src/lib/assert.js';
import { logIndex, term } from '../../src/raft/types.js';
import type { CommandResult, StatementOutcome } from '../../src/sm/sql/result.js';
import { SqlStateMachine } from '../../src/sm/sql/state-machine.js';
import { cmd, dumpDatabase, exec, Log, makeTempDir, smFixture } from './sql-test-helpers.js';

function ok(r: CommandResult | undefined): StatementOutcome {
  assert.ok(
    r?.ok,
    `expected success, got ${JSON.stringify(r, (_, v) => (typeof v === 'bigint' ? `${v}n` : v))}`,
  );
  assert.equal(r.type, 'execute');
  return r.value;
}

function errorOf(r: CommandResult | undefined) {
  assert.ok(r !== undefined && !r.ok, 'expected a failure');
  return r.error;
}

describe('execute', () => {
  const { apply } = smFixture();
  apply(cmd(exec('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER)')));

  test('returns rows affected and the last inserted rowid', () => {
    const [a, b] = apply(
      cmd(exec("INSERT INTO t (name) VALUES ('a')")),
      cmd(exec("INSERT INTO t (name) VALUES ('b')")),
    );
    assert.deepEqual(ok(a), { rowsAffected: 1, lastInsertRowid: 1 });
    assert.deepEqual(ok(b), { rowsAffected: 1, lastInsertRowid: 2 });
    // last_insert_rowid() starts at 0 in every command, so an UPDATE reports 0 on every replica.
    assert.deepEqual(ok(apply(cmd(exec('UPDATE t SET n = 1')))[0]), { rowsAffected: 2, lastInsertRowid: 0 });
  });

  test('returning: true gives the RETURNING rows', () => {
    const r = ok(
      apply(cmd(exec("INSERT INTO t (name) VALUES ('c'), ('d') RETURNING id, name", [], true)))[0],
    );
    assert.equal(r.rowsAffected, 2);
    assert.deepEqual(r.rows, [
      { id: 3, name: 'c' },
      { id: 4, name: 'd' },
    ]);
    const none = ok(apply(cmd(exec("UPDATE t SET n = 2 WHERE name = 'zzz'", [], true)))[0]);
    assert.deepEqual(none.rows, []);
  });

  test('a SELECT with returning: true gives its rows and affects none', () => {
    const r = ok(apply(cmd(exec('SELECT name FROM t WHERE id <= 2 ORDER BY id', [], true)))[0]);
    assert.deepEqual(r, { rowsAffected: 0, lastInsertRowid: 0, rows: [{ name: 'a' }, { name: 'b' }] });
  });

  test('a constraint violation is HQL_CONSTRAINT with SQLite code and message', () => {
    const e = errorOf(apply(cmd(exec("INSERT INTO t (name) VALUES ('a')")))[0]);
    assert.equal(e.code, 'HQL_CONSTRAINT');
    assert.equal(e.sqliteCode, 'SQLITE_CONSTRAINT_UNIQUE');
    assert.match(e.message, /UNIQUE constraint failed: t\.name/);
  });

  test('other SQL errors are HQL_SQL with SQLite message', () => {
    const e = errorOf(apply(cmd(exec('INSERT INTO nope VALUES (1)')))[0]);
    assert.equal(e.code, 'HQL_SQL');
    assert.match(e.message, /no such table: nope/);
    assert.equal(errorOf(apply(cmd(exec('SELEC 1')))[0]).code, 'HQL_SQL');
  });

  test('several statements in one execute are HQL_SQL (use batch or txn)', () => {
    assert.equal(errorOf(apply(cmd(exec('SELECT 1; SELECT 2')))[0]).code, 'HQL_SQL');
  });

  test('statements that would break the transaction structure or replication are rejected', () => {
    for (const sql of [
      'BEGIN',
      'COMMIT',
      'SAVEPOINT x',
      "ATTACH 'other.db' AS o",
      'VACUUM',
      'PRAGMA foreign_keys = OFF',
      'PRAGMA defer_foreign_keys = ON',
      'CREATE TEMP TABLE x (a)',
      'CREATE TABLE temp.x (a)',
      'DELETE FROM _hq_meta',
      'UPDATE "_hq_sessions" SET seq = 0',
    ]) {
      assert.equal(errorOf(apply(cmd(exec(sql)))[0]).code, 'HQL_STATEMENT_NOT_ALLOWED', sql);
    }
    ok(apply(cmd(exec('PRAGMA user_version = 7')))[0]);
  });
});

describe('parameters', () => {
  const { apply } = smFixture();
  const row = (sql: string, params: Parameters<typeof exec>[1]) =>
    ok(apply(cmd(exec(sql, params, true)))[0]).rows?.[0];

  test('positional arrays bind ?, ?NNN and $N by number', () => {
    assert.deepEqual(row('SELECT ? AS a, ? AS b', ['x', 'y']), { a: 'x', b: 'y' });
    assert.deepEqual(row('SELECT ?2 AS a, ?1 AS b, ?2 AS c', ['x', 'y']), { a: 'y', b: 'x', c: 'y' });
    assert.deepEqual(row('SELECT $2 AS a, $1 AS b', ['x', 'y']), { a: 'y', b: 'x' });
    // `?` continues after the largest number so far, as in SQLite.
    assert.deepEqual(row('SELECT ?3 AS a, ? AS b, ?1 AS c', ['x', 'y', 'z', 'w']), {
      a: 'z',
      b: 'w',
      c: 'x',
    });
  });

  test('a ? inside a string literal or comment is not a parameter', () => {
    assert.deepEqual(row("SELECT '?' AS a, ? AS b -- ?\n", ['x']), { a: '?', b: 'x' });
  });

  test('objects bind :name, @name and $name, keys with or without prefix', () => {
    assert.deepEqual(row('SELECT :v AS a, @v AS b, $v AS c', { v: 1 }), { a: 1, b: 1, c: 1 });
    assert.deepEqual(row('SELECT :v AS a, @w AS b', { ':v': 1, '@w': 2 }), { a: 1, b: 2 });
  });

  test('a wrong number of parameters is HQL_INVALID_PARAMS', () => {
    assert.equal(errorOf(apply(cmd(exec('SELECT ?, ?', [1])))[0]).code, 'HQL_INVALID_PARAMS');
    assert.equal(errorOf(apply(cmd(exec('SELECT ?', [1, 2])))[0]).code, 'HQL_INVALID_PARAMS');
    assert.equal(errorOf(apply(cmd(exec('SELECT :a', { b: 1 })))[0]).code, 'HQL_INVALID_PARAMS');
  });

  test('values map between JavaScript and SQLite types', () => {
    const big = 2n ** 60n + 1n;
    const r = row(
      'SELECT ? AS i, typeof(?) AS ti, ? AS r, typeof(?) AS tr, ? AS big, ? AS t, ? AS b, ? AS n, ? AS yes, ? AS d',
      [42, 42, 1.5, 1.5, big, 'text', new Uint8Array([1, 2, 3]), null, true, new Date(Date.UTC(2024, 0, 2))],
    );
    assert.deepEqual(r, {
      i: 42,
      ti: 'integer',
      r: 1.5,
      tr: 'real',
      big,
      t: 'text',
      b: new Uint8Array([1, 2, 3]),
      n: null,
      yes: 1,
      d: '2024-01-02T00:00:00.000Z',
    });
    assert.equal(Object.getPrototypeOf(r?.b), Uint8Array.prototype);
  });

  test('integers at the edge of the safe range switch to bigint', () => {
    const r = row(
      'SELECT 9007199254740991 AS safe, 9007199254740992 AS unsafe, -9223372036854775808 AS min',
      [],
    );
    assert.deepEqual(r, { safe: 9007199254740991, unsafe: 9007199254740992n, min: -9223372036854775808n });
  });
});

describe('savepoint per command', () => {
  const { apply, sm, dir } = smFixture();
  apply(cmd(exec('CREATE TABLE t (id INTEGER PRIMARY KEY)')));

  test('a failing command in a batch does not roll back the others', () => {
    const results = apply(
      cmd(exec('INSERT INTO t VALUES (1)')),
      cmd(exec('INSERT INTO t VALUES (1)')),
      cmd(exec('INSERT INTO t VALUES (2)')),
    );
    assert.equal(results.length, 3);
    ok(results[0]);
    assert.equal(errorOf(results[1]).code, 'HQL_CONSTRAINT');
    ok(results[2]);
    assert.deepEqual(dumpDatabase(sm.path).t, [[1n], [2n]]);
    assert.equal(sm.appliedIndex(), 4);
    assert.ok(dir.length > 0);
  });

  test('a statement that rolls back the whole transaction fails only its own command', () => {
    const results = apply(
      cmd(exec('INSERT INTO t VALUES (3)')),
      cmd(exec('INSERT OR ROLLBACK INTO t VALUES (3)')),
      cmd(exec('INSERT INTO t VALUES (4)')),
    );
    ok(results[0]);
    assert.equal(errorOf(results[1]).code, 'HQL_CONSTRAINT');
    ok(results[2]);
    assert.deepEqual(dumpDatabase(sm.path).t, [[1n], [2n], [3n], [4n]]);
  });
});

describe('deferred foreign keys', () => {
  test('are checked per command, whatever the batch boundaries', () => {
    const schema = [
      cmd(exec('CREATE TABLE parent (id INTEGER PRIMARY KEY)')),
      cmd(
        exec(
          'CREATE TABLE child (id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)',
        ),
      ),
    ];
    // The child arrives before its parent: applied alone, its COMMIT fails.
    const work = [cmd(exec('INSERT INTO child VALUES (1, 10)')), cmd(exec('INSERT INTO parent VALUES (10)'))];
    const together = smFixture();
    const oneByOne = smFixture();
    const a = together.apply(...schema, ...work);
    const b = [...schema, ...work].flatMap((d) => oneByOne.apply(d));
    assert.deepEqual(a, b);
    assert.equal(errorOf(a[2]).code, 'HQL_CONSTRAINT');
    assert.deepEqual(dumpDatabase(together.sm.path), dumpDatabase(oneByOne.sm.path));
    assert.deepEqual(dumpDatabase(together.sm.path).child, []);
  });
});

describe('txn', () => {
  const { apply, sm } = smFixture();
  apply(
    cmd(exec('CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT UNIQUE)')),
    cmd(
      exec(
        'CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent (id), v TEXT)',
      ),
    ),
  );

  test('applies all statements or none', () => {
    const r = apply(
      cmd({
        type: 'txn',
        statements: [
          { sql: "INSERT INTO parent (name) VALUES ('p1')", params: [] },
          { sql: 'INSERT INTO child (parent_id) VALUES (999)', params: [] },
        ],
      }),
    )[0];
    const e = errorOf(r);
    assert.equal(e.code, 'HQL_CONSTRAINT');
    assert.equal(e.statementIndex, 1);
    assert.deepEqual(dumpDatabase(sm.path).parent, []);
  });

  test('later statements bind values of earlier RETURNING rows with $ref', () => {
    const r = apply(
      cmd({
        type: 'txn',
        statements: [
          { sql: 'INSERT INTO parent (name) VALUES (?) RETURNING id, name', params: ['p1'] },
          {
            sql: 'INSERT INTO child (parent_id, v) VALUES (?, ?)',
            params: [{ $ref: [0, 0, 'id'] }, { $ref: [0, 0, 1] }],
          },
          {
            sql: 'INSERT INTO child (parent_id, v) VALUES (:p, :v) RETURNING id',
            params: { p: { $ref: [0, 0, 0] }, v: 'x' },
          },
        ],
      }),
    )[0];
    assert.ok(r?.ok && r.type === 'txn');
    assert.deepEqual(r.value, [
      { rowsAffected: 1, lastInsertRowid: 1, rows: [{ id: 1, name: 'p1' }] },
      { rowsAffected: 1, lastInsertRowid: 1 },
      { rowsAffected: 1, lastInsertRowid: 2, rows: [{ id: 2 }] },
    ]);
    assert.deepEqual(dumpDatabase(sm.path).child, [
      [1n, 1n, 'p1'],
      [2n, 1n, 'x'],
    ]);
  });

  test('a $ref to a missing row or column fails the txn with HQL_INVALID_PARAMS', () => {
    for (const ref of [
      [0, 1, 'id'],
      [0, 0, 'nope'],
      [0, 0, 5],
    ] as const) {
      const r = apply(
        cmd({
          type: 'txn',
          statements: [
            { sql: "INSERT INTO parent (name) VALUES ('p2') RETURNING id", params: [] },
            { sql: 'INSERT INTO child (parent_id) VALUES (?)', params: [{ $ref: ref }] },
          ],
        }),
      )[0];
      const e = errorOf(r);
      assert.equal(e.code, 'HQL_INVALID_PARAMS');
      assert.equal(e.statementIndex, 1);
    }
    assert.equal(dumpDatabase(sm.path).parent?.length, 1);
  });
});

describe('batch', () => {
  const { apply, sm } = smFixture();

  test('runs every statement and reports each result', () => {
    const r = apply(
      cmd({
        type: 'batch',
        sql: `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); -- a comment; with a semicolon
              INSERT INTO t VALUES (1, 'a;b');
              INSERT INTO t VALUES (1, 'dup');
              CREATE TRIGGER tr AFTER INSERT ON t BEGIN
                UPDATE t SET v = CASE WHEN new.v = 'x' THEN 'X' ELSE new.v END WHERE id = new.id;
              END;
              INSERT INTO t VALUES (2, 'x');
              SELECT v FROM t ORDER BY id;`,
      }),
    )[0];
    assert.ok(r?.ok && r.type === 'batch');
    assert.equal(r.value.length, 6);
    assert.deepEqual(
      r.value.map((s) => (s.ok ? 'ok' : s.error.code)),
      ['ok', 'ok', 'HQL_CONSTRAINT', 'ok', 'ok', 'ok'],
    );
    const last = r.value[5];
    assert.ok(last?.ok);
    assert.deepEqual(last.value.rows, [{ v: 'a;b' }, { v: 'X' }]);
  });

  test('a forbidden statement fails the whole batch before anything runs', () => {
    const r = apply(
      cmd({ type: 'batch', sql: 'INSERT INTO t VALUES (3, 3); BEGIN; INSERT INTO t VALUES (4, 4);' }),
    )[0];
    const e = errorOf(r);
    assert.equal(e.code, 'HQL_STATEMENT_NOT_ALLOWED');
    assert.equal(e.statementIndex, 1);
    assert.equal(dumpDatabase(sm.path).t?.length, 2);
  });
});

describe('applied index', () => {
  test('noop and config entries advance it, config stores the membership', () => {
    const { sm, log } = smFixture();
    const membership = new Uint8Array([9, 8, 7]);
    const r = sm.applyBatch([log.entry(null), log.entry(null, membership), log.entry(cmd(exec('SELECT 1')))]);
    assert.deepEqual(r[0], { ok: true, type: 'noop' });
    assert.equal(sm.appliedIndex(), 3);
    assert.deepEqual(sm.appliedState().membership, membership);
  });

  test('survives closing and reopening', () => {
    const { dir, cleanup } = makeTempDir();
    after(cleanup);
    const log = new Log(3);
    let sm = SqlStateMachine.open(dir, { fileName: 'custom.db' });
    sm.applyBatch([log.entry(cmd(exec('CREATE TABLE t (a)'))), log.entry(null, new Uint8Array([1]))]);
    sm.applyBatch(log.entries(cmd(exec('INSERT INTO t VALUES (1)'))));
    const { clockMs } = sm.appliedState();
    sm.close();
    sm = SqlStateMachine.open(dir, { fileName: 'custom.db' });
    try {
      assert.deepEqual(sm.appliedState(), { index: 3, term: 3, membership: new Uint8Array([1]), clockMs });
      // The next entry must continue right after it.
      sm.applyBatch(log.entries(cmd(exec('INSERT INTO t VALUES (2)'))));
      assert.equal(sm.appliedIndex(), 4);
    } finally {
      sm.close();
    }
  });

  test('malformed command bytes are an error result, and the index still advances', () => {
    const { sm, log } = smFixture();
    const r = sm.applyBatch(log.entries(new Uint8Array([1, 0xc1]), new Uint8Array([0x7f, 0, 0])));
    assert.equal(errorOf(r[0]).code, 'HQL_MALFORMED_COMMAND');
    assert.equal(errorOf(r[1]).code, 'HQL_MALFORMED_COMMAND');
    assert.equal(sm.appliedIndex(), 2);
  });

  test('entries out of order are a programmer error', () => {
    const { sm } = smFixture();
    assert.throws(() => sm.applyBatch([{ index: logIndex(2), term: term(1), data: null }]), AssertionError);
    assert.equal(sm.appliedIndex(), 0);
  });
});

describe('reset', () => {
  test('forgets every table, session, migration and the applied position', () => {
    const a = smFixture();
    const fresh = smFixture();
    const entries = [
      cmd({
        type: 'migrate',
        migrations: [
          {
            id: 1,
            name: 'schema',
            sql: `CREATE TABLE parent (id INTEGER PRIMARY KEY AUTOINCREMENT);
                  CREATE TABLE child (id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent (id));
                  CREATE VIEW v AS SELECT * FROM child;
                  CREATE TRIGGER tr AFTER INSERT ON parent BEGIN INSERT INTO child VALUES (NULL, new.id); END;`,
            checksum: 'c',
          },
        ],
      }),
      cmd(exec('INSERT INTO parent DEFAULT VALUES'), { session: { clientId: 'c', seq: 1 } }),
      cmd(exec('ANALYZE')),
    ];
    const first = a.apply(...entries);
    assert.ok(first.every((r) => r.ok));
    assert.deepEqual(a.sm.reset(), { index: 0, term: 0, membership: null, clockMs: 0 });
    const empty = dumpDatabase(a.sm.path);
    assert.deepEqual(
      Object.keys(empty).filter((t) => !t.startsWith('_')),
      [],
    );
    const raw = new Database(a.sm.path, { readonly: true });
    assert.equal(raw.prepare('SELECT count(*) FROM sqlite_sequence').pluck().get(), 0);
    raw.close();
    assert.deepEqual(empty._hq_sessions, []);
    assert.deepEqual(empty._migrations, []);
    // Replaying the log from index 1 gives what a fresh replica gets.
    const replay = new Log();
    assert.deepEqual(a.sm.applyBatch(replay.entries(...entries)), first);
    fresh.apply(...entries);
    assert.deepEqual(dumpDatabase(a.sm.path), dumpDatabase(fresh.sm.path));
  });
});
