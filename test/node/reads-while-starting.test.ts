/**
 * Until its start() is over a node answers other processes' reads with HQL_UNAVAILABLE
 * (retryable: ask another node), not from the replica it is still rebuilding. Found by an outside
 * probe: a restarted node replaying its log answered "no such table: t" (HQL_SQL, not retryable),
 * then counts far behind what it had answered before the restart, while /ready said 503.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { start } from '../../src/index.js';
import { eventually } from '../cluster/harness.js';
import { openClientConnection } from '../support/client-connection.js';
import { freePorts } from '../support/free-ports.js';
import { TEST_SECRETS } from '../support/one-node-config.js';

test('a node waiting to join answers reads and writes of other processes HQL_UNAVAILABLE, retryable', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-reads-starting-'));
  const ports = await freePorts(6);
  const nodes = [1, 2, 3].map((id, i) => ({
    id,
    addrRaft: `127.0.0.1:${ports[2 * i]}`,
    addrApi: `127.0.0.1:${ports[2 * i + 1]}`,
  }));
  const cancel = new AbortController();
  // Node 2 alone: it opens its storage and waits for a leader to add it (nodes 1 and 3 are down).
  const starting = start(
    { nodeId: 2, nodes, dataDir: join(root, 'n2'), ...TEST_SECRETS },
    { thread: 'main', signal: cancel.signal, joinTimeoutMs: 60_000 },
  ).catch((e: unknown) => e);
  const api = nodes[1]!.addrApi;
  try {
    const conn = await eventually('node 2 answers on its API port', async () =>
      openClientConnection(api).catch(() => null),
    );
    try {
      // Past requireGroup: its group is open (a read used to run on the empty replica then).
      let answer = await conn.request(
        { op: 'query', sql: 'SELECT count(*) AS n FROM t', params: [], consistency: 'local', minIndex: 0 },
        5000,
      );
      for (let i = 0; i < 100 && !answer.ok && /not yet a member/.test(answer.error.message); i++) {
        await new Promise((r) => setTimeout(r, 50));
        answer = await conn.request(
          { op: 'query', sql: 'SELECT count(*) AS n FROM t', params: [], consistency: 'local', minIndex: 0 },
          5000,
        );
      }
      assert.equal(answer.ok, false, JSON.stringify(answer));
      if (!answer.ok) {
        assert.equal(answer.error.code, 'HQL_UNAVAILABLE', answer.error.message);
        assert.equal(answer.error.retryable, true);
        assert.match(answer.error.message, /node 2 is still starting \(its replica is catching up/);
      }
    } finally {
      conn.close();
    }
    const res = await fetch(`http://${api}/query`, {
      method: 'POST',
      headers: { 'x-api-secret': TEST_SECRETS.secretApi, 'content-type': 'application/json' },
      body: JSON.stringify({ sql: 'SELECT 1 AS x' }),
    });
    const body = (await res.json()) as { error?: { code: string } };
    assert.equal(body.error?.code, 'HQL_UNAVAILABLE', JSON.stringify(body));
    const cacheRes = await fetch(`http://${api}/cache/c/k`, {
      headers: { 'x-api-secret': TEST_SECRETS.secretApi },
    });
    assert.equal(((await cacheRes.json()) as { error?: { code: string } }).error?.code, 'HQL_UNAVAILABLE');
    // Writes too (test/cluster/restore-alone.test.ts: a node still starting may lead a cluster
    // that has not formed).
    const write = await fetch(`http://${api}/execute`, {
      method: 'POST',
      headers: { 'x-api-secret': TEST_SECRETS.secretApi, 'content-type': 'application/json' },
      body: JSON.stringify({ sql: 'CREATE TABLE w (x)' }),
    });
    const wrote = (await write.json()) as { error?: { code: string; message: string } };
    assert.equal(wrote.error?.code, 'HQL_UNAVAILABLE', JSON.stringify(wrote));
    assert.match(wrote.error?.message ?? '', /still starting/);
  } finally {
    cancel.abort();
    await starting;
    rmSync(root, { recursive: true, force: true });
  }
});
