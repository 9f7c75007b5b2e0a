/**
 * Distributed locks of the cache state machine: FIFO waiters, leases in log time, fencing
 * tokens, stale tokens ignored, cancel, try-lock, limits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import type { LockGrant } from '../../src/sm/cache/locks.js';
import { chunksOf, Harness, snapshotBytes, T0 } from './cache-helpers.js';

/** The snapshot as a build before wait leases wrote it: each lock waiter has 3 items. */
function withoutWaitLeases(snapshot: Uint8Array): Uint8Array {
  const packr = new Packr({ useRecords: false, mapsAsObjects: true });
  const parts: Uint8Array[] = [snapshot.subarray(0, 8)];
  const view = new DataView(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength);
  for (let at = 8; at < snapshot.length - 4; ) {
    const n = view.getUint32(at);
    const record = packr.unpack(snapshot.subarray(at + 4, at + 4 + n)) as unknown[];
    at += 4 + n;
    if (record[0] === 'L') record[6] = (record[6] as unknown[][]).map((w) => w.slice(0, 3));
    const body = packr.pack(record);
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, body.length);
    parts.push(head, new Uint8Array(body));
  }
  const out = Buffer.concat(parts);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(out) >>> 0);
  return new Uint8Array(Buffer.concat([out, crc]));
}

function granted(h: Harness, key: string, holderId: string, nowMs: number, leaseMs = 10_000) {
  const r = h.ok({ type: 'lockAcquire', key, holderId, leaseMs }, nowMs);
  assert.equal(r.state, 'granted', `${holderId} should get ${key}`);
  return r as Extract<typeof r, { state: 'granted' }>;
}

describe('locks', () => {
  test('upstream dlock scenario: waiters are served first come, first served, per key', () => {
    const grants: LockGrant[] = [];
    const h = new Harness({ hooks: { onLockGranted: (g) => grants.push(g) } });
    const l1 = granted(h, '1', 'node1', T0);
    const l2 = granted(h, '2', 'node2', T0);
    assert.deepEqual(h.ok({ type: 'lockAcquire', key: '1', holderId: 'h1', leaseMs: 10_000 }, T0), {
      type: 'lockAcquire',
      state: 'queued',
      position: 1,
    });
    assert.equal(
      h.ok({ type: 'lockAcquire', key: '1', holderId: 'h1_2', leaseMs: 10_000 }, T0 + 50).state,
      'queued',
    );
    assert.equal(
      h.ok({ type: 'lockAcquire', key: '2', holderId: 'h2', leaseMs: 10_000 }, T0 + 50).state,
      'queued',
    );
    assert.equal(grants.length, 0);

    assert.equal(h.ok({ type: 'lockRelease', key: '1', token: l1.token }, T0 + 100).released, true);
    assert.deepEqual(
      grants.map((g) => [g.key, g.holderId]),
      [['1', 'h1']],
    );
    assert.equal(h.ok({ type: 'lockRelease', key: '2', token: l2.token }, T0 + 100).released, true);
    assert.deepEqual(
      grants.map((g) => [g.key, g.holderId]),
      [
        ['1', 'h1'],
        ['2', 'h2'],
      ],
    );
    assert.equal(h.ok({ type: 'lockRelease', key: '1', token: grants[0]!.token }, T0 + 100).released, true);
    assert.deepEqual(grants[2] && [grants[2].key, grants[2].holderId, grants[2].index], [
      '1',
      'h1_2',
      h.next - 1,
    ]);
    assert.deepEqual(h.sm.lock('1')?.holderId, 'h1_2');
  });

  test("a cache group founded anew (a restore, in-memory caches restarted) issues tokens above the old group's", () => {
    // The old group: 1,500 grants within one millisecond of log time, more than the clock's share.
    const old = new Harness();
    let last = 0;
    for (let i = 0; i < 1500; i++) {
      const g = granted(old, 'job', `h${i}`, T0);
      assert.ok(g.token > last, 'strictly increasing within one millisecond');
      last = g.token;
      old.ok({ type: 'lockRelease', key: 'job', token: g.token }, T0);
    }
    // A group founded anew (it holds no state of the old one) a second of log time later: its
    // first holder's token passes every old one, so a row fenced by them does not refuse it.
    const founded = new Harness();
    const first = granted(founded, 'job', 'new', T0 + 1000);
    assert.ok(first.token > last, `${first.token} > ${last}`);
    assert.ok(Number.isSafeInteger(first.token));
    assert.ok(granted(founded, 'other', 'new', T0 + 1000).token > first.token);
  });

  test('fencing tokens strictly increase per key across holders', () => {
    const grants: LockGrant[] = [];
    const h = new Harness({ hooks: { onLockGranted: (g) => grants.push(g) } });
    const a = granted(h, 'k', 'a', T0);
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'b', leaseMs: 100 }, T0);
    h.ok({ type: 'lockRelease', key: 'k', token: a.token }, T0);
    const b = grants[0]!;
    assert.ok(b.token > a.token);
    h.ok({ type: 'lockRelease', key: 'k', token: b.token }, T0);
    assert.equal(h.sm.lock('k'), null, 'a free lock with no waiters is removed');
    const c = granted(h, 'k', 'c', T0);
    assert.ok(c.token > b.token, 'a removed lock does not restart its tokens');
  });

  test('fencing tokens keep increasing across a snapshot and restore (a restart), and leases keep running in log time', async () => {
    const h = new Harness();
    const a = granted(h, 'k', 'a', T0, 1000);
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'b', leaseMs: 1000 }, T0);
    const restarted = new Harness();
    await restarted.sm.restoreFrom(chunksOf(await snapshotBytes(h.sm), 64));
    assert.deepEqual(restarted.sm.lock('k'), h.sm.lock('k'));
    restarted.ok({ type: 'lockRelease', key: 'k', token: a.token }, T0 + 1);
    const b = restarted.sm.lock('k');
    assert.ok(b !== null && b.holderId === 'b' && b.token > a.token);
    restarted.ok({ type: 'expire' }, T0 + 1001);
    assert.equal(restarted.sm.lock('k'), null, "b's lease ran out in log time after the restore");
    assert.ok(granted(restarted, 'k', 'c', T0 + 1001).token > b.token);
  });

  test('a lease ends in log time: the next command past it grants the next waiter', () => {
    const grants: LockGrant[] = [];
    const h = new Harness({ hooks: { onLockGranted: (g) => grants.push(g) } });
    const a = granted(h, 'k', 'a', T0, 1000);
    assert.equal(a.expiresAtMs, T0 + 1000);
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'b', leaseMs: 500 }, T0 + 10);
    h.ok({ type: 'get', cache: 'x', key: 'y' }, T0 + 999);
    assert.equal(grants.length, 0);
    h.ok({ type: 'get', cache: 'x', key: 'y' }, T0 + 1000);
    assert.deepEqual(
      grants.map((g) => [g.holderId, g.expiresAtMs]),
      [['b', T0 + 1500]],
    );
    // The old holder's token is stale now: its renew and release are ignored.
    assert.deepEqual(h.ok({ type: 'lockRenew', key: 'k', token: a.token }, T0 + 1001), {
      type: 'lockRenew',
      renewed: false,
      expiresAtMs: null,
    });
    assert.equal(h.ok({ type: 'lockRelease', key: 'k', token: a.token }, T0 + 1001).released, false);
    assert.equal(h.sm.lock('k')?.holderId, 'b');
  });

  test('the expire command also ends leases; a lease with no waiter frees the key', () => {
    const h = new Harness();
    const a = granted(h, 'k', 'a', T0, 100);
    h.ok({ type: 'expire' }, T0 + 100);
    assert.equal(h.sm.lock('k'), null);
    assert.ok(granted(h, 'k', 'b', T0 + 100).token > a.token);
  });

  test('a renewal or release naming another holder is ignored, the token alone decides only for old entries', () => {
    // The fencing token is written into the rows it guards: whoever reads it must not end the lock.
    const h = new Harness();
    const a = granted(h, 'k', 'a', T0, 1000);
    assert.deepEqual(h.ok({ type: 'lockRenew', key: 'k', token: a.token, holderId: 'b' }, T0 + 10), {
      type: 'lockRenew',
      renewed: false,
      expiresAtMs: null,
    });
    assert.equal(
      h.ok({ type: 'lockRelease', key: 'k', token: a.token, holderId: 'b' }, T0 + 20).released,
      false,
    );
    assert.equal(h.sm.lock('k')?.holderId, 'a');
    assert.equal(
      h.ok({ type: 'lockRenew', key: 'k', token: a.token, holderId: 'a' }, T0 + 30).expiresAtMs,
      T0 + 1030,
    );
    assert.equal(
      h.ok({ type: 'lockRelease', key: 'k', token: a.token, holderId: 'a' }, T0 + 40).released,
      true,
    );
    assert.equal(h.sm.lock('k'), null);
    // An entry written before releases named their holder: by the token, as it was applied then.
    const b = granted(h, 'k', 'b', T0 + 50);
    assert.equal(h.ok({ type: 'lockRelease', key: 'k', token: b.token }, T0 + 60).released, true);
  });

  test('renew extends the lease from now (with a new lease length if given)', () => {
    const h = new Harness();
    const a = granted(h, 'k', 'a', T0, 1000);
    assert.deepEqual(h.ok({ type: 'lockRenew', key: 'k', token: a.token }, T0 + 900), {
      type: 'lockRenew',
      renewed: true,
      expiresAtMs: T0 + 1900,
    });
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'b', leaseMs: 10 }, T0 + 1000);
    h.ok({ type: 'expire' }, T0 + 1899);
    assert.equal(h.sm.lock('k')?.holderId, 'a');
    assert.equal(
      h.ok({ type: 'lockRenew', key: 'k', token: a.token, leaseMs: 50 }, T0 + 1899).expiresAtMs,
      T0 + 1949,
    );
    h.ok({ type: 'expire' }, T0 + 1949);
    assert.equal(h.sm.lock('k')?.holderId, 'b');
    assert.ok(h.sm.internals.locks.leaseIndexSize <= 2 * 1 + 1024);
  });

  test('acquire is idempotent per holder id (a retried request)', () => {
    const h = new Harness();
    const a = granted(h, 'k', 'a', T0);
    assert.deepEqual(granted(h, 'k', 'a', T0 + 5), a);
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'b', leaseMs: 10 }, T0);
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'c', leaseMs: 10 }, T0);
    assert.deepEqual(h.ok({ type: 'lockAcquire', key: 'k', holderId: 'b', leaseMs: 10 }, T0), {
      type: 'lockAcquire',
      state: 'queued',
      position: 1,
    });
    assert.deepEqual(h.sm.lock('k')?.waiters, ['b', 'c']);
  });

  test('cancel removes a waiter, or releases the lock when it was granted meanwhile', () => {
    const grants: LockGrant[] = [];
    const h = new Harness({ hooks: { onLockGranted: (g) => grants.push(g) } });
    granted(h, 'k', 'a', T0);
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'b', leaseMs: 10 }, T0);
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'c', leaseMs: 10 }, T0);
    assert.equal(h.ok({ type: 'lockCancel', key: 'k', holderId: 'b' }, T0).removed, 'waiter');
    assert.equal(h.ok({ type: 'lockCancel', key: 'k', holderId: 'b' }, T0).removed, 'none');
    assert.equal(h.ok({ type: 'lockCancel', key: 'k', holderId: 'a' }, T0).removed, 'holder');
    assert.deepEqual(
      grants.map((g) => g.holderId),
      ['c'],
    );
    assert.equal(h.ok({ type: 'lockCancel', key: 'nope', holderId: 'a' }, T0).removed, 'none');
  });

  test('a waiter whose waitMs passed is skipped when its turn comes', () => {
    const grants: LockGrant[] = [];
    const h = new Harness({ hooks: { onLockGranted: (g) => grants.push(g) } });
    const a = granted(h, 'k', 'a', T0);
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'b', leaseMs: 10, waitMs: 100 }, T0);
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'c', leaseMs: 10 }, T0);
    h.ok({ type: 'lockRelease', key: 'k', token: a.token }, T0 + 100);
    assert.deepEqual(
      grants.map((g) => g.holderId),
      ['c'],
    );
  });

  test('a waiter whose wait lease ran out (its node stopped renewing it) is skipped when its turn comes; a renewed one is granted', () => {
    const grants: LockGrant[] = [];
    const h = new Harness({ hooks: { onLockGranted: (g) => grants.push(g) } });
    const a = granted(h, 'k', 'a', T0);
    // b's node died: nobody renews its wait lease. c's node renews c's every 100 ms.
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'b', leaseMs: 10_000, waitLeaseMs: 300 }, T0);
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'c', leaseMs: 10_000, waitLeaseMs: 300 }, T0);
    for (let t = T0 + 100; t <= T0 + 1000; t += 100) {
      const r = h.ok(
        { type: 'lockWaitRenew', waitLeaseMs: 300, keys: ['k', 'k'], holderIds: ['c', 'gone'] },
        t,
      );
      assert.equal(r.renewed, 1, 'c is renewed, an id not queued is ignored');
    }
    assert.deepEqual(h.sm.lock('k')?.waiters, ['b', 'c'], 'dropped lazily, when its turn comes');
    h.ok({ type: 'lockRelease', key: 'k', token: a.token, holderId: 'a' }, T0 + 1000);
    assert.deepEqual(
      grants.map((g) => g.holderId),
      ['c'],
    );
    // A renewal of a waiter that was granted meanwhile renews nothing (its lease is the holder's).
    assert.equal(
      h.ok({ type: 'lockWaitRenew', waitLeaseMs: 300, keys: ['k'], holderIds: ['c'] }, T0 + 1001).renewed,
      0,
    );
  });

  test('a wait lease is renewed by the same acquire retried; a lapsed waiter gives its place up to a new one at the limit', () => {
    const grants: LockGrant[] = [];
    const h = new Harness({
      hooks: { onLockGranted: (g) => grants.push(g) },
      limits: { lockWaitersPerKeyMax: 1 },
    });
    const a = granted(h, 'k', 'a', T0);
    const acquireB = {
      type: 'lockAcquire',
      key: 'k',
      holderId: 'b',
      leaseMs: 1000,
      waitLeaseMs: 300,
    } as const;
    h.ok(acquireB, T0);
    assert.equal(h.ok(acquireB, T0 + 250).state, 'queued', 'a retry of the same attempt');
    const full = h.run(
      { type: 'lockAcquire', key: 'k', holderId: 'c', leaseMs: 10, waitLeaseMs: 300 },
      T0 + 500,
    );
    assert.ok(!full.ok && full.error.limit === 'lockWaitersPerKeyMax', "the retry renewed b's wait lease");
    assert.equal(
      h.ok({ type: 'lockAcquire', key: 'k', holderId: 'c', leaseMs: 10, waitLeaseMs: 300 }, T0 + 550).state,
      'queued',
      "b's wait lease ran out at T0 + 550: c takes its place",
    );
    assert.deepEqual(h.sm.lock('k')?.waiters, ['c']);
    h.ok({ type: 'lockRelease', key: 'k', token: a.token, holderId: 'a' }, T0 + 600);
    assert.deepEqual(
      grants.map((g) => g.holderId),
      ['c'],
    );
  });

  test('wait leases are in the snapshot (a restore keeps them running in log time); a waiter of an older snapshot has none', async () => {
    const h = new Harness();
    const a = granted(h, 'k', 'a', T0);
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'b', leaseMs: 1000, waitLeaseMs: 300 }, T0);
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'c', leaseMs: 1000 }, T0);
    const bytes = await snapshotBytes(h.sm);
    const restarted = new Harness();
    await restarted.sm.restoreFrom(chunksOf(bytes, 64));
    assert.deepEqual(await snapshotBytes(restarted.sm), bytes, 'byte-identical after a restore');
    restarted.ok({ type: 'lockRelease', key: 'k', token: a.token, holderId: 'a' }, T0 + 300);
    assert.equal(restarted.sm.lock('k')?.holderId, 'c', "b's wait lease ran out; c has none and waits on");

    const older = new Harness();
    await older.sm.restoreFrom(chunksOf(withoutWaitLeases(bytes), 64));
    assert.deepEqual(older.sm.lock('k'), h.sm.lock('k'));
    older.ok({ type: 'lockRelease', key: 'k', token: a.token, holderId: 'a' }, T0 + 300);
    assert.equal(older.sm.lock('k')?.holderId, 'b', 'a waiter of an older snapshot has no wait lease');
  });

  test('waitMs 0 is a try-lock: busy instead of queued', () => {
    const h = new Harness();
    assert.equal(
      h.ok({ type: 'lockAcquire', key: 'k', holderId: 'a', leaseMs: 10, waitMs: 0 }, T0).state,
      'granted',
    );
    assert.deepEqual(h.ok({ type: 'lockAcquire', key: 'k', holderId: 'b', leaseMs: 10, waitMs: 0 }, T0), {
      type: 'lockAcquire',
      state: 'busy',
    });
    assert.deepEqual(h.sm.lock('k')?.waiters, []);
  });

  test('locks and waiters per key are bounded (HQL_CACHE_FULL); expired waiters make room', () => {
    const h = new Harness({ limits: { locksMax: 1, lockWaitersPerKeyMax: 1 } });
    granted(h, 'k', 'a', T0);
    const other = h.run({ type: 'lockAcquire', key: 'j', holderId: 'a', leaseMs: 10 }, T0);
    assert.ok(!other.ok && other.error.limit === 'locksMax');
    h.ok({ type: 'lockAcquire', key: 'k', holderId: 'b', leaseMs: 10, waitMs: 5 }, T0);
    const full = h.run({ type: 'lockAcquire', key: 'k', holderId: 'c', leaseMs: 10 }, T0 + 4);
    assert.ok(
      !full.ok && full.error.code === 'HQL_CACHE_FULL' && full.error.limit === 'lockWaitersPerKeyMax',
    );
    assert.equal(h.ok({ type: 'lockAcquire', key: 'k', holderId: 'c', leaseMs: 10 }, T0 + 5).state, 'queued');
    assert.deepEqual(h.sm.lock('k')?.waiters, ['c']);
    const longId = h.run({ type: 'lockAcquire', key: 'k', holderId: 'x'.repeat(257), leaseMs: 10 }, T0);
    assert.ok(!longId.ok && longId.error.limit === 'holderIdBytesMax');
  });
});
