/**
 * A hiqlite node: the SQL Raft group with its file log store, SQLite state machine (in a
 * worker) and snapshots; the Raft transport; the API port; cluster formation; and the write and
 * read paths the client API is built on.
 *
 * Cluster formation (static member list, as in the Rust project): every node of `nodes` may be a
 * member. The cluster's genesis membership is `{ voters: [1] }`: node 1 bootstraps it, but only
 * when it has no state and no other node answers that it already has a cluster. A node with no
 * state joins: it asks the leader to add it as a learner, catches up, then asks to be promoted
 * to voter (unless `learnerOnly`). A voter that lost its volume is removed and re-added as a
 * learner, since it may have voted in a term it no longer remembers.
 *
 * A cache-only node (`sqlite = false`, sqlite-setting.ts) runs the cache group alone, which then
 * takes the SQL group's place in formation, health, leader and metrics (`openCacheOnly`).
 */
import { randomBytes, randomInt } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { type Logger, pino } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import type { LeaderBackups } from '../dashboard/backend.js';
import { Dashboard } from '../dashboard/dashboard.js';
import { MetricsHistory } from '../dashboard/metrics-history.js';
import { raceAbort } from '../lib/abort.js';
import { assert } from '../lib/assert.js';
import { sessionProtectMs } from '../lib/client-session.js';
import type { Clock } from '../lib/clock.js';
import { abortedError, HiqliteError } from '../lib/errors.js';
import { PRIVATE_DIR_MODE } from '../lib/file-modes.js';
import { inTime } from '../lib/in-time.js';
import { LogClock, type LogClockSource } from '../lib/log-clock.js';
import {
  API_EVENT_CACHE_REFOUNDED,
  API_EVENT_CACHE_TOKEN_FLOOR,
  type ApiRequest,
  type ApiResponse,
} from '../protocol/api-codec.js';
import { commandBytesMaxFor } from '../protocol/entry-codec.js';
import type { LogIndex, Membership, Message, NodeId } from '../raft/types.js';
import { adoptClientCacheCommand } from '../sm/cache/client-proposal.js';
import {
  CACHE_ONLY_CODES,
  CacheError,
  type CacheErrorInfo,
  type CacheLimitName,
} from '../sm/cache/errors.js';
import type { AppliedIndexWatcher } from '../sm/sql/applied-watch.js';
import { adoptClientCommand } from '../sm/sql/client-proposal.js';
import type { CommandInput } from '../sm/sql/command.js';
import { prepareForProposal } from '../sm/sql/determinism.js';
import { errorFromInfo, SQL_ONLY_CODES, SqlError, type SqlErrorInfo } from '../sm/sql/errors.js';
import { interruptAllOnExit } from '../sm/sql/interrupt.js';
import { ReadPool } from '../sm/sql/read-pool.js';
import { untilAppliedIndex } from '../sm/sql/read-your-writes.js';
import type { QueryParams } from '../sm/sql/reader.js';
import { SqlReader } from '../sm/sql/reader.js';
import type { CommandResult } from '../sm/sql/result.js';
import { checkReadText, type Row } from '../sm/sql/values.js';
import { unusableDirReason } from '../storage/file-paths.js';
import type { LogStore } from '../storage/log-store.js';
import { ApiConnection, REMOTE_CLIENT_ID, wasNotProcessed } from '../transport/api-connection.js';
import { RaftTransport } from '../transport/raft-transport.js';
import { ApiServer } from './api-server.js';
import { type ClusterAnswer, proveNoCluster } from './bootstrap-proof.js';
import { CacheGroup, type CacheGroupDeps, type CacheGroupMetrics } from './cache-group.js';
import type { CacheHttpOps } from './cache-http.js';
import { registerCacheMetrics } from './cache-metrics.js';
import {
  type CacheAsking,
  CacheWatchdog,
  cacheGroupAnswer,
  leadsSaying,
  leftBehindBy,
  provenNoCacheGroup,
  votersGoneFromCacheGroup,
} from './cache-refounding.js';
import {
  type CacheGroupOf,
  nodeCacheHttpOps,
  nodeListen,
  runningCacheGroup,
  serveCacheRequest,
} from './cache-serve.js';
import type { CacheLeaderAnswer } from './cache-voter-answer.js';
import { isClusterId, newClusterId, readClusterId, writeClusterId } from './cluster-id.js';
import type { NodeConfig, ResolvedNodeConfig, ResolvedPaths } from './config/config.js';
import { resolveConfig, threadHeapLimits } from './config/config.js';
import { nodeDashboardBackend } from './dashboard-backend.js';
import { type DataDirLock, lockDataDir } from './data-dir-lock.js';
import { groupRaftOptions, openGroupStorage } from './group-setup.js';
import { InFlight } from './in-flight.js';
import {
  addAsLearner,
  type JoiningGroupView,
  type JoinRecord,
  joinGroup,
  promoteLearner,
} from './join-procedure.js';
import { abstains, GroupJoin, joinKind } from './joining-marker.js';
import { serveJsonRoute } from './json-routes.js';
import type { ListenStream } from './listen-stream.js';
import { logLevelFromEnv } from './log-level.js';
import { noLeaderError } from './no-leader.js';
import type { BackupInfo, BackupListing, NodeBackups, NodeFeatures } from './node-features.js';
import { claimNodeId } from './node-id-file.js';
import { PeerClocks } from './peer-clocks.js';
import { type Forwarded, type ProposeRetry, proposeWithRetries } from './propose-retry.js';
import { commandTooLargeError, deadlineError, RaftGroup } from './raft-group.js';
import type { GroupId, GroupTransport } from './seams.js';
import { SessionPool } from './session-pool.js';
import { receiveSnapshot, type SnapshotStore } from './snapshot-store.js';
import { SqlGroupStateMachine } from './sql-group-state-machine.js';
import {
  diskConfig,
  saidSqlite,
  sqlConfig,
  sqliteDisabledError,
  sqliteMismatchError,
} from './sqlite-setting.js';
import { systemClock } from './system-clock.js';

export const GENESIS_MEMBERSHIP: Membership = { voters: [1 as NodeId], learners: [] };
/** One attempt of a node to join a cache group founded anew after its own state was dropped. */
const CACHE_REJOIN_ATTEMPT_MS = 60_000;
const EMPTY_MEMBERSHIP: Membership = { voters: [], learners: [] };
/** How long a node waits for the leader to take a backup it forwarded (a large database takes minutes). */
const BACKUP_TIMEOUT_MS = 3_600_000;
/**
 * How long a leader waits for each node it asks before it adds a joining node (checkJoiner): a
 * node that does not answer in time passes the check; the joining node's request waits 5 s.
 */
const JOIN_PEER_CHECK_MS = 2_000;
/** How long a follower's dashboard waits for the leader's list of its local backups. */
const BACKUP_LIST_TIMEOUT_MS = 10_000;

export type Consistency = 'local' | 'linearizable';

export interface QueryOptions {
  readonly consistency?: Consistency;
  /** Wait until this node has applied this log index (read-your-writes). */
  readonly minIndex?: number;
  /**
   * A limit for the whole read, waits included. The statement then runs on a read thread, off
   * the event loop, and is interrupted at the limit (HQL_TIMEOUT). Without it the statement runs
   * synchronously on the caller's thread with no limit: the fastest path for the embedder's own
   * queries, which it trusts. Reads for other processes (API, HTTP) always get
   * `query_timeout_ms`.
   */
  readonly timeoutMs?: number;
  /** Cancels a read that has a `timeoutMs` (HQL_ABORTED); its statement is interrupted. */
  readonly signal?: AbortSignal;
}

/** The SQL group's Raft state (GroupMetrics), and the cache group's. */
export interface NodeMetrics extends GroupMetrics {
  readonly nodeId: number;
  /**
   * False on a cache-only node (`sqlite = false`): it runs only the cache group, and the Raft
   * fields (GroupMetrics) are the cache group's.
   */
  readonly sqlite: boolean;
  /**
   * This node's wall clock minus the cluster's (the median of the nodes' clocks, which log time
   * follows: peer-clocks.ts), in ms; 0 until a majority of the nodes answered.
   */
  readonly clockOffsetMs: number;
  /** The cache group: its Raft state (as above) and its contents. */
  readonly cache: GroupMetrics & CacheGroupMetrics;
}

/** One Raft group's state on this node. */
export interface GroupMetrics {
  readonly role: 'leader' | 'follower' | 'candidate' | 'learner';
  readonly term: number;
  readonly leaderId: number | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastLogIndex: number;
  readonly voters: number[];
  readonly learners: number[];
}

/** A Raft group's members by role (the answer of removeNode, per group). */
export interface MembershipView {
  readonly voters: number[];
  readonly learners: number[];
}

/** The membership of both groups after removeNode; `sql` null on a cache-only node. */
export interface ClusterMembership {
  readonly sql: MembershipView | null;
  readonly cache: MembershipView;
}

export interface StartOptions {
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** How long start() waits to become a member (join, catch up, promotion). */
  readonly joinTimeoutMs?: number;
  /**
   * Cancels start() while it waits to become a member (bootstrap proof, join, catch-up): it then
   * rejects with HQL_ABORTED after closing what it opened (the data directory is unlocked).
   */
  readonly signal?: AbortSignal;
  /**
   * Called once if the node stops serving because of a disk failure or a broken invariant.
   * Default: log it; the node then reports unhealthy. `hiqlite serve` exits with code 1.
   */
  readonly onFatal?: (error: Error) => void;
  /**
   * Where `start()` runs the node (consensus, transport, log store, API port): `'worker'`
   * (default) on a worker thread of its own, so that an application that blocks its event loop
   * does not stop heartbeats; `'main'` on the caller's thread (`hiqlite serve`, and `clock`).
   * Local reads run on the caller's thread either way (src/client/worker-node.ts).
   */
  readonly thread?: 'worker' | 'main';
  /**
   * `thread: 'worker'`: calls (writes, consistent reads, reads with timeoutMs, metrics) in flight
   * to the node's thread before new ones are rejected with HQL_OVERLOADED. Default 10000.
   */
  readonly threadCallsMax?: number;
  /**
   * `thread: 'worker'`: keep a replica of the cache group on the application's thread, fed with
   * the entries the node applies, so that local cache reads are synchronous lookups there (no
   * thread hop). Costs a second copy of the cache data in memory. Default true.
   */
  readonly cacheMirror?: boolean;
  /**
   * `thread: 'worker'`: bytes of applied cache entries and snapshot chunks sent to the mirror and
   * not yet applied there; past it the mirror is rebuilt from a snapshot once it caught up (reads
   * meanwhile cross to the node's thread). Default 64 MiB.
   */
  readonly cacheMirrorInflightBytesMax?: number;
}

export class HiqliteNode {
  readonly cfg: ResolvedNodeConfig;
  readonly log: Logger;
  private readonly clock: Clock;
  private readonly onFatal: ((error: Error) => void) | undefined;
  private fatal: Error | null = null;
  private group!: RaftGroup;
  private cache!: CacheGroup;
  private sm!: SqlGroupStateMachine;
  /** The time this node stamps on SQL commands (src/lib/log-clock.ts): datetime('now') and sessions. */
  private readonly sqlLogClock: LogClock;
  /** The other nodes' clocks, asked every clock_probe_interval_ms: log time follows their median. */
  private readonly peerClocks: PeerClocks;
  /** The SQL group's log, from its opening until the group takes it over (and closes it). */
  private sqlLog: LogStore | undefined;
  private reader!: SqlReader;
  private readPool!: ReadPool;
  private transport!: RaftTransport;
  private api!: ApiServer;
  private lock!: DataDirLock;
  private readonly sessions: SessionPool;
  /** When this node object was made, on the monotonic clock (health_check_delay_secs counts from it). */
  private readonly createdAtMs: number;
  /** start()'s cancellation (StartOptions.signal), checked while it waits to become a member. */
  private startSignal: AbortSignal | undefined;
  /** This node's cluster (cluster-id.ts), or null until it bootstraps or joins one. */
  private clusterId: string | null = null;
  private readonly peers = new Map<number, Promise<ApiConnection>>();
  private readonly metricsRegistry = new Registry();
  private readonly writesTotal: Counter;
  /** The dashboard's charts (writes, reads, latency, apply lag); null when it is off. */
  private readonly history: MetricsHistory | null;
  private started = false;
  /**
   * Set when start() ended before a read barrier could confirm that this replica holds every
   * write committed before it (no quorum reachable): reads of other processes are refused until
   * one does (`retryCatchUp`). A node restarted alone answered remote and HTTP reads without the
   * acknowledged writes its own log held (found from outside).
   */
  private behindSinceStart = false;
  /** The SQL group's write loop (sqlWriteLoop). */
  private readonly sqlProposals: ProposeRetry<{ index: number; result: CommandResult }, Uint8Array>;
  private closing: Promise<void> | null = null;
  /** The cache watchdog's timer (startCacheWatchdog), for a cache group kept in memory. */
  private cacheWatchdog: CacheWatchdog | null = null;
  /** Writes of both groups in flight, which a graceful shutdown waits for (in-flight.ts). */
  private readonly inflight = new InFlight();
  /** Backups (src/backup, handed in as a feature), once the node runs. */
  private backups: NodeBackups | null = null;
  /**
   * The groups this node is joining (ensureMembership runs): it says so when asked (`leader`), so
   * that the leader does not take it for another process with its id (checkJoiner).
   */
  private readonly joining = new Set<GroupId>();
  /** Leader: the last join handled per node (by the joining process's nonce). */
  private readonly joins = new Map<string, { nonce: string; index: Promise<LogIndex> }>();

  private constructor(
    cfg: ResolvedNodeConfig,
    options: StartOptions,
    private readonly features: NodeFeatures = {},
  ) {
    this.cfg = cfg;
    this.clock = options.clock ?? systemClock;
    this.sqlProposals = this.sqlWriteLoop();
    this.createdAtMs = this.clock.monotonicMs();
    this.onFatal = options.onFatal;
    // Quiet by default when embedded (warnings and errors only); `hiqlite serve` passes its own
    // logger at info. HQL_LOG_LEVEL overrides the default; a `logger` option replaces it.
    this.log = (options.logger ?? pino({ level: logLevelFromEnv('warn') })).child({
      node: cfg.nodeId,
    });
    this.peerClocks = new PeerClocks({
      clock: this.clock,
      log: this.log,
      intervalMs: cfg.clockProbeIntervalMs,
      peers: cfg.nodes.filter((n) => n.id !== cfg.nodeId).map((n) => n.id),
      askWallMs: (peer, timeoutMs) =>
        this.request(peer, { op: 'ping' }, timeoutMs).then((r) => (r.ok ? r.value : null)),
    });
    // Only read once the SQL group is open (writes need it).
    this.sqlLogClock = new LogClock(this.clusterClock, () => this.sm.clockMs());
    this.sessions = new SessionPool(
      `n${cfg.nodeId}-${randomBytes(8).toString('hex')}`,
      cfg.writesInflightMax,
    );
    this.writesTotal = new Counter({
      name: 'hiqlite_writes_total',
      help: 'Writes proposed through this node, by outcome',
      labelNames: ['outcome'],
      registers: [this.metricsRegistry],
    });
    this.registerGauges();
    registerCacheMetrics(this.metricsRegistry, {
      cache: () => (this.cache?.running === true ? this.cache.metrics() : null),
      raft: () => {
        if (this.cache?.running !== true) return null;
        const s = this.cache.group.status();
        const appliedIndex = this.cache.group.applied();
        return { term: s.term, commitIndex: s.commitIndex, appliedIndex, isLeader: s.role === 'leader' };
      },
    });
    this.history = cfg.dashboard.passwordHash === null ? null : new MetricsHistory();
  }

  /** The clock log time follows: this node's monotonic clock, and the cluster's wall clock. */
  private get clusterClock(): LogClockSource {
    return {
      monotonicMs: () => this.clock.monotonicMs(),
      wallMs: (tieBreak) => this.peerClocks.wallMs(tieBreak),
    };
  }

  /** Starts the node; resolves once it is a member of the cluster. */
  static async start(
    config: NodeConfig,
    options: StartOptions = {},
    features: NodeFeatures = {},
  ): Promise<HiqliteNode> {
    const node = new HiqliteNode(resolveConfig(config), options, features);
    try {
      await node.open(options.joinTimeoutMs ?? 120_000, options.signal);
      // Cancelled during its last steps (after the last wait that checks): the caller stopped
      // waiting for this node, so it is not handed out running (`hiqlite serve` would have lost the
      // SIGTERM that cancelled it and served on).
      node.throwIfStartCancelled();
    } catch (e) {
      await node.shutdown().catch(() => {});
      throw startFailure(e, node.cfg.nodeId);
    }
    return node;
  }

  // ---------------------------------------------------------------------------------------------
  // Writes and reads
  // ---------------------------------------------------------------------------------------------

  /**
   * Replicates one command and returns its own result. Retried transparently across leader
   * changes under a client session, so it is applied exactly once.
   */
  async write(command: CommandInput): Promise<{ index: number; result: CommandResult }> {
    this.checkOpen();
    this.requireSqlite(command.type);
    // SQL and its parameters may hold personal data: logged only when log_statements is on.
    if (this.cfg.logStatements) this.log.info({ command }, 'write');
    const timeoutMs =
      this.peerClocks.ready() === null
        ? this.cfg.proposalTimeoutMs
        : await this.peerClocks.waitReady(this.cfg.proposalTimeoutMs);
    const { lane, seq } = this.sessions.acquire();
    try {
      const data = prepareForProposal(command, {
        nowMs: this.sqlLogClock.stampMs(),
        seed: randomInt(0, 2 ** 32),
        session: {
          clientId: lane.clientId,
          seq,
          protectMs: sessionProtectMs(timeoutMs, this.cfg.sessionProtectMs),
        },
        recursionRowsMax: this.cfg.writeRecursionRowsMax,
        valueBytesMax: this.cfg.sqlValueBytesMax,
      });
      return await this.proposeCounted(data, timeoutMs);
    } finally {
      this.sessions.release(lane);
    }
  }

  /** proposeBytes, counted in hiqlite_writes_total by outcome (local and remote writes alike). */
  private async proposeCounted(
    data: Uint8Array,
    timeoutMs = this.cfg.proposalTimeoutMs,
  ): Promise<{ index: number; result: CommandResult }> {
    this.inflight.enter();
    try {
      const startedMs = this.clock.monotonicMs();
      const out = await this.proposeBytes(data, timeoutMs);
      this.history?.recordWrite(this.clock.monotonicMs() - startedMs);
      this.writesTotal.inc({ outcome: out.result.ok ? 'ok' : 'error' });
      return out;
    } catch (e) {
      this.writesTotal.inc({ outcome: e instanceof HiqliteError ? e.code : 'error' });
      throw e;
    } finally {
      this.inflight.leave();
    }
  }

  /** write() that throws the command's own SQL error. */
  async writeOk(
    command: CommandInput,
  ): Promise<{ index: number; result: Extract<CommandResult, { ok: true }> }> {
    const out = await this.write(command);
    if (!out.result.ok) throw errorFromInfo(out.result.error);
    return { index: out.index, result: out.result };
  }

  async query(sql: string, params: QueryParams = [], options: QueryOptions = {}): Promise<Row[]> {
    this.checkOpen();
    this.requireSqlite('query');
    // Every read of the replica (the API's, HTTP's, the dashboard's; an application gets its
    // node once started) waits for the end of start().
    this.requireStartedToRead('a query');
    const { timeoutMs, signal } = options;
    checkReadText(sql, params, 'query');
    if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0))
      throw invalidParams(`timeoutMs must be a positive number, got ${timeoutMs}`);
    if (this.cfg.logStatements)
      this.log.info({ sql, params, consistency: options.consistency ?? 'local' }, 'query');
    this.history?.recordRead();
    if (signal?.aborted === true) throw readAborted();
    const deadline = this.clock.monotonicMs() + (timeoutMs ?? this.cfg.readTimeoutMs);
    const waitMs = () => Math.max(1, Math.min(this.cfg.readTimeoutMs, deadline - this.clock.monotonicMs()));
    if (options.consistency === 'linearizable')
      await untilAborted(this.linearizableBarrier(waitMs()), signal);
    if (options.minIndex !== undefined && options.minIndex > this.group.applied())
      await untilAborted(this.untilApplied(options.minIndex, waitMs()), signal);
    // Without a limit or a signal: here, synchronously. With either, on a read thread, where the
    // statement is interrupted at its limit (the node's query_timeout_ms for a signal alone) or
    // when the signal aborts (a signal alone was ignored: the statement ran to its end).
    if (timeoutMs === undefined && signal === undefined) return this.reader.query(sql, params);
    const remaining = Math.max(
      1,
      timeoutMs === undefined ? this.cfg.queryTimeoutMs : deadline - this.clock.monotonicMs(),
    );
    return this.readPool.query(sql, params, {
      timeoutMs: remaining,
      ...(signal === undefined ? {} : { signal }),
    });
  }

  /**
   * Reads judge expiry by log time, which follows the cluster's clock: a node does not call
   * itself started (nor serve a client's cache read) before a majority's clocks answered, at most
   * clock_probe_interval_ms after it was made (peer-clocks.ts). Else a restarted node whose clock
   * is wrong answered its first reads by its own clock.
   */
  private async clusterClockKnown(): Promise<void> {
    const wait = this.peerClocks.ready();
    if (wait === null) return;
    await this.unlessStartCancelled(wait);
  }

  /** This node's wall clock minus the cluster's, in ms (peer-clocks.ts; 0 until peers answer). */
  clockOffsetMs(): number {
    return this.peerClocks.offsetMs();
  }

  isLeader(): boolean {
    return this.started && this.fatal === null && this.group.isLeader();
  }

  /**
   * A group whose membership has this node as its only voter (a one-node cluster restarting)
   * elects it at once instead of after an election timeout: no other vote can be cast, so waiting
   * only delays the first write and start()'s read barrier (1.5–3 s by default).
   */
  private campaignIfSoleVoter(g: RaftGroup): void {
    const s = g.status();
    // Not after a bootstrap's campaign (a candidate or leader already): once per start.
    if (
      s.role !== 'follower' ||
      s.membership.voters.length !== 1 ||
      s.membership.voters[0] !== this.cfg.nodeId
    )
      return;
    g.campaign();
  }

  /**
   * The last step of a start: local reads from the first moment see every write committed before
   * it. The cache group's state is rebuilt in memory from its snapshot and log, and entries
   * committed before the restart are applied again only once a leader has committed one of its own
   * term; until then a local get of a cache that was full answered null. One read barrier per
   * group (ReadIndex), within what is left of the join timeout and `proposal_timeout_ms`; a
   * cluster that cannot answer one now (it lost its quorum since) leaves the node started as
   * before, with a warning.
   */
  private async caughtUp(timeoutMs: number): Promise<void> {
    const waitMs = Math.max(1, Math.min(timeoutMs, this.cfg.proposalTimeoutMs));
    const barriers: Array<Promise<unknown>> = [this.cache.readBarrier(waitMs)];
    if (this.cfg.sqlite) barriers.push(this.linearizableBarrier(waitMs));
    const failed = (await Promise.allSettled(barriers)).find((r) => r.status === 'rejected');
    if (failed !== undefined) {
      this.log.warn(
        { err: String((failed as PromiseRejectedResult).reason) },
        "started before catching up with the cluster: the application's local reads may miss recent writes for a while; other processes' reads are refused until it has caught up",
      );
      this.behindSinceStart = true;
      void this.retryCatchUp();
    }
  }

  /** Read barriers again until one succeeds (then reads of other processes are served) or the node closes. */
  private async retryCatchUp(): Promise<void> {
    while (this.behindSinceStart && this.closing === null && this.fatal === null) {
      const startedMs = this.clock.monotonicMs();
      const barriers: Array<Promise<unknown>> = [this.cache.readBarrier(this.cfg.proposalTimeoutMs)];
      if (this.cfg.sqlite) barriers.push(this.linearizableBarrier(this.cfg.proposalTimeoutMs));
      const results = await Promise.allSettled(barriers);
      if (results.every((r) => r.status === 'fulfilled')) {
        this.behindSinceStart = false;
        this.log.info('caught up with the cluster: serving reads of other processes');
        return;
      }
      // At most one round per heartbeat interval: a barrier that fails at once (no leader) does
      // not spin.
      const waitMs = this.cfg.heartbeatIntervalMs - (this.clock.monotonicMs() - startedMs);
      if (waitMs > 0)
        await new Promise((r) => this.clock.setTimer(() => r(undefined), waitMs, { keepAlive: false }));
    }
  }

  /**
   * Waits until a read here would be linearizable (ReadIndex), retrying across leader changes;
   * resolves with the read index (applied here).
   */
  readBarrier(timeoutMs: number): Promise<number> {
    this.checkOpen();
    this.requireSqlite('a linearizable SQL read');
    return this.linearizableBarrier(timeoutMs);
  }

  /** Until this node applied `minIndex` (read-your-writes); one beyond the log is refused (read-your-writes.ts). */
  private untilApplied(minIndex: number, timeoutMs: number): Promise<void> {
    return untilAppliedIndex(minIndex, {
      applied: this.group.waitForApplied(minIndex as LogIndex, { timeoutMs }).then(() => {}),
      readIndex: () => this.linearizableBarrier(timeoutMs),
      probeAfterMs: this.cfg.heartbeatIntervalMs,
      clock: this.clock,
    });
  }

  /**
   * The cache group (caches, counters, listen/notify, locks): the node-side operations the
   * client API calls (src/node/cache-group.ts).
   */
  get caches(): CacheGroup {
    this.checkOpen();
    return this.cache;
  }

  /**
   * The applied index of the SQL state machine (a worker-mode client mirrors it:
   * client/node-worker.ts); null on a cache-only node.
   */
  get appliedWatcher(): AppliedIndexWatcher | null {
    return this.cfg.sqlite ? this.sm.worker.applied : null;
  }

  /** Calls `listener` when this node's role or known leader changes; returns its removal. */
  onLeaderChange(listener: (s: { role: string; leaderId: number | null }) => void): () => void {
    // A cache-only node's group may be founded anew (its Raft group replaced): the cache group
    // keeps its watchers across that.
    return this.cfg.sqlite ? this.group.onLeaderChange(listener) : this.cache.onLeaderChange(listener);
  }

  metrics(): NodeMetrics {
    const cache = this.cache.running ? this.groupMetrics(this.cache.group) : null;
    return {
      nodeId: this.cfg.nodeId,
      sqlite: this.cfg.sqlite,
      clockOffsetMs: Math.round(this.peerClocks.offsetMs()),
      ...this.groupMetrics(this.group),
      cache: {
        ...(cache ?? {
          role: 'learner',
          term: 0,
          leaderId: null,
          commitIndex: 0,
          appliedIndex: 0,
          lastLogIndex: 0,
          voters: [],
          learners: [],
        }),
        ...this.cache.metrics(),
      },
    };
  }

  private groupMetrics(g: RaftGroup): GroupMetrics {
    const s = g.status();
    const learner = s.membership.learners.includes(this.cfg.nodeId);
    // A stopped node leads nothing (knownLeader), whatever its frozen view last saw.
    const leads = s.role === 'leader' && this.fatal === null;
    return {
      role: leads
        ? 'leader'
        : learner
          ? 'learner'
          : s.role === 'follower' || s.role === 'leader'
            ? 'follower'
            : 'candidate',
      term: s.term,
      leaderId: this.knownLeader(s),
      commitIndex: s.commitIndex,
      appliedIndex: g.applied(),
      lastLogIndex: s.lastIndex,
      voters: [...s.membership.voters],
      learners: [...s.membership.learners],
    };
  }

  /** Resolves once this node is a member and knows a leader. */
  async waitUntilHealthy(timeoutMs: number): Promise<void> {
    await this.waitFor('a healthy cluster', timeoutMs, () => this.healthNow().ok);
  }

  /** Graceful shutdown: a leader hands over leadership first, then everything closes. */
  shutdown(): Promise<void> {
    if (this.closing === null) this.closing = this.doShutdown();
    return this.closing;
  }

  // ---------------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------------

  private async open(joinTimeoutMs: number, signal?: AbortSignal): Promise<void> {
    this.startSignal = signal;
    if (!this.cfg.sqlite) return this.openCacheOnly(joinTimeoutMs);
    const cfg = sqlConfig(this.cfg, 'the SQL group');
    this.lock = await lockDataDir(cfg.dataDir);
    await claimNodeId(cfg.dataDir, cfg.nodeId);
    if (this.lock.uncleanShutdown)
      this.log.warn({ dataDir: cfg.dataDir }, 'the previous run did not shut down cleanly; recovering');
    // HQL_BACKUP_RESTORE; a restore pending on a node other than 1 waits for node 1's answer.
    await this.features.beforeOpen?.(cfg, this.log, {
      timeoutMs: joinTimeoutMs,
      ...(signal === undefined ? {} : { signal }),
    });
    await mkdir(cfg.paths.dbDir, { recursive: true, mode: PRIVATE_DIR_MODE });
    this.sm = await SqlGroupStateMachine.open(cfg.paths.dbDir, {
      fileName: cfg.filenameDb,
      heap: threadHeapLimits(cfg),
      checkAtStart: cfg.checkDatabaseAtStart,
      sessionsMax: cfg.sqlSessionsMax,
    });
    const damaged = this.sm.worker.damaged;
    if (damaged !== null) {
      this.log.error(
        { file: damaged.path, reason: damaged.reason, movedTo: damaged.movedTo },
        `the database ${damaged.path} is damaged (${damaged.reason}): moved aside to ${damaged.movedTo}; the node rebuilds it from its snapshot and log, or rejoins to get it from the leader`,
      );
    }
    this.clusterId = await readClusterId(cfg.dataDir);
    // Keep the local state, or discard it and rejoin like a new node (the leader re-adds it);
    // which membership it knows (start-decision.ts; the simulator runs the same decision).
    const {
      store: logStore,
      snapshots,
      start,
    } = await openGroupStorage({
      group: 'sql',
      logsDir: cfg.paths.logsDir,
      snapshotsDir: cfg.paths.snapshotsDir,
      entryBytesMax: cfg.entryBytesMax,
      log: this.log,
      appliedIndex: this.sm.appliedIndex(),
      hasClusterId: this.clusterId !== null,
      othersConfigured: cfg.nodes.length > 1,
      resetStateMachine: () => this.sm.reset(),
    });
    this.sqlLog = logStore;
    this.cache = await CacheGroup.open(this.cacheGroupDeps(), this.clusterId !== null);
    this.reader = SqlReader.open(cfg.paths.dbFile, { applied: this.sm.worker.applied });
    this.readPool = await ReadPool.start({
      dbPath: cfg.paths.dbFile,
      threads: cfg.readThreads,
      threadIdleMs: cfg.readThreadIdleMs,
      heap: threadHeapLimits(cfg),
      queueMax: cfg.readQueueMax,
      rowsMax: cfg.queryRowsMax,
      resultBytesMax: cfg.queryResultBytesMax,
      valueBytesMax: cfg.sqlValueBytesMax,
      appliedIndex: () => this.sm.worker.applied.current,
    });
    interruptAllOnExit();
    const fresh = start.fresh;
    await this.openPorts(snapshots);

    const deadline = this.clock.monotonicMs() + joinTimeoutMs;
    let bootstrap = false;
    if (start.mayBootstrap && cfg.nodeId === 1) bootstrap = await this.provenNoCluster(deadline);
    if (bootstrap) {
      this.clusterId = newClusterId();
      await writeClusterId(cfg.dataDir, this.clusterId);
    }
    const initialMembership = fresh && !bootstrap ? EMPTY_MEMBERSHIP : GENESIS_MEMBERSHIP;
    // Joining (new, or after losing its state, or a join a restart interrupted): no votes and no
    // elections until it has applied the entry that added it (joining-marker.ts).
    const join = await GroupJoin.start('sql', cfg.dataDir, joinKind(fresh, bootstrap));
    this.group = await RaftGroup.open(
      groupRaftOptions(cfg, 'sql', {
        initialMembership,
        logStore,
        snapshots,
        stateMachine: this.sm,
        transport: this.groupTransport(),
        clock: this.clock,
        logger: this.log,
        onFatal: (e) => this.onGroupFatal(e),
        abstain: () => join.abstains(this.group?.applied() ?? (0 as LogIndex)),
      }),
    );
    this.history?.start(this.clock, () => this.group.status().commitIndex - this.group.applied());
    this.group.onLeaderChange((s) => {
      // Its stamps become log time: its clock must be the cluster's (peer-clocks.ts, refresh).
      if (s.role === 'leader') this.peerClocks.refresh();
      this.log.info({ role: s.role, leaderId: s.leaderId }, 'raft role changed');
    });
    if (bootstrap) {
      this.log.info({ clusterId: this.clusterId }, 'no cluster exists: node 1 bootstraps a new one');
      this.group.campaign();
    }
    // The cache group has the same members. It is founded with the cluster, or, when no node
    // holds it any more (every node kept it in memory and restarted, or nodes of an earlier
    // version), by node 1 with the same proof as a cluster: a majority answer they have none.
    const cacheBootstrap =
      bootstrap || (this.cache.fresh && !fresh && cfg.nodeId === 1 && (await this.provenNoGroup(deadline)));
    await this.cache.start(
      this.cache.fresh && !cacheBootstrap ? EMPTY_MEMBERSHIP : GENESIS_MEMBERSHIP,
      this.groupTransport(),
      joinKind(this.cache.fresh, cacheBootstrap),
    );
    if (cacheBootstrap) {
      if (!bootstrap) {
        this.log.info('no node holds the cache group: node 1 founds it again (its data is lost)');
        this.api?.tellClients({ event: API_EVENT_CACHE_REFOUNDED });
      }
      this.cache.group.campaign();
    }
    this.campaignIfSoleVoter(this.group);
    this.campaignIfSoleVoter(this.cache.group);
    const remainingMs = () => Math.max(0, deadline - this.clock.monotonicMs());
    await this.unlessStartCancelled(
      Promise.all([
        this.ensureMembership(this.group, 'sql', join, remainingMs()),
        this.ensureMembership(
          this.cache.group,
          'cache',
          this.cache.join,
          remainingMs(),
          this.cacheMayFound(),
        ),
      ]),
    );
    await this.clusterClockKnown();
    await this.unlessStartCancelled(this.caughtUp(remainingMs()));
    this.started = true;
    this.startCacheWatchdog();
    // Clients that connected while this node knew no cluster (or another) could not check it:
    // they connect again and do (src/client/cluster-link.ts keeps to one cluster).
    this.api?.closeClientsOfOtherClusters();
    this.backups =
      (await this.features.backups?.({
        cfg,
        log: this.log,
        clock: this.clock,
        clusterId: () => this.clusterId,
        isLeader: () => this.isLeader(),
      })) ?? null;
    this.log.info({ api: cfg.self.addrApi, raft: cfg.self.addrRaft }, 'node started');
  }

  /**
   * The Raft transport and the API port (both groups; `sqlSnapshots` is null on a cache-only
   * node). The API port is up while the node starts: peers ask it whether a cluster exists.
   */
  private async openPorts(sqlSnapshots: SnapshotStore | null): Promise<void> {
    const { cfg } = this;
    this.transport = new RaftTransport({
      nodeId: cfg.nodeId,
      listen: cfg.listenRaft,
      peers: new Map(cfg.nodes.filter((n) => n.id !== cfg.nodeId).map((n) => [n.id, n.raft])),
      secret: cfg.secretRaft,
      clusterId: () => this.clusterId,
      ...(cfg.tls.raft === null ? {} : { tls: cfg.tls.raft }),
      limits: {
        frameBytesMax: cfg.frameBytesMax,
        inboundConnectionsMax: cfg.raftConnectionsMax,
        unauthenticatedConnectionsMax: cfg.unauthenticatedConnectionsMax,
        handshakeTimeoutMs: cfg.handshakeTimeoutMs,
      },
      // A cache-only node has no SQL group: what arrives for one is dropped (Raft resends, and a
      // node of the other sqlite setting is refused when it joins).
      onMessage: (g, m) => (g === 'cache' ? this.cache.receive(m) : this.sqlGroup()?.receive(m)),
      onUnreachable: (id) => {
        this.sqlGroup()?.reportUnreachable(id);
        this.cache.reportUnreachable(id);
      },
      onSnapshot: (g, _from, meta, chunks) => {
        if (g === 'cache') return this.cache.receiveSnapshot(meta, chunks);
        if (sqlSnapshots === null) throw sqliteDisabledError(cfg.nodeId, 'a SQL snapshot');
        return this.receiveSnapshot(sqlSnapshots, meta, chunks);
      },
      logger: this.log,
    });
    await this.transport.start();
    this.api = new ApiServer({
      host: cfg.listenApi.host,
      port: cfg.listenApi.port,
      nodeId: cfg.nodeId,
      secret: cfg.secretApi,
      nodeSecret: cfg.secretRaft,
      clusterId: () => this.clusterId,
      nodeIds: cfg.nodes.map((n) => n.id),
      ...(cfg.tls.api === null ? {} : { tls: cfg.tls.api }),
      frameBytesMax: cfg.frameBytesMax,
      jsonBodyBytesMax: cfg.entryBytesMax,
      connectionsMax: cfg.apiConnectionsMax,
      requestsInflightMax: cfg.apiRequestsInflightMax,
      sendBufferBytesMax: cfg.apiSendBufferBytesMax,
      sendBufferTotalBytesMax: cfg.apiSendBufferTotalBytesMax,
      receiveBufferTotalBytesMax: cfg.apiReceiveBufferTotalBytesMax,
      idleTimeoutMs: cfg.apiIdleTimeoutMs,
      wallMs: () => this.clock.wallMs(),
      unauthenticatedConnectionsMax: cfg.unauthenticatedConnectionsMax,
      handshakeTimeoutMs: cfg.handshakeTimeoutMs,
      bodyTimeoutMs: cfg.httpBodyTimeoutMs,
      lingerBytesMax: cfg.httpLingerBytesMax,
      jsonDepthMax: cfg.httpJsonDepthMax,
      jsonValuesMax: cfg.httpJsonValuesMax,
      handler: {
        // What a node says of itself (its limits, the leader it knows) it says while stopped too.
        handle: (req, from, signal) =>
          req.op === 'limits' || req.op === 'leader'
            ? this.handleApi(req, from, signal)
            : this.serving(() => this.handleApi(req, from, signal)),
        health: () => this.health(),
        ready: () => this.readiness(),
        metricsText: () => this.metricsRegistry.metrics(),
        json: (route, body, signal) => this.serving(() => this.handleJson(route, body, signal)),
        listen: (req) => this.servingListen(() => nodeListen(this.cacheOf(), req.channel, req.afterSeq)),
        cache: this.servingCacheOps(nodeCacheHttpOps(this.cacheOf())),
      },
      ...this.dashboardRoutes(),
      logger: this.log,
    });
    await this.api.start();
    this.peerClocks.start();
  }

  /** What the cache group needs of the node: forwarding to the leader, errors, fatal failures. */
  private cacheGroupDeps(): CacheGroupDeps {
    return {
      cfg: this.cfg,
      clock: this.clock,
      log: this.log,
      clusterWallMs: (tieBreak) => this.peerClocks.wallMs(tieBreak),
      clusterClock: this.peerClocks,
      forward: (leader, data, timeoutMs) => this.forwardPropose('cache', leader, data, timeoutMs),
      noLeaderError: (m) => this.noLeaderError(m),
      onFatal: (e) => this.onGroupFatal(e),
      inflight: this.inflight,
      // Remote clients connected here learn it at once (and at connect, in `limits`): a lock
      // they hold from a group founded before is gone (a node restarted into a group founded
      // anew tells them as soon as it applied that group's state).
      onTokenFloor: (floor) => this.api?.tellClients({ event: API_EVENT_CACHE_TOKEN_FLOOR, floor }),
    };
  }

  /**
   * Start of a cache-only node (`sqlite = false`, sqlite-setting.ts): the cache group is the
   * node's only group, and takes the SQL group's place in formation (bootstrap proof, cluster
   * id, join and promotion). With `cache_storage_disk` it keeps `cluster_id` and the group's log
   * under `data_dir`, and restarts as a SQL node does. In memory it has no data directory at
   * all: every start is that of a wiped node (no cluster id, no membership), so it joins as a
   * new learner and never votes from state it forgot; node 1 founds a cluster only with the
   * proof that none exists (a majority of the nodes answer that they have none). A cluster kept
   * entirely in memory is therefore founded again, empty, once every node restarted, and never
   * while a majority still holds it.
   */
  private async openCacheOnly(joinTimeoutMs: number): Promise<void> {
    const { cfg } = this;
    const disk = diskConfig(cfg);
    if (disk !== null) {
      this.lock = await lockDataDir(disk.dataDir);
      await claimNodeId(disk.dataDir, cfg.nodeId);
      await refuseSqlState(disk.paths);
      this.clusterId = await readClusterId(disk.dataDir);
    }
    this.cache = await CacheGroup.open(this.cacheGroupDeps(), this.clusterId !== null);
    await this.openPorts(null);
    const deadline = this.clock.monotonicMs() + joinTimeoutMs;
    const fresh = this.cache.fresh;
    // As for the SQL group (start-decision.ts): any trace of a past membership forbids it.
    const bootstrap = this.cache.mayBootstrap && cfg.nodeId === 1 && (await this.provenNoCluster(deadline));
    if (bootstrap) {
      this.clusterId = newClusterId();
      if (disk !== null) await writeClusterId(disk.dataDir, this.clusterId);
    }
    await this.cache.start(
      fresh && !bootstrap ? EMPTY_MEMBERSHIP : GENESIS_MEMBERSHIP,
      this.groupTransport(),
      joinKind(fresh, bootstrap),
    );
    this.group = this.cache.group;
    this.history?.start(this.clock, () => this.group.status().commitIndex - this.group.applied());
    if (bootstrap) {
      this.log.info(
        { clusterId: this.clusterId },
        'no cluster exists: node 1 bootstraps a new cache-only one',
      );
      this.group.campaign();
    }
    this.campaignIfSoleVoter(this.group);
    await this.unlessStartCancelled(
      this.ensureMembership(
        this.group,
        'cache',
        this.cache.join,
        Math.max(0, deadline - this.clock.monotonicMs()),
        this.cacheMayFound(),
      ),
    );
    // Founded meanwhile (cacheMayFound): the group's Raft group was opened anew.
    this.group = this.cache.group;
    await this.clusterClockKnown();
    await this.unlessStartCancelled(this.caughtUp(Math.max(0, deadline - this.clock.monotonicMs())));
    this.started = true;
    this.startCacheWatchdog();
    // Clients that connected while this node knew no cluster (or another) could not check it:
    // they connect again and do (src/client/cluster-link.ts keeps to one cluster).
    this.api?.closeClientsOfOtherClusters();
    this.log.info(
      { api: cfg.self.addrApi, raft: cfg.self.addrRaft, sqlite: false, dataDir: cfg.dataDir },
      'node started (cache-only)',
    );
  }

  /**
   * Takes a backup (src/backup) on the leader: here when this node leads, else forwarded to it.
   * A request while one runs gets that one's result.
   */
  async backup(): Promise<BackupInfo> {
    this.checkOpen();
    this.requireSqlite('backup');
    for (let attempt = 0; ; attempt++) {
      const leaderId = this.group.status().leaderId;
      if (leaderId === this.cfg.nodeId) return this.backupHere();
      if (leaderId === null || attempt >= 3) throw this.noLeaderError();
      const res = await this.request(leaderId, { op: 'backup' }, BACKUP_TIMEOUT_MS);
      if (res.ok) return res.value as BackupInfo;
      // The leader changed meanwhile: ask the new one.
      if (res.error.code !== 'HQL_NOT_LEADER') throw remoteError(res.error);
    }
  }

  private backupHere(): Promise<BackupInfo> {
    return this.backupService().backup();
  }

  private backupService(): NodeBackups {
    if (this.backups === null)
      throw new HiqliteError('HQL_UNAVAILABLE', 'backups are not available on this node', {
        retryable: false,
      });
    return this.backups;
  }

  /**
   * The leader's local backups (where the backups it takes are written), for this node's
   * dashboard; null when this node leads (its own folder is that one).
   */
  private async leaderBackups(signal: AbortSignal): Promise<LeaderBackups | null> {
    const leaderId = this.group.status().leaderId;
    if (leaderId === this.cfg.nodeId) return null;
    if (leaderId === null) throw this.noLeaderError();
    const res = await this.request(leaderId, { op: 'backupList' }, BACKUP_LIST_TIMEOUT_MS);
    if (!res.ok) throw remoteError(res.error);
    signal.throwIfAborted();
    return { nodeId: leaderId, backups: res.value as BackupListing[] };
  }

  /**
   * Node 1 without any trace of membership bootstraps only with proof that no cluster exists
   * (bootstrap-proof.ts, which the simulator runs too): a majority of the configured nodes
   * answer over the API port that they know none.
   */
  private provenNoCluster(deadline: number): Promise<boolean> {
    return proveNoCluster(
      {
        nodeId: this.cfg.nodeId,
        nodes: this.cfg.nodes.map((n) => n.id),
        sqlite: this.cfg.sqlite,
        ask: async (peer, timeoutMs) => {
          const r = await this.request(peer, { op: 'leader' }, timeoutMs);
          if (!r.ok) throw remoteError(r.error);
          return r.value as ClusterAnswer;
        },
        mismatch: (peer, theirs) => sqliteMismatchError(this.cfg, peer, theirs),
        nowMs: () => this.clock.monotonicMs(),
        sleep,
        retryMs: Math.min(1000, this.cfg.electionTimeoutMs / 2),
        checkCancelled: () => this.throwIfStartCancelled(),
        log: this.log,
      },
      deadline,
    );
  }

  /** Node 1's proof that no node holds the cache group any more (cache-refounding.ts). */
  private provenNoGroup(deadline: number): Promise<boolean> {
    return provenNoCacheGroup(this.cacheAsking(), {
      deadline,
      clock: this.clock,
      sleep,
      retryMs: Math.min(1000, this.cfg.electionTimeoutMs / 2),
      checkCancelled: () => this.throwIfStartCancelled(),
    });
  }

  /** How this node asks the others about their cache group (over the API port, 2 s each). */
  private cacheAsking(): CacheAsking {
    return {
      nodeId: this.cfg.nodeId,
      nodes: this.cfg.nodes.map((n) => n.id),
      ask: async (id) => {
        try {
          const r = await this.request(id, { op: 'leader', group: 'cache' }, 2000);
          return r.ok ? (r.value as CacheLeaderAnswer) : null;
        } catch {
          return null;
        }
      },
    };
  }

  /**
   * Joins a group (as a learner) and gets promoted (unless learnerOnly), retrying until done
   * (join-procedure.ts, which the simulator runs too). `join` is the group's join in progress
   * (joining-marker.ts): ended once the node is a member.
   */
  private async ensureMembership(
    g: RaftGroup,
    group: GroupId,
    join: GroupJoin,
    timeoutMs: number,
    mayFound?: () => Promise<boolean>,
  ): Promise<void> {
    const me = this.cfg.nodeId;
    const nonce = randomBytes(12).toString('hex');
    this.joining.add(group);
    try {
      await this.joinGroupOnce(g, group, join, timeoutMs, me, nonce, mayFound);
    } finally {
      this.joining.delete(group);
    }
  }

  private async joinGroupOnce(
    g: RaftGroup,
    group: GroupId,
    join: GroupJoin,
    timeoutMs: number,
    me: NodeId,
    nonce: string,
    mayFound: (() => Promise<boolean>) | undefined,
  ): Promise<void> {
    // A cache group kept in memory may be dropped and joined anew while this join runs
    // (cacheLeftBehind): the procedure then reads the group's Raft group and join record as they
    // are now, not those it started with.
    const inMemory = group === 'cache' && this.cache.inMemory;
    const cache = () => this.cache;
    const raft: JoiningGroupView = inMemory
      ? { applied: () => cache().group.applied(), status: () => cache().group.status() }
      : g;
    const record: JoinRecord = inMemory
      ? {
          get state() {
            return cache().join.state;
          },
          added: (index) => cache().join.added(index),
          complete: () => cache().join.complete(),
        }
      : join;
    // A join of the group founded anew is a new join: a new nonce (the leader of the group
    // before remembered the old one, and answered its own group's index).
    let currentNonce = nonce;
    const dropForNewGroup = inMemory ? this.cacheLeftBehind() : undefined;
    const newNonceIf = (dropped: boolean) => {
      if (dropped) currentNonce = randomBytes(12).toString('hex');
      return dropped;
    };
    const leftBehind =
      dropForNewGroup === undefined
        ? undefined
        : async (leader: NodeId) => {
            const behind = await dropForNewGroup(leader);
            return behind === null ? null : newNonceIf(behind);
          };
    const groupDead = inMemory ? async () => newNonceIf(await this.cacheGroupDead()) : undefined;
    await joinGroup(
      {
        nodeId: me,
        group,
        stayLearner: this.cfg.learnerOnly,
        raft,
        join: record,
        ...(leftBehind === undefined ? {} : { leftBehind }),
        ...(groupDead === undefined ? {} : { groupDead }),
        request: async (leader, req, requestTimeoutMs) => {
          if (req.op === 'promote') {
            const r = await this.request(leader, { op: 'promote', nodeId: me, group }, requestTimeoutMs);
            if (!r.ok) throw remoteError(r.error);
            return null;
          }
          const r = await this.request(
            leader,
            { op: 'join', nodeId: me, nonce: currentNonce, group, sqlite: this.cfg.sqlite },
            requestTimeoutMs,
          );
          if (!r.ok) throw remoteError(r.error);
          const v = r.value as { index: number; clusterId?: string | null; sqlite?: boolean };
          if (saidSqlite(v.sqlite) !== this.cfg.sqlite)
            throw sqliteMismatchError(this.cfg, leader, saidSqlite(v.sqlite));
          await this.adoptClusterId(v.clusterId ?? null, leader);
          return v.index as LogIndex;
        },
        findLeader: () => this.findLeader(group),
        nowMs: () => this.clock.monotonicMs(),
        sleep,
        checkCancelled: () => {
          this.throwIfStartCancelled();
          if (this.closing !== null)
            throw new HiqliteError('HQL_CLOSED', 'the node is shut down', { retryable: false });
        },
        ...(mayFound === undefined ? {} : { mayFound }),
      },
      timeoutMs,
    );
  }

  // ---------------------------------------------------------------------------------------------
  // A cache group kept in memory that a majority of its voters forgot
  // ---------------------------------------------------------------------------------------------

  /**
   * JoinProcedure.leftBehind for a cache group kept in memory: this node waits to join a group
   * that hears from no leader any more while `leader` leads one that lists this node neither as
   * voter nor as learner — a group founded anew while this node was being (re-)added to the one
   * before (found by the fault suite: such a node waited for that group's entry until its start
   * timed out, 120 s, and exited). It drops its state (what a restart of its process would do:
   * always safe for a node not yet a member) and joins that group.
   */
  private cacheLeftBehind(): (leader: NodeId) => Promise<boolean | null> {
    return async (leader) => {
      if (this.closing !== null) return false;
      const a = await this.cacheAsking().ask(leader);
      if (!leadsSaying(a, leader)) return null;
      if (!leftBehindBy(a, leader, this.cfg.nodeId)) return false;
      this.log.warn(
        { leader, voters: a.voters, learners: a.learners },
        `the cache group this node was joining hears from no leader, and node ${leader} leads one that does not list it (founded anew meanwhile): this node drops its cache state and joins that one`,
      );
      // Its clients are not told: a node the leader of a live group removed to add it back (a
      // restart) is in the same state a moment, and their locks live.
      await this.dropCacheState('join', { tellClients: false });
      return true;
    };
  }

  /**
   * JoinProcedure.groupDead for a cache group kept in memory: this joining node holds a copy of
   * a group that hears from no leader, and most of that group's voters are gone from it (they
   * restarted without their state: votersGoneFromCacheGroup). It drops its copy — it never voted
   * with it — and joins the group node 1 founds anew.
   */
  private async cacheGroupDead(): Promise<boolean> {
    if (this.closing !== null) return false;
    const voters = this.cache.group.status().membership.voters;
    if (voters.length === 0) return false;
    const { gone, dead } = await votersGoneFromCacheGroup(this.cacheAsking(), voters, {
      selfAbstains: abstains(this.cache.join.state, this.cache.group.applied()),
    });
    if (!dead || this.closing !== null) return false;
    this.log.warn(
      { voters, gone },
      `the cache group this node was joining can elect no leader again (of its voters ${voters.join(', ')}, nodes ${gone.join(', ')} lost it): this node drops its copy and joins the group founded anew`,
    );
    await this.dropCacheState('join', { tellClients: false });
    return true;
  }

  /**
   * Node 1's founding of a cache group kept in memory (`cache_storage_disk = false`) while it
   * waits to join it and no leader answers: once no node holds the group any more (the same proof
   * as at start: provenNoGroup, or for a cache-only node provenNoCluster, whose cluster is the
   * group), node 1 founds it anew, empty. Before, node 1 founded it only at its own start: when
   * the last node holding the group dropped it after node 1 had started (the cache watchdog
   * below), nobody founded it and every node waited to join for ever.
   */
  private cacheMayFound(): (() => Promise<boolean>) | undefined {
    if (this.cfg.nodeId !== 1 || !this.cache.inMemory) return undefined;
    return async () => {
      if (this.closing !== null) return false;
      const now = this.clock.monotonicMs();
      if (this.cfg.sqlite) {
        if (!(await this.provenNoGroup(now))) return false;
      } else {
        if (this.clusterId !== null) return false;
        const proven = await this.provenNoCluster(now).catch((e: unknown) => {
          if (e instanceof HiqliteError && e.code === 'HQL_UNAVAILABLE') return false;
          throw e;
        });
        if (!proven) return false;
        this.clusterId = newClusterId();
      }
      // Every lock granted before is gone: clients that held one through this node learn it now.
      await this.dropCacheState('found', { tellClients: true });
      this.log.warn(
        { clusterId: this.clusterId },
        'no node holds the cache group any more (every node lost its in-memory state): node 1 founds it anew (its data is lost)',
      );
      this.cache.group.campaign();
      if (!this.cfg.sqlite) this.api?.closeClientsOfOtherClusters();
      return true;
    };
  }

  /**
   * The watchdog of a cache group kept in memory (cache-refounding.ts CacheWatchdog): a voter
   * whose group can elect no leader again (most of its voters restarted without their state)
   * drops its state and joins the group node 1 founds anew.
   */
  private startCacheWatchdog(): void {
    if (!this.cache.inMemory || this.cacheWatchdog !== null) return;
    this.cacheWatchdog = new CacheWatchdog({
      asking: this.cacheAsking(),
      clock: this.clock,
      electionTimeoutMs: this.cfg.electionTimeoutMs,
      watched: () => {
        const c = this.cache;
        if (!c.running || this.joining.has('cache') || this.fatal !== null || this.closing !== null)
          return null;
        const s = c.group.status();
        return {
          leaderId: s.leaderId,
          voters: s.membership.voters,
          commitIndex: s.commitIndex,
          lastIndex: s.lastIndex,
        };
      },
      onDead: async ({ voters, gone }) => {
        this.log.warn(
          { voters, gone },
          `the cache group can elect no leader again: of its voters ${voters.join(', ')}, nodes ${gone.join(', ')} lost their in-memory state or left it (they restarted), too many for a majority; this node drops its cache state too (its data is lost) and joins the group founded anew by node 1`,
        );
        await this.refoundCacheGroupHere();
      },
      log: this.log,
    });
    this.cacheWatchdog.start();
  }

  /**
   * The one way this node drops its in-memory cache state: the cache group starts again here,
   * either to be joined (`join`: empty membership, a cache-only node forgets its cluster, whose
   * id the leader that takes it in tells) or founded by this node (`found`: node 1, whose caller
   * chose the new cluster id); `tellClients` sends API_EVENT_CACHE_REFOUNDED on every remote
   * client connection, whose locks granted before are gone.
   */
  private async dropCacheState(how: 'join' | 'found', o: { tellClients: boolean }): Promise<void> {
    if (!this.cfg.sqlite && how === 'join') this.clusterId = null;
    const founding = how === 'found';
    await this.cache.refound(
      founding ? GENESIS_MEMBERSHIP : EMPTY_MEMBERSHIP,
      this.groupTransport(),
      joinKind(true, founding),
    );
    if (o.tellClients) this.api?.tellClients({ event: API_EVENT_CACHE_REFOUNDED });
    if (!this.cfg.sqlite) this.group = this.cache.group;
    // The joins this node answered as the leader of the group before are not joins of this one:
    // a node that repeated its request (same nonce) was answered the old group's index, and
    // waited for it until its start timed out (fault suite, --cache-loss, seed 15001 kill-leader).
    for (const key of [...this.joins.keys()]) if (key.startsWith('cache:')) this.joins.delete(key);
  }

  /** Drops this node's cache state and joins the group anew (node 1 founds it: cacheMayFound). */
  private async refoundCacheGroupHere(): Promise<void> {
    // Remote clients holding locks through this node learn now that those locks are gone (their
    // next renewal, a third of the lease later, would tell them while another holder may have it).
    await this.dropCacheState('join', { tellClients: true });
    // Until it is a member again or the node shuts down (each attempt bounded).
    for (let attempt = 0; this.closing === null; attempt++) {
      try {
        await this.ensureMembership(
          this.cache.group,
          'cache',
          this.cache.join,
          CACHE_REJOIN_ATTEMPT_MS,
          this.cacheMayFound(),
        );
        if (!this.cfg.sqlite) this.api?.closeClientsOfOtherClusters();
        this.log.info('the cache group was founded anew: this node is a member of it');
        return;
      } catch (e) {
        if (this.closing !== null) return;
        if (attempt % 10 === 0)
          this.log.warn({ err: (e as Error).message }, 'joining the cache group founded anew: trying again');
        await sleep(1000);
      }
    }
  }

  /**
   * A joining node learns its cluster's id from the leader that accepted it. A node that already
   * has one and meets another refuses to go on: it belongs to a different cluster.
   */
  private async adoptClusterId(id: string | null, leader: NodeId): Promise<void> {
    if (id === null || id === this.clusterId) return;
    if (!isClusterId(id))
      throw new HiqliteError('HQL_PROTOCOL', `node ${leader} sent a malformed cluster id`, {
        retryable: false,
      });
    if (this.clusterId !== null) {
      const message = `node ${leader} leads cluster ${id}, but this node belongs to cluster ${this.clusterId}: check the nodes list, or remove this node's data directory to make it a new node of cluster ${id}`;
      this.log.error({ clusterId: this.clusterId, peerClusterId: id, peer: leader }, message);
      throw new HiqliteError('HQL_CLUSTER_MISMATCH', message, { retryable: false });
    }
    this.clusterId = id;
    // In memory on a cache-only node without a data directory: it is a new node at every start.
    const dataDir = this.cfg.dataDir;
    if (dataDir !== null) await writeClusterId(dataDir, id);
    this.log.info({ clusterId: id }, 'joined cluster');
  }

  private async findLeader(group: GroupId): Promise<NodeId | null> {
    for (const n of this.cfg.nodes) {
      if (n.id === this.cfg.nodeId) continue;
      try {
        const r = await this.request(n.id, { op: 'leader', group }, 2000);
        if (r.ok) {
          const v = r.value as { leaderId: number | null };
          if (v.leaderId !== null) return v.leaderId as NodeId;
        }
      } catch {
        // try the next one
      }
    }
    return null;
  }

  // ---------------------------------------------------------------------------------------------
  // Leader-side handling of API requests
  // ---------------------------------------------------------------------------------------------

  private async handleApi(req: ApiRequest, from: number, signal?: AbortSignal): Promise<unknown> {
    // The API port is up while the node starts (peers ask it whether a cluster exists); until
    // its Raft group runs it can only answer that.
    if (req.op !== 'leader' && req.op !== 'limits') this.requireGroup();
    switch (req.op) {
      case 'propose': {
        this.checkOpenOrStarting();
        if (from === REMOTE_CLIENT_ID) this.requireStartedToWrite('a write');
        if (req.group !== 'cache') this.requireSqlite('a SQL write');
        if (req.group === 'cache') {
          const timeoutMs = Math.min(req.timeoutMs ?? Infinity, this.cfg.proposalTimeoutMs);
          // A client's bytes go to the leader if need be; a node's are proposed here or refused.
          if (from === REMOTE_CLIENT_ID) {
            const left =
              this.peerClocks.ready() === null ? timeoutMs : await this.peerClocks.waitReady(timeoutMs);
            const { data } = adoptClientCacheCommand(req.data, {
              nowMs: this.cache.stampNowMs(),
              // The client retries until its own deadline, on this node or another.
              sessionProtectMs: sessionProtectMs(req.timeoutMs ?? Infinity, this.cfg.sessionProtectMs),
            });
            return this.cache.proposeBytes(data, left);
          }
          this.requireLeaderFor('propose', 'cache');
          return this.inflight.track(() => this.cache.proposeHere(req.data, timeoutMs));
        }
        // A remote client's write is forwarded to the leader if need be; a write forwarded by
        // another node is proposed here or refused, never forwarded again (no forwarding loops).
        if (from === REMOTE_CLIENT_ID) {
          // The client's own deadline when it is the nearer one: it gets an answer before it gives up.
          const timeoutMs = Math.min(req.timeoutMs ?? Infinity, this.cfg.proposalTimeoutMs);
          const left =
            this.peerClocks.ready() === null ? timeoutMs : await this.peerClocks.waitReady(timeoutMs);
          const { data, command } = adoptClientCommand(req.data, {
            nowMs: this.sqlLogClock.stampMs(),
            recursionRowsMax: this.cfg.writeRecursionRowsMax,
            valueBytesMax: this.cfg.sqlValueBytesMax,
            // The client retries until its own deadline, on this node or another.
            sessionProtectMs: sessionProtectMs(req.timeoutMs ?? Infinity, this.cfg.sessionProtectMs),
          });
          if (this.cfg.logStatements) this.log.info({ command, remote: true }, 'write');
          return this.proposeCounted(data, left);
        }
        const out = await this.inflight.track(() =>
          this.group.propose(req.data, {
            timeoutMs: Math.min(req.timeoutMs ?? Infinity, this.cfg.proposalTimeoutMs),
          }),
        );
        return { index: out.index, result: out.result };
      }
      case 'query': {
        this.requireCaughtUpToServe('a query');
        const rows = await this.query(req.sql, req.params as QueryParams, {
          consistency: req.consistency,
          minIndex: req.minIndex,
          // The client's own deadline when it is the nearer one: its work stops when it gives up,
          // or when it hangs up.
          timeoutMs: Math.min(req.timeoutMs ?? this.cfg.queryTimeoutMs, this.cfg.queryTimeoutMs),
          ...(signal === undefined ? {} : { signal }),
        });
        return rows;
      }
      case 'metrics':
        return this.metrics();
      case 'limits':
        return {
          commandBytesMax: commandBytesMaxFor(this.cfg.entryBytesMax),
          frameBytesMax: this.cfg.frameBytesMax,
          // CacheGroup.tokenFloor (0: not known here yet).
          cacheTokenFloor: this.cache?.running === true ? this.cache.tokenFloor : 0,
        };
      case 'leader': {
        // A cache-only node's group is the cache group, whichever group is asked about; the
        // answer says the node's sqlite setting, so that nodes of the other kind refuse it.
        if (req.group === 'cache' || !this.cfg.sqlite) {
          // null while this node has not opened the group's storage: it cannot say yet.
          const c = this.cache?.running === true ? this.cache.group.status() : undefined;
          const leaderId = this.knownLeader(c);
          return {
            // Its voters and learners too, so that a watchdog of a voter cut off from the leader
            // can tell this group (which lists it: it must wait) from one founded anew without it
            // (cache-refounding.ts).
            ...cacheGroupAnswer(c, {
              me: this.cfg.nodeId,
              leaderId,
              freshWhileClosed: this.cache?.fresh === true,
              abstains: c !== undefined && abstains(this.cache.join.state, this.cache.group.applied()),
            }),
            joining: this.joining.has('cache'),
            leaderApi:
              leaderId === null ? null : (this.cfg.nodes.find((n) => n.id === leaderId)?.addrApi ?? null),
            clusterId: this.clusterId,
            sqlite: this.cfg.sqlite,
            nodes: this.cfg.nodes.map((n) => n.id),
          };
        }
        const s = this.group?.status();
        const leaderId = this.knownLeader(s);
        return {
          leaderId,
          leaderApi:
            leaderId === null ? null : (this.cfg.nodes.find((n) => n.id === leaderId)?.addrApi ?? null),
          member:
            s !== undefined &&
            (s.membership.voters.includes(this.cfg.nodeId) ||
              s.membership.learners.includes(this.cfg.nodeId)),
          clusterId: this.clusterId,
          sqlite: this.cfg.sqlite,
          // The ids of this node's `nodes` list: a leader checks a new node against it, and
          // whether this node is joining (checkJoiner).
          nodes: this.cfg.nodes.map((n) => n.id),
          joining: this.joining.has('sql'),
        };
      }
      case 'join':
        return this.handleJoin(req.nodeId as NodeId, req.nonce, from, req.group ?? 'sql', req.sqlite);
      case 'promote':
        return this.handlePromote(req.nodeId as NodeId, from, req.group ?? 'sql');
      case 'removeNode':
        return this.handleRemoveNode(req.nodeId, from, req.group);
      case 'backup':
        this.requireSqlite('backup');
        // A client's request goes to the leader; one forwarded by a node is served here or refused.
        if (from === REMOTE_CLIENT_ID) return this.backup();
        this.requireLeaderFor('backup', 'sql');
        return this.backupHere();
      case 'backupList':
        this.requireSqlite('backupList');
        return this.backupService().list('local', signal);
      case 'cacheRead':
      case 'cacheLock': {
        if (req.op === 'cacheRead') this.requireCaughtUpToServe('a cache read');
        else this.requireStartedToWrite('a lock');
        return serveCacheRequest(
          this.cacheOf(),
          req,
          signal ?? new AbortController().signal,
          this.peerClocks,
        );
      }
      case 'listen':
      case 'unlisten':
      case 'cancel':
        // Ops of the client's connection: the API server serves them (api-stream-requests.ts).
        throw invalid(`${req.op} is served by the API connection`);
    }
  }

  /** The cache group once it runs (cache-serve.ts), for the API port's cache ops. */
  private cacheOf(): CacheGroupOf {
    return runningCacheGroup(() => this.cache, this.cfg.nodeId);
  }

  private async handleJoin(
    id: NodeId,
    nonce: string,
    from: number,
    group: GroupId,
    joinerSqlite: boolean | undefined,
  ): Promise<unknown> {
    requireSelf('join', id, from);
    // Every node of a cluster has the same sqlite setting: refuse the other kind before it
    // becomes a member of anything.
    if (saidSqlite(joinerSqlite) !== this.cfg.sqlite)
      throw sqliteMismatchError(this.cfg, id, saidSqlite(joinerSqlite));
    this.requireLeaderFor('join', group);
    if (!this.cfg.nodes.some((n) => n.id === id))
      throw invalid(`node ${id} is not in this cluster's nodes list`);
    // A joining node repeats its request until it is answered; the nonce (one per start of
    // that node) makes the repetition harmless.
    const joinKey = `${group}:${id}`;
    const done = this.joins.get(joinKey);
    const sqlite = this.cfg.sqlite;
    if (done !== undefined && done.nonce === nonce)
      return { index: await done.index, clusterId: this.clusterId, sqlite };
    await this.checkJoiner(id, group);
    const index = this.addAsLearner(this.raftGroup(group), id);
    this.joins.set(joinKey, { nonce, index });
    try {
      return { index: await index, clusterId: this.clusterId, sqlite };
    } catch (e) {
      if (this.joins.get(joinKey)?.index === index) this.joins.delete(joinKey);
      throw e;
    }
  }

  /**
   * Leader, before the membership changes for node `id`, which asks to join (as a node without
   * state of `group`). Each check asks other nodes what they know (`leader`, at the addresses of
   * this node's list, at most JOIN_PEER_CHECK_MS); one that does not answer passes it.
   * - `id` is a member: it lost its state, and is removed and added back as a learner. Unless the
   *   node at `id`'s address answers as a member of this cluster that is not joining: then it
   *   holds its state, and another process claims its id. Found from outside: a second process with `node_id = 2`
   *   (another address, an empty data_dir) made the leader demote the real node 2 to a learner
   *   for good, and itself only waited for a leader.
   * - `id` is new: every voter that answers must have it in its `nodes` list. Found from outside:
   *   node 3 listed a node 4 the others did not, node 4 joined while node 3 led and stayed a
   *   learner no other leader could reach or remove.
   * Both refusals are HQL_INVALID_CONFIG: the joining node stops with the message.
   */
  private async checkJoiner(id: NodeId, group: GroupId): Promise<void> {
    const m = this.raftGroup(group).status().membership;
    type Answer = { member?: unknown; clusterId?: unknown; nodes?: unknown; joining?: unknown };
    // The whole question within JOIN_PEER_CHECK_MS, opening the connection included (a host that
    // does not answer SYNs takes the connect timeout): the joining node asks again after 5 s.
    const ask = (to: NodeId): Promise<Answer | null> =>
      inTime(
        this.request(to, { op: 'leader', group }, JOIN_PEER_CHECK_MS).then(
          (r) => (r.ok && typeof r.value === 'object' && r.value !== null ? (r.value as Answer) : null),
          () => null,
        ),
        JOIN_PEER_CHECK_MS,
        null,
      );
    if (m.voters.includes(id) || m.learners.includes(id)) {
      const there = await ask(id);
      // The node at that address joins (it asked, or asks next): the one that lost its state.
      if (there?.member === true && there.joining !== true && there.clusterId === this.clusterId) {
        const addr = this.cfg.nodes.find((n) => n.id === id)?.addrRaft ?? '?';
        throw new HiqliteError(
          'HQL_INVALID_CONFIG',
          `a node asks to join the ${group} group as node ${id} without state, but node ${id} at ${addr} runs as a member of this cluster with its state: two processes have node_id ${id} (give each node its own node_id), or that node's nodes list has another address for node ${id}; nothing was changed`,
          { retryable: false },
        );
      }
      return;
    }
    const others = m.voters.filter((v) => v !== this.cfg.nodeId && v !== id);
    const answers = await Promise.all(others.map(async (v) => ({ v, a: await ask(v) })));
    const lacking = answers
      .filter(({ a }) => Array.isArray(a?.nodes) && !(a.nodes as unknown[]).includes(id))
      .map(({ v }) => v)
      .sort((a, b) => a - b)
      .map((v) => `node ${v}`);
    if (lacking.length > 0) {
      throw new HiqliteError(
        'HQL_INVALID_CONFIG',
        `node ${id} is not in the nodes list of ${lacking.join(', ')}: add it to every node's nodes list and restart those nodes, then start node ${id}; nothing was changed`,
        { retryable: false },
      );
    }
  }

  private raftGroup(group: GroupId): RaftGroup {
    if (group === 'cache') return this.cache.group;
    const sql = this.sqlGroup();
    if (sql === undefined) throw sqliteDisabledError(this.cfg.nodeId, 'the SQL group');
    return sql;
  }

  /** The SQL group; undefined before it runs and on a cache-only node (whose group is the cache's). */
  private sqlGroup(): RaftGroup | undefined {
    return this.cfg.sqlite ? this.group : undefined;
  }

  /** Leader: adds a node that asks to join as a learner (join-procedure.ts). */
  private addAsLearner(g: RaftGroup, id: NodeId): Promise<LogIndex> {
    return addAsLearner(g, id, this.cfg.proposalTimeoutMs, this.log, g.group);
  }

  /**
   * Removes node `id` from the cluster's membership, in both Raft groups (SQL and cache): its vote
   * no longer counts toward a majority. For a node that is gone for good (stop it first): a node
   * taken out of every `nodes` list stayed a voter for ever, and with it down, one more loss cost
   * the cluster its majority (found by an outside probe). A node already not a member is done
   * (a repeated removal answers the same). Asked of any node: each group's leader proposes it.
   */
  async removeNode(id: number, timeoutMs: number = this.cfg.proposalTimeoutMs): Promise<ClusterMembership> {
    this.checkOpen();
    this.requireGroup();
    if (!Number.isSafeInteger(id) || id < 1)
      throw invalid(`removeNode: the id of a node (a whole number >= 1), got ${String(id)}`);
    const deadline = this.clock.monotonicMs() + timeoutMs;
    const sql = this.cfg.sqlite ? await this.removeFromGroup('sql', id as NodeId, deadline) : null;
    const cache = await this.removeFromGroup('cache', id as NodeId, deadline);
    return { sql, cache };
  }

  /** removeNode in one group: here when this node leads it, else by its leader, until `deadline`. */
  private async removeFromGroup(group: GroupId, id: NodeId, deadline: number): Promise<MembershipView> {
    let last: HiqliteError | null = null;
    for (let attempt = 0; ; attempt++) {
      const remaining = deadline - this.clock.monotonicMs();
      if (remaining <= 0)
        throw new HiqliteError(
          'HQL_TIMEOUT',
          `node ${id} was not removed from the ${group} group in time${last === null ? '' : ` (last: ${last.message})`}`,
          { retryable: true, ...(last === null ? {} : { cause: last }) },
        );
      const g = this.raftGroup(group);
      try {
        if (g.isLeader()) return await this.removeHere(group, id, remaining);
        const leaderId = g.leaderId();
        if (leaderId === null) throw this.noLeaderError(g.membership());
        const r = await this.request(leaderId, { op: 'removeNode', nodeId: id, group }, remaining);
        if (!r.ok) throw remoteError(r.error);
        return r.value as MembershipView;
      } catch (e) {
        if (!(e instanceof HiqliteError) || !e.retryable || this.closing !== null) throw e;
        last = e;
      }
      await this.backoff(attempt, deadline);
    }
  }

  /** Leader: proposes the removal and waits for its commit; a node already not a member is done. */
  private async removeHere(group: GroupId, id: NodeId, timeoutMs: number): Promise<MembershipView> {
    this.requireLeaderFor('removeNode', group);
    const g = this.raftGroup(group);
    const m = g.membership();
    if (m.voters.includes(id) || m.learners.includes(id)) {
      this.log.warn({ peer: id, group }, 'removing a node from the membership (removeNode)');
      await g.proposeMembership({ type: 'remove', node: id }, { timeoutMs });
    }
    const now = g.membership();
    return { voters: [...now.voters], learners: [...now.learners] };
  }

  /** The `removeNode` op: a client's goes through removeNode, a node's to this leader's group. */
  private handleRemoveNode(id: number, from: number, group: GroupId | undefined): Promise<unknown> {
    if (from === REMOTE_CLIENT_ID || group === undefined) return this.removeNode(id);
    if (!Number.isSafeInteger(id) || id < 1) throw invalid(`removeNode: no node id ${String(id)}`);
    return this.removeHere(group, id as NodeId, this.cfg.proposalTimeoutMs);
  }

  private async handlePromote(id: NodeId, from: number, group: GroupId): Promise<unknown> {
    requireSelf('promote', id, from);
    this.requireLeaderFor('promote', group);
    await promoteLearner(this.raftGroup(group), id, this.cfg.proposalTimeoutMs, this.log, group);
    return { ok: true };
  }

  private requireLeaderFor(what: string, group: GroupId = 'sql'): void {
    const g = group === 'sql' ? this.sqlGroup() : this.cache?.running === true ? this.cache.group : undefined;
    const s = g?.status();
    if (s === undefined || s.role !== 'leader') {
      throw Object.assign(
        new HiqliteError('HQL_NOT_LEADER', `${what} must go to the leader`, { retryable: true }),
        {
          leaderId: s?.leaderId ?? null,
        },
      );
    }
  }

  private async handleJson(
    route: 'execute' | 'query' | 'txn' | 'batch',
    body: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<unknown> {
    this.requireGroup();
    this.requireSqlite(`/${route}`);
    if (route !== 'query') this.requireStartedToWrite(`/${route}`);
    else this.requireCaughtUpToServe('/query');
    return serveJsonRoute(route, body, {
      writeOk: (command) => this.writeOk(command),
      query: (sql, params, consistency) =>
        this.query(sql, params, {
          consistency,
          timeoutMs: this.cfg.queryTimeoutMs,
          ...(signal === undefined ? {} : { signal }),
        }),
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Internals
  // ---------------------------------------------------------------------------------------------

  /** Proposes prepared bytes on the leader (here or forwarded), retrying what is safe to retry (propose-retry.ts). */
  private proposeBytes(
    data: Uint8Array,
    timeoutMs: number,
  ): Promise<{ index: number; result: CommandResult }> {
    this.requireSqlite('a SQL write');
    // Checked here too, not only by the leader's core: a follower does not forward what cannot fit.
    const bytesMax = commandBytesMaxFor(this.cfg.entryBytesMax);
    if (data.byteLength > bytesMax) return Promise.reject(commandTooLargeError(data.byteLength, bytesMax));
    return proposeWithRetries(this.sqlProposals, timeoutMs, data);
  }

  /** The SQL group's write loop, one for every write (the bytes come with each call). */
  private sqlWriteLoop(): ProposeRetry<{ index: number; result: CommandResult }, Uint8Array> {
    return {
      clock: this.clock,
      heartbeatIntervalMs: this.cfg.heartbeatIntervalMs,
      isLeader: () => this.group.isLeader(),
      leaderId: () => this.group.leaderId(),
      // The state machine's result of a SQL command is a CommandResult.
      here: (_attempt, remainingMs, data) =>
        this.group.propose(data, { timeoutMs: remainingMs }) as Promise<{
          index: number;
          result: CommandResult;
        }>,
      forward: (leaderId, remainingMs, data) => this.forwardPropose('sql', leaderId, data, remainingMs),
      noLeaderError: () => this.noLeaderError(),
      stopping: () => this.closing !== null,
    };
  }

  /**
   * Sends prepared bytes to the leader's `propose` (ProposeRetry.forward): its answer or refusal;
   * a rejection only when the bytes were sent and no answer came (they may be in the log). A
   * connection that cannot be opened is a refusal: nothing was sent.
   */
  private async forwardPropose<T>(
    group: GroupId,
    leaderId: NodeId,
    data: Uint8Array,
    remainingMs: number,
  ): Promise<Forwarded<T>> {
    let conn: ApiConnection;
    try {
      conn = await this.peerConnection(leaderId);
    } catch (e) {
      if (e instanceof HiqliteError) return { ok: false, error: e };
      throw e;
    }
    let r: ApiResponse;
    try {
      r = await conn.request(
        { op: 'propose', group, data, timeoutMs: answerWithinMs(remainingMs) },
        remainingMs,
      );
    } catch (e) {
      // Not processed (the connection closed before the bytes went out, or the leader's goaway
      // did not list them): a refusal, nothing can be in the log.
      if (wasNotProcessed(e)) return { ok: false, error: e as HiqliteError };
      throw e;
    }
    return r.ok ? { ok: true, value: r.value as T } : { ok: false, error: remoteError(r.error) };
  }

  /** No leader is known here: how many voters this node reaches tells a partition from a quorum loss. */
  private noLeaderError(membership: Membership = this.group.membership()): HiqliteError {
    return noLeaderError(this.cfg.nodeId, membership.voters, this.connectedPeers());
  }

  /** Waits before retry `attempt`: exponential from 20 ms, at most a heartbeat, never past `deadline`. */
  private backoff(attempt: number, deadline: number): Promise<void> {
    const ms = Math.min(this.cfg.heartbeatIntervalMs, 20 * 2 ** Math.min(attempt, 5));
    return sleep(Math.max(0, Math.min(ms, deadline - this.clock.monotonicMs())));
  }

  private async linearizableBarrier(timeoutMs: number): Promise<number> {
    this.requireSqlite('a linearizable SQL read');
    const deadline = this.clock.monotonicMs() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.group.readBarrier({ timeoutMs: Math.max(1, deadline - this.clock.monotonicMs()) });
      } catch (e) {
        // A node shutting down ends the wait (its group answers HQL_CLOSED, retryable for a
        // client, which asks another node): retried here, it ran on to its deadline.
        if (!(e instanceof HiqliteError) || !e.retryable) throw e;
        // Said as what it is: the last attempt may have failed for another reason (no leader)
        // just before the node began to shut down.
        if (this.closing !== null)
          throw new HiqliteError('HQL_CLOSED', 'the node is shutting down', { retryable: true, cause: e });
        if (this.clock.monotonicMs() >= deadline) throw deadlineError(e, 'linearizable read', timeoutMs);
      }
      await this.backoff(attempt, deadline);
    }
  }

  private onGroupFatal(e: Error): void {
    if (this.fatal !== null) return;
    this.fatal = e;
    this.log.error({ err: e.message }, 'the node stopped serving');
    // A node serves both groups or neither: the other one stops too (a leader of it would go on
    // heartbeating while refusing every write forwarded to it), and the cache group's listeners
    // and lock waiters end now.
    const err = new HiqliteError('HQL_IO', `node ${this.cfg.nodeId} stopped serving: ${e.message}`, {
      retryable: false,
      cause: e,
    });
    if (this.cfg.sqlite && this.group !== undefined) this.group.stop(err);
    this.cache?.stop(err);
    this.onFatal?.(e);
  }

  /**
   * The leader a group's status names, as the node reports it (the `leader` op, metrics, /health):
   * none once the node stopped, whatever its frozen view last saw (maybe itself as the leader).
   * The group's own status stays as the core left it: the write loop still proposes there and
   * learns at once that the group stopped.
   */
  private knownLeader(s: { readonly leaderId: NodeId | null } | undefined): NodeId | null {
    return this.fatal === null ? (s?.leaderId ?? null) : null;
  }

  /**
   * The node stopped serving (onGroupFatal): what other processes are told, so that they ask
   * another node. Retryable there; its replica is frozen and it takes no write.
   */
  private stoppedError(): HiqliteError {
    const cause = this.fatal;
    return new HiqliteError(
      'HQL_UNAVAILABLE',
      `node ${this.cfg.nodeId} stopped serving (${cause?.message ?? 'unknown cause'}): ask another node`,
      { retryable: true, ...(cause === null ? {} : { cause }) },
    );
  }

  /**
   * One request of another process (a remote client, a proxy, HTTP, a peer forwarding): served
   * while the node serves; refused with stoppedError() once it stopped, and so is a request in
   * flight then (its failure came from the stop), except a write's HQL_OUTCOME_UNKNOWN, which the
   * caller resends under its session.
   */
  private async serving<T>(run: () => T | Promise<T>): Promise<T> {
    if (this.fatal !== null) throw this.stoppedError();
    try {
      return await run();
    } catch (e) {
      if (this.fatal !== null && !(e instanceof HiqliteError && e.code === 'HQL_OUTCOME_UNKNOWN'))
        throw this.stoppedError();
      throw e;
    }
  }

  /** A listen stream of another process, opened and read through serving(): it ends when the node stops. */
  private servingListen(open: () => Promise<ListenStream>): Promise<ListenStream> {
    return this.serving(async () => {
      // Not while starting: the node may be about to found or join another cluster than the
      // one the listener followed (found from outside: after a full restart of in-memory nodes a
      // remote listener went on with the new cluster's notifications, skipping some).
      this.requireStarted('a listener');
      const stream = await open();
      return {
        afterSeq: stream.afterSeq,
        next: () => this.serving(() => stream.next()),
        drain: (max) => stream.drain(max),
        close: () => stream.close(),
      };
    });
  }

  /** The HTTP cache routes, each through serving(). */
  private servingCacheOps(ops: CacheHttpOps): CacheHttpOps {
    return {
      write: (command, signal) =>
        this.serving(() => {
          this.requireStartedToWrite('a cache write');
          return ops.write(command, signal);
        }),
      read: (read, consistency, signal) =>
        this.serving(() => {
          this.requireCaughtUpToServe('a cache read');
          return ops.read(read, consistency, signal);
        }),
      listen: (channel, afterSeq, signal) => this.servingListen(() => ops.listen(channel, afterSeq, signal)),
    };
  }

  private groupTransport(): GroupTransport {
    return {
      send: (g, m) => {
        this.transport.send(g, m);
      },
      sendSnapshot: async (g, m, snapshot) => {
        // Both stores of a node (files, memory) know the checksum of a snapshot that passed check().
        assert(snapshot.sha256 !== null, `snapshot ${snapshot.path} to send has a checksum`);
        const sha256 = Buffer.from(snapshot.sha256, 'hex');
        const { path } = snapshot;
        try {
          const chunks = g === 'cache' ? this.cache.snapshotChunks(path, fileChunks) : fileChunks(path);
          await this.transport.sendSnapshot(g, m, chunks, sha256, {
            signal: AbortSignal.timeout(10 * 60_000),
          });
          return true;
        } catch (e) {
          this.log.warn({ peer: m.to, err: (e as Error).message }, 'snapshot transfer failed');
          return false;
        }
      },
    };
  }

  private async receiveSnapshot(
    snapshots: SnapshotStore,
    meta: Extract<Message, { type: 'snapshot' }>,
    chunks: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    this.group.receiveSnapshot(meta, await receiveSnapshot(snapshots, chunks));
  }

  private request(
    to: number,
    body: DistributiveOmit<ApiRequest, 'id'>,
    timeoutMs: number,
  ): Promise<ApiResponse> {
    return this.peerConnection(to).then((c) => c.request(body, timeoutMs));
  }

  private peerConnection(to: number): Promise<ApiConnection> {
    const existing = this.peers.get(to);
    if (existing !== undefined) return existing;
    const n = this.cfg.nodes.find((x) => x.id === to);
    if (n === undefined) return Promise.reject(invalid(`unknown node ${to}`));
    const p = ApiConnection.open({
      host: n.api.host,
      port: n.api.port,
      // A node authenticates as itself with the cluster's internal secret: secret_api does not
      // let anyone claim a node's id (docs/ARCHITECTURE.md, "Security").
      secret: this.cfg.secretRaft,
      localId: this.cfg.nodeId,
      clusterId: () => this.clusterId,
      serverId: to,
      ...(this.cfg.tls.api === null ? {} : { tls: true }),
      connectTimeoutMs: 3000,
      frameBytesMax: this.cfg.frameBytesMax,
      inflightMax: 100_000,
    });
    this.peers.set(to, p);
    p.then(
      (c) => c.onClose(() => this.peers.delete(to)),
      () => this.peers.delete(to),
    );
    return p;
  }

  /**
   * `/health`. Failures (a stopped group, a stuck apply) show at once. Not being a member yet or
   * knowing no leader is normal while a node starts, joins and catches up: for the first
   * `health_check_delay_secs` after start it is reported healthy with `state: "joining"`, so an
   * orchestrator does not restart a node that is still catching up (`/ready` says when it has
   * started and could serve a write).
   */
  private health(): { ok: boolean; body: Record<string, unknown> } {
    const { ok, body } = this.healthNow();
    const sinceStartMs = this.clock.monotonicMs() - this.createdAtMs;
    const graceMs = this.cfg.healthCheckDelaySecs * 1000;
    if (ok || 'error' in body || sinceStartMs >= graceMs) return { ok, body };
    return {
      ok: true,
      body: { ...body, state: 'joining', graceRemainingMs: Math.round(graceMs - sinceStartMs) },
    };
  }

  /**
   * `/ready`: start() has completed and a write could be served now: the node is a member that
   * knows a leader, its group runs and its apply is not stuck (`/health` without the start-up
   * grace). A member cut off from the leader (a wrong `secret_raft`, a partition) is not ready.
   */
  private readiness(): { ok: boolean; reason?: string } {
    if (!this.started) return { ok: false, reason: 'starting' };
    const { ok, body } = this.healthNow();
    if (ok) return { ok: true };
    if (typeof body.error === 'string') return { ok: false, reason: body.error };
    return { ok: false, reason: body.member === true ? 'no leader known' : 'not a member' };
  }

  private healthNow(): { ok: boolean; body: Record<string, unknown> } {
    if (this.group === undefined) return { ok: false, body: { nodeId: this.cfg.nodeId, state: 'starting' } };
    const m = this.metrics();
    const member = m.voters.includes(m.nodeId) || m.learners.includes(m.nodeId);
    if (this.fatal !== null) return { ok: false, body: { ...m, member, error: this.fatal.message } };
    // Heartbeats and elections go on while the state machine is stuck on one entry: say so.
    const stalledMs = this.group.applyStalledMs();
    if (stalledMs > this.cfg.applyStallMs) {
      const error = `applying entry ${m.appliedIndex + 1} has taken ${Math.round(stalledMs)} ms (commit index ${m.commitIndex}): the state machine is stuck`;
      return { ok: false, body: { ...m, member, error } };
    }
    const ok = member && m.leaderId !== null;
    if (ok) return { ok, body: { ...m, member } };
    // Why the peers cannot be reached, when they cannot: a wrong secret_raft, another hiqlite
    // version (found by an outside probe: a node cut off by an upgrade said only "candidate").
    const peers: Record<string, string> = {};
    for (const p of this.transport?.status() ?? [])
      if (p.controlFailure !== null) peers[String(p.peerId)] = p.controlFailure;
    return { ok, body: { ...m, member, ...(Object.keys(peers).length > 0 ? { peers } : {}) } };
  }

  private registerGauges(): void {
    const gauge = (name: string, help: string, read: (m: NodeMetrics) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.metricsRegistry],
        collect: () => {
          if (this.group !== undefined) (gaugeRef.get(name) as Gauge).set(read(this.metrics()));
        },
      });
    const gaugeRef = new Map<string, Gauge>();
    for (const [name, help, read] of [
      ['hiqlite_raft_term', 'Current Raft term', (m: NodeMetrics) => m.term],
      ['hiqlite_raft_commit_index', 'Raft commit index (sql group)', (m: NodeMetrics) => m.commitIndex],
      ['hiqlite_raft_applied_index', 'Index applied to SQLite', (m: NodeMetrics) => m.appliedIndex],
      ['hiqlite_raft_last_log_index', 'Last index in the Raft log', (m: NodeMetrics) => m.lastLogIndex],
      [
        'hiqlite_raft_is_leader',
        '1 when this node is the leader',
        (m: NodeMetrics) => (m.role === 'leader' ? 1 : 0),
      ],
      ['hiqlite_raft_voters', 'Voters in the membership', (m: NodeMetrics) => m.voters.length],
    ] as const) {
      gaugeRef.set(name, gauge(name, help, read));
    }
    // Connections, so that an operator sees strangers or slow clients coming before the bounds bite.
    for (const [name, help, read] of [
      [
        'hiqlite_api_connections',
        'Binary-protocol connections on the API port (remote clients, proxies, other nodes)',
        () => this.api?.status().streams ?? 0,
      ],
      [
        'hiqlite_api_tcp_connections',
        'Every TCP connection on the API port, HTTP ones included (bound: api_connections_max)',
        () => this.api?.status().connections ?? 0,
      ],
      [
        'hiqlite_api_unauthenticated_connections',
        'API port connections not yet authenticated (bound: unauthenticated_connections_max)',
        () => this.api?.status().unauthenticated ?? 0,
      ],
      [
        'hiqlite_api_unauthenticated_closed_total',
        'API port connections closed before authenticating: evicted for a newer one, or past handshake_timeout_ms',
        () => {
          const s = this.api?.status();
          return s === undefined ? 0 : s.unauthenticatedEvicted + s.unauthenticatedExpired;
        },
      ],
      [
        'hiqlite_clock_offset_ms',
        "This node's wall clock minus the cluster's (the median of the nodes' clocks, asked every clock_probe_interval_ms); log time follows the cluster's",
        () => Math.round(this.peerClocks.offsetMs()),
      ],
      [
        'hiqlite_clock_peers_known',
        'Other nodes whose clock this node knows now (an answer of the last three clock_probe_interval_ms); below a majority with this node, log time runs on from the last cluster clock',
        () => this.peerClocks.peerOffsets().size,
      ],
      [
        'hiqlite_raft_unauthenticated_connections',
        'Inbound Raft port connections not yet authenticated (bound: unauthenticated_connections_max)',
        () => this.transport?.unauthenticatedInbound() ?? 0,
      ],
    ] as const) {
      new Gauge({
        name,
        help,
        registers: [this.metricsRegistry],
        collect() {
          this.set(read());
        },
      });
    }
    // A node whose snapshots keep failing (a full disk) goes on with its log growing: say so.
    const groups = (): Array<[string, RaftGroup | undefined]> => [
      ['sql', this.group],
      ['cache', this.cache?.running === true ? this.cache.group : undefined],
    ];
    new Gauge({
      name: 'hiqlite_snapshot_failures',
      help: 'Snapshots of the group that failed in a row since its last one that succeeded (its log is not compacted meanwhile: check the free space under data_dir)',
      labelNames: ['group'],
      registers: [this.metricsRegistry],
      collect() {
        for (const [name, g] of groups())
          if (g !== undefined) this.set({ group: name }, g.snapshotFailuresInARow);
      },
    });
  }

  /** The dashboard's routes on the API port, when `password_dashboard` is set (src/dashboard). */
  private dashboardRoutes(): { routes: Dashboard } | Record<string, never> {
    const { passwordHash, insecureCookie } = this.cfg.dashboard;
    if (passwordHash === null || this.history === null) return {};
    const backend = nodeDashboardBackend({
      cfg: this.cfg,
      view: () => (this.group === undefined ? null : this.metrics()),
      health: () => this.healthNow(),
      request: (id, timeoutMs) => this.request(id, { op: 'metrics' }, timeoutMs),
      query: (sql, params, consistency, signal) => {
        this.requireCaughtUpToServe('a query');
        return this.query(sql, params, { consistency, timeoutMs: this.cfg.queryTimeoutMs, signal });
      },
      write: (sql) => {
        this.requireStartedToWrite('a write');
        return this.writeOk({ type: 'execute', sql, params: [], returning: true });
      },
      history: this.history,
      cacheGroup: () => (this.cache?.running === true ? this.cache : null),
      backups: () => (this.started ? this.backups : null),
      backup: () => this.backup(),
      leaderBackups: (signal) => this.leaderBackups(signal),
    });
    const routes = new Dashboard(backend, {
      passwordHash,
      insecureCookie,
      clock: this.clock,
      limits: {
        bodyTimeoutMs: this.cfg.httpBodyTimeoutMs,
        jsonDepthMax: this.cfg.httpJsonDepthMax,
        jsonValuesMax: this.cfg.httpJsonValuesMax,
      },
      logger: this.log,
    });
    return { routes };
  }

  private async doShutdown(): Promise<void> {
    this.started = false;
    // Lock waits on this node end and their waiters leave the queues while writes are still taken.
    await this.cache?.withdrawWaiters(Math.min(LOCK_WITHDRAW_ON_SHUTDOWN_MS, this.cfg.shutdownTimeoutMs));
    // New writes are refused from here on (checkOpen, the cache group's refuseWrites); those in
    // flight get their outcomes, for at most shutdown_timeout_ms, before the groups close under
    // them (each still open then is answered HQL_OUTCOME_UNKNOWN).
    this.cache?.refuseWrites();
    // One budget for the writes and then the API requests still being served.
    const drainUntil = this.clock.monotonicMs() + this.cfg.shutdownTimeoutMs;
    if (!(await this.inflight.drained(this.cfg.shutdownTimeoutMs, this.clock)))
      this.log.warn(
        { writes: this.inflight.size, shutdownTimeoutMs: this.cfg.shutdownTimeoutMs },
        'writes still in flight at shutdown: their callers get HQL_OUTCOME_UNKNOWN',
      );
    // Before the peer connections close: a probe would open them again.
    this.peerClocks.close();
    this.cacheWatchdog?.stop();
    if (this.group !== undefined) {
      try {
        await this.transferLeadershipAway();
      } catch (e) {
        this.log.warn({ err: (e as Error).message }, 'leadership transfer before shutdown failed');
      }
    }
    for (const p of this.peers.values())
      p.then(
        (c) => c.close(),
        () => {},
      );
    this.peers.clear();
    await this.backups
      ?.close()
      .catch((e: unknown) => this.log.warn({ err: String(e) }, 'closing backups failed'));
    // Remote clients' connections: the requests being served get their answers (within what is
    // left of shutdown_timeout_ms: a write the drain above gave up on is not waited for twice),
    // then a goaway tells each client which of its requests were never read.
    await this.api?.close(Math.max(0, drainUntil - this.clock.monotonicMs())).catch(() => {});
    this.history?.stop(this.clock);
    await this.readPool?.close();
    await this.cache
      ?.close(this.cfg.shutdownTimeoutMs)
      .catch((e: unknown) => this.log.warn({ err: String(e) }, 'closing the cache group failed'));
    // Bounded: an entry that is still being applied after shutdown_timeout_ms is interrupted
    // (it is applied again at the next start).
    await this.sqlGroup()
      ?.close({ timeoutMs: this.cfg.shutdownTimeoutMs })
      .catch((e: unknown) => this.log.warn({ err: String(e) }, 'closing the raft group failed'));
    // A start() that failed before the group opened (bootstrap proof or join timed out or was
    // aborted, a TLS file unreadable): what the group would have closed is closed here, so no
    // thread or file outlives it (the state machine's thread kept the process alive).
    if (this.sqlGroup() === undefined) {
      await this.sqlLog
        ?.close()
        .catch((e: unknown) => this.log.warn({ err: String(e) }, 'closing the log failed'));
      // Nothing was applied yet, so this close does not wait behind an apply.
      await this.sm
        ?.close()
        .catch((e: unknown) => this.log.warn({ err: String(e) }, 'closing the state machine failed'));
    }
    await this.transport?.close().catch(() => {});
    this.reader?.close();
    await this.lock?.release();
    this.log.info('node stopped');
  }

  /** Thesis §3.10: a leader going down hands over first, so no election timeout is needed. */
  private async transferLeadershipAway(): Promise<void> {
    if (this.cache?.running === true) await this.transferGroupLeadershipAway(this.cache.group);
    const sql = this.sqlGroup();
    if (sql !== undefined) await this.transferGroupLeadershipAway(sql);
  }

  /**
   * To the most up-to-date voter this node is connected to. None connected (the cluster is being
   * stopped as a whole): no handover, and no wait for one that cannot happen. The wait ends when
   * the target takes over, or its connection drops (it is stopping too), at most twice the
   * election timeout.
   */
  private async transferGroupLeadershipAway(g: RaftGroup): Promise<void> {
    const s = g.status();
    if (s.role !== 'leader' || s.progress === null) return;
    const connected = this.connectedPeers();
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const [id, p] of s.progress) {
      if (s.membership.voters.includes(id) && connected.has(id) && p.match > bestMatch) {
        best = id;
        bestMatch = p.match;
      }
    }
    if (best === null) {
      if (s.membership.voters.length > 1)
        this.log.info({ group: g.group }, 'shutdown: no connected voter to hand leadership to');
      return;
    }
    const to = best;
    const r = g.transferLeadership(to);
    if (!r.ok) return;
    this.log.info({ group: g.group, to }, 'shutdown: handing leadership over');
    await this.waitFor(
      'leadership transfer',
      this.cfg.electionTimeoutMs * 2,
      () => !g.isLeader() || !this.connectedPeers().has(to),
    ).catch(() => {});
  }

  /** The peers with a live control connection, either way. */
  private connectedPeers(): Set<number> {
    return new Set(
      this.transport
        .status()
        .filter((p) => p.control === 'ready' || p.inboundControl)
        .map((p) => p.peerId as number),
    );
  }

  private async waitFor(what: string, timeoutMs: number, ok: () => boolean): Promise<void> {
    const deadline = this.clock.monotonicMs() + timeoutMs;
    while (!ok()) {
      if (this.clock.monotonicMs() > deadline)
        throw new HiqliteError('HQL_TIMEOUT', `waiting for ${what}: ${Math.round(timeoutMs)} ms passed`, {
          retryable: true,
        });
      await sleep(20);
    }
  }

  private checkOpen(): void {
    if (this.closing !== null)
      throw new HiqliteError('HQL_CLOSED', 'the node is shut down', { retryable: false });
    assert(this.group !== undefined, 'node used before start');
  }

  private throwIfStartCancelled(): void {
    if (this.startSignal?.aborted === true) throw this.startCancelled();
  }

  private startCancelled(): HiqliteError {
    return abortedError(`start of node ${this.cfg.nodeId} was cancelled`);
  }

  /**
   * `step`, or HQL_ABORTED as soon as start()'s signal fires: a start waiting for its barriers
   * (up to `proposal_timeout_ms`) or a majority's clocks stops when cancelled, not at the end of
   * that wait. The step's own outcome is then dropped: the failed start shuts the node down, which
   * ends it.
   */
  private unlessStartCancelled<T>(step: Promise<T>): Promise<T> {
    return raceAbort(step, this.startSignal, () => this.startCancelled());
  }

  /**
   * Reads of other processes (remote clients, proxies, HTTP, the dashboard) wait for the end of start(): until
   * then the replica is being rebuilt from the snapshot and the log (a restarted node replays
   * it; a rejoining one is empty), and a read answered "no such table" (HQL_SQL, not retryable)
   * or a count far behind what the same node answered before its restart (found by an outside
   * probe). Retryable: the client asks another node.
   */
  private requireStartedToRead(what: string): void {
    this.requireStarted(what);
  }

  /** Reads of other processes also wait until this replica caught up since its start (behindSinceStart). */
  private requireCaughtUpToServe(what: string): void {
    this.requireStarted(what);
    if (!this.behindSinceStart) return;
    throw new HiqliteError(
      'HQL_UNAVAILABLE',
      `node ${this.cfg.nodeId} has not caught up with the cluster since it started (it reaches no majority to confirm what was committed): it serves ${what} once it has; ask another node`,
      { retryable: true },
    );
  }

  /**
   * Writes of other processes (remote clients, HTTP, the dashboard) wait for the end of start()
   * too. A node still starting may lead a cluster that has not formed: node 1 restored from a
   * backup alone, its peers then started without a restore, led a one-voter cluster of its own
   * for the 120 s its start waited for them, and acknowledged writes there while the peers'
   * majority took writes in the old cluster (found from outside). Retryable: the client asks
   * another node. Writes forwarded by members of this node's cluster are not held here.
   */
  private requireStartedToWrite(what: string): void {
    this.requireStarted(what);
  }

  private requireStarted(what: string): void {
    if (this.started) return;
    throw new HiqliteError(
      'HQL_UNAVAILABLE',
      `node ${this.cfg.nodeId} is still starting (its replica is catching up, or it waits for the cluster's other members): it serves ${what} once started; ask another node`,
      { retryable: true },
    );
  }

  private requireGroup(): void {
    if (this.group === undefined) {
      throw new HiqliteError(
        'HQL_UNAVAILABLE',
        `node ${this.cfg.nodeId} is starting: it is not yet a member of a cluster`,
        { retryable: true },
      );
    }
  }

  /** SQL calls on a cache-only node: HQL_SQLITE_DISABLED (sqlite-setting.ts). */
  private requireSqlite(what: string): void {
    if (!this.cfg.sqlite) throw sqliteDisabledError(this.cfg.nodeId, what);
  }

  private checkOpenOrStarting(): void {
    if (this.closing !== null)
      throw new HiqliteError('HQL_CLOSED', 'the node is shutting down', { retryable: true });
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

function readAborted(): HiqliteError {
  return abortedError('the query was cancelled');
}

/** `p`, or HQL_ABORTED as soon as `signal` aborts (a read's wait for a barrier or an index). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  return raceAbort(p, signal, readAborted);
}

/**
 * A node cannot change its sqlite setting: a cache-only node whose data directory holds the SQL
 * group's log or database was a SQL node, and its cluster counts on it as one.
 */
async function refuseSqlState(paths: ResolvedPaths): Promise<void> {
  for (const dir of [paths.logsDir, paths.dbDir]) {
    if (!(await exists(dir))) continue;
    throw new HiqliteError(
      'HQL_INVALID_CONFIG',
      `sqlite = false, but ${dir} holds the SQL group's state: this node ran with sqlite = true, and a node cannot change its sqlite setting. Set sqlite = true again, or remove the data directory to make it a new node of a cache-only cluster`,
      { retryable: false },
    );
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return false;
      throw e;
    },
  );
}

async function* fileChunks(path: string): AsyncIterable<Uint8Array> {
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
}

/**
 * The deadline to give a node for a request the caller waits `remainingMs` for: a little less,
 * so that its answer (even "no outcome yet") arrives before the caller gives up on it.
 */
export function answerWithinMs(remainingMs: number): number {
  return Math.max(1, Math.floor(remainingMs - Math.min(200, remainingMs / 10)));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Membership requests come from the node they are about, over a connection that authenticated
 * as that node with secret_raft: never from an API client (id 0), never for another node.
 */
/** How long a shutdown waits for the withdrawal of the lock waiters on the node (at most). */
const LOCK_WITHDRAW_ON_SHUTDOWN_MS = 2000;

function requireSelf(what: 'join' | 'promote', id: NodeId, from: number): void {
  if (from === id) return;
  throw new HiqliteError(
    'HQL_UNAUTHORIZED',
    from === REMOTE_CLIENT_ID
      ? `${what} is a request between cluster nodes: API clients cannot change the membership`
      : `node ${from} cannot ask to ${what} node ${id}`,
    { retryable: false },
  );
}

function invalid(message: string): HiqliteError {
  return new HiqliteError('HQL_INVALID_CONFIG_CHANGE', message, { retryable: false });
}

function invalidParams(message: string): HiqliteError {
  return new HiqliteError('HQL_INVALID_PARAMS', message, { retryable: false });
}

/** Rebuilds the error a remote node answered with, keeping its code and retry safety. */
export function remoteError(
  e: ApiResponse extends infer R ? (R extends { ok: false; error: infer E } ? E : never) : never,
): HiqliteError {
  // SQL errors come back as what they are on the node: a SqlError with its info (sqliteCode, …).
  if (SQL_ONLY_CODES.has(e.code))
    return new SqlError({ code: e.code as SqlErrorInfo['code'], message: e.message, ...(e.details ?? {}) });
  // Cache limits as CacheError (`instanceof CacheError` holds remotely too), with the limit reached.
  if (CACHE_ONLY_CODES.has(e.code)) {
    const limit = e.details?.limit;
    return new CacheError({
      code: e.code as CacheErrorInfo['code'],
      message: e.message,
      ...(typeof limit === 'string' ? { limit: limit as CacheLimitName } : {}),
    });
  }
  const err = new HiqliteError(e.code, e.message, { retryable: e.retryable });
  const extra: { leaderId?: number | null; info?: Record<string, unknown> } = {};
  if (e.leaderId !== undefined) extra.leaderId = e.leaderId;
  if (e.details !== undefined) extra.info = { code: e.code, message: e.message, ...e.details };
  return Object.assign(err, extra);
}

/**
 * A start that failed on the file system or in SQLite (a read-only or full disk, a file it may
 * not open under data_dir) is HQL_IO naming what failed, as the same failure is once the node
 * runs: it was Node's or SQLite's bare error (`EROFS: read-only file system, open …`), untyped.
 */
function startFailure(e: unknown, nodeId: number): unknown {
  if (e instanceof HiqliteError || !(e instanceof Error)) return e;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^(E[A-Z0-9]+|SQLITE_[A-Z_]+)$/.test(code)) return e;
  const reason = unusableDirReason(e);
  return new HiqliteError(
    'HQL_IO',
    `node ${nodeId} cannot start: ${e.message}${reason === null ? '' : ` (${reason})`}`,
    { retryable: false, cause: e },
  );
}
