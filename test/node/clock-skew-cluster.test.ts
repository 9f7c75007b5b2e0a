/**
 * Three nodes, one of them (the leader) with a clock that jumps an hour ahead. Log time follows
 * the median of the nodes' clocks (src/node/peer-clocks.ts), so the leader's next stamps carry the
 * cluster's time: a TTL running at the jump does not end early, SQL's 'now' is not an hour ahead,
 * and `/metrics` shows the node's offset. (Stamped from the leader's own clock, the TTL ended at
 * once and every row written got a time an hour ahead.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { type HiqliteNode, start } from '../../src/index.js';
import type { Clock } from '../../src/lib/clock.js';
import type { NodeConfig, NodeEntry } from '../../src/node/config/config.js';
import { freePorts } from '../support/free-ports.js';
import { TEST_SECRETS } from '../support/one-node-config.js';
import { skewedClock } from '../support/skewed-clock.js';

const HOUR_MS = 3_600_000;

async function gauge(cfg: NodeConfig, name: string): Promise<number> {
  const text = await (
    await fetch(`http://${(cfg.nodes[cfg.nodeId - 1] as NodeEntry).addrApi}/metrics`)
  ).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m !== null, `${name} is exported`);
  return Number(m[1]);
}

describe('a leader whose clock jumps an hour ahead', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-clock-skew-'));
  const nodes: HiqliteNode[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    rmSync(root, { recursive: true, force: true });
  });

  test('stamps the cluster’s time: TTLs do not end early and SQL time stays true', async () => {
    const ports = await freePorts(6);
    const members = [1, 2, 3].map((id) => ({
      id,
      addrRaft: `127.0.0.1:${ports[2 * id - 2]}`,
      addrApi: `127.0.0.1:${ports[2 * id - 1]}`,
    }));
    const cfgs: NodeConfig[] = members.map((m) => ({
      nodeId: m.id,
      nodes: members,
      dataDir: join(root, `n${m.id}`),
      clockProbeIntervalMs: 200,
      ...TEST_SECRETS,
    }));
    const clocks = cfgs.map(() => skewedClock());
    const logger = pino({ level: 'error' });
    const started = cfgs.map((cfg, i) => start(cfg, { thread: 'main', clock: clocks[i] as Clock, logger }));
    nodes.push(...(await Promise.all(started)));
    const [n1, n2] = nodes as [HiqliteNode, HiqliteNode];
    await Promise.all(nodes.map((n) => n.waitUntilHealthy({ timeoutMs: 30_000 })));
    const [cfg1, cfg2] = cfgs as [NodeConfig, NodeConfig];
    assert.equal(await gauge(cfg1, 'hiqlite_raft_is_leader'), 1, 'node 1 leads');

    await n1.execute('CREATE TABLE t (day REAL NOT NULL)');
    await n1.cache('c').put('session', 'alive', { ttlMs: 30_000 });
    const beforeMs = Date.now();
    (clocks[0] as { offsetMs: number }).offsetMs = HOUR_MS; // stepped forward
    // Node 1 knows the others' clocks (asked every 200 ms), so it sees its own is an hour ahead.
    const deadline = Date.now() + 10_000;
    while (
      Math.abs((await gauge(cfg1, 'hiqlite_clock_offset_ms')) - HOUR_MS) > 5_000 &&
      Date.now() < deadline
    )
      await sleep(50);
    assert.ok(Math.abs((await gauge(cfg1, 'hiqlite_clock_offset_ms')) - HOUR_MS) < 5_000, 'offset shown');
    assert.ok(
      Math.abs(await gauge(cfg2, 'hiqlite_clock_offset_ms')) < 5_000,
      "node 2's clock is the cluster's",
    );
    assert.ok(Math.abs((await n1.metrics()).clockOffsetMs - HOUR_MS) < 5_000, 'metrics() says so too');
    assert.ok(Math.abs((await n2.metrics()).clockOffsetMs) < 5_000);

    await n1.cache('c').put('other', 1); // stamped by node 1
    await n1.execute("INSERT INTO t VALUES (julianday('now'))");
    await sleep(300); // expire proposals run every 200 ms
    assert.equal(await n1.cache('c').get('session'), 'alive', 'the TTL did not end early (node 1)');
    assert.equal(
      await n2.cache('c').get('session', { consistency: 'linearizable' }),
      'alive',
      'nor on node 2',
    );
    const [row] = await n1.query<{ day: number }>('SELECT day FROM t');
    const stampedMs = ((row?.day ?? 0) - 2_440_587.5) * 86_400_000;
    assert.ok(
      Math.abs(stampedMs - beforeMs) < 60_000,
      `SQL 'now' is the cluster's time, not node 1's: ${Math.round((stampedMs - beforeMs) / 1000)} s off`,
    );
    assert.ok((await gauge(cfg1, 'hiqlite_cache_log_clock_ahead_ms')) < 5_000, 'log time is not ahead');
    assert.equal(await gauge(cfg1, 'hiqlite_clock_peers_known'), 2);

    // Node 3 goes down: node 1 knows two clocks, its own (an hour ahead) and node 2's, which
    // disagree. The cluster clock it carried says which is right: it keeps stamping node 2's time.
    await (nodes[2] as HiqliteNode).close();
    const gone = Date.now() + 10_000;
    while ((await gauge(cfg1, 'hiqlite_clock_peers_known')) !== 1 && Date.now() < gone) await sleep(50);
    assert.equal(await gauge(cfg1, 'hiqlite_clock_peers_known'), 1, "node 3's clock aged out");
    assert.ok(
      Math.abs((await gauge(cfg1, 'hiqlite_clock_offset_ms')) - HOUR_MS) < 5_000,
      'still an hour off',
    );
    await n1.cache('c').put('after', 2, { ttlMs: 30_000 });
    await sleep(300);
    assert.equal(await n1.cache('c').get('session'), 'alive', 'the TTL did not end early with node 3 down');
    assert.equal(await n1.cache('c').get('after'), 2);
  });
});
