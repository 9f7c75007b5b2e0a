/**
 * Disaster recovery: `HQL_BACKUP_RESTORE=file:<path>` or `s3:<object>` at start (and `hiqlite
 * backup restore`), set on every node of the stopped cluster.
 *
 * - Node 1 reads the backup into `<data_dir>/restore/restored.db` and verifies it fully (every
 *   chunk authenticated, size, `PRAGMA integrity_check`, `_hq_meta` at the header's index)
 *   before it touches anything: a bad backup changes nothing and says why. Then it discards its
 *   state and installs the database as a Raft snapshot at the backup's log index and term, with
 *   itself as the only voter, a hard state at that term, and a **new cluster id**. The log
 *   continues after the backup's index (the roll-over: every new write has a higher index than
 *   any entry the backup holds); node 1 elects itself and the others join it.
 * - Every other node marks the restore pending (`restore_pending`, after checking the backup's
 *   header if it can read the file) and keeps its state: node 1 may still refuse the backup. At
 *   its next start it asks node 1 (settlePendingRestore): node 1 in a new cluster installed the
 *   backup, and the node discards its state (nothing to download) and starts as a new node, so
 *   it joins node 1 and receives the snapshot; node 1 in the node's own cluster (or none)
 *   installed nothing, and the node keeps its state.
 * - Discarded: the Raft log, snapshots, database, cache group files, cluster id. Kept: the local
 *   backups folder (the file being restored may live there) and the lock file.
 * - The new cluster id makes nodes that were not restored (still holding the old cluster's
 *   state) refuse the restored cluster at the handshake, instead of mixing two histories.
 * - A completed restore writes `<data_dir>/restore_done` (the source it restored and, for a file,
 *   its backup's id, the header's random salt): starting again with the same `HQL_BACKUP_RESTORE`
 *   skips it with a warning, so forgetting to remove the variable does not wipe later writes; a
 *   newer backup copied to the same path is another backup, and restores. A node that cannot read
 *   the file (the others than node 1 often have none) compares the path only. A restore interrupted by a crash left no such mark and
 *   runs again from the start: every step can be repeated.
 */
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { abortedError, HiqliteError } from '../lib/errors.js';
import { PRIVATE_DIR_MODE } from '../lib/file-modes.js';
import { newClusterId, readClusterId, writeClusterId } from '../node/cluster-id.js';
import type { SqlNodeConfig } from '../node/config/config.js';
import { claimNodeId } from '../node/node-id-file.js';
import { askNode, restoreWhilePeersRun, runningPeers } from '../node/running-peers.js';
import { SnapshotStore } from '../node/snapshot-store.js';
import type { LogIndex, Membership, NodeId, Term } from '../raft/types.js';
import { writeFileAtomic } from '../storage/atomic-file.js';
import { isInsideDir, realPathOf } from '../storage/file-paths.js';
import { writeHardStateFile } from '../storage/hard-state-file.js';
import { backupCorrupt, backupNotFound } from './backup-errors.js';
import { restoreBackupFile } from './backup-file.js';
import { type BackupHeader, decodeHeader, HEADER_BYTES_MAX, headerLength } from './format.js';
import { KeyRing } from './key-ring.js';
import { openBackupTargets } from './targets.js';

export const RESTORE_ENV = 'HQL_BACKUP_RESTORE';
const DONE_FILE = 'restore_done';
const PENDING_FILE = 'restore_pending';
/** How often a node with a pending restore asks node 1 again, and logs that it waits. */
const PENDING_ASK_MS = 1000;
const PENDING_LOG_MS = 10_000;
const WORK_DIR = 'restore';
/** Entries of the data directory a restore keeps. */
const KEEP_TOP = new Set(['hiqlite.lock', 'state_machine', WORK_DIR, DONE_FILE]);
const KEEP_STATE_MACHINE = new Set(['backups']);
const RESTORED_MEMBERSHIP: Membership = { voters: [1 as NodeId], learners: [] };

export type RestoreSource =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 's3'; readonly name: string };

/** `origin`: how the source was given, for messages (the variable, or the command). */
export function parseRestoreSource(spec: string, origin = RESTORE_ENV): RestoreSource {
  if (spec.startsWith('file:') && spec.length > 5) return { kind: 'file', path: spec.slice(5) };
  if (spec.startsWith('s3:') && spec.length > 3) return { kind: 's3', name: spec.slice(3) };
  // A mistake in how the restore is asked for, not a backup that is missing (it was
  // HQL_BACKUP_NOT_FOUND): nothing was looked for.
  throw new HiqliteError(
    'HQL_INVALID_CONFIG',
    `${origin} must be file:<path> or s3:<object name>, got '${spec}'`,
    { retryable: false },
  );
}

export interface RestoreOutcome {
  /** `pending`: a node other than 1, which settles its restore at its next start (settlePendingRestore). */
  readonly action: 'installed' | 'pending' | 'skipped';
  readonly header?: BackupHeader;
  readonly clusterId?: string;
}

export interface RestoreOptions {
  /** Stored bytes read so far (for a progress display). */
  readonly onProgress?: (bytesRead: number, header: BackupHeader | null) => void;
  /**
   * How the source was given, named in messages: `HQL_BACKUP_RESTORE` (the default) or the
   * command (`hiqlite backup restore`), whose user set no variable.
   */
  readonly origin?: string;
}

/**
 * What a restore that did not end left in the data directory (its work folder: the backup being
 * read, as large as the database), removed when the node starts, which holds the directory's lock
 * as a restore does: no restore runs. It stayed for good (found by an outside probe: a
 * `backup restore` killed while it read the backup left a 145 MB `restored.db.partial`).
 */
export async function removeRestoreLeftovers(cfg: SqlNodeConfig, log: Logger): Promise<void> {
  const workDir = join(cfg.dataDir, WORK_DIR);
  const left = await stat(workDir).then(
    () => true,
    () => false,
  );
  if (!left) return;
  await rm(workDir, { recursive: true, force: true });
  log.warn({ path: workDir }, 'removed what a restore that did not end left behind');
}

/** `HQL_BACKUP_RESTORE` at start: runs the restore when the variable is set. */
export async function restoreFromEnv(cfg: SqlNodeConfig, log: Logger, env = process.env): Promise<void> {
  const spec = env[RESTORE_ENV];
  if (spec === undefined || spec === '') return;
  await restoreNode(cfg, spec, log);
}

/** Restores this node's data directory (which the caller has locked) from `spec`. */
export async function restoreNode(
  cfg: SqlNodeConfig,
  spec: string,
  log: Logger,
  options: RestoreOptions = {},
): Promise<RestoreOutcome> {
  const origin = options.origin ?? RESTORE_ENV;
  const source = parseRestoreSource(spec, origin);
  // The mark names the source by what it is, not how it was spelt: `file:backup.hqbak` from one
  // working directory, `file:/srv/backup.hqbak` in a later start, and the name given to `backup
  // restore` are one backup, and repeating its restore would wipe every write since.
  const mark = restoreMark(spec, source);
  // A file's path can hold another backup later (`latest.hqbak` replaced by a newer one): the
  // header's salt, random per backup, tells which one the path held when it was restored.
  const backupId = source.kind === 'file' ? await backupIdOf(source.path) : null;
  const done = parseDoneMark(await readFile(join(cfg.dataDir, DONE_FILE), 'utf8').catch(() => null));
  if (
    done !== null &&
    (done.source === mark || done.source === spec) &&
    (done.backupId === null || backupId === null || done.backupId === backupId)
  ) {
    log.warn(
      { source: spec },
      `this restore was already completed here: remove ${RESTORE_ENV}; starting normally (to restore the same backup again, delete ${join(cfg.dataDir, DONE_FILE)})`,
    );
    return { action: 'skipped' };
  }
  if (done !== null && done.source === mark)
    log.warn(
      { source: spec },
      'restore: the file now holds another backup than the one restored from it before',
    );
  refuseSourceInDataDir(cfg, source, origin);
  if (cfg.nodeId !== 1) {
    // Not discarded yet: node 1 may still refuse the backup (damaged, the wrong key, other nodes
    // running), and the others' state is then all the cluster has (found from outside: a bad
    // backup left node 1 alone, a candidate for ever, and nodes 2 and 3 empty). The node discards
    // its state when it starts and finds node 1 restored (settlePendingRestore).
    // A file this node can read is checked as a backup first (node 1 verifies it whole): one
    // that is none is refused here too, with node 1's error. One it cannot see passes (the
    // others than node 1 often have none).
    if (source.kind === 'file') await headerHere(source.path);
    await writePendingMark(cfg, { mark, backupId, clusterId: await readClusterId(cfg.dataDir) });
    log.warn(
      { source: spec },
      'restore: pending; this node discards its state when it starts and finds node 1 restored from the backup (a new cluster), and keeps it if node 1 is not',
    );
    return { action: 'pending' };
  }
  const workDir = join(cfg.dataDir, WORK_DIR);
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const restored = join(workDir, 'restored.db');
  const keys = KeyRing.of(cfg.backup.encKeys, cfg.backup.encKeyActive);
  const label = source.kind === 'file' ? `backup file ${source.path}` : `backup ${source.name} in S3`;
  log.warn({ source: spec }, 'restore: reading and verifying the backup');
  let header: BackupHeader | null = null;
  let h: BackupHeader;
  try {
    ({ header: h } = await restoreBackupFile(await openSource(cfg, source, origin), {
      keys,
      label,
      name: source.kind === 's3' ? source.name : source.path,
      outPath: restored,
      onHeader: (x) => {
        header = x;
      },
      onProgress: (n) => options.onProgress?.(n, header),
    }));
  } catch (e) {
    // A bad backup changes nothing: not even the work folder stays behind.
    await rm(workDir, { recursive: true, force: true });
    throw e;
  }
  // Verified. Nodes not restored must not be running the old cluster: node 1 would found a
  // second one beside it (running-peers.ts). Asked now, right before anything changes.
  const running = await runningPeers(cfg);
  if (running.length > 0) {
    await rm(workDir, { recursive: true, force: true });
    throw restoreWhilePeersRun(running);
  }
  // From here on the node's old state goes away.
  setMembership(restored, RESTORED_MEMBERSHIP);
  await discardState(cfg);
  const snapshots = await SnapshotStore.open(cfg.paths.snapshotsDir);
  const temp = snapshots.tempPath();
  await rename(restored, temp);
  await snapshots.commit(temp, {
    index: h.logIndex as LogIndex,
    term: h.logTerm as Term,
    membership: RESTORED_MEMBERSHIP,
  });
  await mkdir(cfg.paths.logsDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await writeHardStateFile(cfg.paths.logsDir, {
    term: h.logTerm as Term,
    vote: null,
    commit: h.logIndex as LogIndex,
  });
  const clusterId = newClusterId();
  await writeClusterId(cfg.dataDir, clusterId);
  await writeDoneMark(cfg, mark, source.kind === 'file' ? Buffer.from(h.salt).toString('hex') : null);
  await rm(workDir, { recursive: true, force: true });
  log.warn(
    { source: spec, logIndex: h.logIndex, term: h.logTerm, backupCluster: h.clusterId, clusterId },
    'restore: installed the backup; the log continues after its index, in a new cluster',
  );
  return { action: 'installed', header: h, clusterId };
}

/**
 * `restore_done`: the source (`restoreMark`) on its first line; for a file, `backup <salt in
 * hex>` on the second (the header's salt, random per backup) when the file could be read here.
 * A mark of an older version has the first line only.
 */
interface DoneMark {
  readonly source: string;
  readonly backupId: string | null;
}

function parseDoneMark(text: string | null): DoneMark | null {
  if (text === null) return null;
  const [source = '', second = ''] = text.split('\n');
  const id = /^backup ([0-9a-f]+)$/.exec(second.trim());
  return { source: source.trim(), backupId: id?.[1] ?? null };
}

async function writeDoneMark(cfg: SqlNodeConfig, mark: string, backupId: string | null): Promise<void> {
  const text = backupId === null ? `${mark}\n` : `${mark}\nbackup ${backupId}\n`;
  await writeFileAtomic(cfg.dataDir, DONE_FILE, new TextEncoder().encode(text));
}

/**
 * The salt of the backup header at the start of `path`, in hex, or null when it cannot be read
 * here (missing, unreadable, not a backup: the restore itself says why where it reads the file).
 */
async function backupIdOf(path: string): Promise<string | null> {
  const header = await headerHere(path).catch(() => null);
  return header === null ? null : Buffer.from(header.salt).toString('hex');
}

/**
 * The header of the backup file at `path`; null when this node cannot see the file (missing,
 * not a regular file, unreadable); HQL_BACKUP_CORRUPT when it holds no backup header.
 */
async function headerHere(path: string): Promise<BackupHeader | null> {
  // Not a FIFO or a device: opening one could block or read without end.
  const s = await stat(path).catch(() => null);
  if (s === null || !s.isFile()) return null;
  const fh: FileHandle | null = await open(path, 'r').catch(() => null);
  if (fh === null) return null;
  try {
    const prefix = Buffer.alloc(HEADER_BYTES_MAX);
    const { bytesRead } = await fh.read(prefix, 0, prefix.length, 0);
    const label = `backup file ${path}`;
    const truncated = () => backupCorrupt(`${label} is truncated: ${bytesRead} bytes, shorter than a header`);
    if (bytesRead < 12) throw truncated();
    const length = headerLength(prefix.subarray(0, 12), label);
    if (bytesRead < length) throw truncated();
    return decodeHeader(prefix.subarray(0, length), label);
  } finally {
    await fh.close().catch(() => {});
  }
}

/** What `restore_done` holds first: `file:` with the file's real absolute path, or the spec as given. */
function restoreMark(spec: string, source: RestoreSource): string {
  return source.kind === 'file' ? `file:${realPathOf(source.path)}` : spec;
}

/**
 * A restore empties `data_dir` but for its backups folder: a backup file elsewhere in it (copied
 * into the data directory to be restored) was deleted with the rest, after node 1 read it, or
 * before it was read at all (another node, the `restore` work folder): a crash in the middle then
 * left neither the old state nor the backup. Such a source is refused before anything changes.
 */
function refuseSourceInDataDir(cfg: SqlNodeConfig, source: RestoreSource, origin: string): void {
  if (source.kind !== 'file') return;
  if (!isInsideDir(source.path, cfg.dataDir) || isInsideDir(source.path, cfg.paths.backupsDir)) return;
  throw new HiqliteError(
    'HQL_INVALID_CONFIG',
    `${origin} file:${source.path}: the file is inside data_dir ${cfg.dataDir}, which the restore empties (all but ${cfg.paths.backupsDir}): move it out of data_dir or into that folder; nothing was changed`,
    { retryable: false },
  );
}

async function openSource(
  cfg: SqlNodeConfig,
  source: RestoreSource,
  origin: string,
): Promise<AsyncIterable<Uint8Array>> {
  if (source.kind === 'file') {
    const s = await stat(source.path).catch(() => null);
    if (s === null || !s.isFile()) throw backupNotFound(`${origin}: no file ${source.path}`);
    return createReadStream(source.path, { highWaterMark: 1 << 20 });
  }
  const targets = await openBackupTargets(cfg.paths.backupsDir, cfg.backup);
  if (targets.s3 === null)
    throw new HiqliteError(
      'HQL_INVALID_CONFIG',
      `${origin} s3:${source.name} needs s3_url and the other s3_* keys`,
      { retryable: false },
    );
  return targets.s3.get(source.name);
}

/**
 * `restore_pending` of a node other than 1: the restore it was asked for (as `restore_done`
 * names it) and the cluster id its state belonged to then.
 */
interface PendingMark {
  readonly mark: string;
  readonly backupId: string | null;
  readonly clusterId: string | null;
}

async function writePendingMark(cfg: SqlNodeConfig, p: PendingMark): Promise<void> {
  await writeFileAtomic(cfg.dataDir, PENDING_FILE, new TextEncoder().encode(`${JSON.stringify(p)}\n`));
}

async function readPendingMark(cfg: SqlNodeConfig): Promise<PendingMark | null> {
  const text = await readFile(join(cfg.dataDir, PENDING_FILE), 'utf8').catch(() => null);
  if (text === null) return null;
  try {
    const v = JSON.parse(text) as Partial<PendingMark>;
    if (typeof v.mark === 'string')
      return {
        mark: v.mark,
        backupId: typeof v.backupId === 'string' ? v.backupId : null,
        clusterId: typeof v.clusterId === 'string' ? v.clusterId : null,
      };
  } catch {
    // A torn mark cannot be: it is written atomically. Read as none below.
  }
  return null;
}

export interface PendingRestoreOptions {
  /** How long to wait for node 1 to answer (start()'s join timeout). */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/**
 * At the start of a node other than 1 whose restore is pending: asks node 1 what it runs. Node 1
 * in another cluster than the one this node's state belongs to has installed the backup (a
 * restore gives it a new cluster id): the state is discarded and the node joins node 1 as a new
 * node. Node 1 in this node's own cluster, or in none, has not: the state is kept (it may be all
 * the cluster has) and the pending restore dropped. Node 1 not answering: asked again every
 * second until `timeoutMs` (HQL_TIMEOUT: nothing changed; start again once node 1 runs).
 */
export async function settlePendingRestore(
  cfg: SqlNodeConfig,
  log: Logger,
  options: PendingRestoreOptions,
): Promise<'none' | 'discarded' | 'kept'> {
  const pending = await readPendingMark(cfg);
  if (pending === null) {
    await rm(join(cfg.dataDir, PENDING_FILE), { force: true });
    return 'none';
  }
  const started = performance.now();
  let loggedAt = started;
  for (;;) {
    if (options.signal?.aborted) throw abortedError('start cancelled while the restore waited for node 1');
    const answer = await askNode(cfg, 1, Math.min(PENDING_ASK_MS * 3, options.timeoutMs));
    if (answer !== null) {
      const own = pending.clusterId ?? (await readClusterId(cfg.dataDir));
      if (answer.clusterId !== null && answer.clusterId !== own) {
        log.warn(
          { clusterId: answer.clusterId, previous: own },
          "restore: node 1 installed the backup (a new cluster): this node's state is discarded; it joins node 1",
        );
        await discardState(cfg);
        await claimNodeId(cfg.dataDir, cfg.nodeId);
        await writeDoneMark(cfg, pending.mark, pending.backupId);
        await rm(join(cfg.dataDir, PENDING_FILE), { force: true });
        return 'discarded';
      }
      log.error(
        { node1ClusterId: answer.clusterId, clusterId: own },
        answer.clusterId === null
          ? 'restore: node 1 runs without a cluster (it installed no backup): this node keeps its state; restore node 1, then this node again'
          : "restore: node 1 runs this node's own cluster (it installed no backup): this node keeps its state; restore node 1, then this node again",
      );
      await rm(join(cfg.dataDir, PENDING_FILE), { force: true });
      return 'kept';
    }
    const now = performance.now();
    if (now - started >= options.timeoutMs)
      throw new HiqliteError(
        'HQL_TIMEOUT',
        `restore pending: node 1 did not answer within ${Math.round(options.timeoutMs)} ms; this node's state is unchanged: start it again once node 1 runs`,
        { retryable: true },
      );
    if (now - loggedAt >= PENDING_LOG_MS) {
      loggedAt = now;
      log.warn('restore pending: waiting for node 1 to answer (is it started?)');
    }
    await new Promise<void>((resolve) => setTimeout(resolve, PENDING_ASK_MS));
  }
}

/** The database's membership blob, as the SQL group's state machine stores it (JSON). */
function setMembership(dbPath: string, membership: Membership): void {
  const db = new Database(dbPath, { fileMustExist: true });
  try {
    db.prepare('UPDATE _hq_meta SET membership = ? WHERE id = 0').run(
      Buffer.from(JSON.stringify(membership)),
    );
  } finally {
    db.close();
  }
}

async function discardState(cfg: SqlNodeConfig): Promise<void> {
  for (const name of await readdir(cfg.dataDir)) {
    if (!KEEP_TOP.has(name)) await rm(join(cfg.dataDir, name), { recursive: true, force: true });
  }
  const sm = join(cfg.dataDir, 'state_machine');
  for (const name of await readdir(sm).catch(() => [] as string[])) {
    if (!KEEP_STATE_MACHINE.has(name)) await rm(join(sm, name), { recursive: true, force: true });
  }
}
