/**
 * `write_recursion_rows_max` bounds the rows a recursive CTE of a write may make, on every way a
 * write reaches the log: the embedded node's own writes and a remote client's (which the node
 * takes over and checks with its own setting, whatever the client checked).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HiqliteError } from '../../src/index.js';
import { nodeAndRemote } from '../support/one-node-config.js';

const cte = (limit: string) =>
  `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c ${limit}) INSERT INTO t (x) SELECT x FROM c`;

describe('write_recursion_rows_max = 100', () => {
  const f = nodeAndRemote('hq-recursion-', { writeRecursionRowsMax: 100 });

  test('a recursion of more rows is refused before it is proposed, embedded and remote; within the bound it is applied', async () => {
    await f.node.execute('CREATE TABLE t (x INTEGER)');
    for (const db of [f.node, f.remote]) {
      for (const limit of ['LIMIT 101', 'LIMIT 60 OFFSET 41', 'LIMIT 9223372036854775807']) {
        // The node's setting, for its own writes and for a remote client's (which leaves the
        // bound to the node: the node may allow more than the default).
        await assert.rejects(
          db.execute(cte(limit)),
          (e: unknown) =>
            e instanceof HiqliteError &&
            e.code === 'HQL_STATEMENT_NOT_ALLOWED' &&
            e.message.includes('write_recursion_rows_max (100)'),
          limit,
        );
      }
      await db.execute(cte('LIMIT 100'));
    }
    assert.deepEqual(await f.node.query('SELECT count(*) AS n FROM t'), [{ n: 200 }]);
  });
});
