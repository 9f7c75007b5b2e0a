/**
 * The cache Raft group of a node (issue 12): the same `RaftGroup` runtime and transport as the
 * SQL group, with `CacheStateMachine` (src/sm/cache) as its state machine. Its log lives under
 * `<dataDir>/logs_cache` and its snapshots under `<dataDir>/state_machine/cache_snapshots`, or,
 * with `cache_storage_disk = false`, in memory (a memory log store and `MemorySnapshotStore`):
 * then nothing touches the disk, and a restarted node has no Raft state for this group and
 * rejoins it as a new learner.
 *
 * This is the node-side surface the client API (embedded, worker thread, remote, HTTP) calls:
 * `write` (replicated, exactly once), `proposeBytes` (prepared bytes, forwarded to the leader if
 * need be), local reads (`get`, `entries`, `counterGet`), `readBarrier` (linearizable),
 * `subscribe` (listen, bounded) and `lock` (acquire and wait for the grant).
 *
 * Time: every command carries the log clock (src/lib/log-clock.ts) of the node that proposes it
 * to the Raft core: the cluster's clock (the median of the nodes' clocks, peer-clocks.ts), or
 * the log's time run on by its monotonic clock when that is later. A command forwarded by a
 * follower is stamped again by the leader (`proposeHere`), so log time follows the leaders (made
 * monotonic by the state machine). The leader proposes
 * `expire` once log time passes the earliest expiry or lease end (checked every
 * `cache_expire_interval_ms`), and again at once while the state machine says more are due.
 * Reads judge expiry by the same log clock.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { assert } from '../lib/assert.js';
import { sessionProtectMs } from '../lib/client-session.js';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { abortedError, HiqliteError, outcomeUnknown } from '../lib/errors.js';
import { type ClockTieBreak, LogClock } from '../lib/log-clock.js';
import type { Random } from '../lib/prng.js';
import { commandBytesMaxFor } from '../protocol/entry-codec.js';
import type { Entry, LogIndex, Membership, Message, NodeId, SnapshotMeta, Term } from '../raft/types.js';
import {
  CACHE_BATCH_HEADER_BYTES,
  CACHE_BATCH_ITEM_OVERHEAD_BYTES,
  type CacheCommand,
  decodeCacheCommand,
  isBatchable,
} from '../sm/cache/command.js';
import { cacheErrorFromInfo } from '../sm/cache/errors.js';
import { type Entry as CacheEntry, checkBytes } from '../sm/cache/kv.js';
import type { LockGrant, LockTablePlantedBugs } from '../sm/cache/locks.js';
import type { CacheEntryResult, CacheOutcome, CacheResult } from '../sm/cache/result.js';
import { CacheStateMachine, type CacheStats } from '../sm/cache/state-machine.js';
import type { LogStore } from '../storage/log-store.js';
import { MemoryLogStore } from '../storage/memory-log-store.js';
import { NotificationHub, type Subscription } from './cache-listeners.js';
import { type LockGrantInfo, LockWaiters } from './cache-locks.js';
import type { ResolvedNodeConfig } from './config/config.js';
import { cacheLimitsOf, LOCK_WAIT_LEASE_MS_BOUNDS } from './config/config-keys.js';
import { groupRaftOptions, openGroupStorage } from './group-setup.js';
import type { InFlight } from './in-flight.js';
import { GroupJoin, type GroupStartKind } from './joining-marker.js';
import { type ChunkSnapshotStore, chunkStoreOf, MemorySnapshotStore } from './memory-snapshot-store.js';
import { type Forwarded, type ProposeRetry, proposeWithRetries } from './propose-retry.js';
import { commandTooLargeError, deadlineError, RaftGroup, type RuntimePlantedBugs } from './raft-group.js';
import type { GroupSnapshotStore, GroupStateMachine, GroupTransport } from './seams.js';
import { SessionPool } from './session-pool.js';
import { receiveSnapshot } from './snapshot-store.js';
import { dataPaths } from './sqlite-setting.js';
import { decideStart, type StartDecision } from './start-decision.js';

export type { Subscription } from './cache-listeners.js';

export interface CacheWriteOptions {
  /** Default and upper bound: `proposal_timeout_ms`. */
  readonly timeoutMs?: number;
  /** Checked before the command is proposed (once proposed it cannot be taken back). */
  readonly signal?: AbortSignal;
}

/** A read served by the node a client talks to (local, or after a ReadIndex round). */
export type CacheRead =
  | { readonly type: 'get'; readonly cache: string; readonly key: string }
  | { readonly type: 'entries'; readonly cache: string }
  | { readonly type: 'counterGet'; readonly counter: string; readonly key: string };

/** `get`: the value or null; `entries`: [key, value] pairs; `counterGet`: the count or null. */
export type CacheReadValue = Uint8Array | null | Array<[string, Uint8Array]> | bigint;

export type CacheConsistency = 'local' | 'linearizable';

/** One write's bytes and what its attempts need (CacheGroup.writeLoop). */
interface CacheWrite {
  readonly data: Uint8Array;
  /** Its bytes carry this leader's stamp of now: the first attempt proposes them as they are. */
  readonly stampedNow: boolean;
  /** monotonicMs() of its deadline. */
  readonly deadline: number;
}

export interface CacheGroupDeps {
  readonly cfg: ResolvedNodeConfig;
  readonly clock: Clock;
  /** The cluster's wall clock (peer-clocks.ts) log time follows; this node's clock by default. */
  readonly clusterWallMs?: (tieBreak?: ClockTieBreak) => number;
  /** When the cluster's clock can be told (PeerClocks: ready, waitReady); at once by default. */
  readonly clusterClock?: {
    ready(): Promise<void> | null;
    waitReady(timeoutMs: number): Promise<number>;
    /** This node starts to lead: ask the peers again if their clocks are not known now. */
    refresh?(): void;
    /** When a group without log time may take its first stamp (PeerClocks.foundingReady). */
    foundingReady?(): Promise<void> | null;
    waitFounding?(timeoutMs: number): Promise<number>;
  };
  readonly log: Logger;
  /**
   * Sends prepared bytes to the leader's `proposeHere` (the API port's `propose`, group cache):
   * its answer or refusal; rejects only when they were sent and no answer came (ProposeRetry).
   */
  readonly forward: (
    leader: NodeId,
    data: Uint8Array,
    timeoutMs: number,
  ) => Promise<Forwarded<{ index: number; result: CacheResult }>>;
  /** The error for "no leader known", telling a partition from a quorum loss. */
  readonly noLeaderError: (membership: Membership) => HiqliteError;
  readonly onFatal: (e: Error) => void;
  /**
   * The randomness of the group (its Raft core's election timeouts, its session id): seeded from
   * the OS by default; the simulator passes its seeded one.
   */
  readonly random?: Random;
  /** `RaftGroupOptions.defer` (the group's flush): `setImmediate` by default; the simulator's agenda. */
  readonly defer?: (fn: () => void) => void;
  /** Test only (see CachePlantedBugs). */
  readonly plantedBugs?: CachePlantedBugs;
  /**
   * Test only: told of every lock grant to a queued waiter this node's state machine applies,
   * after its lock waiters were (the cache simulator's wait-lease audit).
   */
  readonly onLockGranted?: (g: LockGrant) => void;
  /** The node's writes in flight, which its graceful shutdown waits for (in-flight.ts). */
  readonly inflight?: InFlight;
  /**
   * Told when the group's token floor (CacheGroup.tokenFloor) becomes known or changes: after
   * the first command this node applies, a snapshot installed, a refound. The node tells its
   * remote clients (ApiEvent `cacheTokenFloor`): a lock they hold below it is gone.
   */
  readonly onTokenFloor?: (floor: number) => void;
}

/**
 * Test only: make the cache group wrong on purpose, so that the cache simulator's planted-bug
 * hunt (test/sim/cache) proves its checkers see it. Never set outside tests.
 */
export interface CachePlantedBugs extends RuntimePlantedBugs, LockTablePlantedBugs {
  /**
   * Hand a lock grant to its caller as the lock waiters did before 8be77a7: with its whole lease,
   * even when it ended (in this node's log time) before the node could hand it out.
   */
  readonly handStaleGrants?: boolean;
}

/**
 * Where a group's state lives when the caller provides it (the simulator's disk): its log store,
 * its snapshots (written and read chunk by chunk, as in memory) and the start decision taken on
 * them. The join marker is kept in memory (`GroupJoin` without a directory).
 */
export interface CacheGroupStorage {
  readonly logStore: LogStore;
  readonly snapshots: ChunkSnapshotStore;
  readonly start: StartDecision;
}

/**
 * Log time this far ahead of the node's clock is logged (at most once a minute): a leader's clock
 * ran ahead, so the TTLs and lock leases running then ended early by that much in real time. Log
 * time runs on from there at real-time rate and drifts back to the clocks by LOG_CLOCK_SLEW.
 */
const LOG_CLOCK_AHEAD_WARN_MS = 1000;
const LOG_CLOCK_WARN_EVERY_MS = 60_000;

export interface CacheGroupMetrics {
  readonly stats: CacheStats;
  /** How far the group's log time is ahead of the cluster's clock, in ms (0 when it is not). */
  readonly logClockAheadMs: number;
  readonly listeners: number;
  /** Notifications local listeners have not read (queued, or held by an embedded reader). */
  readonly listenerLag: number;
  readonly lockWaits: number;
}

export class CacheGroup {
  readonly sm: CacheStateMachine;
  private raft!: RaftGroup;
  private readonly hub: NotificationHub;
  private readonly waiters: LockWaiters;
  private readonly sessions: SessionPool;
  private expireTimer: TimerHandle | null = null;
  private expiring = false;
  private closed = false;
  /** Set by refuseWrites(): the node is shutting down, new writes and locks get HQL_CLOSED. */
  private refusing = false;
  /** Why the node stopped serving (stop()), or null while it serves. */
  private stopped: HiqliteError | null = null;
  /** The end of the log found at start: entries up to it are replayed (new listeners start after them). */
  private replayedTo = 0;
  private readonly observers = new Set<CacheApplyObserver>();
  private joinState: GroupJoin | null = null;
  private clockWarnedAtMs = Number.NEGATIVE_INFINITY;
  /** The time this node stamps and reads by (src/lib/log-clock.ts). */
  readonly logClock: LogClock;
  /** The wall clock log time follows (the cluster's, peer-clocks.ts). */
  private readonly wallMs: (tieBreak?: ClockTieBreak) => number;

  /** The group's write loop (makeWriteLoop). */
  private readonly writeLoop: ProposeRetry<{ index: number; result: CacheResult }, CacheWrite>;

  /** The state machine as the Raft group sees it (observed, chunked): made once, by start(). */
  private groupSm: GroupStateMachine | null = null;
  /** Set while refound() replaces the Raft group: its close leaves the state machine open. */
  private refounding = false;
  /** How many times refound() ran (the locks held through this node were lost each time). */
  private refounds = 0;
  private readonly refoundHooks = new Set<() => void>();
  /** The token floor last told to `onTokenFloor` (checkTokenFloor). */
  private tokenFloorTold = 0;
  private readonly leaderWatchers = new Set<(s: { role: string; leaderId: number | null }) => void>();

  private constructor(
    private readonly d: CacheGroupDeps,
    private logStore: LogStore,
    private snapshotStore: GroupSnapshotStore,
    private startDecision: StartDecision,
  ) {
    const { cfg } = d;
    this.writeLoop = this.makeWriteLoop();
    this.sm = new CacheStateMachine({
      limits: cacheLimitsOf(cfg),
      hooks: {
        // Replayed ones too: a subscription knows its start (cache-listeners.ts).
        onNotification: (n) => this.hub.publish(n),
        onLockGranted: (g) => {
          this.waiters.granted(g);
          d.onLockGranted?.(g);
        },
      },
      ...(d.plantedBugs === undefined ? {} : { plantedBugs: d.plantedBugs }),
    });
    this.replayedTo = logStore.lastIndex();
    this.hub = new NotificationHub(
      {
        lastSeq: () => this.sm.lastNotificationSeq(),
        heldAfter: (afterSeq) => this.sm.notificationsAfter(afterSeq),
        replayingTo: () => (this.replaying ? this.replayedTo : 0),
      },
      cfg.cacheListenersMax,
    );
    // A snapshot installed (or a reset) replaces the state, notifications included: listeners
    // take what the new ring holds after their last seq, or learn how many are gone.
    this.observers.add({ applied: () => {}, replaced: () => this.hub.replaced() });
    this.waiters = new LockWaiters({
      clock: d.clock,
      write: (c, timeoutMs) => this.write(c, timeoutMs === undefined ? {} : { timeoutMs }),
      view: (key) => this.sm.lock(key),
      nowMs: () => this.logClock.nowMs(),
      applied: () => this.sm.appliedIndex(),
      waitLeaseMs: cfg.cacheLockWaitLeaseMs,
      ...(d.plantedBugs === undefined ? {} : { plantedBugs: d.plantedBugs }),
    });
    const sessionId = d.random === undefined ? randomBytes(8).toString('hex') : sessionIdOf(d.random);
    this.sessions = new SessionPool(`c${cfg.nodeId}-${sessionId}`, cfg.writesInflightMax);
    const wallMs = d.clusterWallMs ?? (() => d.clock.wallMs());
    this.wallMs = wallMs;
    this.logClock = new LogClock({ monotonicMs: () => d.clock.monotonicMs(), wallMs }, () =>
      this.sm.clockMs(),
    );
  }

  /**
   * Opens the group's storage and decides, as for the SQL group (group-setup.ts,
   * start-decision.ts), what the node does with it: state that cannot be trusted (the term and
   * vote are lost but entries remain, or the log was compacted behind a snapshot that is gone)
   * is discarded; a node left with it, or with a hard state alone, knows no membership and
   * joins the group again. In memory every start is such a join. `hasClusterId`: the node knows
   * its cluster (a cache-only node's only group may be founded only without one).
   */
  static async open(d: CacheGroupDeps, hasClusterId: boolean): Promise<CacheGroup> {
    const { cfg } = d;
    if (!cfg.cacheStorageDisk) {
      const store = new MemoryLogStore({ entryBytesMax: cfg.entryBytesMax });
      const start = decideStart({
        hardState: null,
        lastIndex: 0 as LogIndex,
        hasSnapshot: false,
        appliedIndex: 0 as LogIndex,
        hasClusterId,
        logUncovered: null,
      });
      return new CacheGroup(d, store, new MemorySnapshotStore(), start);
    }
    const dirs = dataPaths(cfg);
    const { store, snapshots, start } = await openGroupStorage({
      group: 'cache',
      logsDir: dirs.cacheLogsDir,
      snapshotsDir: dirs.cacheSnapshotsDir,
      entryBytesMax: cfg.entryBytesMax,
      log: d.log,
      // The state machine lives in memory: rebuilt from the snapshot and the log at start.
      appliedIndex: 0 as LogIndex,
      hasClusterId,
      othersConfigured: cfg.nodes.length > 1,
    });
    return new CacheGroup(d, store, snapshots, start);
  }

  /**
   * A group on storage the caller provides (the simulator's disk, test/sim/cache): written and
   * restored as `cache_storage_disk = false` does (chunk by chunk through `storage.snapshots`),
   * kept across restarts as the caller's storage keeps it.
   */
  static onStorage(d: CacheGroupDeps, storage: CacheGroupStorage): CacheGroup {
    return new CacheGroup(d, storage.logStore, storage.snapshots, storage.start);
  }

  /** True when this node knows no membership of the group (it joins, or node 1 founds it). */
  get fresh(): boolean {
    return this.startDecision.fresh;
  }

  /** No trace of any membership: node 1 may found the group with proof that none exists. */
  get mayBootstrap(): boolean {
    return this.startDecision.mayBootstrap;
  }

  /** This node's join of the group (joining-marker.ts), once started. */
  get join(): GroupJoin {
    assert(this.joinState !== null, 'the cache group is started');
    return this.joinState;
  }

  /**
   * Starts the Raft group (after `open`), with `initialMembership` if it has no state. `kind`:
   * whether it joins the group, founds it, or keeps its state; a joining node neither votes nor
   * campaigns until it has applied the entry that added it.
   */
  async start(initialMembership: Membership, transport: GroupTransport, kind: GroupStartKind): Promise<void> {
    const chunked = chunkStoreOf(this.snapshotStore);
    this.observers.add({ applied: () => this.checkLogClock(), replaced: () => this.checkLogClock() });
    this.observers.add({ applied: () => this.checkTokenFloor(), replaced: () => this.checkTokenFloor() });
    const observedSm = observed(
      chunked === null
        ? this.sm
        : chunkSnapshotting(this.sm, () => chunkStoreOf(this.snapshotStore) ?? chunked),
      this.observers,
    );
    // Closed with the Raft group, except when refound() replaces the group (same state machine).
    this.groupSm = {
      ...observedSm,
      close: () => (this.refounding ? Promise.resolve() : observedSm.close()),
    };
    await this.openRaft(initialMembership, transport, kind);
    this.scheduleExpire();
  }

  /** Opens the Raft group on the current storage (start, refound). */
  private async openRaft(
    initialMembership: Membership,
    transport: GroupTransport,
    kind: GroupStartKind,
  ): Promise<void> {
    const { cfg, clock } = this.d;
    const stateMachine = this.groupSm;
    assert(stateMachine !== null, 'start() made the state machine');
    // In memory the group has no state at a restart: no marker file (it joins again anyway).
    // Storage of the caller's (the simulator's) keeps the marker in memory as well.
    const chunked = chunkStoreOf(this.snapshotStore);
    const join = await GroupJoin.start('cache', chunked === null ? cfg.dataDir : null, kind);
    this.joinState = join;
    // A group kept in memory founded (anew) starts at a term of the founder's clock in ms: above
    // every term of an earlier incarnation of it (founded earlier, a term per election since), so
    // a node that still holds that one (it was cut off while node 1 founded this one) neither
    // wins an election here (its log's last term is lower) nor makes anyone adopt its term; it
    // adopts this group's and, hearing from no leader of its own, drops its state (HiqliteNode's
    // cache watchdog). A clock hours behind weakens it: run time sync.
    if (kind === 'bootstrap' && this.inMemory && this.logStore.loadHardState() === null) {
      const term = Math.max(1, Math.floor(this.d.clock.wallMs())) as Term;
      await this.logStore.saveHardState({ term, vote: null, commit: 0 as LogIndex });
    }
    this.raft = await RaftGroup.open(
      groupRaftOptions(cfg, 'cache', {
        initialMembership,
        logStore: this.logStore,
        snapshots: this.snapshotStore,
        stateMachine,
        transport,
        clock,
        logger: this.d.log,
        onFatal: this.d.onFatal,
        abstain: () => join.abstains(this.raft === undefined ? (0 as LogIndex) : this.raft.applied()),
        ...(this.d.random === undefined ? {} : { random: this.d.random }),
        ...(this.d.defer === undefined ? {} : { defer: this.d.defer }),
        ...(this.d.plantedBugs === undefined ? {} : { plantedBugs: this.d.plantedBugs }),
      }),
    );
    this.raft.onLeaderChange((s) => {
      if (s.role === 'leader') this.d.clusterClock?.refresh?.();
      this.d.log.info({ group: 'cache', role: s.role, leaderId: s.leaderId }, 'raft role changed');
      this.tellLeaderWatchers(s);
    });
  }

  /**
   * Calls `fn` when this node's role or known leader in the group changes — across refound(),
   * which replaces the Raft group (a watcher of the Raft group of before heard nothing more:
   * a cache-only node's `isLeader()` stayed what it was when its group was founded anew).
   */
  onLeaderChange(fn: (s: { role: string; leaderId: number | null }) => void): () => void {
    this.leaderWatchers.add(fn);
    return () => this.leaderWatchers.delete(fn);
  }

  private tellLeaderWatchers(s: { role: string; leaderId: number | null }): void {
    for (const fn of this.leaderWatchers) {
      try {
        fn(s);
      } catch (e) {
        this.d.log.warn({ err: String(e) }, 'a watcher of the cache group leader failed');
      }
    }
  }

  /** The group's storage (its snapshots: the transport reads and writes them). */
  get snapshots(): GroupSnapshotStore {
    return this.snapshotStore;
  }

  /** Whether the group keeps nothing on disk (`cache_storage_disk = false`): refound() may run. */
  get inMemory(): boolean {
    return !this.d.cfg.cacheStorageDisk && chunkStoreOf(this.snapshotStore) !== null;
  }

  /**
   * Drops this node's state of the group and opens it again with `membership` (EMPTY: it joins
   * the group founded anew, as a restarted in-memory node does; GENESIS: node 1 founds it), for a
   * group kept in memory only. For a group that a majority of its voters forgot (they restarted
   * without it): it can elect no leader again, and its survivors kept the others from founding it
   * anew (HiqliteNode's cache watchdog). What was in flight ends: writes with the Raft group's
   * close (`HQL_CLOSED`, retryable), lock waits and listeners with `HQL_UNAVAILABLE` (retryable:
   * listen and wait again); the state is replaced (observers: the mirror starts a new epoch).
   */
  async refound(membership: Membership, transport: GroupTransport, kind: GroupStartKind): Promise<void> {
    assert(this.inMemory, 'only a group kept in memory is founded anew in place');
    this.checkOpen();
    const stateMachine = this.groupSm;
    assert(stateMachine !== null, 'the group is started');
    const err = new HiqliteError(
      'HQL_UNAVAILABLE',
      'the cache group is founded anew (a majority of its nodes restarted without their in-memory state): its data is gone; listen or wait again',
      { retryable: true },
    );
    this.refounding = true;
    try {
      if (this.expireTimer !== null) this.d.clock.clearTimer(this.expireTimer);
      this.expireTimer = null;
      this.hub.closeAll(err);
      this.waiters.failAll(err);
      await this.raft.close({ timeoutMs: this.d.cfg.shutdownTimeoutMs });
      this.logStore = new MemoryLogStore({ entryBytesMax: this.d.cfg.entryBytesMax });
      this.snapshotStore = new MemorySnapshotStore();
      this.startDecision = decideStart({
        hardState: null,
        lastIndex: 0 as LogIndex,
        hasSnapshot: false,
        appliedIndex: 0 as LogIndex,
        hasClusterId: true,
        logUncovered: null,
      });
      this.replayedTo = 0;
      await stateMachine.reset?.();
      // A node that joins the group founded anew takes its log time from it; the founder keeps
      // what it carried, so the new group's time (and tokens) start no lower than it saw.
      if (kind !== 'bootstrap') this.logClock.reset();
      await this.openRaft(membership, transport, kind);
    } finally {
      this.refounding = false;
    }
    this.refounds++;
    // The Raft group of before is gone with its role: its watchers learn the new group's.
    const st = this.raft.status();
    this.tellLeaderWatchers({ role: st.role, leaderId: st.leaderId });
    for (const hook of this.refoundHooks) {
      try {
        hook();
      } catch (e) {
        this.d.log.warn({ err: String(e) }, 'a hook of the cache group founded anew failed');
      }
    }
    this.scheduleExpire();
  }

  /**
   * How many times this node's state of the group was dropped (refound): a lock granted before
   * is gone with it (its holder's client compares: DistributedLock).
   */
  get refoundCount(): number {
    return this.refounds;
  }

  /** Calls `hook` after each refound (the client ends the locks it holds: their `lost` fires). */
  onRefound(hook: () => void): () => void {
    this.refoundHooks.add(hook);
    return () => this.refoundHooks.delete(hook);
  }

  /**
   * The lowest fencing token of the group as this node applied it (0 while not known: nothing
   * applied yet, or a state of an older version): every lock of this group has a token at least
   * this, so a lock below it was granted by a group founded before (CacheStateMachine.tokenFloor).
   */
  get tokenFloor(): number {
    return this.sm.tokenFloor();
  }

  /** Tells `onTokenFloor` of a token floor that became known or changed. */
  private checkTokenFloor(): void {
    const floor = this.sm.tokenFloor();
    if (floor === this.tokenFloorTold) return;
    this.tokenFloorTold = floor;
    if (floor > 0) this.d.onTokenFloor?.(floor);
  }

  /** Logs, at most once a minute, a log time ahead of this node's clock (LOG_CLOCK_AHEAD_WARN_MS). */
  private checkLogClock(): void {
    const aheadMs = this.sm.clockMs() - this.wallMs();
    if (aheadMs < LOG_CLOCK_AHEAD_WARN_MS) return;
    const now = this.d.clock.monotonicMs();
    if (now - this.clockWarnedAtMs < LOG_CLOCK_WARN_EVERY_MS) return;
    this.clockWarnedAtMs = now;
    this.d.log.warn(
      { group: 'cache', aheadMs: Math.round(aheadMs) },
      "the cache group's log time is ahead of the cluster's clock (the median of the nodes' clocks): a leader's clock ran ahead, and TTLs and lock leases running then ended early by up to this much. Log time runs on from there and drifts back to the clocks by 1% of elapsed time: check time sync (NTP) on every node",
    );
  }

  /** The Raft group (membership, status, snapshots): for formation and metrics in HiqliteNode. */
  get group(): RaftGroup {
    // A stopped group is still looked at (its status in metrics and /health); it refuses work itself.
    this.checkStarted();
    return this.raft;
  }

  /**
   * True while the entries found in the log at start are applied again: a new listener starts
   * after them (cache-listeners.ts); the ring does not hold their notifications yet, so a remote
   * listener is asked to come back later (listen-stream.ts).
   */
  get replaying(): boolean {
    return this.sm.appliedIndex() < this.replayedTo;
  }

  /**
   * The seq of the last notification applied here (0: none yet); `linearizable`: after a
   * ReadIndex round (read_timeout_ms), so every notification committed before the call counts.
   */
  async lastNotificationSeq(consistency: CacheConsistency = 'local'): Promise<number> {
    if (consistency === 'linearizable') await this.readBarrier(this.d.cfg.readTimeoutMs);
    return this.sm.lastNotificationSeq();
  }

  /** Whether the Raft group runs (messages that arrive before are dropped: Raft resends). */
  get running(): boolean {
    return this.raft !== undefined && !this.closed && !this.refounding;
  }

  receive(m: Message): void {
    if (this.running) this.raft.receive(m);
  }

  reportUnreachable(id: NodeId): void {
    if (this.running) this.raft.reportUnreachable(id);
  }

  // ---------------------------------------------------------------------------------------------
  // Writes
  // ---------------------------------------------------------------------------------------------

  /**
   * Replicates one command under a session of this node, so a retry after a leader change is
   * applied once; resolves with its log index and result (a command's own failure, such as
   * HQL_CACHE_FULL, is a result, not a rejection).
   */
  async write(
    command: CacheCommand,
    options: CacheWriteOptions = {},
  ): Promise<{ index: number; result: CacheResult }> {
    this.checkOpen();
    this.checkAccepting();
    if (options.signal?.aborted === true) throw cacheCallAborted();
    checkProposal(command);
    let timeoutMs = Math.min(options.timeoutMs ?? Infinity, this.d.cfg.proposalTimeoutMs);
    // No await on the common path (a cache write's every microtask counts at c=64).
    if (this.mustWaitForClock()) timeoutMs = await this.waitForClock(timeoutMs);
    const { lane, seq } = this.sessions.acquire();
    try {
      // The leader's stamp, or a follower's reading its leader stamps again (stampNowMs).
      const leader = this.raft.isLeader();
      const data = this.sm.encodeForProposal({
        nowMs: this.stampNowMs(),
        session: {
          clientId: lane.clientId,
          seq,
          protectMs: sessionProtectMs(timeoutMs, this.d.cfg.sessionProtectMs),
        },
        command,
      });
      return await this.proposeBytes(data, timeoutMs, leader);
    } finally {
      this.sessions.release(lane);
    }
  }

  /** write() that throws the command's own error (a CacheError) and returns its outcome. */
  async writeOk(command: CacheCommand, options: CacheWriteOptions = {}): Promise<CacheOutcome> {
    const { result } = await this.write(command, options);
    if (!result.ok) throw cacheErrorOf(result);
    return result.value;
  }

  /**
   * Proposes encoded command bytes (`encodeCacheCommand`) on the leader, here or forwarded,
   * retrying what is safe to retry until `timeoutMs`. Bytes with a session are retried even when
   * an attempt's outcome was unknown (the state machine answers a duplicate with its result).
   * `stampedNow`: this node encoded (and so validated) the bytes with its clock in the same
   * synchronous step, so a first attempt on the leader proposes them as they are.
   */
  async proposeBytes(
    data: Uint8Array,
    timeoutMs: number,
    stampedNow = false,
  ): Promise<{ index: number; result: CacheResult }> {
    this.checkOpen();
    this.checkAccepting();
    const bytesMax = commandBytesMaxFor(this.d.cfg.entryBytesMax);
    if (data.byteLength > bytesMax) throw commandTooLargeError(data.byteLength, bytesMax);
    // Counted from here, where the write is proposed (as the SQL group's proposeCounted): one
    // that was still waiting for the cluster's clock when the shutdown began is refused above.
    this.d.inflight?.enter();
    try {
      return await this.proposeRetrying(data, timeoutMs, stampedNow);
    } finally {
      this.d.inflight?.leave();
    }
  }

  private proposeRetrying(
    data: Uint8Array,
    timeoutMs: number,
    stampedNow: boolean,
  ): Promise<{ index: number; result: CacheResult }> {
    const deadline = this.d.clock.monotonicMs() + timeoutMs;
    return proposeWithRetries(this.writeLoop, timeoutMs, { data, stampedNow, deadline });
  }

  /** The group's write loop, one for every write (each call brings its bytes). */
  private makeWriteLoop(): ProposeRetry<{ index: number; result: CacheResult }, CacheWrite> {
    return {
      clock: this.d.clock,
      heartbeatIntervalMs: this.d.cfg.heartbeatIntervalMs,
      isLeader: () => this.raft.isLeader(),
      leaderId: () => this.raft.leaderId(),
      // Attempt 0 runs synchronously from the caller's encode: its stamp is this leader's now.
      here: (attempt, remainingMs, w) =>
        w.stampedNow && attempt === 0
          ? this.proposeStamped(w.data, remainingMs)
          : this.proposeHere(w.data, remainingMs),
      forward: async (leaderId, remainingMs, w) => {
        const out = await this.d.forward(leaderId, w.data, remainingMs);
        if (!out.ok) return out;
        // Read-your-writes: a local read after the write sees it (bounded; it is applied anyway).
        await this.raft
          .waitForApplied(out.value.index as LogIndex, {
            timeoutMs: Math.max(
              1,
              Math.min(this.d.cfg.readTimeoutMs, w.deadline - this.d.clock.monotonicMs()),
            ),
          })
          .catch(() => {});
        return { ok: true, value: { index: out.value.index, result: reviveForwarded(out.value.result) } };
      },
      noLeaderError: () => this.d.noLeaderError(this.raft.membership()),
      stopping: () => this.closed,
    };
  }

  /**
   * Waits, within `timeoutMs`, until this node may stamp: the cluster's clock can be told
   * (ready()) and, on the leader of a group that has no log time yet, its first stamp has a clock
   * to start from that is not a guess between two that disagree (foundingReady(): log time and
   * fencing tokens start there). Returns what is left of `timeoutMs`; HQL_TIMEOUT, retryable,
   * when the deadline comes first.
   */
  private async waitForClock(timeoutMs: number): Promise<number> {
    const clock = this.d.clusterClock;
    if (clock === undefined) return timeoutMs;
    let left = clock.ready() != null ? await clock.waitReady(timeoutMs) : timeoutMs;
    if (this.foundingWait() != null && clock.waitFounding !== undefined)
      left = await clock.waitFounding(left);
    return left;
  }

  /**
   * The time to put on a command this node encodes: the leader's stamp (LogClock.stampMs, carried
   * in its clock), anything else's reading (nowMs, not carried). Only a leader's stamp becomes
   * log time — a follower's command is stamped again by the leader (proposeHere) — so a
   * follower's guess of its clock must not stay in its log clock: carried, it became log time
   * once the node led (the cache simulation, seed 574 of 1..1300), and a stamp taken while a
   * forwarded proposal reached a node that had just lost (or not yet won) the lead started a
   * group founded anew from a clock seconds ahead with no wait (proposeHere; seed 2669 with
   * --cache-loss). Every stamp of the group goes through here.
   */
  stampNowMs(): number {
    if (!this.raft.isLeader()) return this.logClock.nowMs();
    // A leader whose first stamp must still wait for the clocks (a path that stamps a placeholder
    // before the wait, as a remote client's command is, stamped again by proposeHere) reads
    // without carrying: carried, that guess became the group's log time with no wait (found from
    // outside: tokens 4 s ahead after a founding anew while node 3 was down).
    if (this.foundingWait() != null) return this.logClock.nowMs();
    return this.logClock.stampMs();
  }

  /** Whether a stamp must wait for the cluster's clock now (waitForClock). */
  private mustWaitForClock(): boolean {
    return this.d.clusterClock?.ready() != null || this.foundingWait() != null;
  }

  /** Pending while this leader's first stamp of the group waits for the cluster's clock. */
  private foundingWait(): Promise<void> | null | undefined {
    if (!this.raft.isLeader() || this.logClock.hasTime()) return null;
    return this.d.clusterClock?.foundingReady?.();
  }

  /**
   * Leader only: proposes the bytes here, never forwarding them (a forwarded proposal, or a
   * client's bytes). The command's time is replaced by this node's clock: time in the group is
   * the leaders', never a client's.
   */
  async proposeHere(data: Uint8Array, timeoutMs: number): Promise<{ index: number; result: CacheResult }> {
    this.checkOpen();
    const envelope = decodeCacheCommand(data);
    // A client's bytes (a remote client proposes its own) are held to what this node's own
    // writes are: write() checks those before they are encoded.
    checkProposal(envelope.command);
    const left = this.mustWaitForClock() ? await this.waitForClock(timeoutMs) : timeoutMs;
    return this.proposeStamped(this.sm.encodeForProposal({ ...envelope, nowMs: this.stampNowMs() }), left);
  }

  /**
   * Leader only: proposes bytes this leader encoded and stamped itself (no decode, no re-stamp).
   * A batchable write (command.ts, isBatchable) joins this turn's batch: the writes proposed in
   * one turn of the event loop go into one log entry at its end (up to
   * `cache_batch_commands_max`, and the entry size), each answered with its own result. Any
   * other command first proposes the batch collected so far, so this node's writes enter the
   * log in the order they were proposed here.
   */
  private proposeStamped(
    stamped: Uint8Array,
    timeoutMs: number,
  ): Promise<{ index: number; result: CacheResult }> {
    this.checkOpen();
    const command = this.sm.proposedCommand(stamped);
    const batchMax = this.d.cfg.cacheBatchCommandsMax;
    if (batchMax <= 1 || command === undefined || !isBatchable(command)) {
      this.proposeBatch();
      return this.proposeOne(stamped, timeoutMs);
    }
    const itemBytes = CACHE_BATCH_ITEM_OVERHEAD_BYTES + stamped.byteLength;
    let b = this.batch;
    if (
      b !== null &&
      (b.items.length >= batchMax || b.bytes + itemBytes > commandBytesMaxFor(this.d.cfg.entryBytesMax))
    ) {
      this.proposeBatch();
      b = null;
    }
    if (b === null) {
      const fresh: PendingBatch = { items: [], waiters: [], bytes: CACHE_BATCH_HEADER_BYTES, timeoutMs };
      this.batch = fresh;
      // At the end of this turn of the event loop (the group's `defer`, setImmediate): every
      // call of the messages from the application's thread, every request of the socket reads,
      // and every caller that continues after an earlier put settled, whatever the number of
      // promise jobs between its resume and its next put. Closing at the end of the first
      // microtask queue instead took only the calls made synchronously: with the node on the
      // application's thread (c=64) nearly every put became an entry of its own, 12,900-14,200
      // puts/s against 17,900-21,900 with this (docs/BENCHMARKS.md, ninth round). No timer.
      (this.d.defer ?? setImmediate)(() => {
        if (this.batch === fresh) this.proposeBatch();
      });
      b = fresh;
    }
    b.items.push(stamped);
    b.bytes += itemBytes;
    // The entry waits as long as its most patient caller; each caller keeps its own deadline
    // (proposeBatch), so a caller with a short one neither waits past it nor cuts the others'.
    b.timeoutMs = Math.max(b.timeoutMs, timeoutMs);
    const batch = b;
    return new Promise((resolve, reject) => batch.waiters.push({ resolve, reject, timeoutMs }));
  }

  /** Batchable writes of this turn, not proposed yet (proposeStamped). */
  private batch: PendingBatch | null = null;

  /** Proposes the writes collected in this turn: one alone as it is, several as one batch entry. */
  private proposeBatch(): void {
    const b = this.batch;
    if (b === null) return;
    this.batch = null;
    if (b.items.length === 1) {
      const w = b.waiters[0] as BatchWaiter;
      this.proposeOne(b.items[0] as Uint8Array, b.timeoutMs).then(w.resolve, w.reject);
      return;
    }
    let out: Promise<{ index: number; result: unknown }>;
    const entryTimeoutMs = Math.min(b.timeoutMs, this.d.cfg.proposalTimeoutMs);
    try {
      this.checkOpen();
      out = this.raft.propose(this.sm.encodeBatchForProposal(b.items), { timeoutMs: entryTimeoutMs });
    } catch (e) {
      for (const w of b.waiters) w.reject(e);
      return;
    }
    // A caller whose deadline comes before the entry's is answered at it as a single write would
    // be (the outcome is unknown; its write carries a session, so a retry is exactly-once).
    const settled = new Array<boolean>(b.waiters.length).fill(false);
    const timers: TimerHandle[] = [];
    for (let i = 0; i < b.waiters.length; i++) {
      const w = b.waiters[i] as BatchWaiter;
      if (w.timeoutMs >= entryTimeoutMs) continue;
      timers.push(
        this.d.clock.setTimer(() => {
          if (settled[i] === true) return;
          settled[i] = true;
          w.reject(outcomeUnknown(`no outcome within ${Math.round(w.timeoutMs)} ms`));
        }, w.timeoutMs),
      );
    }
    const settle = (fn: (w: BatchWaiter, i: number) => void) => {
      for (const t of timers) this.d.clock.clearTimer(t);
      for (let i = 0; i < b.waiters.length; i++) {
        if (settled[i] === true) continue;
        settled[i] = true;
        fn(b.waiters[i] as BatchWaiter, i);
      }
    };
    out.then(
      (o) => {
        const r = o.result as CacheEntryResult;
        settle((w, i) => {
          const result = Array.isArray(r) ? (r[i] as CacheResult | undefined) : (r as CacheResult);
          if (result === undefined)
            w.reject(
              new HiqliteError('HQL_INTERNAL', `a batch entry answered without result ${i}`, {
                retryable: false,
              }),
            );
          else w.resolve({ index: o.index, result });
        });
      },
      (e: unknown) => settle((w) => w.reject(e)),
    );
  }

  private async proposeOne(
    stamped: Uint8Array,
    timeoutMs: number,
  ): Promise<{ index: number; result: CacheResult }> {
    this.checkOpen();
    const out = await this.raft.propose(stamped, {
      timeoutMs: Math.min(timeoutMs, this.d.cfg.proposalTimeoutMs),
    });
    return { index: out.index, result: out.result as CacheResult };
  }

  // ---------------------------------------------------------------------------------------------
  // Reads, listeners, locks
  // ---------------------------------------------------------------------------------------------

  /** The live value on this replica (expiry judged by this node's log clock). */
  get(cache: string, key: string): Uint8Array | null {
    // The clock is read only for an entry with a TTL the applied log time has not passed.
    return this.sm.getEntry(cache, key, this.readNowMs)?.value ?? null;
  }

  private readonly readNowMs = (): number => this.logClock.nowMs();

  /** `get`, returning the stored entry (one object per stored version; never mutated). */
  getEntry(cache: string, key: string): CacheEntry | null {
    return this.sm.getEntry(cache, key, this.readNowMs);
  }

  entries(cache: string): Array<[string, Uint8Array]> {
    return this.sm.entries(cache, this.logClock.nowMs());
  }

  counterGet(counter: string, key: string): bigint | null {
    return this.sm.counterGet(counter, key);
  }

  /**
   * One read of this replica; `linearizable` first waits for a ReadIndex round, for
   * read_timeout_ms or the caller's `timeoutMs` when shorter (a remote client's request: the
   * node's own answer — no leader, say — reaches it before its deadline, rather than the client's
   * bare HQL_TIMEOUT; found from outside).
   */
  read(
    read: CacheRead,
    consistency: CacheConsistency = 'local',
    timeoutMs?: number,
  ): CacheReadValue | Promise<CacheReadValue> {
    if (consistency === 'linearizable')
      return this.readBarrier(Math.min(timeoutMs ?? Number.POSITIVE_INFINITY, this.d.cfg.readTimeoutMs)).then(
        () => this.read(read),
      );
    switch (read.type) {
      case 'get':
        return this.get(read.cache, read.key);
      case 'entries':
        return this.entries(read.cache);
      case 'counterGet':
        return this.counterGet(read.counter, read.key);
    }
  }

  /** Waits until a read here is linearizable (ReadIndex on the cache group), across leader changes. */
  async readBarrier(timeoutMs: number): Promise<void> {
    this.checkOpen();
    const { clock } = this.d;
    const deadline = clock.monotonicMs() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.raft.readBarrier({ timeoutMs: Math.max(1, deadline - clock.monotonicMs()) });
        return;
      } catch (e) {
        // Closed or stopped meanwhile: the wait ends (the group's HQL_CLOSED is retryable for a
        // client, which asks another node; retried here, it ran on to its deadline).
        if (!(e instanceof HiqliteError) || !e.retryable) throw e;
        if (!this.running) {
          if (this.stopped !== null) throw this.stopped;
          throw new HiqliteError('HQL_CLOSED', 'the node is shutting down', { retryable: true, cause: e });
        }
        if (clock.monotonicMs() >= deadline) throw deadlineError(e, 'linearizable read', timeoutMs);
      }
      await sleep(clock, Math.min(this.d.cfg.heartbeatIntervalMs, 20 * 2 ** Math.min(attempt, 5)));
    }
  }

  /**
   * Listens to notifications applied from now on (or held after `afterSeq`), on one channel or
   * all, with a buffer of `bufferMax` notifications (default `cache_listener_buffer_max`) and
   * `bufferBytesMax` of their bytes (default `cache_listener_buffer_bytes_max`).
   */
  subscribe(options: {
    channel: string | null;
    afterSeq?: number;
    bufferMax?: number;
    bufferBytesMax?: number;
  }): Subscription {
    this.checkOpen();
    // A channel no notification can have (notify refuses it the same way).
    const tooLong =
      options.channel === null
        ? undefined
        : checkBytes('channel', options.channel, this.sm.limits.keyBytesMax, 'keyBytesMax');
    if (tooLong !== undefined) throw cacheErrorFromInfo(tooLong);
    return this.hub.subscribe({
      channel: options.channel,
      bufferMax: options.bufferMax ?? this.d.cfg.cacheListenerBufferMax,
      bufferBytesMax: options.bufferBytesMax ?? this.d.cfg.cacheListenerBufferBytesMax,
      ...(options.afterSeq === undefined ? {} : { afterSeq: options.afterSeq }),
    });
  }

  /**
   * Acquires a lock for `holderId` (unique per attempt; a retry with the same id is the same
   * attempt): resolves with the grant once it is this holder's turn, null when `waitMs` is 0 and
   * the lock is held (try-lock). HQL_TIMEOUT when `waitMs` passes, HQL_ABORTED on `signal`: the
   * waiter is withdrawn from the queue first (lockCancel).
   */
  lock(
    request: { key: string; holderId: string; leaseMs: number; waitMs?: number },
    signal?: AbortSignal,
  ): Promise<LockGrantInfo | null> {
    this.checkOpen();
    this.checkAccepting();
    return this.waiters.acquire(request, signal);
  }

  /**
   * Calls `observer` with every batch of entries the state machine applies (in log order, right
   * after applying them, before any caller waiting for them is answered) and whenever its whole
   * state is replaced (a snapshot installed, or reset). A replica kept elsewhere (the
   * application thread's mirror, client/cache-mirror.ts) stays identical by applying the same
   * entries. Returns the removal.
   */
  observe(observer: CacheApplyObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  metrics(): CacheGroupMetrics {
    return {
      stats: this.sm.stats(),
      logClockAheadMs: Math.max(0, this.logClock.nowMs() - this.wallMs()),
      listeners: this.hub.size,
      listenerLag: this.hub.unread(),
      lockWaits: this.waiters.size,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Snapshots on the wire (memory storage has no files)
  // ---------------------------------------------------------------------------------------------

  /** The bytes of a stored snapshot, to stream to a peer. */
  snapshotChunks(
    path: string,
    fileChunks: (path: string) => AsyncIterable<Uint8Array>,
  ): AsyncIterable<Uint8Array> {
    const chunked = chunkStoreOf(this.snapshotStore);
    return chunked === null ? fileChunks(path) : chunked.chunks(path);
  }

  /** A snapshot streamed by the leader: stored, then handed to the Raft core. */
  async receiveSnapshot(
    meta: Extract<Message, { type: 'snapshot' }>,
    chunks: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    this.checkOpen();
    this.raft.receiveSnapshot(meta, await receiveSnapshot(this.snapshotStore, chunks));
  }

  /**
   * The node stopped serving (its SQL group or this one failed): the group stops (RaftGroup.stop),
   * its listeners and lock waiters end with `err`, and every later use but a local read fails
   * with it. Local reads go on, as the node's SQL reads do.
   */
  stop(err: HiqliteError): void {
    if (this.closed || this.stopped !== null) return;
    this.stopped = err;
    if (this.expireTimer !== null) this.d.clock.clearTimer(this.expireTimer);
    this.expireTimer = null;
    this.hub.closeAll(err);
    this.waiters.closeAll(err);
    if (this.raft !== undefined) this.raft.stop(err);
  }

  /**
   * The first step of a shutdown, while the group still takes writes: every lock wait on this
   * node ends (HQL_CLOSED) and its waiter is withdrawn from the queue, within `withinMs`.
   */
  async withdrawWaiters(withinMs: number): Promise<void> {
    if (this.closed || this.stopped !== null) return;
    // Retryable: a remote client's wait goes on through another node (its place here withdrawn).
    await this.waiters.closeAndWithdraw(
      new HiqliteError('HQL_CLOSED', 'the node is shut down', { retryable: true }),
      withinMs,
    );
  }

  async close(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.expireTimer !== null) this.d.clock.clearTimer(this.expireTimer);
    const err = new HiqliteError('HQL_CLOSED', 'the node is shut down', { retryable: false });
    this.hub.closeAll(err);
    this.waiters.closeAll(err);
    if (this.raft !== undefined) await this.raft.close({ timeoutMs });
    else await this.logStore.close();
  }

  // ---------------------------------------------------------------------------------------------
  // Expiry
  // ---------------------------------------------------------------------------------------------

  private scheduleExpire(): void {
    if (this.closed || this.stopped !== null) return;
    this.expireTimer = this.d.clock.setTimer(
      () => {
        this.expireTimer = null;
        void this.expireDue().finally(() => this.scheduleExpire());
      },
      this.d.cfg.cacheExpireIntervalMs,
      { keepAlive: false },
    );
  }

  /** Leader: proposes `expire` while entries or leases are due by log time. */
  private async expireDue(): Promise<void> {
    if (this.expiring || this.closed) return;
    this.expiring = true;
    try {
      // Bounded: each round removes up to expireBatchMax entries or stale index items.
      for (let round = 0; round < 100; round++) {
        if (!this.running || !this.raft.isLeader()) return;
        // Not before the cluster's clock can be told: a wrong clock of this node would end TTLs.
        if (this.d.clusterClock?.ready() != null || this.foundingWait() != null) return;
        const due = this.sm.nextDeadlineMs();
        const nowMs = this.stampNowMs();
        // A group that applied no command yet has no log time, so no token floor to tell remote
        // clients (a node restarted into a group founded anew tells it: ApiEvent cacheTokenFloor):
        // its leader stamps one at once, with an `expire` that finds nothing to remove.
        const unstamped = this.sm.clockMs() === 0;
        if (!unstamped && (due === null || due > nowMs)) return;
        const data = this.sm.encodeForProposal({ nowMs, command: { type: 'expire' } });
        await this.proposeHere(data, this.d.cfg.proposalTimeoutMs);
      }
    } catch (e) {
      if (!(e instanceof HiqliteError)) this.d.log.warn({ err: String(e) }, 'cache expiry failed');
    } finally {
      this.expiring = false;
    }
  }

  /** Closed, not started yet (the node is still joining), or stopped (stop()): every use of the group asks here. */
  private checkOpen(): void {
    this.checkStarted();
    if (this.stopped !== null) throw this.stopped;
  }

  /**
   * The node's graceful shutdown begins: new writes and lock requests are refused (HQL_CLOSED);
   * those in flight go on, and the node waits for them (InFlight) before close().
   */
  refuseWrites(): void {
    this.refusing = true;
  }

  private checkAccepting(): void {
    if (this.refusing) throw new HiqliteError('HQL_CLOSED', 'the node is shut down', { retryable: false });
  }

  /** Not closed, and started (the Raft group runs or ran). */
  private checkStarted(): void {
    if (this.closed) throw new HiqliteError('HQL_CLOSED', 'the node is shut down', { retryable: false });
    if (this.refounding)
      throw new HiqliteError('HQL_UNAVAILABLE', 'the cache group is being founded anew on this node', {
        retryable: true,
      });
    // The API port serves before the cache group runs (a node that lost its state joins first).
    if (this.raft === undefined) {
      throw new HiqliteError(
        'HQL_UNAVAILABLE',
        'the cache group is not running yet on this node (it is starting or joining)',
        {
          retryable: true,
        },
      );
    }
  }
}

/**
 * A result that crossed the API protocol: msgpack gives small int64 counter values back as
 * numbers; the API promises bigint.
 */
function reviveForwarded(r: CacheResult): CacheResult {
  if (!r.ok) return r;
  const v = r.value;
  if ((v.type === 'counterAdd' || v.type === 'counterGet') && typeof v.value === 'number')
    return { ok: true, value: { ...v, value: BigInt(v.value) } } as CacheResult;
  return r;
}

interface BatchWaiter {
  readonly resolve: (out: { index: number; result: CacheResult }) => void;
  readonly reject: (e: unknown) => void;
  /** This caller's own deadline (ms from the proposal). */
  readonly timeoutMs: number;
}

/** Writes of one turn that will share a log entry (CacheGroup.proposeStamped). */
interface PendingBatch {
  readonly items: Uint8Array[];
  readonly waiters: BatchWaiter[];
  /** The batch entry's size so far (its header and every command with its length). */
  bytes: number;
  timeoutMs: number;
}

/** What `CacheGroup.observe` reports. Called synchronously; must not throw. */
export interface CacheApplyObserver {
  applied(entries: readonly Entry[]): void;
  /** The state was replaced as a whole (snapshot installed, or reset): entries alone cannot follow. */
  replaced(): void;
}

/** The state machine, reporting what it applies and when its state is replaced to `observers`. */
function observed(sm: GroupStateMachine, observers: ReadonlySet<CacheApplyObserver>): GroupStateMachine {
  const replaced = () => {
    for (const o of observers) o.replaced();
  };
  return {
    appliedIndex: () => sm.appliedIndex(),
    apply: async (entries, wanted) => {
      const results = await sm.apply(entries, wanted);
      for (const o of observers) o.applied(entries);
      return results;
    },
    ...(sm.sizeBytes === undefined ? {} : { sizeBytes: () => (sm.sizeBytes as () => number)() }),
    snapshot: (path) => sm.snapshot(path),
    restore: async (path, meta) => {
      try {
        await sm.restore(path, meta);
      } finally {
        replaced();
      }
    },
    reset: async () => {
      try {
        await sm.reset();
      } finally {
        replaced();
      }
    },
    close: () => sm.close(),
    // The cache state machine lives in memory: every start restores its snapshot.
    volatile: true,
  };
}

/** The state machine with its snapshots in a ChunkSnapshotStore (memory, or the simulator's disk) instead of files. */
/**
 * `storeNow`: the group's snapshot store now — refound() replaces it, and the state machine must
 * write and read its snapshots where the Raft group and the transport do (found by the fault
 * suite: a node that joined a group founded anew and was sent a snapshot read it from the store
 * of before, where it is not, and stopped).
 */
function chunkSnapshotting(sm: CacheStateMachine, storeNow: () => ChunkSnapshotStore): GroupStateMachine {
  return {
    appliedIndex: () => sm.appliedIndex(),
    apply: (entries, wanted) => sm.apply(entries, wanted),
    sizeBytes: () => sm.sizeBytes(),
    snapshot: (path) =>
      sm.writeSnapshot((chunk) => {
        // A chunk may be a small view of a 1 MiB buffer: keep only its bytes.
        storeNow().append(path, chunk.byteLength * 2 < chunk.buffer.byteLength ? chunk.slice() : chunk);
      }),
    restore: (path: string, meta: SnapshotMeta) => sm.restoreFrom(storeNow().chunks(path), meta),
    reset: () => sm.reset(),
    close: () => sm.close(),
  };
}

function cacheErrorOf(result: Extract<CacheResult, { ok: false }>): HiqliteError {
  return cacheErrorFromInfo(result.error);
}

function cacheCallAborted(): HiqliteError {
  return abortedError('the cache call was aborted');
}

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((r) => clock.setTimer(r, ms));
}

/** A session id drawn from `random` (16 hex digits, as the 8 random bytes of the default). */
function sessionIdOf(random: Random): string {
  let hex = '';
  for (let i = 0; i < 4; i++) hex += random.int(0, 0x10000).toString(16).padStart(4, '0');
  return hex;
}

/**
 * The rules a command proposed now is held to beyond what applying it checks (the state machine
 * must go on applying entries already in logs that were proposed before a rule existed). The one
 * place for them: write() checks this node's commands before they are encoded, proposeHere the
 * bytes a follower forwarded or a remote client sent.
 *
 * A renewal or release names its holder: the fencing token is no secret (it is written into the
 * rows it guards), and with it alone anyone could end or keep another's lock. Entries already in
 * logs, from before they did, are applied as they were (the token decides).
 *
 * An acquire that may queue carries a wait lease (`waitLeaseMs`): a waiter nobody renews would
 * wait until its `waitMs` (without one, for ever) and then be granted a lock nobody holds.
 */
function checkProposal(command: CacheCommand): void {
  if (command.type === 'lockAcquire' && command.waitMs !== 0 && command.waitLeaseMs === undefined) {
    throw new HiqliteError(
      'HQL_INVALID_PARAMS',
      `lockAcquire of lock '${command.key}' that may wait must carry a wait lease (waitLeaseMs) renewed by its node: use the lock API`,
      { retryable: false },
    );
  }
  const waitLeaseMs =
    command.type === 'lockAcquire' || command.type === 'lockWaitRenew' ? command.waitLeaseMs : undefined;
  const [lo, hi] = LOCK_WAIT_LEASE_MS_BOUNDS;
  if (waitLeaseMs !== undefined && (waitLeaseMs < lo || waitLeaseMs > hi)) {
    throw new HiqliteError(
      'HQL_INVALID_PARAMS',
      `${command.type}: waitLeaseMs ${waitLeaseMs} is outside ${lo} to ${hi} (cache_lock_wait_lease_ms)`,
      { retryable: false },
    );
  }
  if ((command.type === 'lockRelease' || command.type === 'lockRenew') && command.holderId === undefined) {
    throw new HiqliteError(
      'HQL_INVALID_PARAMS',
      `${command.type} of lock '${command.key}' must name its holder (holderId): the token alone does not`,
      { retryable: false },
    );
  }
}
