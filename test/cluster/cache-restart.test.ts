/**
 * With `cache_storage_disk = true` (the default) caches, counters and fencing tokens survive a
 * full restart of every node (kill -9). The memory counterpart: cache-memory.test.ts.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { type CacheApp, startApps } from './cache-app-process.js';
import { TestCluster } from './harness.js';

describe('cache group on disk', () => {
  const clusters: TestCluster[] = [];
  const running: CacheApp[] = [];
  after(async () => {
    await Promise.all(running.map((a) => a.kill()));
    await Promise.all(clusters.map((c) => c.close()));
  });

  test('cache_storage_disk = true: caches, counters and fencing tokens survive a full kill -9 of every node', async () => {
    const cluster = await TestCluster.create({ nodes: 3, startNodes: [] });
    clusters.push(cluster);
    let apps = await startApps(cluster, [1, 2, 3]);
    running.push(...apps.values());
    const a = (id: number) => apps.get(id) as CacheApp;
    await a(1).request('put', { cache: 'c', key: 'k1', value: { v: 1 } });
    await a(2).request('put', { cache: 'c', key: 'k2', value: 'two', ttlMs: 3_600_000 });
    await a(3).request('counterAdd', { counter: 'n', key: 'x', delta: '41' });
    const token = await a(2).request<number>('lock', { key: 'L', leaseMs: 500 });
    await a(2).request('release', { token });
    await Promise.all([...apps.values()].map((x) => x.kill()));

    apps = await startApps(cluster, [1, 2, 3]);
    running.push(...apps.values());
    for (const id of [1, 2, 3]) {
      assert.deepEqual(await a(id).request('get', { cache: 'c', key: 'k1', consistency: 'linearizable' }), {
        v: 1,
      });
      assert.equal(await a(id).request('get', { cache: 'c', key: 'k2', consistency: 'linearizable' }), 'two');
    }
    assert.equal(await a(1).request('counterAdd', { counter: 'n', key: 'x', delta: '1' }), '42');
    const next = await a(3).request<number>('lock', { key: 'L' });
    assert.ok(next > token, `fencing token ${next} after the restart, ${token} before`);
  });
});
