/**
 * Writes whose cost has no bound are refused at apply, the same way on every replica
 * (write-bounds.ts): a recursive CTE in a write needs a LIMIT.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HiqliteError } from '../../src/lib/errors.js';
import type { CommandInput } from '../../src/sm/sql/command.js';
import { prepareForProposal } from '../../src/sm/sql/determinism.js';
import { splitStatements } from '../../src/sm/sql/tokenizer.js';
import { checkWriteBounds } from '../../src/sm/sql/write-bounds.js';

function check(sql: string) {
  const [statement] = splitStatements(sql);
  assert.ok(statement !== undefined);
  return checkWriteBounds(statement, 'apply');
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

test('the proposer refuses an unbounded write before it spends a log entry, on every command type', () => {
  const endless =
    'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) INSERT INTO t SELECT x FROM c';
  const ctx = { nowMs: 0, seed: 1 };
  const commands: CommandInput[] = [
    { type: 'execute', sql: endless, params: [], returning: false },
    {
      type: 'txn',
      statements: [
        { sql: 'INSERT INTO t VALUES (1)', params: [] },
        { sql: endless, params: [] },
      ],
    },
    { type: 'batch', sql: `INSERT INTO t VALUES (1); ${endless}` },
  ];
  for (const command of commands) {
    assert.throws(
      () => prepareForProposal(command, ctx),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_STATEMENT_NOT_ALLOWED',
      command.type,
    );
  }
  // With a LIMIT on the recursion it is bounded, and proposed.
  const bounded =
    'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 10) INSERT INTO t SELECT x FROM c';
  assert.ok(prepareForProposal({ type: 'execute', sql: bounded, params: [], returning: false }, ctx));
});

test('a proposal needs the LIMIT to be a whole-number literal: SQLite reads a negative LIMIT as none, and such a write ran forever on every replica', () => {
  const cte = (limit: string) =>
    `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c ${limit}) INSERT INTO t SELECT x FROM c`;
  const proposal = (sql: string) => {
    const [statement] = splitStatements(sql);
    assert.ok(statement !== undefined);
    return checkWriteBounds(statement, { recursionRowsMax: 1_000 });
  };
  for (const limit of [
    'LIMIT -1',
    'LIMIT (SELECT -1)',
    'LIMIT ?',
    'LIMIT :n',
    'LIMIT 0xffffffffffffffff',
    'LIMIT 10 * 10',
    'LIMIT 10 OFFSET ?',
    'LIMIT 5, -1',
    'LIMIT 1.5',
  ]) {
    const err = proposal(cte(limit));
    assert.equal(err?.code, 'HQL_STATEMENT_NOT_ALLOWED', limit);
    assert.match(err!.message, /without a LIMIT of a whole-number literal/, limit);
    // Entries already in logs apply under the rule they were applied with (any LIMIT).
    assert.equal(check(cte(limit)), null, limit);
  }
  for (const limit of ['LIMIT 10', 'LIMIT 0', 'LIMIT 10 OFFSET 5', 'limit 5, 10'])
    assert.equal(proposal(cte(limit)), null, limit);
  // The proposer refuses it before a log entry is spent.
  assert.throws(
    () =>
      prepareForProposal(
        { type: 'execute', sql: cte('LIMIT -1'), params: [], returning: false },
        { nowMs: 0, seed: 1 },
      ),
    (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_STATEMENT_NOT_ALLOWED',
  );
});

test('a proposal bounds the rows of a recursion (LIMIT plus OFFSET) by write_recursion_rows_max: a LIMIT of 2^63-1 stalled every write of the cluster for good', () => {
  const cte = (limit: string) =>
    `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c ${limit}) INSERT INTO t SELECT x FROM c WHERE x < 0`;
  const proposal = (sql: string, recursionRowsMax: number) => {
    const [statement] = splitStatements(sql);
    assert.ok(statement !== undefined);
    return checkWriteBounds(statement, { recursionRowsMax });
  };
  for (const [limit, max] of [
    ['LIMIT 9223372036854775807', 10_000_000],
    ['LIMIT 99999999999999999999999999', 10_000_000],
    ['LIMIT 1001', 1_000],
    ['LIMIT 600 OFFSET 401', 1_000],
    ['LIMIT 401, 600', 1_000],
  ] as const) {
    const err = proposal(cte(limit), max);
    assert.equal(err?.code, 'HQL_STATEMENT_NOT_ALLOWED', limit);
    assert.match(err!.message, /more than write_recursion_rows_max/, limit);
    // Apply decides alike on every replica whatever each node's setting: any LIMIT.
    assert.equal(check(cte(limit)), null, limit);
  }
  for (const [limit, max] of [
    ['LIMIT 1000', 1_000],
    ['LIMIT 600 OFFSET 400', 1_000],
    ['LIMIT 9007199254740991', Number.MAX_SAFE_INTEGER],
  ] as const)
    assert.equal(proposal(cte(limit), max), null, limit);
  // The default, through the proposer (a node passes its own setting).
  const over = { type: 'execute' as const, sql: cte('LIMIT 10000001'), params: [], returning: false };
  assert.throws(
    () => prepareForProposal(over, { nowMs: 0, seed: 1 }),
    (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_STATEMENT_NOT_ALLOWED',
  );
  assert.ok(prepareForProposal(over, { nowMs: 0, seed: 1, recursionRowsMax: 20_000_000 }));
});
