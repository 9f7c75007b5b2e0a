/**
 * Node 1 restored from a backup alone, the other nodes then started without a restore (found
 * from outside): node 1 leads a one-voter cluster of its own while its start waits for the
 * others, who refuse it (another cluster id) and go on as the old cluster's majority. Node 1
 * acknowledged writes of other processes meanwhile (the binary API and HTTP alike): two clusters
 * both took writes, and node 1's were in no other replica. Writes of other processes now wait
 * for the end of start() as reads did: node 1 refuses them (HQL_UNAVAILABLE, retryable), a
 * client writes to the old cluster, and node 1's database never gets a write.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SECRET_API, TestCluster } from './harness.js';

const KEY = Buffer.alloc(32, 9).toString('base64');
let c: TestCluster;
let backupFile: string;

before(async () => {
  c = await TestCluster.create({ nodes: 3, toml: `enc_keys = ["k1/${KEY}"]\nenc_key_active = "k1"` });
  const client = await c.client();
  await client.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  await client.execute("INSERT INTO t (v) VALUES ('before the backup')");
  const info = (await client.backup()) as { name: string };
  const leader = await c.leader();
  backupFile = join(c.dir, 'b.hqbak');
  writeFileSync(
    backupFile,
    readFileSync(join(c.node(leader).dataDir, 'state_machine', 'backups', info.name)),
  );
  await c.dropClient(client);
  for (const id of [1, 2, 3]) assert.equal(await c.stop(id), 0);
});
after(async () => c?.close());

test('node 1 restored alone takes no writes while the old cluster goes on', async () => {
  // Node 1 with the restore (it will not become READY: the others are not restored), then the
  // others as they were.
  const ready = c.startAndWatch(1, 8_000, { env: { HQL_BACKUP_RESTORE: `file:${backupFile}` } });
  await Promise.all([c.start(2), c.start(3)]);
  assert.equal(await ready, false, 'node 1 does not finish its start without the others');

  const insert = (v: string) => ({
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-secret': SECRET_API },
    body: JSON.stringify({ sql: 'INSERT INTO t (v) VALUES (?)', params: [v] }),
  });
  for (let i = 0; i < 5; i++) {
    const r = await c.http(1, '/execute', insert(`to node 1, ${i}`));
    const body = r.body as { error?: { code?: string; retryable?: boolean } };
    assert.equal(body.error?.code, 'HQL_UNAVAILABLE', `attempt ${i}: ${JSON.stringify(r.body)}`);
    assert.equal(body.error?.retryable, true);
    const cache = await c.http(1, '/cache/c/k', { ...insert('x'), method: 'PUT', body: '1' });
    assert.equal((cache.body as { error?: { code?: string } }).error?.code, 'HQL_UNAVAILABLE');
    await new Promise((r) => setTimeout(r, 300));
  }
  // The old cluster takes writes (a client pins the cluster of the first node it reaches: one
  // reaching node 1 first refuses the others, so this one knows nodes 2 and 3).
  const client = await c.client([2, 3]);
  const w = await client.execute('INSERT INTO t (v) VALUES (?)', ['through a client']);
  const rows = await c.rowsOn<{ v: string }>('SELECT v FROM t ORDER BY id', {
    ids: [2, 3],
    minIndex: w.logIndex,
  });
  for (const id of [2, 3]) {
    assert.deepEqual(
      rows.get(id)?.map((r) => r.v),
      ['before the backup', 'through a client'],
      `node ${id}`,
    );
  }
  await c.dropClient(client);
  // Node 1's database holds what the backup held, nothing written since.
  await c.kill(1);
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(join(c.node(1).dataDir, 'state_machine', 'db', 'hiqlite.db'), { readonly: true });
  try {
    assert.deepEqual(
      (db.prepare('SELECT v FROM t ORDER BY id').all() as { v: string }[]).map((r) => r.v),
      ['before the backup'],
    );
  } finally {
    db.close();
  }
});
