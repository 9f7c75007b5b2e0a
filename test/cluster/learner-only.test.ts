/**
 * A node configured with `learner_only = true` (upstream learner_only.rs): it joins as a
 * non-voting learner and stays one, reports ready, serves reads from its replica and forwards
 * writes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TestCluster } from './harness.js';

describe('a learner-only node in a cluster of processes', () => {
  let c: TestCluster;
  before(async () => {
    c = await TestCluster.create({ nodes: 3, toml: (id) => (id === 3 ? 'learner_only = true' : '') });
  });
  after(async () => {
    await c?.close();
  });

  test('stays a learner: in the membership of every node, never a voter', async () => {
    const metrics = await c.waitForMembership({ voters: [1, 2], learners: [3] });
    assert.equal(metrics.get(3)?.role, 'learner');
    for (const id of [1, 2]) assert.notEqual(metrics.get(id)?.role, 'learner');
  });

  test('reports ready and healthy', async () => {
    assert.equal((await c.http(3, '/ready')).status, 200);
    const health = await c.http(3, '/health');
    assert.equal(health.status, 200);
    assert.equal((health.body as { member?: boolean }).member, true);
  });

  test('serves local and linearizable reads, and forwards writes', async () => {
    const learner = await c.client([3]);
    await learner.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    const voter = await c.client([1]);
    const w = await voter.execute('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'from a voter']);
    assert.deepEqual(await learner.query('SELECT v FROM t WHERE id = 1', [], { minIndex: w.logIndex }), [
      { v: 'from a voter' },
    ]);
    const forwarded = await learner.execute('INSERT INTO t (id, v) VALUES (?, ?)', [
      2,
      'through the learner',
    ]);
    assert.equal(forwarded.rowsAffected, 1);
    assert.deepEqual(await learner.queryConsistent('SELECT id, v FROM t ORDER BY id'), [
      { id: 1, v: 'from a voter' },
      { id: 2, v: 'through the learner' },
    ]);
    assert.deepEqual(await voter.queryConsistent('SELECT count(*) AS n FROM t'), [{ n: 2 }]);
  });

  test('is still a learner after a restart', async () => {
    assert.equal(await c.stop(3), 0);
    await c.start(3);
    await c.waitForMembership({ voters: [1, 2], learners: [3] });
    assert.equal((await c.http(3, '/ready')).status, 200);
  });

  test('a learner that lost its volume is re-added and re-syncs', async () => {
    const db = await c.client([1, 2]);
    await db.execute('CREATE TABLE IF NOT EXISTS lost (id INTEGER PRIMARY KEY)');
    assert.equal(await c.stop(3), 0);
    c.wipe(3);
    for (let i = 0; i < 20; i++) await db.execute('INSERT INTO lost (id) VALUES (?)', [i]);
    await c.start(3);
    await c.waitForMembership({ voters: [1, 2], learners: [3] });
    const three = await c.client([3]);
    const rows = await three.queryConsistent<{ n: number }>('SELECT count(*) AS n FROM lost');
    assert.deepEqual(rows, [{ n: 20 }]);
  });
});
