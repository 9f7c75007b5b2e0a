/**
 * Typed errors of the cache state machine. As in the SQL group (src/sm/sql/errors.ts), a
 * command's own failure (a limit reached, a stale session) is a deterministic *result*: every
 * replica computes the same one, so it travels as plain data (`CacheErrorInfo`) and becomes a
 * thrown `CacheError` only at the API edge.
 */
import { type ErrorCode, HiqliteError } from '../../lib/errors.js';

/** The subset of lib/errors.ts's ErrorCode that the cache state machine produces. */
export type CacheErrorCode = Extract<
  ErrorCode,
  /** Command bytes that do not decode to a valid command (untrusted input). */
  | 'HQL_MALFORMED_COMMAND'
  /** A capacity limit: entries per cache, caches, total bytes, locks, waiters of a lock. */
  | 'HQL_CACHE_FULL'
  /** A key, value, channel, payload or holder id over its byte limit. */
  | 'HQL_CACHE_TOO_LARGE'
  /** A session sequence number lower than the last one applied: its result is gone. */
  | 'HQL_SESSION_STALE'
  /** A duplicate of an applied command whose result was not kept. */
  | 'HQL_SESSION_RESULT_UNAVAILABLE'
  /** A new client session found the session table full of sessions that may not be forgotten yet. */
  | 'HQL_SESSIONS_FULL'
>;

/** The option of `CacheLimits` a limit error is about. */
export type CacheLimitName =
  | 'keyBytesMax'
  | 'valueBytesMax'
  | 'holderIdBytesMax'
  | 'entriesPerCacheMax'
  | 'cachesMax'
  | 'bytesMax'
  | 'locksMax'
  | 'lockWaitersPerKeyMax';

/** The data form of an error: what a command result carries and a session stores. */
export interface CacheErrorInfo {
  readonly code: CacheErrorCode;
  readonly message: string;
  /** For HQL_CACHE_FULL / HQL_CACHE_TOO_LARGE: the limit that was reached. */
  readonly limit?: CacheLimitName;
}

/** The codes only the cache group produces: a remote client rebuilds them as CacheError. */
export const CACHE_ONLY_CODES: ReadonlySet<string> = new Set<CacheErrorCode>([
  'HQL_CACHE_FULL',
  'HQL_CACHE_TOO_LARGE',
]);

const RETRYABLE_CODES: ReadonlySet<CacheErrorCode> = new Set(['HQL_CACHE_FULL', 'HQL_SESSIONS_FULL']);

export class CacheError extends HiqliteError {
  override readonly name: string = 'CacheError';
  readonly info: CacheErrorInfo;

  constructor(info: CacheErrorInfo, options: { cause?: unknown } = {}) {
    super(info.code, info.message, { retryable: RETRYABLE_CODES.has(info.code), cause: options.cause });
    this.info = info;
  }
}

/** Rebuilds a thrown error from a result's error data (what the runtime hands to the caller). */
export function cacheErrorFromInfo(info: CacheErrorInfo): CacheError {
  return new CacheError(info);
}
