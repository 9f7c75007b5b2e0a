/**
 * Dashboard sessions, held by the node that created them (a session is valid on that node's API
 * port only). The browser holds a random 256-bit token in an HttpOnly cookie; the node keeps only
 * its SHA-256, so a heap dump does not hand out live sessions, and looks it up by that digest.
 *
 * Each session has its own CSRF token, which the page reads from the JSON of `/session` and sends
 * back in the `X-CSRF-Token` header of every state-changing request: a page of another site can
 * make the browser send the cookie (not with SameSite=Strict, but belt and braces) but cannot read
 * the token.
 *
 * A session ends `idleMs` after its last use or `lifetimeMs` after login, whichever comes first,
 * or at logout. At most `sessionsMax` live at once: a new login ends the one used least recently.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { assert } from '../lib/assert.js';

export interface SessionLimits {
  readonly sessionsMax: number;
  readonly idleMs: number;
  readonly lifetimeMs: number;
}

export const SESSION_LIMITS_DEFAULT: SessionLimits = {
  sessionsMax: 64,
  idleMs: 30 * 60_000,
  lifetimeMs: 12 * 3_600_000,
};

export interface Session {
  readonly csrfToken: string;
  readonly createdMs: number;
  lastUsedMs: number;
}

export class SessionStore {
  /** By SHA-256 of the cookie token; insertion order is recency order. */
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly limits: SessionLimits,
    private readonly now: () => number,
  ) {
    assert(limits.sessionsMax >= 1 && limits.idleMs > 0 && limits.lifetimeMs > 0, 'session limits');
  }

  get size(): number {
    return this.sessions.size;
  }

  /** A new session: the token for the cookie, and the session. */
  create(): { token: string; session: Session } {
    this.purgeExpired();
    if (this.sessions.size >= this.limits.sessionsMax) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    const token = randomBytes(32).toString('base64url');
    const t = this.now();
    const session: Session = {
      csrfToken: randomBytes(32).toString('base64url'),
      createdMs: t,
      lastUsedMs: t,
    };
    this.sessions.set(digest(token), session);
    assert(this.sessions.size <= this.limits.sessionsMax, 'sessions are bounded');
    return { token, session };
  }

  /** The live session of `token` (its use is recorded), or null. */
  use(token: string | null): Session | null {
    if (token === null || token.length === 0 || token.length > 128) return null;
    const key = digest(token);
    const s = this.sessions.get(key);
    if (s === undefined) return null;
    const t = this.now();
    if (this.expired(s, t)) {
      this.sessions.delete(key);
      return null;
    }
    s.lastUsedMs = t;
    this.sessions.delete(key);
    this.sessions.set(key, s);
    return s;
  }

  end(token: string | null): void {
    if (token !== null) this.sessions.delete(digest(token));
  }

  /** When `s` ends if it is not used again (monotonic ms). */
  expiresAtMs(s: Session): number {
    return Math.min(s.lastUsedMs + this.limits.idleMs, s.createdMs + this.limits.lifetimeMs);
  }

  private expired(s: Session, t: number): boolean {
    return t >= this.expiresAtMs(s);
  }

  private purgeExpired(): void {
    const t = this.now();
    for (const [k, s] of this.sessions) if (this.expired(s, t)) this.sessions.delete(k);
  }
}

/** Whether `given` (a request header) is the session's CSRF token; constant time. */
export function csrfMatches(session: Session, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(session.csrfToken);
  return a.length === b.length && timingSafeEqual(a, b);
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
