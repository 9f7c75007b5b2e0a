/**
 * The backup service of a node on real files and an injected clock: a second request joins the
 * running backup; the cron fires on the leader only; retention deletes what is older than the
 * configured days and never the newest backup; without keys nothing is attempted.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { BackupService } from '../../src/backup/backup-service.js';
import { parseBackupName } from '../../src/backup/names.js';
import { expiredBackups } from '../../src/backup/retention.js';
import { openBackupTargets } from '../../src/backup/targets.js';
import { HiqliteError } from '../../src/lib/errors.js';
import { type NodeConfig, resolveConfig } from '../../src/node/config/config.js';
import { sqlConfig } from '../../src/node/sqlite-setting.js';
import { makeTempDir } from '../sm/sql-test-helpers.js';
import { ManualClock } from '../support/manual-clock.js';
import { makeDatabase } from './helpers.js';

const DAY_MS = 86_400_000;
const KEY = Buffer.alloc(32, 3).toString('base64');

async function service(
  dir: string,
  o: Partial<NodeConfig>,
  clock: ManualClock,
  leader: { is: boolean },
  withKeys = true,
) {
  const keys = withKeys ? { encKeys: [`k1/${KEY}`], encKeyActive: 'k1' } : {};
  const cfg = sqlConfig(
    resolveConfig({
      nodeId: 1,
      nodes: [{ id: 1, addrRaft: '127.0.0.1:1', addrApi: '127.0.0.1:2' }],
      dataDir: dir,
      secretRaft: 'raft-secret-0123456789',
      secretApi: 'api-secret-0123456789',
      ...keys,
      ...o,
    }),
    'backups',
  );
  makeDatabase(cfg.paths.dbDir, 300);
  const targets = await openBackupTargets(cfg.paths.backupsDir, cfg.backup);
  const svc = new BackupService(
    { cfg, log: pino({ level: 'silent' }), clock, clusterId: () => null, isLeader: () => leader.is },
    targets,
  ).start();
  return { svc, targets, cfg };
}

describe('backup service', () => {
  const tmp = makeTempDir('hq-backup-svc-');
  after(() => tmp.cleanup());

  test('a second request while a backup runs gets the same backup', async () => {
    const clock = new ManualClock(Date.UTC(2025, 0, 1, 12));
    const { svc, targets } = await service(join(tmp.dir, 'join'), {}, clock, { is: true });
    try {
      const [a, b] = await Promise.all([svc.backup(), svc.backup()]);
      assert.equal(a, b);
      assert.equal(a.targets.join(), 'local');
      assert.equal(parseBackupName(a.name)?.logIndex, a.logIndex);
      assert.deepEqual(
        (await targets.local.list()).map((o) => o.name),
        [a.name],
      );
      clock.advance(1000);
      const c = await svc.backup();
      assert.notEqual(c.name, a.name, 'a later request takes a new backup');
    } finally {
      await svc.close();
    }
  });

  test('the cron fires on the leader only, at the configured time', async () => {
    // 02:29:00 local time; the default schedule is 02:30:00 local.
    const start = new Date(2025, 0, 2, 2, 29, 0).getTime();
    const clock = new ManualClock(start);
    const leader = { is: false };
    const { svc, targets } = await service(join(tmp.dir, 'cron'), {}, clock, leader);
    try {
      assert.equal(svc.nextRunMs(start), new Date(2025, 0, 2, 2, 30, 0).getTime());
      clock.advance(59_000);
      await svc.idle();
      assert.equal((await targets.local.list()).length, 0, 'not yet due');
      clock.advance(1_000);
      await svc.idle();
      assert.equal((await targets.local.list()).length, 0, 'a follower takes no scheduled backup');
      leader.is = true;
      clock.advance(DAY_MS);
      await svc.idle();
      const list = await targets.local.list();
      assert.equal(list.length, 1, 'the leader took the next day’s backup');
      assert.equal(parseBackupName(list[0]?.name ?? '')?.createdMs, new Date(2025, 0, 3, 2, 30, 0).getTime());
    } finally {
      await svc.close();
    }
    assert.equal(clock.pendingTimers, 0, 'close cancels the schedule');
  });

  test('retention deletes local backups older than backup_keep_days_local, never the newest', async () => {
    const clock = new ManualClock(Date.UTC(2025, 0, 1, 12));
    const { svc, targets } = await service(join(tmp.dir, 'retain'), { backupKeepDaysLocal: 30 }, clock, {
      is: true,
    });
    try {
      const day0 = await svc.backup();
      clock.advance(10 * DAY_MS);
      const day10 = await svc.backup();
      clock.advance(25 * DAY_MS);
      const day35 = await svc.backup();
      const names = (await targets.local.list()).map((o) => o.name).sort();
      assert.deepEqual(names, [day10.name, day35.name].sort(), `${day0.name} was deleted`);
    } finally {
      await svc.close();
    }
    const objects = [{ name: 'backup_20200101T000000.000Z_i1_n1.hqbak', bytes: 1, modifiedMs: 0 }];
    assert.deepEqual(expiredBackups(objects, 1, Date.UTC(2025, 0, 1)), [], 'the newest stays, however old');
  });

  test('without enc_keys: no schedule, and backup() says why', async () => {
    const clock = new ManualClock(Date.UTC(2025, 0, 1, 12));
    const { svc } = await service(join(tmp.dir, 'nokeys'), {}, clock, { is: true }, false);
    try {
      assert.equal(clock.pendingTimers, 0);
      await assert.rejects(
        svc.backup(),
        (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_BACKUP_KEY_UNKNOWN',
      );
    } finally {
      await svc.close();
    }
  });
});
