/**
 * Clients of a proxy through faults, on a 3-node cluster of processes: the leader killed with
 * SIGKILL, and the proxy itself killed and restarted. Concurrent writers increment one counter;
 * every increment is a write with a client session, retried across the fault (by the proxy and by
 * the client), so the counter must end at exactly the number of increments: none lost, none
 * applied twice.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, type HiqliteClient } from '../../src/index.js';
import { SECRET_API, sleep, TestCluster } from '../cluster/harness.js';
import { Proxies, type ProxyProcess } from './proxy-harness.js';

const WRITERS = 4;
const INCREMENTS_PER_WRITER = 30;

/**
 * WRITERS concurrent writers, INCREMENTS_PER_WRITER increments each, of counter `id`; `fault`
 * runs once a quarter of them are acknowledged. Every increment must be acknowledged.
 */
async function incrementThrough(
  db: HiqliteClient,
  id: number,
  fault: () => Promise<void>,
): Promise<{ afterFault: number }> {
  let done = 0;
  let faulted: Promise<void> | null = null;
  let afterFault = 0;
  const writer = async () => {
    for (let i = 0; i < INCREMENTS_PER_WRITER; i++) {
      await db.execute('UPDATE counter SET n = n + 1 WHERE id = ?', [id]);
      done++;
      if (faulted !== null) afterFault++;
      if (faulted === null && done >= (WRITERS * INCREMENTS_PER_WRITER) / 4) faulted = fault();
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, writer));
  await faulted;
  return { afterFault };
}

describe('clients of a proxy through faults', () => {
  let c: TestCluster;
  let proxies: Proxies;
  let p: ProxyProcess;
  before(async () => {
    c = await TestCluster.create({ nodes: 3 });
    proxies = new Proxies(c.dir, c.apiAddresses());
    p = await proxies.start('proxy');
    const db = await connect({ nodes: [p.address], secretApi: SECRET_API, requestTimeoutMs: 20_000 });
    await db.execute('CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
    await db.execute('INSERT INTO counter (id, n) VALUES (1, 0), (2, 0)');
    await db.close();
  });
  after(async () => {
    await proxies?.close();
    await c?.close();
  });

  test('a client keeps working across a leader kill -9, and exactly-once holds', async () => {
    const db = await connect({ nodes: [p.address], secretApi: SECRET_API, requestTimeoutMs: 30_000 });
    try {
      const leader = await c.leader();
      const { afterFault } = await incrementThrough(db, 1, () => c.kill(leader));
      assert.ok(afterFault > 0, 'writes went on after the kill');
      assert.deepEqual(await db.queryConsistent('SELECT n FROM counter WHERE id = 1'), [
        { n: WRITERS * INCREMENTS_PER_WRITER },
      ]);
      const m = await db.metrics();
      assert.notEqual(m.leaderId, leader, 'a new leader serves');
      await c.start(leader);
    } finally {
      await db.close();
    }
  });

  test("a proxy restart is survived by its clients' reconnects, and exactly-once holds", async () => {
    const db = await connect({ nodes: [p.address], secretApi: SECRET_API, requestTimeoutMs: 30_000 });
    try {
      const { afterFault } = await incrementThrough(db, 2, async () => {
        await p.kill();
        await sleep(300);
        await p.start();
      });
      assert.ok(afterFault > 0, 'writes went on after the restart');
      assert.deepEqual(await db.queryConsistent('SELECT n FROM counter WHERE id = 2'), [
        { n: WRITERS * INCREMENTS_PER_WRITER },
      ]);
    } finally {
      await db.close();
    }
  });
});
