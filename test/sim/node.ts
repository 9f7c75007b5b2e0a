/**
 * One simulated server: the product's `RaftGroup` (src/node/raft-group.ts) in a simulated
 * process, wired through its seams to the simulation: a virtual clock and `defer` on the agenda,
 * the simulated disk (disk.ts) under its log store, snapshot store and state machine, and the
 * simulated network as its transport. The simulator has no Ready loop of its own: the loop under
 * test is the one that ships.
 *
 * A process lives until it crashes: every event for it (timer, flush, delivery, disk completion)
 * runs only in the life that asked for it, and waits while the process is paused (a GC stall).
 * A crash ends the life (its RaftGroup is abandoned mid-flight, its calls from then on do
 * nothing), keeps what the disk made durable, and a restart opens a new RaftGroup on that disk
 * (its recovery is the product's).
 */
import { assert } from '../../src/lib/assert.js';
import type { Clock } from '../../src/lib/clock.js';
import { HiqliteError } from '../../src/lib/errors.js';
import type { Random } from '../../src/lib/prng.js';
import { abstains } from '../../src/node/joining-marker.js';
import { lostLocalState, RaftGroup } from '../../src/node/raft-group.js';
import type { GroupStateMachine, GroupTransport } from '../../src/node/seams.js';
import { decideStart } from '../../src/node/start-decision.js';
import type {
  Entry,
  LogIndex,
  Membership,
  MembershipChange,
  Message,
  NodeId,
  SnapshotMeta,
  Status,
  Term,
} from '../../src/raft/types.js';
import type { MemoryLogState } from '../../src/storage/memory-log-store.js';
import { agendaTimers, ProcessStall } from './agenda.js';
import type { SafetyChecker } from './checkers.js';
import { type ProcessLife, SimDisk, SimLogStore, SimSnapshotStore, type WipeTarget } from './disk.js';
import { checkSentDurable } from './durability.js';
import type { EventQueue } from './event-queue.js';
import { fail } from './failure.js';
import { emptySnapshot, encodeCommand, type KvCommand, type KvSnapshot, KvStateMachine } from './kv.js';
import type { KvResult } from './linearizability.js';
import type { Envelope } from './network.js';
import type { Profile } from './profile.js';
import type { Trace } from './trace.js';

export type ProposalOutcome =
  | { readonly kind: 'applied'; readonly result: KvResult }
  /** Never proposed (not the leader, overloaded, transfer in progress): safe to retry. */
  | { readonly kind: 'refused'; readonly leaderHint: NodeId | null; readonly code: string }
  /** A different entry was applied at the proposal's index: it never took effect. */
  | { readonly kind: 'not-applied' }
  /** The proposer crashed or skipped the index through a snapshot: it may or may not take effect. */
  | { readonly kind: 'unknown' };

export type ReadOutcome =
  | { readonly kind: 'value'; readonly value: number | null }
  | { readonly kind: 'failed' };

export interface NodeStats {
  snapshotsTaken: number;
  /** Snapshots that failed as a full disk fails them (Profile.snapshotFailRate). */
  snapshotsFailed: number;
  /** Entries the cores read back from the log store after boot (RaftConfig.readEntries). */
  entriesReadBack: number;
  snapshotsInstalled: number;
  tornWrites: number;
  lostWrites: number;
  membershipApplied: number;
  /** Starts that found state they could not recover, discarded it and joined again. */
  discards: number;
}

/** What a node needs from the simulation around it. */
export interface NodeHost {
  readonly queue: EventQueue;
  readonly rng: Random;
  readonly profile: Profile;
  readonly trace: Trace;
  readonly safety: SafetyChecker;
  readonly stats: NodeStats;
  send(env: Envelope): void;
  /** `node` just became leader (the nemesis may pick on young leaders). */
  onLeader(node: SimNode): void;
  /** A committed membership change was applied by `node` (the operator tracks removals). */
  onMembershipApplied(node: NodeId, e: Extract<Entry, { kind: 'config' }>): void;
  /**
   * Something failed where no event can throw it (a promise continuation, the group's onFatal):
   * the simulation fails with it after the current event.
   */
  failLater(e: unknown): void;
  /** Check every acknowledgement against what the disk holds durably. */
  readonly durabilityCheck: boolean;
  /** `node` is leader: polled after every event (the commit index is checked against the disks). */
  onLeaderPolled(node: SimNode, status: Status): void;
  /** `node` is a voter in the latest membership the cluster applied. */
  isVoter(node: NodeId): boolean;
  /**
   * Node 1 starts without any trace of membership: the product's proof that no cluster exists
   * (src/node/bootstrap-proof.ts), its questions over the simulated network (bootstrap.ts).
   * True: node 1 founds a cluster. `gone`: this process died meanwhile.
   */
  proveNoCluster(node: SimNode, gone: () => boolean): Promise<boolean>;
}

/** The membership a node without any state starts with: it knows no cluster (never votes). */
const EMPTY_MEMBERSHIP: Membership = { voters: [], learners: [] };
/** The membership node 1 founds a cluster with (as `HiqliteNode`'s GENESIS_MEMBERSHIP). */
const GENESIS_MEMBERSHIP: Membership = { voters: [1 as NodeId], learners: [] };
/** The id of the cluster the scenario's nodes were provisioned in. */
export const PROVISIONED_CLUSTER_ID = 'cluster-0';

/** The simulated epoch of wall-clock time (no value of the real clock enters a run). */
const WALL_EPOCH_MS = 1_700_000_000_000;
/** A promise that never settles. */
const NEVER = new Promise<never>(() => {});

class Life implements ProcessLife {
  dead = false;
  group: RaftGroup | null = null;
  logStore: SimLogStore | null = null;
  /** What the clients wait for in this life: settled (outcome unknown, read failed) at a crash. */
  readonly pending = new Set<() => void>();
  /**
   * Per follower, in `term`: the last index of each append with entries sent since the last
   * event that may reset or open the core's window (a rejection or heartbeat answer from that
   * follower, an unreachable or snapshot report, a membership change), and the highest index
   * it acknowledged. Those beyond it are unacknowledged: the core's window holds them all.
   */
  readonly unacked = new Map<NodeId, { term: number; prevMax: number; lasts: number[]; acked: number }>();

  constructor(
    readonly incarnation: number,
    private readonly node: SimNode,
  ) {}

  whenRunning(kind: string, fn: () => void): void {
    if (this.dead) return;
    this.node.whenRunning(this, kind, fn);
  }
}

export class SimNode {
  readonly disk: SimDisk;
  /** Bumped by every crash: events of a previous life are ignored. */
  incarnation = 0;
  private life: Life | null = null;
  private leaderTermSeen = -1;
  /** Removed from the membership and shut down for good (the operator decommissioned it). */
  decommissioned = false;
  /**
   * This node started without state after the cluster was formed (an operator wiped it, or it
   * discarded what it could not recover): it must join again, as the product's node does
   * (src/node/hiqlite-node.ts: the leader removes it if it is a member and adds it back as a
   * learner; it asks to be promoted once caught up, if it was a voter). Null: a member as it was.
   */
  rejoin: { wasVoter: boolean; joinedAt: LogIndex | null } | null = null;
  /** Wiped while down: its next start finds what the operator left (SimDisk.wipe). */
  private wipedWhileDown = false;
  /**
   * Its `data_dir/cluster_id`: the provisioned cluster's, gone with a wipe of the whole data
   * directory, learnt again from the leader that adds it back (or new when node 1 founds one).
   */
  clusterId: string | null = PROVISIONED_CLUSTER_ID;

  /**
   * Node 1 started without any trace of membership and has not had its proof's answer yet
   * (bootstrap.ts): it lost its state as a node that must join does.
   */
  proving = false;

  /** Its data was wiped, or it lost its state and has not joined again yet. */
  get lostState(): boolean {
    return this.wipedWhileDown || this.rejoin !== null || this.proving;
  }
  /** A stalled process (GC pause, overloaded host): meanwhile it handles nothing. */
  private readonly stall: ProcessStall;
  /** This node's tick interval: clocks drift, so nodes tick at slightly different rates. */
  private readonly tickUs: number;

  constructor(
    readonly id: NodeId,
    private readonly host: NodeHost,
    private readonly initial: KvSnapshot,
  ) {
    this.disk = new SimDisk(id, initial, host.queue, host.rng, host.profile);
    this.stall = new ProcessStall(host.queue, host.trace, id);
    const skewUs = Math.floor((host.profile.tickUs * host.profile.tickSkewPct) / 100);
    this.tickUs = host.profile.tickUs + host.rng.int(-skewUs, skewUs + 1);
  }

  get paused(): boolean {
    return this.stall.paused;
  }

  /** Stall the process for `durationUs`: events that reach it wait until it resumes. */
  pause(durationUs: number): void {
    if (this.life !== null) this.stall.pause(durationUs);
  }

  /** Run `fn` in `life` now, or when the process resumes if it is paused (in arrival order). */
  whenRunning(life: Life, kind: string, fn: () => void): void {
    this.stall.whenRunning(life, kind, fn);
  }

  /** Run `fn` against the group of incarnation `inc`, if it still lives (when it runs). */
  inLife(inc: number, kind: string, fn: (g: RaftGroup) => void): void {
    const life = this.life;
    if (life === null || life.incarnation !== inc) return;
    this.whenRunning(life, kind, () => {
      if (life.group !== null) fn(life.group);
    });
  }

  /** The process is up (its group may still be opening). */
  get alive(): boolean {
    return this.life !== null;
  }

  /** The running group (for checkers and the operator); null while down or opening. */
  get raft(): RaftGroup | null {
    return this.life?.group ?? null;
  }

  get appliedIndex(): number {
    return this.life?.group?.applied() ?? -1;
  }

  get hasWriteInFlight(): boolean {
    return this.life !== null && this.disk.writing;
  }

  kvDigest(): string {
    return this.life === null ? '' : this.disk.kv.digest();
  }

  /** Boot from what the disk holds, after a random phase (nodes do not tick in lockstep). */
  start(): void {
    if (this.life !== null) return;
    const life = new Life(this.incarnation, this);
    this.life = life;
    this.leaderTermSeen = -1;
    this.post(life, this.host.rng.int(1, this.tickUs + 1), 'start', () => this.open(life));
  }

  /**
   * The process dies: on power loss with every write not yet durable (lost, or torn), when only
   * the process is killed keeping what it wrote (the OS writes it out).
   */
  crash(kind: 'power' | 'process' = 'power'): void {
    const life = this.life;
    if (life === null) return;
    life.dead = true;
    this.life = null;
    this.incarnation++;
    this.stall.reset();
    const lost = this.disk.crash(this.host.profile.tornWriteRate, kind);
    if (lost !== null) {
      if (lost.torn) this.host.stats.tornWrites++;
      else this.host.stats.lostWrites++;
    }
    if (life.logStore !== null) this.host.stats.entriesReadBack += life.logStore.entriesRead;
    this.host.trace.note(this.host.queue.now, `n${this.id} crash${lost === null ? '' : ` (${lost.what})`}`);
    for (const settle of [...life.pending]) settle();
  }

  /** An operator deletes part of this stopped node's data (its next start recovers, or rejoins). */
  wipe(what: WipeTarget, wasVoter: boolean): void {
    assert(this.life === null, 'wipe of a running node');
    this.disk.wipe(what);
    if (what === 'all') this.clusterId = null;
    this.wipedWhileDown = true;
    this.wasVoterAtWipe = wasVoter;
    this.host.trace.note(this.host.queue.now, `n${this.id} wiped: ${what}`);
  }
  private wasVoterAtWipe = false;

  /** A message from the network. */
  deliver(env: Envelope): void {
    const life = this.life;
    if (life === null) return;
    this.whenRunning(life, 'deliver', () => {
      const g = life.group;
      if (g === null) return;
      if (env.snapshot === null) {
        const m = env.msg;
        if (m.type === 'append-response' || m.type === 'heartbeat-response') {
          const w = life.unacked.get(m.from);
          if (w !== undefined && w.term === m.term) {
            if (m.type === 'append-response' && !m.reject) w.acked = Math.max(w.acked, m.matchIndex);
            else {
              w.lasts = [];
              w.prevMax = -1;
            }
          }
        }
        g.receive(m);
        return;
      }
      // The transport streamed the snapshot into a file of this node's snapshot store.
      const path = this.disk.tempPath();
      this.disk.files.set(path, env.snapshot);
      g.receiveSnapshot(env.msg as Extract<Message, { type: 'snapshot' }>, path);
    });
  }

  /** Propose a client command; false when the node is down, opening or paused. */
  propose(cmd: KvCommand, done: (o: ProposalOutcome) => void): boolean {
    const life = this.life;
    const g = life?.group;
    if (life === null || g === null || g === undefined || this.paused) return false;
    const settle = this.once(life, done, { kind: 'unknown' });
    let p: Promise<{ index: LogIndex; result: unknown }>;
    try {
      p = g.propose(encodeCommand(cmd), { timeoutMs: this.clientTimeoutMs() });
    } catch (e) {
      settle(refusal(e));
      return true;
    }
    p.then(
      (out) =>
        this.guard(() => {
          const r = out.result as { opId: number; result: KvResult } | null | undefined;
          if (r === null || r === undefined || r.opId !== cmd.opId) {
            fail(
              'state-machine-safety',
              `node ${this.id} proposed op ${cmd.opId} at ${out.index} but applied another entry there`,
            );
          }
          settle({ kind: 'applied', result: r.result });
        }),
      (e: unknown) => this.guard(() => settle(proposalFailure(e))),
    );
    return true;
  }

  /** Start a read-index read; false when the node is down, opening or paused. */
  read(key: string, done: (o: ReadOutcome) => void): boolean {
    const life = this.life;
    const g = life?.group;
    if (life === null || g === null || g === undefined || this.paused) return false;
    const settle = this.once(life, done, { kind: 'failed' });
    let p: Promise<LogIndex>;
    try {
      p = g.readBarrier({ timeoutMs: this.clientTimeoutMs() });
    } catch {
      settle({ kind: 'failed' });
      return true;
    }
    p.then(
      () => this.guard(() => settle({ kind: 'value', value: this.disk.kv.read(key) })),
      () => this.guard(() => settle({ kind: 'failed' })),
    );
    return true;
  }

  /**
   * The operator's membership change through this node; `done` gets 'ok' (and the change's log
   * index) or an error code.
   */
  proposeMembership(change: MembershipChange, done: (result: string, index?: LogIndex) => void): boolean {
    const g = this.raft;
    if (g === null || this.paused) return false;
    // A member added (again) gets a fresh replication progress, and a fresh window.
    this.life?.unacked.clear();
    let p: Promise<{ index: LogIndex }>;
    try {
      p = g.proposeMembership(change, { timeoutMs: this.clientTimeoutMs() });
    } catch (e) {
      done(codeOf(e));
      return true;
    }
    p.then(
      (out) => this.guard(() => done('ok', out.index)),
      (e: unknown) => this.guard(() => done(codeOf(e))),
    );
    return true;
  }

  transferLeadership(to: NodeId): { ok: true } | { ok: false; reason: string } | null {
    const g = this.raft;
    if (g === null || this.paused) return null;
    return g.transferLeadership(to);
  }

  /**
   * Record leadership as soon as the group's core has it, even if its Ready is held back behind
   * a disk write (a leader that steps down before its first Ready must still count for election
   * safety). Polled after every event.
   */
  observeLeadership(): void {
    const g = this.raft;
    if (g === null) return;
    const st = g.status();
    if (st.role !== 'leader') return;
    this.host.onLeaderPolled(this, st);
    if (st.term === this.leaderTermSeen) return;
    this.leaderTermSeen = st.term;
    this.host.trace.note(
      this.host.queue.now,
      `n${this.id} leader term=${st.term} last=${st.lastIndex} commit=${st.commitIndex}`,
    );
    this.host.safety.onLeader(this.id, st.term, g);
    this.host.onLeader(this);
  }

  /** The transport saw `to` unreachable: the core falls back to probing (its window is reset). */
  unreachable(inc: number, to: NodeId): void {
    this.inLife(inc, 'unreachable', (g) => {
      this.life?.unacked.delete(to);
      g.reportUnreachable(to);
    });
  }

  /** The term of `index` in the log as this process sees it (undefined: not held, or down). */
  liveTermAt(index: LogIndex): Term | undefined {
    return this.life?.logStore?.termAt(index);
  }

  /** Log matching at the boundary: what the process sees and what the disk holds durably. */
  checkLogBoundaries(): void {
    const live = this.life?.logStore?.view;
    if (live !== undefined) this.checkBoundary('live', live);
    this.checkBoundary('durable', this.disk.log);
  }

  private checkBoundary(where: 'live' | 'durable', log: Readonly<MemoryLogState>): void {
    this.host.safety.checkLogBoundary(
      this.id,
      where,
      { index: log.purgedIndex, term: log.purgedTerm },
      log.entries[0]?.term,
    );
  }

  /** Entries the current life read from its log store (earlier lives' are in NodeStats). */
  entriesReadBack(): number {
    return this.life?.logStore?.entriesRead ?? 0;
  }

  /**
   * What the product's node decides at start from what its data directory holds
   * (`decideStart`, src/node/start-decision.ts, as `HiqliteNode.open` runs it): a node whose
   * term and vote are gone while data remains, or whose compacted log no snapshot or database
   * covers, discards everything; a node that knows no membership (no state, or a hard state
   * alone) starts with an empty one and joins again through the leader. The scenario's nodes
   * are provisioned with its genesis membership, so until a node first loses its state it
   * starts from the genesis as node 1 does when it bootstraps (it never voted from anything it
   * could have lost).
   */
  private startState(): { membership: Membership; proof: boolean } {
    const disk = this.disk;
    const log = disk.log;
    const snapshot = disk.committed[disk.committed.length - 1] ?? null;
    const summary = {
      hardState: log.hardState,
      lastIndex: (log.purgedIndex + log.entries.length) as LogIndex,
      hasSnapshot: snapshot !== null,
      appliedIndex: disk.kv.appliedIndex,
      hasClusterId: this.clusterId !== null,
      logUncovered: lostLocalState(
        {
          firstIndex: () => (log.purgedIndex + 1) as LogIndex,
          lastIndex: () => (log.purgedIndex + log.entries.length) as LogIndex,
        },
        { latest: () => snapshot },
        disk.kv.appliedIndex,
      ),
    };
    const decision = decideStart(summary);
    // A proof a crash interrupted ends here: this start proves again, or joins.
    this.proving = false;
    if (decision.discard !== null) {
      this.host.trace.note(this.host.queue.now, `n${this.id} discards its local state: ${decision.discard}`);
      this.host.stats.discards++;
      disk.wipe('all');
    }
    const wasVoter = this.wipedWhileDown ? this.wasVoterAtWipe : this.host.isVoter(this.id);
    // Its Raft state is gone (a wipe of its log or data directory, or discarded): from now on it
    // is a joiner. A wipe of its database or snapshots alone that recovery repairs is not that.
    if (decision.discard !== null || (decision.fresh && this.wipedWhileDown)) this.lostOnce = true;
    this.wipedWhileDown = false;
    // The genesis membership at index 0 is the provisioned node's (as node 1's, which founded
    // the cluster). A node that lost its state holds the cluster's log from the leader: until a
    // configuration entry (or a snapshot) reaches it, it knows no membership.
    const genesis = this.lostOnce ? EMPTY_MEMBERSHIP : this.initial.meta.membership;
    if (!decision.fresh || !this.lostOnce) {
      // Restarted while joining, with state now: the join goes on from the entry that added it,
      // if the leader had answered (the product keeps it in its `joining` file).
      return { membership: genesis, proof: false };
    }
    this.rejoinWasVoter = this.rejoin?.wasVoter ?? wasVoter;
    // Node 1 without any trace of membership founds a cluster, or joins one, on the proof's word.
    if (decision.mayBootstrap && this.id === 1) {
      this.proving = true;
      return { membership: genesis, proof: true };
    }
    this.rejoin = { wasVoter: this.rejoinWasVoter, joinedAt: null };
    return { membership: genesis, proof: false };
  }
  private rejoinWasVoter = true;
  /** This node lost its state at least once (wiped, or discarded at a start). */
  private lostOnce = false;

  /** This node lost its state at least once (wiped, or discarded at a start). */
  get everLostState(): boolean {
    return this.lostOnce;
  }

  private open(life: Life): void {
    const start = this.startState();
    if (!start.proof) {
      this.openGroup(life, start.membership, false);
      return;
    }
    // The product asks before it opens its group; meanwhile it answers that it knows no cluster.
    this.host
      .proveNoCluster(this, () => life.dead)
      .then(
        (bootstrap) =>
          this.whenRunning(life, 'start', () => {
            this.proving = false;
            if (bootstrap) {
              this.clusterId = `cluster-n1-${this.host.queue.now}`;
              this.rejoin = null;
              this.host.trace.note(this.host.queue.now, `n${this.id} founds cluster ${this.clusterId}`);
              this.openGroup(life, GENESIS_MEMBERSHIP, true);
            } else {
              this.rejoin = { wasVoter: this.rejoinWasVoter, joinedAt: null };
              this.openGroup(life, start.membership, false);
            }
          }),
        (e: unknown) => {
          if (!life.dead) this.host.failLater(e);
        },
      );
  }

  private openGroup(life: Life, initialMembership: Membership, bootstrap: boolean): void {
    const p = this.host.profile;
    const logStore = new SimLogStore(this.disk, life, (where, log) => this.checkBoundary(where, log));
    life.logStore = logStore;
    RaftGroup.open({
      group: 'sql',
      raft: {
        id: this.id,
        electionTimeoutTicks: p.electionTimeoutTicks,
        heartbeatIntervalTicks: p.heartbeatIntervalTicks,
        preVote: p.preVote,
        checkQuorum: p.checkQuorum,
        inflightMessagesMax: p.inflightMessagesMax,
        inflightBytesMax: 1 << 20,
        appendBytesMax: p.appendBytesMax,
        uncommittedEntriesMax: 256,
        uncommittedBytesMax: 1 << 20,
        commandBytesMax: 1 << 20,
        pendingReadsMax: 64,
        random: this.host.rng.fork(),
        plantedBugs: p.plantedBugs,
        // Until it has applied the entry that added it back (rejoin.ts, joining-marker.ts).
        abstain: () => abstains(this.rejoin, (life.group?.applied() ?? 0) as LogIndex),
      },
      initialMembership,
      tickIntervalMs: p.tickUs / 1000,
      logStore,
      snapshots: new SimSnapshotStore(this.disk, life),
      stateMachine: new SimStateMachine(this, this.host, life, () => life.group?.status().term ?? 0),
      transport: this.transport(life),
      clock: this.clock(life),
      defer: (fn) => this.post(life, 0, 'flush', fn),
      // Every K applied entries, whatever their size (sizeBytes is not reported).
      snapshotEntriesThreshold: p.compactEveryEntries,
      snapshotCostRatioMax: 1,
      snapshotBytesThreshold: Number.MAX_SAFE_INTEGER,
      snapshotTrailingEntries: p.compactTailMax,
      applyQueueEntriesMax: p.applyQueueEntriesMax,
      plantedBugs: p.runtimePlantedBugs,
      onFatal: (e) => {
        if (!life.dead) this.host.failLater(e);
      },
    }).then(
      (g) => {
        if (life.dead) return;
        life.group = g;
        if (bootstrap) g.campaign();
        const st = g.status();
        this.host.trace.note(
          this.host.queue.now,
          `n${this.id} start term=${st.term} vote=${st.vote} commit=${st.commitIndex} applied=${g.applied()} first=${st.firstIndex} last=${st.lastIndex}`,
        );
      },
      (e: unknown) => {
        if (!life.dead) this.host.failLater(e);
      },
    );
  }

  /** Schedule `fn` in `life` after `delayUs` (virtual time passes for a paused process too). */
  private post(life: Life, delayUs: number, kind: string, fn: () => void): void {
    this.host.queue.after(delayUs, kind, this.id, () => this.whenRunning(life, kind, fn));
  }

  private clock(life: Life): Clock {
    const queue = this.host.queue;
    const rate = this.tickUs / this.host.profile.tickUs;
    return {
      monotonicMs: () => queue.now / 1000,
      wallMs: () => WALL_EPOCH_MS + Math.floor(queue.now / 1000),
      ...agendaTimers((delayMs, fire) =>
        this.post(life, Math.max(0, Math.round(delayMs * 1000 * rate)), 'timer', fire),
      ),
    };
  }

  private transport(life: Life): GroupTransport {
    const inc = life.incarnation;
    return {
      send: (_group, msg) => {
        if (life.dead) return;
        if (this.host.durabilityCheck)
          checkSentDurable(this.id, this.disk.log, (i) => life.logStore?.termAt(i), msg);
        if (msg.type === 'append' && msg.entries.length > 0) this.countUnacked(msg, life);
        this.host.send({ msg, snapshot: null, senderIncarnation: inc, report: null });
      },
      sendSnapshot: (_group, msg, { path }) => {
        if (life.dead) return NEVER;
        const snapshot = this.disk.file(path);
        return new Promise<boolean>((resolve) => {
          const report = (ok: boolean) => {
            life.unacked.delete(msg.to);
            resolve(ok);
          };
          this.host.send({ msg, snapshot, senderIncarnation: inc, report });
        });
      },
    };
  }

  /**
   * Flow control: a leader never has more appends unacknowledged on one link than its window
   * (RaftConfig.inflightMessagesMax). Counted from outside: appends with entries sent since the
   * last event that may free the window.
   */
  private countUnacked(m: Extract<Message, { type: 'append' }>, life: Life): void {
    let w = life.unacked.get(m.to);
    if (w === undefined || w.term !== m.term) {
      w = { term: m.term, prevMax: -1, lasts: [], acked: 0 };
      life.unacked.set(m.to, w);
    }
    // A probe sent again (each heartbeat answer allows one) repeats its predecessor's
    // prevIndex: the window counts appends that extend what the follower was sent.
    if (m.prevIndex <= w.prevMax) return;
    w.prevMax = m.prevIndex;
    w.lasts.push((m.entries[m.entries.length - 1] as Entry).index);
    const acked = w.acked;
    w.lasts = w.lasts.filter((last) => last > acked);
    // One more than the window goes out when an append made before the window reopened leaves
    // in the same flush as those after it (a probe made just before the answer that turns the
    // progress to replicate, or the append a heartbeat answer frees before it was even sent).
    const window = this.host.profile.inflightMessagesMax;
    if (w.lasts.length > window + 1) {
      fail(
        'flow-control',
        `leader n${this.id} (term ${m.term}) has ${w.lasts.length} appends to n${m.to} unacknowledged (beyond index ${acked}); its window is ${window}`,
      );
    }
  }

  /** A client callback settled once: by the group, or as `atCrash` if the process dies first. */
  private once<T>(life: Life, done: (o: T) => void, atCrash: T): (o: T) => void {
    let settled = false;
    const settle = (o: T) => {
      if (settled) return;
      settled = true;
      life.pending.delete(onCrash);
      done(o);
    };
    const onCrash = () => settle(atCrash);
    life.pending.add(onCrash);
    return settle;
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.host.failLater(e);
    }
  }

  /** Clients give up on their own (Profile.opTimeoutUs); the group's deadline is a backstop. */
  private clientTimeoutMs(): number {
    return (this.host.profile.opTimeoutUs / 1000) * 2;
  }
}

/**
 * The state machine seam over the key-value register (kv.ts), whose database is the disk's:
 * durable with every applied entry. Every entry applied, snapshot taken and snapshot restored is
 * shown to the safety checker.
 */
class SimStateMachine implements GroupStateMachine {
  constructor(
    private readonly node: SimNode,
    private readonly host: NodeHost,
    private readonly life: Life,
    private readonly currentTerm: () => number,
  ) {}

  appliedIndex(): LogIndex {
    return this.node.disk.kv.appliedIndex;
  }

  /**
   * One batch is one transaction: it takes a random time (the profile's apply latency), and is
   * applied and durable as a whole when it completes (a crash before that loses it whole).
   */
  apply(entries: readonly Entry[], wanted: readonly boolean[]): Promise<readonly unknown[]> {
    if (this.life.dead) return NEVER;
    const latencyMax = this.host.profile.applyLatencyUsMax;
    if (latencyMax === 0) return Promise.resolve(this.applyNow(entries, wanted));
    return new Promise((resolve, reject) => {
      this.host.queue.after(this.host.rng.int(0, latencyMax + 1), 'apply', this.node.id, () =>
        this.life.whenRunning('apply-done', () => {
          try {
            resolve(this.applyNow(entries, wanted));
          } catch (e) {
            reject(e);
          }
        }),
      );
    });
  }

  private applyNow(entries: readonly Entry[], wanted: readonly boolean[]): unknown[] {
    const kv = this.node.disk.kv;
    const results: unknown[] = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as Entry;
      if (e.index !== kv.appliedIndex + 1) {
        fail(
          'ready-contract',
          `node ${this.node.id} was handed entry ${e.index} to apply after ${kv.appliedIndex}`,
        );
      }
      this.host.safety.onApply(this.node.id, e, this.currentTerm() as Term);
      const out = kv.apply(e);
      if (e.kind === 'config') {
        this.host.stats.membershipApplied++;
        this.host.onMembershipApplied(this.node.id, e);
      }
      results.push(wanted[i] === true ? out : undefined);
    }
    return results;
  }

  snapshot(path: string): Promise<{ index: LogIndex; term: Term; membership: Membership | null }> {
    if (this.life.dead) return NEVER;
    // The snapshots a running group takes (its policy's): one a node must make again at start to
    // recover (its log compacted behind a snapshot that is gone) failing means it cannot start,
    // which is right on a full disk but no run of the simulation's to judge.
    const rate = this.host.profile.snapshotFailRate;
    if (rate > 0 && this.life.group !== null && this.host.rng.chance(rate)) {
      this.host.stats.snapshotsFailed++;
      return Promise.reject(new Error(`ENOSPC: no space left on device, write '${path}' (simulated)`));
    }
    const snap = this.node.disk.kv.snapshot();
    this.node.disk.files.set(path, snap);
    this.host.safety.onSnapshot(this.node.id, snap, 'taken');
    this.host.stats.snapshotsTaken++;
    return Promise.resolve({
      index: snap.meta.index,
      term: snap.meta.term,
      membership: snap.meta.membership,
    });
  }

  restore(path: string, meta: SnapshotMeta): Promise<void> {
    if (this.life.dead) return NEVER;
    const snap = this.node.disk.file(path);
    if (snap.meta.index !== meta.index || snap.meta.term !== meta.term) {
      fail(
        'ready-contract',
        `node ${this.node.id} restores snapshot ${meta.index}/${meta.term} from a file of ${snap.meta.index}/${snap.meta.term}`,
      );
    }
    this.host.safety.onSnapshot(this.node.id, snap, 'installed');
    this.host.stats.snapshotsInstalled++;
    this.host.trace.note(this.host.queue.now, `n${this.node.id} install snapshot ${meta.index}/${meta.term}`);
    this.node.disk.kv = new KvStateMachine(snap);
    return Promise.resolve();
  }

  reset(): Promise<void> {
    if (this.life.dead) return NEVER;
    this.node.disk.kv = new KvStateMachine(emptySnapshot(this.node.disk.initial.meta.membership));
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function codeOf(e: unknown): string {
  return e instanceof HiqliteError ? e.code : String(e);
}

/** A proposal the group refused before it reached the log (thrown or rejected). */
function refusal(e: unknown): ProposalOutcome {
  const hint = (e as { leaderId?: unknown }).leaderId;
  return { kind: 'refused', leaderHint: typeof hint === 'number' ? (hint as NodeId) : null, code: codeOf(e) };
}

function proposalFailure(e: unknown): ProposalOutcome {
  switch (codeOf(e)) {
    case 'HQL_PROPOSAL_DROPPED':
      return { kind: 'not-applied' };
    case 'HQL_OUTCOME_UNKNOWN':
    case 'HQL_TIMEOUT':
      return { kind: 'unknown' };
    default:
      return refusal(e);
  }
}
