/**
 * The disaster drill (issue 13) with real processes: a 3-node cluster backs up to the fake S3
 * (signatures checked), every node is killed and its data directory deleted, and the cluster is
 * started again with `HQL_BACKUP_RESTORE=s3:<object>`. Every row is back on every node, the
 * cluster takes writes at log indexes above the backup's, and a backup taken after the restore
 * restores too.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { HiqliteClient } from '../../src/index.js';
import { TestCluster } from '../cluster/harness.js';
import { type FakeS3, startTestS3, testS3Toml } from '../support/s3-server.js';

const ROWS = 3_000;
const NODES = [1, 2, 3] as const;

describe('disaster drill: restore a killed and wiped cluster from S3', () => {
  let s3: FakeS3;
  let cluster: TestCluster;
  const encKey = randomBytes(32).toString('base64');

  before(async () => {
    s3 = await startTestS3();
    cluster = await TestCluster.create({
      toml: [`enc_keys = ["drill/${encKey}"]`, 'enc_key_active = "drill"', ...testS3Toml(s3)].join('\n'),
    });
  });
  after(async () => {
    await cluster?.close();
    await s3?.close();
  });

  async function insertRows(c: HiqliteClient, from: number, count: number): Promise<number> {
    let index = 0;
    for (let at = from; at < from + count; at += 500) {
      const n = Math.min(500, from + count - at);
      const r = await c.execute(
        `INSERT INTO t (id, v) WITH RECURSIVE c(i) AS (SELECT ${at} UNION ALL SELECT i + 1 FROM c LIMIT ${n}) SELECT i, 'row-' || i FROM c`,
      );
      assert.equal(r.rowsAffected, n);
      index = r.logIndex;
    }
    return index;
  }

  async function killWipeRestore(objectName: string): Promise<void> {
    for (const id of NODES) await cluster.kill(id);
    for (const id of NODES) cluster.wipe(id);
    // Every node gets the variable, as the operator sets it on the whole cluster.
    await Promise.all(
      NODES.map((id) =>
        cluster.start(id, { timeoutMs: 90_000, env: { HQL_BACKUP_RESTORE: `s3:${objectName}` } }),
      ),
    );
    await cluster.waitForMembership({ voters: [...NODES] }, 60_000);
  }

  async function countsOnEveryNode(minIndex: number): Promise<number[]> {
    const rows = await cluster.rowsOn<{ n: number }>('SELECT count(*) AS n FROM t', { minIndex });
    return NODES.map((id) => rows.get(id)?.[0]?.n ?? -1);
  }

  test('backup to S3, kill and wipe all nodes, restore: every row back, writable, higher indexes', async () => {
    const c = await cluster.client();
    await c.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    await insertRows(c, 1, ROWS);
    const backup = await c.backup();
    assert.ok(backup.targets.includes('s3'), `stored in ${backup.targets.join(', ')}`);
    assert.ok(s3.objects().has(backup.name), 'the backup object is in the bucket');
    assert.deepEqual(s3.uploadsInProgress(), []);
    // Writes after the backup are lost by the restore (that is what a restore means).
    await insertRows(c, ROWS + 1, 10);
    await cluster.dropClient(c);

    await killWipeRestore(backup.name);

    const c2 = await cluster.client();
    const w = await c2.execute("INSERT INTO t (id, v) VALUES (1000000, 'after restore')");
    assert.ok(w.logIndex > backup.logIndex, `new write at ${w.logIndex}, backup at ${backup.logIndex}`);
    assert.deepEqual(await countsOnEveryNode(w.logIndex), [ROWS + 1, ROWS + 1, ROWS + 1]);
    const gets = s3.requests.filter((r) => r.operation === 'GetObject' && r.status === 200);
    assert.ok(gets.length >= 1, 'node 1 downloaded the backup');

    // A backup taken after the restore restores too.
    await insertRows(c2, 2_000_000, 100);
    const second = await c2.backup();
    assert.ok(second.logIndex > backup.logIndex);
    await cluster.dropClient(c2);

    await killWipeRestore(second.name);

    const c3 = await cluster.client();
    const w3 = await c3.execute("INSERT INTO t (id, v) VALUES (3000000, 'after second restore')");
    assert.ok(w3.logIndex > second.logIndex, `new write at ${w3.logIndex}, backup at ${second.logIndex}`);
    assert.deepEqual(await countsOnEveryNode(w3.logIndex), [ROWS + 102, ROWS + 102, ROWS + 102]);
  });
});
