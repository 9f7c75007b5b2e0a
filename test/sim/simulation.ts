/**
 * One seed, one run: a whole cluster in this process on virtual time. The seed decides the
 * scenario (profile.ts) and every random choice after it, so a seed replays exactly.
 *
 * Phases: chaos (clients, faults, membership churn, transfers) for `chaosUs`; then liveness:
 * faults stop, the network heals, every node restarts, churn stops, and within `livenessUs` a
 * leader must exist, every client op must complete, probe ops must succeed, and every member must
 * converge to the same applied index and state. Safety checkers run throughout; linearizability
 * of the client history is checked at the end.
 */
import { Prng, type Random } from '../../src/lib/prng.js';
import type { Entry, LogIndex, Membership, NodeId, Status } from '../../src/raft/types.js';
import { runAgenda } from './agenda.js';
import { BootstrapProver } from './bootstrap.js';
import { SafetyChecker } from './checkers.js';
import { EventQueue } from './event-queue.js';
import { type CheckerName, fail, SimFailure } from './failure.js';
import { emptySnapshot } from './kv.js';
import { checkLinearizable, formatOperation } from './linearizability.js';
import { type ClusterAccess, Nemesis } from './nemesis.js';
import { CALM_NETWORK, type Envelope, Network } from './network.js';
import { type NodeHost, type NodeStats, SimNode } from './node.js';
import { describeProfile, makeProfile, type PlantedBugName, type Profile } from './profile.js';
import { Rejoiner } from './rejoin.js';
import { Trace } from './trace.js';
import { Workload } from './workload.js';

export interface SimOptions {
  /** Length of the fault phase in virtual ms (default profile.ts CHAOS_MS_DEFAULT). */
  readonly chaosMs?: number;
  readonly plantedBug?: PlantedBugName;
  /** Keep the planted bug's scenario but do not plant it (the control run of a hunt). */
  readonly plantedBugOff?: boolean;
  /** Trace lines kept for a failure report. */
  readonly traceLines?: number;
  /** Replace parts of the drawn scenario (experiments, focused tests). */
  readonly profileOverrides?: Partial<Profile>;
  /** Search budget of the linearizability checker per key. */
  readonly linearizabilityStatesMax?: number;
  /**
   * Check that acknowledgements never precede durability (default true). Off, only the
   * consequences of an early acknowledgement are caught (lost committed entries, two leaders).
   */
  readonly durabilityCheck?: boolean;
}

export interface RunStats {
  virtualMs: number;
  events: number;
  leadersElected: number;
  entriesCommitted: number;
  crashes: number;
  restarts: number;
  partitions: number;
  snapshotsTaken: number;
  snapshotsFailed: number;
  snapshotsInstalled: number;
  entriesReadBack: number;
  tornWrites: number;
  lostWrites: number;
  membershipProposed: number;
  membershipApplied: number;
  transfers: number;
  kills: number;
  powerLossesAll: number;
  wipes: number;
  /** Starts that found state they could not recover and discarded it (hiqlite-node.ts rules). */
  discards: number;
  /** Nodes added back after losing their state, and those whose join completed. */
  joins: number;
  rejoined: number;
  /** Node 1's proofs that no cluster exists (a start without any trace of membership), and those that ended in a join. */
  bootstrapProofs: number;
  bootstrapProofsJoined: number;
  crashesDuringMembership: number;
  crashesDuringSnapshotInstall: number;
  /** Nodes restored from an older copy of their data directory, and the entries they lost. */
  restores: number;
  restoredEntriesLost: number;
  messagesSent: number;
  messagesDropped: number;
  /** Requests and answers between API ports (joins, proofs) sent, and lost on the way. */
  apiSent: number;
  apiLost: number;
  opsChecked: number;
  opsUnknown: number;
  /** The linearizability search ran out of budget (not a failure; counted). */
  linearizabilityUnknown: number;
}

export interface SeedFailure {
  readonly checker: CheckerName;
  readonly message: string;
  readonly trace: readonly string[];
}

export interface SeedResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly failure: SeedFailure | null;
  /** Hash of every event of the run: equal for two runs of one seed. */
  readonly traceDigest: string;
  readonly profile: string;
  readonly stats: RunStats;
}

/** Bounds on one run: a scenario that exceeds them is itself a failure (runaway). */
const EVENTS_MAX = 20_000_000;
const QUEUE_MAX = 1_000_000;
const LOG_MATCHING_EVERY_US = 250_000;
const LIVENESS_STEP_US = 50_000;

export function runSeed(seed: number, options: SimOptions = {}): Promise<SeedResult> {
  const sim = new Simulation(seed, options);
  return sim.run();
}

class Simulation implements ClusterAccess {
  readonly queue = new EventQueue(QUEUE_MAX);
  readonly trace: Trace;
  readonly profile: Profile;
  readonly network: Network;
  readonly nodes = new Map<NodeId, SimNode>();
  private readonly safety = new SafetyChecker();
  private readonly nodeStats: NodeStats = {
    snapshotsTaken: 0,
    snapshotsFailed: 0,
    entriesReadBack: 0,
    snapshotsInstalled: 0,
    tornWrites: 0,
    lostWrites: 0,
    membershipApplied: 0,
    discards: 0,
  };
  private readonly workload: Workload;
  private readonly nemesis: Nemesis;
  private readonly rejoiner: Rejoiner;
  private readonly prover: BootstrapProver;
  private readonly rngNet: Random;
  /** The membership of the highest config entry applied anywhere. */
  private latestMembership: Membership;
  private events = 0;
  private linearizabilityUnknown = 0;
  private opsChecked = 0;
  private configIndexMax = 0;
  /** Per leader: the commit index last checked against the disks, in which life and term. */
  private readonly commitSeen = new Map<NodeId, { incarnation: number; term: number; commit: number }>();
  private membershipCommitted = 0;
  /** A failure raised where it could not be thrown (a promise continuation): thrown after the event. */
  private failedLater: unknown = null;

  constructor(
    readonly seed: number,
    private readonly options: SimOptions,
  ) {
    const root = new Prng(seed);
    const profileOptions = {
      ...(options.chaosMs === undefined ? {} : { chaosMs: options.chaosMs }),
      ...(options.plantedBug === undefined ? {} : { plantedBug: options.plantedBug }),
    };
    const drawn = makeProfile(root.fork(), profileOptions);
    this.profile = {
      ...drawn,
      ...options.profileOverrides,
      ...(options.plantedBugOff === true ? { plantedBugs: {}, runtimePlantedBugs: {} } : {}),
    };
    this.trace = new Trace(options.traceLines ?? 60);
    this.rngNet = root.fork();
    this.network = new Network(this.queue, this.rngNet, this.profile.network, {
      deliver: (env) => this.deliver(env),
      lost: (env, why) => this.lost(env, why),
    });
    const rngNodes = root.fork();
    const initial = emptySnapshot({ voters: this.profile.voters, learners: this.profile.learners });
    this.latestMembership = initial.meta.membership;
    const host: NodeHost = {
      queue: this.queue,
      rng: rngNodes,
      profile: this.profile,
      trace: this.trace,
      safety: this.safety,
      stats: this.nodeStats,
      send: (env) => this.network.send(env),
      onMembershipApplied: (_node, e) => this.onMembershipApplied(e),
      onLeader: (node) => this.nemesis.onLeader(node),
      durabilityCheck: options.durabilityCheck ?? true,
      onLeaderPolled: (node, st) => this.checkCommitDurable(node, st),
      isVoter: (id) => this.latestMembership.voters.includes(id),
      failLater: (e) => {
        this.failedLater ??= e;
      },
      proveNoCluster: (node, gone) => this.prover.prove(node, gone),
    };
    for (const id of this.profile.nodeIds) this.nodes.set(id, new SimNode(id, host, initial));
    this.workload = new Workload(this.queue, root.fork(), this.profile, this.trace, this.nodes);
    this.nemesis = new Nemesis(this, root.fork());
    // Forked last: adding it left every other part of a seed's run as it was.
    this.rejoiner = new Rejoiner(this, root.fork(), (e) => {
      this.failedLater ??= e;
    });
    this.prover = new BootstrapProver(this);
  }

  async run(): Promise<SeedResult> {
    let failure: SeedFailure | null = null;
    try {
      await this.chaos();
      await this.liveness();
      this.finalChecks();
    } catch (e) {
      failure = this.toFailure(e);
    }
    return {
      seed: this.seed,
      ok: failure === null,
      failure,
      traceDigest: this.trace.digest,
      profile: describeProfile(this.profile),
      stats: this.stats(),
    };
  }

  leader(): SimNode | null {
    let best: SimNode | null = null;
    let bestTerm = -1;
    for (const n of this.nodes.values()) {
      const st = n.raft?.status();
      if (st === undefined || st.role !== 'leader') continue;
      if (st.term > bestTerm) {
        best = n;
        bestTerm = st.term;
      }
    }
    return best;
  }

  voterSets(): ReadonlyArray<readonly NodeId[]> {
    // The latest membership applied anywhere, and each node's latest one: a change takes effect
    // when it is in a log, committed or not (thesis §4.1), and a node holding it may lead.
    const sets: (readonly NodeId[])[] = [this.latestMembership.voters];
    for (const n of this.nodes.values()) {
      const live = n.raft?.status().membership;
      if (live !== undefined) sets.push(live.voters);
      const durable = n.disk.log.entries.findLast((e) => e.kind === 'config');
      if (durable?.kind === 'config') sets.push(durable.membership.voters);
    }
    return sets.filter((v) => v.length > 0);
  }

  private async chaos(): Promise<void> {
    for (const n of this.nodes.values()) n.start();
    this.workload.start();
    this.nemesis.start();
    this.rejoiner.start();
    this.scheduleLogMatching();
    await this.runUntil(this.profile.chaosUs);
  }

  private async liveness(): Promise<void> {
    this.nemesis.stop();
    this.workload.stop();
    this.network.faults = { ...CALM_NETWORK, latencyUsMax: this.profile.network.latencyUsMax };
    this.nemesis.healAll();
    const deadlineUs = this.queue.now + this.profile.livenessUs;
    let probing = false;
    for (;;) {
      const waiting = this.livenessGap(probing);
      if (waiting === null) return;
      if (waiting === 'start-probes') {
        probing = true;
        this.workload.startProbes();
        continue;
      }
      if (this.queue.now >= deadlineUs) {
        fail(
          'liveness',
          `${this.profile.livenessUs / 1_000_000}s after healing: ${waiting}\n${this.describeNodes()}`,
        );
      }
      await this.runUntil(this.queue.now + LIVENESS_STEP_US);
    }
  }

  /** What the cluster still lacks to be live and converged; null when it is. */
  private livenessGap(probing: boolean): string | null | 'start-probes' {
    const leader = this.leader();
    const core = leader?.raft;
    if (leader === null || core === null || core === undefined) return 'no leader';
    this.decommissionRemoved(leader);
    if (this.workload.pendingOps > 0) return `${this.workload.pendingOps} client ops still pending`;
    for (const n of this.nodes.values()) {
      if ((n.rejoin !== null || n.proving) && !n.decommissioned)
        return `n${n.id} lost its state and has not joined again`;
    }
    if (!probing) return 'start-probes';
    if (this.workload.probesLeft > 0) return `${this.workload.probesLeft} probe ops not completed`;
    const st = core.status();
    if (st.commitIndex !== st.lastIndex) return `leader n${leader.id} has uncommitted entries`;
    const members = [...st.membership.voters, ...st.membership.learners];
    const leaderDigest = leader.kvDigest();
    for (const id of members) {
      const n = this.nodes.get(id) as SimNode;
      if (!n.alive) return `member n${id} is down`;
      if (n.appliedIndex !== st.commitIndex) {
        return `member n${id} applied ${n.appliedIndex}, leader n${leader.id} committed ${st.commitIndex}`;
      }
      if (n.kvDigest() !== leaderDigest) {
        fail(
          'state-machine-safety',
          `member n${id} state {${n.kvDigest()}} differs from leader's {${leaderDigest}} at ${st.commitIndex}`,
        );
      }
    }
    return null;
  }

  /**
   * Once the leader has committed its whole log (so its membership is the committed one and no
   * other log can bring a removed node back), nodes outside that membership are shut down for
   * good, as an operator would: a removed server that never learned of its removal would
   * otherwise keep calling elections (thesis §4.2.3) or serve reads it can never catch up to.
   */
  private decommissionRemoved(leader: SimNode): void {
    const st = leader.raft?.status();
    if (st === undefined || st.commitIndex !== st.lastIndex || st.commitIndex < this.configIndexMax) return;
    const keep = new Set<number>([...st.membership.voters, ...st.membership.learners]);
    for (const n of this.nodes.values()) {
      // A node joining again after losing its state is between removal and re-addition.
      if (keep.has(n.id) || n.decommissioned || n.rejoin !== null || n.proving) continue;
      n.decommissioned = true;
      if (n.alive) n.crash();
      this.trace.note(this.queue.now, `decommission removed node n${n.id}`);
    }
  }

  /** Every node's Raft status (and the leader's view of its followers), for a liveness report. */
  private describeNodes(): string {
    const lines: string[] = [];
    for (const n of this.nodes.values()) {
      const st = n.raft?.status();
      if (st === undefined) {
        lines.push(`n${n.id}: down${n.decommissioned ? ' (decommissioned)' : ''}`);
        continue;
      }
      const m = st.membership;
      lines.push(
        `n${n.id}: ${st.role} term=${st.term} leader=${st.leaderId} commit=${st.commitIndex} applied=${n.appliedIndex} last=${st.lastIndex} first=${st.firstIndex} voters=[${m.voters.join(',')}] learners=[${m.learners.join(',')}]`,
      );
      for (const [id, pr] of st.progress ?? []) {
        lines.push(
          `    progress n${id}: ${pr.state} match=${pr.match} next=${pr.next} inflight=${pr.inflightCount}/${pr.inflightBytes}B active=${pr.recentActive} epoch=${pr.epoch}`,
        );
      }
    }
    return lines.join('\n');
  }

  private finalChecks(): void {
    this.checkLogMatching();
    const history = this.workload.history;
    this.opsChecked = history.length;
    const res = checkLinearizable(history, { statesMax: this.options.linearizabilityStatesMax ?? 200_000 });
    if (res.ok === false) {
      const lines = res.ops.slice(0, 60).map(formatOperation);
      fail(
        'linearizability',
        `${res.explanation}\n  history of that key (${res.ops.length} ops):\n    ${lines.join('\n    ')}`,
      );
    }
    if (res.ok === 'unknown') {
      this.linearizabilityUnknown++;
      this.trace.note(this.queue.now, `linearizability: search budget exhausted (${res.reason})`);
    }
  }

  private runUntil(untilUs: number): Promise<void> {
    return runAgenda({
      queue: this.queue,
      trace: this.trace,
      untilUs,
      eventsMax: EVENTS_MAX,
      count: () => ++this.events,
      after: () => {
        if (this.failedLater !== null) throw this.failedLater;
        for (const n of this.nodes.values()) n.observeLeadership();
      },
    });
  }

  private scheduleLogMatching(): void {
    this.queue.after(LOG_MATCHING_EVERY_US, 'check', -1, () => {
      this.checkLogMatching();
      if (this.queue.now < this.profile.chaosUs) this.scheduleLogMatching();
    });
  }

  private checkLogMatching(): void {
    const cores = [];
    for (const n of this.nodes.values()) {
      const core = n.raft;
      if (core !== null) cores.push({ id: n.id, core });
    }
    this.safety.checkLogMatching(cores);
    for (const n of this.nodes.values()) n.checkLogBoundaries();
  }

  /**
   * A commit never precedes durability on a quorum: when a leader's commit index moves to c,
   * a majority of its voters (as the leader counts them: its latest membership) hold entry c of
   * the leader's log on disk, durably (or a snapshot beyond it). The leader counts itself only
   * once its own write is durable (thesis §10.2.1).
   */
  private checkCommitDurable(n: SimNode, st: Status): void {
    if (!this.options.durabilityCheck && this.options.durabilityCheck !== undefined) return;
    const seen = this.commitSeen.get(n.id);
    if (seen === undefined || seen.incarnation !== n.incarnation || seen.term !== st.term) {
      // Leadership starts from a commit index decided under earlier leaders (and memberships).
      this.commitSeen.set(n.id, { incarnation: n.incarnation, term: st.term, commit: st.commitIndex });
      return;
    }
    if (st.commitIndex <= seen.commit) return;
    seen.commit = st.commitIndex;
    const c = st.commitIndex;
    // The leader's own log store may lag its core (its Ready is still being written).
    const t = n.raft?.entries(c, (c + 1) as LogIndex)[0]?.term ?? n.liveTermAt(c);
    const holders: NodeId[] = [];
    for (const v of st.membership.voters) {
      const node = this.nodes.get(v) as SimNode;
      const d = node.disk.log;
      // A voter an operator wiped after it acknowledged cannot vote until it has joined again
      // (and caught up): no leader can be elected without a holder (see docs, "Durability").
      if (node.lostState) holders.push(v);
      else if (c <= d.purgedIndex || (d.entries[c - d.purgedIndex - 1]?.term === t && t !== undefined))
        holders.push(v);
    }
    if (holders.length < Math.floor(st.membership.voters.length / 2) + 1) {
      fail(
        'durability',
        `leader n${n.id} (term ${st.term}) committed ${c} (term ${t}) while only [${holders.join(',')}] of voters [${st.membership.voters.join(',')}] held it durably`,
      );
    }
  }

  private deliver(env: Envelope): void {
    const to = this.nodes.get(env.msg.to);
    if (to === undefined) fail('ready-contract', `message to unknown node ${env.msg.to}`);
    this.trace.message(this.queue.now, env.msg);
    if (!to.alive) {
      this.lost(env, 'cut');
      return;
    }
    to.deliver(env);
    if (env.msg.type === 'snapshot') {
      this.reportSnapshot(env, true);
      this.nemesis.onSnapshotDelivered(to);
    }
  }

  private lost(env: Envelope, why: 'drop' | 'cut'): void {
    const m = env.msg;
    if (m.type === 'snapshot') {
      this.reportSnapshot(env, false);
      return;
    }
    // A transport notices a dead connection (a cut link), never a single lost packet.
    if (why === 'cut' && m.type === 'append' && this.rngNet.chance(this.profile.reportUnreachableRate)) {
      const sender = this.nodes.get(m.from);
      const inc = env.senderIncarnation;
      this.queue.after(this.rngNet.int(1_000, 10_000), 'unreachable', m.from, () => {
        sender?.unreachable(inc, m.to);
      });
    }
  }

  /** The sender's runtime learns how its snapshot stream ended, a little later. */
  private reportSnapshot(env: Envelope, delivered: boolean): void {
    const m = env.msg;
    const sender = this.nodes.get(m.from);
    const inc = env.senderIncarnation;
    this.queue.after(this.rngNet.int(500, 5_000), 'snapshot-report', m.from, () => {
      sender?.inLife(inc, 'snapshot-report', () => env.report?.(delivered));
    });
  }

  private onMembershipApplied(e: Extract<Entry, { kind: 'config' }>): void {
    if (e.index <= this.configIndexMax) return;
    this.configIndexMax = e.index;
    this.latestMembership = e.membership;
    this.membershipCommitted++;
    this.trace.note(
      this.queue.now,
      `membership committed at ${e.index}: voters=[${e.membership.voters.join(',')}] learners=[${e.membership.learners.join(',')}]`,
    );
  }

  private toFailure(e: unknown): SeedFailure {
    if (e instanceof SimFailure)
      return { checker: e.checker, message: e.message, trace: this.trace.recent() };
    const err = e instanceof Error ? e : new Error(String(e));
    const stack = (err.stack ?? '').split('\n').slice(1, 6).join('\n');
    return { checker: 'core-exception', message: `${err.message}\n${stack}`, trace: this.trace.recent() };
  }

  private stats(): RunStats {
    const w = this.workload.stats;
    const n = this.nemesis.stats;
    return {
      virtualMs: Math.round(this.queue.now / 1000),
      events: this.events,
      leadersElected: this.safety.stats.leadersElected,
      entriesCommitted: this.safety.stats.entriesCommitted,
      crashes: n.crashes,
      restarts: n.restarts,
      partitions: n.partitions,
      snapshotsTaken: this.nodeStats.snapshotsTaken,
      snapshotsFailed: this.nodeStats.snapshotsFailed,
      snapshotsInstalled: this.nodeStats.snapshotsInstalled,
      entriesReadBack:
        this.nodeStats.entriesReadBack +
        [...this.nodes.values()].reduce((sum, n) => sum + n.entriesReadBack(), 0),
      tornWrites: this.nodeStats.tornWrites,
      lostWrites: this.nodeStats.lostWrites,
      membershipProposed: n.membershipProposed,
      membershipApplied: this.membershipCommitted,
      transfers: n.transfers,
      kills: n.kills,
      powerLossesAll: n.powerLossesAll,
      wipes: n.wipes,
      discards: this.nodeStats.discards,
      joins: this.rejoiner.stats.joins,
      rejoined: this.rejoiner.stats.rejoined,
      bootstrapProofs: this.prover.stats.proofs,
      bootstrapProofsJoined: this.prover.stats.joined,
      crashesDuringMembership: n.crashesDuringMembership,
      crashesDuringSnapshotInstall: n.crashesDuringSnapshotInstall,
      restores: n.restores,
      restoredEntriesLost: n.restoredEntriesLost,
      messagesSent: this.network.stats.sent,
      messagesDropped: this.network.stats.dropped,
      apiSent: this.network.stats.apiSent,
      apiLost: this.network.stats.apiLost,
      opsChecked: this.opsChecked,
      opsUnknown: w.opsUnknown,
      linearizabilityUnknown: this.linearizabilityUnknown,
    };
  }
}
