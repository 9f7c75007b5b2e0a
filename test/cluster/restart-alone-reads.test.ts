/**
 * A node restarted alone (the others still down) ends its start without a majority to confirm
 * what was committed, with a warning. It answered other processes' reads from a replica that
 * lacked acknowledged writes its own log held: a remote `get` of an acknowledged key was null,
 * HTTP said 404 (found from outside, cache-only). Until a read barrier succeeds it now refuses
 * them, retryable (ask another node); once the others are back it serves them, writes included.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { eventually, SECRET_API, TestCluster } from './harness.js';

let c: TestCluster;
before(async () => {
  // A short proposal timeout: the lone node's start gives up its read barrier sooner.
  c = await TestCluster.create({ nodes: 3, toml: 'proposal_timeout_ms = 2000' });
});
after(async () => c?.close());

const headers = { 'x-api-secret': SECRET_API, 'content-type': 'application/json' };

test('a node restarted alone refuses reads of other processes until it caught up, then serves every acknowledged write', async () => {
  const client = await c.client();
  await client.execute('CREATE TABLE t (v TEXT)');
  await client.execute("INSERT INTO t (v) VALUES ('acknowledged')");
  await client.cache('c').put('k', 'acknowledged');
  await c.dropClient(client);
  for (const id of [1, 2, 3]) assert.equal(await c.stop(id), 0);

  await c.start(3, 120_000);
  const cacheGet = await c.http(3, '/cache/c/k', { headers });
  const cacheBody = cacheGet.body as { error?: { code?: string; message?: string; retryable?: boolean } };
  assert.equal(cacheBody.error?.code, 'HQL_UNAVAILABLE', JSON.stringify(cacheGet.body));
  assert.equal(cacheBody.error?.retryable, true);
  assert.match(cacheBody.error?.message ?? '', /has not caught up with the cluster since it started/);
  const query = await c.http(3, '/query', {
    method: 'POST',
    headers,
    body: JSON.stringify({ sql: 'SELECT v FROM t' }),
  });
  assert.equal((query.body as { error?: { code?: string } }).error?.code, 'HQL_UNAVAILABLE');

  await Promise.all([c.start(1), c.start(2)]);
  await eventually('node 3 serves the acknowledged cache value', async () => {
    const r = await c.http(3, '/cache/c/k', { headers });
    return r.status === 200 ? r : null;
  });
  const rows = await c.http(3, '/query', {
    method: 'POST',
    headers,
    body: JSON.stringify({ sql: 'SELECT v FROM t' }),
  });
  assert.equal(rows.status, 200, JSON.stringify(rows.body));
  assert.match(JSON.stringify(rows.body), /acknowledged/);
});
