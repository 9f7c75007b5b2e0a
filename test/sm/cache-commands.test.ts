/**
 * The cache state machine, command by command: caches with TTL in log time, counters,
 * notifications, limits and exactly-once sessions. Locks are in cache-locks.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Notification } from '../../src/sm/cache/notifications.js';
import { bytes, chunksOf, Harness, snapshotBytes, T0, text } from './cache-helpers.js';

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

describe('cache entries', () => {
  test('put then get returns the value; caches are separate namespaces', () => {
    const h = new Harness();
    h.ok({ type: 'put', cache: 'one', key: 'k', value: bytes('v1') }, T0);
    assert.equal(text(h.ok({ type: 'get', cache: 'one', key: 'k' }, T0).value), 'v1');
    assert.equal(h.ok({ type: 'get', cache: 'two', key: 'k' }, T0).value, null);
    assert.equal(text(h.sm.get('one', 'k')), 'v1');
    assert.equal(h.sm.get('two', 'k'), null);
  });

  test('an entry with a TTL is returned before its expiry and never at or after it, even before removal', () => {
    const h = new Harness();
    h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('v'), ttlMs: 1000 }, T0);
    assert.equal(text(h.ok({ type: 'get', cache: 'c', key: 'k' }, T0 + 999).value), 'v');
    assert.equal(h.ok({ type: 'get', cache: 'c', key: 'k' }, T0 + 1000).value, null);
    // Still physically there (no expire ran), but not returned locally either.
    assert.equal(h.sm.stats().caches[0]?.entries, 1);
    assert.equal(h.sm.get('c', 'k'), null);
  });

  test('a local read may use a later clock than the log (a read changes nothing)', () => {
    const h = new Harness();
    h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('v'), ttlMs: 1000 }, T0);
    assert.equal(text(h.sm.get('c', 'k')), 'v');
    assert.equal(h.sm.get('c', 'k', T0 + 1000), null);
    assert.deepEqual(h.sm.entries('c', T0 + 1000), []);
    // An earlier local clock cannot revive what the log clock expired.
    h.ok({ type: 'get', cache: 'c', key: 'x' }, T0 + 2000);
    assert.equal(h.sm.get('c', 'k', T0), null);
  });

  test('a put without TTL clears an earlier TTL; a put with TTL replaces one without', () => {
    const h = new Harness();
    h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('a'), ttlMs: 1000 }, T0);
    h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('b') }, T0 + 10);
    assert.equal(text(h.ok({ type: 'get', cache: 'c', key: 'k' }, T0 + 5000).value), 'b');
    assert.equal(h.ok({ type: 'expire' }, T0 + 5000).removed, 0);
    h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('c'), ttlMs: 1000 }, T0 + 6000);
    assert.equal(h.ok({ type: 'get', cache: 'c', key: 'k' }, T0 + 7000).value, null);
  });

  test('the old expiry of a re-put key does not remove the new entry (upstream get_remove + re-put)', () => {
    const h = new Harness();
    h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('v1'), ttlMs: 1000 }, T0);
    assert.equal(text(h.ok({ type: 'getRemove', cache: 'c', key: 'k' }, T0 + 1).value), 'v1');
    h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('v2'), ttlMs: 3000 }, T0 + 2);
    assert.deepEqual(h.ok({ type: 'expire' }, T0 + 1500), { type: 'expire', removed: 0, more: false });
    assert.equal(text(h.ok({ type: 'get', cache: 'c', key: 'k' }, T0 + 1500).value), 'v2');
    assert.deepEqual(h.ok({ type: 'expire' }, T0 + 4000), { type: 'expire', removed: 1, more: false });
    assert.equal(h.sm.stats().caches.length, 0, 'an emptied cache is dropped');
  });

  test('the clock never goes back: a command stamped earlier does not revive an expired entry', () => {
    const h = new Harness();
    h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('v'), ttlMs: 100 }, T0);
    h.ok({ type: 'get', cache: 'c', key: 'other' }, T0 + 200);
    assert.equal(h.ok({ type: 'get', cache: 'c', key: 'k' }, T0).value, null);
    assert.equal(h.sm.clockMs(), T0 + 200);
    // A TTL counts from the log clock, not from an earlier stamp.
    h.ok({ type: 'put', cache: 'c', key: 'j', value: bytes('v'), ttlMs: 100 }, T0);
    assert.equal(text(h.ok({ type: 'get', cache: 'c', key: 'j' }, T0 + 250).value), 'v');
  });

  test('expire removes expired entries, earliest first, at most expireBatchMax per command', () => {
    const h = new Harness({ limits: { expireBatchMax: 2 } });
    for (let i = 0; i < 5; i++) {
      h.ok({ type: 'put', cache: 'c', key: `k${i}`, value: bytes('v'), ttlMs: 100 + i }, T0);
    }
    h.ok({ type: 'put', cache: 'c', key: 'forever', value: bytes('v') }, T0);
    assert.deepEqual(h.ok({ type: 'expire' }, T0 + 1000), { type: 'expire', removed: 2, more: true });
    assert.deepEqual([...h.sm.internals.kv.caches.get('c')!.entries.keys()], ['k2', 'k3', 'k4', 'forever']);
    assert.deepEqual(h.ok({ type: 'expire' }, T0 + 1000), { type: 'expire', removed: 2, more: true });
    assert.deepEqual(h.ok({ type: 'expire' }, T0 + 1000), { type: 'expire', removed: 1, more: false });
    assert.equal(h.sm.stats().caches[0]?.entries, 1);
  });

  test('entries expiring at the same instant are removed in (cache, key) order, whatever their insertion order', () => {
    // A total order: which of several tied entries a bounded expire removes must not depend on
    // the index's history (a restored replica builds it afresh).
    const h = new Harness({ limits: { expireBatchMax: 3 } });
    for (const [cache, key] of [
      ['b', 'z'],
      ['a', 'y'],
      ['b', 'a'],
      ['a', 'x'],
      ['a', 'z'],
    ] as const) {
      h.ok({ type: 'put', cache, key, value: bytes('v'), ttlMs: 10 }, T0);
    }
    h.ok({ type: 'expire' }, T0 + 10);
    assert.deepEqual(
      h.sm.stats().caches.map((c) => [c.name, [...h.sm.internals.kv.caches.get(c.name)!.entries.keys()]]),
      [['b', ['z', 'a']]],
    );
  });

  test('delete says whether a live entry was removed; an expired one counts as absent', () => {
    const h = new Harness();
    h.ok({ type: 'put', cache: 'c', key: 'a', value: bytes('v') }, T0);
    h.ok({ type: 'put', cache: 'c', key: 'b', value: bytes('v'), ttlMs: 10 }, T0);
    assert.equal(h.ok({ type: 'delete', cache: 'c', key: 'a' }, T0).deleted, true);
    assert.equal(h.ok({ type: 'delete', cache: 'c', key: 'a' }, T0).deleted, false);
    assert.equal(h.ok({ type: 'delete', cache: 'c', key: 'b' }, T0 + 10).deleted, false);
    assert.equal(h.sm.stats().bytes, 0, 'the expired entry was removed too');
  });

  test('getRemove takes the value once: a second take gets nothing', () => {
    const h = new Harness();
    h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('v') }, T0);
    assert.equal(text(h.ok({ type: 'getRemove', cache: 'c', key: 'k' }, T0).value), 'v');
    assert.equal(h.ok({ type: 'getRemove', cache: 'c', key: 'k' }, T0).value, null);
    assert.equal(h.sm.get('c', 'k'), null);
  });

  test('replace returns the previous live value and applies its own TTL rule', () => {
    const h = new Harness();
    assert.equal(h.ok({ type: 'replace', cache: 'c', key: 'k', value: bytes('a') }, T0).previous, null);
    assert.equal(
      text(h.ok({ type: 'replace', cache: 'c', key: 'k', value: bytes('b'), ttlMs: 1000 }, T0).previous),
      'a',
    );
    assert.equal(
      h.ok({ type: 'replace', cache: 'c', key: 'k', value: bytes('c') }, T0 + 1500).previous,
      null,
    );
    assert.equal(text(h.ok({ type: 'get', cache: 'c', key: 'k' }, T0 + 9000).value), 'c');
  });

  test('putIfAbsent stores only when no live value exists', () => {
    const h = new Harness();
    assert.equal(
      h.ok({ type: 'putIfAbsent', cache: 'c', key: 'k', value: bytes('a'), ttlMs: 100 }, T0).stored,
      true,
    );
    assert.equal(
      h.ok({ type: 'putIfAbsent', cache: 'c', key: 'k', value: bytes('b') }, T0 + 50).stored,
      false,
    );
    assert.equal(text(h.sm.get('c', 'k')), 'a');
    assert.equal(
      h.ok({ type: 'putIfAbsent', cache: 'c', key: 'k', value: bytes('c') }, T0 + 100).stored,
      true,
    );
    assert.equal(text(h.sm.get('c', 'k', T0 + 10_000)), 'c');
  });

  test('clear empties one cache; clearAll empties every cache, and counters only when asked', () => {
    const h = new Harness();
    h.ok({ type: 'put', cache: 'a', key: '1', value: bytes('v') }, T0);
    h.ok({ type: 'put', cache: 'a', key: '2', value: bytes('v'), ttlMs: 5 }, T0);
    h.ok({ type: 'put', cache: 'b', key: '1', value: bytes('v') }, T0);
    h.ok({ type: 'counterSet', counter: 'n', key: 'x', value: 5n }, T0);
    assert.equal(h.ok({ type: 'clear', cache: 'a' }, T0 + 10).removed, 1, 'the expired one is not counted');
    assert.equal(h.sm.get('a', '1'), null);
    assert.equal(text(h.sm.get('b', '1')), 'v');
    assert.equal(h.ok({ type: 'clearAll', counters: false }, T0).removed, 1);
    assert.equal(h.sm.counterGet('n', 'x'), 5n);
    h.ok({ type: 'put', cache: 'a', key: '1', value: bytes('v') }, T0);
    assert.equal(h.ok({ type: 'clearAll', counters: true }, T0).removed, 2);
    assert.equal(h.sm.counterGet('n', 'x'), null);
    assert.equal(h.sm.stats().bytes, 0);
    assert.equal(h.sm.internals.kv.expiryIndexSize, 0, 'the expiry index went with the entries');
    h.ok({ type: 'put', cache: 'a', key: '2', value: bytes('v'), ttlMs: 5 }, T0);
    assert.equal(h.ok({ type: 'expire' }, T0 + 15).removed, 1, 'the log clock is at T0 + 10 already');
  });

  test('the expiry index stays bounded when one key is re-put with a TTL many times', () => {
    const h = new Harness();
    for (let i = 0; i < 5000; i++) {
      h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('v'), ttlMs: 1_000_000 + i }, T0 + i);
    }
    assert.ok(h.sm.internals.kv.expiryIndexSize <= 2 * 1 + 1024 + 1, `${h.sm.internals.kv.expiryIndexSize}`);
    assert.equal(text(h.sm.get('c', 'k')), 'v');
  });
});

describe('counters', () => {
  test('upstream scenario: set 13, other group absent, set -17, add 19 → 2, add -3 → -1', () => {
    const h = new Harness();
    h.ok({ type: 'counterSet', counter: 'one', key: 'counter1', value: 13n }, T0);
    assert.equal(h.ok({ type: 'counterGet', counter: 'one', key: 'counter1' }, T0).value, 13n);
    assert.equal(h.ok({ type: 'counterGet', counter: 'two', key: 'counter1' }, T0).value, null);
    h.ok({ type: 'counterSet', counter: 'one', key: 'counter1', value: -17n }, T0);
    assert.equal(h.ok({ type: 'counterAdd', counter: 'one', key: 'counter1', delta: 19n }, T0).value, 2n);
    assert.equal(h.ok({ type: 'counterAdd', counter: 'one', key: 'counter1', delta: -3n }, T0).value, -1n);
  });

  test('add starts an absent key at 0 and saturates at the int64 bounds', () => {
    const h = new Harness();
    assert.equal(h.ok({ type: 'counterAdd', counter: 'c', key: 'k', delta: 5n }, T0).value, 5n);
    assert.equal(h.ok({ type: 'counterAdd', counter: 'c', key: 'k', delta: INT64_MAX }, T0).value, INT64_MAX);
    assert.equal(h.ok({ type: 'counterAdd', counter: 'c', key: 'k', delta: 1n }, T0).value, INT64_MAX);
    assert.equal(h.ok({ type: 'counterAdd', counter: 'c', key: 'k', delta: INT64_MIN }, T0).value, -1n);
    h.ok({ type: 'counterSet', counter: 'c', key: 'k', value: INT64_MIN }, T0);
    assert.equal(h.ok({ type: 'counterAdd', counter: 'c', key: 'k', delta: -1n }, T0).value, INT64_MIN);
  });

  test('delete frees the key; counterClear drops a group', () => {
    const h = new Harness();
    h.ok({ type: 'counterAdd', counter: 'c', key: 'a', delta: 1n }, T0);
    h.ok({ type: 'counterAdd', counter: 'c', key: 'b', delta: 1n }, T0);
    assert.equal(h.ok({ type: 'counterDelete', counter: 'c', key: 'a' }, T0).deleted, true);
    assert.equal(h.ok({ type: 'counterDelete', counter: 'c', key: 'a' }, T0).deleted, false);
    assert.equal(h.ok({ type: 'counterClear', counter: 'c' }, T0).removed, 1);
    assert.equal(h.sm.counterGet('c', 'b'), null);
    assert.equal(h.sm.stats().bytes, 0);
  });
});

describe('notifications', () => {
  test('notify hands each notification to the hook once, with channel, payload, index and log time', () => {
    const seen: Notification[] = [];
    const h = new Harness({ hooks: { onNotification: (n) => seen.push(n) } });
    const r = h.ok({ type: 'notify', channel: 'ch', payload: bytes('p1') }, T0 + 5);
    assert.deepEqual(r, { type: 'notify', seq: 1, index: 1 });
    h.ok({ type: 'notify', channel: 'other', payload: bytes('p2') }, T0 + 3);
    assert.deepEqual(
      seen.map((n) => ({ ...n, payload: text(n.payload) })),
      [
        { channel: 'ch', payload: 'p1', index: 1, time: T0 + 5, seq: 1 },
        { channel: 'other', payload: 'p2', index: 2, time: T0 + 5, seq: 2 },
      ],
    );
  });

  test('the ring holds the latest notifications; a resuming listener gets those after its seq, or learns how many it missed', () => {
    const h = new Harness({ limits: { notificationsRingMax: 3 } });
    for (let i = 1; i <= 5; i++) h.ok({ type: 'notify', channel: 'c', payload: bytes(`p${i}`) }, T0);
    const fromStart = h.sm.notificationsAfter(0);
    assert.deepEqual(
      fromStart.notifications.map((n) => n.seq),
      [3, 4, 5],
    );
    assert.equal(fromStart.missed, 2);
    const resumed = h.sm.notificationsAfter(3);
    assert.deepEqual(
      resumed.notifications.map((n) => text(n.payload)),
      ['p4', 'p5'],
    );
    assert.equal(resumed.missed, 0);
    assert.deepEqual(h.sm.notificationsAfter(5), { notifications: [], missed: 0 });
    assert.equal(h.sm.notificationsAfter(0, 1).notifications.length, 1);
  });

  test('hooks run after the entry is applied: one that throws cannot leave a command half applied', () => {
    const h = new Harness({
      hooks: {
        onNotification: () => {
          throw new Error('listener bug');
        },
      },
    });
    assert.throws(() => h.run({ type: 'notify', channel: 'c', payload: bytes('p') }, T0), /listener bug/);
    assert.equal(h.sm.appliedIndex(), 1);
    assert.equal(h.sm.notificationsAfter(0).notifications.length, 1);
  });

  test('the ring is bounded by payload bytes too', () => {
    const h = new Harness({ limits: { notificationsRingBytesMax: 3 * (64 + 100 + 2) } });
    for (let i = 0; i < 10; i++) h.ok({ type: 'notify', channel: 'c', payload: new Uint8Array(100) }, T0);
    assert.equal(h.sm.stats().notificationsHeld, 3);
    assert.equal(h.sm.notificationsAfter(0).missed, 7);
  });
});

describe('limits', () => {
  test('keys, names, values, channels and payloads over their byte limits are refused with HQL_CACHE_TOO_LARGE', () => {
    const h = new Harness({ limits: { keyBytesMax: 4, valueBytesMax: 8 } });
    const cases = [
      h.run({ type: 'put', cache: 'c', key: 'éé€', value: bytes('v') }, T0), // 7 UTF-8 bytes
      h.run({ type: 'put', cache: 'cache', key: 'k', value: bytes('v') }, T0),
      h.run({ type: 'put', cache: 'c', key: 'k', value: new Uint8Array(9) }, T0),
      h.run({ type: 'counterAdd', counter: 'c', key: 'kkkkk', delta: 1n }, T0),
      h.run({ type: 'notify', channel: 'chann', payload: bytes('p') }, T0),
      h.run({ type: 'notify', channel: 'c', payload: new Uint8Array(9) }, T0),
      h.run({ type: 'lockAcquire', key: 'kkkkk', holderId: 'h', leaseMs: 10 }, T0),
    ];
    assert.deepEqual(
      cases.map((r) => (r.ok ? 'ok' : `${r.error.code}/${r.error.limit}`)),
      [
        'HQL_CACHE_TOO_LARGE/keyBytesMax',
        'HQL_CACHE_TOO_LARGE/keyBytesMax',
        'HQL_CACHE_TOO_LARGE/valueBytesMax',
        'HQL_CACHE_TOO_LARGE/keyBytesMax',
        'HQL_CACHE_TOO_LARGE/keyBytesMax',
        'HQL_CACHE_TOO_LARGE/valueBytesMax',
        'HQL_CACHE_TOO_LARGE/keyBytesMax',
      ],
    );
    assert.ok(
      h.run({ type: 'put', cache: 'c', key: 'a€', value: new Uint8Array(8) }, T0).ok,
      'exactly at the limits',
    );
    assert.equal(h.sm.stats().notificationsHeld, 0);
  });

  test('entries per cache: a new key in a full cache is refused, an existing one may change', () => {
    const h = new Harness({ limits: { entriesPerCacheMax: 2 } });
    h.ok({ type: 'put', cache: 'c', key: 'a', value: bytes('v') }, T0);
    h.ok({ type: 'put', cache: 'c', key: 'b', value: bytes('v') }, T0);
    const r = h.run({ type: 'put', cache: 'c', key: 'x', value: bytes('v') }, T0);
    assert.ok(!r.ok && r.error.code === 'HQL_CACHE_FULL' && r.error.limit === 'entriesPerCacheMax');
    h.ok({ type: 'put', cache: 'c', key: 'a', value: bytes('w') }, T0);
    h.ok({ type: 'put', cache: 'other', key: 'x', value: bytes('v') }, T0);
  });

  test('a full cache purges expired entries before refusing', () => {
    const h = new Harness({ limits: { entriesPerCacheMax: 2 } });
    h.ok({ type: 'put', cache: 'c', key: 'a', value: bytes('v'), ttlMs: 10 }, T0);
    h.ok({ type: 'put', cache: 'c', key: 'b', value: bytes('v') }, T0);
    assert.ok(h.run({ type: 'put', cache: 'c', key: 'x', value: bytes('v') }, T0 + 10).ok);
    assert.deepEqual(
      h.sm.entries('c').map(([k]) => k),
      ['b', 'x'],
    );
  });

  test('caches and counter groups together are bounded by cachesMax; an emptied one frees its place', () => {
    const h = new Harness({ limits: { cachesMax: 2 } });
    h.ok({ type: 'put', cache: 'a', key: 'k', value: bytes('v') }, T0);
    h.ok({ type: 'counterAdd', counter: 'n', key: 'k', delta: 1n }, T0);
    const r = h.run({ type: 'put', cache: 'b', key: 'k', value: bytes('v') }, T0);
    assert.ok(!r.ok && r.error.code === 'HQL_CACHE_FULL' && r.error.limit === 'cachesMax');
    h.ok({ type: 'delete', cache: 'a', key: 'k' }, T0);
    h.ok({ type: 'put', cache: 'b', key: 'k', value: bytes('v') }, T0);
  });

  test('total bytes are bounded by bytesMax and freed by deletes', () => {
    const h = new Harness({ limits: { bytesMax: 1000 } });
    h.ok({ type: 'put', cache: 'c', key: 'a', value: new Uint8Array(600) }, T0);
    const r = h.run({ type: 'put', cache: 'c', key: 'b', value: new Uint8Array(600) }, T0);
    assert.ok(!r.ok && r.error.code === 'HQL_CACHE_FULL' && r.error.limit === 'bytesMax');
    h.ok({ type: 'put', cache: 'c', key: 'a', value: new Uint8Array(10) }, T0);
    h.ok({ type: 'put', cache: 'c', key: 'b', value: new Uint8Array(600) }, T0);
    assert.ok(h.sm.stats().bytes <= 1000);
  });

  test('invalid limits are refused with HQL_INVALID_CONFIG naming the key', () => {
    assert.throws(
      () => new Harness({ limits: { keyBytesMax: 0, nope: 1 } as never }),
      (e: Error & { code?: string }) =>
        e.code === 'HQL_INVALID_CONFIG' && /keyBytesMax/.test(e.message) && /nope/.test(e.message),
    );
  });
});

describe('exactly-once sessions', () => {
  test('a retried command is not applied again and gets the original result', () => {
    const h = new Harness();
    h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('v') }, T0);
    const s = { clientId: 'client', seq: 1 };
    const first = h.run({ type: 'getRemove', cache: 'c', key: 'k' }, T0, s);
    h.ok({ type: 'put', cache: 'c', key: 'k', value: bytes('w') }, T0);
    const retry = h.run({ type: 'getRemove', cache: 'c', key: 'k' }, T0, s);
    assert.deepEqual(retry, first);
    assert.equal(text(h.sm.get('c', 'k')), 'w', 'the retry removed nothing');
    assert.equal(
      h.run({ type: 'counterAdd', counter: 'n', key: 'k', delta: 1n }, T0, { clientId: 'client', seq: 2 }).ok,
      true,
    );
    h.run({ type: 'counterAdd', counter: 'n', key: 'k', delta: 1n }, T0, { clientId: 'client', seq: 2 });
    assert.equal(h.sm.counterGet('n', 'k'), 1n);
  });

  test('an older seq is HQL_SESSION_STALE; a session idle past its TTL starts afresh', () => {
    const h = new Harness({ limits: { sessionTtlMs: 1000 } });
    h.run({ type: 'counterAdd', counter: 'n', key: 'k', delta: 1n }, T0, { clientId: 'a', seq: 5 });
    const stale = h.run({ type: 'counterAdd', counter: 'n', key: 'k', delta: 1n }, T0, {
      clientId: 'a',
      seq: 4,
    });
    assert.ok(!stale.ok && stale.error.code === 'HQL_SESSION_STALE');
    h.run({ type: 'counterAdd', counter: 'n', key: 'k', delta: 1n }, T0 + 1001, { clientId: 'a', seq: 1 });
    assert.equal(h.sm.counterGet('n', 'k'), 2n);
  });

  test('results beyond sessionResultsBytesMax are dropped but their seq is kept', () => {
    const h = new Harness({ limits: { sessionResultsBytesMax: 300 } });
    h.ok({ type: 'put', cache: 'c', key: 'a', value: new Uint8Array(200) }, T0);
    h.ok({ type: 'put', cache: 'c', key: 'b', value: new Uint8Array(200) }, T0);
    h.run({ type: 'getRemove', cache: 'c', key: 'a' }, T0, { clientId: 'x', seq: 1 });
    h.run({ type: 'getRemove', cache: 'c', key: 'b' }, T0, { clientId: 'y', seq: 1 });
    const dup = h.run({ type: 'getRemove', cache: 'c', key: 'a' }, T0, { clientId: 'x', seq: 1 });
    assert.ok(!dup.ok && dup.error.code === 'HQL_SESSION_RESULT_UNAVAILABLE');
    const kept = h.run({ type: 'getRemove', cache: 'c', key: 'b' }, T0, { clientId: 'y', seq: 1 });
    assert.ok(kept.ok && kept.value.type === 'getRemove' && kept.value.value?.length === 200);
  });

  test('the session table is bounded: the least recently seen session goes first', () => {
    const h = new Harness({ limits: { sessionsMax: 2 } });
    const add = (clientId: string, seq: number) =>
      h.run({ type: 'counterAdd', counter: 'n', key: 'k', delta: 1n }, T0, { clientId, seq });
    add('a', 1);
    add('b', 1);
    add('a', 1); // a duplicate touches a
    add('c', 1); // evicts b
    assert.equal(h.sm.stats().sessions, 2);
    add('a', 1);
    assert.equal(h.sm.counterGet('n', 'k'), 3n, 'a is still known');
    add('b', 1);
    assert.equal(h.sm.counterGet('n', 'k'), 4n, 'b was forgotten, so its command counts as new');
  });

  test('a session within its protection window is never forgotten for room: the new one is refused, not applied', () => {
    // Found from outside (cache_sessions_max 50, 200 concurrent adders, the leader killed): a
    // session forgotten for room while its write was still being retried applied that retry a
    // second time. Stamped with the proposer's session_protect_ms, a full table refuses instead.
    const h = new Harness({ limits: { sessionsMax: 2 } });
    const add = (clientId: string, seq: number, nowMs: number, protectMs: number | null = 1000) =>
      h.run(
        { type: 'counterAdd', counter: 'n', key: 'k', delta: 1n },
        nowMs,
        protectMs === null ? { clientId, seq } : { clientId, seq, protectMs },
      );
    assert.ok(add('a', 1, T0).ok);
    assert.ok(add('b', 1, T0 + 10).ok);
    const refused = add('c', 1, T0 + 500);
    assert.ok(!refused.ok && refused.error.code === 'HQL_SESSIONS_FULL', JSON.stringify(refused));
    assert.match(
      refused.error.message,
      /all 2 exactly-once sessions \(cache_sessions_max\) belong to writes that may still be retried/,
    );
    assert.equal(h.sm.counterGet('n', 'k'), 2n, 'the refused command was not applied');
    // a's retry still finds its session (a duplicate, touching it).
    add('a', 1, T0 + 600);
    assert.equal(h.sm.counterGet('n', 'k'), 2n);
    // Past b's window (it was seen at +10), b makes room; a (seen at +600) is still protected.
    assert.ok(add('c', 1, T0 + 1200).ok);
    assert.equal(h.sm.counterGet('n', 'k'), 3n);
    add('a', 1, T0 + 1300);
    assert.equal(h.sm.counterGet('n', 'k'), 3n, 'a was kept');
    assert.ok(!add('d', 1, T0 + 1300).ok, 'a and c are both protected');
    // A command without the stamp (written before it existed) evicts as before.
    assert.ok(add('d', 1, T0 + 1300, null).ok);
    assert.equal(h.sm.stats().sessions, 2);
  });

  test('a full table decides alike whether or not it remembers where it found no room (restored from snapshots)', async () => {
    // The table keeps a bound below which a refused new session costs no scan; a replica that
    // restarted (restored from a snapshot) has none and scans: both must decide the same.
    let seed = 11;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const limits = { sessionsMax: 4, sessionTtlMs: 1500 };
    const steady = new Harness({ limits });
    let restarted = new Harness({ limits });
    const seqs = new Map<string, number>();
    let now = T0;
    const codes: string[] = [];
    for (let i = 0; i < 400; i++) {
      now += Math.floor(random() * 300);
      const clientId = `c${Math.floor(random() * 7)}`;
      const seq = (seqs.get(clientId) ?? 0) + (random() < 0.2 ? 0 : 1);
      seqs.set(clientId, seq);
      const p = random();
      const session = p < 0.3 ? { clientId, seq } : { clientId, seq, protectMs: p < 0.8 ? 1000 : 2500 };
      const command = { type: 'counterAdd', counter: 'n', key: 'k', delta: 1n } as const;
      const a = steady.run(command, now, session);
      if (i % 9 === 8) {
        const next = new Harness({ limits });
        await next.sm.restoreFrom(chunksOf(await snapshotBytes(restarted.sm), 256));
        restarted = next;
      }
      assert.deepStrictEqual(restarted.run(command, now, session), a, `command ${i}`);
      codes.push(a.ok ? 'ok' : a.error.code);
    }
    assert.deepStrictEqual(await snapshotBytes(restarted.sm), await snapshotBytes(steady.sm));
    assert.ok(codes.includes('HQL_SESSIONS_FULL'), 'the run filled the table');
  });

  test("each session is protected for its own write's retries: a short one goes before an older long one, also after a snapshot", async () => {
    const h = new Harness({ limits: { sessionsMax: 2 } });
    const add = (sm: Harness, clientId: string, nowMs: number, protectMs: number) =>
      sm.run({ type: 'counterAdd', counter: 'n', key: 'k', delta: 1n }, nowMs, {
        clientId,
        seq: 1,
        protectMs,
      });
    assert.ok(add(h, 'long', T0, 10_000).ok);
    assert.ok(add(h, 'short', T0 + 100, 1000).ok);
    const restored = new Harness({ limits: { sessionsMax: 2 } });
    await restored.sm.restoreFrom(chunksOf(await snapshotBytes(h.sm), 64));
    for (const sm of [h, restored]) {
      // At +1200 'short' (seen later) is no longer protected; 'long' (seen first) still is.
      assert.ok(add(sm, 'new', T0 + 1200, 1000).ok);
      assert.equal(add(sm, 'long', T0 + 1300, 1000).ok, true, 'a duplicate, answered');
      assert.equal(sm.sm.counterGet('n', 'k'), 3n, "long's retry was not applied again");
      assert.equal(
        add(sm, 'short', T0 + 1300, 1000).ok,
        false,
        'short was forgotten: a new session, refused',
      );
    }
    assert.deepStrictEqual(await snapshotBytes(restored.sm), await snapshotBytes(h.sm));
  });
});
