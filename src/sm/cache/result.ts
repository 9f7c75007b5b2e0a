/**
 * Results of applied cache commands. Plain data (structured-clone and msgpack friendly): every
 * replica computes the same result for the same entry, and a session stores it for exactly-once
 * replies (so it is part of the snapshot).
 */
import type { CacheErrorInfo } from './errors.js';

export type LockAcquireOutcome =
  | {
      readonly type: 'lockAcquire';
      readonly state: 'granted';
      readonly token: number;
      readonly expiresAtMs: number;
    }
  /** 1-based place in the FIFO queue. */
  | { readonly type: 'lockAcquire'; readonly state: 'queued'; readonly position: number }
  /** `waitMs: 0` (a try-lock) and the lock is held. */
  | { readonly type: 'lockAcquire'; readonly state: 'busy' };

export type CacheOutcome =
  | { readonly type: 'put' }
  | { readonly type: 'delete'; readonly deleted: boolean }
  | { readonly type: 'clear'; readonly removed: number }
  | { readonly type: 'clearAll'; readonly removed: number }
  | { readonly type: 'get'; readonly value: Uint8Array | null }
  | { readonly type: 'getRemove'; readonly value: Uint8Array | null }
  | { readonly type: 'replace'; readonly previous: Uint8Array | null }
  | { readonly type: 'putIfAbsent'; readonly stored: boolean }
  /** `more`: expired entries remain (the batch limit was reached). */
  | { readonly type: 'expire'; readonly removed: number; readonly more: boolean }
  | { readonly type: 'counterAdd'; readonly value: bigint }
  | { readonly type: 'counterSet' }
  | { readonly type: 'counterGet'; readonly value: bigint | null }
  | { readonly type: 'counterDelete'; readonly deleted: boolean }
  | { readonly type: 'counterClear'; readonly removed: number }
  | { readonly type: 'notify'; readonly seq: number; readonly index: number }
  | LockAcquireOutcome
  | { readonly type: 'lockRenew'; readonly renewed: boolean; readonly expiresAtMs: number | null }
  | { readonly type: 'lockRelease'; readonly released: boolean }
  | { readonly type: 'lockCancel'; readonly removed: 'waiter' | 'holder' | 'none' }
  /** How many of the waiters named were still queued (their wait lease renewed). */
  | { readonly type: 'lockWaitRenew'; readonly renewed: number };

export type CacheResult =
  | { readonly ok: true; readonly value: CacheOutcome }
  | { readonly ok: false; readonly error: CacheErrorInfo };

/** The result of one log entry: a command's, or a batch's (one per command; one error if malformed). */
export type CacheEntryResult = CacheResult | readonly CacheResult[];

/** Accounted size of a result a session keeps (its byte arrays and message, plus a fixed cost). */
export function resultBytes(r: CacheResult): number {
  const fixed = 64;
  if (!r.ok) return fixed + r.error.message.length * 2;
  const v = r.value;
  if (v.type === 'get' || v.type === 'getRemove') return fixed + (v.value?.length ?? 0);
  if (v.type === 'replace') return fixed + (v.previous?.length ?? 0);
  return fixed;
}

/** A result read back from msgpack (a snapshot): byte arrays become plain Uint8Arrays again. */
export function reviveResult(r: CacheResult): CacheResult {
  if (!r.ok) return r;
  const v = r.value;
  if ((v.type === 'get' || v.type === 'getRemove') && v.value !== null) {
    return { ok: true, value: { type: v.type, value: new Uint8Array(v.value) } };
  }
  if (v.type === 'replace' && v.previous !== null) {
    return { ok: true, value: { type: v.type, previous: new Uint8Array(v.previous) } };
  }
  return r;
}
