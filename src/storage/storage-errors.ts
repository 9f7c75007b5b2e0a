/**
 * Typed errors of the durable log store. Corruption is never silently skipped: the runtime
 * answers it by discarding the local log and re-syncing from the leader (DESIGN.md,
 * "Storage and self-healing").
 */
import { HiqliteError } from '../lib/errors.js';

/** A file of the log store failed its checksum or structure check at `offset`. */
export class LogCorruptionError extends HiqliteError {
  override readonly name = 'LogCorruptionError';
  /** File name inside the log directory (never an absolute path). */
  readonly file: string;
  readonly offset: number;
  readonly reason: string;

  constructor(file: string, offset: number, reason: string, cause?: unknown) {
    super('HQL_CORRUPTION', `log store corrupted: ${file} at byte ${offset}: ${reason}`, {
      retryable: false,
      cause,
    });
    this.file = file;
    this.offset = offset;
    this.reason = reason;
  }
}

/** An I/O failure while writing: the store stops accepting writes (its disk state is unknown). */
export function ioError(what: string, cause: unknown): HiqliteError {
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new HiqliteError('HQL_IO', `log store ${what} failed: ${detail}`, { retryable: false, cause });
}

export function invalidConfigError(message: string): HiqliteError {
  return new HiqliteError('HQL_INVALID_CONFIG', message, { retryable: false });
}
