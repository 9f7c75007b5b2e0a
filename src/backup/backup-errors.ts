/**
 * The errors of backups (docs/ERRORS.md, "Backups"). Each names what failed and where, so an
 * operator can tell a damaged file from a missing key. None of them is retryable: the same file
 * fails the same way.
 */
import { HiqliteError } from '../lib/errors.js';

/** A backup file fails a check (header, authentication, decompression, the database in it). */
export function backupCorrupt(what: string, cause?: unknown): HiqliteError {
  return new HiqliteError('HQL_BACKUP_CORRUPT', what, { retryable: false, cause });
}

/** The backup's key id is not among the configured keys, or no keys are configured. */
export function backupKeyUnknown(what: string): HiqliteError {
  return new HiqliteError('HQL_BACKUP_KEY_UNKNOWN', what, { retryable: false });
}

/** A newer format version than this code reads. */
export function backupUnsupported(what: string): HiqliteError {
  return new HiqliteError('HQL_BACKUP_UNSUPPORTED', what, { retryable: false });
}

export function backupNotFound(what: string): HiqliteError {
  return new HiqliteError('HQL_BACKUP_NOT_FOUND', what, { retryable: false });
}
