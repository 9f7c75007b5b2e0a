/**
 * Features built on top of the node runtime that the node still has to call into: backups
 * (src/backup). The node layer may not import them (docs/ARCHITECTURE.md, "Layers"), so the
 * client layer, which starts the node, hands them in through this seam.
 */
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import type { SqlNodeConfig } from './config/config.js';

/** What a backup produced (the answer of `backup()`, the API op and `POST /backup`). */
export interface BackupInfo {
  /** The file / object name in every target (`backup_<time>_i<index>_n<node>.hqbak`). */
  readonly name: string;
  /** The log index (and its term) whose state the backup holds. */
  readonly logIndex: number;
  readonly logTerm: number;
  /** Creation time, ms since the epoch. */
  readonly createdMs: number;
  /** Bytes stored (compressed, encrypted). */
  readonly bytes: number;
  /** Bytes of the SQLite database inside. */
  readonly databaseBytes: number;
  /** Where it was stored: `local`, `s3`. */
  readonly targets: readonly string[];
  /** The node that took it. */
  readonly nodeId: number;
}

/** What a running node offers its backup service (only a node with SQLite has one). */
export interface BackupHost {
  readonly cfg: SqlNodeConfig;
  readonly log: Logger;
  readonly clock: Clock;
  clusterId(): string | null;
  isLeader(): boolean;
}

/** A stored backup as a target lists it (time, index and node read from its name). */
export interface BackupListing {
  readonly name: string;
  readonly bytes: number;
  readonly createdMs: number;
  readonly logIndex: number;
  readonly nodeId: number;
}

export interface NodeBackups {
  /** Takes a backup now on this node; a call while one runs gets that one's result. */
  backup(): Promise<BackupInfo>;
  /** Whether an S3 bucket is configured beside the local folder. */
  readonly hasS3: boolean;
  /** The backups of this node's local folder or of the S3 bucket (HQL_NOT_FOUND: no bucket). */
  list(target: 'local' | 's3', signal?: AbortSignal): Promise<BackupListing[]>;
  close(): Promise<void>;
}

export interface NodeFeatures {
  /**
   * Runs once the data directory is locked and before the node reads any of its state:
   * `HQL_BACKUP_RESTORE` (src/backup/restore.ts).
   */
  readonly beforeOpen?: (
    cfg: SqlNodeConfig,
    log: Logger,
    options: { readonly timeoutMs: number; readonly signal?: AbortSignal },
  ) => Promise<void>;
  /** Starts the backup service once the node is a member. */
  readonly backups?: (host: BackupHost) => Promise<NodeBackups>;
}
