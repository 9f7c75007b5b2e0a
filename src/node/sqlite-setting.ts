/**
 * The `sqlite` setting of a node. With `sqlite = false` a node is cache-only: it runs the cache
 * group alone, with no SQL log, no SQLite database, no read pool and no SQL snapshots, and the
 * cache group takes the SQL group's place wherever the node needs "its" group (formation,
 * bootstrap proof, cluster id, health, leader, metrics). Such a node refuses SQL calls
 * (HQL_SQLITE_DISABLED), and every node of a cluster must have the same setting: a node meeting
 * the other kind refuses it (HQL_CLUSTER_MISMATCH), on both sides of a join.
 */
import { assert } from '../lib/assert.js';
import { HiqliteError } from '../lib/errors.js';
import type { DiskNodeConfig, ResolvedNodeConfig, ResolvedPaths, SqlNodeConfig } from './config/config.js';

/** The error of a SQL call (or backup) on a cache-only node. */
export function sqliteDisabledError(nodeId: number, what: string): HiqliteError {
  return new HiqliteError(
    'HQL_SQLITE_DISABLED',
    `${what} needs SQLite, but node ${nodeId} is a cache-only node (sqlite = false): it runs only the cache group`,
    { retryable: false },
  );
}

/** The configuration of a node that runs SQLite, or HQL_SQLITE_DISABLED for `what`. */
export function sqlConfig(cfg: ResolvedNodeConfig, what: string): SqlNodeConfig {
  if (!cfg.sqlite) throw sqliteDisabledError(cfg.nodeId, what);
  assert(cfg.dataDir !== null && cfg.paths !== null, 'a node with SQLite has a data directory');
  return cfg as SqlNodeConfig;
}

/** The configuration of a node with a data directory, or null (a cache-only node in memory). */
export function diskConfig(cfg: ResolvedNodeConfig): DiskNodeConfig | null {
  if (cfg.dataDir === null) {
    assert(cfg.paths === null && !cfg.sqlite && !cfg.cacheStorageDisk, 'no data directory only in memory');
    return null;
  }
  assert(cfg.paths !== null, 'paths come with the data directory');
  return cfg as DiskNodeConfig;
}

/** The paths under the data directory of a node that has one (asserted). */
export function dataPaths(cfg: ResolvedNodeConfig): ResolvedPaths {
  const disk = diskConfig(cfg);
  assert(disk !== null, 'this node keeps files, so it has a data directory');
  return disk.paths;
}

/**
 * A node of the other `sqlite` setting. `peer` is its id; `peerSqlite` its setting as it said
 * (absent on the wire means true: nodes of earlier versions always ran SQLite).
 */
export function sqliteMismatchError(
  self: ResolvedNodeConfig,
  peer: number,
  peerSqlite: boolean,
): HiqliteError {
  const mode = (sqlite: boolean) => (sqlite ? 'sqlite = true' : 'sqlite = false (cache-only)');
  return new HiqliteError(
    'HQL_CLUSTER_MISMATCH',
    `node ${peer} runs with ${mode(peerSqlite)}, but node ${self.nodeId} runs with ${mode(self.sqlite)}: every node of a cluster must have the same sqlite setting`,
    { retryable: false },
  );
}

/** A node's `sqlite` as said in an answer or request; absent means true (earlier versions). */
export function saidSqlite(value: unknown): boolean {
  return value !== false;
}
