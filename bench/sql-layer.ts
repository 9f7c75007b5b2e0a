/**
 * Micro-benchmark of the SQL layer alone, without Raft, network or worker thread: what one
 * command costs to encode on the proposer and to apply in the state machine, and what a point
 * query costs through SqlReader against raw better-sqlite3 on the same file. Best of several
 * rounds (this machine is shared; the best round is the least disturbed one).
 *
 *   node --import tsx bench/sql-layer.ts [insert|txn|query]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { LogIndex, Term } from '../src/raft/types.js';
import { type CommandInput, encodeCommand } from '../src/sm/sql/command.js';
import { prepareForProposal } from '../src/sm/sql/determinism.js';
import { SqlReader } from '../src/sm/sql/reader.js';
import { type ApplyEntry, SqlStateMachine } from '../src/sm/sql/state-machine.js';

const only = process.argv[2];
const rounds = only === undefined ? 5 : 15;
const dir = mkdtempSync(join(tmpdir(), 'hq-sql-bench-'));
const sm = SqlStateMachine.open(dir);
let index = 0;
const seqs = new Map<string, number>();

function entry(command: CommandInput, clientId?: string): ApplyEntry {
  let session: { clientId: string; seq: number } | undefined;
  if (clientId !== undefined) {
    const seq = (seqs.get(clientId) ?? 0) + 1;
    seqs.set(clientId, seq);
    session = { clientId, seq };
  }
  const data = encodeCommand({ nowMs: Date.now(), seed: 1, command, ...(session ? { session } : {}) });
  return { index: ++index as LogIndex, term: 1 as Term, data };
}

function best(label: string, unit: string, f: () => number): void {
  let min = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) min = Math.min(min, f());
  console.log(`${label.padEnd(52)} ${min.toFixed(2).padStart(8)} ${unit}`);
}

function elapsed(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0);
}

const VALUE = 'v'.repeat(64);
const insert = (k: number): CommandInput => ({
  type: 'execute',
  sql: 'INSERT INTO kv (k, v) VALUES (?, ?)',
  params: [k, VALUE],
  returning: false,
});
const txn: CommandInput = {
  type: 'txn',
  statements: Array.from({ length: 1000 }, (_, i) => ({
    sql: 'INSERT INTO kv (k, v) VALUES (?, ?)',
    params: [i, VALUE],
  })),
};

sm.applyBatch([entry({ type: 'batch', sql: 'CREATE TABLE kv (id INTEGER PRIMARY KEY, k INTEGER, v TEXT)' })]);

/** Applies `n` INSERTs in batches of 64 (as a busy leader does); µs per command. */
function applyInserts(n: number, withSessions: boolean): number {
  const batches: ApplyEntry[][] = [];
  for (let b = 0; b < n / 64; b++) {
    batches.push(
      Array.from({ length: 64 }, (_, i) => entry(insert(index), withSessions ? `client-${i}` : undefined)),
    );
  }
  const t0 = process.hrtime.bigint();
  for (const batch of batches) sm.applyBatch(batch);
  return elapsed(t0) / 1000 / n;
}

if (only === undefined || only === 'insert') {
  best('encode one INSERT (prepareForProposal)', 'µs', () => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 20_000; i++)
      prepareForProposal(insert(i), { nowMs: 1, seed: 1, session: { clientId: 'c', seq: i } });
    return elapsed(t0) / 1000 / 20_000;
  });
  best('apply one INSERT with a session, batches of 64', 'µs', () => applyInserts(6400, true));
  best('apply one INSERT without a session, batches of 64', 'µs', () => applyInserts(6400, false));
}

if (only === undefined || only === 'txn') {
  best('encode a txn of 1,000 INSERTs', 'ms', () => {
    const t0 = process.hrtime.bigint();
    prepareForProposal(txn, { nowMs: 1, seed: 1, session: { clientId: 'tx', seq: 1 } });
    return elapsed(t0) / 1e6;
  });
  best('apply a txn of 1,000 INSERTs with a session', 'ms', () => {
    const e = entry(txn, 'tx');
    const t0 = process.hrtime.bigint();
    sm.applyBatch([e]);
    return elapsed(t0) / 1e6;
  });
}

if (only === undefined || only === 'query') {
  sm.applyBatch([
    entry({
      type: 'batch',
      sql: "CREATE TABLE r (id INTEGER PRIMARY KEY, k TEXT NOT NULL, v TEXT NOT NULL); WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s LIMIT 10000) INSERT INTO r SELECT i, 'key' || i, printf('%064d', i) FROM s",
    }),
  ]);
  const reader = SqlReader.open(sm.path);
  const raw = new Database(sm.path, { readonly: true });
  const SQL = 'SELECT id, k, v FROM r WHERE id = ?';
  const get = raw.prepare(SQL);
  const id = (i: number) => ((i * 7919) % 10_000) + 1;
  const perQuery = (f: (i: number) => unknown) => () => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 200_000; i++) f(i);
    return elapsed(t0) / 200_000;
  };
  best(
    'point SELECT, raw better-sqlite3 get()',
    'ns',
    perQuery((i) => get.get(id(i))),
  );
  best(
    'point SELECT, SqlReader.query()',
    'ns',
    perQuery((i) => reader.query(SQL, [id(i)])),
  );
  reader.close();
  raw.close();
}

sm.close();
rmSync(dir, { recursive: true, force: true });
