/**
 * A remote lock wait without `waitMs` keeps its place in the queue while its process lives, on a
 * `hiqlite serve` process whose idle bound is short (`api_idle_timeout_ms`) and through a
 * `hiqlite proxy` (whose own request deadline is short): the waiter's connection carries no
 * request for the whole wait, only the client's pings, and nothing withdraws and queues it again
 * behind later waiters (it used to be asked for in rounds, each one sent to the back). A waiter
 * whose client goes away is withdrawn.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HiqliteClient } from '../../src/index.js';
import { Proxies } from '../proxy/proxy-harness.js';
import { eventually, sleep, TestCluster } from './harness.js';

/** The node's idle bound: short, so the waits below outlast many of them. */
const IDLE_MS = 1000;
/** Clients ping a silent connection this often (well below IDLE_MS). */
const KEEPALIVE = { keepaliveIntervalMs: 100, keepaliveTimeoutMs: 5000 };

/** Waiters queued on locks, replicated (node 1's `/metrics`). */
async function lockWaiters(cluster: TestCluster): Promise<number> {
  const text = String((await cluster.http(1, '/metrics')).body);
  const m = /^hiqlite_cache_lock_waiters (\d+)$/m.exec(text);
  assert.ok(m !== null, 'hiqlite_cache_lock_waiters is exported');
  return Number(m[1]);
}

describe('lock waits without waitMs keep their FIFO place', () => {
  let cluster: TestCluster;
  let proxies: Proxies;
  let viaProxy: HiqliteClient;

  before(async () => {
    cluster = await TestCluster.create({ nodes: 1, toml: `api_idle_timeout_ms = ${IDLE_MS}` });
    proxies = new Proxies(cluster.dir, cluster.apiAddresses());
    // The proxy's own deadline for a request without one: far shorter than the wait below.
    const proxy = await proxies.start('p', {
      toml: [
        'request_timeout_ms = 500',
        `api_idle_timeout_ms = ${IDLE_MS}`,
        `keepalive_interval_ms = ${KEEPALIVE.keepaliveIntervalMs}`,
      ],
    });
    viaProxy = await cluster.client([], { nodes: [proxy.address], ...KEEPALIVE });
  });

  after(async () => {
    await proxies?.close();
    await cluster?.close();
  });

  test('the first waiter is granted first after waiting through many idle bounds; a gone waiter is withdrawn', async () => {
    const holder = await cluster.client([1], KEEPALIVE);
    const first = await cluster.client([1], KEEPALIVE);
    const later = await cluster.client([1], KEEPALIVE);
    const held = await holder.lock('fifo', { leaseMs: 60_000 });
    const order: string[] = [];
    const firstLock = first.lock('fifo', { leaseMs: 60_000 }).then((l) => {
      order.push('first');
      return l;
    });
    await eventually('the first waiter to be queued', async () => (await lockWaiters(cluster)) === 1);
    // Through the proxy, behind the first one.
    const proxiedLock = viaProxy.lock('fifo', { leaseMs: 60_000 }).then((l) => {
      order.push('proxied');
      return l;
    });
    await eventually('the proxied waiter to be queued', async () => (await lockWaiters(cluster)) === 2);
    const laterLock = later.lock('fifo', { leaseMs: 60_000 }).then((l) => {
      order.push('later');
      return l;
    });
    await eventually('the later waiter to be queued', async () => (await lockWaiters(cluster)) === 3);
    // Many idle bounds of the node and request deadlines of the proxy pass. Nothing is asserted
    // about time: a loaded machine only makes the wait shorter in bounds, never the test fail.
    await sleep(6 * IDLE_MS);
    assert.equal(await lockWaiters(cluster), 3, 'no waiter was withdrawn or queued twice');
    assert.deepEqual(order, []);
    await held.release();
    const l1 = await firstLock;
    assert.deepEqual(order, ['first']);
    await l1.release();
    const l2 = await proxiedLock;
    assert.deepEqual(order, ['first', 'proxied']);
    await l2.release();
    const l3 = await laterLock;
    assert.deepEqual(order, ['first', 'proxied', 'later']);
    assert.ok(l3.token > l2.token && l2.token > l1.token, 'fencing tokens increase');
    // A waiter whose client goes away (its connection closes) is withdrawn, not granted to nobody.
    const gone = await cluster.client([1], KEEPALIVE);
    void gone.lock('fifo', { leaseMs: 60_000 }).catch(() => {});
    await eventually('the waiter to be queued', async () => (await lockWaiters(cluster)) === 1);
    await cluster.dropClient(gone);
    await eventually('the gone waiter to be withdrawn', async () => (await lockWaiters(cluster)) === 0);
    await l3.release();
    const free = await later.tryLock('fifo');
    assert.ok(free !== null, 'the lock is free: the gone waiter was never granted');
    await free.release();
  });
});
