/**
 * Login attempts, rate-limited twice: per client address (one guesser cannot try many
 * passwords) and globally (many addresses together cannot either, and cannot keep the node's CPU
 * busy with Argon2id). Token buckets: `burst` attempts at once, then one per `refillMs`.
 *
 * The per-address table holds at most `addressesMax` entries; beyond it, the address seen least
 * recently is forgotten (its bucket starts full again, which the global bucket still bounds).
 * An "address" is what one guesser cannot cheaply multiply (`addressKey`): an IPv4 address (an
 * IPv4-mapped IPv6 one too), or the /64 of an IPv6 address, since one host is commonly given a
 * whole /64 and could otherwise take a fresh bucket for every attempt.
 * An address that logged in before (the last `knownMax` such addresses) is held to its own
 * bucket only: many addresses draining the global bucket (a dozen guessing once a second) locked
 * the administrator out too; from an address it used before, it now gets in.
 * Time comes from `now` (monotonic milliseconds), so tests drive it.
 */
import { assert } from '../lib/assert.js';

export interface LoginLimits {
  readonly perAddressBurst: number;
  readonly perAddressRefillMs: number;
  readonly globalBurst: number;
  readonly globalRefillMs: number;
  readonly addressesMax: number;
  /** Addresses remembered as having logged in (they skip the global bucket). */
  readonly knownMax?: number;
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
  /** Addresses (addressKey) that logged in, least recent first. */
  private readonly known = new Set<string>();

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
    const key = addressKey(address);
    const mine = this.bucketOf(key, t);
    refill(mine, t, l.perAddressBurst, l.perAddressRefillMs);
    refill(this.global, t, l.globalBurst, l.globalRefillMs);
    if (mine.tokens < 1)
      return { ok: false, retryAfterMs: wait(mine, t, l.perAddressRefillMs), scope: 'address' };
    const known = this.known.has(key);
    if (!known && this.global.tokens < 1)
      return { ok: false, retryAfterMs: wait(this.global, t, l.globalRefillMs), scope: 'global' };
    mine.tokens -= 1;
    if (!known) this.global.tokens -= 1;
    return { ok: true };
  }

  /** `address` proved the password: later attempts from it skip the global bucket. */
  succeeded(address: string): void {
    const key = addressKey(address);
    this.known.delete(key);
    this.known.add(key);
    if (this.known.size > (this.limits.knownMax ?? 1024)) {
      const oldest = this.known.values().next().value;
      if (oldest !== undefined) this.known.delete(oldest);
    }
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

/**
 * The rate limit's key of a client address: IPv4 as it is (`::ffff:a.b.c.d` is `a.b.c.d`), IPv6
 * by its first 64 bits (`2001:db8:1:2::/64`). Anything else (not an IP address) is its own key.
 */
export function addressKey(address: string): string {
  const a = address.toLowerCase();
  const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped?.[1] !== undefined) return mapped[1];
  if (!a.includes(':')) return a;
  const bare = a.split('%')[0] ?? a;
  const halves = bare.split('::');
  if (halves.length > 2) return a;
  const parts = (h: string | undefined) => (h === undefined || h === '' ? [] : h.split(':'));
  const head = parts(halves[0]);
  const tail = parts(halves[1]);
  // An embedded IPv4 address (`::1.2.3.4`) is the last two groups.
  const width = (g: string[]) => g.reduce((n, x) => n + (x.includes('.') ? 2 : 1), 0);
  const missing = 8 - width(head) - width(tail);
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return a;
  const groups = [...head, ...Array<string>(missing).fill('0'), ...tail];
  const prefix = groups.slice(0, 4);
  if (!prefix.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return a;
  return `${prefix.map((g) => Number.parseInt(g, 16).toString(16)).join(':')}::/64`;
}
