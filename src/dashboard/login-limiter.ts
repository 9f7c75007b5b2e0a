/**
 * Login attempts, rate-limited twice: per client address (one guesser cannot try many
 * passwords) and globally (many addresses together cannot either, and cannot keep the node's CPU
 * busy with Argon2id). Token buckets: `burst` attempts at once, then one per `refillMs`.
 *
 * The per-address table holds at most `addressesMax` entries; beyond it, the address seen least
 * recently is forgotten (its bucket starts full again, which the global bucket still bounds).
 * Time comes from `now` (monotonic milliseconds), so tests drive it.
 */
import { assert } from '../lib/assert.js';

export interface LoginLimits {
  readonly perAddressBurst: number;
  readonly perAddressRefillMs: number;
  readonly globalBurst: number;
  readonly globalRefillMs: number;
  readonly addressesMax: number;
}

export const LOGIN_LIMITS_DEFAULT: LoginLimits = {
  // 5 attempts, then one every 12 s (5 a minute) per address.
  perAddressBurst: 5,
  perAddressRefillMs: 12_000,
  // 10 attempts, then one every 2 s, over every address together.
  globalBurst: 10,
  globalRefillMs: 2_000,
  addressesMax: 10_000,
};

interface Bucket {
  tokens: number;
  atMs: number;
}

export type LoginVerdict = { ok: true } | { ok: false; retryAfterMs: number; scope: 'address' | 'global' };

export class LoginLimiter {
  /** Insertion order is recency order: a touched address is moved to the end. */
  private readonly addresses = new Map<string, Bucket>();
  private readonly global: Bucket;

  constructor(
    private readonly limits: LoginLimits,
    private readonly now: () => number,
  ) {
    assert(limits.perAddressBurst >= 1 && limits.globalBurst >= 1, 'bursts are at least 1');
    assert(limits.perAddressRefillMs > 0 && limits.globalRefillMs > 0, 'refill intervals are positive');
    assert(limits.addressesMax >= 1, 'addressesMax is at least 1');
    this.global = { tokens: limits.globalBurst, atMs: now() };
  }

  get trackedAddresses(): number {
    return this.addresses.size;
  }

  /** Takes one attempt from `address`'s bucket and the global one, or says how long to wait. */
  attempt(address: string): LoginVerdict {
    const t = this.now();
    const l = this.limits;
    const mine = this.bucketOf(address, t);
    refill(mine, t, l.perAddressBurst, l.perAddressRefillMs);
    refill(this.global, t, l.globalBurst, l.globalRefillMs);
    if (mine.tokens < 1)
      return { ok: false, retryAfterMs: wait(mine, t, l.perAddressRefillMs), scope: 'address' };
    if (this.global.tokens < 1)
      return { ok: false, retryAfterMs: wait(this.global, t, l.globalRefillMs), scope: 'global' };
    mine.tokens -= 1;
    this.global.tokens -= 1;
    return { ok: true };
  }

  private bucketOf(address: string, t: number): Bucket {
    let b = this.addresses.get(address);
    if (b !== undefined) {
      this.addresses.delete(address);
    } else {
      b = { tokens: this.limits.perAddressBurst, atMs: t };
      if (this.addresses.size >= this.limits.addressesMax) {
        const oldest = this.addresses.keys().next().value;
        if (oldest !== undefined) this.addresses.delete(oldest);
      }
    }
    this.addresses.set(address, b);
    assert(this.addresses.size <= this.limits.addressesMax, 'tracked addresses are bounded');
    return b;
  }
}

function refill(b: Bucket, t: number, burst: number, refillMs: number): void {
  if (t <= b.atMs) return;
  const add = (t - b.atMs) / refillMs;
  b.tokens = Math.min(burst, b.tokens + add);
  b.atMs = t;
}

function wait(b: Bucket, t: number, refillMs: number): number {
  return Math.max(1, Math.ceil((1 - b.tokens) * refillMs - (t - b.atMs)));
}
