/**
 * Checks of what an application passes to the client API (embedded node and remote client
 * alike): a wrong type or range is HQL_INVALID_PARAMS naming the argument, thrown before anything
 * is encoded or sent. Without them the same mistakes surfaced as HQL_MALFORMED_COMMAND (meant
 * for bytes that do not decode), HQL_PROTOCOL (the remote client's own encoder), or were
 * accepted (a misspelled consistency read locally).
 */
import { closestKey } from '../lib/closest-key.js';
import { HiqliteError } from '../lib/errors.js';
import { namedParamsProblem } from '../lib/named-params.js';
import { isWellFormed } from '../lib/utf8.js';
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

/**
 * A name or key: a string UTF-8 can carry as it is (lib/utf8.ts: a lone surrogate would name the
 * same entry as U+FFFD); its length is the cluster's limit to check.
 */
export function stringArg(v: unknown, what: string, where = ''): string {
  if (typeof v !== 'string') invalid(`${where}${what} must be a string, got ${shown(v)}`);
  if (!isWellFormed(v))
    invalid(
      `${where}${what} holds a lone UTF-16 surrogate, which UTF-8 cannot carry (it would name the same entry as U+FFFD)`,
    );
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
 * Arguments past a method's last parameter (`...extra: []` in its signature, so TypeScript refuses
 * them too): refused with HQL_INVALID_PARAMS, never ignored (found from outside:
 * `entries({ consistency: 'linearizable' })` was a local read without a word, `execute(sql,
 * params, { timeoutMs })` ran without the timeout).
 */
export function noExtraArgs(extra: readonly unknown[], what: string, takes: string): void {
  if (extra.length > 0) throw extraArgsError(extra, what, takes);
}

/** The error of noExtraArgs, for a method that answers with a rejected promise. */
export function extraArgsError(extra: readonly unknown[], what: string, takes: string): HiqliteError {
  return new HiqliteError(
    'HQL_INVALID_PARAMS',
    `${what} takes ${takes}; ${extra.length} more argument${extra.length === 1 ? '' : 's'} given (${shown(extra[0])}${extra.length > 1 ? ', …' : ''})`,
    { retryable: false },
  );
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
        `${where}${what}: unknown option ${shown(key)}${didYouMean(key, allowed)} (${allowed.length === 0 ? 'it takes none' : `it takes ${allowed.join(', ')}`})`,
      );
  }
  return v;
}

function didYouMean(key: string, allowed: readonly string[]): string {
  const guess = closestKey(key, allowed);
  return guess === null ? '' : `, did you mean ${JSON.stringify(guess)}?`;
}

/** An optional AbortSignal. */
export function signalArg(v: unknown, what: string): AbortSignal | undefined {
  if (v === undefined || v instanceof AbortSignal) return v;
  return invalid(`${what}: signal must be an AbortSignal, got ${shown(v)}`);
}

/** An optional limit in milliseconds: a positive finite number. */
/**
 * The longest timeoutMs: what a timer can hold (about 24.8 days). Beyond it Node fires a timer
 * after 1 ms: a read with timeoutMs 3e9 failed HQL_TIMEOUT at once, "past its limit of
 * 3000000000 ms".
 */
export const TIMEOUT_MS_MAX = 2 ** 31 - 1;

export function timeoutArg(v: unknown, what: string): number | undefined {
  if (v === undefined) return v;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > TIMEOUT_MS_MAX)
    invalid(
      `${what}: timeoutMs must be a positive number of milliseconds up to ${TIMEOUT_MS_MAX} (about 24.8 days), got ${shown(v)}`,
    );
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

/** A statement's SQL: a string (the node parses it). */
export function sqlArg(v: unknown, what: string): string {
  if (typeof v !== 'string') invalid(`${what}: sql must be a string, got ${shown(v)}`);
  return v as string;
}

/** A statement's parameters: absent (undefined or null), an array (positional) or an object (named). */
export function paramsArg(v: unknown, what: string): void {
  if (v === undefined || v === null || Array.isArray(v)) return;
  if (typeof v !== 'object' || ArrayBuffer.isView(v))
    invalid(`${what}: params must be an array (positional) or an object (named), got ${shown(v)}`);
  // The same rules as the command decoder's for a write (lib/named-params.ts).
  const problem = namedParamsProblem(v);
  if (problem !== null) invalid(`${what}: ${problem}`);
}

/** A txn's statements: a non-empty array of [sql] or [sql, params]. */
export function statementsArg(v: unknown): void {
  if (!Array.isArray(v) || v.length === 0)
    invalid(`txn: statements must be a non-empty array of [sql, params?], got ${shown(v)}`);
  // Every index, holes included (forEach skips a hole: `[, ['SELECT 1']]` went on to a TypeError).
  for (let i = 0; i < v.length; i++) {
    const s: unknown = v[i];
    if (!Array.isArray(s) || s.length === 0 || s.length > 2)
      invalid(`txn: statements[${i}] must be [sql] or [sql, params], got ${shown(s)}`);
    sqlArg(s[0], `txn: statements[${i}]`);
    paramsArg(s[1], `txn: statements[${i}]`);
  }
}

/** Migrations given as a list: each { id, name, sql }, ids whole numbers from 1. */
export function migrationsArg(v: unknown): void {
  if (!Array.isArray(v))
    invalid(`migrate: migrations must be an array of { id, name, sql } or a folder path, got ${shown(v)}`);
  for (let i = 0; i < v.length; i++) {
    const m: unknown = v[i];
    const where = `migrate: migrations[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      invalid(`${where} must be { id, name, sql }, got ${shown(m)}`);
    const { id, name, sql } = m as { id?: unknown; name?: unknown; sql?: unknown };
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1)
      invalid(`${where}.id must be a whole number from 1, got ${shown(id)}`);
    if (typeof name !== 'string') invalid(`${where}.name must be a string, got ${shown(name)}`);
    if (typeof sql !== 'string') invalid(`${where}.sql must be a string, got ${shown(sql)}`);
  }
}
