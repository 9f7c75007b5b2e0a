/**
 * Cache-only nodes (`sqlite = false`) that keep the cache group on disk: no SQLite file is ever
 * written, the caches survive a restart of every node, and a node cannot change its setting (a
 * data directory holding the SQL group's state is refused).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TestCluster } from './harness.js';

describe('cache-only nodes on disk (hiqlite serve)', () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.create({ nodes: 3, toml: 'sqlite = false' });
  });

  after(async () => {
    await cluster?.close();
  });

  test('only the cache group and the cluster id are written; caches survive a restart of every node', async () => {
    const c = await cluster.client();
    await c.cache('c').put('k', 'kept');
    await cluster.dropClient(c);
    for (const id of [1, 2, 3]) assert.equal(await cluster.stop(id), 0, `node ${id} stops cleanly`);
    for (const id of [1, 2, 3]) {
      const dir = cluster.node(id).dataDir;
      assert.ok(existsSync(join(dir, 'logs_cache')), `node ${id}: the cache group's log`);
      assert.ok(existsSync(join(dir, 'cluster_id')), `node ${id}: the cluster id`);
      for (const sql of ['logs', join('state_machine', 'db'), join('state_machine', 'snapshots')])
        assert.equal(existsSync(join(dir, sql)), false, `node ${id} wrote ${sql}`);
    }
    await Promise.all([1, 2, 3].map((id) => cluster.start(id)));
    await cluster.waitForMembership({ voters: [1, 2, 3] });
    const again = await cluster.client([2]);
    assert.equal(await again.cache('c').get('k', { consistency: 'linearizable' }), 'kept');
  });

  test('a data directory holding the SQL group state is refused: a node cannot change its setting', async () => {
    assert.equal(await cluster.stop(3), 0);
    mkdirSync(join(cluster.node(3).dataDir, 'logs'));
    const ready = await cluster.startAndWatch(3, 30_000).catch((e: unknown) => String(e));
    assert.notEqual(ready, true, 'node 3 started');
    assert.match(cluster.node(3).output, /holds the SQL group's state: this node ran with sqlite = true/);
  });
});
