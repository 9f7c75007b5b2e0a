/**
 * A rolling restart, the way an operator upgrades a cluster: every node in turn is stopped
 * gracefully (SIGTERM: a leader hands over first) and started again, while remote clients write
 * and listen. What they rely on: no write fails, none acknowledged is lost, and a listener
 * receives every notification once, in order, though each node it was connected to went away.
 * A node that is shutting down answers HQL_CLOSED until its port closes: the clients move to
 * another node at once (cluster-link.ts, NODE_CANNOT_SERVE).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { checkReplicasOf, notifications, writer } from './client-load.js';
import { eventually, TestCluster } from './harness.js';

describe('a rolling restart under remote writes and a remote listener', () => {
  let c: TestCluster;
  before(async () => {
    c = await TestCluster.create({ nodes: 3 });
    const db = await c.client();
    await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)');
  });
  after(async () => {
    await c?.close();
  });

  test('no write fails or is lost, no notification is missed', async () => {
    const db = await c.client([1, 2, 3]);
    const ticks = await notifications(await c.client([1, 2, 3]), await c.client([3, 2, 1]), 'ticks');
    const w = writer(db, 'rolling', 8);
    for (const id of [1, 2, 3]) {
      const before = w.acked.length;
      await eventually(`writes before node ${id} stops`, async () => w.acked.length >= before + 50);
      assert.equal(await c.stop(id), 0, `node ${id} stops cleanly`);
      const during = w.acked.length;
      await eventually(`writes while node ${id} is down`, async () => w.acked.length >= during + 50);
      await c.start(id);
    }
    const sent = ticks.sent;
    await eventually('notifications after the restarts', async () => ticks.sent >= sent + 20);
    await ticks.stop();
    await w.stop();
    assert.deepEqual([...w.errors], [], `no write failed: ${w.failures}`);
    await checkReplicasOf(c, w.acked, w.lastIndex);
  });
});
