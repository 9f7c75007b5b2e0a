/**
 * What a careless or hostile client must not be able to do to a cluster of processes (issue 9):
 * a command too large for a log entry is refused at once on every path and stops nothing; a
 * client's clock does not decide the time in replicated state; a client cannot use a session
 * id outside its own namespace.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HiqliteError } from '../../src/index.js';
import { eventually, SECRET_API, TestCluster } from './harness.js';

function hasCode(code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof HiqliteError, `expected a HiqliteError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

const ENTRY_BYTES_MAX = 64 * 1024;

describe('a cluster of processes facing careless and hostile clients', () => {
  let c: TestCluster;
  before(async () => {
    c = await TestCluster.create({ nodes: 3, toml: `entry_bytes_max = ${ENTRY_BYTES_MAX}` });
    const db = await c.client();
    await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB, at TEXT)');
  });
  after(async () => {
    await c?.close();
  });

  test('a command larger than entry_bytes_max is refused at once on every path, and no node stops', async () => {
    const leader = await c.leader();
    const follower = [1, 2, 3].find((id) => id !== leader) as number;
    const termBefore = (await c.metricsOf(leader)).term;
    const big = new Uint8Array(ENTRY_BYTES_MAX + 1024);
    // Remote client on the leader, and on a follower (which would forward it).
    for (const id of [leader, follower]) {
      const db = await c.client([id], { requestTimeoutMs: 60_000 });
      await assert.rejects(
        db.execute('INSERT INTO t (body) VALUES (?)', [big]),
        hasCode('HQL_ENTRY_TOO_LARGE'),
      );
      // A transaction whose statements only add up to too much.
      const half = new Uint8Array(ENTRY_BYTES_MAX / 2 + 16);
      await assert.rejects(
        db.txn([
          ['INSERT INTO t (body) VALUES (?)', [half]],
          ['INSERT INTO t (body) VALUES (?)', [half]],
        ]),
        hasCode('HQL_ENTRY_TOO_LARGE'),
      );
    }
    // Larger than the node's frame limit (16 MiB): refused by the client before it is sent,
    // instead of the node closing the connection on it (an outcome that would look unknown).
    const remote = await c.client([follower]);
    await assert.rejects(
      remote.execute('INSERT INTO t (body) VALUES (?)', [new Uint8Array(20 * 1024 * 1024)]),
      hasCode('HQL_ENTRY_TOO_LARGE'),
    );
    // The HTTP JSON API, on a follower: a body over the HTTP limit is refused with 413, and a
    // body under it whose command is too large (floats: 4 bytes in JSON, 9 in the command)
    // with HQL_ENTRY_TOO_LARGE.
    const post = (body: unknown) =>
      c.http(follower, '/execute', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-secret': SECRET_API },
        body: JSON.stringify(body),
      });
    const tooBig = await post({
      sql: 'INSERT INTO t (body) VALUES (?)',
      params: ['x'.repeat(ENTRY_BYTES_MAX)],
    });
    assert.equal(tooBig.status, 413, JSON.stringify(tooBig.body));
    const floats = Array.from({ length: 15_000 }, () => 0.5);
    const r = await post({ sql: 'INSERT INTO t (body) VALUES (?)', params: floats });
    assert.equal(
      (r.body as { error?: { code?: string } }).error?.code,
      'HQL_ENTRY_TOO_LARGE',
      JSON.stringify(r.body),
    );

    // Nothing stopped and no election happened: the same leader takes the next write.
    const db = await c.client();
    const ok = await db.execute('INSERT INTO t (body) VALUES (?)', [new Uint8Array(100)]);
    assert.equal(ok.rowsAffected, 1);
    assert.deepEqual(c.runningIds(), [1, 2, 3]);
    const after = await c.metricsOf(leader);
    assert.equal(after.role, 'leader');
    assert.equal(after.term, termBefore);
  });

  test('the JSON routes answer as the README documents them', async () => {
    const post = (route: string, body: unknown) =>
      c.http(1, route, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-secret': SECRET_API },
        body: JSON.stringify(body),
      });
    const txn = await post('/txn', {
      statements: [["INSERT INTO t (at) VALUES ('txn-1')"], ['INSERT INTO t (at) VALUES (?)', ['txn-2']]],
    });
    assert.equal(txn.status, 200, JSON.stringify(txn.body));
    const t = (txn.body as { value: { results: { rowsAffected: number }[]; logIndex: number } }).value;
    assert.deepEqual(
      t.results.map((r) => r.rowsAffected),
      [1, 1],
    );
    assert.ok(t.logIndex > 0);
    const batch = await post('/batch', {
      sql: "INSERT INTO t (at) VALUES ('b-1'); INSERT INTO nope VALUES (1)",
    });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    const b = (batch.body as { value: { results: { ok: boolean; error?: { code: string } }[] } }).value;
    assert.deepEqual(
      b.results.map((r) => r.ok),
      [true, false],
    );
    assert.equal(b.results[1]?.error?.code, 'HQL_SQL');
    // Refusals before the handler (no secret, not JSON) have the same shape as its errors.
    const unauthorized = await c.http(1, '/execute', { method: 'POST', body: '{}' });
    assert.equal(unauthorized.status, 401);
    assert.deepEqual(
      [
        (unauthorized.body as { ok: boolean }).ok,
        (unauthorized.body as { error: { code: string } }).error.code,
      ],
      [false, 'HQL_UNAUTHORIZED'],
    );
    const notJson = await c.http(1, '/execute', {
      method: 'POST',
      headers: { 'x-api-secret': SECRET_API },
      body: 'x',
    });
    assert.equal((notJson.body as { ok: boolean }).ok, false);
    const bad = await post('/execute', { sql: 'INSERT INTO nope VALUES (1)' });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.deepEqual(
      [(bad.body as { ok: boolean }).ok, (bad.body as { error: { code: string } }).error.code],
      [false, 'HQL_SQL'],
    );
  });

  test("the time in replicated state is the cluster's, not the client's clock", async () => {
    const realNow = Date.now;
    const skewMs = 2 * 3600 * 1000;
    // This client's clock runs two hours ahead (the nodes run in their own processes).
    Date.now = () => realNow() + skewMs;
    let stored: string;
    try {
      const db = await c.client();
      const w = await db.execute("INSERT INTO t (at) VALUES (strftime('%s', 'now'))");
      const rows = await db.query<{ at: string }>('SELECT at FROM t WHERE rowid = ?', [w.lastInsertRowid], {
        minIndex: w.logIndex,
      });
      stored = (rows[0] as { at: string }).at;
    } finally {
      Date.now = realNow;
    }
    const storedMs = Number(stored) * 1000;
    assert.ok(
      Math.abs(storedMs - realNow()) < 10 * 60 * 1000,
      `datetime('now') stored ${new Date(storedMs).toISOString()}, the real time is ${new Date(realNow()).toISOString()}`,
    );
  });

  test("a node whose cluster id is another cluster's is refused by the others, which keep serving", async () => {
    const leader = await c.leader();
    const other = [1, 2, 3].find((id) => id !== leader) as number;
    assert.equal(await c.stop(other), 0);
    writeFileSync(join(c.node(other).dataDir, 'cluster_id'), '0123456789abcdef0123456789abcdef\n');
    await c.startAndWatch(other, 1000);
    await eventually(
      'the leader logs the refusal with the reason',
      async () => c.node(leader).output.includes('belongs to cluster'),
      30_000,
    );
    const db = await c.client([leader]);
    const w = await db.execute('INSERT INTO t (at) VALUES (?)', ['after the intruder']);
    assert.equal(w.rowsAffected, 1);
    await assert.rejects(
      c.rowsOn('SELECT count(*) AS n FROM t', { ids: [other], minIndex: w.logIndex }),
      "the refused node does not receive the cluster's writes",
    );
  });
});

describe('/health of a node that is still joining', () => {
  test('is healthy ("joining") for health_check_delay_secs, then says it is not a member', async () => {
    const c = await TestCluster.create({
      nodes: 3,
      startNodes: [],
      toml: (id) => (id === 2 ? 'health_check_delay_secs = 0' : 'health_check_delay_secs = 600'),
    });
    try {
      // Neither can join: node 1 is not running.
      assert.equal(await c.startAndWatch(3, 4000), false);
      assert.equal(await c.startAndWatch(2, 4000), false);
      // Their API ports are up once they log that they wait for the cluster.
      await eventually('both nodes answer HTTP', async () => {
        const answers = await Promise.all([2, 3].map((id) => c.http(id, '/ready').catch(() => null)));
        return answers.every((a) => a !== null);
      });
      const graced = await c.http(3, '/health');
      assert.equal(graced.status, 200, JSON.stringify(graced.body));
      assert.equal((graced.body as { state?: string }).state, 'joining');
      const strict = await c.http(2, '/health');
      assert.equal(strict.status, 503, JSON.stringify(strict.body));
      assert.equal((await c.http(3, '/ready')).status, 503);
    } finally {
      await c.close();
    }
  });
});
