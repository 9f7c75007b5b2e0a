/**
 * `cache(name).getLocal(key)`: the synchronous local read of an embedded node, on the node's own
 * thread (served by the cache mirror) and on the application's thread. It returns what
 * `await get(key)` returns after put, replace, delete, getRemove and expiry (an expired entry is
 * never returned), and no value it hands out lets a caller change what the next read returns
 * (shared values are deep-frozen, bytes are copies). `await get()` gives out no view of the
 * stored bytes either. A remote client and `cacheMirror: false` refuse with HQL_UNAVAILABLE.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cacheMirrorOf } from '../../src/client/worker-node.js';
import { connect, type HiqliteNode, type StartOptions, start } from '../../src/index.js';
import { HiqliteError } from '../../src/lib/errors.js';
import { type EntriesConfig, oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';

async function until(what: string, ok: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Bounded by the deadline.
  while (!(await ok())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function isUnavailable(retryable: boolean) {
  return (e: unknown) =>
    e instanceof HiqliteError && e.code === 'HQL_UNAVAILABLE' && e.retryable === retryable;
}

interface Running {
  root: string;
  cfg: EntriesConfig;
  node: HiqliteNode;
}

/** A one-node cluster started before the suite's tests (its cache mirror live) and removed after. */
function oneNode(options: StartOptions): Running {
  const r = {} as Running;
  before(async () => {
    r.root = mkdtempSync(join(tmpdir(), 'hq-getlocal-'));
    r.cfg = await oneNodeConfig(r.root, { cacheExpireIntervalMs: 50 });
    r.node = await start(r.cfg, options);
    await r.node.waitUntilHealthy({ timeoutMs: 10_000 });
    if ((options.thread ?? 'worker') === 'worker' && options.cacheMirror !== false) {
      // The mirror starts with the first local read.
      r.node.cache('start').getLocal('any');
      await until(
        'the cache mirror to be live',
        async () => (await cacheMirrorOf(r.node))?.status.mode === 'live',
      );
    }
  });
  after(async () => {
    await r.node?.close();
    rmSync(r.root, { recursive: true, force: true });
  });
  return r;
}

for (const thread of ['worker', 'main'] as const) {
  describe(`getLocal (node on the ${thread === 'worker' ? "node's own thread, cache mirror" : "application's thread"})`, () => {
    const r = oneNode({ thread });

    test('returns what get() returns after put, replace, delete and getRemove', async () => {
      const { node } = r;
      const c = node.cache<{ n: number; tags: string[] }>('values');
      assert.equal(c.getLocal('a'), null);
      for (let i = 0; i < 50; i++) {
        await c.put(`k${i % 5}`, { n: i, tags: [`t${i}`] });
        assert.deepEqual(c.getLocal(`k${i % 5}`), { n: i, tags: [`t${i}`] });
        assert.deepEqual(c.getLocal(`k${i % 5}`), await c.get(`k${i % 5}`));
      }
      const before = c.getLocal('k0');
      assert.deepEqual(await c.replace('k0', { n: -1, tags: [] }), before);
      assert.deepEqual(c.getLocal('k0'), { n: -1, tags: [] });
      assert.deepEqual(before, { n: 45, tags: ['t45'] }, 'a value read before stays what it was');
      assert.equal(await c.delete('k0'), true);
      assert.equal(c.getLocal('k0'), null);
      assert.deepEqual(await c.getRemove('k1'), { n: 46, tags: ['t46'] });
      assert.equal(c.getLocal('k1'), null);
      assert.equal(await c.clear(), 3);
      assert.equal(c.getLocal('k2'), null);
      assert.equal(node.cache('other').getLocal('k3'), null, 'caches are separate');
      const scalars = node.cache<unknown>('scalars');
      for (const v of [0, 'text', true, 12345678901234567890n, null, [1, [2, [3]]]]) {
        await scalars.put('v', v);
        assert.deepEqual(scalars.getLocal('v'), v);
      }
    });

    test('refuses the keys get() refuses, with the same typed error', async () => {
      const c = r.node.cache<unknown>('keys');
      const bad: unknown[] = [
        123,
        null,
        undefined,
        { k: 1 },
        ['k'],
        () => 'k',
        Symbol('k'),
        '\uD800',
        'a\uDC00b',
      ];
      for (const key of bad) {
        const viaGet = await c.get(key as string).then(
          () => null,
          (e: unknown) => e,
        );
        assert.ok(
          viaGet instanceof HiqliteError && viaGet.code === 'HQL_INVALID_PARAMS',
          `get(${String(key)})`,
        );
        assert.throws(
          () => c.getLocal(key as string),
          (e: unknown) =>
            e instanceof HiqliteError && e.code === 'HQL_INVALID_PARAMS' && e.message === viaGet.message,
          `getLocal(${String(key)})`,
        );
      }
      // A key that cannot be stored (beyond the key size limit) is simply absent.
      const long = 'k'.repeat(100_000);
      assert.equal(await c.get(long), null);
      assert.equal(c.getLocal(long), null);
    });

    test('an expired entry is never returned', async () => {
      const { node } = r;
      const c = node.cache<string>('ttl');
      const ttlMs = 300;
      for (let round = 0; round < 3; round++) {
        const t0 = Date.now();
        await c.put('k', `v${round}`, { ttlMs });
        const t1 = Date.now();
        // Stamped between t0 and t1: it expires in [t0 + ttl, t1 + ttl].
        const first = c.getLocal('k');
        if (Date.now() < t0 + ttlMs) assert.equal(first, `v${round}`);
        let sawExpired = false;
        const deadline = Date.now() + 10_000;
        // Bounded by the deadline.
        while (!sawExpired && Date.now() < deadline) {
          const readAt = Date.now();
          const v = c.getLocal('k');
          if (readAt >= t1 + ttlMs) {
            assert.equal(v, null, `read ${readAt - t1 - ttlMs} ms after the latest possible expiry`);
            sawExpired = true;
          } else if (v !== null) assert.equal(v, `v${round}`);
          await new Promise((r) => setTimeout(r, 5));
        }
        assert.ok(sawExpired, 'the loop reached the expiry');
        assert.equal(c.getLocal('k'), null, 'and stays gone');
      }
    });

    test('a caller cannot change what the next read returns', async () => {
      const { node } = r;
      const c = node.cache<unknown>('frozen');
      await c.put('obj', { a: 1, nested: { list: [1, 2, { deep: 'x' }] } });
      const v = c.getLocal('obj') as { a: number; nested: { list: Array<number | { deep: string }> } };
      assert.throws(() => {
        v.a = 2;
      }, TypeError);
      assert.throws(() => {
        v.nested.list.push(3);
      }, TypeError);
      assert.throws(() => {
        (v.nested.list[2] as { deep: string }).deep = 'y';
      }, TypeError);
      assert.deepEqual(c.getLocal('obj'), { a: 1, nested: { list: [1, 2, { deep: 'x' }] } });
      assert.deepEqual(await c.get('obj'), { a: 1, nested: { list: [1, 2, { deep: 'x' }] } });

      await c.put('bytes', new Uint8Array([1, 2, 3]));
      const b = c.getLocal('bytes') as Uint8Array;
      assert.ok(b instanceof Uint8Array);
      b[0] = 99;
      assert.deepEqual(c.getLocal('bytes'), new Uint8Array([1, 2, 3]));
      const g = (await c.get('bytes')) as Uint8Array;
      g[1] = 99;
      assert.deepEqual(
        await c.get('bytes'),
        new Uint8Array([1, 2, 3]),
        'get() gives no view of the stored bytes',
      );
      assert.deepEqual(c.getLocal('bytes'), new Uint8Array([1, 2, 3]));

      await c.put('mixed', { b: new Uint8Array([4, 5]), n: 1 });
      const m = c.getLocal('mixed') as { b: Uint8Array; n: number };
      m.b[0] = 99;
      m.n = 2;
      assert.deepEqual(c.getLocal('mixed'), { b: new Uint8Array([4, 5]), n: 1 });
      assert.deepEqual(await c.get('mixed'), { b: new Uint8Array([4, 5]), n: 1 });
    });

    test('a remote client has no local replica: HQL_UNAVAILABLE', async () => {
      const client = await connect({
        nodes: [r.cfg.nodes[0]?.addrApi ?? ''],
        secretApi: TEST_SECRETS.secretApi,
      });
      try {
        await client.cache('values').put('r', 1);
        assert.equal(await client.cache('values').get('r'), 1);
        assert.throws(() => client.cache('values').getLocal('r'), isUnavailable(false));
      } finally {
        await client.close();
      }
    });
  });
}

describe('getLocal with cacheMirror: false', () => {
  const r = oneNode({ cacheMirror: false });

  test('refuses with HQL_UNAVAILABLE (not retryable); get() still reads', async () => {
    const { node } = r;
    await node.cache('c').put('k', 'v');
    assert.throws(() => node.cache('c').getLocal('k'), isUnavailable(false));
    assert.equal(await node.cache('c').get('k'), 'v');
  });
});
