/**
 * Connection settings and the state machine's own tables. The reasons for each PRAGMA are in
 * docs/internals/sql-state-machine.md ("Connection settings").
 */
import type Database from 'better-sqlite3';
import { MIGRATIONS_SCHEMA } from './migrations.js';
import { SESSIONS_SCHEMA } from './sessions.js';

export const PAGE_SIZE_BYTES = 4096;
export const JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;
export const META_FORMAT_VERSION = 1;

export function configureWriter(db: Database.Database, busyTimeoutMs: number): void {
  // page_size only takes effect on a new database (before the first table); a restored
  // snapshot must have the same page size to be copied into a WAL database.
  db.pragma(`page_size = ${PAGE_SIZE_BYTES}`);
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (mode !== 'wal') throw new Error(`cannot enable WAL mode (journal_mode is ${String(mode)})`);
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT_BYTES}`);
}

export function configureReader(db: Database.Database, busyTimeoutMs: number): void {
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  db.pragma('query_only = ON');
}

/**
 * `_hq_meta`: one row with the last applied log position, the membership blob the runtime
 * passed with the latest config entry and the state machine's clock; written in the same
 * transaction as the entries.
 * `_hq_counters`: a one-row scratch table whose only purpose is resetting last_insert_rowid()
 * and changes() before each command (see determinism.ts).
 */
export const INTERNAL_SCHEMA: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS _hq_meta (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    applied_index INTEGER NOT NULL,
    applied_term INTEGER NOT NULL,
    membership BLOB,
    format INTEGER NOT NULL,
    clock_ms INTEGER NOT NULL DEFAULT 0
  )`,
  `INSERT OR IGNORE INTO _hq_meta (id, applied_index, applied_term, membership, format) VALUES (0, 0, 0, NULL, ${META_FORMAT_VERSION})`,
  'CREATE TABLE IF NOT EXISTS _hq_counters (id INTEGER PRIMARY KEY)',
  ...SESSIONS_SCHEMA,
  MIGRATIONS_SCHEMA,
];

export function ensureSchema(db: Database.Database): void {
  db.transaction(() => {
    for (const sql of INTERNAL_SCHEMA) db.exec(sql);
    // Databases made before the state machine kept its clock.
    const columns = db.prepare("SELECT name FROM pragma_table_info('_hq_meta')").pluck().all();
    if (!columns.includes('clock_ms'))
      db.exec('ALTER TABLE _hq_meta ADD COLUMN clock_ms INTEGER NOT NULL DEFAULT 0');
    // Databases made before sessions kept their protection (sessions.ts): none is protected.
    const sessionColumns = db.prepare("SELECT name FROM pragma_table_info('_hq_sessions')").pluck().all();
    if (!sessionColumns.includes('protect_ms'))
      db.exec('ALTER TABLE _hq_sessions ADD COLUMN protect_ms INTEGER');
  })();
}

export interface MetaRow {
  readonly applied_index: number;
  readonly applied_term: number;
  readonly membership: Uint8Array | null;
  /** The state machine's clock: the largest time any applied command carried (see state-machine.ts). */
  readonly clock_ms: number;
}

export function readMeta(db: Database.Database): MetaRow | undefined {
  return db
    .prepare('SELECT applied_index, applied_term, membership, clock_ms FROM _hq_meta WHERE id = 0')
    .get() as MetaRow | undefined;
}
