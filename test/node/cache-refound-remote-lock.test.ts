/**
 * A lock a REMOTE client holds through a node whose cache group kept in memory is founded anew
 * (HiqliteNode's cache watchdog; here its last step called directly on a one-node cluster): the
 * node tells its API connections (an event of its own accord, handshake 10), and the client's
 * `lost` fires at once with HQL_UNAVAILABLE — directly and through a proxy — instead of at the
 * next renewal a third of the lease later (100 s here), while another client could take the lock
 * in the new group. The embedded forms: test/node/cache-refound-lock.test.ts and
 * test/cluster/cache-memory.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { connect, type DistributedLock, type HiqliteClient, HiqliteError, start } from '../../src/index.js';
import { HiqliteProxy } from '../../src/proxy/proxy.js';
import { parseProxyConfig } from '../../src/proxy/proxy-config.js';
import { freePorts } from '../support/free-ports.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';

/** Long enough that no renewal happens during a test: only the node's event can end the lock. */
const LEASE_MS = 300_000;
/** How long `lost` may take to fire after the refound (the event crosses one or two sockets). */
const LOST_WITHIN_MS = 5_000;

/** A proxy (in this process) in front of the node at `addrApi`, listening on `port`. */
function proxyOf(addrApi: string, port: number): HiqliteProxy {
  const toml = [
    '[hiqlite]',
    `proxy_addr_api = "127.0.0.1:${port}"`,
    `nodes = ["${addrApi}"]`,
    `secret_api = "${TEST_SECRETS.secretApi}"`,
  ].join('\n');
  return new HiqliteProxy(parseProxyConfig(toml, {}), pino({ level: 'silent' }));
}

async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port as number;
}

function lostSoon(lock: DistributedLock): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`lost did not fire within ${LOST_WITHIN_MS} ms`)),
      LOST_WITHIN_MS,
    );
    lock.lost.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve(lock.lost.reason);
    });
  });
}

describe('a remote client learns at once that the cache group its lock was granted in was founded anew', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-refound-remote-'));
  let node: HiqliteClient;
  let refound: () => Promise<void>;
  let direct: HiqliteClient;
  let proxy: HiqliteProxy;
  let viaProxy: HiqliteClient;

  before(async () => {
    const cfg = await oneNodeConfig(root, { cacheStorageDisk: false });
    node = await start(cfg, { thread: 'main' });
    const runtime = (node as unknown as { node: { refoundCacheGroupHere(): Promise<void> } }).node;
    refound = () => runtime.refoundCacheGroupHere();
    const addrApi = cfg.nodes[0]?.addrApi as string;
    direct = await connect({ nodes: [addrApi], secretApi: TEST_SECRETS.secretApi });
    const proxyPort = await freePort();
    proxy = proxyOf(addrApi, proxyPort);
    await proxy.start();
    viaProxy = await connect({ nodes: [`127.0.0.1:${proxyPort}`], secretApi: TEST_SECRETS.secretApi });
  });

  after(async () => {
    await viaProxy?.close();
    await proxy?.close();
    await direct?.close();
    await node?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('held locks of a client connected to the node and of one behind a proxy are lost with HQL_UNAVAILABLE', async () => {
    await direct.cache('c').put('k', 1);
    const mine = await direct.lock('job-direct', { leaseMs: LEASE_MS });
    const proxied = await viaProxy.lock('job-proxied', { leaseMs: LEASE_MS });
    assert.equal(mine.lost.aborted, false);
    assert.equal(proxied.lost.aborted, false);
    const losses = Promise.all([lostSoon(mine), lostSoon(proxied)]);
    await refound();
    const [lostMine, lostProxied] = await losses;
    for (const [lock, lost] of [
      [mine, lostMine],
      [proxied, lostProxied],
    ] as const) {
      assert.ok(lost instanceof HiqliteError, String(lost));
      assert.equal(lost.code, 'HQL_UNAVAILABLE');
      assert.match(lost.message, /founded anew/);
      assert.equal(lock.remainingMs(), 0);
    }
    // The new group starts empty; the keys can be locked again, with higher tokens.
    assert.equal(await direct.cache('c').get('k'), null);
    const next = await direct.lock('job-direct', { leaseMs: 10_000 });
    assert.ok(next.token > mine.token, `token ${next.token} after ${mine.token}`);
    await next.release();
    await mine.release(); // a no-op: it was lost
    // A lock granted after the event is not touched by it.
    assert.equal(next.lost.aborted, false);
  });

  test('a remote wait ended by the refound is asked again in the group founded anew and granted its whole lease', async () => {
    const held = await node.lock('waited', { leaseMs: LEASE_MS });
    const started = Date.now();
    const waiting = direct.lock('waited', { leaseMs: 10_000 });
    // It waits behind the holder for a while (found from outside: the time waited before the
    // refound was taken off the lease of the grant after it, as if spent in transit).
    await new Promise((r) => setTimeout(r, 3000));
    await refound();
    const lock = await waiting;
    assert.ok(Date.now() - started >= 3000);
    assert.equal(lock.lost.aborted, false);
    assert.ok(lock.remainingMs() > 9000, `remainingMs ${lock.remainingMs()} of a 10 s lease`);
    await lock.release();
    assert.equal(held.lost.aborted, true);
  });

  test('a lock granted after the group was founded anew is kept', async () => {
    const lock = await direct.lock('after', { leaseMs: LEASE_MS });
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(lock.lost.aborted, false);
    await lock.release();
  });
});

describe('a remote client whose only node restarts into a cache group founded anew', () => {
  // The event of a refound reaches the clients of the nodes that drop their state; a node that
  // restarted has no clients then. It tells its token floor (the log time of its group's first
  // command, in tokens) at connect and once known, and a client holding locks connects again
  // at once when its connection closes: a lock granted before, below the floor, is lost then,
  // not at its next renewal (100 s here). Directly and through a proxy.
  test('its held locks are lost soon after the node is back, with HQL_UNAVAILABLE; a lock granted after is kept', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-refound-restart-'));
    const cfg = await oneNodeConfig(root, { cacheStorageDisk: false });
    const addrApi = cfg.nodes[0]?.addrApi as string;
    let node = await start(cfg, { thread: 'main' });
    const proxyPort = await freePort();
    const proxy = proxyOf(addrApi, proxyPort);
    let direct: HiqliteClient | null = null;
    let viaProxy: HiqliteClient | null = null;
    try {
      await proxy.start();
      direct = await connect({ nodes: [addrApi], secretApi: TEST_SECRETS.secretApi });
      viaProxy = await connect({ nodes: [`127.0.0.1:${proxyPort}`], secretApi: TEST_SECRETS.secretApi });
      const mine = await direct.lock('restart-direct', { leaseMs: LEASE_MS });
      const proxied = await viaProxy.lock('restart-proxied', { leaseMs: LEASE_MS });
      await node.close();
      node = await start(cfg, { thread: 'main' });
      const [lostMine, lostProxied] = await Promise.all([lostSoon(mine), lostSoon(proxied)]);
      for (const lost of [lostMine, lostProxied]) {
        assert.ok(lost instanceof HiqliteError, String(lost));
        assert.equal(lost.code, 'HQL_UNAVAILABLE');
        assert.match(lost.message, /founded anew/);
      }
      // Granted by the group founded anew: at or above the floor, kept.
      const next = await direct.lock('restart-direct', { leaseMs: LEASE_MS });
      assert.ok(next.token > mine.token, `token ${next.token} after ${mine.token}`);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(next.lost.aborted, false);
      await next.release();
    } finally {
      await viaProxy?.close();
      await direct?.close();
      await proxy.close();
      await node.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('a proxy of a cache-only cluster kept in memory that is founded anew (a new cluster id)', () => {
  test('follows its nodes into the new cluster: calls through it work again (it refused every call HQL_CLUSTER_MISMATCH until restarted)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-refound-proxy-'));
    const cfg = await oneNodeConfig(root, { cacheStorageDisk: false, sqlite: false });
    const node = await start(cfg, { thread: 'main' });
    const runtime = (node as unknown as { node: { refoundCacheGroupHere(): Promise<void> } }).node;
    const addrApi = cfg.nodes[0]?.addrApi as string;
    const proxyPort = await freePort();
    const proxy = proxyOf(addrApi, proxyPort);
    let client: HiqliteClient | null = null;
    try {
      await proxy.start();
      client = await connect({ nodes: [`127.0.0.1:${proxyPort}`], secretApi: TEST_SECRETS.secretApi });
      await client.cache('c').put('k', 1);
      await runtime.refoundCacheGroupHere();
      // A cache-only cluster founded anew is a new cluster: the data is gone, the proxy serves it.
      const deadline = Date.now() + 15_000;
      let last: unknown = null;
      for (;;) {
        try {
          assert.equal(await client.cache('c').get('k', { consistency: 'linearizable' }), null);
          break;
        } catch (e) {
          last = e;
          if (Date.now() > deadline)
            throw new Error(`the proxy did not serve the new cluster: ${String(last)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      await client.cache('c').put('k', 2);
      assert.equal(await client.cache('c').get('k', { consistency: 'linearizable' }), 2);
    } finally {
      await client?.close();
      await proxy.close();
      await node.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
