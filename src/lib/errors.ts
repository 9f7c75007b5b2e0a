/**
 * The error base of hiqlite. Every error a user can see has a stable `code` (documented in
 * docs/ERRORS.md) and says whether retrying the same call is safe.
 */
export type ErrorCode =
  // Raft and the runtime
  | 'HQL_NOT_LEADER'
  | 'HQL_OVERLOADED'
  | 'HQL_PROPOSAL_DROPPED'
  | 'HQL_OUTCOME_UNKNOWN'
  | 'HQL_UNAVAILABLE'
  | 'HQL_TIMEOUT'
  | 'HQL_ABORTED'
  | 'HQL_LEADERSHIP_TRANSFER'
  | 'HQL_CONFIG_CHANGE_PENDING'
  | 'HQL_INVALID_CONFIG_CHANGE'
  | 'HQL_INVALID_CONFIG'
  | 'HQL_CLOSED'
  /** A SQL call (or backup) on a cache-only node (`sqlite = false`): it has no SQLite. */
  | 'HQL_SQLITE_DISABLED'
  /** A bug: an error that is not one of these (the node logged its stack). */
  | 'HQL_INTERNAL'
  // Storage
  | 'HQL_ENTRY_TOO_LARGE'
  | 'HQL_CORRUPTION'
  | 'HQL_IO'
  // Network
  | 'HQL_PROTOCOL'
  | 'HQL_UNAUTHORIZED'
  | 'HQL_UNREACHABLE'
  | 'HQL_CLUSTER_MISMATCH'
  | 'HQL_SNAPSHOT_FAILED'
  // HTTP routes of the API port
  | 'HQL_NOT_FOUND'
  | 'HQL_REQUEST_TOO_LARGE'
  // SQL state machine
  | 'HQL_SQL'
  | 'HQL_CONSTRAINT'
  | 'HQL_INVALID_PARAMS'
  | 'HQL_NONDETERMINISTIC'
  | 'HQL_STATEMENT_NOT_ALLOWED'
  | 'HQL_MALFORMED_COMMAND'
  | 'HQL_MIGRATION_ORDER'
  | 'HQL_MIGRATION_CHANGED'
  | 'HQL_SESSION_STALE'
  | 'HQL_SESSION_RESULT_UNAVAILABLE'
  | 'HQL_SESSIONS_FULL'
  | 'HQL_READONLY'
  | 'HQL_NO_ROWS'
  | 'HQL_RESULT_TOO_LARGE'
  // Cache state machine
  | 'HQL_CACHE_FULL'
  | 'HQL_CACHE_TOO_LARGE'
  /** A listener fell behind its bounded buffer (it carries `missed`). */
  | 'HQL_LAGGED'
  // Backups
  | 'HQL_S3'
  | 'HQL_BACKUP_CORRUPT'
  | 'HQL_BACKUP_KEY_UNKNOWN'
  | 'HQL_BACKUP_UNSUPPORTED'
  | 'HQL_BACKUP_NOT_FOUND';

export class HiqliteError extends Error {
  override readonly name: string = 'HiqliteError';
  readonly code: ErrorCode;
  /** True when repeating the same call cannot apply it twice and may succeed. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable;
  }
}

/**
 * The caller's AbortSignal fired (or it went away): the one maker of HQL_ABORTED, retryable on
 * every path as docs/ERRORS.md says (the caller may ask again; a retry loop stops on the signal,
 * not on this flag). Found from outside: the remote client's were not retryable, the embedded
 * node's were.
 */
export function abortedError(message: string, cause?: unknown): HiqliteError {
  return new HiqliteError('HQL_ABORTED', message, {
    retryable: true,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * A write that may or may not have been applied (`why`): its entry may be in the log, and no
 * answer says whether it was applied. Never retryable as such (a retry could apply it twice);
 * under a session it may be retried. Every write path's unknown outcome is made here. `what`:
 * what it is said of when it is no write (a backup, a lock request sent once).
 */
export function outcomeUnknown(
  why: string,
  cause?: unknown,
  what = 'the write may or may not have been applied',
): HiqliteError {
  return new HiqliteError('HQL_OUTCOME_UNKNOWN', `${what}: ${why}`, {
    retryable: false,
    ...(cause === undefined ? {} : { cause }),
  });
}
