/**
 * With `cache_storage_disk = false` the cache group keeps nothing on disk: a restarted node has
 * lost its cache state and rejoins the group as a new learner (it never votes from forgotten
 * state), catching up from the others. When a majority of the nodes restart at once, the group
 * they forgot can elect no leader again: the survivor drops its state too and the group is
 * founded anew, empty, by node 1 (before, the restarted nodes could never start).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { HiqliteError } from '../../src/index.js';
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

  for (const [mode, restarted] of [
    ['SQL on disk', [2, 3]],
    ['cache-only', [1, 2]],
  ] as const) {
    test(`${mode}: two of three nodes restart at once: the group is founded anew, empty, and every node starts`, async () => {
      const cluster = await TestCluster.create({
        nodes: 3,
        startNodes: [],
        toml:
          mode === 'cache-only' ? 'cache_storage_disk = false\nsqlite = false' : 'cache_storage_disk = false',
      });
      clusters.push(cluster);
      const apps = await startApps(cluster, [1, 2, 3]);
      running.push(...apps.values());
      const a = (id: number) => apps.get(id) as CacheApp;
      await a(1).request('put', { cache: 'c', key: 'before', value: 1 });
      const survivor = [1, 2, 3].find((id) => !(restarted as readonly number[]).includes(id)) as number;
      // A lease renewed only every 100 s: its end is no way to learn it was lost.
      const held = await a(survivor).request<number>('lock', { key: 'job', leaseMs: 300_000 });
      // A remote client connected to the survivor, holding a lock of its own through it.
      const remote = await cluster.client([survivor]);
      const remoteHeld = await remote.lock('remote-job', { leaseMs: 300_000 });
      await Promise.all(restarted.map((id) => a(id).kill()));
      // They start again without their cache state, while the survivor holds the group: none
      // of them can be taken in by a leader it cannot elect (they waited for ever before).
      const again = await Promise.all(
        restarted.map((id) => CacheApp.start(cluster.node(id).configFile, 'worker', 90_000)),
      );
      running.push(...again);
      for (const [i, id] of restarted.entries()) apps.set(id, again[i] as CacheApp);
      // The group founded anew serves every node: writes, linearizable reads, locks.
      for (const id of [1, 2, 3]) {
        await eventually(`node ${id} to write to the group founded anew`, async () => {
          try {
            await a(id).request('put', { cache: 'c', key: `after${id}`, value: id }, 5000);
            return true;
          } catch {
            return false;
          }
        });
      }
      for (const id of [1, 2, 3]) {
        assert.equal(
          await a(id).request('get', { cache: 'c', key: 'after1', consistency: 'linearizable' }),
          1,
        );
        // Its data is gone with the majority that lost it, on the survivor too.
        assert.equal(await a(id).request('get', { cache: 'c', key: 'before' }), null);
      }
      // The survivor's lock went with the group: its holder is told at once (it was told at the
      // next renewal, a third of the lease later, while another node could hold it); the tokens
      // keep increasing in the new group.
      assert.deepEqual(await a(survivor).request('lockState', { token: held }), {
        lost: true,
        code: 'HQL_UNAVAILABLE',
      });
      // The remote client too: the survivor told it when it dropped the group's state.
      assert.equal(remoteHeld.lost.aborted, true, 'the remote lock was not lost');
      assert.equal((remoteHeld.lost.reason as HiqliteError).code, 'HQL_UNAVAILABLE');
      const next = await a(restarted[0]).request<number>('tryLock', { key: 'job' });
      assert.ok(typeof next === 'number' && next > held, `token ${next} after ${held}`);
      // Each node restarted is taken in as a learner and made a voter once it caught up: the
      // last may still be a learner here (it was, once, on a loaded machine).
      await eventually('the three nodes to be voters of the group founded anew', async () => {
        const m = await a(survivor).request<{ cache: { voters: number[] } }>('metrics');
        return [...m.cache.voters].sort().join(',') === '1,2,3';
      });
    });
  }
});
