/**
 * The Backups page's data: the backups of this node's local folder and of the S3 bucket, and
 * "create a backup now". One backup at a time from this dashboard: a request while one runs
 * waits for that one and gets its result (`joined`); the backup service itself does the same for
 * every caller (clients, the schedule), on the leader. The last outcome is kept so a page opened
 * later shows it.
 *
 * Nothing of a backup's contents passes here: no download route exists, since a backup holds
 * the whole database and its encryption keys must stay on the nodes. An operator downloads and
 * decrypts with `hiqlite backup download` on a machine that holds the config.
 */
import { whenAborted } from '../lib/abort.js';
import type { Clock } from '../lib/clock.js';
import { HiqliteError } from '../lib/errors.js';
import type { ApiFailure, BackupCreated, BackupList, BackupOutcome, BackupTargetList } from './api-types.js';
import type { DashboardBackups, StoredBackup } from './backend.js';

/** Backups listed per target (the newest; a bucket may hold more than a page should show). */
export const BACKUPS_LISTED_MAX = 200;
/** A listing (S3 above all) that takes longer is answered with HQL_TIMEOUT for that target. */
export const BACKUP_LIST_TIMEOUT_MS = 10_000;

type Created = Omit<BackupCreated, 'joined'>;

export class BackupPanel {
  private running: Promise<Created> | null = null;
  private runningSinceWallMs: number | null = null;
  private last: BackupOutcome | null = null;
  private waiters = 0;

  constructor(
    private readonly backups: DashboardBackups,
    private readonly clock: Clock,
  ) {}

  async list(signal: AbortSignal): Promise<BackupList> {
    this.checkAvailable();
    const [local, s3, leader] = await Promise.all([
      this.listTarget('local', signal),
      this.backups.s3 ? this.listTarget('s3', signal) : Promise.resolve(null),
      this.listLeader(signal),
    ]);
    return { local, leader, s3, runningSinceWallMs: this.runningSinceWallMs, last: this.last };
  }

  /** Requests waiting for the backup that runs (for tests). */
  get waiting(): number {
    return this.waiters;
  }

  /** Takes a backup (or joins the one this dashboard started); rejects with its error. */
  async create(): Promise<BackupCreated> {
    this.checkAvailable();
    const joined = this.running !== null;
    if (this.running === null) {
      const run = this.run().finally(() => {
        this.running = null;
        this.runningSinceWallMs = null;
      });
      this.running = run;
      this.runningSinceWallMs = this.clock.wallMs();
    }
    this.waiters++;
    try {
      return { ...(await this.running), joined };
    } finally {
      this.waiters--;
    }
  }

  private async run(): Promise<Created> {
    try {
      const b = await this.backups.create();
      const created: Created = {
        name: b.name,
        logIndex: b.logIndex,
        createdMs: b.createdMs,
        bytes: b.bytes,
        databaseBytes: b.databaseBytes,
        targets: [...b.targets],
        nodeId: b.nodeId,
      };
      this.last = { ok: true, atWallMs: this.clock.wallMs(), backup: { ...created, joined: false } };
      return created;
    } catch (e) {
      this.last = { ok: false, atWallMs: this.clock.wallMs(), error: failureOf(e) };
      throw e;
    }
  }

  /** The leader's folder on a follower (null on the leader); a failure is shown as its error. */
  private async listLeader(
    signal: AbortSignal,
  ): Promise<{ nodeId: number | null; list: BackupTargetList } | null> {
    let nodeId: number | null = null;
    const list = await this.listTarget('leader', signal, async (s) => {
      const l = await this.backups.leaderList(s);
      nodeId = l?.nodeId ?? null;
      return l?.backups ?? null;
    });
    if (list.ok && nodeId === null) return null;
    return { nodeId, list };
  }

  private async listTarget(
    target: 'local' | 's3' | 'leader',
    signal: AbortSignal,
    read: (signal: AbortSignal) => Promise<readonly StoredBackup[] | null> = (s) =>
      this.backups.list(target as 'local' | 's3', s),
  ): Promise<BackupTargetList> {
    const ac = new AbortController();
    const stopListening = whenAborted(signal, () => ac.abort());
    const timer = this.clock.setTimer(() => ac.abort(), BACKUP_LIST_TIMEOUT_MS);
    try {
      const all =
        (await Promise.race([
          read(ac.signal),
          new Promise<never>((_, reject) => whenAborted(ac.signal, () => reject(timeout(target)))),
        ])) ?? [];
      // Names start with their UTC time: the newest first.
      const sorted = [...all].sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
      const backups = sorted.slice(0, BACKUPS_LISTED_MAX).map((b) => ({
        name: b.name,
        bytes: b.bytes,
        createdMs: b.createdMs,
        logIndex: b.logIndex,
        nodeId: b.nodeId,
      }));
      return { ok: true, backups, truncated: sorted.length > backups.length };
    } catch (e) {
      return { ok: false, error: failureOf(e) };
    } finally {
      this.clock.clearTimer(timer);
      stopListening();
    }
  }

  private checkAvailable(): void {
    if (!this.backups.available())
      throw new HiqliteError('HQL_UNAVAILABLE', 'backups start once the node is a member of its cluster', {
        retryable: true,
      });
  }
}

function failureOf(e: unknown): ApiFailure {
  if (e instanceof HiqliteError) return { code: e.code, message: e.message, retryable: e.retryable };
  return { code: 'HQL_INTERNAL', message: e instanceof Error ? e.message : String(e), retryable: false };
}

function timeout(target: string): HiqliteError {
  return new HiqliteError(
    'HQL_TIMEOUT',
    `listing the ${target} backups took longer than ${BACKUP_LIST_TIMEOUT_MS} ms`,
    {
      retryable: true,
    },
  );
}
