/**
 * The dashboard password: an Argon2id hash in the PHC string format
 * (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`, salt and hash in unpadded standard base64),
 * as the Rust project stores it in `password_dashboard` (there base64-encoded once more; both
 * spellings are accepted).
 *
 * The hash comes from a config file, which a hostile or careless hand may write: its cost
 * parameters are bounded (`PHC_BOUNDS`), so one verification cannot take minutes of CPU or
 * gigabytes of memory. Verification runs in slices on the event loop (`asyncTick`), so the node's
 * heartbeats go on while a login is checked, and compares in constant time.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { argon2idAsync } from '@noble/hashes/argon2.js';

export interface PhcArgon2id {
  /** Memory in KiB. */
  readonly memoryKib: number;
  readonly iterations: number;
  readonly parallelism: number;
  readonly salt: Uint8Array;
  readonly hash: Uint8Array;
}

/**
 * What a hash may ask for. The largest (64 MiB, and memory × iterations at most 256 Mi·passes)
 * takes about 1.5 s in this JavaScript implementation; the Rust project's own hashes
 * (m=32768, t=2, p=2) and OWASP's recommendation (m=19456, t=2, p=1) fit.
 */
export const PHC_BOUNDS = {
  memoryKibMin: 1024,
  memoryKibMax: 65_536,
  iterationsMax: 10,
  parallelismMax: 8,
  /** memoryKib × iterations: the work of one verification. */
  costMax: 262_144,
  saltBytesMin: 8,
  saltBytesMax: 64,
  hashBytesMin: 16,
  hashBytesMax: 64,
} as const;

/** What `hiqlite hash-password` writes: OWASP's recommendation for Argon2id (about 0.3 s here). */
export const PHC_DEFAULTS = { memoryKib: 19_456, iterations: 2, parallelism: 1 } as const;

/** Longest password accepted, in bytes of UTF-8 (a bound on what one login may hash). */
export const PASSWORD_BYTES_MAX = 1024;

/** A PHC string, or a reason it is not an acceptable one (the reason never quotes the value). */
export type PhcParse = { ok: true; value: PhcArgon2id } | { ok: false; reason: string };

export function parsePhc(text: string): PhcParse {
  const phc = text.startsWith('$') ? text : fromBase64Wrapped(text);
  if (phc === null)
    return { ok: false, reason: 'must be an Argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)' };
  const parts = phc.split('$');
  // ['', 'argon2id', 'v=19', 'm=..,t=..,p=..', salt, hash]
  if (parts.length !== 6 || parts[0] !== '')
    return { ok: false, reason: 'must have the form $argon2id$v=19$m=…,t=…,p=…$salt$hash' };
  const [, alg, version, params, saltText, hashText] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (alg !== 'argon2id') return { ok: false, reason: `must be an argon2id hash, not ${short(alg)}` };
  if (version !== 'v=19') return { ok: false, reason: 'must be Argon2 version 19 (v=19)' };
  const m = /^m=(\d{1,9}),t=(\d{1,9}),p=(\d{1,9})$/.exec(params);
  if (m === null) return { ok: false, reason: 'parameters must be m=<KiB>,t=<iterations>,p=<lanes>' };
  const memoryKib = Number(m[1]);
  const iterations = Number(m[2]);
  const parallelism = Number(m[3]);
  const salt = fromB64(saltText);
  const hash = fromB64(hashText);
  const b = PHC_BOUNDS;
  if (memoryKib < b.memoryKibMin || memoryKib > b.memoryKibMax)
    return {
      ok: false,
      reason: `memory m=${memoryKib} must be from ${b.memoryKibMin} to ${b.memoryKibMax} KiB`,
    };
  if (iterations < 1 || iterations > b.iterationsMax)
    return { ok: false, reason: `iterations t=${iterations} must be from 1 to ${b.iterationsMax}` };
  if (parallelism < 1 || parallelism > b.parallelismMax)
    return { ok: false, reason: `parallelism p=${parallelism} must be from 1 to ${b.parallelismMax}` };
  if (memoryKib < 8 * parallelism)
    return { ok: false, reason: 'memory must be at least 8 KiB per lane (Argon2)' };
  if (memoryKib * iterations > b.costMax)
    return {
      ok: false,
      reason: `m × t = ${memoryKib * iterations} exceeds ${b.costMax}: one login would take too long`,
    };
  if (salt === null || salt.length < b.saltBytesMin || salt.length > b.saltBytesMax)
    return { ok: false, reason: `the salt must be ${b.saltBytesMin} to ${b.saltBytesMax} bytes of base64` };
  if (hash === null || hash.length < b.hashBytesMin || hash.length > b.hashBytesMax)
    return { ok: false, reason: `the hash must be ${b.hashBytesMin} to ${b.hashBytesMax} bytes of base64` };
  return { ok: true, value: { memoryKib, iterations, parallelism, salt, hash } };
}

export function formatPhc(p: PhcArgon2id): string {
  const params = `m=${p.memoryKib},t=${p.iterations},p=${p.parallelism}`;
  return `$argon2id$v=19$${params}$${toB64(p.salt)}$${toB64(p.hash)}`;
}

/** A new PHC string for `password` (16 random bytes of salt, 32 bytes of hash). */
export async function hashPassword(
  password: string,
  cost: { memoryKib: number; iterations: number; parallelism: number } = PHC_DEFAULTS,
): Promise<string> {
  const salt = new Uint8Array(randomBytes(16));
  const hash = await derive(password, salt, cost, 32);
  const phc = formatPhc({ ...cost, salt, hash });
  // Whatever we write, we must accept again (bounds included).
  if (!parsePhc(phc).ok) throw new RangeError('hash-password: the cost parameters are out of bounds');
  return phc;
}

/** Whether `password` matches `phc`; constant-time in the comparison of the hashes. */
export async function verifyPassword(password: string, phc: PhcArgon2id): Promise<boolean> {
  if (Buffer.byteLength(password, 'utf8') > PASSWORD_BYTES_MAX) return false;
  const got = await derive(password, phc.salt, phc, phc.hash.length);
  return got.length === phc.hash.length && timingSafeEqual(got, phc.hash);
}

async function derive(
  password: string,
  salt: Uint8Array,
  cost: { memoryKib: number; iterations: number; parallelism: number },
  dkLen: number,
): Promise<Uint8Array> {
  return argon2idAsync(new TextEncoder().encode(password), salt, {
    m: cost.memoryKib,
    t: cost.iterations,
    p: cost.parallelism,
    dkLen,
    // Yield to the event loop every 10 ms: Raft heartbeats share this thread.
    asyncTick: 10,
    maxmem: (PHC_BOUNDS.memoryKibMax + 1024) * 1024,
  });
}

/** The Rust project's config holds base64(PHC string). */
function fromBase64Wrapped(text: string): string | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length > 1024) return null;
  const decoded = Buffer.from(text, 'base64').toString('utf8');
  return decoded.startsWith('$argon2') ? decoded.trim() : null;
}

function fromB64(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]{1,200}$/.test(text) || text.length % 4 === 1) return null;
  return new Uint8Array(Buffer.from(text, 'base64'));
}

function toB64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64').replace(/=+$/, '');
}

function short(s: string): string {
  return JSON.stringify(s.length > 20 ? `${s.slice(0, 20)}…` : s);
}
