/**
 * The benchmark's tables and operations, shared by the embedded leader child, the remote client
 * (the parent process) and the raw better-sqlite3 baselines, so every figure runs the same SQL.
 */
import type { HiqliteClient, Params } from '../src/index.js';
import { type LoadOptions, type LoadResult, runClosedLoop } from './closed-loop.js';

/** Written by the insert, txn and mixed workloads; grows during the run. */
export const CREATE_WRITE_TABLE =
  'CREATE TABLE IF NOT EXISTS bench_kv (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL)';
/** Filled once with `READ_ROWS` rows; point reads pick a random id from it. */
export const CREATE_READ_TABLE =
  'CREATE TABLE IF NOT EXISTS bench_read (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL)';
export const INSERT_SQL = 'INSERT INTO bench_kv (k, v) VALUES (?, ?)';
export const INSERT_READ_SQL = 'INSERT OR REPLACE INTO bench_read (id, k, v) VALUES (?, ?, ?)';
export const SELECT_SQL = 'SELECT id, k, v FROM bench_read WHERE id = ?';
export const READ_ROWS = 10_000;
export const TXN_ROWS = 1_000;
/** 64 bytes: a small row, as most OLTP rows are. */
export const VALUE = 'v'.repeat(64);
/** Share of reads in the mixed workload. */
export const MIXED_READ_SHARE = 0.9;

export type WorkloadKind = 'insert' | 'txn' | 'query' | 'queryConsistent' | 'mixed';

export function randomReadId(): number {
  return 1 + Math.floor(Math.random() * READ_ROWS);
}

export function randomK(): number {
  return Math.floor(Math.random() * 2 ** 31);
}

/** Creates both tables and fills `bench_read` (in 1,000-row transactions). Idempotent. */
export async function prepareTables(client: HiqliteClient): Promise<void> {
  await client.execute(CREATE_WRITE_TABLE);
  await client.execute(CREATE_READ_TABLE);
  const [{ n } = { n: 0 }] = await client.query<{ n: number }>('SELECT count(*) AS n FROM bench_read');
  if (n >= READ_ROWS) return;
  for (let first = 1; first <= READ_ROWS; first += TXN_ROWS) {
    const statements: Array<readonly [string, Params]> = [];
    for (let id = first; id < first + TXN_ROWS && id <= READ_ROWS; id++) {
      statements.push([INSERT_READ_SQL, [id, id, VALUE]]);
    }
    await client.txn(statements);
  }
}

/** The operation of workload `kind` on `client`. */
export function operation(client: HiqliteClient, kind: WorkloadKind): () => Promise<unknown> {
  switch (kind) {
    case 'insert':
      return () => client.execute(INSERT_SQL, [randomK(), VALUE]);
    case 'txn':
      return () => client.txn(txnStatements());
    case 'query':
      return () => client.query(SELECT_SQL, [randomReadId()]);
    case 'queryConsistent':
      return () => client.queryConsistent(SELECT_SQL, [randomReadId()]);
    case 'mixed':
      return () =>
        Math.random() < MIXED_READ_SHARE
          ? client.query(SELECT_SQL, [randomReadId()])
          : client.execute(INSERT_SQL, [randomK(), VALUE]);
    default:
      return assertNever(kind);
  }
}

function txnStatements(): Array<readonly [string, Params]> {
  const out: Array<readonly [string, Params]> = [];
  for (let i = 0; i < TXN_ROWS; i++) out.push([INSERT_SQL, [randomK(), VALUE]]);
  return out;
}

/**
 * Runs workload `kind` with `o.concurrency` callers spread round-robin over `clients` (one
 * embedded node, or several remote connections).
 */
export function runWorkload(
  clients: readonly HiqliteClient[],
  kind: WorkloadKind,
  o: LoadOptions,
): Promise<LoadResult> {
  const ops = clients.map((c) => operation(c, kind));
  return runClosedLoop(o, (worker) => (ops[worker % ops.length] as () => Promise<unknown>)());
}

function assertNever(x: never): never {
  throw new Error(`unexpected workload ${String(x)}`);
}
