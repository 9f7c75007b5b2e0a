/**
 * Limits of the cache state machine. Every one bounds memory or the work of one command; full
 * means a typed error (backpressure), never unbounded growth. They decide the outcome of
 * commands (a put refused here is applied elsewhere otherwise), so they are replicated
 * behaviour: every node of a cluster must use the same values.
 */
import { HiqliteError } from '../../lib/errors.js';

export interface CacheLimits {
  /** UTF-8 bytes of a cache key, counter key, lock key, or a cache / counter / channel name. */
  readonly keyBytesMax: number;
  /** Bytes of a cache value or a notification payload. */
  readonly valueBytesMax: number;
  /** UTF-8 bytes of a lock holder id or a session client id. */
  readonly holderIdBytesMax: number;
  /** Entries of one cache, or keys of one counter group. */
  readonly entriesPerCacheMax: number;
  /** Caches and counter groups together (a name that holds nothing is dropped). */
  readonly cachesMax: number;
  /** Accounted bytes of every cache entry and counter (key + value + a fixed overhead). */
  readonly bytesMax: number;
  /** Keys with a lock held or waited for. */
  readonly locksMax: number;
  /** Waiters queued on one lock key. */
  readonly lockWaitersPerKeyMax: number;
  /** Notifications held for resuming listeners (the ring), by count… */
  readonly notificationsRingMax: number;
  /** …and by payload bytes. */
  readonly notificationsRingBytesMax: number;
  /** Exactly-once sessions remembered. */
  readonly sessionsMax: number;
  /** A session idle for longer (in log time) is forgotten. */
  readonly sessionTtlMs: number;
  /** Bytes of remembered session results; over it the oldest results are dropped (not their seq). */
  readonly sessionResultsBytesMax: number;
  /** Expired entries physically removed by one `expire` command (the rest by the next one). */
  readonly expireBatchMax: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export const DEFAULT_CACHE_LIMITS: CacheLimits = {
  keyBytesMax: 4 * KiB,
  valueBytesMax: 1 * MiB,
  holderIdBytesMax: 256,
  entriesPerCacheMax: 1_000_000,
  cachesMax: 1024,
  bytesMax: 512 * MiB,
  locksMax: 100_000,
  lockWaitersPerKeyMax: 1024,
  notificationsRingMax: 10_000,
  notificationsRingBytesMax: 16 * MiB,
  sessionsMax: 10_000,
  sessionTtlMs: 60 * 60 * 1000,
  sessionResultsBytesMax: 64 * MiB,
  expireBatchMax: 10_000,
};

/** Inclusive bounds of every limit (the node's `cache_*` config keys use them too). */
export const CACHE_LIMIT_BOUNDS: Record<keyof CacheLimits, readonly [number, number]> = {
  keyBytesMax: [1, 64 * KiB],
  valueBytesMax: [0, 32 * MiB],
  holderIdBytesMax: [1, 64 * KiB],
  entriesPerCacheMax: [1, 100_000_000],
  cachesMax: [1, 1_000_000],
  bytesMax: [1, 2 ** 48],
  locksMax: [1, 100_000_000],
  lockWaitersPerKeyMax: [1, 1_000_000],
  notificationsRingMax: [0, 10_000_000],
  notificationsRingBytesMax: [0, 2 ** 40],
  sessionsMax: [1, 10_000_000],
  sessionTtlMs: [1, 365 * 24 * 60 * 60 * 1000],
  sessionResultsBytesMax: [0, 2 ** 40],
  expireBatchMax: [1, 10_000_000],
};

/** Defaults filled in and every value checked; names each key at fault. */
export function resolveCacheLimits(partial: Partial<CacheLimits> = {}): CacheLimits {
  const out: Record<string, number> = { ...DEFAULT_CACHE_LIMITS };
  const faults: string[] = [];
  for (const [key, value] of Object.entries(partial)) {
    if (value === undefined) continue;
    const bounds = CACHE_LIMIT_BOUNDS[key as keyof CacheLimits];
    if (bounds === undefined) {
      faults.push(`unknown cache limit '${key}'`);
      continue;
    }
    if (!Number.isSafeInteger(value) || value < bounds[0] || value > bounds[1]) {
      faults.push(`${key} must be an integer in [${bounds[0]}, ${bounds[1]}], got ${String(value)}`);
      continue;
    }
    out[key] = value;
  }
  if (faults.length > 0) {
    throw new HiqliteError('HQL_INVALID_CONFIG', `invalid cache limits: ${faults.join('; ')}`, {
      retryable: false,
    });
  }
  return out as unknown as CacheLimits;
}
