/**
 * A 3-node cluster of real processes: formation, writes through any node, reads everywhere,
 * linearizable reads on followers, the HTTP API, graceful shutdown and restart.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { HiqliteError } from '../../src/index.js';
import { eventually, SECRET_API, TestCluster } from './harness.js';

describe('a 3-node cluster of processes', () => {
  let c: TestCluster;
  before(async () => {
    c = await TestCluster.create({ nodes: 3 });
  });
  after(async () => {
    await c?.close();
  });

  test('forms one cluster of three voters with one leader', async () => {
    const leader = await c.leader();
    for (const id of [1, 2, 3]) {
      const m = await c.metricsOf(id);
      assert.deepEqual([...m.voters].sort(), [1, 2, 3]);
      assert.equal(m.leaderId, leader);
    }
  });

  test('a write through any node is acknowledged once and readable on every node', async () => {
    const db = await c.client([2]);
    await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    const r = await db.execute('INSERT INTO t (id, v) VALUES (?, ?)', [1, 'one']);
    assert.equal(r.rowsAffected, 1);
    for (const id of [1, 2, 3]) {
      const one = await c.client([id]);
      const rows = await one.query('SELECT id, v FROM t', [], { minIndex: r.logIndex });
      assert.deepEqual(rows, [{ id: 1, v: 'one' }]);
    }
  });

  test('queryConsistent on a follower sees every acknowledged write', async () => {
    const leader = await c.leader();
    const follower = [1, 2, 3].find((id) => id !== leader) as number;
    const writer = await c.client([leader]);
    const reader = await c.client([follower]);
    for (let i = 0; i < 20; i++) {
      await writer.execute('INSERT INTO t (id, v) VALUES (?, ?)', [100 + i, `v${i}`]);
      const rows = await reader.queryConsistent<{ n: number }>('SELECT count(*) AS n FROM t WHERE id >= 100');
      assert.equal(rows[0]?.n, i + 1);
    }
  });

  test('a constraint violation is a typed error and applies nothing', async () => {
    const db = await c.client();
    await assert.rejects(db.execute('INSERT INTO t (id, v) VALUES (1, ?)', ['dup']), (e: unknown) => {
      return e instanceof HiqliteError && e.code === 'HQL_CONSTRAINT';
    });
    const rows = await db.queryConsistent('SELECT v FROM t WHERE id = 1');
    assert.deepEqual(rows, [{ v: 'one' }]);
  });

  test('the HTTP API: health, readiness, metrics, JSON execute and query with the secret header', async () => {
    const health = await c.http(1, '/health');
    assert.equal(health.status, 200);
    assert.equal((await c.http(2, '/ready')).status, 200);
    const three = await c.client([3]);
    await three.query('SELECT 1');
    const metrics = await c.http(3, '/metrics');
    assert.match(String(metrics.body), /hiqlite_raft_commit_index \d+/);
    // A client is connected to node 3: the API connection gauge counts it.
    assert.match(String(metrics.body), /hiqlite_api_connections [1-9]\d*/);
    assert.match(String(metrics.body), /hiqlite_api_tcp_connections [1-9]\d*/);
    assert.match(String(metrics.body), /hiqlite_api_unauthenticated_connections \d+/);
    assert.match(String(metrics.body), /hiqlite_raft_unauthenticated_connections \d+/);
    const headers = { 'x-api-secret': SECRET_API, 'content-type': 'application/json' };
    const ins = await c.http(3, '/execute', {
      method: 'POST',
      headers,
      body: JSON.stringify({ sql: 'INSERT INTO t (id, v) VALUES (?, ?)', params: [500, 'http'] }),
    });
    assert.equal(ins.status, 200);
    const q = await c.http(1, '/query', {
      method: 'POST',
      headers,
      body: JSON.stringify({ sql: 'SELECT v FROM t WHERE id = 500', consistency: 'linearizable' }),
    });
    assert.deepEqual(q.body, { ok: true, value: [{ v: 'http' }] });
    const denied = await c.http(1, '/query', {
      method: 'POST',
      headers: { 'x-api-secret': 'wrong-secret-wrong-secret', 'content-type': 'application/json' },
      body: JSON.stringify({ sql: 'SELECT 1' }),
    });
    assert.equal(denied.status, 401);
  });

  test('graceful shutdown of the leader hands over leadership and exits 0; the node rejoins on restart', async () => {
    const leader = await c.leader();
    const code = await c.stop(leader);
    assert.equal(code, 0);
    const next = await c.leader();
    assert.notEqual(next, leader);
    const db = await c.client([next]);
    await db.execute('INSERT INTO t (id, v) VALUES (?, ?)', [900, 'while-down']);
    await c.start(leader);
    const back = await c.client([leader]);
    await eventually('restarted node catches up', async () => {
      const rows = await back.query<{ v: string }>('SELECT v FROM t WHERE id = 900');
      return rows[0]?.v === 'while-down';
    });
  });

  test('a member that reaches no leader (restarted with a wrong secret_raft) is not ready, and says why', async () => {
    const leader = await c.leader();
    const follower = [1, 2, 3].find((id) => id !== leader) as number;
    assert.equal(await c.stop(follower), 0);
    const file = c.node(follower).configFile;
    const good = readFileSync(file, 'utf8');
    writeFileSync(
      file,
      good.replace(/secret_raft = "[^"]*"/, 'secret_raft = "not-the-cluster-secret-raft-0123"'),
    );
    try {
      // It starts from its own state (a member), but no other node accepts its connections.
      await c.startAndWatch(follower, 20_000);
      const cut = await eventually(
        'the node to finish starting',
        async () => {
          const r = await c.http(follower, '/ready');
          return (r.body as { reason?: string }).reason === 'starting' ? null : r;
        },
        30_000,
      );
      assert.equal(cut.status, 503, JSON.stringify(cut.body));
      assert.deepEqual(cut.body, { ready: false, reason: 'no leader known' });
      // /health says why, peer by peer (no address in it: the route needs no secret).
      const others = [1, 2, 3].filter((id) => id !== follower);
      const health = await eventually('/health to name the refusals', async () => {
        const r = await c.http(follower, '/health');
        const peers = (r.body as { peers?: Record<string, string> }).peers ?? {};
        return others.every((id) => peers[String(id)] !== undefined) ? peers : null;
      });
      for (const id of others)
        assert.match(health[String(id)] ?? '', /^handshake: the server refused our proof \(wrong secret/);
    } finally {
      await c.stop(follower);
      writeFileSync(file, good);
    }
    await c.start(follower);
    const back = await eventually('the node to be ready again', async () => {
      const r = await c.http(follower, '/ready');
      return r.status === 200 ? r : null;
    });
    assert.deepEqual(back.body, { ready: true });
  });
});
