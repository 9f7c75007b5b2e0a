/**
 * The backup targets of a node: the local folder always, S3 when `s3_url` is configured. Every
 * caller (the node's backup service, the restore at start, the backup CLI) gets the same pair.
 * The S3 target is imported here, not installed by whoever loads it first: the CLI once lost
 * it when the module that installed it stopped being part of its imports.
 */
import type { ResolvedBackupConfig } from '../node/config/config-backup.js';
import { LocalBackupTarget } from './local-target.js';
import { createS3Target } from './s3/s3-target.js';
import type { BackupTarget } from './target.js';

export interface BackupTargets {
  readonly local: LocalBackupTarget;
  readonly s3: BackupTarget | null;
}

/** `reader`: opened beside a running node, changing nothing (LocalBackupTarget.open). */
export async function openBackupTargets(
  backupsDir: string,
  backup: ResolvedBackupConfig,
  o: { readonly reader?: boolean } = {},
): Promise<BackupTargets> {
  const local = await LocalBackupTarget.open(backupsDir, o);
  if (backup.s3 === null) return { local, s3: null };
  return { local, s3: createS3Target(backup.s3) };
}
