/**
 * Notification streams (`GET /listen`, Server-Sent Events) each hold a connection for good. Past
 * `api_connections_max` less the port's headroom a new one is refused (503 HQL_OVERLOADED, the
 * connection closed), so that streams never fill the port: found from outside, 1,500 SSE
 * listeners took every connection, and /health and new clients were refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { connect, type HiqliteNode, start } from '../../src/index.js';
import { sseStreamsMax } from '../../src/node/api-server.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';

const CONNECTIONS_MAX = 40;

/** Opens an SSE stream; resolves with its status once the head arrived (the stream stays open). */
function openStream(port: number, streams: Array<() => void>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/listen',
        headers: { 'x-api-secret': TEST_SECRETS.secretApi, accept: 'text/event-stream' },
        timeout: 10_000,
      },
      (res) => {
        streams.push(() => req.destroy());
        if (res.statusCode === 200) return resolve({ status: 200, body: '' });
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer to GET /listen')));
    req.on('error', reject);
    req.end();
  });
}

describe('SSE notification streams and the API port', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-sse-bound-'));
  let node: HiqliteNode | null = null;
  const streams: Array<() => void> = [];
  after(async () => {
    for (const close of streams) close();
    await node?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('past the cap less the headroom a stream is refused 503; /health and a client still get in', async () => {
    const cfg = await oneNodeConfig(root, {
      apiConnectionsMax: CONNECTIONS_MAX,
      unauthenticatedConnectionsMax: 8,
    });
    node = await start(cfg, { thread: 'main' });
    await node.waitUntilHealthy({ timeoutMs: 20_000 });
    const port = Number(cfg.nodes[0]?.addrApi.split(':')[1]);
    const allowed = sseStreamsMax(CONNECTIONS_MAX);
    assert.ok(allowed >= CONNECTIONS_MAX - 8 && allowed < CONNECTIONS_MAX, `${allowed} streams`);
    for (let i = 0; i < allowed; i++)
      assert.equal((await openStream(port, streams)).status, 200, `stream ${i}`);
    const refused = await openStream(port, streams);
    assert.equal(refused.status, 503, refused.body);
    assert.match(refused.body, /"code":"HQL_OVERLOADED"/);
    assert.match(refused.body, /notification streams are open on this port/);
    // The headroom is still there for the others.
    const health = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(health.status, 200);
    const client = await connect({ nodes: [cfg.nodes[0]!.addrApi], secretApi: TEST_SECRETS.secretApi });
    try {
      assert.deepEqual(await client.query('SELECT 1 AS x'), [{ x: 1 }]);
    } finally {
      await client.close();
    }
  });
});
