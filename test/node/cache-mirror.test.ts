/**
 * The cache mirror of an embedded node on its own thread (`thread: 'worker'`): local cache reads
 * are served on the application's thread by a replica fed with the entries the node applies.
 * The mirror starts with the application's first local read (until then nothing is applied on
 * this thread, and `getLocal` reads the node's thread synchronously). A local read after a
 * write sees it at once, expiry is the same as on the node's thread, the mirror's state is byte
 * for byte the node's (digest of the snapshot bytes), and with `cacheMirror: false` everything
 * still works through the node's thread.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cacheMirrorOf } from '../../src/client/worker-node.js';
import { type HiqliteNode, start } from '../../src/index.js';
import type { NodeConfig } from '../../src/node/config/config.js';
import { freePorts } from '../support/free-ports.js';

const SECRETS = {
  secretRaft: 'raft-secret-for-tests-0123456789',
  secretApi: 'api-secret-for-tests-0123456789',
};

async function config(root: string): Promise<NodeConfig> {
  const [raft, api] = await freePorts(2);
  return {
    nodeId: 1,
    nodes: [{ id: 1, addrRaft: `127.0.0.1:${raft}`, addrApi: `127.0.0.1:${api}` }],
    dataDir: join(root, 'data'),
    cacheExpireIntervalMs: 50,
    ...SECRETS,
  };
}

/** Starts the mirror with a local read (it is fed from the first one on) and waits until it serves. */
async function live(node: HiqliteNode): Promise<void> {
  node.cache('mirror-start').getLocal('any');
  const deadline = Date.now() + 10_000;
  // Bounded by the deadline.
  while ((await cacheMirrorOf(node))?.status.mode !== 'live') {
    assert.ok(Date.now() < deadline, 'the cache mirror did not become live');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Both digests at the same index (an expire entry may land between the two; bounded retries). */
async function sameState(node: HiqliteNode): Promise<{ index: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const r = await cacheMirrorOf(node, { digest: true });
    assert.ok(r?.mirror !== undefined && r.node !== undefined);
    if (r.mirror.index === r.node.index) {
      assert.equal(r.mirror.sha256, r.node.sha256, `states differ at index ${r.node.index}`);
      return { index: r.node.index };
    }
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error('the mirror and the node never stood at the same index');
}

describe('cache mirror: started by the first local read', () => {
  let root: string;
  let node: HiqliteNode;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'hq-mirror-lazy-'));
    node = await start(await config(root));
    await node.waitUntilHealthy({ timeoutMs: 10_000 });
  });
  after(async () => {
    await node?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('writes alone start nothing; getLocal before the mirror is live reads the node synchronously, any size', async () => {
    const c = node.cache('lazy');
    const big = new Uint8Array(300_000).map((_, i) => i % 251); // beyond the first shared buffer
    for (let i = 0; i < 50; i++) await c.put(`k${i}`, { i, tag: 'x'.repeat(i) });
    await c.put('big', big);
    await new Promise((r) => setTimeout(r, 100));
    const idle = await cacheMirrorOf(node);
    assert.equal(idle?.status.mode, 'waiting', 'no local read yet: the mirror is not fed');
    assert.equal(idle?.status.snapshots, 0);
    assert.equal(idle?.status.appliedIndex, 0, 'nothing applied on this thread');
    // The first local read: the mirror cannot be live yet, so these come from the node's thread.
    const first = c.getLocal('big') as Uint8Array;
    assert.deepEqual(first, big);
    assert.deepEqual(c.getLocal('k7'), { i: 7, tag: 'xxxxxxx' });
    assert.equal(c.getLocal('absent'), null);
    assert.ok(Object.isFrozen(c.getLocal('k3')), 'values are frozen as from the mirror');
    // Read-your-writes on the synchronous path and on the mirror alike.
    await c.put('k7', { i: 70 });
    assert.deepEqual(c.getLocal('k7'), { i: 70 });
    await live(node);
    assert.deepEqual(c.getLocal('big'), big);
    assert.deepEqual(c.getLocal('k7'), { i: 70 });
    await c.put('k8', 'after');
    assert.equal(c.getLocal('k8'), 'after');
    await sameState(node);
  });
});

describe('cache mirror (node on its own thread)', () => {
  let root: string;
  let node: HiqliteNode;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'hq-mirror-'));
    node = await start(await config(root));
    await node.waitUntilHealthy({ timeoutMs: 10_000 });
    await live(node);
  });
  after(async () => {
    await node?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('a local get sees a preceding put at once, every time', async () => {
    const c = node.cache('ryw');
    const counter = node.counter('ryw');
    for (let i = 0; i < 200; i++) {
      await c.put(`k${i % 7}`, { i });
      assert.deepEqual(await c.get(`k${i % 7}`), { i });
      assert.equal(await counter.add('n', 1), BigInt(i + 1));
      assert.equal(await counter.get('n'), BigInt(i + 1));
    }
    await c.delete('k0');
    assert.equal(await c.get('k0'), null);
    assert.equal((await c.entries()).length, 6);
    assert.equal((await cacheMirrorOf(node))?.status.mode, 'live', 'served by the mirror');
  });

  test('concurrent writers each read their own write synchronously right after its answer', async () => {
    // The answers of one turn arrive before the mirror applies their entries (it applies them
    // after the calls they lead to are posted); a read in between must apply them first.
    const c = node.cache('ryw-concurrent');
    for (let round = 0; round < 20; round++) {
      const seen = await Promise.all(
        Array.from({ length: 64 }, async (_, i) => {
          await c.put(`k${i}`, { round, i });
          return c.getLocal(`k${i}`);
        }),
      );
      for (let i = 0; i < 64; i++) assert.deepEqual(seen[i], { round, i }, `round ${round} key k${i}`);
    }
    assert.equal((await cacheMirrorOf(node))?.status.mode, 'live', 'served by the mirror');
  });

  test('linearizable reads are served after a barrier', async () => {
    const c = node.cache('lin');
    await c.put('a', 'x');
    assert.equal(await c.get('a', { consistency: 'linearizable' }), 'x');
    assert.equal(await node.counter('lin').get('none', { consistency: 'linearizable' }), null);
  });

  test('TTL: the mirror hides and removes an entry exactly as the node does', async () => {
    const c = node.cache('ttl');
    // Long enough that the local read right after the put comes before the expiry on a loaded
    // machine.
    await c.put('short', 1, { ttlMs: 2_000 });
    await c.put('long', 2, { ttlMs: 60_000 });
    assert.equal(await c.get('short'), 1);
    const deadline = Date.now() + 30_000;
    // Bounded by the deadline: wait for the leader's expire entry, applied on both replicas.
    for (;;) {
      const r = await cacheMirrorOf(node, { digest: false });
      const m = await node.metrics();
      const entries = m.cache.stats.caches.find((x) => x.name === 'ttl')?.entries;
      if (entries === 1 && r?.status.mode === 'live') break;
      assert.ok(Date.now() < deadline, 'the expire entry was not applied');
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.equal(await c.get('short'), null);
    assert.equal(await c.get('long'), 2);
    assert.deepEqual(await c.entries(), [['long', 2]]);
    await sameState(node);
  });

  test("the mirror's state is the node's, byte for byte, after locks, notifications and counters", async () => {
    const lock = await node.lock('job', { leaseMs: 5_000 });
    await node.notify('ch', { hello: 1 });
    await node.counter('c').set('x', -5);
    await node.cache('big').put('v', new Uint8Array(300_000).fill(7));
    const { index } = await sameState(node);
    assert.ok(index > 0);
    await lock.release();
    await sameState(node);
  });
});

describe('cache mirror turned off', () => {
  let root: string;
  let node: HiqliteNode;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'hq-mirror-off-'));
    node = await start(await config(root), { cacheMirror: false });
    await node.waitUntilHealthy({ timeoutMs: 10_000 });
  });
  after(async () => {
    await node?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('cacheMirror: false reads through the node thread, with the same answers', async () => {
    assert.equal(await cacheMirrorOf(node), null);
    const c = node.cache('x');
    await c.put('a', 1);
    assert.equal(await c.get('a'), 1);
    assert.equal(await c.get('a', { consistency: 'linearizable' }), 1);
    assert.deepEqual(await c.entries(), [['a', 1]]);
  });
});
