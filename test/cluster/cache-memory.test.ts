/**
 * With `cache_storage_disk = false` the cache group keeps nothing on disk: a restarted node has
 * lost its cache state and rejoins the group as a new learner (it never votes from forgotten
 * state), catching up from the others.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { CacheApp, startApps } from './cache-app-process.js';
import { eventually, TestCluster } from './harness.js';

describe('cache group in memory', () => {
  const clusters: TestCluster[] = [];
  const running: CacheApp[] = [];
  after(async () => {
    await Promise.all(running.map((a) => a.kill()));
    await Promise.all(clusters.map((c) => c.close()));
  });

  test('cache_storage_disk = false: a restarted node rejoins the cache group as a new learner and catches up', async () => {
    const cluster = await TestCluster.create({
      nodes: 3,
      startNodes: [],
      toml: 'cache_storage_disk = false',
    });
    clusters.push(cluster);
    const apps = await startApps(cluster, [1, 2, 3]);
    running.push(...apps.values());
    const a = (id: number) => apps.get(id) as CacheApp;
    await a(1).request('put', { cache: 'c', key: 'before', value: 1 });
    await a(3).kill();
    await a(1).request('put', { cache: 'c', key: 'while-down', value: 2 });
    const three = await CacheApp.start(cluster.node(3).configFile);
    running.push(three);
    apps.set(3, three);
    // READY means a member of both groups again: node 3 is a voter of the cache group.
    const m = await three.request<{ cache: { voters: number[] } }>('metrics');
    assert.deepEqual([...m.cache.voters].sort(), [1, 2, 3]);
    await eventually('node 3 to hold what was written before and while it was down', async () => {
      const before = await three.request('get', { cache: 'c', key: 'before' });
      const during = await three.request('get', { cache: 'c', key: 'while-down' });
      return before === 1 && during === 2;
    });
    // And it takes part: a write through it is replicated.
    await three.request('put', { cache: 'c', key: 'after', value: 3 });
    assert.equal(await a(2).request('get', { cache: 'c', key: 'after', consistency: 'linearizable' }), 3);
  });
});
