/**
 * The rows a write returns (RETURNING, or a SELECT sent as a write) are kept within the
 * command's `sql_value_bytes_max` stamp on every replica: every replica keeps a command's result
 * for retries, so one short statement (`INSERT … SELECT zeroblob(1e6) FROM <1,000 rows>
 * RETURNING x`) held gigabytes on every node at once (found from outside, through the
 * dashboard's console). Past the bound the command fails with HQL_RESULT_TOO_LARGE and nothing
 * of it is applied, alike on every replica; rows nobody asked for are not kept at all.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { VALUE_BYTES_MAX_MIN } from '../../src/sm/sql/command.js';
import { ROW_OVERHEAD_BYTES } from '../../src/sm/sql/executor.js';
import type { CommandResult } from '../../src/sm/sql/result.js';
import { cmd, dumpDatabase, exec, replicaPair } from './sql-test-helpers.js';

const LIMIT = VALUE_BYTES_MAX_MIN; // 2 MiB
/** 100 rows of 64 KiB: 6.4 MiB of rows, each value far below the bound. */
const MANY = (tail: string) =>
  `INSERT INTO t (b) SELECT zeroblob(65536) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100) SELECT x FROM c)${tail}`;

function tooLarge(r: CommandResult | undefined): boolean {
  return r !== undefined && !r.ok && r.error.code === 'HQL_RESULT_TOO_LARGE';
}

describe('the rows a write returns', () => {
  const { a, b, apply } = replicaPair();
  function count(): number {
    const r = apply(cmd(exec('SELECT count(*) AS n FROM t', [], true), { valueBytesMax: LIMIT }));
    assert.ok(r.ok && r.type === 'execute', JSON.stringify(r));
    return Number((r.value.rows as Array<{ n: number }>)[0]!.n);
  }
  apply(cmd(exec('CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)')));

  test('past the stamp: HQL_RESULT_TOO_LARGE on every replica, and nothing was written', () => {
    const r = apply(cmd(exec(MANY(' RETURNING b'), [], true), { valueBytesMax: LIMIT }));
    assert.ok(tooLarge(r), JSON.stringify(r).slice(0, 300));
    assert.match(!r.ok ? r.error.message : '', /sql_value_bytes_max.*nothing of the command was applied/);
    assert.equal(count(), 0);
    assert.deepEqual(dumpDatabase(a.path), dumpDatabase(b.path));
  });

  test('rows nobody asked for (returning: false) are not kept: the write applies', () => {
    const r = apply(cmd(exec(MANY(' RETURNING b'), [], false), { valueBytesMax: LIMIT }));
    assert.ok(r.ok && r.type === 'execute', JSON.stringify(r).slice(0, 300));
    assert.equal(r.value.rowsAffected, 100);
    assert.equal(r.value.rows, undefined);
    assert.equal(count(), 100);
  });

  test('small rows count their overhead: many tiny rows pass the bound too', () => {
    const rowsMax = Math.floor(LIMIT / (ROW_OVERHEAD_BYTES + 8));
    const sql = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT ${rowsMax + 10}) SELECT x FROM c`;
    assert.ok(tooLarge(apply(cmd(exec(sql, [], true), { valueBytesMax: LIMIT }))));
    const fits = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT ${rowsMax - 10}) SELECT x FROM c`;
    const r = apply(cmd(exec(fits, [], true), { valueBytesMax: LIMIT }));
    assert.ok(r.ok && r.type === 'execute', JSON.stringify(r).slice(0, 300));
    assert.equal(r.value.rows?.length, rowsMax - 10);
  });

  test('within a txn the bound is the whole command’s: it fails as a whole', () => {
    const before = count();
    const half = `INSERT INTO t (b) SELECT zeroblob(65536) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 20) SELECT x FROM c) RETURNING b`;
    const r = apply(
      cmd(
        {
          type: 'txn',
          statements: [
            { sql: half, params: [] },
            { sql: half, params: [] },
          ],
        },
        { valueBytesMax: LIMIT },
      ),
    );
    assert.ok(tooLarge(r), JSON.stringify(r).slice(0, 300));
    assert.equal(!r.ok ? r.error.statementIndex : -1, 1, 'the second statement passed the bound');
    assert.equal(count(), before);
  });

  test('a batch past the bound fails as a whole, its earlier statements undone', () => {
    const before = count();
    const r = apply(
      cmd(
        { type: 'batch', sql: `INSERT INTO t (b) VALUES (x'01'); ${MANY(' RETURNING b')};` },
        { valueBytesMax: LIMIT },
      ),
    );
    assert.ok(tooLarge(r), JSON.stringify(r).slice(0, 300));
    assert.equal(count(), before);
    assert.deepEqual(dumpDatabase(a.path), dumpDatabase(b.path));
  });

  test('within the bound a RETURNING write answers its rows as before', () => {
    const r = apply(
      cmd(exec("INSERT INTO t (b) VALUES (x'0102') RETURNING id, b", [], true), { valueBytesMax: LIMIT }),
    );
    assert.ok(r.ok && r.type === 'execute', JSON.stringify(r));
    assert.equal(r.value.rows?.length, 1);
    assert.deepEqual((r.value.rows as Array<{ b: Uint8Array }>)[0]!.b, new Uint8Array([1, 2]));
  });
});
