/**
 * A remote client's backup() is sent once: the node's answer is final. Found from outside: with
 * S3 failing, `hiqlite backup create` (a remote client) resent the request after every
 * retryable failure, for up to an hour, and each request took a whole backup (the leader kept
 * nine full local copies in 100 s; the caller was told nothing). And the leader logs the failure,
 * naming the backup it kept in its local folder.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { formatBackupName } from '../../src/backup/names.js';
import { connect, type HiqliteClient, HiqliteError, type HiqliteNode, start } from '../../src/index.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';
import { type FakeS3, startTestS3, testS3NodeConfig } from '../support/s3-server.js';
import { within } from '../support/within.js';

const root = mkdtempSync(join(tmpdir(), 'hq-backup-once-'));
let s3: FakeS3;
let node: HiqliteNode;
let client: HiqliteClient;
let dataDir: string;
const logged: Array<Record<string, unknown>> = [];

before(async () => {
  s3 = await startTestS3();
  const cfg = await oneNodeConfig(root, {
    encKeys: [`k1/${randomBytes(32).toString('base64')}`],
    encKeyActive: 'k1',
    // One day: a backup from 40 days ago is past it (the retention test below).
    backupKeepDaysLocal: 1,
    ...testS3NodeConfig(s3),
  });
  dataDir = cfg.dataDir as string;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logged.push(JSON.parse(line));
      done();
    },
  });
  node = await start(cfg, { thread: 'main', logger: pino({ level: 'warn' }, sink) });
  await node.execute('CREATE TABLE t (x)');
  client = await connect({ nodes: [cfg.nodes[0]!.addrApi], secretApi: TEST_SECRETS.secretApi });
});
after(async () => {
  await client?.close();
  await node?.close();
  await s3?.close();
  rmSync(root, { recursive: true, force: true });
});

function localBackups(): string[] {
  return readdirSync(join(dataDir, 'state_machine', 'backups')).filter((f) => !f.endsWith('.partial'));
}

test('with S3 failing, a remote backup() fails at once with HQL_S3 and takes one backup', async () => {
  const before = localBackups().length;
  let message = '';
  s3.faults.failNext(1_000, { status: 500 });
  const outcome = await within(
    client.backup().then(
      () => 'stored',
      (e: unknown) => {
        message = e instanceof Error ? e.message : String(e);
        return e instanceof HiqliteError ? e.code : String(e);
      },
    ),
    60_000,
    'the backup to end',
  );
  s3.faults.clear();
  assert.equal(outcome, 'HQL_S3');
  assert.equal(localBackups().length - before, 1, 'one request, one backup');
  // The leader says so, naming the backup it kept (its log said nothing of a failed one).
  const kept = logged.find(
    (r) => r.msg === 'backup stored in the local folder only: its upload to S3 failed',
  );
  assert.ok(kept !== undefined && localBackups().includes(String(kept.backup)), JSON.stringify(logged));
  // And the caller too: the backup exists here, only its upload failed.
  assert.ok(
    message.startsWith(
      `backup ${String(kept.backup)} is stored in node 1's local folder, but its upload to S3 failed: `,
    ),
    message,
  );
  assert.ok(logged.some((r) => r.msg === 'backup failed'));
});

test("with S3 failing, the local folder's retention still runs (an outage did not fill the disk)", async () => {
  // A backup of 40 days ago (a copy of one taken now, under its old name), then a backup while
  // S3 fails: the old one goes, as backup_keep_days_local says.
  s3.faults.clear();
  await node.backup();
  const dir = join(dataDir, 'state_machine', 'backups');
  const recent = localBackups().sort().at(-1) as string;
  const old = formatBackupName({ createdMs: Date.now() - 40 * 86_400_000, logIndex: 1, nodeId: 1 });
  copyFileSync(join(dir, recent), join(dir, old));
  assert.ok(localBackups().includes(old));
  s3.faults.failNext(1_000, { status: 500 });
  try {
    await assert.rejects(
      within(client.backup(), 60_000, 'the backup to end'),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_S3',
    );
  } finally {
    s3.faults.clear();
  }
  assert.ok(!localBackups().includes(old), `the 40-day-old backup is deleted: ${localBackups().join(', ')}`);
  assert.ok(localBackups().includes(recent), 'the recent ones are kept');
});
