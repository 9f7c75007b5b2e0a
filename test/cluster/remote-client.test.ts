/**
 * The remote client's first minutes and its answers under failure (issue 10): connect() fails
 * fast and says why, accepts the address forms users paste, and a write whose outcome is not
 * known is never reported as safe to retry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, HiqliteError, SqlError } from '../../src/index.js';
import { freePorts } from '../support/free-ports.js';
import { SECRET_API, TestCluster } from './harness.js';

function hasCode(code: string, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof HiqliteError, `expected a HiqliteError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message !== undefined) assert.match(e.message, message);
    return true;
  };
}

describe('connect()', () => {
  test('rejects when no node listens, naming each address and the reason', async () => {
    const [a, b] = await freePorts(2);
    await assert.rejects(
      connect({ nodes: [`127.0.0.1:${a}`, `127.0.0.1:${b}`], secretApi: SECRET_API }),
      hasCode('HQL_UNAVAILABLE', new RegExp(`127\\.0\\.0\\.1:${a}.*ECONNREFUSED.*127\\.0\\.0\\.1:${b}`)),
    );
  });

  test('rejects an address it cannot parse with the address in the message', async () => {
    await assert.rejects(
      connect({ nodes: ['ftp://127.0.0.1:1'], secretApi: SECRET_API }),
      hasCode('HQL_INVALID_CONFIG', /ftp:\/\//),
    );
  });
});

describe('the remote client against a 3-node cluster of processes', () => {
  let c: TestCluster;
  before(async () => {
    // One read thread and a long node-side limit: only the client's deadline can free the thread.
    c = await TestCluster.create({
      nodes: 3,
      toml: 'read_threads = 1\nquery_timeout_ms = 120000\nquery_rows_max = 1000',
    });
    const db = await c.client();
    await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  });
  after(async () => {
    await c?.close();
  });

  test('accepts the URL form that hiqlite dev prints, and localhost', async () => {
    const port = c.node(1).apiPort;
    for (const addr of [`http://127.0.0.1:${port}`, `http://127.0.0.1:${port}/`, `localhost:${port}`]) {
      const db = await connect({ nodes: [addr], secretApi: SECRET_API });
      try {
        assert.deepEqual(await db.query('SELECT 1 AS one'), [{ one: 1 }], addr);
      } finally {
        await db.close();
      }
    }
  });

  test("a read that outlives the client's deadline is stopped on the node, not sent again", async () => {
    const endless = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';
    const impatient = await c.client([2], { requestTimeoutMs: 1000 });
    await assert.rejects(impatient.query(endless), hasCode('HQL_TIMEOUT'));
    // The node's only read thread is free again: had the read gone on until query_timeout_ms,
    // this one would queue behind it past its own 20 s deadline.
    const db = await c.client([2]);
    assert.deepEqual(await db.query('SELECT 2 AS two'), [{ two: 2 }]);
  });

  test('a read whose client hangs up is stopped on the node', async () => {
    const endless = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';
    const leaving = await c.client([3], { requestTimeoutMs: 100_000 });
    const pending = leaving.query(endless).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 300)); // the read is running on the node's only read thread
    // close() ends the read at once (it waited for the read's whole deadline, 100 s, before).
    await c.dropClient(leaving);
    const e = await pending;
    assert.ok(e instanceof HiqliteError && e.code === 'HQL_CLOSED', String(e));
    // Had the read gone on, this one would queue behind it past its own 20 s deadline.
    const db = await c.client([3]);
    assert.deepEqual(await db.query('SELECT 3 AS three'), [{ three: 3 }]);
  });

  test('a read returning more than query_rows_max rows is stopped with a typed error', async () => {
    const db = await c.client([2]);
    const rows = (n: number) =>
      `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT ${n}) SELECT x FROM c`;
    assert.equal((await db.query(rows(1000))).length, 1000);
    await assert.rejects(db.query(rows(5_000_000)), hasCode('HQL_RESULT_TOO_LARGE', /query_rows_max/));
  });

  test('a read returning more than query_result_bytes_max (64 MiB) is stopped with a typed error, in few rows too', async () => {
    const db = await c.client([2]);
    // Found from outside: ten rows of 50 MB passed query_rows_max, and encoding the answer held
    // the node's thread for seconds (its leadership lost), or failed HQL_INTERNAL past 512 MB.
    const blobs = (n: number, mb: number) =>
      `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT ${n}) SELECT zeroblob(${mb} * 1048576) AS b FROM c`;
    // Rows of 30 MB: each value under sql_value_bytes_max (32 MiB), three of them over the result bound.
    await assert.rejects(
      db.query(blobs(3, 30)),
      hasCode('HQL_RESULT_TOO_LARGE', /larger than 67108864 bytes \(query_result_bytes_max\) at row 3/),
    );
    const [row] = await db.query<{ b: Uint8Array }>(blobs(1, 10));
    assert.equal(row?.b.byteLength, 10 * 1048576);
  });

  test("a remote client's SQL errors are SqlErrors with the node's details", async () => {
    const db = await c.client([2]);
    await db.execute('CREATE TABLE IF NOT EXISTS u (id INTEGER PRIMARY KEY)');
    await db.execute('INSERT OR IGNORE INTO u (id) VALUES (1)');
    const e = await db.execute('INSERT INTO u (id) VALUES (1)').catch((x: unknown) => x);
    assert.ok(e instanceof SqlError, String(e));
    assert.equal(e.code, 'HQL_CONSTRAINT');
    assert.equal(e.sqliteCode, 'SQLITE_CONSTRAINT_PRIMARYKEY');
    assert.equal(e.info.sqliteCode, 'SQLITE_CONSTRAINT_PRIMARYKEY');
    assert.equal(e.retryable, false);
  });

  test('a wrong secret is refused by connect() itself', async () => {
    await assert.rejects(
      connect({ nodes: [`127.0.0.1:${c.node(2).apiPort}`], secretApi: 'not-the-secret-0123456789' }),
      hasCode('HQL_UNAUTHORIZED'),
    );
  });

  test('a write during a quorum loss is HQL_OUTCOME_UNKNOWN, not a retryable timeout', async () => {
    const leader = await c.leader();
    const followers = [1, 2, 3].filter((id) => id !== leader);
    const db = await c.client([leader], { requestTimeoutMs: 3000 });
    for (const id of followers) await c.kill(id);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => db.execute('INSERT INTO t (id, v) VALUES (?, ?)', [100 + i, 'q'])),
    );
    for (const o of outcomes) {
      assert.equal(o.status, 'rejected');
      const e = o.reason as HiqliteError;
      assert.ok(e instanceof HiqliteError, String(e));
      // Either the leader still took it into its log (unknown), or it already knew it had no
      // quorum and refused it (unavailable, with the voters it reaches). Never retryable-and-maybe-applied.
      if (e.code === 'HQL_OUTCOME_UNKNOWN') assert.equal(e.retryable, false, e.message);
      else assert.equal(e.code, 'HQL_UNAVAILABLE', e.message);
      assert.doesNotMatch(e.message, /\d\.\d{3,} ms/, 'milliseconds are whole numbers');
    }
    await Promise.all(followers.map((id) => c.start(id)));
    await c.waitForMembership({ voters: [1, 2, 3] });
  });
});

describe('connect() to a node with TLS', () => {
  let c: TestCluster;
  before(async () => {
    c = await TestCluster.create({ nodes: 1, tls: true });
  });
  after(async () => {
    await c?.close();
  });

  test('a plain client is told that the node uses TLS', async () => {
    await assert.rejects(
      connect({ nodes: [`127.0.0.1:${c.node(1).apiPort}`], secretApi: SECRET_API }),
      hasCode('HQL_UNAVAILABLE', /TLS/),
    );
  });

  test('an https:// address asks for TLS', async () => {
    const db = await connect({ nodes: [`https://127.0.0.1:${c.node(1).apiPort}`], secretApi: SECRET_API });
    try {
      assert.deepEqual(await db.query('SELECT 1 AS one'), [{ one: 1 }]);
    } finally {
      await db.close();
    }
  });
});
