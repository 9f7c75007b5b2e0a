/**
 * The disaster drill on real processes: a 3-node cluster with N rows takes a backup (remote
 * client and POST /backup), every node is killed and its data directory deleted, the cluster is
 * started again with HQL_BACKUP_RESTORE: every row is back, the cluster is writable, new writes
 * get higher log indexes than the backup's, and a backup taken after the restore restores too.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { CLI_SOURCE, runTsx } from '../support/tsx-process.js';
import { SECRET_API, TestCluster } from './harness.js';

const KEY = Buffer.alloc(32, 5).toString('base64');
const ROWS = 600;

interface Info {
  name: string;
  logIndex: number;
  nodeId: number;
}

describe('backup and restore of a whole cluster', () => {
  let c: TestCluster | null = null;
  after(async () => c?.close());

  /** Kills every node, deletes its data directory, starts all with HQL_BACKUP_RESTORE=file:<path>. */
  async function restoreAll(cluster: TestCluster, file: string): Promise<void> {
    for (const id of cluster.nodes.keys()) await cluster.kill(id);
    for (const n of cluster.nodes.values()) rmSync(n.dataDir, { recursive: true, force: true });
    const env = { HQL_BACKUP_RESTORE: `file:${file}` };
    await Promise.all([...cluster.nodes.keys()].map((id) => cluster.start(id, { timeoutMs: 90_000, env })));
  }

  /** Copies backup `info` out of the data directory of the node that took it. */
  function keep(cluster: TestCluster, info: Info, as: string): string {
    const from = join(cluster.node(info.nodeId).dataDir, 'state_machine', 'backups', info.name);
    const to = join(cluster.dir, as);
    copyFileSync(from, to);
    return to;
  }

  test('N rows survive the loss of every node; the log rolls over past the backup', async () => {
    c = await TestCluster.create({ nodes: 3, toml: `enc_keys = ["k1/${KEY}"]\nenc_key_active = "k1"` });
    const client = await c.client();
    await client.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    for (let i = 0; i < ROWS; i += 100) {
      await client.txn(
        Array.from(
          { length: 100 },
          (_, k) => ['INSERT INTO t (id, v) VALUES (?, ?)', [i + k, `row ${i + k}`]] as const,
        ),
      );
    }
    const info = (await client.backup()) as Info;
    assert.ok(info.logIndex > ROWS / 100, `backup at index ${info.logIndex}`);
    const http = await c.http(1, '/backup', { method: 'POST', headers: { 'x-api-secret': SECRET_API } });
    assert.equal(http.status, 200, JSON.stringify(http.body));
    assert.match((http.body as { value: Info }).value.name, /^backup_.*\.hqbak$/);
    const file = keep(c, info, 'first.hqbak');

    await restoreAll(c, file);
    const after1 = await c.client();
    assert.equal((await after1.queryConsistent<{ n: number }>('SELECT count(*) AS n FROM t'))[0]?.n, ROWS);
    const w = await after1.execute('INSERT INTO t (id, v) VALUES (?, ?)', [ROWS, 'after restore']);
    assert.ok(w.logIndex > info.logIndex, `new write at ${w.logIndex} > backup index ${info.logIndex}`);
    const counts = await c.rowsOn<{ n: number }>('SELECT count(*) AS n FROM t', { minIndex: w.logIndex });
    for (const id of [1, 2, 3]) assert.equal(counts.get(id)?.[0]?.n, ROWS + 1, `node ${id} has every row`);

    // A backup of the restored cluster restores too.
    const info2 = (await after1.backup()) as Info;
    assert.ok(info2.logIndex >= w.logIndex);
    const file2 = keep(c, info2, 'second.hqbak');
    await restoreAll(c, file2);
    const after2 = await c.client();
    assert.equal(
      (await after2.queryConsistent<{ n: number }>('SELECT count(*) AS n FROM t'))[0]?.n,
      ROWS + 1,
    );
    const w2 = await after2.execute('INSERT INTO t (id, v) VALUES (?, ?)', [ROWS + 1, 'again']);
    assert.ok(w2.logIndex > info2.logIndex);

    // Restarting with HQL_BACKUP_RESTORE still set does not restore again (the write stays).
    await c.stop(1);
    await c.start(1, { env: { HQL_BACKUP_RESTORE: `file:${file2}` } });
    const rows = await c.rowsOn<{ n: number }>('SELECT count(*) AS n FROM t', {
      ids: [1],
      minIndex: w2.logIndex,
    });
    assert.equal(rows.get(1)?.[0]?.n, ROWS + 2);
    assert.ok(readdirSync(join(c.node(1).dataDir)).includes('restore_done'));

    // Node 1 alone restored while nodes 2 and 3 run: it would found a second cluster beside
    // theirs, both taking writes (found from outside: a client listing all three nodes wrote to
    // one and read from the other). Refused, naming them, and node 1's state is left as it was.
    const file3 = keep(c, (await after2.backup()) as Info, 'third.hqbak');
    const w3 = await after2.execute('INSERT INTO t (id, v) VALUES (?, ?)', [
      ROWS + 2,
      'after the third backup',
    ]);
    await c.stop(1);
    await assert.rejects(
      c.startAndWatch(1, 60_000, { env: { HQL_BACKUP_RESTORE: `file:${file3}` } }),
      (e: Error) => /restore refused: node 2 .*node 3 .*run as a member of a cluster/.test(e.message),
    );
    await c.start(1);
    const kept = await c.rowsOn<{ n: number }>('SELECT count(*) AS n FROM t', {
      ids: [1],
      minIndex: w3.logIndex,
    });
    assert.equal(kept.get(1)?.[0]?.n, ROWS + 3, 'node 1 kept its rows and its cluster');
  });

  test('the documented restore with a damaged backup on every stopped node: nothing is lost, the cluster comes back as it was', async () => {
    assert.ok(c !== null, 'the cluster of the test before');
    const cluster = c;
    const client = await cluster.client();
    const good = keep(cluster, (await client.backup()) as Info, 'fourth.hqbak');
    const w = await client.execute('INSERT INTO t (id, v) VALUES (?, ?)', [
      ROWS + 3,
      'after the fourth backup',
    ]);
    await cluster.dropClient(client);
    // Its header intact (a node that reads only the header takes it), its chunks cut in half.
    const bytes = readFileSync(good);
    const bad = join(cluster.dir, 'damaged.hqbak');
    writeFileSync(bad, bytes.subarray(0, Math.floor(bytes.length / 2)));
    for (const id of [1, 2, 3]) assert.equal(await cluster.stop(id), 0);

    // `hiqlite backup restore` for each while stopped (README, disaster recovery).
    const restore = (id: number, file = bad) =>
      runTsx(CLI_SOURCE, ['backup', 'restore', `file:${file}`, '--config', cluster.node(id).configFile], {
        env: { ...process.env, HQL_LOG_LEVEL: 'warn' },
        timeoutMs: 60_000,
      });
    const one = await restore(1);
    assert.notEqual(one.code, 0, one.stdout);
    assert.match(one.stderr, /HQL_BACKUP_CORRUPT/);
    for (const id of [2, 3]) {
      const r = await restore(id);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`node ${id}: restore pending`));
      assert.ok(existsSync(join(cluster.node(id).dataDir, 'logs')), `node ${id} kept its log`);
    }
    // Started, nodes 2 and 3 find node 1 in their own cluster: it installed nothing, and they
    // keep their state (they discarded it at the restore before, and node 1 stayed a candidate
    // for ever with nodes 2 and 3 empty).
    await Promise.all([1, 2, 3].map((id) => cluster.start(id, { timeoutMs: 90_000 })));
    const counts = await cluster.rowsOn<{ n: number }>('SELECT count(*) AS n FROM t', {
      minIndex: w.logIndex,
    });
    for (const id of [1, 2, 3]) assert.equal(counts.get(id)?.[0]?.n, ROWS + 4, `node ${id} has every row`);
    for (const id of [2, 3]) {
      assert.ok(
        !existsSync(join(cluster.node(id).dataDir, 'restore_pending')),
        'the pending restore is settled',
      );
      assert.match(cluster.node(id).output, /node 1 runs this node's own cluster \(it installed no backup\)/);
    }
    const after = await cluster.client();
    const w2 = await after.execute('INSERT INTO t (id, v) VALUES (?, ?)', [ROWS + 4, 'writable']);
    assert.ok(w2.logIndex > w.logIndex);
    await cluster.dropClient(after);

    // The same procedure with the good backup, every node holding its state: node 1 installs
    // it; nodes 2 and 3 find it in a new cluster when they start, discard theirs and join it.
    for (const id of [1, 2, 3]) assert.equal(await cluster.stop(id), 0);
    const installed = await restore(1, good);
    assert.equal(installed.code, 0, installed.stderr);
    for (const id of [2, 3]) assert.equal((await restore(id, good)).code, 0);
    await Promise.all([1, 2, 3].map((id) => cluster.start(id, { timeoutMs: 90_000 })));
    await cluster.waitForMembership({ voters: [1, 2, 3] });
    const restored = await cluster.client();
    const w3 = await restored.execute('INSERT INTO t (id, v) VALUES (?, ?)', [ROWS + 5, 'restored']);
    const back = await cluster.rowsOn<{ n: number }>('SELECT count(*) AS n FROM t', {
      minIndex: w3.logIndex,
    });
    // The backup's rows (not the two written after it) and the new one, on every node.
    for (const id of [1, 2, 3]) assert.equal(back.get(id)?.[0]?.n, ROWS + 4, `node ${id} holds the backup`);
    for (const id of [2, 3])
      assert.match(cluster.node(id).output, /node 1 installed the backup \(a new cluster\)/);
  });
});
