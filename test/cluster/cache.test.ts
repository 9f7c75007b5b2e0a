/**
 * The cache group on real processes: three applications embedding a node each (the node on its
 * own thread, the default), talking real TCP. The Rust project's cache, counter, notify and lock
 * scenarios (section 7 of its notes), plus what it does not promise: TTL in log time, exactly one
 * winner of a getRemove, fencing tokens, a killed holder's lock passing on after its lease.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type CacheApp, CacheAppError, startApps } from './cache-app-process.js';
import { eventually, SECRET_API, sleep, TestCluster } from './harness.js';

describe('cache group: caches, counters, notify and locks across three embedded nodes', () => {
  let cluster: TestCluster;
  const apps = new Map<number, CacheApp>();
  const app = (id: number) => apps.get(id) as CacheApp;

  before(async () => {
    // A short wait lease (the least the election timeout allows): a waiter of a killed process
    // is passed over within 4.5 s of its death.
    cluster = await TestCluster.create({ nodes: 3, startNodes: [], toml: 'cache_lock_wait_lease_ms = 4500' });
    for (const [id, a] of await startApps(cluster, [1, 2, 3])) apps.set(id, a);
  });

  after(async () => {
    await Promise.all([...apps.values()].map((a) => a.kill()));
    await cluster?.close();
  });

  test('a put on one node is read on every node; a TTL ends it everywhere', async () => {
    await app(2).request('put', { cache: 'sessions', key: 's1', value: { user: 7, roles: ['a'] } });
    // The TTL leaves room for a loaded machine: the writer must read its own write locally at
    // once, before the entry may have expired.
    await app(3).request('put', { cache: 'sessions', key: 'short', value: 'x', ttlMs: 3000 });
    assert.equal(await app(3).request('get', { cache: 'sessions', key: 'short' }), 'x');
    for (const id of [1, 2, 3]) {
      assert.deepEqual(
        await app(id).request('get', { cache: 'sessions', key: 's1', consistency: 'linearizable' }),
        { user: 7, roles: ['a'] },
      );
    }
    await eventually('the TTL to end the entry on every node', async () => {
      for (const id of [1, 2, 3])
        if ((await app(id).request('get', { cache: 'sessions', key: 'short' })) !== null) return false;
      return true;
    });
    // Physically removed on every replica by the leader's expire entries, not only hidden.
    await eventually('the expired entry to be removed on every node', async () => {
      for (const id of [1, 2, 3]) {
        const m = await app(id).request<{
          cache: { stats: { caches: Array<{ name: string; entries: number }> } };
        }>('metrics');
        if (m.cache.stats.caches.find((c) => c.name === 'sessions')?.entries !== 1) return false;
      }
      return true;
    });
  });

  test('counters: concurrent adds from every node sum up exactly', async () => {
    await Promise.all(
      [1, 2, 3].flatMap((id) =>
        Array.from({ length: 20 }, () =>
          app(id).request('counterAdd', { counter: 'hits', key: 'k', delta: '5' }),
        ),
      ),
    );
    for (const id of [1, 2, 3])
      assert.equal(await app(id).request('counterGet', { counter: 'hits', key: 'k' }), '300');
  });

  test('getRemove: of concurrent takers on every node exactly one gets the value', async () => {
    await app(1).request('put', { cache: 'tokens', key: 't', value: 'once' });
    const got = await Promise.all(
      [1, 2, 3, 1, 2, 3].map((id) => app(id).request('getRemove', { cache: 'tokens', key: 't' })),
    );
    assert.deepEqual(
      got.filter((v) => v !== null),
      ['once'],
    );
  });

  test('notify: every member that listens receives every notification once, in log order', async () => {
    for (const id of [1, 2, 3]) await app(id).request('listen', { listener: 'all', channel: 'events' });
    await app(1).request('listen', { listener: 'other', channel: 'other' });
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        app((i % 3) + 1).request('notify', { channel: 'events', payload: { i } }),
      ),
    );
    await app(2).request('notify', { channel: 'other', payload: 'o' });
    await eventually('30 notifications on every member', async () =>
      [1, 2, 3].every((id) => app(id).of('all').length >= 30),
    );
    for (const id of [1, 2, 3]) assert.equal(app(id).of('all').length, 30);
    const order = app(1)
      .of('all')
      .map((n) => n.index);
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      order,
      'log order',
    );
    assert.equal(new Set(order).size, 30, 'once each');
    for (const id of [2, 3])
      assert.deepEqual(
        app(id)
          .of('all')
          .map((n) => [n.index, n.payload]),
        app(1)
          .of('all')
          .map((n) => [n.index, n.payload]),
      );
    assert.deepEqual(
      app(1)
        .of('all')
        .map((n) => (n.payload as { i: number }).i)
        .sort((a, b) => a - b),
      Array.from({ length: 30 }, (_, i) => i),
    );
    await eventually('the other channel', async () => app(1).of('other').length === 1);
    assert.equal(app(1).of('other')[0]?.payload, 'o');
    // /metrics: entries and bytes per cache, listeners and their lag, locks, both groups. A long
    // cache name is cut in its label, with a hash of the whole name.
    const long = `c${'x'.repeat(299)}`;
    const put = await cluster.http(1, `/cache/${long}/k`, {
      method: 'PUT',
      headers: { 'X-API-SECRET': SECRET_API, 'content-type': 'application/json' },
      body: '1',
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const text = String((await cluster.http(1, '/metrics')).body);
    assert.match(
      text,
      new RegExp(`hiqlite_cache_entries\\{cache="${long.slice(0, 114)}…#[0-9a-f]{12}"\\} 1`),
    );
    assert.ok(!text.includes(long), 'the whole long name is not a label');
    assert.match(text, /hiqlite_cache_entries\{cache="sessions"\} 1/);
    assert.match(text, /hiqlite_cache_bytes\{cache="sessions"\} [1-9]\d*/);
    assert.match(text, /hiqlite_cache_listeners 2/);
    assert.match(text, /hiqlite_cache_listener_lag \d+/);
    assert.match(text, /hiqlite_cache_locks_held \d+/);
    assert.match(text, /hiqlite_cache_raft_commit_index [1-9]\d*/);
    assert.match(text, /hiqlite_raft_commit_index [1-9]\d*/);
    const m = await app(2).request<{ cache: { voters: number[]; listeners: number } }>('metrics');
    assert.deepEqual([...m.cache.voters].sort(), [1, 2, 3]);
    assert.equal(m.cache.listeners, 1);
  });

  test('locks: exclusive, first come first served, fencing tokens strictly increasing', async () => {
    const t1 = await app(1).request<number>('lock', { key: 'job' });
    assert.equal(await app(2).request('tryLock', { key: 'job' }), null);
    // Each waiter is queued (replicated, seen on node 1) before the next one asks: the order of
    // the queue is the order of the grants.
    const waiters = async () => {
      const m = await app(1).request<{ cache: { stats: { lockWaiters: number } } }>('metrics');
      return m.cache.stats.lockWaiters;
    };
    const second = app(2).request<number>('lock', { key: 'job' });
    await eventually('node 2 queued on the lock', async () => (await waiters()) === 1);
    const third = app(3).request<number>('lock', { key: 'job' });
    await eventually('node 3 queued behind node 2', async () => (await waiters()) === 2);
    await app(1).request('release', { token: t1 });
    const t2 = await second;
    assert.ok(t2 > t1, `token ${t2} after ${t1}`);
    let thirdDone = false;
    void third.then(() => {
      thirdDone = true;
    });
    await sleep(300);
    assert.equal(thirdDone, false, 'the third waiter waits while the second holds it');
    await app(2).request('release', { token: t2 });
    const t3 = await third;
    assert.ok(t3 > t2, `token ${t3} after ${t2}`);
    await app(3).request('release', { token: t3 });
    // A wait with a limit ends with HQL_TIMEOUT and leaves the queue.
    const t4 = await app(1).request<number>('lock', { key: 'job' });
    await assert.rejects(app(2).request('lock', { key: 'job', waitMs: 300 }), (e: unknown) => {
      return e instanceof CacheAppError && e.code === 'HQL_TIMEOUT';
    });
    await app(1).request('release', { token: t4 });
    assert.equal(typeof (await app(2).request('tryLock', { key: 'job' })), 'number');
  });

  test('a held lock is renewed while its holder lives; a killed holder’s lock passes on after its lease, its waits are passed over', async () => {
    // A lease long enough that renewals (every lease/3, each a replicated write) keep up on a
    // loaded machine.
    const leaseMs = 3000;
    const held = await app(3).request<number>('lock', { key: 'leader-job', leaseMs });
    // Node 3's application also waits for a lock node 2 holds, and node 1's behind it.
    const report = await app(2).request<number>('lock', { key: 'report', leaseMs: 60_000 });
    const lockWaiters = async () =>
      (await app(1).request<{ cache: { stats: { lockWaiters: number } } }>('metrics')).cache.stats
        .lockWaiters;
    void app(3)
      .request('lock', { key: 'report', leaseMs: 60_000 })
      .catch(() => {});
    await eventually('node 3 queued on the report lock', async () => (await lockWaiters()) === 1);
    const reportNext = app(1).request<number>('lock', { key: 'report', leaseMs: 60_000 });
    await eventually('node 1 queued behind node 3', async () => (await lockWaiters()) === 2);
    // Renewed: still held after several leases (and the wait lease of node 3's waiter too).
    await sleep(leaseMs * 2);
    assert.equal(await app(1).request('tryLock', { key: 'leader-job' }), null);
    const waiting = app(1).request<number>('lock', { key: 'leader-job', leaseMs });
    await sleep(200);
    await app(3).kill();
    // Within the lease, an election if node 3 led the cache group, and an expire tick.
    const next = await waiting;
    assert.ok(next > held, `fencing token ${next} after ${held}`);
    // Node 3's waiter had its turn after its wait lease ended: passed over, node 1 gets the lock at
    // once (it was granted to the dead waiter for its whole lease of 60 s, past this request's 30 s).
    await sleep(4500);
    await app(2).request('release', { token: report });
    const t0 = performance.now();
    const reportToken = await reportNext;
    assert.ok(reportToken > report, `fencing token ${reportToken} after ${report}`);
    const tookMs = performance.now() - t0;
    assert.ok(tookMs < 10_000, `node 1 got the lock ${Math.round(tookMs)} ms after its release`);
  });
});
