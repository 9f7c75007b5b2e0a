/**
 * Backups of a running node: on demand (`backup()`, which a node sends to its leader) and on the
 * `backup_cron` schedule (run by whichever node leads when it fires). One backup at a time: a
 * request while one runs gets that one's result.
 *
 * A backup: a consistent copy of the database at its applied index (db-copy.ts, on a thread of
 * its own, checked with `PRAGMA integrity_check` there while it is compressed and encrypted
 * into the local folder: backup-file.ts, whose file is complete only once the check passed), the stored file then copied to S3 when configured; the copy is
 * deleted; retention runs on every target. Disk: the copy needs the database's size once more
 * while it exists, plus the backup file.
 */
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Cron } from 'croner';
import type { TimerHandle } from '../lib/clock.js';
import { HiqliteError } from '../lib/errors.js';
import type { BackupHost, BackupInfo, BackupListing, NodeBackups } from '../node/node-features.js';
import { backupFileStream } from './backup-file.js';
import { startCopy } from './db-copy.js';
import { KeyRing } from './key-ring.js';
import { formatBackupName, parseBackupName } from './names.js';
import { expiredBackups, scheduledRunsWithin } from './retention.js';
import type { BackupTarget } from './target.js';
import type { BackupTargets } from './targets.js';

/** setTimeout's largest delay; a later run is re-planned when this timer fires. */
const TIMER_DELAY_MAX_MS = 2 ** 31 - 1;
const COPY_BUSY_TIMEOUT_MS = 10_000;
const HOUR_MS = 60 * 60 * 1000;

export class BackupService implements NodeBackups {
  private running: Promise<BackupInfo> | null = null;
  private timer: TimerHandle | null = null;
  private scheduled: Promise<unknown> | null = null;
  private closed = false;
  private copySeq = 0;
  private readonly keys: KeyRing;
  private readonly cron: Cron;

  constructor(
    private readonly host: BackupHost,
    private readonly targets: BackupTargets,
  ) {
    const b = host.cfg.backup;
    this.keys = KeyRing.of(b.encKeys, b.encKeyActive);
    this.cron = new Cron(b.cron, { paused: true });
  }

  /** Starts the schedule (only with keys: without them no backup can be made). */
  start(): this {
    if (this.host.cfg.backup.encKeyActive === null) {
      this.host.log.info('no enc_keys configured: scheduled backups are off');
      return this;
    }
    this.plan();
    return this;
  }

  backup(): Promise<BackupInfo> {
    if (this.running !== null) return this.running;
    const run = this.run()
      .catch((e: unknown) => {
        // An on-demand backup's failure reached only its caller: the leader's log said nothing.
        this.host.log.warn({ err: String(e) }, 'backup failed');
        throw e;
      })
      .finally(() => {
        this.running = null;
      });
    this.running = run;
    return run;
  }

  get hasS3(): boolean {
    return this.targets.s3 !== null;
  }

  async list(target: 'local' | 's3', signal?: AbortSignal): Promise<BackupListing[]> {
    const t = target === 'local' ? this.targets.local : this.targets.s3;
    if (t === null)
      throw new HiqliteError('HQL_NOT_FOUND', 'no S3 bucket is configured (s3_url)', { retryable: false });
    const out: BackupListing[] = [];
    for (const o of await t.list(signal === undefined ? {} : { signal })) {
      const n = parseBackupName(o.name);
      if (n !== null) out.push({ name: o.name, bytes: o.bytes, ...n });
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) this.host.clock.clearTimer(this.timer);
    this.timer = null;
    this.cron.stop();
    await this.scheduled?.catch(() => {});
    await this.running?.catch(() => {});
  }

  /** Resolves once no backup runs (tests wait for a scheduled one with it). */
  async idle(): Promise<void> {
    await this.scheduled?.catch(() => {});
    await this.running?.catch(() => {});
  }

  /** The time of the next scheduled backup after `fromMs` (ms since the epoch), or null. */
  nextRunMs(fromMs: number): number | null {
    return this.cron.nextRun(new Date(fromMs))?.getTime() ?? null;
  }

  private plan(): void {
    if (this.closed) return;
    const now = this.host.clock.wallMs();
    const next = this.nextRunMs(now);
    if (next === null) return;
    const delay = Math.min(Math.max(0, next - now), TIMER_DELAY_MAX_MS);
    this.timer = this.host.clock.setTimer(() => this.fire(next), delay, { keepAlive: false });
  }

  private fire(dueMs: number): void {
    this.timer = null;
    if (this.closed) return;
    // A timer capped at the longest delay fired before its run: plan again.
    if (this.host.clock.wallMs() < dueMs) {
      this.plan();
      return;
    }
    if (this.host.isLeader()) {
      this.scheduled = this.backup().then(
        (info) => this.host.log.info({ backup: info.name, logIndex: info.logIndex }, 'scheduled backup done'),
        (e: unknown) => this.host.log.warn({ err: String(e) }, 'scheduled backup failed'),
      );
    }
    this.plan();
  }

  private async run(): Promise<BackupInfo> {
    const { cfg, log, clock } = this.host;
    const key = this.keys.active(); // fails before any work when no key is configured
    const startedMs = clock.monotonicMs();
    const copyPath = join(this.targets.local.dir, `copy-${process.pid}-${++this.copySeq}.partial`);
    try {
      // The copy's integrity check runs on the copy thread while the copy is compressed and
      // encrypted; the backup completes only once it passed.
      const { info: copy, checked } = await startCopy({
        dbPath: cfg.paths.dbFile,
        outPath: copyPath,
        busyTimeoutMs: COPY_BUSY_TIMEOUT_MS,
      });
      const createdMs = clock.wallMs();
      const name = formatBackupName({ createdMs, logIndex: copy.logIndex, nodeId: cfg.nodeId });
      const { body } = backupFileStream({
        dbPath: copyPath,
        clusterId: this.host.clusterId(),
        logIndex: copy.logIndex,
        logTerm: copy.logTerm,
        schemaVersion: copy.schemaVersion,
        createdMs,
        databaseBytes: copy.bytes,
        nodeId: cfg.nodeId,
        keys: this.keys,
        gzipLevel: cfg.backupGzipLevel,
        checked,
      });
      const stored = await this.targets.local.put(name, body);
      await rm(copyPath, { force: true });
      const targets = ['local'];
      let uploadFailed: unknown = null;
      if (this.targets.s3 !== null) {
        try {
          await this.targets.s3.put(
            name,
            createReadStream(join(this.targets.local.dir, name), { highWaterMark: 1 << 20 }),
          );
        } catch (e) {
          // Said where it is: the caller gets the S3 error, the operator the backup kept here.
          log.warn(
            { backup: name, err: String(e) },
            'backup stored in the local folder only: its upload to S3 failed',
          );
          // The caller (`hiqlite backup create`, POST /backup, db.backup()) is told both: the
          // upload failed, and the backup exists here under its name (the CLI printed only the
          // S3 error, and an operator took it that no backup existed).
          uploadFailed =
            e instanceof HiqliteError
              ? new HiqliteError(
                  e.code,
                  `backup ${name} is stored in node ${cfg.nodeId}'s local folder, but its upload to S3 failed: ${e.message}`,
                  { retryable: e.retryable, cause: e },
                )
              : e;
        }
        if (uploadFailed === null) targets.push('s3');
      }
      // The backup is stored: a failing clean-up is logged, and the next backup tries again. The
      // local folder's retention runs whatever became of the upload: skipped while S3 failed, an
      // outage left one more full copy on the node's disk per backup, until the disk was full
      // (found from outside).
      await this.cleanUp(this.targets.local, cfg.backupKeepDaysLocal);
      if (uploadFailed !== null) throw uploadFailed;
      if (this.targets.s3 !== null) await this.cleanUp(this.targets.s3, cfg.backupKeepDays);
      log.info(
        {
          backup: name,
          logIndex: copy.logIndex,
          bytes: stored.bytes,
          key: key.id,
          ms: Math.round(clock.monotonicMs() - startedMs),
        },
        'backup done',
      );
      return {
        name,
        logIndex: copy.logIndex,
        logTerm: copy.logTerm,
        createdMs,
        bytes: stored.bytes,
        databaseBytes: copy.bytes,
        targets,
        nodeId: cfg.nodeId,
      };
    } finally {
      await rm(copyPath, { force: true });
    }
  }

  /**
   * Retention (retention.ts: older than `keepDays`, but never fewer than the schedule's runs in
   * that time), then the leftovers of uploads that died (S3 multipart uploads older than
   * `backup_s3_upload_stale_hours`).
   */
  private async cleanUp(target: BackupTarget, keepDays: number): Promise<void> {
    const { clock, log, cfg } = this.host;
    try {
      const nowMs = clock.wallMs();
      const keepNewest = scheduledRunsWithin(this.cron, keepDays, nowMs);
      const expired = expiredBackups(await target.list(), keepDays, nowMs, keepNewest);
      for (const name of expired) {
        await target.delete(name);
        log.info({ backup: name, target: target.kind }, 'old backup deleted (retention)');
      }
      const aborted = await target.abortStaleUploads?.(nowMs, cfg.backupS3UploadStaleHours * HOUR_MS);
      if (aborted !== undefined && aborted > 0)
        log.warn(
          { uploads: aborted, target: target.kind },
          'aborted unfinished uploads of backups left by a node that stopped mid-upload',
        );
    } catch (e) {
      log.warn(
        { err: String(e), target: target.kind },
        'backup stored, but cleaning up old backups failed; the next backup tries again',
      );
    }
  }
}
