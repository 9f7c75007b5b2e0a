/**
 * Where encrypted backup files are kept: the local folder `<data_dir>/state_machine/backups`
 * (local-target.ts) and an S3 bucket (s3/). A backup is written once under a name made by
 * names.ts, read back whole, listed and deleted; nothing else. The bytes a target stores are
 * the encrypted backup file (docs/internals/backup-format.md): a target never sees plain data,
 * and it does not need to check what it stores, since every reader authenticates it.
 */

/** One stored backup. */
export interface BackupObject {
  /** The file or object name (names.ts: `backup_<time>_i<index>_n<node>.hqbak`). */
  readonly name: string;
  readonly bytes: number;
  /** When the target last modified it, ms since the epoch (retention uses the time in `name`). */
  readonly modifiedMs: number;
}

export interface BackupTargetCallOptions {
  /** Aborts the call (`HQL_ABORTED`); a `put` aborted part-way leaves nothing under its name. */
  readonly signal?: AbortSignal;
}

export interface BackupTarget {
  /** `'local'` or `'s3'`: what the CLI's `--local` / `--s3` pick. */
  readonly kind: 'local' | 's3';
  /** Where, for logs and messages: `local <dir>`, `s3 <bucket>/<prefix>`. No secret. */
  readonly description: string;
  /**
   * Stores `body` under `name`, streaming (bounded memory whatever its length). All or nothing:
   * resolves once the whole object is durable; on failure or abort nothing is left under `name`
   * (a partial file is removed, a multipart upload aborted). An existing object of that name is
   * replaced.
   */
  put(
    name: string,
    body: AsyncIterable<Uint8Array>,
    options?: BackupTargetCallOptions,
  ): Promise<BackupObject>;
  /** The backups stored here (names that parse with names.ts; other files are not listed), in any order. */
  list(options?: BackupTargetCallOptions): Promise<BackupObject[]>;
  /**
   * The stored bytes of `name`, streamed in chunks of any size. A missing object is
   * `HQL_BACKUP_NOT_FOUND` (thrown here or by the first iteration).
   */
  get(name: string, options?: BackupTargetCallOptions): Promise<AsyncIterable<Uint8Array>>;
  /** Deletes `name`; no error when it is already gone. */
  delete(name: string, options?: BackupTargetCallOptions): Promise<void>;
  /**
   * Removes what uploads of backups that never finished left behind, when started more than
   * `olderThanMs` before `nowMs` (younger ones may still be running on another node); returns
   * how many. Only targets that can hold such leftovers out of sight have it (S3's multipart
   * uploads; the local folder removes its `*.partial` files when its node opens it).
   */
  abortStaleUploads?(nowMs: number, olderThanMs: number, options?: BackupTargetCallOptions): Promise<number>;
}
