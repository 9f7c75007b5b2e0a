/**
 * The dashboard's security parts one by one: the Argon2id PHC string (the reference vector,
 * bounds a hostile config cannot pass), the login rate limits, sessions (expiry, bound, CSRF) and
 * the cookie's flags.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clearedCookie, cookieName, sessionCookie } from '../../src/dashboard/http.js';
import { LoginLimiter } from '../../src/dashboard/login-limiter.js';
import { MetricsHistory } from '../../src/dashboard/metrics-history.js';
import {
  formatPhc,
  hashPassword,
  PHC_BOUNDS,
  parsePhc,
  verifyPassword,
} from '../../src/dashboard/password.js';
import { csrfMatches, SessionStore } from '../../src/dashboard/sessions.js';
import { pageable } from '../../src/dashboard/sql-console.js';
import { REFERENCE_PASSWORD, REFERENCE_PHC } from './helpers.js';

describe('password_dashboard: Argon2id PHC strings', () => {
  test('the reference implementation test vector verifies, a wrong password does not', async () => {
    const p = parsePhc(REFERENCE_PHC);
    assert.ok(p.ok);
    assert.deepEqual([p.value.memoryKib, p.value.iterations, p.value.parallelism], [65536, 2, 1]);
    assert.equal(formatPhc(p.value), REFERENCE_PHC);
    assert.equal(await verifyPassword(REFERENCE_PASSWORD, p.value), true);
    assert.equal(await verifyPassword('Password', p.value), false);
    assert.equal(await verifyPassword('', p.value), false);
  });

  test('base64 of a PHC string (as the Rust project stores it) is accepted', () => {
    const wrapped = Buffer.from(REFERENCE_PHC).toString('base64');
    const p = parsePhc(wrapped);
    assert.ok(p.ok);
    assert.equal(formatPhc(p.value), REFERENCE_PHC);
  });

  test('hashPassword writes a string that parses and verifies', async () => {
    const phc = await hashPassword('correct horse', { memoryKib: 1024, iterations: 1, parallelism: 1 });
    assert.match(phc, /^\$argon2id\$v=19\$m=1024,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    const p = parsePhc(phc);
    assert.ok(p.ok);
    assert.equal(await verifyPassword('correct horse', p.value), true);
    assert.equal(await verifyPassword('correct horsE', p.value), false);
    // Two hashes of one password differ (random salt).
    assert.notEqual(
      phc,
      await hashPassword('correct horse', { memoryKib: 1024, iterations: 1, parallelism: 1 }),
    );
  });

  test('a hash asking for too much memory or time is refused before any verification', () => {
    const salt = 'c29tZXNhbHQ';
    const hash = 'CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc';
    const refused = (params: string, s = salt, h = hash) => {
      const r = parsePhc(`$argon2id$v=19$${params}$${s}$${h}`);
      assert.equal(r.ok, false, params);
      return r.ok ? '' : r.reason;
    };
    assert.match(refused(`m=${PHC_BOUNDS.memoryKibMax + 1},t=1,p=1`), /memory/);
    assert.match(refused('m=4194304,t=1,p=1'), /memory/);
    assert.match(refused('m=65536,t=11,p=1'), /iterations/);
    assert.match(refused('m=65536,t=5,p=1'), /m × t/);
    assert.match(refused('m=65536,t=1,p=9'), /parallelism/);
    assert.match(refused('m=512,t=1,p=1'), /memory/);
    assert.match(refused('m=999999999999,t=1,p=1'), /parameters/);
    assert.match(refused('m=65536,t=1,p=1', 'c2FsdA'), /salt/);
    assert.match(refused('m=65536,t=1,p=1', salt, 'AAAA'), /hash/);
    assert.match(refused('m=65536,t=1,p=1,keyid=abc'), /parameters/);
    const parsed = (s: string) => parsePhc(s).ok;
    assert.equal(parsed(REFERENCE_PHC.replace('argon2id', 'argon2i')), false);
    assert.equal(parsed(REFERENCE_PHC.replace('v=19', 'v=16')), false);
    assert.equal(parsed('hunter2'), false);
    assert.equal(parsed(''), false);
    assert.equal(parsed(`${REFERENCE_PHC}$extra`), false);
  });

  test('a refusal never quotes the hash', () => {
    const r = parsePhc(REFERENCE_PHC.replace('m=65536', 'm=9999999'));
    assert.ok(!r.ok);
    assert.ok(!r.reason.includes('CTFhFdXP'), r.reason);
  });

  test('an overlong password is refused without hashing', async () => {
    const p = parsePhc(REFERENCE_PHC);
    assert.ok(p.ok);
    assert.equal(await verifyPassword('x'.repeat(1025), p.value), false);
  });
});

describe('login rate limits', () => {
  const limits = {
    perAddressBurst: 3,
    perAddressRefillMs: 10_000,
    globalBurst: 5,
    globalRefillMs: 1_000,
    addressesMax: 4,
  };

  test('an address gets its burst, then one attempt per refill interval', () => {
    let t = 0;
    const l = new LoginLimiter(limits, () => t);
    for (let i = 0; i < 3; i++) assert.deepEqual(l.attempt('a'), { ok: true });
    const v = l.attempt('a');
    assert.equal(v.ok, false);
    assert.ok(!v.ok && v.scope === 'address' && v.retryAfterMs > 9_000 && v.retryAfterMs <= 10_000);
    t += 10_000;
    assert.deepEqual(l.attempt('a'), { ok: true });
    assert.equal(l.attempt('a').ok, false);
  });

  test('many addresses together are bounded by the global bucket', () => {
    let t = 0;
    const l = new LoginLimiter(limits, () => t);
    for (let i = 0; i < 5; i++) assert.equal(l.attempt(`x${i}`).ok, true);
    const v = l.attempt('fresh');
    assert.ok(!v.ok && v.scope === 'global');
    t += 1_000;
    assert.equal(l.attempt('fresh').ok, true);
  });

  test('the table of addresses is bounded: the least recently seen is forgotten', () => {
    let t = 0;
    const l = new LoginLimiter({ ...limits, globalBurst: 1000 }, () => t);
    for (let i = 0; i < 100; i++) {
      l.attempt(`10.0.0.${i}`);
      t += 1;
    }
    assert.equal(l.trackedAddresses, 4);
  });
});

describe('sessions', () => {
  const limits = { sessionsMax: 3, idleMs: 1_000, lifetimeMs: 5_000 };

  test('a session lives while used, ends after idleMs without use and after lifetimeMs in any case', () => {
    let t = 0;
    const s = new SessionStore(limits, () => t);
    const a = s.create();
    for (let i = 0; i < 4; i++) {
      t += 900;
      assert.notEqual(s.use(a.token), null, `use ${i}`);
    }
    t += 900; // 4500: still within the lifetime
    assert.notEqual(s.use(a.token), null);
    t += 600; // 5100: past the lifetime though used 600 ms ago
    assert.equal(s.use(a.token), null);
    const b = s.create();
    t += 1_000;
    assert.equal(s.use(b.token), null, 'idle');
  });

  test('at most sessionsMax sessions: a new one ends the least recently used', () => {
    let t = 0;
    const s = new SessionStore(limits, () => t);
    const [a, b, c] = [s.create(), s.create(), s.create()];
    t += 1;
    s.use(a.token);
    const d = s.create();
    assert.equal(s.size, 3);
    assert.equal(s.use(b.token), null, 'b was the least recently used');
    for (const x of [a, c, d]) assert.notEqual(s.use(x.token), null);
  });

  test('tokens are random, unknown and malformed ones find nothing, logout ends a session', () => {
    const s = new SessionStore(limits, () => 0);
    const a = s.create();
    const b = s.create();
    assert.notEqual(a.token, b.token);
    assert.notEqual(a.session.csrfToken, b.session.csrfToken);
    assert.ok(a.token.length >= 43);
    assert.equal(s.use(null), null);
    assert.equal(s.use(''), null);
    assert.equal(s.use(`${a.token}x`), null);
    assert.equal(s.use('x'.repeat(10_000)), null);
    s.end(a.token);
    assert.equal(s.use(a.token), null);
    assert.notEqual(s.use(b.token), null);
  });

  test('the CSRF token must match exactly', () => {
    const s = new SessionStore(limits, () => 0);
    const { session } = s.create();
    assert.equal(csrfMatches(session, session.csrfToken), true);
    assert.equal(csrfMatches(session, undefined), false);
    assert.equal(csrfMatches(session, ''), false);
    assert.equal(csrfMatches(session, `${session.csrfToken.slice(0, -1)}A`), session.csrfToken.endsWith('A'));
    assert.equal(csrfMatches(session, `${session.csrfToken}é`), false);
  });
});

describe('the session cookie', () => {
  test('by default: __Host- prefix, Secure, HttpOnly, SameSite=Strict, Path=/', () => {
    const c = sessionCookie({ insecure: false }, 'tok');
    assert.equal(cookieName({ insecure: false }), '__Host-hiqlite-session');
    assert.equal(c, '__Host-hiqlite-session=tok; Path=/; HttpOnly; SameSite=Strict; Secure');
    assert.match(
      clearedCookie({ insecure: false }),
      /^__Host-hiqlite-session=; Path=\/; Max-Age=0; .*Secure/,
    );
  });

  test('insecure_cookie: no prefix and no Secure, still HttpOnly and SameSite=Strict', () => {
    const c = sessionCookie({ insecure: true }, 'tok');
    assert.equal(c, 'hiqlite-session=tok; Path=/; HttpOnly; SameSite=Strict');
  });
});

describe('metrics history', () => {
  test('a ring of the last `capacity` one-second samples, oldest first', () => {
    const h = new MetricsHistory(3);
    for (let s = 1; s <= 5; s++) {
      for (let i = 0; i < s; i++) h.recordWrite(1);
      h.recordRead();
      h.sample(s * 1000, s * 10);
    }
    const x = h.series();
    assert.deepEqual(x.writesPerSec, [3, 4, 5]);
    assert.deepEqual(x.readsPerSec, [1, 1, 1]);
    assert.deepEqual(x.applyLag, [30, 40, 50]);
    assert.equal(x.endWallMs, 5000);
  });

  test('p50 and p99 of one second, within one bucket (19 %) above the true value; null without writes', () => {
    const h = new MetricsHistory(2);
    for (let i = 1; i <= 100; i++) h.recordWrite(i); // 1..100 ms
    h.sample(1, 0);
    h.sample(2, 0);
    const x = h.series();
    const [p50, p99] = [x.latencyP50Ms[0] as number, x.latencyP99Ms[0] as number];
    assert.ok(p50 >= 50 && p50 <= 50 * 1.19, `p50 ${p50}`);
    assert.ok(p99 >= 99 && p99 <= 99 * 1.19, `p99 ${p99}`);
    assert.equal(x.latencyP50Ms[1], null);
  });
});

test('the console pages SELECT, WITH and VALUES (after comments), and runs other reads whole', () => {
  for (const sql of [
    'SELECT 1',
    '  with x as (select 1) select * from x',
    '-- c\n/* d */ VALUES (1)',
    'select*from t',
  ])
    assert.equal(pageable(sql), true, sql);
  for (const sql of ['PRAGMA table_info(t)', 'EXPLAIN SELECT 1', 'selector', '', '/* unterminated'])
    assert.equal(pageable(sql), false, sql);
});
