/**
 * Every node of a cluster has the same `sqlite` setting: a cache-only node (`sqlite = false`)
 * asking to join a cluster with SQLite is refused before it becomes a member of any group (the
 * other way round: cache-only.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CACHE_ONLY, refusedStart } from './cache-only-helpers.js';
import { TestCluster } from './harness.js';

describe('a cache-only node meeting a cluster with SQLite', () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await TestCluster.create({
      nodes: 3,
      startNodes: [1, 2],
      toml: (id) => (id === 3 ? CACHE_ONLY : ''),
    });
  });

  after(async () => {
    await cluster?.close();
  });

  test('is refused when it asks to join, naming the setting; the cluster is unchanged', async () => {
    const output = await refusedStart(cluster, 3);
    assert.match(output, /every node of a cluster must have the same sqlite setting/);
    const m = await cluster.waitForMembership({ voters: [1, 2] });
    assert.deepEqual(m.get(1)?.cache.learners, [], 'not even a learner of the cache group');
    assert.equal(m.get(1)?.sqlite, true);
  });
});
