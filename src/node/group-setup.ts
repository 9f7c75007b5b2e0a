/**
 * What the node's two Raft groups (`sql`, hiqlite-node.ts; `cache`, cache-group.ts) share at
 * start, written once so a fix to one reaches both: the options of `RaftGroup.open`
 * (`groupRaftOptions`) and the opening of a group's log and snapshots on disk with the start
 * decision (`openGroupStorage`, start-decision.ts). The join marker is joining-marker.ts.
 */
import { randomInt } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { damagedName } from '../lib/damaged-name.js';
import { HiqliteError } from '../lib/errors.js';
import { PRIVATE_DIR_MODE } from '../lib/file-modes.js';
import { Prng, type Random } from '../lib/prng.js';
import { commandBytesMaxFor } from '../protocol/entry-codec.js';
import type { LogIndex, Membership } from '../raft/types.js';
import { fsyncDir } from '../storage/atomic-file.js';
import { type FileLogStore, openFileLogStore } from '../storage/file-log-store.js';
import type { LogStore } from '../storage/log-store.js';
import { LogCorruptionError } from '../storage/storage-errors.js';
import type { ResolvedNodeConfig } from './config/config.js';
import { lostLocalState, type RaftGroupOptions, type RuntimePlantedBugs } from './raft-group.js';
import type { GroupId, GroupSnapshotStore, GroupStateMachine, GroupTransport } from './seams.js';
import { SnapshotStore } from './snapshot-store.js';
import { decideStart, type StartDecision } from './start-decision.js';

/**
 * A snapshot copies the whole state machine: one is taken for `logs_until_snapshot` entries only
 * once their bytes are at least an eighth of its size, so a large database is not copied for a
 * small amount of log (at most 8 bytes copied per byte of log). `log_bytes_until_snapshot`
 * still bounds the log whatever the size.
 */
export const SNAPSHOT_COST_RATIO_MAX = 8;

/** What differs between the groups: their storage, state machine and join. */
export interface GroupParts {
  readonly initialMembership: Membership;
  readonly logStore: LogStore;
  readonly snapshots: GroupSnapshotStore;
  readonly stateMachine: GroupStateMachine;
  readonly transport: GroupTransport;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly onFatal: (e: Error) => void;
  /** `RaftConfig.abstain`: true while this node joins the group (joining-marker.ts). */
  readonly abstain: () => boolean;
  /** The core's randomness (election timeouts): seeded from the OS by default. */
  readonly random?: Random;
  /** `RaftGroupOptions.defer`: `setImmediate` by default. */
  readonly defer?: (fn: () => void) => void;
  /** Test only (RuntimePlantedBugs). */
  readonly plantedBugs?: RuntimePlantedBugs;
}

/** The options of `RaftGroup.open` for `group` of a node with configuration `cfg`. */
export function groupRaftOptions(
  cfg: ResolvedNodeConfig,
  group: GroupId,
  parts: GroupParts,
): RaftGroupOptions {
  return {
    group,
    raft: {
      id: cfg.nodeId,
      electionTimeoutTicks: cfg.electionTimeoutTicks,
      heartbeatIntervalTicks: cfg.heartbeatIntervalTicks,
      preVote: true,
      checkQuorum: true,
      inflightMessagesMax: cfg.inflightMessagesMax,
      inflightBytesMax: cfg.inflightBytesMax,
      appendBytesMax: cfg.appendBytesMax,
      uncommittedEntriesMax: cfg.uncommittedEntriesMax,
      uncommittedBytesMax: cfg.uncommittedBytesMax,
      commandBytesMax: commandBytesMaxFor(cfg.entryBytesMax),
      pendingReadsMax: cfg.pendingReadsMax,
      random: parts.random ?? new Prng(randomInt(0, 2 ** 32)),
      abstain: parts.abstain,
    },
    initialMembership: parts.initialMembership,
    tickIntervalMs: cfg.tickIntervalMs,
    logStore: parts.logStore,
    snapshots: parts.snapshots,
    stateMachine: parts.stateMachine,
    transport: parts.transport,
    clock: parts.clock,
    snapshotEntriesThreshold: cfg.logsUntilSnapshot,
    snapshotCostRatioMax: SNAPSHOT_COST_RATIO_MAX,
    snapshotBytesThreshold: cfg.logBytesUntilSnapshot,
    snapshotTrailingEntries: Math.min(1000, cfg.logsUntilSnapshot),
    applyQueueEntriesMax: cfg.applyQueueEntriesMax,
    logger: parts.logger,
    onFatal: parts.onFatal,
    ...(parts.defer === undefined ? {} : { defer: parts.defer }),
    ...(parts.plantedBugs === undefined ? {} : { plantedBugs: parts.plantedBugs }),
  };
}

export interface GroupStorage {
  readonly store: FileLogStore;
  readonly snapshots: SnapshotStore;
  /** What the node does with this group's state (start-decision.ts), after any discard. */
  readonly start: StartDecision;
}

/**
 * Opens a group's log and snapshots on disk and decides what the node does with them
 * (`decideStart`, the simulator runs the same decision). State that cannot be trusted is
 * discarded here (`resetStateMachine` empties a state machine kept apart from the log, the
 * SQL database): the node then knows no membership and joins the group again.
 */
export async function openGroupStorage(o: {
  readonly group: GroupId;
  readonly logsDir: string;
  readonly snapshotsDir: string;
  readonly entryBytesMax: number;
  readonly log: Logger;
  /** The applied index of a state machine kept apart from the log (0: rebuilt from it). */
  readonly appliedIndex: LogIndex;
  readonly hasClusterId: boolean;
  /**
   * Other nodes are configured: a log damaged in the middle is moved aside and the node re-syncs
   * from the leader. Alone, nothing could re-sync it: the start fails, naming the damage.
   */
  readonly othersConfigured: boolean;
  readonly resetStateMachine?: () => Promise<void>;
}): Promise<GroupStorage> {
  const { group, log } = o;
  await mkdir(o.logsDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const logOptions = { entryBytesMax: o.entryBytesMax };
  let opened = await openLogOrMoveAside(o, logOptions);
  if (opened.report.tornTail !== null)
    log.warn({ tornTail: opened.report.tornTail, group }, 'cut a torn tail off the Raft log');
  let snapshots = await SnapshotStore.open(o.snapshotsDir);
  await dropDamagedSnapshots(snapshots, o.appliedIndex, log, group);
  const uncovered = lostLocalState(opened.store, snapshots, o.appliedIndex);
  const syncedLost = syncedRecordsLost(opened.store, opened.report.syncedMark);
  const decide = (logUncovered: string | null) =>
    decideStart({
      hardState: opened.hardState,
      lastIndex: opened.store.lastIndex(),
      hasSnapshot: snapshots.latest() !== null,
      appliedIndex: o.appliedIndex,
      hasClusterId: o.hasClusterId,
      logUncovered,
    });
  const start = decide(uncovered ?? syncedLost);
  if (start.discard !== null && start.discard === syncedLost && !o.othersConfigured) {
    // Alone: nothing could re-sync the lost entries, and deleting the rest would lose more. A
    // node alone acknowledges a write once applied, and its database keeps what it applied (the
    // SQL group, whose applied index the log still covers here): no acknowledged SQL write is
    // lost. The cache group's state is rebuilt from this log: its writes in the lost entries are.
    log.warn(
      { reason: syncedLost, group, logsDir: o.logsDir },
      'synced entries of the Raft log were lost: this node is the only one configured, so it goes on with what its log holds',
    );
    return { store: opened.store, snapshots, start: decide(null) };
  }
  if (start.discard !== null && !o.othersConfigured) {
    // Alone, there is no cluster to rejoin and no leader to re-sync from: discarding would
    // delete the only copy of the data. A log that lost its tail below what the state machine
    // applied loses nothing that was acknowledged (a node alone acknowledges a write once it is
    // applied, and the database keeps what it applied): the group starts from a snapshot of the
    // state machine (RaftGroup.recover). Anything else stops the start, naming the damage.
    const tailLost = opened.hardState !== null && o.appliedIndex > opened.store.lastIndex();
    if (!tailLost) {
      await opened.store.close();
      throw new HiqliteError(
        'HQL_CORRUPTION',
        `${start.discard} (in ${o.logsDir}): this node is the only one configured, so no leader can re-sync it and nothing was deleted; restore data_dir from a backup (hiqlite backup restore); never edit the log by hand`,
        { retryable: false },
      );
    }
    log.warn(
      { reason: start.discard, group, appliedIndex: o.appliedIndex, lastIndex: opened.store.lastIndex() },
      'the Raft log lost its tail below what the database applied: this node is the only one configured, so it starts from a snapshot of its database (no acknowledged write is lost)',
    );
    return { store: opened.store, snapshots, start: { discard: null, fresh: false, mayBootstrap: false } };
  }
  if (start.discard !== null) {
    log.warn({ reason: start.discard, group }, 'discarding the local state of the group and rejoining it');
    await opened.store.close();
    await rm(o.logsDir, { recursive: true, force: true });
    await rm(o.snapshotsDir, { recursive: true, force: true });
    await mkdir(o.logsDir, { recursive: true, mode: PRIVATE_DIR_MODE });
    opened = await openFileLogStore(o.logsDir, logOptions);
    snapshots = await SnapshotStore.open(o.snapshotsDir);
    await o.resetStateMachine?.();
  }
  return { store: opened.store, snapshots, start };
}

/**
 * Why the log lost records it had made durable (its synced mark, synced-mark-file.ts, is above
 * its end: a segment cut short or zeroed, which looks like a crash's torn tail), or null. Such a
 * node may have acknowledged those entries: kept as a voter it could elect a leader without them.
 */
export function syncedRecordsLost(
  logStore: Pick<LogStore, 'firstIndex' | 'lastIndex'>,
  syncedMark: LogIndex | number,
): string | null {
  const end = Math.max(logStore.lastIndex(), logStore.firstIndex() - 1);
  if (syncedMark <= end) return null;
  return `the Raft log ends at index ${end}, but entries through ${syncedMark} were durable in it: synced records were lost (a segment cut short or zeroed), with entries this node may have acknowledged`;
}

/**
 * Checks the snapshots recovery would restore (RaftGroup.recover restores the newest one when
 * the state machine is behind it: always for the cache group, whose state machine starts empty)
 * and drops each whose data does not match its checksum, newest first, before the start
 * decision. A damaged snapshot is so a lost one, on the path a lost one takes: the snapshot
 * before it is restored (and the log after it applied), or the state machine makes it again
 * (RaftGroup.rebuildSnapshot), or, when neither covers the compacted log, the node discards its
 * state and rejoins (lostLocalState, decideStart). A snapshot the state machine is not behind is
 * not read at start (it may be as large as the database); it is checked before it is sent.
 */
export async function dropDamagedSnapshots(
  snapshots: GroupSnapshotStore,
  appliedIndex: LogIndex,
  log: Pick<Logger, 'warn'>,
  group: GroupId,
): Promise<void> {
  // Bounded: each turn drops a snapshot, and the store keeps two.
  for (let s = snapshots.latest(); s !== null && appliedIndex < s.meta.index; s = snapshots.latest()) {
    const checked = await snapshots.check(s);
    if (checked.ok) return;
    log.warn(
      { group, file: s.path, index: s.meta.index, reason: checked.reason },
      'snapshot damaged: dropped at start as if lost',
    );
    await snapshots.drop(s);
  }
}

/**
 * Opens the group's log. A log damaged in the middle (a record that fails its checksum with
 * valid ones after it, a damaged hard-state file: LogCorruptionError; a torn tail is cut off at
 * open and is no damage) holds entries this node acknowledged and can no longer read: it must
 * not vote or serve from it. With other nodes configured the directory is moved aside (kept for
 * the operator, logged) and an empty log opened in its place: the start decision then finds the
 * hard state gone and the node discards its state and rejoins as a new learner, re-synced by the
 * leader (DESIGN.md, "Storage and self-healing"). It used to stop the node at every start. A
 * node configured alone has no one to re-sync it: the start fails with the damage and the way out.
 */
async function openLogOrMoveAside(
  o: {
    readonly group: GroupId;
    readonly logsDir: string;
    readonly log: Logger;
    readonly othersConfigured: boolean;
  },
  logOptions: { entryBytesMax: number },
): Promise<Awaited<ReturnType<typeof openFileLogStore>>> {
  try {
    return await openFileLogStore(o.logsDir, logOptions);
  } catch (e) {
    if (!(e instanceof LogCorruptionError)) throw e;
    if (!o.othersConfigured) {
      throw new HiqliteError(
        'HQL_CORRUPTION',
        `${e.message} (in ${o.logsDir}): this node is the only one configured, so no leader can re-sync it; restore data_dir from a backup (hiqlite backup restore); never edit the log by hand`,
        { retryable: false, cause: e },
      );
    }
    const aside = damagedName(o.logsDir, new Date());
    await rename(o.logsDir, aside);
    o.log.error(
      { group: o.group, file: e.file, offset: e.offset, reason: e.reason, movedTo: aside },
      `the Raft log is damaged (${e.message}): moved aside to ${aside}; the node discards its state and rejoins, re-synced by the leader`,
    );
    await mkdir(o.logsDir, { recursive: true, mode: PRIVATE_DIR_MODE });
    await fsyncDir(dirname(o.logsDir)); // the rename and the new directory survive a power loss
    return await openFileLogStore(o.logsDir, logOptions);
  }
}
