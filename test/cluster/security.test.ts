/**
 * Security on a cluster of processes: TLS on the Raft and API ports (`tls_auto_certificates`),
 * a client or node with a wrong secret is refused, and the cluster keeps serving meanwhile.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { connect, HiqliteError } from '../../src/index.js';
import { TestCluster } from './harness.js';

/** Completes a TLS handshake with 127.0.0.1:`port` (certificate not verified); resolves with the protocol. */
function tlsHandshake(port: number): Promise<string | null> {
  return new Promise((ok, fail) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, timeout: 5000 });
    socket.once('secureConnect', () => {
      const protocol = socket.getProtocol();
      socket.destroy();
      ok(protocol);
    });
    socket.once('timeout', () =>
      socket.destroy(new Error(`no TLS handshake with port ${port} within 5000 ms`)),
    );
    socket.once('error', fail);
  });
}

describe('security of a cluster of processes with TLS on both ports', () => {
  let c: TestCluster;
  before(async () => {
    // Node 3 is started by the tests (first with a wrong secret_raft).
    c = await TestCluster.create({ nodes: 3, tls: true, startNodes: [1, 2] });
  });
  after(async () => {
    await c?.close();
  });

  test('both ports of every node speak TLS', async () => {
    for (const id of [1, 2]) {
      const n = c.node(id);
      assert.match(String(await tlsHandshake(n.apiPort)), /^TLSv1\.[23]$/);
      assert.match(String(await tlsHandshake(n.raftPort)), /^TLSv1\.[23]$/);
    }
  });

  test('a TLS remote client writes and reads through every node', async () => {
    const db = await c.client([1, 2]);
    await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    for (const id of [1, 2]) {
      const one = await c.client([id]);
      const w = await one.execute('INSERT INTO t (id, v) VALUES (?, ?)', [id, `via ${id}`]);
      assert.equal(w.rowsAffected, 1);
    }
    for (const id of [1, 2]) {
      const one = await c.client([id]);
      assert.deepEqual(await one.queryConsistent('SELECT id, v FROM t ORDER BY id'), [
        { id: 1, v: 'via 1' },
        { id: 2, v: 'via 2' },
      ]);
    }
    const health = await c.http(1, '/health');
    assert.equal(health.status, 200);
  });

  test('a plain-TCP client cannot talk to a TLS node', async () => {
    const plain = await c.client([1], { tls: false, requestTimeoutMs: 2000, connectTimeoutMs: 1000 });
    await assert.rejects(plain.query('SELECT 1'), (e: unknown) => e instanceof HiqliteError);
    await assert.rejects(
      fetch(`http://127.0.0.1:${c.node(1).apiPort}/health`, { signal: AbortSignal.timeout(5000) }),
    );
  });

  test('a remote client with a wrong secret_api is refused', async () => {
    const wrong = {
      nodes: c.apiAddresses().slice(0, 2),
      secretApi: 'not-the-api-secret-0123456789',
      tls: true,
    };
    await assert.rejects(
      connect({ ...wrong, requestTimeoutMs: 5000 }),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_UNAUTHORIZED',
    );
    const json = await c.http(1, '/query', {
      method: 'POST',
      headers: { 'x-api-secret': 'not-the-api-secret-0123456789', 'content-type': 'application/json' },
      body: JSON.stringify({ sql: 'SELECT 1' }),
    });
    assert.equal(json.status, 401);
    const right = await c.client([1, 2]);
    assert.deepEqual(await right.queryConsistent('SELECT count(*) AS n FROM t WHERE id = 99'), [{ n: 0 }]);
  });

  test('a node with a wrong secret_raft never becomes a voter while the others keep serving', async () => {
    const ready = await c.startAndWatch(3, 8000, {
      env: { HQL_SECRET_RAFT: 'not-the-raft-secret-0123456789' },
    });
    assert.equal(ready, false, 'the node with the wrong secret_raft must not become a member');
    const db = await c.client([1, 2]);
    const w = await db.execute('INSERT INTO t (id, v) VALUES (?, ?)', [3, 'while node 3 knocks']);
    assert.equal(w.rowsAffected, 1);
    for (const id of [1, 2]) {
      const m = await c.metricsOf(id);
      assert.deepEqual([...m.voters].sort(), [1, 2], `node ${id} voters`);
    }
    await c.kill(3);
  });

  test('the same node started with the right secret_raft joins and catches up', async () => {
    await c.start(3);
    await c.waitForMembership({ voters: [1, 2, 3] });
    const three = await c.client([3]);
    assert.deepEqual(await three.queryConsistent('SELECT id FROM t ORDER BY id'), [
      { id: 1 },
      { id: 2 },
      { id: 3 },
    ]);
  });
});
