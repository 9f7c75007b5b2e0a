/**
 * Dashboard login guessing from many addresses: the per-address buckets cannot be multiplied
 * (many loopback source addresses over real HTTP, and an IPv6 host rotating through its /64), the
 * global bucket bounds every address together (and so the Argon2id work), and the table of
 * addresses stays bounded whatever number of them a flood uses.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, test } from 'node:test';
import { addressKey, LoginLimiter } from '../../src/dashboard/login-limiter.js';
import { serveDashboard } from './helpers.js';

/** POST /dashboard/api/login from the loopback source address `from` (127.0.0.x are all local on Linux). */
function loginFrom(
  url: string,
  from: string,
  password: string,
): Promise<{ status: number; code: string | undefined }> {
  const u = new URL(url);
  const body = JSON.stringify({ password });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: '/dashboard/api/login',
        method: 'POST',
        localAddress: from,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString('utf8');
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            code: (JSON.parse(text) as { error?: { code?: string } }).error?.code,
          }),
        );
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error('no answer within 20 s')));
    req.on('error', reject);
    req.end(body);
  });
}

describe('login guessing from many addresses', () => {
  test('over HTTP, 40 source addresses together get the global burst and no more, the right password included', async () => {
    const s = await serveDashboard({
      limits: {
        login: {
          perAddressBurst: 5,
          perAddressRefillMs: 60_000,
          globalBurst: 10,
          // The manual clock does not move: no refill during the test.
          globalRefillMs: 60_000,
          addressesMax: 16,
        },
      },
    });
    try {
      const answers: number[] = [];
      for (let i = 2; i < 42; i++) {
        const r = await loginFrom(s.url, `127.0.0.${i}`, `guess-${i}`);
        answers.push(r.status);
        if (r.status === 429) assert.equal(r.code, 'HQL_OVERLOADED');
      }
      assert.deepEqual(
        answers,
        [...Array<number>(10).fill(401), ...Array<number>(30).fill(429)],
        'ten guesses checked, then every address refused',
      );
      // A fresh address with the right password waits too: the bucket is global.
      assert.equal((await loginFrom(s.url, '127.0.0.200', 'password')).status, 429);
      const limiter = (s.dashboard as unknown as { limiter: LoginLimiter }).limiter;
      assert.ok(limiter.trackedAddresses <= 16, `tracked ${limiter.trackedAddresses} addresses`);
      // Once the global bucket refills, the right password gets in.
      s.clock.advance(60_000);
      assert.equal((await loginFrom(s.url, '127.0.0.200', 'password')).status, 200);
      // The flood drains the global bucket again; the address that logged in before still gets
      // in (its own bucket allows it): a dozen guessers locked the administrator out for good.
      for (let i = 2; i < 20; i++) await loginFrom(s.url, `127.0.0.${i}`, `again-${i}`);
      assert.equal((await loginFrom(s.url, '127.0.0.201', 'password')).status, 429, 'a new address waits');
      assert.equal((await loginFrom(s.url, '127.0.0.200', 'password')).status, 200, 'a known one gets in');
      // Its own bucket still bounds it: a known address cannot guess beyond its burst (5; the
      // flood's addresses pushed its old bucket out of the table of 16, so it started full).
      const known: number[] = [];
      for (let i = 0; i < 6; i++) known.push((await loginFrom(s.url, '127.0.0.200', `guess-${i}`)).status);
      assert.deepEqual(known, [401, 401, 401, 401, 429, 429]);
    } finally {
      await s.close();
    }
  });

  test('an IPv6 host rotating through its /64 is one address; IPv4-mapped is its IPv4', () => {
    const l = new LoginLimiter(
      {
        perAddressBurst: 3,
        perAddressRefillMs: 60_000,
        globalBurst: 1000,
        globalRefillMs: 60_000,
        addressesMax: 100,
      },
      () => 0,
    );
    const allowed = (addresses: string[]) => addresses.filter((a) => l.attempt(a).ok).length;
    // 50 addresses of one /64: the burst of one address.
    assert.equal(
      allowed(Array.from({ length: 50 }, (_v, i) => `2001:db8:aa:bb::${(i + 1).toString(16)}`)),
      3,
    );
    // Another /64 has its own bucket.
    assert.equal(
      allowed(['2001:db8:aa:bc::1', '2001:db8:aa:bc::2', '2001:db8:aa:bc::3', '2001:db8:aa:bc::4']),
      3,
    );
    // The same IPv4 client seen as IPv4-mapped IPv6 shares its bucket.
    assert.equal(allowed(['10.1.2.3', '::ffff:10.1.2.3', '::FFFF:10.1.2.3', '10.1.2.3']), 3);
    assert.equal(addressKey('2001:0DB8:0000:0000:0001::'), '2001:db8:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(addressKey('unknown'), 'unknown');
  });

  test('a flood from 100,000 addresses: the table stays at its bound and the global bucket admits its burst only', () => {
    let t = 0;
    const l = new LoginLimiter(
      {
        perAddressBurst: 5,
        perAddressRefillMs: 12_000,
        globalBurst: 10,
        globalRefillMs: 2_000,
        addressesMax: 1000,
      },
      () => t,
    );
    let allowed = 0;
    for (let i = 0; i < 100_000; i++) {
      if (l.attempt(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`).ok) allowed++;
      // 100,000 attempts over 100 s of the limiter's clock.
      t += 1;
      assert.ok(l.trackedAddresses <= 1000);
    }
    // The burst, then one per 2 s over 100 s.
    assert.ok(allowed <= 10 + 50, `${allowed} attempts allowed`);
    assert.ok(allowed >= 10);
  });
});
