/**
 * Every client reads the same rows: an embedded node on its own thread, on the app's thread, and
 * a remote client. Found from outside: a column named `__proto__` read remotely came back as
 * `__proto_` (overwriting a real `__proto_` column: msgpackr renames the key when it decodes a
 * map), an INTEGER of exactly ±2^53 was a number remotely (a bigint embedded), a bigint
 * parameter 2^53 of a remote read bound as a REAL, and txn() / batch() dropped the rows of their
 * statements that return rows.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HiqliteClient } from '../../src/index.js';
import { oneNodeConfig, startOneNodeAs } from '../support/one-node-config.js';

for (const who of ['embedded worker', 'embedded main', 'remote'] as const) {
  describe(`rows read through ${who}`, () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-rows-'));
    let db: HiqliteClient;
    let close: () => Promise<void>;
    before(async () => {
      ({ db, close } = await startOneNodeAs(who, await oneNodeConfig(root)));
      await db.execute('CREATE TABLE t (a)');
    });
    after(async () => {
      await close?.();
      rmSync(root, { recursive: true, force: true });
    });

    test('a column named __proto__ is a column, beside one named __proto_', async () => {
      const [row] = await db.query('SELECT 1 AS __proto__, 2 AS __proto_, 3 AS constructor');
      assert.deepEqual(Object.keys(row!), ['__proto__', '__proto_', 'constructor']);
      assert.equal(Object.getOwnPropertyDescriptor(row, '__proto__')?.value, 1);
      assert.equal(row!.__proto_, 2);
      assert.equal(Object.getPrototypeOf(row), Object.prototype);
      const [ret] = await db.executeReturning(
        'INSERT INTO t VALUES (4) RETURNING a AS __proto__, 5 AS __proto_',
      );
      assert.equal(Object.getOwnPropertyDescriptor(ret, '__proto__')?.value, 4);
      assert.equal(ret!.__proto_, 5);
    });

    test('parameters in a Proxy or an array subclass are the values they show, on every path', async () => {
      class Params extends Array<unknown> {}
      const shown = () => [new Proxy([1, 'a'], {}), Params.from([1, 'a']), new Proxy({ n: 1, s: 'a' }, {})];
      for (const params of shown()) {
        const sql = Array.isArray(params) ? 'SELECT ? AS n, ? AS s' : 'SELECT :n AS n, :s AS s';
        assert.deepEqual(await db.query(sql, params as never), [{ n: 1, s: 'a' }]);
        assert.deepEqual(await db.query(sql, params as never, { timeoutMs: 5_000 }), [{ n: 1, s: 'a' }]);
        assert.deepEqual(await db.query(sql, params as never, { consistency: 'linearizable' }), [
          { n: 1, s: 'a' },
        ]);
        assert.deepEqual(await db.executeReturning(sql, params as never), [{ n: 1, s: 'a' }]);
        const [txn] = await db.txn([
          [`INSERT INTO t VALUES (${Array.isArray(params) ? '?1 || ?2' : ':n || :s'})`, params as never],
        ]);
        assert.equal(txn?.rowsAffected, 1);
      }
    });

    test('-0 binds as the integer 0, in a read as in a write', async () => {
      assert.deepEqual(await db.query('SELECT ? AS a, typeof(?1) AS t', [-0]), [{ a: 0, t: 'integer' }]);
      await db.execute('CREATE TABLE z (v)');
      await db.execute('INSERT INTO z VALUES (?)', [-0]);
      assert.deepEqual(await db.query('SELECT v, typeof(v) AS t FROM z'), [{ v: 0, t: 'integer' }]);
    });

    test('a named parameter __proto__: bound by a read, refused by a write with a clear error', async () => {
      const params = JSON.parse('{"__proto__": 7, "x": 8}');
      assert.deepEqual(await db.query('SELECT :__proto__ AS p, :x AS x', params), [{ p: 7, x: 8 }]);
      await assert.rejects(db.execute('INSERT INTO t VALUES (:__proto__)', params), {
        code: 'HQL_INVALID_PARAMS',
        message: /params\.__proto__: a write's parameter may not be named __proto__/,
      });
      await assert.rejects(
        db.txn([
          ['SELECT 1', []],
          ['INSERT INTO t VALUES (:__proto__)', params],
        ]),
        {
          code: 'HQL_INVALID_PARAMS',
          message: /statements\[1\]\.params\.__proto__/,
        },
      );
    });

    test('integers: a number when safe, a bigint from ±2^53 on, read and bound alike', async () => {
      const [row] = await db.query(
        'SELECT 9007199254740991 AS safe, 9007199254740992 AS p53, -9007199254740992 AS n53, 9007199254740992.0 AS real',
      );
      assert.deepEqual(row, { safe: 2 ** 53 - 1, p53: 2n ** 53n, n53: -(2n ** 53n), real: 2 ** 53 });
      const [bound] = await db.query('SELECT typeof(?) AS big, typeof(?) AS small, ? AS v', [
        2n ** 53n,
        5n,
        2n ** 53n,
      ]);
      assert.deepEqual(bound, { big: 'integer', small: 'integer', v: 2n ** 53n });
      const { logIndex } = await db.execute('INSERT INTO t VALUES (?), (?)', [-(2n ** 53n), 2n ** 63n - 1n]);
      assert.deepEqual(
        await db.query('SELECT a, typeof(a) AS t FROM t WHERE abs(a) > 1000 ORDER BY a', [], {
          minIndex: logIndex,
        }),
        [
          { a: -(2n ** 53n), t: 'integer' },
          { a: 2n ** 63n - 1n, t: 'integer' },
        ],
      );
    });

    test('txn() and batch() give the rows of their statements that return rows', async () => {
      const results = await db.txn([
        ['INSERT INTO t VALUES (?) RETURNING a', [10]],
        ['SELECT count(*) AS n FROM t WHERE a = 10'],
        ['UPDATE t SET a = 11 WHERE a = 10'],
      ]);
      assert.deepEqual(results[0]!.rows, [{ a: 10 }]);
      assert.deepEqual(results[1]!.rows, [{ n: 1 }]);
      assert.equal(results[2]!.rows, undefined);
      assert.equal(results[2]!.rowsAffected, 1);
      const batch = await db.batch('SELECT 1 AS one; DELETE FROM t WHERE a = 11; SELECT nope;');
      assert.deepEqual((batch[0] as { rows?: unknown }).rows, [{ one: 1 }]);
      assert.equal((batch[1] as { rowsAffected: number }).rowsAffected, 1);
      assert.equal((batch[2] as { code?: string }).code, 'HQL_SQL');
    });
  });
}
