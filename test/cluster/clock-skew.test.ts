/**
 * Three `hiqlite serve` processes under libfaketime, each reading its clock offset from a file:
 * the real system clock of the process (every read of the wall clock in it, ours or a
 * library's). The leader's clock is stepped an hour ahead while a TTL runs. Log time follows the
 * median of the nodes' clocks (src/node/peer-clocks.ts): the leader knows it is an hour ahead,
 * and what it stamps next carries the cluster's time, so the TTL does not end early and a SQL
 * row written through it does not get its time. (Stamped from the leader's own clock, the TTL
 * ended at its next write, and the row was an hour ahead.)
 *
 * Needs Debian's `faketime` package (installed by .ci/run).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { faketimeEnv, writeClockOffset } from '../support/libfaketime.js';
import { eventually, sleep, TestCluster } from './harness.js';

const HOUR_MS = 3_600_000;

async function gauge(c: TestCluster, id: number, name: string): Promise<number> {
  const { body } = await c.http(id, '/metrics');
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(String(body));
  assert.ok(m !== null, `${name} on node ${id}`);
  return Number(m[1]);
}

describe('the leader’s system clock stepped an hour ahead (libfaketime)', () => {
  let c: TestCluster;
  const clockFile = (id: number) => join(c.dir, `clock-${id}`);
  before(async () => {
    c = await TestCluster.create({ nodes: 3, startNodes: [], toml: 'clock_probe_interval_ms = 200' });
    await Promise.all(
      [1, 2, 3].map((id) => {
        writeClockOffset(clockFile(id), 0);
        return c.start(id, { env: faketimeEnv(clockFile(id)) });
      }),
    );
  });
  after(async () => {
    await c?.close();
  });

  test('TTLs running at the step do not end early, and rows written through it get the cluster’s time', async () => {
    const leader = await c.leader();
    const db = await c.client([leader]);
    await db.execute('CREATE TABLE t (day REAL NOT NULL)');
    const sessions = db.cache('sessions');
    await sessions.put('s1', 'alive', { ttlMs: 30_000 });

    writeClockOffset(clockFile(leader), HOUR_MS);
    await eventually('the leader to see that its clock is an hour ahead', async () => {
      return Math.abs((await gauge(c, leader, 'hiqlite_clock_offset_ms')) - HOUR_MS) < 5_000;
    });
    for (const id of [1, 2, 3].filter((x) => x !== leader))
      assert.ok(
        Math.abs(await gauge(c, id, 'hiqlite_clock_offset_ms')) < 5_000,
        `node ${id} keeps its clock`,
      );

    const beforeMs = Date.now();
    await db.execute("INSERT INTO t VALUES (julianday('now'))");
    for (let i = 0; i < 5; i++) await sessions.put(`other${i}`, i);
    await sleep(500); // expire proposals run every 200 ms on the leader
    assert.equal(await c.leader(), leader, 'the leader did not change');
    for (const id of [1, 2, 3]) {
      const reader = await c.client([id]);
      assert.equal(
        await reader.cache('sessions').get('s1', { consistency: 'linearizable' }),
        'alive',
        `the 30 s TTL did not end early (read on node ${id})`,
      );
    }
    const [row] = await db.query<{ day: number }>('SELECT day FROM t');
    const stampedMs = ((row?.day ?? 0) - 2_440_587.5) * 86_400_000;
    assert.ok(
      Math.abs(stampedMs - beforeMs) < 60_000,
      `'now' of a row written through the leader is the cluster's time: ${Math.round((stampedMs - beforeMs) / 1000)} s off`,
    );
    for (const id of [1, 2, 3])
      assert.ok(
        (await gauge(c, id, 'hiqlite_cache_log_clock_ahead_ms')) < 5_000,
        `log time not ahead on ${id}`,
      );
  });
});
