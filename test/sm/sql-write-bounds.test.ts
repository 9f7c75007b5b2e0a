/**
 * Writes whose cost has no bound are refused at apply, the same way on every replica
 * (write-bounds.ts): a recursive CTE in a write needs a LIMIT.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitStatements } from '../../src/sm/sql/tokenizer.js';
import { checkWriteBounds } from '../../src/sm/sql/write-bounds.js';

function check(sql: string) {
  const [statement] = splitStatements(sql);
  assert.ok(statement !== undefined);
  return checkWriteBounds(statement);
}

test('a write with a recursive CTE without LIMIT is refused, with or without the RECURSIVE keyword', () => {
  for (const sql of [
    'INSERT INTO t SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c)',
    'WITH c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) INSERT INTO t SELECT x FROM c',
    'WITH a AS (SELECT 1), "C"(x) AS (SELECT 1 UNION SELECT x+1 FROM a, c) DELETE FROM t WHERE id IN c',
    'CREATE VIEW v AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c JOIN t) SELECT * FROM c',
  ]) {
    const err = check(sql);
    assert.equal(err?.code, 'HQL_STATEMENT_NOT_ALLOWED', sql);
  }
});

test('a recursive CTE with a LIMIT, and CTEs that do not recurse, are allowed', () => {
  for (const sql of [
    'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 10) INSERT INTO t SELECT x FROM c',
    'WITH total AS (SELECT sum(total) AS total FROM orders) UPDATE s SET v = (SELECT total FROM total)',
    'WITH a AS (SELECT 1 UNION SELECT 2) INSERT INTO t SELECT * FROM a',
    "INSERT INTO t (s) VALUES ('WITH c AS (SELECT 1 UNION ALL SELECT 1 FROM c)')",
  ]) {
    assert.equal(check(sql), null, sql);
  }
});
