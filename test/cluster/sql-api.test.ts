/**
 * The SQL API of a 3-node cluster of processes, through remote clients bound to single nodes or
 * to all three (upstream test_cluster steps 2 to 6, 10 and 11): migrations, execute and query,
 * transactions, batches, value types, a remote client failing over, and a full restart.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type HiqliteClient, HiqliteError } from '../../src/index.js';
import { TestCluster } from './harness.js';

function hasCode(code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof HiqliteError, `expected a HiqliteError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

/** Writes `<dir>/<name>/<file>` for each file, returns the folder. */
function migrationFolder(root: string, name: string, files: Record<string, string>): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, sql] of Object.entries(files)) writeFileSync(join(dir, file), sql);
  return dir;
}

const INIT_SQL = `CREATE TABLE test (
  id INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  description TEXT
);
`;
const ANOTHER_SQL = 'CREATE TABLE test_2 (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n';
const TYPES_SQL = `CREATE TABLE types (
  id INTEGER PRIMARY KEY,
  i INTEGER, big INTEGER, r REAL, t TEXT, b BLOB, n TEXT, yes INTEGER, no INTEGER, d TEXT
);
`;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe('the SQL API on a 3-node cluster of processes', () => {
  let c: TestCluster;
  let db: Record<number, HiqliteClient>;
  let good: string;
  before(async () => {
    c = await TestCluster.create({ nodes: 3 });
    db = { 1: await c.client([1]), 2: await c.client([2]), 3: await c.client([3]) };
    good = migrationFolder(c.dir, 'good', {
      '1_init.sql': INIT_SQL,
      '2_another_migration.sql': ANOTHER_SQL,
      '3_types_conversion.sql': TYPES_SQL,
    });
  });
  after(async () => {
    await c?.close();
  });

  const one = (id: number): HiqliteClient => db[id] as HiqliteClient;

  test('a migration with a failing statement applies nothing', async () => {
    const bad = migrationFolder(c.dir, 'bad', {
      '1_filename_ok.sql':
        'CREATE TABLE bad_1 (id INTEGER PRIMARY KEY);\nCREATE TABLE bad_2 (id INTEGER,);\n',
    });
    await assert.rejects(one(1).migrate(bad), hasCode('HQL_SQL'));
    await assert.rejects(one(1).queryConsistent('SELECT * FROM bad_1'), (e: unknown) => {
      return e instanceof HiqliteError && e.code === 'HQL_SQL' && /no such table: bad_1/.test(e.message);
    });
    const recorded = await one(1).queryConsistent<{ n: number }>('SELECT count(*) AS n FROM _migrations');
    assert.deepEqual(recorded, [{ n: 0 }]);
  });

  test('applied migrations are recorded in _migrations with id, name and checksum on every node', async () => {
    await one(1).migrate(good);
    const expected = [
      { id: 1, name: 'init', checksum: sha256(INIT_SQL) },
      { id: 2, name: 'another_migration', checksum: sha256(ANOTHER_SQL) },
      { id: 3, name: 'types_conversion', checksum: sha256(TYPES_SQL) },
    ];
    for (const id of [1, 2, 3]) {
      const rows = await one(id).queryConsistent('SELECT id, name, checksum FROM _migrations ORDER BY id');
      assert.deepEqual(rows, expected, `node ${id}`);
      assert.deepEqual(await one(id).queryConsistent('SELECT * FROM test'), [], `node ${id}`);
      assert.deepEqual(await one(id).queryConsistent('SELECT * FROM test_2'), [], `node ${id}`);
    }
  });

  test('running the same migrations again from other nodes is a no-op', async () => {
    const before = await one(1).queryConsistent('SELECT * FROM _migrations ORDER BY id');
    await one(2).migrate(good);
    await one(3).migrate(good);
    for (const id of [1, 2, 3]) {
      assert.deepEqual(await one(id).queryConsistent('SELECT * FROM _migrations ORDER BY id'), before);
    }
  });

  test('an applied migration whose content changed is refused with HQL_MIGRATION_CHANGED', async () => {
    const changed = migrationFolder(c.dir, 'changed', {
      '1_init.sql': INIT_SQL,
      '2_another_migration.sql': 'CREATE TABLE test_2 (id INTEGER PRIMARY KEY);\n',
      '3_types_conversion.sql': TYPES_SQL,
      '4_new.sql': 'CREATE TABLE test_4 (id INTEGER PRIMARY KEY);\n',
    });
    await assert.rejects(one(2).migrate(changed), hasCode('HQL_MIGRATION_CHANGED'));
    const ids = await one(2).queryConsistent<{ id: number }>('SELECT id FROM _migrations ORDER BY id');
    assert.deepEqual(
      ids.map((r) => r.id),
      [1, 2, 3],
    );
    await assert.rejects(one(2).queryConsistent('SELECT * FROM test_4'), hasCode('HQL_SQL'));
  });

  test('a row written through any node is read back from the others', async () => {
    const ins = 'INSERT INTO test (id, ts, description) VALUES (?, ?, ?)';
    const r1 = await one(1).execute(ins, [1, 1000, 'from 1']);
    assert.equal(r1.rowsAffected, 1);
    assert.deepEqual(
      await one(2).queryOne('SELECT * FROM test WHERE id = 1', [], { minIndex: r1.logIndex }),
      {
        id: 1,
        ts: 1000,
        description: 'from 1',
      },
    );
    const r2 = await one(2).execute(ins, [2, 2000, 'from 2']);
    assert.deepEqual(
      await one(3).queryOne('SELECT id FROM test WHERE id = ?', [2], { minIndex: r2.logIndex }),
      {
        id: 2,
      },
    );
    const r3 = await one(3).execute(ins, [3, 3000, null]);
    assert.deepEqual(
      await one(1).queryOne('SELECT * FROM test WHERE id = $1', [3], { minIndex: r3.logIndex }),
      { id: 3, ts: 3000, description: null },
    );
  });

  test('a duplicate primary key is HQL_CONSTRAINT and changes nothing', async () => {
    await assert.rejects(
      one(3).execute('INSERT INTO test (id, ts, description) VALUES (?, ?, ?)', [3, 1, 'dup']),
      hasCode('HQL_CONSTRAINT'),
    );
    assert.deepEqual(await one(3).queryConsistent('SELECT description FROM test WHERE id = 3'), [
      { description: null },
    ]);
  });

  test('queryOne of no rows is HQL_NO_ROWS; queryOptional returns undefined', async () => {
    const del = await one(1).execute('DELETE FROM test WHERE id = ?', [1]);
    assert.equal(del.rowsAffected, 1);
    for (const id of [1, 2, 3]) {
      await assert.rejects(
        one(id).queryOne('SELECT * FROM test WHERE id = 1', [], { minIndex: del.logIndex }),
        hasCode('HQL_NO_ROWS'),
      );
      assert.equal(await one(id).queryOptional('SELECT * FROM test WHERE id = 1'), undefined);
      assert.deepEqual(await one(id).queryOptional('SELECT id FROM test WHERE id = 2'), { id: 2 });
    }
    assert.equal((await one(1).query('SELECT * FROM test')).length, 2);
  });

  test('a consistent read from every node sees the latest write', async () => {
    for (const writer of [1, 2, 3]) {
      await one(writer).execute('UPDATE test SET ts = ? WHERE id = 3', [writer]);
      for (const reader of [1, 2, 3]) {
        assert.deepEqual(await one(reader).queryConsistent('SELECT ts FROM test WHERE id = 3'), [
          { ts: writer },
        ]);
      }
    }
  });

  test('executeReturning returns the written rows', async () => {
    const rows = await one(2).executeReturning(
      'INSERT INTO test (id, ts, description) VALUES (?, ?, ?), (?, ?, ?) RETURNING *',
      [7, 70, 'seven', 8, 80, null],
    );
    assert.deepEqual(rows, [
      { id: 7, ts: 70, description: 'seven' },
      { id: 8, ts: 80, description: null },
    ]);
  });

  test('a transaction applies all its statements on every node', async () => {
    const results = await one(1).txn([
      ['INSERT INTO test (id, ts, description) VALUES (?, ?, ?)', [11, 5, 'eleven']],
      ['INSERT INTO test (id, ts, description) VALUES (?, ?, ?)', [12, 5, 'twelve']],
      ['INSERT INTO test (id, ts, description) VALUES (?, ?, ?)', [13, 5, null]],
    ]);
    assert.deepEqual(
      results.map((r) => r.rowsAffected),
      [1, 1, 1],
    );
    const index = (results[0] as { logIndex: number }).logIndex;
    const seen = await c.rowsOn('SELECT * FROM test WHERE id >= 11 ORDER BY id', { minIndex: index });
    for (const [id, rows] of seen) {
      assert.deepEqual(
        rows,
        [
          { id: 11, ts: 5, description: 'eleven' },
          { id: 12, ts: 5, description: 'twelve' },
          { id: 13, ts: 5, description: null },
        ],
        `node ${id}`,
      );
    }
  });

  test('a transaction with a failing statement applies none of them', async () => {
    await assert.rejects(
      one(2).txn([
        ['INSERT INTO test (id, ts, description) VALUES (?, ?, ?)', [14, 5, 'fourteen']],
        ['UPDATE test SET description = ? WHERE id = 11', ['changed']],
        ['INSERT INTO test (id, ts, description) VALUES (?, ?, ?)', [12, 5, 'dup']],
      ]),
      hasCode('HQL_CONSTRAINT'),
    );
    for (const id of [1, 2, 3]) {
      assert.deepEqual(
        await one(id).queryConsistent('SELECT id, description FROM test WHERE id >= 11 ORDER BY id'),
        [
          { id: 11, description: 'eleven' },
          { id: 12, description: 'twelve' },
          { id: 13, description: null },
        ],
        `node ${id}`,
      );
    }
  });

  test('a batch returns one result per statement and a failing one does not undo the others', async () => {
    const results = await one(1).batch(`
      INSERT INTO test (id, ts, description) VALUES (21, 1, 'twenty-one'), (22, 1, 'twenty-two'), (23, 1, NULL);
      -- a comment line between statements
      INSERT INTO test (id, ts, description) VALUES (21, 1, 'duplicate');
      UPDATE test SET ts = 2 WHERE id = 23;
    `);
    assert.equal(results.length, 3);
    const [first, second, third] = results;
    assert.ok(!(first instanceof HiqliteError));
    assert.equal(first?.rowsAffected, 3);
    assert.ok(second instanceof HiqliteError);
    assert.equal(second.code, 'HQL_CONSTRAINT');
    assert.ok(!(third instanceof HiqliteError));
    assert.equal(third?.rowsAffected, 1);
    const seen = await c.rowsOn(
      'SELECT id, ts, description FROM test WHERE id BETWEEN 21 AND 29 ORDER BY id',
      {
        minIndex: first.logIndex,
      },
    );
    for (const [id, rows] of seen) {
      assert.deepEqual(
        rows,
        [
          { id: 21, ts: 1, description: 'twenty-one' },
          { id: 22, ts: 1, description: 'twenty-two' },
          { id: 23, ts: 2, description: null },
        ],
        `node ${id}`,
      );
    }
  });

  test('values keep their types through a remote client, on every node', async () => {
    const blob = new Uint8Array([0, 1, 127, 128, 255]);
    const big = 2n ** 62n + 1n;
    const date = new Date('2024-05-06T07:08:09.123Z');
    const written = await one(3).executeReturning(
      'INSERT INTO types (id, i, big, r, t, b, n, yes, no, d) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *',
      [1, -42, big, 3.25, 'héllo ✓ "quoted"', blob, null, true, false, date],
    );
    const expected = {
      id: 1,
      i: -42,
      big,
      r: 3.25,
      t: 'héllo ✓ "quoted"',
      b: blob,
      n: null,
      yes: 1,
      no: 0,
      d: '2024-05-06T07:08:09.123Z',
    };
    assert.deepEqual(written, [expected]);
    const limits = await one(3).execute('INSERT INTO types (id, i, big, r) VALUES (?, ?, ?, ?)', [
      2,
      Number.MAX_SAFE_INTEGER,
      -(2n ** 63n),
      2,
    ]);
    const seen = await c.rowsOn('SELECT * FROM types ORDER BY id', { minIndex: limits.logIndex });
    for (const [id, rows] of seen) {
      assert.deepEqual(
        rows,
        [
          expected,
          {
            id: 2,
            i: Number.MAX_SAFE_INTEGER,
            big: -(2n ** 63n),
            r: 2,
            t: null,
            b: null,
            n: null,
            yes: null,
            no: null,
            d: null,
          },
        ],
        `node ${id}`,
      );
      assert.ok((rows[0] as { b: unknown }).b instanceof Uint8Array);
    }
    // Values round-trip as parameters too: a row is found by its own BLOB, bigint and Date.
    assert.deepEqual(
      await one(1).queryConsistent('SELECT id FROM types WHERE b = ? AND big = ? AND d = ? AND yes = ?', [
        blob,
        big,
        date,
        true,
      ]),
      [{ id: 1 }],
    );
  });

  test('a remote client given all three addresses writes and reads, and fails over when its node is killed', async () => {
    const remote = await c.client();
    const ins = await remote.execute('INSERT INTO test (id, ts, description) VALUES (?, ?, ?)', [
      1337,
      1,
      'remote',
    ]);
    assert.equal(ins.rowsAffected, 1);
    assert.deepEqual(
      await remote.queryOne('SELECT description FROM test WHERE id = 1337', [], { minIndex: ins.logIndex }),
      {
        description: 'remote',
      },
    );
    const del = await remote.execute('DELETE FROM test WHERE id = 1337');
    assert.equal(del.rowsAffected, 1);
    await assert.rejects(
      remote.queryOne('SELECT * FROM test WHERE id = 1337', [], { minIndex: del.logIndex }),
      hasCode('HQL_NO_ROWS'),
    );
    const txn = await remote.txn([
      ['INSERT INTO test (id, ts) VALUES (?, ?)', [1001, 1]],
      ['INSERT INTO test (id, ts) VALUES (?, ?)', [1002, 1]],
    ]);
    assert.equal(txn.length, 2);
    assert.deepEqual(await remote.queryConsistent('SELECT id FROM test WHERE id >= 1001 ORDER BY id'), [
      { id: 1001 },
      { id: 1002 },
    ]);
    const batch = await remote.batch('DELETE FROM test WHERE id = 1001; DELETE FROM test WHERE id = 1002;');
    assert.deepEqual(
      batch.map((r) => (r instanceof HiqliteError ? r.code : r.rowsAffected)),
      [1, 1],
    );
    assert.deepEqual(await remote.queryConsistent('SELECT id FROM test WHERE id >= 1001'), []);

    // The client uses the first address (node 1). Kill it: the client moves on to another node.
    await c.kill(1);
    const during = await remote.execute('INSERT INTO test (id, ts, description) VALUES (?, ?, ?)', [
      2001,
      1,
      'node 1 down',
    ]);
    assert.equal(during.rowsAffected, 1);
    assert.deepEqual(await remote.queryConsistent('SELECT description FROM test WHERE id = 2001'), [
      { description: 'node 1 down' },
    ]);
    await c.start(1);
    await c.waitForMembership({ voters: [1, 2, 3] });
    db[1] = await c.client([1]);
    assert.deepEqual(
      await one(1).query('SELECT description FROM test WHERE id = 2001', [], { minIndex: during.logIndex }),
      [{ description: 'node 1 down' }],
    );
  });

  test('after all three nodes shut down and restart on the same data, data and membership survive', async () => {
    const before = await one(2).queryConsistent('SELECT * FROM test ORDER BY id');
    const migrations = await one(2).queryConsistent('SELECT * FROM _migrations ORDER BY id');
    const codes = await Promise.all([1, 2, 3].map((id) => c.stop(id)));
    assert.deepEqual(codes, [0, 0, 0]);
    await Promise.all([1, 2, 3].map((id) => c.start(id)));
    await c.waitForMembership({ voters: [1, 2, 3] });
    const remote = await c.client();
    await remote.waitUntilHealthy({ timeoutMs: 20_000 });
    // A fresh write gives an index every replica must reach before comparing.
    const marker = await remote.execute('INSERT INTO test_2 (id, name) VALUES (?, ?)', [1, 'after restart']);
    const tables = await c.rowsOn('SELECT * FROM test ORDER BY id', { minIndex: marker.logIndex });
    const recorded = await c.rowsOn('SELECT * FROM _migrations ORDER BY id', { minIndex: marker.logIndex });
    for (const id of [1, 2, 3]) {
      assert.deepEqual(tables.get(id), before, `node ${id}`);
      assert.deepEqual(recorded.get(id), migrations, `node ${id}`);
    }
  });
});
