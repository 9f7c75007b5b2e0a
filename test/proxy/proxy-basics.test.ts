/**
 * `hiqlite proxy` in front of a 3-node cluster of processes: a remote client (connect() as it
 * is) and the HTTP JSON API work through it, several proxies run side by side, the `leader` op
 * names the proxy, membership requests are refused, wrong secrets are refused on both sides, and
 * a proxy stopped gracefully leaves no write of its clients in doubt.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ClusterLink } from '../../src/client/cluster-link.js';
import { connect, HiqliteError, type Metrics, SqlError } from '../../src/index.js';
import { CLIENT_SESSION_PREFIX } from '../../src/sm/sql/client-proposal.js';
import { prepareForProposal } from '../../src/sm/sql/determinism.js';
import { ApiConnection, REMOTE_CLIENT_ID } from '../../src/transport/api-connection.js';
import { SECRET_API, TestCluster } from '../cluster/harness.js';
import { Proxies, type ProxyProcess } from './proxy-harness.js';

async function json(
  proxy: ProxyProcess,
  route: string,
  body: unknown,
  secret = SECRET_API,
): Promise<{ status: number; body: { ok: boolean; value?: unknown; error?: { code: string } } }> {
  const res = await fetch(`http://${proxy.address}${route}`, {
    method: 'POST',
    headers: { 'x-api-secret': secret, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: (await res.json()) as never };
}

/** A binary-protocol connection to `proxy`, as a remote client opens it. */
function openVia(proxy: ProxyProcess): Promise<ApiConnection> {
  return ApiConnection.open({
    host: '127.0.0.1',
    port: proxy.port,
    secret: SECRET_API,
    localId: REMOTE_CLIENT_ID,
    connectTimeoutMs: 3000,
    frameBytesMax: 1 << 20,
    inflightMax: 16,
  });
}

/** Proposes prepared command bytes through `proxy`: the answer's value. */
async function proposeVia(proxy: ProxyProcess, data: Uint8Array): Promise<unknown> {
  const conn = await openVia(proxy);
  try {
    const r = await conn.request({ op: 'propose', group: 'sql', data, timeoutMs: 10_000 }, 15_000);
    assert.ok(r.ok, JSON.stringify(r));
    return r.value;
  } finally {
    conn.close();
  }
}

describe('the proxy in front of a 3-node cluster', () => {
  let c: TestCluster;
  let proxies: Proxies;
  let a: ProxyProcess;
  before(async () => {
    c = await TestCluster.create({ nodes: 3 });
    proxies = new Proxies(c.dir, c.apiAddresses());
    a = await proxies.start('proxy-a');
  });
  after(async () => {
    await proxies?.close();
    await c?.close();
  });

  test('a remote client executes and queries through the proxy', async () => {
    const db = await connect({ nodes: [a.address], secretApi: SECRET_API, requestTimeoutMs: 20_000 });
    try {
      await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, data BLOB)');
      const w = await db.execute('INSERT INTO t (name, data) VALUES (?, ?)', ['ada', new Uint8Array([1, 2])]);
      assert.equal(w.rowsAffected, 1);
      assert.ok(w.logIndex > 0);
      assert.deepEqual(await db.query('SELECT name, data FROM t', [], { minIndex: w.logIndex }), [
        { name: 'ada', data: new Uint8Array([1, 2]) },
      ]);
      assert.deepEqual(await db.queryConsistent('SELECT count(*) AS n FROM t'), [{ n: 1 }]);
      const results = await db.txn([
        ['INSERT INTO t (name) VALUES (?)', ['grace']],
        ['UPDATE t SET name = upper(name) WHERE name = ?', ['grace']],
      ]);
      assert.deepEqual(
        results.map((r) => r.rowsAffected),
        [1, 1],
      );
      assert.deepEqual(await db.executeReturning('DELETE FROM t WHERE name = ? RETURNING name', ['GRACE']), [
        { name: 'GRACE' },
      ]);
      // A SQL error keeps its class and details through the proxy.
      await assert.rejects(
        db.execute('INSERT INTO t (id, name) VALUES (1, ?)', ['dup']),
        (e: unknown) => e instanceof SqlError && e.code === 'HQL_CONSTRAINT' && e.sqliteCode !== undefined,
      );
      const m = await db.metrics();
      assert.notEqual(m.leaderId, null);
    } finally {
      await db.close();
    }
  });

  test('the proxy answers `leader` with its own address, and refuses membership requests', async () => {
    const conn = await openVia(a);
    try {
      const r = await conn.request({ op: 'leader' }, 10_000);
      assert.ok(r.ok);
      const v = r.value as { leaderId: number | null; leaderApi: string | null; member: boolean };
      assert.equal(v.leaderId, await c.leader());
      assert.equal(v.leaderApi, a.address);
      assert.equal(v.member, false);
      const limits = await conn.request({ op: 'limits' }, 10_000);
      assert.ok(
        limits.ok && typeof (limits.value as { commandBytesMax: unknown }).commandBytesMax === 'number',
      );
      // The largest frame the proxy takes: a client refuses a larger request, never sends it.
      const frame = (limits.value as { frameBytesMax?: unknown }).frameBytesMax;
      assert.ok(typeof frame === 'number' && frame >= 2 * 1024 * 1024, JSON.stringify(limits.value));
      const join = await conn.request({ op: 'join', nodeId: 1, nonce: 'x' }, 10_000);
      assert.ok(!join.ok && join.error.code === 'HQL_UNAUTHORIZED', JSON.stringify(join));
    } finally {
      conn.close();
    }
  });

  test("the proxy's link follows the leader: leader-routed requests reach the leader, others the first node", async () => {
    const leader = await c.leader();
    const follower = [1, 2, 3].find((id) => id !== leader) as number;
    const link = new ClusterLink({
      nodes: [`127.0.0.1:${c.node(follower).apiPort}`, `127.0.0.1:${c.node(leader).apiPort}`],
      secretApi: SECRET_API,
      requestTimeoutMs: 10_000,
      connectTimeoutMs: 3000,
      followLeader: true,
      frameBytesMax: 1 << 20,
      inflightMax: 16,
    });
    try {
      const viaLeader = (await link.call({ op: 'metrics' }, { kind: 'other', route: 'leader' })) as Metrics;
      const viaAny = (await link.call({ op: 'metrics' }, { kind: 'other', route: 'any' })) as Metrics;
      assert.equal(viaLeader.nodeId, leader);
      assert.equal(viaAny.nodeId, follower);
    } finally {
      await link.close();
    }
  });

  test('the HTTP JSON API works through the proxy, with the same routes and secret header', async () => {
    const created = await json(a, '/execute', { sql: 'CREATE TABLE j (id INTEGER PRIMARY KEY, v TEXT)' });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const ins = await json(a, '/execute', {
      sql: 'INSERT INTO j (v) VALUES (?) RETURNING id',
      params: ['x'],
      returning: true,
    });
    assert.equal(ins.status, 200);
    assert.deepEqual((ins.body.value as { rows: unknown }).rows, [{ id: 1 }]);
    const txn = await json(a, '/txn', {
      statements: [
        ['INSERT INTO j (v) VALUES (?)', ['y']],
        ['DELETE FROM j WHERE v = ?', ['x']],
      ],
    });
    assert.equal(txn.status, 200);
    const batch = await json(a, '/batch', {
      sql: "INSERT INTO j (v) VALUES ('z'); INSERT INTO j (id, v) VALUES (2, 'dup')",
    });
    assert.equal(batch.status, 200);
    const results = (batch.body.value as { results: { ok: boolean }[] }).results;
    assert.deepEqual(
      results.map((r) => r.ok),
      [true, false],
    );
    const q = await json(a, '/query', { sql: 'SELECT v FROM j ORDER BY id', consistency: 'linearizable' });
    assert.equal(q.status, 200);
    assert.deepEqual(q.body.value, [{ v: 'y' }, { v: 'z' }]);
    const refused = await json(a, '/query', { sql: 'SELECT 1' }, 'wrong-secret-wrong-secret');
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error?.code, 'HQL_UNAUTHORIZED');
    const bad = await json(a, '/query', { sql: 'SELECT * FROM nope' });
    assert.equal(bad.status, 400);
    const health = await fetch(`http://${a.address}/health`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as { role: string }).role, 'proxy');
  });

  test('two proxies side by side serve the same cluster; a client fails over from one to the other', async () => {
    const b = await proxies.start('proxy-b');
    const viaA = await connect({ nodes: [a.address], secretApi: SECRET_API, requestTimeoutMs: 20_000 });
    const viaBoth = await connect({
      nodes: [b.address, a.address],
      secretApi: SECRET_API,
      requestTimeoutMs: 20_000,
    });
    try {
      await viaA.execute('CREATE TABLE side (id INTEGER PRIMARY KEY)');
      const w = await viaBoth.execute('INSERT INTO side (id) VALUES (1)');
      assert.deepEqual(await viaA.query('SELECT id FROM side', [], { minIndex: w.logIndex }), [{ id: 1 }]);
      // A client's retry of a proposal, through another proxy: the same bytes (session and
      // sequence number) are answered with the original result and applied once.
      const data = prepareForProposal(
        {
          type: 'execute',
          sql: 'INSERT INTO side (id) SELECT max(id) + 100 FROM side',
          params: [],
          returning: false,
        },
        { nowMs: Date.now(), seed: 1, session: { clientId: `${CLIENT_SESSION_PREFIX}proxy-test`, seq: 1 } },
      );
      const first = (await proposeVia(a, data)) as { result: unknown };
      const again = (await proposeVia(b, data)) as { result: unknown };
      // The duplicate is a log entry of its own; the state machine answers it with the original result.
      assert.deepEqual(again.result, first.result);
      assert.deepEqual(await viaA.queryConsistent('SELECT id FROM side WHERE id > 100'), [{ id: 101 }]);
      await b.kill();
      const w2 = await viaBoth.execute('INSERT INTO side (id) VALUES (2)');
      assert.deepEqual(await viaA.queryConsistent('SELECT count(*) AS n FROM side'), [{ n: 3 }]);
      assert.ok(w2.logIndex > w.logIndex);
    } finally {
      await viaA.close();
      await viaBoth.close();
    }
  });

  test('a proxy stops gracefully on SIGHUP (its terminal closed), exit 0', async () => {
    const p = await proxies.start('proxy-hangup');
    assert.equal(await p.stop('SIGHUP'), 0);
  });

  test('a proxy stopped gracefully under writes: each write done or failed for sure, none in doubt', async () => {
    const p = await proxies.start('proxy-drain');
    // Knows only this proxy: without its answers it could not learn what became of a write.
    const via = await connect({ nodes: [p.address], secretApi: SECRET_API, requestTimeoutMs: 3_000 });
    const direct = await c.client([1]);
    await direct.execute('CREATE TABLE drained (id INTEGER PRIMARY KEY)');
    const acked: number[] = [];
    const failures = new Map<string, number>();
    const writers = Array.from({ length: 16 }, async (_, w) => {
      for (let i = 0; i < 100_000; i++) {
        const id = w * 1_000_000 + i;
        try {
          await via.execute('INSERT INTO drained (id) VALUES (?)', [id]);
          acked.push(id);
        } catch (e) {
          const code = e instanceof HiqliteError ? e.code : String(e);
          failures.set(code, (failures.get(code) ?? 0) + 1);
          return;
        }
      }
    });
    try {
      for (let i = 0; i < 2_000 && acked.length < 200; i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(await p.stop(), 0);
      await Promise.all(writers);
      assert.equal(
        failures.get('HQL_OUTCOME_UNKNOWN') ?? 0,
        0,
        `how the writes in flight ended: ${JSON.stringify(Object.fromEntries(failures))}`,
      );
      const rows = await direct.queryConsistent<{ id: number }>('SELECT id FROM drained ORDER BY id');
      assert.deepEqual(
        rows.map((r) => Number(r.id)),
        acked.sort((x, y) => x - y),
      );
    } finally {
      await via.close();
    }
  });

  test('a client with a wrong secret is refused by the proxy', async () => {
    await assert.rejects(
      connect({ nodes: [a.address], secretApi: 'not-the-secret-not-the-secret' }),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_UNAUTHORIZED',
    );
  });

  test('a proxy whose port is taken fails at start with HQL_IO, naming the address and its key', async () => {
    // Found by an outside probe: a bare "listen EADDRINUSE", no code, no key.
    const p = await proxies.create('proxy-busy');
    const blocker = createServer();
    await new Promise<void>((resolve, reject) => {
      blocker.once('error', reject);
      blocker.listen(p.port, '127.0.0.1', () => resolve());
    });
    try {
      const { code, output } = await p.runToExit();
      assert.equal(code, 1, output);
      assert.match(
        output,
        new RegExp(
          `HQL_IO: the proxy cannot listen on 127\\.0\\.0\\.1:${p.port}: the port is in use .*proxy_addr_api`,
        ),
      );
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  test('a proxy with a wrong cluster secret fails at start, naming the key', async () => {
    const p = await proxies.create('proxy-wrong', {
      toml: ['secret_api_cluster = "wrong-cluster-secret-0123456789"'],
    });
    const { code, output } = await p.runToExit();
    assert.equal(code, 1, output);
    assert.match(output, /secret_api_cluster/);
    assert.match(output, /refused/);
  });
});
