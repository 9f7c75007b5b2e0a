/**
 * `restore_done` on real files: a restore repeated from the same source (a variable left set) is
 * skipped, so later writes survive; a newer backup copied to the same path (`latest.hqbak`, the
 * usual way to hand a backup to a node) is another backup and is restored. Before, the path alone
 * decided: the newer backup was skipped with "already completed", and the node kept its state.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { BackupService } from '../../src/backup/backup-service.js';
import { parseRestoreSource, restoreNode } from '../../src/backup/restore.js';
import { openBackupTargets } from '../../src/backup/targets.js';
import { start } from '../../src/index.js';
import { resolveConfig } from '../../src/node/config/config.js';
import type { SqlNodeConfig } from '../../src/node/config/config-types.js';
import { sqlConfig } from '../../src/node/sqlite-setting.js';
import { makeTempDir } from '../sm/sql-test-helpers.js';
import { ManualClock } from '../support/manual-clock.js';
import { oneNodeConfig } from '../support/one-node-config.js';
import { makeDatabase } from './helpers.js';

const KEY = Buffer.alloc(32, 9).toString('base64');
const log = pino({ level: 'silent' });

function configOf(dataDir: string): SqlNodeConfig {
  return sqlConfig(
    resolveConfig({
      nodeId: 1,
      nodes: [{ id: 1, addrRaft: '127.0.0.1:1', addrApi: '127.0.0.1:2' }],
      dataDir,
      secretRaft: 'raft-secret-0123456789',
      secretApi: 'api-secret-0123456789',
      encKeys: [`k1/${KEY}`],
      encKeyActive: 'k1',
    }),
    'restore-mark',
  );
}

/** A backup file of a database of `rows` rows, copied to `to`. */
async function backupFile(dir: string, rows: number, to: string): Promise<void> {
  const cfg = configOf(dir);
  makeDatabase(cfg.paths.dbDir, rows);
  const svc = new BackupService(
    {
      cfg,
      log,
      clock: new ManualClock(Date.UTC(2026, 0, 1)),
      clusterId: () => null,
      isLeader: () => false,
    },
    await openBackupTargets(cfg.paths.backupsDir, cfg.backup),
  );
  try {
    const info = await svc.backup();
    copyFileSync(join(cfg.paths.backupsDir, info.name), to);
  } finally {
    await svc.close();
  }
}

describe('restore_done', () => {
  const tmp = makeTempDir('hq-restore-mark-');
  after(() => tmp.cleanup());

  test('the same backup again is skipped; a newer backup at the same path is restored', async () => {
    const latest = join(tmp.dir, 'latest.hqbak');
    const older = join(tmp.dir, 'older.hqbak');
    const newer = join(tmp.dir, 'newer.hqbak');
    await backupFile(join(tmp.dir, 'src-a'), 100, older);
    await backupFile(join(tmp.dir, 'src-b'), 1500, newer);
    const cfg = configOf(join(tmp.dir, 'node'));
    copyFileSync(older, latest);

    const first = await restoreNode(cfg, `file:${latest}`, log);
    assert.equal(first.action, 'installed');
    assert.equal(first.header?.logIndex, 2);
    assert.match(
      readFileSync(join(cfg.dataDir, 'restore_done'), 'utf8'),
      /^file:.*latest\.hqbak\nbackup [0-9a-f]{32}\n$/,
    );
    assert.equal((await restoreNode(cfg, `file:${latest}`, log)).action, 'skipped', 'the same backup again');

    copyFileSync(newer, latest);
    const second = await restoreNode(cfg, `file:${latest}`, log);
    assert.equal(second.action, 'installed', 'a newer backup at the same path');
    assert.equal(second.header?.logIndex, 3);
    assert.equal((await restoreNode(cfg, `file:${latest}`, log)).action, 'skipped');
    // The database installed is the newer backup's (1,500 rows): read from the snapshot.
    const snapshots = join(cfg.dataDir, 'state_machine', 'snapshots');
    const file = readdirSync(snapshots).find((f) => f.endsWith('.snap'));
    assert.ok(file !== undefined, `a snapshot in ${readdirSync(snapshots).join(', ')}`);
    const db = new Database(join(snapshots, file), { readonly: true });
    try {
      assert.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 1500);
    } finally {
      db.close();
    }
  });

  test('a mark without a backup id (an older version, or a node that could not read the file) compares the path', async () => {
    const latest = join(tmp.dir, 'legacy.hqbak');
    await backupFile(join(tmp.dir, 'src-c'), 10, latest);
    const cfg = configOf(join(tmp.dir, 'node-legacy'));
    assert.equal((await restoreNode(cfg, `file:${latest}`, log)).action, 'installed');
    const mark = readFileSync(join(cfg.dataDir, 'restore_done'), 'utf8').split('\n')[0];
    writeFileSync(join(cfg.dataDir, 'restore_done'), `${mark}\n`);
    assert.equal((await restoreNode(cfg, `file:${latest}`, log)).action, 'skipped');
  });

  test('a FIFO at the path does not block the check: the restore says it is no file', async () => {
    const fifo = join(tmp.dir, 'pipe.hqbak');
    execFileSync('mkfifo', [fifo]);
    const cfg = configOf(join(tmp.dir, 'node-fifo'));
    await assert.rejects(restoreNode(cfg, `file:${fifo}`, log), /HQL_BACKUP_NOT_FOUND|no file/);
  });
});

// A source in none of the forms is a mistake in how the restore was asked for, not a missing
// backup (it was HQL_BACKUP_NOT_FOUND).
test('HQL_BACKUP_RESTORE in no known form is HQL_INVALID_CONFIG', () => {
  for (const spec of ['ftp:/x', 'file:', 's3:', 'backup.hqbak'])
    assert.throws(
      () => parseRestoreSource(spec),
      (e: unknown) =>
        (e as { code?: string }).code === 'HQL_INVALID_CONFIG' &&
        /must be file:<path> or s3:/.test(String(e)),
      spec,
    );
  assert.deepEqual(parseRestoreSource('file:/a/b'), { kind: 'file', path: '/a/b' });
});

test('what a restore that did not end left behind is removed when the node starts', async () => {
  // Found from outside: `backup restore` killed while it read the backup left its work folder
  // (a database-sized restored.db.partial) in the data directory for good.
  const tmp = makeTempDir('hq-restore-left-');
  after(tmp.cleanup);
  const cfg = await oneNodeConfig(tmp.dir);
  const left = join(cfg.dataDir as string, 'restore');
  mkdirSync(left, { recursive: true });
  writeFileSync(join(left, 'restored.db.partial'), Buffer.alloc(64 * 1024, 1));
  const node = await start(cfg, { thread: 'main' });
  try {
    assert.equal(existsSync(left), false);
    assert.deepEqual(await node.query('SELECT 1 AS one'), [{ one: 1 }]);
  } finally {
    await node.close();
  }
});
