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
import { formatBackupName, parseBackupName } from '../../src/backup/names.js';
import { expiredBackups } from '../../src/backup/retention.js';
import { S3Client } from '../../src/backup/s3/s3-client.js';
import { openBackupTargets } from '../../src/backup/targets.js';
import { HiqliteError } from '../../src/lib/errors.js';
import { type NodeConfig, resolveConfig } from '../../src/node/config/config.js';
import { sqlConfig } from '../../src/node/sqlite-setting.js';
import { makeTempDir } from '../sm/sql-test-helpers.js';
import { ManualClock } from '../support/manual-clock.js';
import { startTestS3, testS3ClientOptions, testS3NodeConfig } from '../support/s3-server.js';
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
    // Monthly: the schedule keeps one backup per 30 days, so the days alone decide.
    const clock = new ManualClock(Date.UTC(2025, 0, 1, 12));
    const { svc, targets } = await service(
      join(tmp.dir, 'retain'),
      { backupKeepDaysLocal: 30, backupCron: '0 0 12 1 * *' },
      clock,
      { is: true },
    );
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

  test('daily backups kept 3 days: steady state holds the last 3 days; a clock a year ahead keeps as many', async () => {
    const clock = new ManualClock(Date.UTC(2025, 0, 1, 12));
    const { svc, targets } = await service(join(tmp.dir, 'retain-jump'), { backupKeepDaysLocal: 3 }, clock, {
      is: true,
    });
    const listed = async () => (await targets.local.list()).map((o) => o.name).sort();
    try {
      const days = [];
      for (let d = 0; d < 5; d++) {
        if (d > 0) clock.advance(DAY_MS);
        days.push((await svc.backup()).name);
      }
      // Day 4: day 0 is older than 3 days; day 1 is exactly 3 days old and stays.
      assert.deepEqual(await listed(), days.slice(1).sort());
      // The node's clock jumps a year ahead: every earlier backup looks a year old. The days alone
      // would leave only the backup just taken; the schedule keeps 3 in 3 days, so 3 stay.
      clock.advance(365 * DAY_MS);
      const ahead = (await svc.backup()).name;
      assert.deepEqual(await listed(), [ahead, days[3], days[4]].sort());
    } finally {
      await svc.close();
    }
  });

  test('S3 uploads a killed node left unfinished are aborted after backup_s3_upload_stale_hours', async () => {
    const s3 = await startTestS3();
    try {
      const s3Config = testS3NodeConfig(s3);
      // What a node killed mid-upload leaves: the upload of a backup, and one of an object that
      // is not a backup (someone else's in the same bucket), both started now.
      const client = new S3Client(testS3ClientOptions(s3));
      const orphan = formatBackupName({ createdMs: Date.now(), logIndex: 7, nodeId: 2 });
      await client.createMultipartUpload(orphan);
      await client.createMultipartUpload('someone-elses/video.mp4');
      const pending = () =>
        s3
          .uploadsInProgress()
          .map((u) => u.key)
          .sort();
      // Two days on: older than 72 hours? No, so it may still be running: kept.
      const clock = new ManualClock(Date.now() + 2 * DAY_MS);
      const a = await service(
        join(tmp.dir, 's3-stale-a'),
        { ...s3Config, backupS3UploadStaleHours: 72 },
        clock,
        {
          is: true,
        },
      );
      try {
        assert.deepEqual((await a.svc.backup()).targets, ['local', 's3']);
      } finally {
        await a.svc.close();
      }
      assert.deepEqual(pending(), [orphan, 'someone-elses/video.mp4'].sort());
      // With the default (24 hours) the backup's upload is aborted; the other object is not ours.
      const b = await service(join(tmp.dir, 's3-stale-b'), s3Config, clock, { is: true });
      try {
        await b.svc.backup();
      } finally {
        await b.svc.close();
      }
      assert.deepEqual(pending(), ['someone-elses/video.mp4']);
    } finally {
      await s3.close();
    }
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
