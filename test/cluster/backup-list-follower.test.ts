/**
 * The Backups page's list on real processes: the leader takes a backup into its own local folder;
 * a follower's dashboard lists its own (empty) folder and, asked of the leader over the API port
 * (`backupList`), the leader's folder with the backup, naming the leader. The leader's dashboard
 * lists its folder only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BackupList } from '../../src/dashboard/api-types.js';
import { hashPassword } from '../../src/dashboard/password.js';
import { TestCluster } from './harness.js';

const PASSWORD = 'backups-page-password';
const KEY = Buffer.alloc(32, 4).toString('base64');

async function backupsSeenBy(c: TestCluster, id: number): Promise<BackupList> {
  const base = `http://127.0.0.1:${c.node(id).apiPort}/dashboard/api`;
  const login = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ password: PASSWORD }),
    signal: AbortSignal.timeout(20_000),
  });
  assert.equal(login.status, 200, await login.text());
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  const r = await fetch(`${base}/backups`, { headers: { cookie }, signal: AbortSignal.timeout(20_000) });
  const body = (await r.json()) as { ok: boolean; value?: BackupList };
  assert.equal(r.status, 200, JSON.stringify(body));
  assert.ok(body.value !== undefined);
  return body.value;
}

describe("a follower's Backups page lists the leader's folder", () => {
  let c: TestCluster;
  before(async () => {
    const phc = await hashPassword(PASSWORD, { memoryKib: 4096, iterations: 1, parallelism: 1 });
    c = await TestCluster.create({
      nodes: 2,
      toml: [
        `password_dashboard = "${phc}"`,
        'insecure_cookie = true',
        `enc_keys = ["k1/${KEY}"]`,
        'enc_key_active = "k1"',
      ].join('\n'),
    });
  });
  after(async () => c?.close());

  test('the backup taken by the leader shows under the leader on both dashboards', async () => {
    const client = await c.client();
    await client.execute('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    const info = await client.backup();
    const leader = info.nodeId;
    const follower = leader === 1 ? 2 : 1;

    const onFollower = await backupsSeenBy(c, follower);
    assert.ok(onFollower.local.ok, JSON.stringify(onFollower.local));
    assert.equal(onFollower.local.backups.length, 0, "the follower's own folder holds none");
    assert.ok(onFollower.leader !== null, 'a follower lists the leader folder');
    assert.equal(onFollower.leader.nodeId, leader);
    assert.ok(onFollower.leader.list.ok, JSON.stringify(onFollower.leader.list));
    assert.deepEqual(
      onFollower.leader.list.backups.map((b) => [b.name, b.nodeId, b.logIndex]),
      [[info.name, leader, info.logIndex]],
    );

    const onLeader = await backupsSeenBy(c, leader);
    assert.equal(onLeader.leader, null);
    assert.ok(onLeader.local.ok);
    assert.deepEqual(
      onLeader.local.backups.map((b) => b.name),
      [info.name],
    );
  });
});
