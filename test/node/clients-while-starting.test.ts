/**
 * A remote client that connected while a node was starting could not check the node's cluster
 * (it had none yet): after a full restart of in-memory nodes a remote listener resumed on such a
 * node and went on with the new cluster's notifications, skipping some (found from outside).
 * A node still starting refuses listeners as it refuses reads and writes, and once started it
 * closes the client connections whose handshake told no cluster (or another): they connect again
 * and learn it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type HiqliteNode, start } from '../../src/index.js';
import type { ApiConnection } from '../../src/transport/api-connection.js';
import { eventually } from '../cluster/harness.js';
import { openClientConnection } from '../support/client-connection.js';
import { freePorts } from '../support/free-ports.js';
import { TEST_SECRETS } from '../support/one-node-config.js';

test('a starting node refuses listeners, and closes the connections of clients that could not check its cluster', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-clients-starting-'));
  const ports = await freePorts(6);
  const nodes = [1, 2, 3].map((id, i) => ({
    id,
    addrRaft: `127.0.0.1:${ports[2 * i]}`,
    addrApi: `127.0.0.1:${ports[2 * i + 1]}`,
  }));
  const config = (id: number) => ({ nodeId: id, nodes, dataDir: join(root, `n${id}`), ...TEST_SECRETS });
  const cancel = new AbortController();
  const started: HiqliteNode[] = [];
  // Node 2 alone first: it waits for a leader to add it.
  const second = start(config(2), { thread: 'main', signal: cancel.signal, joinTimeoutMs: 60_000 });
  second.catch(() => {});
  const api = nodes[1]!.addrApi;
  let conn: ApiConnection | null = null;
  try {
    conn = await eventually('node 2 answers on its API port', async () =>
      openClientConnection(api).catch(() => null),
    );
    assert.equal(conn.serverClusterId, null, 'a new node knows no cluster yet');
    const sse = await eventually('node 2 answers /listen', async () => {
      const r = await fetch(`http://${api}/listen?channel=x`, {
        headers: { 'x-api-secret': TEST_SECRETS.secretApi },
      });
      const text = await r.text();
      return /not yet a member/.test(text) ? null : { status: r.status, text };
    });
    assert.match(sse.text, /HQL_UNAVAILABLE/, sse.text);
    assert.match(sse.text, /still starting/, sse.text);

    started.push(
      ...(await Promise.all([start(config(1), { thread: 'main' }), start(config(3), { thread: 'main' })])),
    );
    started.push(await second);
    const closedConn = conn;
    await eventually('the connection opened before the node knew its cluster is closed', async () =>
      closedConn.closed ? true : null,
    );
    // A new connection learns the cluster.
    const again = await openClientConnection(api);
    assert.notEqual(again.serverClusterId, null);
    again.close();
  } finally {
    conn?.close();
    cancel.abort();
    await Promise.allSettled(started.map((n) => n.close()));
    rmSync(root, { recursive: true, force: true });
  }
});
