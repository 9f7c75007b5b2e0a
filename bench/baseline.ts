/**
 * Raw better-sqlite3 on the same machine and the same tables, the yardstick for every hiqlite
 * figure: single-row INSERT in WAL mode with synchronous=FULL (an fsync per commit, durable on
 * one disk) and NORMAL (no fsync per commit), 1,000-row transactions, point SELECT, and the
 * 90% read / 10% write mix. One synchronous caller: better-sqlite3 has no concurrency to offer.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { LoadResult } from './closed-loop.js';
import { LatencyHistogram } from './histogram.js';
import {
  CREATE_READ_TABLE,
  CREATE_WRITE_TABLE,
  INSERT_READ_SQL,
  INSERT_SQL,
  MIXED_READ_SHARE,
  READ_ROWS,
  randomK,
  randomReadId,
  SELECT_SQL,
  TXN_ROWS,
  VALUE,
} from './workloads.js';

const FSYNC_RECORD_BYTES = 200;

export type BaselineKind = 'insertFull' | 'insertNormal' | 'txnFull' | 'select' | 'mixedFull' | 'fdatasync';

export const BASELINE_KINDS: readonly BaselineKind[] = [
  'insertFull',
  'insertNormal',
  'txnFull',
  'select',
  'mixedFull',
  'fdatasync',
];

/** What each baseline measures, for the report. */
export const BASELINE_LABELS: Readonly<Record<BaselineKind, string>> = {
  insertFull: 'raw INSERT, WAL, synchronous=FULL',
  insertNormal: 'raw INSERT, WAL, synchronous=NORMAL',
  txnFull: `raw ${TXN_ROWS}-row transaction, WAL, FULL`,
  select: 'raw point SELECT',
  mixedFull: 'raw 90% SELECT / 10% INSERT, FULL',
  fdatasync: `raw ${FSYNC_RECORD_BYTES} B append + fdatasync`,
};

export function runBaseline(kind: BaselineKind, o: { warmupMs: number; durationMs: number }): LoadResult {
  if (kind === 'fdatasync') return runFdatasync(o);
  const dir = mkdtempSync(join(tmpdir(), 'hql-bench-raw-'));
  const db = new Database(join(dir, 'raw.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${kind === 'insertNormal' ? 'NORMAL' : 'FULL'}`);
    db.exec(CREATE_WRITE_TABLE);
    db.exec(CREATE_READ_TABLE);
    const fill = db.prepare(INSERT_READ_SQL);
    db.transaction(() => {
      for (let id = 1; id <= READ_ROWS; id++) fill.run(id, id, VALUE);
    })();
    const insert = db.prepare(INSERT_SQL);
    const select = db.prepare(SELECT_SQL);
    const txn = db.transaction(() => {
      for (let i = 0; i < TXN_ROWS; i++) insert.run(randomK(), VALUE);
    });
    const op = ((): (() => unknown) => {
      switch (kind) {
        case 'insertFull':
        case 'insertNormal':
          return () => insert.run(randomK(), VALUE);
        case 'txnFull':
          return () => txn();
        case 'select':
          return () => select.get(randomReadId());
        case 'mixedFull':
          return () =>
            Math.random() < MIXED_READ_SHARE ? select.get(randomReadId()) : insert.run(randomK(), VALUE);
        default:
          return assertNever(kind);
      }
    })();
    return syncLoop(op, o);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The disk's floor for one durable write: a small record appended and fdatasync'ed, what the
 * Raft log does once per group commit on the leader and on each follower.
 */
function runFdatasync(o: { warmupMs: number; durationMs: number }): LoadResult {
  const dir = mkdtempSync(join(tmpdir(), 'hql-bench-fsync-'));
  const fd = openSync(join(dir, 'log'), 'w');
  const record = Buffer.alloc(FSYNC_RECORD_BYTES, 1);
  try {
    return syncLoop(() => {
      writeSync(fd, record);
      fdatasyncSync(fd);
    }, o);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One synchronous caller: warm-up, then the measured window (bounded by the clock). */
function syncLoop(op: () => unknown, o: { warmupMs: number; durationMs: number }): LoadResult {
  const hist = new LatencyHistogram();
  const warmupEnd = performance.now() + o.warmupMs;
  while (performance.now() < warmupEnd) op();
  const start = performance.now();
  const deadline = start + o.durationMs;
  const windowStartUs = Number(process.hrtime.bigint() / 1000n);
  let ops = 0;
  for (let now = start; now < deadline; ) {
    op();
    const end = performance.now();
    hist.record(end - now);
    ops++;
    now = end;
  }
  return {
    concurrency: 1,
    ops,
    errors: 0,
    warmupErrors: 0,
    completedOps: ops,
    errorSamples: [],
    elapsedMs: performance.now() - start,
    histogram: hist.toJSON(),
    windowUs: [windowStartUs, Number(process.hrtime.bigint() / 1000n)],
  };
}

function assertNever(x: never): never {
  throw new Error(`unexpected baseline ${String(x)}`);
}
