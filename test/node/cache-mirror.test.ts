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
import { type HiqliteNode, type StartOptions, start } from '../../src/index.js';
import { HiqliteError } from '../../src/lib/errors.js';
import type { NodeConfig } from '../../src/node/config/config.js';
import { freePorts } from '../support/free-ports.js';

const SECRETS = {
  secretRaft: 'raft-secret-for-tests-0123456789',
  secretApi: 'api-secret-for-tests-0123456789',
};

async function config(root: string, extra: Partial<NodeConfig>): Promise<NodeConfig> {
  const [raft, api] = await freePorts(2);
  return {
    nodeId: 1,
    nodes: [{ id: 1, addrRaft: `127.0.0.1:${raft}`, addrApi: `127.0.0.1:${api}` }],
    dataDir: join(root, 'data'),
    cacheExpireIntervalMs: 50,
    ...SECRETS,
    ...extra,
  };
}

interface Running {
  node: HiqliteNode;
}

/** One healthy node for the suite it is called in (before/after), on a fresh data directory. */
function oneNode(
  prefix: string,
  o: { options?: StartOptions; config?: Partial<NodeConfig>; mirrorLive?: boolean } = {},
): Running {
  const r = {} as Running;
  let root = '';
  before(async () => {
    root = mkdtempSync(join(tmpdir(), prefix));
    r.node = await start(await config(root, o.config ?? {}), o.options);
    await r.node.waitUntilHealthy({ timeoutMs: 10_000 });
    if (o.mirrorLive === true) await live(r.node);
  });
  after(async () => {
    await r.node?.close();
    rmSync(root, { recursive: true, force: true });
  });
  return r;
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
  const r = oneNode('hq-mirror-lazy-');

  test('writes alone start nothing; getLocal before the mirror is live reads the node synchronously, any size', async () => {
    const { node } = r;
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

describe("getLocal's synchronous read: its deadline", () => {
  const READ_TIMEOUT_MS = 25;
  // Caches in memory: the bulk below is written quickly.
  const r = oneNode('hq-mirror-deadline-', {
    config: { readTimeoutMs: READ_TIMEOUT_MS, cacheStorageDisk: false },
  });

  test('a node thread busy past read_timeout_ms: HQL_TIMEOUT (retryable) at the deadline, and the next read works', async () => {
    const { node } = r;
    const c = node.cache('deadline');
    await c.put('small', { ok: true });
    // About 96 MB of values: hashing their snapshot (the digest below) keeps the node's thread
    // busy, in one task, far longer than READ_TIMEOUT_MS.
    const bulk = node.cache('bulk');
    const value = new Uint8Array(1_000_000).fill(9);
    for (let i = 0; i < 96; i += 8)
      await Promise.all(Array.from({ length: 8 }, (_, j) => bulk.put(`v${i + j}`, value)));
    const digest = cacheMirrorOf(node, { digest: true });
    // The digest call leaves in this turn's flush (setImmediate, first in line); the read's
    // message follows it on the same port, so the node's thread reads it after the digest.
    await new Promise((res) => setImmediate(res));
    const t0 = performance.now();
    let error: unknown = null;
    try {
      c.getLocal('small');
    } catch (e) {
      error = e;
    }
    const blockedMs = performance.now() - t0;
    assert.ok(error instanceof HiqliteError, `expected HQL_TIMEOUT, got ${String(error)}`);
    assert.equal(error.code, 'HQL_TIMEOUT');
    assert.equal(error.retryable, true);
    assert.match(error.message, /read_timeout_ms/);
    // Kept: not given up early (the clock may round a little).
    assert.ok(blockedMs >= READ_TIMEOUT_MS - 1, `gave up after ${blockedMs.toFixed(1)} ms`);
    const d = await digest;
    assert.ok(d?.node !== undefined);
    // The late answer to the abandoned read is not taken for the next one's.
    assert.deepEqual(c.getLocal('small'), { ok: true });
    assert.equal(c.getLocal('absent'), null);
    assert.deepEqual(c.getLocal('small'), { ok: true });
  });
});

describe('cache mirror (node on its own thread)', () => {
  const r = oneNode('hq-mirror-', { mirrorLive: true });

  test('a local get sees a preceding put at once, every time', async () => {
    const { node } = r;
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
    const { node } = r;
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
    const { node } = r;
    const c = node.cache('lin');
    await c.put('a', 'x');
    assert.equal(await c.get('a', { consistency: 'linearizable' }), 'x');
    assert.equal(await node.counter('lin').get('none', { consistency: 'linearizable' }), null);
  });

  test('TTL: the mirror hides and removes an entry exactly as the node does', async () => {
    const { node } = r;
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
    const { node } = r;
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
  const r = oneNode('hq-mirror-off-', { options: { cacheMirror: false } });

  test('cacheMirror: false reads through the node thread, with the same answers', async () => {
    const { node } = r;
    assert.equal(await cacheMirrorOf(node), null);
    const c = node.cache('x');
    await c.put('a', 1);
    assert.equal(await c.get('a'), 1);
    assert.equal(await c.get('a', { consistency: 'linearizable' }), 1);
    assert.deepEqual(await c.entries(), [['a', 1]]);
  });
});
