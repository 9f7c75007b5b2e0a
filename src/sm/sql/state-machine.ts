/**
 * The SQLite state machine: applies committed log entries to a SQLite database, independent of
 * Raft. One writer connection, used by one thread (see worker-client.ts to run it off the event
 * loop).
 *
 * Apply contract: entries arrive in log order, starting at `appliedIndex() + 1`. Each batch is
 * one SQLite transaction; each command runs in its own SAVEPOINT, so a failing command gets its
 * own error result and the others commit. The last applied index/term (and the membership blob
 * of the latest config entry) are written to `_hq_meta` in the same transaction, so after a
 * crash or restart `appliedIndex()` says exactly which entries the database contains.
 *
 * Batch boundaries differ between replicas (and between a leader and its restarts), so a
 * batch must give the same results as applying its commands one per transaction. The two ways
 * a command can see past its savepoint are handled explicitly:
 * - a statement that rolls back the whole transaction (`INSERT OR ROLLBACK`, `RAISE(ROLLBACK)`)
 *   → the batch is rolled back and re-applied one command per transaction;
 * - deferred foreign keys are checked at COMMIT, not at the savepoint → while the schema has
 *   any `DEFERRED` constraint, every command gets its own transaction, and a command whose
 *   COMMIT fails gets that constraint error as its result.
 */

import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { assert } from '../../lib/assert.js';
import { damagedName } from '../../lib/damaged-name.js';
import { HiqliteError } from '../../lib/errors.js';
import { PRIVATE_DIR_MODE } from '../../lib/file-modes.js';
import type { LogIndex, Term } from '../../raft/types.js';
import { AppliedIndexWatcher } from './applied-watch.js';
import { type CommandEnvelope, tryDecodeCommand } from './command.js';
import { DeterministicEnv, installDeterministicFunctions } from './determinism.js';
import { classifyCommandError, fatalSqliteError, type SqlErrorInfo } from './errors.js';
import { CommandExecutor, TransactionLostError } from './executor.js';
import { type ConnectionWatch, extensionMissing, watchConnection } from './interrupt.js';
import { ensurePrivateFileSync } from './private-file.js';
import { type CommandResult, failure } from './result.js';
import { configureWriter, ensureSchema, PAGE_SIZE_BYTES, readMeta } from './schema.js';
import { SessionTable } from './sessions.js';

export interface ApplyEntry {
  readonly index: LogIndex;
  readonly term: Term;
  /** The command bytes; null for a noop or config entry. */
  readonly data: Uint8Array | null;
  /** For config entries: the runtime's opaque encoding of the new membership, stored in `_hq_meta`. */
  readonly membership?: Uint8Array;
}

export interface AppliedState {
  readonly index: LogIndex;
  readonly term: Term;
  readonly membership: Uint8Array | null;
  /** The log clock as of the last commit (the time the next command runs at, at least). */
  readonly clockMs: number;
}

export interface SnapshotInfo extends AppliedState {
  readonly path: string;
  readonly bytes: number;
}

export interface BackupProgress {
  readonly totalPages: number;
  readonly remainingPages: number;
}

export interface SqlStateMachineOptions {
  /** Database file name inside the directory. Default 'hiqlite.db'. */
  readonly fileName?: string;
  /** Idle sessions older than this (by entry time) are dropped. Must match on every node. Default 1 h. */
  readonly sessionTtlMs?: number;
  /** Most sessions kept; the least recently seen is evicted. Must match on every node. Default 10,000. */
  readonly sessionsMax?: number;
  /** Larger results are not kept for duplicates. Must match on every node. Default 1 MiB. */
  readonly sessionResultBytesMax?: number;
  /** Prepared statements and parsed SQL kept per connection. Default 256. */
  readonly statementCacheMax?: number;
  /** How long SQLite retries a locked database before failing. Default 5,000 ms. */
  readonly busyTimeoutMs?: number;
  /** Pages copied per step of a snapshot; applies run between steps. Default 256 (1 MiB). */
  readonly snapshotPagesPerStep?: number;
  /** Pages copied per step of a restore. Default 4096 (16 MiB). */
  readonly restorePagesPerStep?: number;
  /** Called between restore steps (tests use it to crash mid-restore). */
  readonly onRestoreProgress?: (progress: BackupProgress) => void;
  /**
   * Register the writer connection with the interrupt watchdog (interrupt.ts), so that shutdown
   * can stop a batch that does not end (`connectionId`). Default true; without the extension
   * built, `connectionId` is null.
   */
  readonly interruptible?: boolean;
  /**
   * Check the database file when it is opened (`PRAGMA quick_check`: about 1.3 s per GB with the
   * file in the page cache). A damaged file is moved aside and the state machine starts empty
   * (`damaged`): the runtime restores it from the snapshot and the log, or the node rejoins.
   * Without the check a damaged file that still opens is found by the first read or write that
   * touches a damaged page (HQL_CORRUPTION). Default true.
   */
  readonly checkAtStart?: boolean;
}

/** What `open` found wrong with the database file, and where it moved it. */
export interface DamagedDatabase {
  readonly path: string;
  readonly reason: string;
  /** The damaged file's new name (its `-wal` beside it, if it had one). */
  readonly movedTo: string;
}

type ResolvedOptions = Required<Omit<SqlStateMachineOptions, 'onRestoreProgress'>> &
  Pick<SqlStateMachineOptions, 'onRestoreProgress'>;

export const DEFAULT_FILE_NAME = 'hiqlite.db';

function resolveOptions(o: SqlStateMachineOptions): ResolvedOptions {
  const r = {
    fileName: o.fileName ?? DEFAULT_FILE_NAME,
    sessionTtlMs: o.sessionTtlMs ?? 60 * 60 * 1000,
    sessionsMax: o.sessionsMax ?? 10_000,
    sessionResultBytesMax: o.sessionResultBytesMax ?? 1024 * 1024,
    statementCacheMax: o.statementCacheMax ?? 256,
    busyTimeoutMs: o.busyTimeoutMs ?? 5_000,
    snapshotPagesPerStep: o.snapshotPagesPerStep ?? 256,
    restorePagesPerStep: o.restorePagesPerStep ?? 4096,
    interruptible: o.interruptible ?? true,
    checkAtStart: o.checkAtStart ?? true,
    ...(o.onRestoreProgress === undefined ? {} : { onRestoreProgress: o.onRestoreProgress }),
  };
  for (const key of [
    'sessionTtlMs',
    'sessionsMax',
    'sessionResultBytesMax',
    'statementCacheMax',
    'snapshotPagesPerStep',
    'restorePagesPerStep',
  ] as const) {
    if (!(Number.isSafeInteger(r[key]) && r[key] >= 1)) {
      throw new HiqliteError('HQL_INVALID_CONFIG', `${key} must be a positive integer, got ${r[key]}`, {
        retryable: false,
      });
    }
  }
  if (!(Number.isSafeInteger(r.busyTimeoutMs) && r.busyTimeoutMs >= 0)) {
    throw new HiqliteError('HQL_INVALID_CONFIG', `busyTimeoutMs must be >= 0, got ${r.busyTimeoutMs}`, {
      retryable: false,
    });
  }
  if (r.fileName.length === 0 || r.fileName.includes('/') || r.fileName.includes('\\')) {
    throw new HiqliteError('HQL_INVALID_CONFIG', `fileName must be a plain file name, got '${r.fileName}'`, {
      retryable: false,
    });
  }
  return r;
}

const NOOP: CommandResult = { ok: true, type: 'noop' };

export class SqlStateMachine {
  /** Advanced after every committed batch; readers wait on it for read-your-writes. */
  readonly applied: AppliedIndexWatcher;
  private state: AppliedState;
  private closed = false;
  private restoring = false;
  private snapshotting: Promise<unknown> | null = null;
  private readonly env = new DeterministicEnv();
  private readonly closeHelper: () => void;
  private readonly executor: CommandExecutor;
  private readonly sessions: SessionTable;
  private readonly stmts: ReturnType<typeof prepareControl>;
  private schemaVersionSeen = -1;
  private deferredConstraints = false;
  /**
   * The state machine's clock: the largest `nowMs` of any command applied so far, and the time
   * every command runs at (`max(clock, its own nowMs)`). Commands carry the time of the node
   * that proposed them; a leader change to a node whose clock is behind must not move
   * `datetime('now')` or session expiry backwards. Kept in `_hq_meta` in the same transaction
   * as the applied index, so every replica (and a restart, and a snapshot) agrees on it.
   */
  private clockMs = 0;
  private committedClockMs = 0;
  /** The writer connection's id for `interruptConnection` (interrupt.ts), or null. */
  readonly connectionId: number | null;
  private readonly watch: ConnectionWatch | null;
  /**
   * The writer's SQLITE_LIMIT_LENGTH at open (better-sqlite3 sets V8's longest string), under
   * which a command without `valueBytesMax` runs, as all commands did before the stamp existed;
   * null without the extension (nothing can change it then).
   */
  private readonly unstampedLimit: number | null;
  /** The writer's SQLITE_LIMIT_LENGTH now. */
  private lengthLimit: number | null;

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
    private readonly options: ResolvedOptions,
    /** The damaged file `open` found and moved aside (this state machine started empty), or null. */
    readonly damaged: DamagedDatabase | null,
  ) {
    this.watch = options.interruptible ? watchConnection(db) : null;
    // The extension also sets each command's value limit (`valueBytesMax`): a replica that
    // could not would apply a command that the others refuse. So it is required.
    if (options.interruptible && this.watch === null) throw extensionMissing();
    this.connectionId = this.watch?.id ?? null;
    this.unstampedLimit = this.watch?.lengthLimit() ?? null;
    this.lengthLimit = this.unstampedLimit;
    this.closeHelper = installDeterministicFunctions(db, this.env);
    this.executor = new CommandExecutor(db, options.statementCacheMax);
    this.sessions = new SessionTable(db, {
      ttlMs: options.sessionTtlMs,
      sessionsMax: options.sessionsMax,
      resultBytesMax: options.sessionResultBytesMax,
    });
    this.stmts = prepareControl(db);
    this.state = this.loadState();
    this.applied = new AppliedIndexWatcher(this.state.index);
  }

  static open(dir: string, options: SqlStateMachineOptions = {}): SqlStateMachine {
    const resolved = resolveOptions(options);
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const path = join(dir, resolved.fileName);
    try {
      return SqlStateMachine.openFile(path, resolved, null);
    } catch (e) {
      if (!(e instanceof DamagedDatabaseError)) throw e;
      // Moved aside, not deleted: it is the operator's to examine. The state machine starts empty.
      const movedTo = moveAside(path);
      return SqlStateMachine.openFile(path, resolved, { path, reason: e.message, movedTo });
    }
  }

  private static openFile(
    path: string,
    resolved: ResolvedOptions,
    damaged: DamagedDatabase | null,
  ): SqlStateMachine {
    ensurePrivateFileSync(path);
    let db: Database.Database;
    try {
      db = new Database(path);
    } catch (e) {
      throw damageOr(e);
    }
    try {
      configureWriter(db, resolved.busyTimeoutMs);
      if (resolved.checkAtStart) {
        const check = db.pragma('quick_check', { simple: true });
        if (check !== 'ok') throw new DamagedDatabaseError(`quick_check: ${String(check)}`);
      }
      ensureSchema(db);
      return new SqlStateMachine(db, path, resolved, damaged);
    } catch (e) {
      db.close();
      throw damageOr(e);
    }
  }

  appliedIndex(): LogIndex {
    return this.state.index;
  }

  appliedState(): AppliedState {
    return this.state;
  }

  /**
   * Applies committed entries in order; returns one result per entry. Throws (and applies
   * nothing of the batch) only on environmental failures: the caller must then stop applying,
   * because continuing would skip entries.
   */
  applyBatch(entries: readonly ApplyEntry[]): CommandResult[] {
    this.assertUsable();
    if (entries.length === 0) return [];
    let expected = this.state.index + 1;
    let termSeen = this.state.term as number;
    for (const e of entries) {
      assert(e.index === expected, `apply out of order: got index ${e.index}, expected ${expected}`);
      assert(e.term >= termSeen, `term went backwards at index ${e.index}: ${e.term} < ${termSeen}`);
      expected++;
      termSeen = e.term;
    }
    const results: CommandResult[] = [];
    let start = 0;
    // Bounded: every round applies at least one entry.
    while (start < entries.length) {
      const applied = this.needsOneTransactionPerCommand()
        ? this.applySerial(entries.slice(start))
        : this.applyFast(entries, start);
      assert(applied.length > 0, 'apply made no progress');
      results.push(...applied);
      start += applied.length;
    }
    this.applied.advance(this.state.index);
    return results;
  }

  /**
   * Writes a consistent copy of the database (with `_hq_meta`, so it knows its applied index)
   * to `destPath` atomically (partial file, fsync, rename, fsync dir). Uses SQLite's online
   * backup from the writer connection in steps, so applies keep running between steps and are
   * included; the snapshot's position is whatever was applied when the copy completed, and is
   * returned. One snapshot at a time.
   */
  async snapshot(destPath: string): Promise<SnapshotInfo> {
    this.assertUsable();
    if (this.snapshotting !== null) {
      throw new HiqliteError('HQL_OVERLOADED', 'a snapshot is already in progress', { retryable: true });
    }
    const run = this.writeSnapshot(destPath);
    this.snapshotting = run;
    try {
      return await run;
    } finally {
      this.snapshotting = null;
    }
  }

  /**
   * Replaces the database content with a snapshot. The snapshot is checked first (integrity,
   * page size, `_hq_meta`), then copied into the live database with SQLite's backup API as one
   * write transaction: readers keep seeing the old content until it commits, and a crash at any
   * point leaves either the old or the new database, never a mix (WAL recovery discards the
   * uncommitted frames). Nothing else may be applied while it runs.
   */
  async restore(fromPath: string): Promise<AppliedState> {
    this.assertUsable();
    if (this.snapshotting !== null) await this.snapshotting.catch(() => undefined);
    this.restoring = true;
    try {
      validateSnapshot(fromPath);
      const src = new Database(fromPath, { readonly: true, fileMustExist: true });
      try {
        await src.backup(this.path, {
          progress: (p) => {
            this.options.onRestoreProgress?.(p);
            return this.options.restorePagesPerStep;
          },
        });
      } finally {
        src.close();
      }
      // Best effort: fold the restored pages into the main file now rather than at the next autocheckpoint.
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      ensureSchema(this.db);
      this.executor.clearCaches();
      this.sessions.reload();
      this.schemaVersionSeen = -1;
      this.state = this.loadState();
      this.applied.advance(this.state.index);
      return this.state;
    } finally {
      this.restoring = false;
    }
  }

  /**
   * Forgets everything: user tables, views and triggers, sessions, migrations and the applied
   * position (back to index 0), in one transaction. For a state machine that is ahead of a lost
   * log with no snapshot to roll back to; the runtime then re-applies from index 1.
   */
  reset(): AppliedState {
    this.assertUsable();
    // Dropping a parent table before its children would fail the implicit DELETE's FK checks.
    this.db.pragma('foreign_keys = OFF');
    try {
      this.db.transaction(() => {
        const objects = this.db
          .prepare(
            `SELECT type, name FROM sqlite_schema
             WHERE type IN ('trigger', 'view', 'table') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
               AND name NOT LIKE '\\_hq\\_%' ESCAPE '\\' AND name <> '_migrations'
             ORDER BY CASE type WHEN 'trigger' THEN 0 WHEN 'view' THEN 1 ELSE 2 END, name`,
          )
          .all() as { type: string; name: string }[];
        for (const o of objects)
          this.db.exec(`DROP ${o.type.toUpperCase()} IF EXISTS "${o.name.replaceAll('"', '""')}"`);
        const internal = this.db
          .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN ('sqlite_sequence', 'sqlite_stat1', 'sqlite_stat4')",
          )
          .pluck()
          .all() as string[];
        for (const name of [...internal, '_hq_sessions', '_hq_counters', '_migrations'])
          this.db.exec(`DELETE FROM ${name}`);
        this.db.exec(
          'UPDATE _hq_meta SET applied_index = 0, applied_term = 0, membership = NULL, clock_ms = 0 WHERE id = 0',
        );
      })();
    } finally {
      this.db.pragma('foreign_keys = ON');
    }
    this.executor.clearCaches();
    this.sessions.reload();
    this.schemaVersionSeen = -1;
    this.state = this.loadState();
    return this.state;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.applied.close(new HiqliteError('HQL_CLOSED', 'state machine closed', { retryable: false }));
    this.closeHelper();
    this.db.close();
  }

  // ---- apply internals ----------------------------------------------------------------------

  private assertUsable(): void {
    if (this.closed) throw new HiqliteError('HQL_CLOSED', 'state machine closed', { retryable: false });
    assert(!this.restoring, 'state machine used while a restore is in progress');
  }

  /** Many commands per transaction, falling back to applySerial when a command needs it. */
  private applyFast(entries: readonly ApplyEntry[], start: number): CommandResult[] {
    const results: CommandResult[] = [];
    this.stmts.begin.run();
    try {
      for (let i = start; i < entries.length; i++) {
        results.push(this.applyEntry(entries[i]!));
        // A command created deferred constraints: commit what we have, go serial for the rest.
        if (this.needsOneTransactionPerCommand()) break;
      }
      const applied = entries.slice(start, start + results.length);
      this.writeMeta(applied);
      this.commit();
      this.rememberApplied(applied);
      return results;
    } catch (e) {
      this.rollback();
      if (e instanceof TransactionLostError || isDeterministicSqliteError(e)) {
        this.schemaVersionSeen = -1;
        return this.applySerial(entries.slice(start));
      }
      throw asFatal(e);
    }
  }

  /** One transaction per command: the reference semantics that applyFast must match. */
  private applySerial(entries: readonly ApplyEntry[]): CommandResult[] {
    const results: CommandResult[] = [];
    for (const e of entries) {
      let result: CommandResult;
      try {
        this.stmts.begin.run();
        try {
          result = this.applyEntry(e);
        } catch (lost) {
          if (!(lost instanceof TransactionLostError)) throw lost;
          // The command's statement already rolled back everything of this transaction.
          this.rollback();
          this.stmts.begin.run();
          result = failure(lost.info);
          this.recordFailure(e, lost.info);
        }
        this.writeMeta([e]);
        try {
          this.commit();
        } catch (commitError) {
          // Deferred constraints are checked here; the command fails with that error.
          const info = classifyCommandError(commitError, 'apply');
          this.rollback();
          this.stmts.begin.run();
          result = failure(info);
          this.recordFailure(e, info);
          this.writeMeta([e]);
          this.commit();
        }
      } catch (fatal) {
        this.rollback();
        throw asFatal(fatal);
      }
      this.rememberApplied([e]);
      results.push(result);
    }
    return results;
  }

  private applyEntry(e: ApplyEntry): CommandResult {
    if (e.data === null) return NOOP;
    const envelope = tryDecodeCommand(e.data);
    if ('code' in envelope) return failure(envelope);
    const nowMs = this.advanceClock(envelope.nowMs);
    if (envelope.session === undefined) return this.executeInSavepoint(envelope, e.index, nowMs);
    const found = this.sessions.lookup(envelope.session, nowMs);
    if (found.kind === 'duplicate') return found.result;
    if (found.kind === 'stale' || found.kind === 'refused') return failure(found.error);
    const result = this.executeInSavepoint(envelope, e.index, nowMs);
    this.sessions.record(envelope.session, found, result);
    return result;
  }

  /** Records a failure for a command whose own execution was rolled back with its transaction. */
  private recordFailure(e: ApplyEntry, info: SqlErrorInfo): void {
    if (e.data === null) return;
    const envelope = tryDecodeCommand(e.data);
    if ('code' in envelope || envelope.session === undefined) return;
    // The transaction was rolled back (rollback() brought the sessions back with it): the
    // command is new again, as when it was first looked up.
    const found = this.sessions.lookup(envelope.session, this.advanceClock(envelope.nowMs));
    assert(found.kind === 'new', 'a rolled-back command is no longer new to its session');
    this.sessions.record(envelope.session, found, failure(info));
  }

  /** The time a command runs at: its own, or the clock if that is later (see `clockMs`). */
  private advanceClock(entryNowMs: number): number {
    if (entryNowMs > this.clockMs) this.clockMs = entryNowMs;
    return this.clockMs;
  }

  private executeInSavepoint(envelope: CommandEnvelope, index: number, nowMs: number): CommandResult {
    // last_insert_rowid() = 0 and changes() = 0 at the start of every command, on every replica.
    this.stmts.resetInsert.run();
    this.stmts.resetChanges.run();
    this.stmts.savepoint.run();
    this.limitLength(envelope.valueBytesMax);
    this.env.begin(nowMs, envelope.seed);
    let result: CommandResult;
    try {
      // The rows it may return: its values' bound (what every replica applies it under).
      const rowsBytesMax = envelope.valueBytesMax ?? this.unstampedLimit ?? Number.POSITIVE_INFINITY;
      result = this.executor.run(envelope.command, { index, nowMs, rowsBytesMax });
    } finally {
      this.env.end();
    }
    if (!result.ok) this.stmts.rollbackTo.run();
    this.stmts.release.run();
    return result;
  }

  /**
   * Sets the writer's SQLITE_LIMIT_LENGTH to a command's `valueBytesMax` (when it differs from
   * the last one's). It stays set for the control rows written after the command (sessions,
   * `_hq_meta`): those are smaller than the smallest limit (VALUE_BYTES_MAX_MIN).
   */
  private limitLength(stamp: number | undefined): void {
    // No stamp: the limit the connection opened with (an unchanged connection needs no call).
    const bytes = stamp ?? this.unstampedLimit;
    if (bytes === this.lengthLimit) return;
    if (this.watch === null || bytes === null) {
      // Only a state machine opened with `interruptible: false` (tests): fatal, never a result.
      throw new Error(
        `a command limits its values to ${bytes} bytes (sql_value_bytes_max), which needs hiqlite's SQLite extension on this state machine`,
      );
    }
    this.watch.limitLength(bytes);
    this.lengthLimit = bytes;
  }

  private commit(): void {
    this.stmts.commit.run();
    this.committedClockMs = this.clockMs;
    this.sessions.committed();
  }

  /** Rolls back the open transaction (if any) and what the session table keeps in memory. */
  private rollback(): void {
    if (this.db.inTransaction) this.stmts.rollback.run();
    this.clockMs = this.committedClockMs;
    this.sessions.rolledBack();
  }

  private writeMeta(applied: readonly ApplyEntry[]): void {
    const last = applied[applied.length - 1];
    assert(last !== undefined, 'writeMeta without entries');
    let membership: Uint8Array | null = null;
    for (const e of applied) if (e.membership !== undefined) membership = e.membership;
    this.stmts.writeMeta.run(BigInt(last.index), BigInt(last.term), membership, this.clockMs);
  }

  private rememberApplied(applied: readonly ApplyEntry[]): void {
    const last = applied[applied.length - 1]!;
    let membership = this.state.membership;
    for (const e of applied) if (e.membership !== undefined) membership = e.membership;
    this.state = { index: last.index, term: last.term, membership, clockMs: this.committedClockMs };
  }

  private needsOneTransactionPerCommand(): boolean {
    const version = this.stmts.schemaVersion.get() as number;
    if (version !== this.schemaVersionSeen) {
      this.schemaVersionSeen = version;
      this.deferredConstraints = this.stmts.hasDeferred.get() !== undefined;
    }
    return this.deferredConstraints;
  }

  private loadState(): AppliedState {
    const meta = readMeta(this.db);
    assert(meta !== undefined, '_hq_meta row missing');
    this.clockMs = this.committedClockMs = meta.clock_ms;
    return {
      index: meta.applied_index as LogIndex,
      term: meta.applied_term as Term,
      membership: meta.membership === null ? null : new Uint8Array(meta.membership),
      clockMs: meta.clock_ms,
    };
  }

  private async writeSnapshot(destPath: string): Promise<SnapshotInfo> {
    const partial = `${destPath}.partial`;
    // A snapshot interrupted by a crash leaves this behind; it is never renamed, so never used.
    rmSync(partial, { force: true });
    ensurePrivateFileSync(partial);
    await this.db.backup(partial, { progress: () => this.options.snapshotPagesPerStep });
    // A self-contained single file (rollback journal mode, no -wal/-shm) to ship and restore.
    const snap = new Database(partial);
    let meta: ReturnType<typeof readMeta>;
    try {
      snap.pragma('journal_mode = DELETE');
      meta = readMeta(snap);
    } finally {
      snap.close();
    }
    assert(meta !== undefined, 'snapshot without _hq_meta');
    fsyncFile(partial);
    renameSync(partial, destPath);
    fsyncFile(dirname(destPath));
    return {
      index: meta.applied_index as LogIndex,
      term: meta.applied_term as Term,
      membership: meta.membership === null ? null : new Uint8Array(meta.membership),
      clockMs: meta.clock_ms,
      path: destPath,
      bytes: statSync(destPath).size,
    };
  }
}

function prepareControl(db: Database.Database) {
  return {
    begin: db.prepare('BEGIN IMMEDIATE'),
    commit: db.prepare('COMMIT'),
    rollback: db.prepare('ROLLBACK'),
    savepoint: db.prepare('SAVEPOINT hq_cmd'),
    rollbackTo: db.prepare('ROLLBACK TO hq_cmd'),
    release: db.prepare('RELEASE hq_cmd'),
    resetInsert: db.prepare('INSERT OR REPLACE INTO _hq_counters (id) VALUES (0)'),
    resetChanges: db.prepare('DELETE FROM _hq_counters WHERE 0'),
    writeMeta: db.prepare(
      'UPDATE _hq_meta SET applied_index = ?, applied_term = ?, membership = coalesce(?, membership), clock_ms = ? WHERE id = 0',
    ),
    schemaVersion: db.prepare('PRAGMA schema_version').pluck(),
    hasDeferred: db.prepare(
      "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND sql LIKE '%DEFERRED%' LIMIT 1",
    ),
  };
}

function isDeterministicSqliteError(e: unknown): boolean {
  if (!(e instanceof Database.SqliteError)) return false;
  try {
    classifyCommandError(e, 'apply');
    return true;
  } catch {
    return false;
  }
}

/** The database file is damaged (found when it was opened). */
class DamagedDatabaseError extends Error {}

/** `e` as DamagedDatabaseError when SQLite says the file is damaged or not a database. */
function damageOr(e: unknown): unknown {
  if (e instanceof Database.SqliteError && isDamageCode(e.code))
    return new DamagedDatabaseError(`${e.code}: ${e.message}`);
  return e;
}

function isDamageCode(code: string): boolean {
  return code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB';
}

/**
 * Renames the damaged database to `<file>.damaged-<time>` (its `-wal` beside it, its `-shm`
 * removed: SQLite rebuilds it) and makes the renames durable.
 */
function moveAside(path: string): string {
  const movedTo = damagedName(path, new Date());
  renameSync(path, movedTo);
  try {
    renameSync(`${path}-wal`, `${movedTo}-wal`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  rmSync(`${path}-shm`, { force: true });
  fsyncFile(dirname(path));
  return movedTo;
}

function asFatal(e: unknown): unknown {
  return e instanceof Database.SqliteError ? fatalSqliteError(e, 'apply') : e;
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Rejects a file that is not a usable snapshot before anything of the live database changes. */
function validateSnapshot(path: string): void {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw new HiqliteError('HQL_CORRUPTION', `snapshot ${path} cannot be opened: ${(e as Error).message}`, {
      retryable: false,
      cause: e,
    });
  }
  try {
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new Error(`quick_check: ${String(check)}`);
    const pageSize = db.pragma('page_size', { simple: true });
    if (pageSize !== PAGE_SIZE_BYTES)
      throw new Error(`page size ${String(pageSize)}, expected ${PAGE_SIZE_BYTES}`);
    if (readMeta(db) === undefined) throw new Error('no _hq_meta row');
  } catch (e) {
    throw new HiqliteError(
      'HQL_CORRUPTION',
      `snapshot ${path} is not a valid state machine snapshot: ${(e as Error).message}`,
      {
        retryable: false,
        cause: e,
      },
    );
  } finally {
    db.close();
  }
}
