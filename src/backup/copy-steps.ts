/**
 * The steps of a consistent database copy (run on db-copy.ts's worker thread, and directly by
 * tests): `VACUUM INTO` reads the whole database inside one read transaction, so the copy is the
 * database as of one applied log index, whatever the writer commits meanwhile (WAL: readers and
 * the writer do not block each other; the WAL cannot be checkpointed past the copy's snapshot
 * while it runs, so it grows by what is written during the copy). The copy's own `_hq_meta`
 * says which index it holds: it was read in the same transaction as the data.
 */

import Database from 'better-sqlite3';
import { ensurePrivateFileSync } from '../sm/sql/private-file.js';
import { backupCorrupt } from './backup-errors.js';

/**
 * SQLite's page cache of each connection of a copy or check, in KiB. better-sqlite3 builds SQLite
 * with a 16 MB default, and VACUUM INTO gives the copy a cache as large as its source's: 32 MB
 * for the two, most of a backup's memory, and no faster than this for reading every page once
 * (docs/BENCHMARKS.md, "Backups").
 */
export const COPY_CACHE_KIB = 2048;

export interface CopyRequest {
  readonly dbPath: string;
  readonly outPath: string;
  readonly busyTimeoutMs: number;
}

export interface CopyInfo {
  readonly logIndex: number;
  readonly logTerm: number;
  /** The highest applied migration id, 0 when none. */
  readonly schemaVersion: number;
  readonly bytes: number;
}

/** A copy made by db-copy.ts, with where its time went (for logs and the benchmark). */
export interface CopyResult extends CopyInfo {
  readonly vacuumMs: number;
  readonly checkMs: number;
}

/** The worker's messages: the copy is made and prepared, then its integrity check passed. */
export type CopyWorkerMessage =
  | { readonly ok: true; readonly phase: 'copied'; readonly value: CopyInfo; readonly vacuumMs: number }
  | { readonly ok: true; readonly phase: 'checked'; readonly checkMs: number }
  | { readonly ok: false; readonly error: { readonly message: string; readonly code?: unknown } };

export function vacuumInto(r: CopyRequest): void {
  const db = new Database(r.dbPath, { readonly: true, fileMustExist: true });
  try {
    db.pragma(`busy_timeout = ${r.busyTimeoutMs}`);
    db.pragma(`cache_size = -${COPY_CACHE_KIB}`);
    // The plaintext copy of the whole database, and its journal (SQLite gives it the file's
    // mode): owner-only like everything under data_dir (VACUUM INTO made it 0644).
    ensurePrivateFileSync(r.outPath);
    db.prepare('VACUUM INTO ?').run(r.outPath);
  } finally {
    db.close();
  }
}

/**
 * Checks a database file that is to be backed up or was restored: `PRAGMA integrity_check`
 * (every page, index and constraint), the state machine's `_hq_meta` row; and makes it a single
 * self-contained file (rollback journal, no -wal).
 */
export function checkCopy(path: string): CopyInfo {
  const info = prepareCopy(path);
  integrityCheck(path);
  return info;
}

/** `PRAGMA integrity_check` of a prepared copy, read-only: the file can be read meanwhile. */
export function integrityCheck(path: string): void {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    db.pragma(`cache_size = -${COPY_CACHE_KIB}`);
    const problems = db.pragma('integrity_check(20)', { simple: false }) as Array<{
      integrity_check: string;
    }>;
    const first = problems[0]?.integrity_check;
    if (problems.length !== 1 || first !== 'ok') {
      const list = problems.map((p) => p.integrity_check).join('; ');
      throw backupCorrupt(`the database ${path} fails PRAGMA integrity_check: ${list}`);
    }
  } finally {
    db.close();
  }
}

/**
 * Makes a copy a single self-contained file (rollback journal, no -wal: its bytes do not change
 * after this) and reads what it holds: the state machine's `_hq_meta` row, schema version, size.
 */
export function prepareCopy(path: string): CopyInfo {
  const db = new Database(path, { fileMustExist: true });
  try {
    db.pragma(`cache_size = -${COPY_CACHE_KIB}`);
    db.pragma('journal_mode = DELETE');
    const hasMeta = db
      .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_hq_meta'")
      .get();
    if (hasMeta === undefined)
      throw backupCorrupt(`the database ${path} has no _hq_meta table: not a hiqlite database`);
    const meta = db.prepare('SELECT applied_index, applied_term FROM _hq_meta WHERE id = 0').get() as
      | { applied_index: number; applied_term: number }
      | undefined;
    if (meta === undefined) throw backupCorrupt(`the database ${path} has no _hq_meta row`);
    const hasMigrations = db
      .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '_migrations'")
      .get();
    const schemaVersion =
      hasMigrations === undefined
        ? 0
        : ((db.prepare('SELECT coalesce(max(id), 0) FROM _migrations').pluck().get() as number) ?? 0);
    const pages = db.pragma('page_count', { simple: true }) as number;
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    return {
      logIndex: meta.applied_index,
      logTerm: meta.applied_term,
      schemaVersion,
      bytes: pages * pageSize,
    };
  } finally {
    db.close();
  }
}
