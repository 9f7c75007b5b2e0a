/**
 * The backup targets of a node: the local folder always, S3 when `s3_url` is configured. The S3
 * target (src/backup/s3) is handed in by whoever wires it, so this file has no S3 dependency.
 */
import type { ResolvedBackupConfig, ResolvedS3Config } from '../node/config/config-backup.js';
import { LocalBackupTarget } from './local-target.js';
import type { BackupTarget } from './target.js';

export type S3TargetFactory = (s3: ResolvedS3Config) => BackupTarget;

let s3Factory: S3TargetFactory | null = null;

/** Installs the S3 target implementation (done once by the module that provides it). */
export function provideS3Target(factory: S3TargetFactory): void {
  s3Factory = factory;
}

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
  if (s3Factory === null)
    throw new Error('s3_url is configured but no S3 backup target is installed (provideS3Target)');
  return { local, s3: s3Factory(backup.s3) };
}
