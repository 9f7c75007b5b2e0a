/**
 * Checks of what an application passes to the client API (embedded node and remote client
 * alike): a wrong type or range is HQL_INVALID_PARAMS naming the argument, thrown before anything
 * is encoded or sent. Without them the same mistakes surfaced as HQL_MALFORMED_COMMAND (meant
 * for bytes that do not decode), HQL_PROTOCOL (the remote client's own encoder), or were
 * accepted (a misspelled consistency read locally).
 */
import { HiqliteError } from '../lib/errors.js';
import { CACHE_DURATION_MS_MAX } from '../protocol/cache-api-codec.js';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function invalid(message: string): never {
  throw new HiqliteError('HQL_INVALID_PARAMS', message, { retryable: false });
}

function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol' || typeof v === 'function') return typeof v;
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : 'an object';
}

// `where` + `what` name the argument in the message, built only on failure (`where` is made
// once per handle, e.g. "cache 'sessions': ", so a valid call builds no string here).

/** A name or key: a string (its length is the cluster's limit to check). */
export function stringArg(v: unknown, what: string, where = ''): string {
  if (typeof v !== 'string') invalid(`${where}${what} must be a string, got ${shown(v)}`);
  return v;
}

/** A cache, counter or channel name: a non-empty string (HTTP has no way to name '' alone). */
export function nameArg(v: unknown, what: string): string {
  if (stringArg(v, what) === '') invalid(`${what} must not be empty`);
  return v as string;
}

/** `consistency` of a read: absent, 'local' or 'linearizable'. */
export function consistencyArg<T extends 'local' | 'linearizable'>(
  v: T | undefined,
  what: string,
  where = '',
): T | undefined {
  if (v === undefined || v === 'local' || v === 'linearizable') return v;
  return invalid(`${where}${what}: consistency must be 'local' or 'linearizable', got ${shown(v)}`);
}

/** A duration in whole milliseconds from `min` to 100 years (ttlMs, leaseMs, waitMs). */
export function durationArg(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > CACHE_DURATION_MS_MAX)
    invalid(
      `${what} must be a whole number of milliseconds from ${min} to ${CACHE_DURATION_MS_MAX}, got ${shown(v)}`,
    );
  return v;
}

/** A counter's delta or value: a 64-bit integer, as a safe-integer number or a bigint. */
export function int64Arg(v: unknown, what: string, where = ''): bigint {
  if (typeof v === 'bigint') {
    if (v < INT64_MIN || v > INT64_MAX) invalid(`${where}${what} must be a 64-bit integer, got ${shown(v)}`);
    return v;
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    invalid(`${where}${what} must be an integer (a bigint beyond 2^53), got ${shown(v)}`);
  return BigInt(v);
}

/**
 * An options object: absent, or an object whose every own key `allowed` names. A misspelled
 * option is refused rather than ignored: `{ ttl: 60_000 }` for `ttlMs` would store an entry that
 * never expires, `{ timeout: 5_000 }` for `timeoutMs` a read without a limit.
 */
export function optionsArg<T extends object>(
  v: T | undefined,
  allowed: readonly string[],
  what: string,
  where = '',
): T | undefined {
  if (v === undefined) return v;
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    invalid(`${where}${what}: options must be an object, got ${shown(v)}`);
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key))
      invalid(
        `${where}${what}: unknown option ${JSON.stringify(key)} (${allowed.length === 0 ? 'it takes none' : `it takes ${allowed.join(', ')}`})`,
      );
  }
  return v;
}

/** An optional AbortSignal. */
export function signalArg(v: unknown, what: string): AbortSignal | undefined {
  if (v === undefined || v instanceof AbortSignal) return v;
  return invalid(`${what}: signal must be an AbortSignal, got ${shown(v)}`);
}

/** An optional limit in milliseconds: a positive finite number. */
export function timeoutArg(v: unknown, what: string): number | undefined {
  if (v === undefined) return v;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    invalid(`${what}: timeoutMs must be a positive number of milliseconds, got ${shown(v)}`);
  return v;
}

/** An optional log index (`minIndex`): a non-negative safe integer. */
export function logIndexArg(v: unknown, what: string): number | undefined {
  if (v === undefined) return v;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    invalid(`${what}: minIndex must be a log index (a whole number >= 0), got ${shown(v)}`);
  return v;
}

/** The `timeoutMs` of `waitUntilHealthy(options)`: default 30 s. */
export function healthTimeoutArg(options: { timeoutMs?: number } | undefined): number {
  return (
    timeoutArg(optionsArg(options, ['timeoutMs'], 'waitUntilHealthy')?.timeoutMs, 'waitUntilHealthy') ??
    30_000
  );
}
