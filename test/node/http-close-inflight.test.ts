/**
 * A node that shuts down answers the HTTP requests it is serving before it closes their
 * connections (at most shutdown_timeout_ms): a long read in flight gets its rows, a write its
 * outcome (done, or HQL_CLOSED and not done). Before, the connections were cut at once and every
 * request in flight ended with ECONNRESET, its outcome unknown to the client.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { start } from '../../src/index.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';
import { within } from '../support/within.js';

const root = mkdtempSync(join(tmpdir(), 'hq-http-close-'));
after(() => rmSync(root, { recursive: true, force: true }));

/**
 * A POST on its own connection, `bytes` of `body` sent (all by default; fewer: the rest never
 * comes): `status body`, or `error CODE` when the connection failed.
 */
function post(addr: string, path: string, body: unknown, bytes?: number): Promise<string> {
  const [host, port] = addr.split(':');
  const text = JSON.stringify(body);
  return new Promise((resolve) => {
    const r = request(
      {
        host,
        port: Number(port),
        path,
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(text)),
          'x-api-secret': TEST_SECRETS.secretApi,
        },
      },
      (res) => {
        let got = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          got += c;
        });
        res.on('end', () => resolve(`${res.statusCode} ${got}`));
        res.on('error', (e) => resolve(`error ${e.message}`));
      },
    );
    r.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code ?? e.message}`));
    if (bytes === undefined) r.end(text);
    else r.write(text.slice(0, bytes));
  });
}

test('HTTP requests in flight at shutdown get their answers', async () => {
  const cfg = await oneNodeConfig(root);
  const addr = cfg.nodes[0]?.addrApi ?? '';
  const node = await start(cfg, { thread: 'main' });
  await node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY)');
  const slow =
    'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) SELECT count(*) AS n FROM c';
  const reads = Array.from({ length: 6 }, () => post(addr, '/query', { sql: slow }));
  const writes = Array.from({ length: 6 }, (_, i) =>
    post(addr, '/execute', { sql: 'INSERT INTO t (id) VALUES (?)', params: [i] }),
  );
  // Every request is on the node by then (loopback); the reads run for far longer.
  await new Promise((r) => setTimeout(r, 300));
  await node.close();
  for (const r of await Promise.all(reads)) assert.match(r, /^200 .*"n":1000000/);
  const written: number[] = [];
  for (const [i, w] of (await Promise.all(writes)).entries()) {
    if (w.startsWith('200 ')) written.push(i);
    else assert.match(w, /^503 .*HQL_CLOSED/);
  }
  // What the writes were told is what a restart holds.
  const again = await start(cfg, { thread: 'main' });
  try {
    const rows = await again.query<{ id: number }>('SELECT id FROM t ORDER BY id');
    assert.deepEqual(
      rows.map((r) => Number(r.id)),
      written,
    );
  } finally {
    await again.close();
  }
});

/**
 * A request whose body is still arriving at shutdown has not been processed: it is answered so
 * at once (503 HQL_CLOSED, retryable), instead of holding the shutdown for up to
 * shutdown_timeout_ms (here a minute) while the client uploads slowly. A sibling that sent its
 * whole body is served.
 */
test('a slow upload in flight at shutdown is answered not processed, and does not hold the close', async () => {
  const cfg = { ...(await oneNodeConfig(root)), shutdownTimeoutMs: 60_000 };
  const addr = cfg.nodes[0]?.addrApi ?? '';
  const node = await start(cfg, { thread: 'main' });
  await node.execute('CREATE TABLE u (id INTEGER PRIMARY KEY)');
  // Ten bytes of the body; the rest never comes before the shutdown.
  const answer = post(addr, '/execute', { sql: 'INSERT INTO u (id) VALUES (1)' }, 10);
  const whole = post(addr, '/execute', { sql: 'INSERT INTO u (id) VALUES (2)' });
  await new Promise((r) => setTimeout(r, 300));
  await within(node.close(), 20_000, 'the close with a slow upload in flight');
  assert.match(await answer, /^503 .*"code":"HQL_CLOSED".*"retryable":true/);
  assert.match(await whole, /^200 /);
  const again = await start(cfg, { thread: 'main' });
  try {
    const rows = await again.query<{ id: number }>('SELECT id FROM u ORDER BY id');
    assert.deepEqual(
      rows.map((r) => Number(r.id)),
      [2],
    );
  } finally {
    await again.close();
  }
});
