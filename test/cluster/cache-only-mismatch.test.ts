/**
 * Every node of a cluster has the same `sqlite` setting: a cache-only node (`sqlite = false`)
 * asking to join a cluster with SQLite is refused before it becomes a member of any group (the
 * other way round: cache-only.test.ts).
 */
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { CACHE_ONLY, refusedStart } from './cache-only-helpers.js';
import { TestCluster } from './harness.js';

describe('a cache-only node meeting a cluster with SQLite', () => {
  let cluster: TestCluster;

  before(async () => {
    // The cluster is founded by all three (node 1 needs every node's answer); node 3 then
    // loses its volume and comes back configured as a cache-only node.
    cluster = await TestCluster.create({ nodes: 3 });
    await cluster.kill(3);
    cluster.wipe(3);
    appendFileSync(cluster.node(3).configFile, `\n${CACHE_ONLY}\n`);
  });

  after(async () => {
    await cluster?.close();
  });

  test('is refused when it asks to join, naming the setting; the cluster is unchanged', async () => {
    const output = await refusedStart(cluster, 3);
    assert.match(output, /every node of a cluster must have the same sqlite setting/);
    const m = await cluster.waitForMembership({ voters: [1, 2, 3] });
    assert.deepEqual(m.get(1)?.cache.learners, [], 'not even a learner of the cache group');
    assert.equal(m.get(1)?.sqlite, true);
    const db = await cluster.client([1, 2]);
    await db.execute('CREATE TABLE t (v TEXT NOT NULL)');
    assert.equal((await db.execute('INSERT INTO t (v) VALUES (?)', ['still serving'])).rowsAffected, 1);
  });
});
