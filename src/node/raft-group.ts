/**
 * One Raft group at run time: the pure core joined with a log store, a state machine, a
 * transport and a clock. The only place where consensus meets I/O.
 *
 * The loop, per Ready (see the contract in src/raft/types.ts):
 *   send rd.messages → persist (snapshot, entries, hard state) → send rd.messagesAfterPersist
 *   → queue rd.committed for the apply pipeline → advance.
 * Application runs in its own ordered pipeline, so a slow apply never delays persistence or
 * acknowledgements, and messages that do not depend on persistence (heartbeats, the leader's
 * appends) leave at once through `takeMessages()`, even while a disk write is in flight.
 */
import { assert } from '../lib/assert.js';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { HiqliteError, outcomeUnknown } from '../lib/errors.js';
import { RaftCore } from '../raft/raft.js';
import type {
  Entry,
  HardState,
  LogIndex,
  Membership,
  MembershipChange,
  Message,
  NodeId,
  RaftConfig,
  Ready,
  SnapshotMeta,
  Status,
  Term,
} from '../raft/types.js';
import type { LogStore } from '../storage/log-store.js';
import type {
  GroupId,
  GroupSnapshotStore,
  GroupStateMachine,
  GroupTransport,
  StoredSnapshot,
} from './seams.js';

/**
 * Test only: make the runtime wrong on purpose, so that the simulator's planted-bug hunt
 * (test/sim, `npm run sim:bugs`) proves its checkers see it. Never set outside tests.
 */
export interface RuntimePlantedBugs {
  /** Send acknowledgements (`messagesAfterPersist`) before the log write is durable. */
  readonly ackBeforePersist?: boolean;
  /** Answer a linearizable read at its read index without waiting for this node to apply it. */
  readonly readBeforeApply?: boolean;
  /**
   * Install a received snapshot without discarding a log that contradicts it (Raft §7): when the
   * log holds the snapshot's index with another term, purge up to it as if it matched, keeping
   * the entries after it.
   */
  readonly snapshotKeepsConflictingTail?: boolean;
  /** A snapshot that fails (its copy does not fit on the disk) stops the group, as it once did. */
  readonly snapshotFailureStops?: boolean;
}

export interface RaftGroupOptions {
  readonly group: GroupId;
  readonly raft: Omit<RaftConfig, 'random'> & { random: RaftConfig['random'] };
  /** The membership a node starts with when it has no state at all. */
  readonly initialMembership: Membership;
  readonly tickIntervalMs: number;
  readonly logStore: LogStore;
  /**
   * At open, recovery restores the newest snapshot when the state machine is behind it, as it
   * is: the embedder drops one whose data does not match its checksum first, before it decides
   * whether the node can start from what it holds (group-setup.ts, dropDamagedSnapshots).
   */
  readonly snapshots: GroupSnapshotStore;
  readonly stateMachine: GroupStateMachine;
  readonly transport: GroupTransport;
  readonly clock: Clock;
  /**
   * Runs `fn` once the work of the current event-loop turn is done: the loop coalesces what one
   * turn produced into one flush. Default `setImmediate`; the simulator puts it on its agenda.
   */
  readonly defer?: (fn: () => void) => void;
  /**
   * Take a snapshot after this many applied entries since the last one, once their command
   * bytes are at least `1 / snapshotCostRatioMax` of the state machine's size (a snapshot
   * copies all of it: this bounds the bytes copied per byte of log; without `sizeBytes` the
   * entry count alone decides)…
   */
  readonly snapshotEntriesThreshold: number;
  readonly snapshotCostRatioMax: number;
  /** …or after this many applied command bytes, whatever the size. */
  readonly snapshotBytesThreshold: number;
  /** Entries kept in the log behind a snapshot, for followers that lag a little. */
  readonly snapshotTrailingEntries: number;
  /** Committed entries waiting for the apply pipeline before Readies pause. */
  readonly applyQueueEntriesMax: number;
  readonly logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /**
   * The group stopped: a disk failure, or a broken invariant (a bug). It serves nothing more;
   * the embedder decides whether the process exits (the CLI does: a supervisor restarts it and
   * recovery runs from disk).
   */
  readonly onFatal?: (error: Error) => void;
  /** Test only (see RuntimePlantedBugs). */
  readonly plantedBugs?: RuntimePlantedBugs;
}

export interface ProposalOutcome {
  readonly index: LogIndex;
  readonly result: unknown;
}

interface PendingProposal {
  readonly term: Term;
  readonly resolve: (o: ProposalOutcome) => void;
  readonly reject: (e: Error) => void;
  /** monotonicMs() when the proposal ends with HQL_OUTCOME_UNKNOWN (expireProposals). */
  readonly deadlineMs: number;
  readonly timeoutMs: number;
}

interface ReadWaiter {
  readonly index: LogIndex;
  readonly resolve: (index: LogIndex) => void;
  readonly reject: (e: Error) => void;
}

/** How long close() waits for the loop and the apply pipeline by default. */
const CLOSE_TIMEOUT_MS_DEFAULT = 10_000;
/** After a failed snapshot the next is tried this much later, doubling up to the max (snapshotFailed). */
const SNAPSHOT_RETRY_MIN_MS = 1000;
const SNAPSHOT_RETRY_MAX_MS = 60_000;

/** The pause after the `failures`-th failure in a row: `minMs`, doubling, at most `maxMs`. */
function doublingPauseMs(failures: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(failures - 1, 30));
}

/** The first pause before a failed snapshot send to a peer is tried again; it doubles per failure. */
const SNAPSHOT_SEND_RETRY_MS = 200;
const SNAPSHOT_SEND_RETRY_MAX_MS = 10_000;

export class RaftGroup {
  readonly group: GroupId;
  private readonly o: RaftGroupOptions;
  private core!: RaftCore;
  private closed = false;
  private tickTimer: TimerHandle | null = null;
  private flushScheduled = false;
  private readyBusy: Promise<void> | null = null;
  private fatal: Error | null = null;

  private readonly proposals = new Map<number, PendingProposal>();
  /** The timer of the earliest proposal deadline (armProposalTimer), and when it fires. */
  private proposalTimer: TimerHandle | null = null;
  private proposalTimerAtMs = Number.POSITIVE_INFINITY;
  private readonly reads = new Map<number, { resolve: (i: LogIndex) => void; reject: (e: Error) => void }>();
  private readWaiters: ReadWaiter[] = [];
  private readonly appliedWaiters: ReadWaiter[] = [];
  private nextReadId = 1;

  // Apply pipeline.
  private applyQueue: Entry[][] = [];
  private applyQueuedEntries = 0;
  private applying: Promise<void> | null = null;
  /** When the batch the state machine is applying now was handed to it (null: none is). */
  private applyStartedAtMs: number | null = null;
  private appliedIndex = 0 as LogIndex;
  private lastSnapshotIndex = 0 as LogIndex;
  private appliedBytesSinceSnapshot = 0;
  /** Term and vote as last written to the hard-state file. */
  private persistedTerm = 0 as Term;
  private persistedVote: NodeId | null = null;
  private snapshotting = false;
  /** Snapshots failed in a row, and when the next may be tried (monotonic ms): snapshotFailed. */
  private snapshotFailures = 0;
  private snapshotRetryAtMs = 0;
  /** A damaged snapshot was dropped: take one now, whatever the policy says (remakeSnapshot). */
  private snapshotWanted = false;

  /** Watchers of role / leader changes. */
  private readonly leaderWatchers = new Set<(s: { role: Status['role']; leaderId: NodeId | null }) => void>();

  private readonly defer: (fn: () => void) => void;

  private constructor(options: RaftGroupOptions) {
    this.o = options;
    this.group = options.group;
    this.defer = options.defer ?? ((fn) => setImmediate(fn));
  }

  /** Recovers the group's state from disk (self-healing where it can) and starts ticking. */
  static async open(options: RaftGroupOptions): Promise<RaftGroup> {
    const g = new RaftGroup(options);
    await g.recover();
    g.scheduleTick();
    return g;
  }

  // ---------------------------------------------------------------------------------------------
  // Public API
  // ---------------------------------------------------------------------------------------------

  /** A message from a peer, already authenticated and decoded by the transport. */
  receive(message: Message): void {
    if (this.closed) return;
    this.core.step(message);
    this.scheduleFlush();
  }

  /**
   * A snapshot fully received from `from` into `path`: hand the core its metadata message. The
   * state machine installs it when the core says so (Ready.snapshot).
   */
  receiveSnapshot(message: Extract<Message, { type: 'snapshot' }>, path: string): void {
    if (this.closed) {
      void this.o.snapshots.discard(path).catch(() => {});
      return;
    }
    const earlier = [...this.incomingSnapshots];
    this.incomingSnapshots.clear();
    this.incomingSnapshots.set(message.snapshot.index, path);
    this.core.step(message);
    // Keep only the file of the snapshot the core will install (its next Ready says so): one it
    // did not take (it was behind, or from an old term) would otherwise stay on disk until the
    // next start. Which one that is, the core decides: a snapshot received while an earlier one
    // waits for its Ready is not necessarily newer (a delayed stream of an older one), and the
    // waiting one's file must not go (its install would find nothing).
    const pending = this.core.pendingSnapshotIndex();
    for (const [index, old] of earlier) {
      if (index === pending && index !== message.snapshot.index) this.incomingSnapshots.set(index, old);
      else void this.o.snapshots.discard(old).catch(() => {});
    }
    if (pending !== message.snapshot.index) {
      this.incomingSnapshots.delete(message.snapshot.index);
      void this.o.snapshots.discard(path).catch(() => {});
    }
    this.scheduleFlush();
  }
  private readonly incomingSnapshots = new Map<number, string>();
  /** Snapshot sends to each peer that failed in a row (their retries back off). */
  private readonly snapshotSendFailures = new Map<NodeId, number>();
  /**
   * The snapshot (path and checksum) whose data last passed its check and then went out whole
   * to a peer: sent again (to another peer, or to one that lost it) without reading it through
   * first. Any failed send forgets it: a peer that refused the stream (its bytes did not match
   * the checksum) makes the next attempt read the file through again, and drop it if damaged.
   */
  private snapshotSentAfterCheck: string | null = null;

  /** Proposes a command; resolves with its state-machine result once applied on this node. */
  propose(data: Uint8Array, options: { timeoutMs: number }): Promise<ProposalOutcome> {
    this.checkUsable();
    const r = this.core.propose(data);
    if (!r.ok) return Promise.reject(proposeError(r.error));
    this.scheduleFlush();
    return this.track(r.index, r.term, options.timeoutMs);
  }

  proposeMembership(change: MembershipChange, options: { timeoutMs: number }): Promise<ProposalOutcome> {
    this.checkUsable();
    const r = this.core.proposeMembership(change);
    if (!r.ok) return Promise.reject(proposeError(r.error));
    this.scheduleFlush();
    return this.track(r.index, r.term, options.timeoutMs);
  }

  /**
   * A linearizable read point (ReadIndex, thesis §6.4): resolves once this node has applied
   * everything committed when the request was made. Works on followers.
   */
  readBarrier(options: { timeoutMs: number }): Promise<LogIndex> {
    this.checkUsable();
    const id = this.nextReadId++;
    return new Promise<LogIndex>((resolve, reject) => {
      let settled = false;
      const entry = {
        resolve: (i: LogIndex) => {
          if (settled) return;
          settled = true;
          this.o.clock.clearTimer(timer);
          resolve(i);
        },
        reject: (e: Error) => {
          if (settled) return;
          settled = true;
          this.o.clock.clearTimer(timer);
          reject(e);
        },
      };
      // The deadline covers both halves: the leader's confirmation (in `reads`) and this node
      // applying up to the read index (in `readWaiters`, which a stuck apply never empties).
      const timer = this.o.clock.setTimer(() => {
        this.reads.delete(id);
        this.readWaiters = this.readWaiters.filter((w) => w.resolve !== entry.resolve);
        entry.reject(timeoutError('linearizable read', options.timeoutMs));
      }, options.timeoutMs);
      this.reads.set(id, entry);
      this.core.readIndex(id);
      this.scheduleFlush();
    });
  }

  /** Resolves once this node has applied `index` (read-your-writes). */
  waitForApplied(index: LogIndex, options: { timeoutMs: number }): Promise<LogIndex> {
    if (this.appliedIndex >= index) return Promise.resolve(this.appliedIndex);
    return new Promise<LogIndex>((resolve, reject) => {
      const timer = this.o.clock.setTimer(() => {
        const i = this.appliedWaiters.indexOf(waiter);
        if (i >= 0) this.appliedWaiters.splice(i, 1);
        reject(timeoutError(`waiting for index ${index} to be applied`, options.timeoutMs));
      }, options.timeoutMs);
      const waiter: ReadWaiter = {
        index,
        resolve: (i) => {
          this.o.clock.clearTimer(timer);
          resolve(i);
        },
        reject: (e) => {
          this.o.clock.clearTimer(timer);
          reject(e);
        },
      };
      this.appliedWaiters.push(waiter);
    });
  }

  transferLeadership(to: NodeId): { ok: true } | { ok: false; reason: string } {
    const r = this.core.transferLeadership(to);
    this.scheduleFlush();
    return r;
  }

  /** Start an election now (bootstrap). */
  campaign(): void {
    this.core.campaign();
    this.scheduleFlush();
  }

  status(): Status {
    return this.core.status();
  }

  /** Whether this node leads the group now: cheap (status() copies the leader's progress). */
  isLeader(): boolean {
    return this.core.currentRole === 'leader';
  }

  /** The leader this node knows now (itself when it leads): cheap, as isLeader(). */
  leaderId(): NodeId | null {
    return this.core.currentLeaderId;
  }

  /** The membership now: cheap, as isLeader(). */
  membership(): Membership {
    return this.core.currentMembership();
  }

  /** The entries [lo, hiExclusive) the core holds in memory (checkers, diagnostics). */
  entries(lo: LogIndex, hiExclusive: LogIndex): Entry[] {
    return this.core.entries(lo, hiExclusive);
  }

  applied(): LogIndex {
    return this.appliedIndex;
  }

  /**
   * How long the state machine has been applying its current batch, in ms; 0 when it is not
   * applying. A write that never ends shows here (heartbeats and elections carry on meanwhile).
   */
  applyStalledMs(): number {
    return this.applyStartedAtMs === null ? 0 : this.o.clock.monotonicMs() - this.applyStartedAtMs;
  }

  onLeaderChange(fn: (s: { role: Status['role']; leaderId: NodeId | null }) => void): () => void {
    this.leaderWatchers.add(fn);
    return () => this.leaderWatchers.delete(fn);
  }

  reportUnreachable(to: NodeId): void {
    if (this.closed) return;
    this.core.reportUnreachable(to);
  }

  /**
   * Stops ticking, waits for the loop and the apply pipeline, fails what is pending. Bounded:
   * an apply still running after `timeoutMs` is interrupted (the state machine rolls the batch
   * back; it is applied again at the next start), and a state machine that cannot be interrupted
   * is left behind after a second `timeoutMs`.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const timeoutMs = options.timeoutMs ?? CLOSE_TIMEOUT_MS_DEFAULT;
    if (this.tickTimer !== null) this.o.clock.clearTimer(this.tickTimer);
    const idle = async () => {
      await this.readyBusy;
      await this.drainApply();
    };
    let stopped = await this.within(idle(), timeoutMs);
    if (!stopped) {
      this.o.logger?.warn(
        { group: this.group, applyingForMs: this.applyStalledMs() },
        'the state machine is still applying at shutdown: interrupting it',
      );
      this.o.stateMachine.interrupt?.();
      stopped = await this.within(idle(), timeoutMs);
    }
    this.settlePending(
      new HiqliteError('HQL_CLOSED', `raft group ${this.group} is closed`, { retryable: true }),
      'the node shut down before the write was applied',
    );
    if (stopped) await this.within(this.o.stateMachine.close(), timeoutMs);
    else {
      this.o.logger?.warn(
        { group: this.group },
        'the state machine did not stop: closing without it (the process may not exit)',
      );
    }
    await this.o.logStore.close();
  }

  /** Waits for `p` at most `ms`; true when it settled in time. */
  private within(p: Promise<unknown>, ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = this.o.clock.setTimer(() => resolve(false), ms);
      p.then(
        () => {
          this.o.clock.clearTimer(timer);
          resolve(true);
        },
        () => {
          this.o.clock.clearTimer(timer);
          resolve(true);
        },
      );
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Recovery
  // ---------------------------------------------------------------------------------------------

  private async recover(): Promise<void> {
    const { logStore, snapshots, stateMachine } = this.o;
    const purged = (logStore.firstIndex() - 1) as LogIndex;
    // The log was compacted behind a snapshot that is gone (snapshot files lost or deleted).
    if (purged > (snapshots.latest()?.meta.index ?? 0)) await this.rebuildSnapshot(purged);
    let stored = snapshots.latest();
    let snapshot: SnapshotMeta = stored?.meta ?? {
      index: 0 as LogIndex,
      term: 0 as Term,
      membership: this.o.initialMembership,
    };
    let hs: HardState = logStore.loadHardState() ?? { term: 0 as Term, vote: null, commit: 0 as LogIndex };
    let applied = stateMachine.appliedIndex();
    assert(purged <= snapshot.index, `log purged to ${purged} beyond the newest snapshot ${snapshot.index}`);

    // The state machine is ahead of the log: the log lost a tail of durable entries (the state
    // machine never gets ahead of this node's durable log). With other nodes the start decision
    // discarded this state already (the node acknowledged entries it no longer holds: it rejoins,
    // it does not vote from the shorter log); a node configured alone gets here
    // (openGroupStorage): its state machine holds every entry it applied, so a snapshot of it
    // covers the lost entries, and the log starts again after it (below).
    if (applied > logStore.lastIndex() && applied > snapshot.index) {
      await this.snapshotStateMachine(
        { applied, lastIndex: logStore.lastIndex() },
        'state machine ahead of the log (its tail was lost): taking a snapshot of the state machine to start from',
      );
      stored = snapshots.latest();
      if (stored !== null) snapshot = stored.meta;
    }
    // The state machine is behind the snapshot (its files were lost, or it lives in memory and
    // starts empty, the normal start of the cache group: found noisy from outside, a warning at
    // every restart): restore the snapshot.
    if (applied < snapshot.index && stored !== null) {
      const fields = { group: this.group, applied, snapshot: snapshot.index };
      if (stateMachine.volatile === true)
        this.o.logger?.info(fields, 'restoring the state machine (held in memory) from its latest snapshot');
      else this.o.logger?.warn(fields, 'state machine behind the snapshot: restoring it');
      await stateMachine.restore(stored.path, stored.meta);
      applied = stateMachine.appliedIndex();
    }
    // The log must hold the snapshot's point (Raft §7): keep what follows it, or start afresh
    // after it when the log lacks or contradicts it.
    if (logStore.termAt(snapshot.index) !== snapshot.term)
      await logStore.purgeTo(snapshot.index, snapshot.term);
    const from = Math.max(logStore.firstIndex(), snapshot.index + 1) as LogIndex;
    const entries = bootEntries(logStore, from, applied);
    // A commit index beyond the log (lost tail) falls back; applied implies committed.
    const commit = Math.max(Math.min(hs.commit, logStore.lastIndex()), applied, snapshot.index) as LogIndex;
    if (commit !== hs.commit) hs = { ...hs, commit };
    assert(applied >= snapshot.index, `state machine at ${applied} behind snapshot ${snapshot.index}`);
    this.appliedIndex = applied;
    this.lastSnapshotIndex = snapshot.index;
    this.persistedTerm = hs.term;
    this.persistedVote = hs.vote;
    // The core keeps the payload of entries only until they are applied; a lagging peer's are
    // read back from the log store (its cache, else the segment files).
    const raft = {
      ...this.o.raft,
      readEntries: (lo: LogIndex, hi: LogIndex, bytesMax: number) => logStore.entries(lo, hi, bytesMax),
    };
    this.core = new RaftCore(raft, { hardState: hs, snapshot, entries, appliedIndex: applied });
  }

  /**
   * The entries up to `purged` are gone from the log and no snapshot covers them. If the state
   * machine holds them (its applied index is at least `purged`), it makes that snapshot again
   * and the group boots from it. Otherwise this node's state cannot be recovered here: it must
   * be discarded and the node rejoin as a new one (LocalStateLostError).
   */
  private async rebuildSnapshot(purged: LogIndex): Promise<void> {
    const { logStore, snapshots, stateMachine } = this.o;
    if (stateMachine.appliedIndex() < purged) {
      throw new LocalStateLostError(
        lostLocalState(logStore, snapshots, stateMachine.appliedIndex()) ??
          `the log starts after index ${purged}, but no snapshot covers it`,
      );
    }
    await this.snapshotStateMachine(
      { purged, applied: stateMachine.appliedIndex() },
      'no snapshot covers the compacted log: making one again from the state machine',
    );
  }

  /** Writes and commits a snapshot of the state machine as it is (recovery at start). */
  private async snapshotStateMachine(fields: object, why: string): Promise<void> {
    const { snapshots, stateMachine } = this.o;
    this.o.logger?.warn({ group: this.group, ...fields }, why);
    const path = snapshots.tempPath();
    const { index, term, membership } = await stateMachine.snapshot(path);
    await snapshots.commit(path, { index, term, membership: membership ?? this.o.initialMembership });
  }

  // ---------------------------------------------------------------------------------------------
  // The loop
  // ---------------------------------------------------------------------------------------------

  private scheduleTick(): void {
    if (this.closed) return;
    this.tickTimer = this.o.clock.setTimer(
      () => {
        this.tickTimer = null;
        if (this.closed) return;
        this.core.tick();
        this.flush();
        this.reportRegressions();
        this.scheduleTick();
      },
      this.o.tickIntervalMs,
      { keepAlive: false },
    );
  }

  /** Regressions of followers already reported, by follower (this leadership's progress). */
  private regressionsReported = new Map<NodeId, number>();

  /**
   * Says so once per occurrence when, as leader, a follower was found holding less of the log
   * than it acknowledged: someone restored an older copy of its data directory (or its log lost a
   * tail). The leader sends it what it lacks; but the entries it had acknowledged were counted
   * for commits, and a copy brings back an older vote.
   */
  private reportRegressions(): void {
    const now = this.core.followerRegressions();
    for (const [peer, n] of now) {
      if (n <= (this.regressionsReported.get(peer) ?? 0)) continue;
      this.o.logger?.warn(
        { group: this.group, peer },
        'a follower holds less of the log than it acknowledged (an older copy of its data directory restored, or its log lost a tail): sending it what it lacks. Never restore a node from a copy: wipe its data directory and let it rejoin',
      );
    }
    if (now.size > 0 || this.regressionsReported.size > 0) this.regressionsReported = new Map(now);
  }

  /** Coalesce work of one event-loop turn into one flush. */
  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    this.defer(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.fatal !== null) return;
    const d = this.core.divergence();
    if (d !== null) {
      this.fail(
        new HiqliteError(
          'HQL_CORRUPTION',
          `${
            d.leaders === 0
              ? `this node's committed log differs from its leader's (node ${d.leader}): it holds entries committed up to index ${d.index}, and the leader's whole log ends at ${d.leaderLastIndex}`
              : `this node's committed log differs from its leader's (node ${d.leader}) at index ${d.index} (term ${d.ours} here, ${d.leaders} at the leader)`
          }: the cluster lost committed entries this node still holds (a majority of nodes lost data: older copies of data directories restored, or volumes wiped). This node stops rather than serve another history: copy what you need from its database, then delete its data directory and start it to rejoin`,
          { retryable: false },
        ),
        "raft group stopped: its committed log conflicts with the leader's",
      );
      return;
    }
    this.sendAll(this.core.takeMessages());
    // Entries committed while a Ready's disk write is in flight, and already durable here, go to
    // the state machine now instead of after that write (see RaftCore.takeCommitted).
    if (this.applyQueuedEntries < this.o.applyQueueEntriesMax) {
      const committed = this.core.takeCommitted();
      if (committed.length > 0) this.enqueueApply(committed);
    }
    if (
      this.readyBusy === null &&
      this.applyQueuedEntries < this.o.applyQueueEntriesMax &&
      this.core.hasReady()
    ) {
      this.readyBusy = this.handleReady(this.core.ready())
        .catch((e: unknown) => this.fail(e))
        .finally(() => {
          this.readyBusy = null;
          if (!this.closed) this.flush();
        });
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    this.sendAll(rd.messages);
    if (rd.softState !== null) this.onSoftState(rd.softState);
    // Persist: snapshot, then entries and hard state (in parallel: both must be durable).
    if (rd.snapshot !== null) await this.installSnapshot(rd.snapshot);
    // Committed entries that earlier Readies already made durable here can be applied while this
    // Ready's disk write is in flight: they are committed on a quorum, and the state machine
    // never gets ahead of this node's durable log. On a leader that is every committed entry, so
    // a write's result does not wait for the fsync of the batch behind it.
    const firstNew = rd.entries[0]?.index ?? Number.POSITIVE_INFINITY;
    let applyLater: readonly Entry[] = rd.committed;
    if (rd.committed.length > 0 && (rd.committed[0] as Entry).index < firstNew) {
      const early = rd.committed.filter((e) => e.index < firstNew);
      applyLater =
        rd.committed.length === early.length ? [] : rd.committed.filter((e) => e.index >= firstNew);
      this.enqueueApply(early as Entry[]);
    }
    const writes: Promise<void>[] = [];
    if (rd.entries.length > 0) writes.push(this.o.logStore.append(rd.entries));
    // Term and vote must be durable before any message that depends on them. The commit index
    // need not be (Raft keeps it volatile; after a restart the leader re-establishes it and the
    // state machine's own applied index is durable), so a Ready that only moves the commit index
    // costs no hard-state write: that saves a file fsync and a directory fsync per batch.
    const hs = rd.hardState;
    if (hs !== null && (hs.term !== this.persistedTerm || hs.vote !== this.persistedVote)) {
      writes.push(this.o.logStore.saveHardState(hs));
      this.persistedTerm = hs.term;
      this.persistedVote = hs.vote;
    }
    // Raft Figure 2: votes and acknowledgements promise what is on stable storage.
    const ackEarly = this.o.plantedBugs?.ackBeforePersist === true;
    if (ackEarly) this.sendAll(rd.messagesAfterPersist);
    await Promise.all(writes);
    if (!ackEarly) this.sendAll(rd.messagesAfterPersist);
    if (applyLater.length > 0) this.enqueueApply(applyLater as Entry[]);
    for (const rs of rd.readStates) this.onReadState(rs.requestId, rs.index);
    for (const rf of rd.readFailures) {
      const r = this.reads.get(rf.requestId);
      if (r === undefined) continue;
      this.reads.delete(rf.requestId);
      r.reject(
        new HiqliteError('HQL_UNAVAILABLE', `linearizable read failed: ${rf.reason}`, { retryable: true }),
      );
    }
    this.core.advance(rd);
  }

  private sendAll(messages: readonly Message[]): void {
    for (const m of messages) {
      if (m.type === 'snapshot') this.sendSnapshot(m);
      else this.o.transport.send(this.group, m);
    }
  }

  private sendSnapshot(m: Extract<Message, { type: 'snapshot' }>): void {
    const stored = this.o.snapshots.latest();
    if (stored === null || stored.meta.index !== m.snapshot.index) {
      // The one the core means was dropped as damaged, and making it again failed (it retries
      // after its pause in maybeSnapshot): without new entries nothing else would ask again.
      if (this.snapshotWanted) this.remakeSnapshot();
      this.core.reportSnapshot(m.to, false);
      return;
    }
    const report = (ok: boolean) => {
      if (ok) {
        this.snapshotSendFailures.delete(m.to);
        this.core.reportSnapshot(m.to, true);
        this.scheduleFlush();
        return;
      }
      // A peer that cannot take it (unreachable, restarting) is offered it again after a pause
      // that doubles, up to SNAPSHOT_SEND_RETRY_MAX_MS: reported at once, the core sent it again on
      // the next round, hundreds of times a second (each a failure and a log line) while the
      // peer was down. Until then the core counts the send as under way and sends no other.
      const failures = (this.snapshotSendFailures.get(m.to) ?? 0) + 1;
      this.snapshotSendFailures.set(m.to, failures);
      // Not kept alive: a closed group does not hold its process for the pause.
      this.o.clock.setTimer(
        () => {
          if (this.closed || this.fatal !== null) return;
          this.core.reportSnapshot(m.to, false);
          this.scheduleFlush();
        },
        doublingPauseMs(failures, SNAPSHOT_SEND_RETRY_MS, SNAPSHOT_SEND_RETRY_MAX_MS),
        { keepAlive: false },
      );
    };
    this.sendCheckedSnapshot(m, stored).then(report, (e: unknown) => {
      this.o.logger?.warn(
        { group: this.group, peer: m.to, err: e instanceof Error ? e.message : String(e) },
        'snapshot could not be read to be sent',
      );
      report(false);
    });
  }

  /**
   * Reads the snapshot through before any of it leaves (GroupSnapshotStore.check), so one whose
   * data no longer matches its checksum is never sent: it is dropped as a lost one would be,
   * and a new one is made from the state machine (remakeSnapshot); the send counts as failed, so
   * the core offers the peer the new snapshot after the send retry's pause. The peer checks the
   * stream against the same checksum, which covers damage between the check and the stream.
   * A snapshot that passed its check and then went out whole is not read through again before
   * its next send (snapshotSentAfterCheck): a read of the file per send, not two; after a failed
   * send (a peer that refused damaged bytes among them) the next attempt checks again.
   */
  private async sendCheckedSnapshot(
    m: Extract<Message, { type: 'snapshot' }>,
    stored: StoredSnapshot,
  ): Promise<boolean> {
    let snapshot = stored;
    if (this.snapshotSentAfterCheck !== checkedKey(stored)) {
      const checked = await this.o.snapshots.check(stored);
      if (!checked.ok) {
        await this.snapshotDamaged(stored, checked.reason);
        return false;
      }
      snapshot = checked.snapshot;
    }
    if (this.closed || this.fatal !== null) return false;
    this.snapshotSentAfterCheck = null;
    const sent = await this.o.transport.sendSnapshot(this.group, { ...m, snapshot: snapshot.meta }, snapshot);
    if (sent && snapshot.sha256 !== null) this.snapshotSentAfterCheck = checkedKey(snapshot);
    return sent;
  }

  /**
   * The data of a committed snapshot does not match its checksum (a flipped bit on the disk, an
   * edit by hand): it must never be restored or sent. It is dropped, as if its files were lost,
   * and the state machine, which has applied at least as far, makes it again (as recovery does
   * for a lost snapshot, rebuildSnapshot); until then the peers that need one wait.
   */
  private async snapshotDamaged(stored: StoredSnapshot, reason: string): Promise<void> {
    this.o.logger?.warn(
      { group: this.group, file: stored.path, index: stored.meta.index, reason },
      'snapshot damaged: dropped as if lost, and made again from the state machine',
    );
    await this.o.snapshots.drop(stored);
    this.remakeSnapshot();
  }

  /**
   * Takes a snapshot soon, whatever the policy says, even at the index of the last one. It runs
   * in the apply pipeline (an empty batch), where every snapshot is taken: never beside an
   * apply, and awaited by close().
   */
  private remakeSnapshot(): void {
    if (this.closed || this.fatal !== null) return;
    this.snapshotWanted = true;
    this.enqueueApply([]);
  }

  /**
   * Installs a snapshot received from the leader. Its bytes were checked against the leader's
   * checksum as they arrived (src/transport/snapshot-receiver.ts: a stream that does not match
   * never reaches receiveSnapshot), and commit records their checksum for this node's own
   * restores and sends; they are not read through a third time before the restore.
   */
  private async installSnapshot(meta: SnapshotMeta): Promise<void> {
    const path = this.incomingSnapshots.get(meta.index);
    assert(path !== undefined, `snapshot ${meta.index} to install was never received`);
    this.incomingSnapshots.clear();
    // Entries handed to the apply pipeline earlier are all older than the snapshot.
    await this.drainApply();
    const stored = await this.o.snapshots.commit(path, meta);
    await this.o.stateMachine.restore(stored.path, meta);
    // Raft §7: the log keeps what follows the snapshot only if it holds the snapshot's last entry.
    const keepTail = this.o.plantedBugs?.snapshotKeepsConflictingTail === true;
    const purgeTerm = keepTail ? (this.o.logStore.termAt(meta.index) ?? meta.term) : meta.term;
    await this.o.logStore.purgeTo(meta.index, purgeTerm);
    this.lastSnapshotIndex = meta.index;
    this.setApplied(meta.index);
    // Proposals at or below the snapshot were decided without this node seeing which entry won.
    for (const [index, p] of this.proposals) {
      if (index > meta.index) continue;
      this.proposals.delete(index);
      p.reject(outcomeUnknown('a snapshot replaced the log before the write was seen applied'));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Apply pipeline
  // ---------------------------------------------------------------------------------------------

  private enqueueApply(entries: Entry[]): void {
    this.applyQueue.push(entries);
    this.applyQueuedEntries += entries.length;
    if (this.applying === null) this.applying = this.runApply();
  }

  private async runApply(): Promise<void> {
    try {
      for (let batch = this.applyQueue.shift(); batch !== undefined; batch = this.applyQueue.shift()) {
        // Merge what queued up meanwhile into one state-machine batch (one SQLite transaction).
        while (this.applyQueue.length > 0 && batch.length < 4096)
          batch = batch.concat(this.applyQueue.shift() as Entry[]);
        const fresh = batch.filter((e) => e.index > this.appliedIndex);
        if (fresh.length > 0) {
          const wanted = fresh.map((e) => this.proposals.has(e.index));
          this.applyStartedAtMs = this.o.clock.monotonicMs();
          let results: readonly unknown[];
          try {
            results = await this.o.stateMachine.apply(fresh, wanted);
          } finally {
            this.applyStartedAtMs = null;
          }
          assert(results.length === fresh.length, 'state machine returned a result per entry');
          this.onApplied(fresh, results);
        }
        this.applyQueuedEntries -= batch.length;
        await this.maybeSnapshot();
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.applying = null;
      if (this.applyQueue.length > 0 && this.fatal === null) this.applying = this.runApply();
      else this.scheduleFlush();
    }
  }

  private async drainApply(): Promise<void> {
    while (this.applying !== null) await this.applying;
  }

  private onApplied(entries: readonly Entry[], results: readonly unknown[]): void {
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Entry;
      const p = this.proposals.get(e.index);
      if (p === undefined) continue;
      this.proposals.delete(e.index);
      if (p.term === e.term) p.resolve({ index: e.index, result: results[i] });
      else {
        p.reject(
          new HiqliteError(
            'HQL_PROPOSAL_DROPPED',
            'the write was overwritten by a new leader and never applied',
            {
              retryable: true,
            },
          ),
        );
      }
    }
    for (const e of entries) if (e.kind === 'command') this.appliedBytesSinceSnapshot += e.data.byteLength;
    const last = entries[entries.length - 1];
    if (last !== undefined) this.setApplied(last.index);
  }

  private setApplied(index: LogIndex): void {
    if (index <= this.appliedIndex) return;
    this.appliedIndex = index;
    const waiting = this.readWaiters;
    this.readWaiters = [];
    for (const w of waiting) {
      if (w.index <= index) w.resolve(w.index);
      else this.readWaiters.push(w);
    }
    for (let i = this.appliedWaiters.length - 1; i >= 0; i--) {
      const w = this.appliedWaiters[i] as ReadWaiter;
      if (w.index <= index) {
        this.appliedWaiters.splice(i, 1);
        w.resolve(index);
      }
    }
  }

  private onReadState(requestId: number, index: LogIndex): void {
    const r = this.reads.get(requestId);
    if (r === undefined) return;
    this.reads.delete(requestId);
    // Thesis §6.4 step 4: serve the read only once this node has applied up to its read index.
    if (index <= this.appliedIndex || this.o.plantedBugs?.readBeforeApply === true) r.resolve(index);
    else this.readWaiters.push({ index, resolve: r.resolve, reject: r.reject });
  }

  private async maybeSnapshot(): Promise<void> {
    if (this.snapshotting || this.closed) return;
    const bytesDue = this.appliedBytesSinceSnapshot >= this.o.snapshotBytesThreshold;
    const entriesDue =
      this.appliedIndex - this.lastSnapshotIndex >= this.o.snapshotEntriesThreshold &&
      this.appliedBytesSinceSnapshot * this.o.snapshotCostRatioMax >=
        (this.o.stateMachine.sizeBytes?.() ?? 0);
    const wanted = this.snapshotWanted;
    if (!entriesDue && !bytesDue && !wanted) return;
    if (this.o.clock.monotonicMs() < this.snapshotRetryAtMs) return;
    this.snapshotting = true;
    try {
      const path = this.o.snapshots.tempPath();
      let index: LogIndex;
      let term: Term;
      let meta: SnapshotMeta;
      try {
        ({ index, term } = await this.o.stateMachine.snapshot(path));
        // While the state machine copied itself, the core may have taken a newer snapshot from
        // the leader (its log now starts after `index`): this one is obsolete. One that replaces
        // a damaged snapshot may have its index.
        const obsolete = index < this.lastSnapshotIndex || (index === this.lastSnapshotIndex && !wanted);
        if (index < this.core.status().firstIndex - 1 || obsolete) {
          await this.o.snapshots.discard(path);
          return;
        }
        meta = { index, term, membership: this.core.membershipAt(index) };
        await this.o.snapshots.commit(path, meta);
      } catch (e) {
        this.snapshotFailed(e, path);
        if (this.o.plantedBugs?.snapshotFailureStops === true) throw e;
        return;
      }
      this.snapshotFailures = 0;
      this.snapshotRetryAtMs = 0;
      this.snapshotWanted = false;
      this.lastSnapshotIndex = index;
      this.appliedBytesSinceSnapshot = 0;
      const compactTo = Math.max(0, index - this.o.snapshotTrailingEntries) as LogIndex;
      const compactTerm = compactTo === index ? term : this.o.logStore.termAt(compactTo);
      this.core.compact(meta, compactTo);
      if (compactTerm !== undefined && compactTo > 0) await this.o.logStore.purgeTo(compactTo, compactTerm);
    } finally {
      this.snapshotting = false;
    }
  }

  /**
   * A snapshot could not be made or stored (its copy of the state machine filled the disk, say):
   * nothing else depends on it, so the node goes on with its log uncompacted and tries again
   * after a backoff (SNAPSHOT_RETRY_MIN_MS doubling to SNAPSHOT_RETRY_MAX_MS). As a fatal error it
   * was a correlated failure: every node snapshots at about the same index, and a database too large
   * for the disk's free space stopped all of them at once. A log or state machine that cannot
   * be written still stops the group (their failures come from other calls).
   */
  private snapshotFailed(e: unknown, path: string): void {
    this.snapshotFailures++;
    const backoffMs = doublingPauseMs(this.snapshotFailures, SNAPSHOT_RETRY_MIN_MS, SNAPSHOT_RETRY_MAX_MS);
    this.snapshotRetryAtMs = this.o.clock.monotonicMs() + backoffMs;
    this.o.logger?.warn(
      {
        group: this.group,
        err: e instanceof Error ? e.message : String(e),
        failures: this.snapshotFailures,
        retryInMs: backoffMs,
      },
      'snapshot failed; the log is kept uncompacted until one succeeds (check the free space under data_dir)',
    );
    void this.o.snapshots.discard(path).catch(() => {});
  }

  /** Snapshots that failed in a row since the last one that succeeded (metrics). */
  get snapshotFailuresInARow(): number {
    return this.snapshotFailures;
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers
  // ---------------------------------------------------------------------------------------------

  private track(index: LogIndex, term: Term, timeoutMs: number): Promise<ProposalOutcome> {
    return new Promise<ProposalOutcome>((resolve, reject) => {
      // A proposal of an earlier term at this index was cut from this node's log by a new
      // leader's entries before it was applied: without this its caller would wait forever.
      const older = this.proposals.get(index);
      if (older !== undefined) older.reject(outcomeUnknown('another entry took its place in the log'));
      const deadlineMs = this.o.clock.monotonicMs() + timeoutMs;
      this.proposals.set(index, { term, resolve, reject, deadlineMs, timeoutMs });
      if (deadlineMs < this.proposalTimerAtMs) this.armProposalTimer(deadlineMs);
    });
  }

  /**
   * One timer for every proposal's deadline, armed for the earliest (not one per proposal: a
   * timer per write was a share of the node's allocations). Deadlines mostly come in order, so
   * the timer is re-armed about once per proposal timeout under a steady load; settled
   * proposals leave it armed, and it finds nothing to end.
   */
  private armProposalTimer(atMs: number): void {
    if (this.proposalTimer !== null) this.o.clock.clearTimer(this.proposalTimer);
    this.proposalTimerAtMs = atMs;
    this.proposalTimer = this.o.clock.setTimer(
      () => this.expireProposals(atMs),
      Math.max(0, atMs - this.o.clock.monotonicMs()),
    );
  }

  /**
   * Ends the proposals whose deadline passed; the timer waits for the next deadline. `armedForMs`
   * counts as passed: a clock that adds the delay to its now in floating point can fire a hair
   * before it, and the timer would be armed again for no time at all (a simulator's spin).
   */
  private expireProposals(armedForMs: number): void {
    this.proposalTimer = null;
    this.proposalTimerAtMs = Number.POSITIVE_INFINITY;
    const now = Math.max(this.o.clock.monotonicMs(), armedForMs);
    let next = Number.POSITIVE_INFINITY;
    for (const [index, p] of this.proposals) {
      if (p.deadlineMs <= now) {
        this.proposals.delete(index);
        p.reject(outcomeUnknown(`no outcome within ${Math.round(p.timeoutMs)} ms`));
      } else if (p.deadlineMs < next) next = p.deadlineMs;
    }
    if (next !== Number.POSITIVE_INFINITY) this.armProposalTimer(next);
  }

  private onSoftState(s: { role: Status['role']; leaderId: NodeId | null }): void {
    for (const fn of this.leaderWatchers) fn(s);
  }

  private checkUsable(): void {
    if (this.closed)
      throw new HiqliteError('HQL_CLOSED', `raft group ${this.group} is closed`, { retryable: true });
    if (this.fatal !== null) {
      throw new HiqliteError('HQL_IO', `raft group ${this.group} stopped: ${this.fatal.message}`, {
        retryable: false,
        cause: this.fatal,
      });
    }
  }

  /**
   * Stops the group as a failure of its own would, for a reason outside it (the node's other
   * group failed: a node serves both or neither): it sends, persists and applies nothing more,
   * and every wait on it ends now (settlePending). Its peers see a node that went silent.
   */
  stop(cause: Error): void {
    this.fail(cause, 'raft group stopped with the node');
  }

  private fail(e: unknown, why = 'raft group stopped: I/O failure or broken invariant'): void {
    if (this.fatal !== null) return;
    this.fatal = e instanceof Error ? e : new Error(String(e));
    // An apply interrupted by close() fails here: the node is stopping anyway, nothing is lost
    // (the batch was rolled back and is applied again at the next start).
    if (this.closed) return;
    this.o.logger?.warn({ group: this.group, err: this.fatal.message }, why);
    if (this.tickTimer !== null) this.o.clock.clearTimer(this.tickTimer);
    this.tickTimer = null;
    // A stopped group answers nothing more: its callers learn it now, not at their deadlines (a
    // write in flight when the disk filled waited out its whole proposal timeout).
    this.settlePending(
      new HiqliteError('HQL_IO', `raft group ${this.group} stopped: ${this.fatal.message}`, {
        retryable: false,
        cause: this.fatal,
      }),
      `the node stopped before the write was applied (${this.fatal.message})`,
    );
    this.o.onFatal?.(this.fatal);
  }

  /**
   * Ends every wait on the group (close, or a fatal failure): writes in flight with
   * HQL_OUTCOME_UNKNOWN saying `why` (caused by `err`), reads and apply waits with `err`.
   */
  private settlePending(err: HiqliteError, why: string): void {
    for (const [, p] of this.proposals) p.reject(outcomeUnknown(why, err));
    this.proposals.clear();
    if (this.proposalTimer !== null) this.o.clock.clearTimer(this.proposalTimer);
    this.proposalTimer = null;
    this.proposalTimerAtMs = Number.POSITIVE_INFINITY;
    for (const [, r] of this.reads) r.reject(err);
    this.reads.clear();
    for (const w of this.readWaiters.splice(0)) w.reject(err);
    for (const w of this.appliedWaiters.splice(0)) w.reject(err);
  }
}

/** A command that cannot fit in one log entry: refused before it is proposed, on every path. */
export function commandTooLargeError(bytes: number, bytesMax: number): HiqliteError {
  return new HiqliteError(
    'HQL_ENTRY_TOO_LARGE',
    `the command encodes to ${bytes} bytes, over the ${bytesMax} bytes a log entry can carry (config entry_bytes_max)`,
    { retryable: false },
  );
}

/**
 * Why a group's local state cannot be recovered here, or null:
 *   - the log was compacted behind a snapshot that is gone, and the state machine has not applied
 *     that far either (a lost snapshot directory is otherwise rebuilt from the state machine);
 *   - the log ends before an entry the state machine applied, beyond the newest snapshot: its
 *     tail was lost (a segment deleted, synced bytes damaged). Entries are applied only once they
 *     are durable in the local log, so this node acknowledged entries it no longer has: kept as a
 *     voter it could elect a leader without them, and acknowledged writes were lost (found from
 *     outside: the state machine was rolled back and the node voted on).
 */
export function lostLocalState(
  logStore: Pick<LogStore, 'firstIndex' | 'lastIndex'>,
  snapshots: Pick<GroupSnapshotStore, 'latest'>,
  appliedIndex: LogIndex,
): string | null {
  const purged = logStore.firstIndex() - 1;
  const snapshotIndex = snapshots.latest()?.meta.index ?? 0;
  const last = Math.max(logStore.lastIndex(), purged);
  if (appliedIndex > last && appliedIndex > snapshotIndex)
    return `the Raft log ends at index ${last}, before entries this node applied (to ${appliedIndex}): its tail was lost, with entries it acknowledged`;
  if (purged <= snapshotIndex || appliedIndex >= purged) return null;
  return `the log starts after index ${purged}, but no snapshot covers it and the state machine has applied only ${appliedIndex}`;
}

/**
 * What this node holds cannot be recovered locally (a compacted log whose snapshot is gone, and a
 * state machine behind it). The embedder discards the node's state and rejoins the cluster as a
 * new node, as for a lost log: the leader then sends it a snapshot.
 */
export class LocalStateLostError extends Error {
  override readonly name = 'LocalStateLostError';
}

function proposeError(e: import('../raft/types.js').ProposeError): HiqliteError {
  switch (e.code) {
    case 'HQL_NOT_LEADER':
      return Object.assign(
        new HiqliteError('HQL_NOT_LEADER', `not the leader (leader: ${e.leaderId ?? 'unknown'})`, {
          retryable: true,
        }),
        { leaderId: e.leaderId },
      );
    case 'HQL_OVERLOADED':
      return new HiqliteError('HQL_OVERLOADED', `too many uncommitted writes (${e.reason})`, {
        retryable: true,
      });
    case 'HQL_ENTRY_TOO_LARGE':
      return commandTooLargeError(e.bytes, e.bytesMax);
    case 'HQL_LEADERSHIP_TRANSFER':
      return new HiqliteError('HQL_LEADERSHIP_TRANSFER', `leadership is moving to node ${e.target}`, {
        retryable: true,
      });
    case 'HQL_CONFIG_CHANGE_PENDING':
      return new HiqliteError('HQL_CONFIG_CHANGE_PENDING', 'another membership change is in progress', {
        retryable: true,
      });
    case 'HQL_INVALID_CONFIG_CHANGE':
      return new HiqliteError('HQL_INVALID_CONFIG_CHANGE', e.reason, { retryable: false });
  }
}

/**
 * What a wait retried until its deadline throws when the deadline passed: the last attempt's
 * error, but a timeout said with the whole wait (the last attempt had what was left of it: "no
 * answer within 1 ms" after a ten-second wait).
 */
export function deadlineError(last: HiqliteError, what: string, totalMs: number): HiqliteError {
  if (last.code !== 'HQL_TIMEOUT') return last;
  return new HiqliteError('HQL_TIMEOUT', `${what}: no answer within ${Math.round(totalMs)} ms`, {
    retryable: true,
    cause: last,
  });
}

function timeoutError(what: string, ms: number): HiqliteError {
  return new HiqliteError('HQL_TIMEOUT', `${what}: no answer within ${Math.round(ms)} ms`, {
    retryable: true,
  });
}

const BOOT_READ_BYTES = 4 * 1024 * 1024;
const NO_PAYLOAD = new Uint8Array(0);

/**
 * The log from `from` to its end for the core's boot, read in bounded chunks. Entries the state
 * machine has applied come without their payload (the core reads it back when a peer needs it,
 * RaftBootState.entries), so a long log does not have to fit in memory at start.
 */
function bootEntries(logStore: LogStore, from: LogIndex, applied: LogIndex): Entry[] {
  const out: Entry[] = [];
  const end = logStore.lastIndex() + 1;
  // Bounded: every read returns at least one entry.
  for (let lo = from as number; lo < end; ) {
    const chunk = logStore.entries(lo as LogIndex, end as LogIndex, BOOT_READ_BYTES);
    assert(chunk.length > 0, `the log store returned no entries at ${lo}`);
    for (const e of chunk) {
      out.push(e.kind === 'command' && e.index <= applied ? { ...e, data: NO_PAYLOAD } : e);
    }
    lo += chunk.length;
  }
  return out;
}

/** What identifies a snapshot's checked bytes: its file and the checksum they were checked against. */
function checkedKey(s: StoredSnapshot): string {
  return `${s.path}\n${s.sha256}`;
}
