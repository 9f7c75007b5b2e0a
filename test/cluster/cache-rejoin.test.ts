/**
 * The cache group of a node that lost its log but kept its Raft hard state (`logs_cache` holds
 * `hard-state` alone: a node stopped after its first durable term or vote, or an operator who
 * removed the log files) starts as the SQL group does (start-decision.ts): it knows no
 * membership and joins the group again. Before, it started from the genesis membership, where
 * node 1 is the only voter: node 1 alone led a cache group of its own and acknowledged writes
 * the real group never saw.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { eventually, TestCluster } from './harness.js';

describe('cache group: node 1 whose cache log kept only its hard state', () => {
  let c: TestCluster;
  before(async () => {
    c = await TestCluster.create({ nodes: 3 });
  });
  after(async () => {
    await c?.close();
  });

  test('started alone it neither leads the cache group nor takes writes; it rejoins with every entry once the others are back', async () => {
    const db = await c.client();
    await db.cache('c').put('before', 'kept');
    await c.dropClient(db);
    for (const id of [2, 3, 1]) assert.equal(await c.stop(id), 0, `node ${id} stops cleanly`);

    const logs = join(c.node(1).dataDir, 'logs_cache');
    for (const f of readdirSync(logs)) if (f !== 'hard-state') rmSync(join(logs, f), { recursive: true });
    rmSync(join(c.node(1).dataDir, 'state_machine', 'cache_snapshots'), { recursive: true, force: true });
    assert.ok(existsSync(join(logs, 'hard-state')), 'the hard state is kept');

    // Alone, node 1 can prove neither that the group exists nor that none does: it waits.
    const member = await c.startAndWatch(1, 6000);
    assert.equal(member, false, 'node 1 started alone as a member of the cache group');
    // A loaded machine may take longer than the watch to open the API port: wait for it.
    const ready = await eventually('node 1 to answer on its API port', () => c.http(1, '/ready'), 30_000);
    assert.notEqual(ready.status, 200, 'node 1 reports ready alone');
    const alone = await c.client([1], { requestTimeoutMs: 3000 });
    await assert.rejects(alone.cache('c').put('alone', 'x'), 'node 1 alone took a cache write');
    await c.dropClient(alone);
    await c.kill(1);

    await Promise.all([c.start(2), c.start(3)]);
    await c.start(1);
    await c.waitForMembership({ voters: [1, 2, 3] });
    const m = await c.metricsOf(1);
    assert.deepEqual([...m.cache.voters].sort(), [1, 2, 3], 'node 1 is a voter of the cache group again');
    const one = await c.client([1]);
    await eventually('node 1 to hold the entry written before', async () => {
      const v = await one.cache('c').get('before', { consistency: 'linearizable' });
      return v === 'kept' ? true : null;
    });
    await one.cache('c').put('after', 'through 1');
    const three = await c.client([3]);
    assert.equal(await three.cache('c').get('after', { consistency: 'linearizable' }), 'through 1');
  });
});
