/**
 * The Raft consensus core, in the style of etcd's RawNode: synchronous, deterministic, no I/O.
 * Time is ticks, randomness is injected. See docs/internals/raft.md for the algorithm as
 * implemented, its deviations from the paper, and the Ready contract (types.ts).
 */
import { assert, assertNever } from '../lib/assert.js';
import { Progress } from './progress.js';
import { committedIndex, hasQuorum, majority, voteOutcome } from './quorum.js';
import { entryBytes, RaftLog } from './raft-log.js';
import { ReadOnlyQueue } from './read-only.js';
import type {
  Divergence,
  Entry,
  HardState,
  LogIndex,
  Membership,
  MembershipChange,
  Message,
  NodeId,
  PlantedBugs,
  ProposeResult,
  RaftBootState,
  RaftConfig,
  ReadFailure,
  ReadState,
  Ready,
  Role,
  SnapshotMeta,
  Status,
  Term,
} from './types.js';

/** Committed entries handed out per Ready: bounds the work of one apply batch. */
const COMMITTED_PER_READY_MAX = 4096;
/** Follower-side forwarded read-index requests fail after this many election timeouts. */
const FORWARDED_READ_TIMEOUT_ELECTIONS = 2;

type ForwardedRead = { requestId: number; ticksLeft: number };

const NO_REGRESSIONS: ReadonlyMap<NodeId, number> = new Map();
export class RaftCore {
  readonly id: NodeId;
  private readonly cfg: RaftConfig;
  private readonly bugs: PlantedBugs;
  private readonly log: RaftLog;

  private role: Role = 'follower';
  private currentTerm: Term;
  private vote: NodeId | null;
  private leaderId: NodeId | null = null;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  /** Leader only: progress of every other member. */
  private progress = new Map<NodeId, Progress>();
  /** The last `Progress.epoch` given out (never reset: epochs stay unique for the node's life). */
  private progressEpochs = 0;
  /** Candidate / pre-candidate: votes received. */
  private votes = new Map<NodeId, boolean>();
  private leadTransferee: NodeId | null = null;
  /** Set once this node's committed log is found to conflict with a leader's (divergence()). */
  private diverged: Divergence | null = null;
  /**
   * Our commit index when we entered the current term: those entries were committed in earlier
   * terms, so the leader of this term holds them (leader completeness), and every heartbeat it
   * sends says a last index at least this. Later commits of this term are not comparable: a
   * heartbeat sent before them may arrive after them. 0 at boot (the term of the boot commit
   * is not known).
   */
  private committedBeforeTerm = 0 as LogIndex;
  private pendingConfigIndex = 0 as LogIndex;
  private uncommittedBytes = 0;
  private appendsPending = false;

  private readonly readOnly = new ReadOnlyQueue();
  private readContextNext = 1;
  /** Leader: reads that arrived before an entry of this term was committed (thesis §6.4 step 1). */
  private readsAwaitingCommit: Array<{ from: NodeId; requestId: number }> = [];
  /** Follower: requests forwarded to the leader, waiting for its answer. */
  private forwardedReads = new Map<number, ForwardedRead>();

  private latestSnapshot: SnapshotMeta;

  // Outboxes, emptied by ready().
  private msgs: Message[] = [];
  private msgsAfterPersist: Message[] = [];
  private readStates: ReadState[] = [];
  private readFailures: ReadFailure[] = [];

  private prevHardState: HardState;
  /** A lone voter won its election with its own vote: it leads once that vote is durable. */
  private wonOnOwnVote = false;
  private prevSoft: { role: Role; leaderId: NodeId | null };
  private readyInFlight = false;

  constructor(config: RaftConfig, boot: RaftBootState) {
    validateConfig(config);
    this.cfg = config;
    this.id = config.id;
    this.bugs = config.plantedBugs ?? {};
    const hs = boot.hardState;
    this.log = new RaftLog(
      boot.snapshot,
      boot.entries,
      hs.commit,
      boot.appliedIndex,
      config.readEntries ?? null,
    );
    this.currentTerm = hs.term;
    this.vote = hs.vote;
    this.latestSnapshot = boot.snapshot;
    this.prevHardState = hs;
    this.prevSoft = { role: 'follower', leaderId: null };
    this.resetRandomizedElectionTimeout();
    // Entries the state machine already holds are durable: their payload need not stay here.
    this.log.release(this.log.applying);
  }

  // ---------------------------------------------------------------------------------------------
  // Public API
  // ---------------------------------------------------------------------------------------------

  /** Advance logical time by one tick (elections, heartbeats, check-quorum, transfer timeout). */
  tick(): void {
    this.tickForwardedReads();
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Feed a message received from a peer. */
  step(m: Message): void {
    if (m.to !== this.id) return;
    if (m.term > this.currentTerm) {
      if (!this.stepHigherTerm(m)) return;
    } else if (m.term < this.currentTerm) {
      this.stepLowerTerm(m);
      return;
    }
    this.stepCurrentTerm(m);
  }

  /** Leader only: append a command. The caller's write completes when (index, term) is applied. */
  propose(data: Uint8Array): ProposeResult {
    const refused = this.refuseProposal(data.byteLength);
    if (refused !== null) return refused;
    const e: Entry = { kind: 'command', index: this.nextIndex(), term: this.currentTerm, data };
    this.appendAsLeader(e);
    return { ok: true, index: e.index, term: e.term };
  }

  /** Leader only: one membership change at a time (thesis §4.1, single-server changes). */
  proposeMembership(change: MembershipChange): ProposeResult {
    const refused = this.refuseProposal(16);
    if (refused !== null) return refused;
    // One change at a time, and only once this leader has committed an entry of its own term:
    // without that, a single-server change can lose a committed change of a previous leader
    // (Ongaro, raft-dev 2015, "bug in single-server membership changes").
    if (this.pendingConfigIndex > this.log.committed || !this.committedInCurrentTerm()) {
      return { ok: false, error: { code: 'HQL_CONFIG_CHANGE_PENDING' } };
    }
    const next = applyChange(this.log.membership(), change);
    if (typeof next === 'string')
      return { ok: false, error: { code: 'HQL_INVALID_CONFIG_CHANGE', reason: next } };
    const e: Entry = { kind: 'config', index: this.nextIndex(), term: this.currentTerm, membership: next };
    this.appendAsLeader(e);
    return { ok: true, index: e.index, term: e.term };
  }

  /**
   * Request a linearizable read point (thesis §6.4). On a follower the request is forwarded to
   * the leader. The answer arrives in a later Ready as a readState or readFailure with this id.
   */
  readIndex(requestId: number): void {
    if (this.role === 'leader') {
      this.leaderReadIndex(this.id, requestId);
      return;
    }
    if (this.leaderId === null) {
      this.readFailures.push({ requestId, reason: 'no-leader' });
      return;
    }
    if (this.forwardedReads.size >= this.cfg.pendingReadsMax || this.forwardedReads.has(requestId)) {
      this.readFailures.push({ requestId, reason: 'not-leader' });
      return;
    }
    const ticksLeft = this.cfg.electionTimeoutTicks * FORWARDED_READ_TIMEOUT_ELECTIONS;
    this.forwardedReads.set(requestId, { requestId, ticksLeft });
    this.send({ type: 'read-index', from: this.id, to: this.leaderId, term: this.currentTerm, requestId });
  }

  /** Leader only: hand leadership to `to` (thesis §3.10). */
  transferLeadership(to: NodeId): { ok: true } | { ok: false; reason: string } {
    if (this.role !== 'leader') return { ok: false, reason: 'not the leader' };
    if (to === this.id) return { ok: false, reason: 'already the leader' };
    if (!this.log.membership().voters.includes(to)) return { ok: false, reason: `node ${to} is not a voter` };
    const pr = this.progress.get(to);
    assert(pr !== undefined, 'voter without progress');
    this.leadTransferee = to;
    // The transfer must complete within one election timeout, or it is aborted (thesis §3.10).
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to, pr, true);
    return { ok: true };
  }

  /** Start an election now (bootstrap of a fresh cluster, tests). */
  campaign(): void {
    if (this.role === 'leader' || !this.promotable()) return;
    this.startElection(this.cfg.preVote ? 'pre-vote' : 'vote', false);
  }

  /**
   * Messages that may be sent right now, even while a Ready is outstanding: they never depend
   * on persistence (the leader's appends, heartbeats, snapshots, TimeoutNow, ReadIndex answers).
   * Lets heartbeats and fresh appends leave while the embedder waits for its disk.
   */
  takeMessages(): Message[] {
    this.flushAppends();
    if (this.msgs.length === 0) return [];
    const out = this.msgs;
    this.msgs = [];
    return out;
  }

  /**
   * Committed entries that are already durable in this node's own log and not yet handed out,
   * marked handed out and applied. Callable at any time, also while a Ready is in flight: its
   * disk write concerns later entries, so these need not wait for it (on a leader, a write
   * acknowledged by a follower during the leader's next fsync is applied at once). Entries come
   * out in log order, after every committed entry of earlier Readies, including the Ready in
   * flight: the embedder must hand that Ready's committed entries below its first new entry to
   * the state machine before applying these (the others cannot precede these: they are not
   * durable yet, so this returns nothing past them).
   */
  takeCommitted(): Entry[] {
    if (this.log.pendingSnapshot !== null) return [];
    const upTo = Math.min(this.committedUpTo(), this.log.stableIndex) as LogIndex;
    const out = this.log.nextCommitted(upTo, COMMITTED_PER_READY_MAX);
    const last = out[out.length - 1];
    if (last !== undefined) {
      this.log.applying = last.index;
      if (last.index > this.log.applied) this.log.applied = last.index;
      this.log.release(last.index);
    }
    return out;
  }

  hasReady(): boolean {
    if (this.readyInFlight) return false;
    this.flushAppends();
    return (
      this.msgs.length > 0 ||
      this.msgsAfterPersist.length > 0 ||
      this.log.hasUnstable() ||
      this.log.pendingSnapshot !== null ||
      this.hardStateChanged() ||
      this.softStateChanged() ||
      this.readStates.length > 0 ||
      this.readFailures.length > 0 ||
      this.committedUpTo() > this.log.applying
    );
  }

  ready(): Ready {
    assert(!this.readyInFlight, 'ready() called before advance() of the previous Ready');
    this.flushAppends();
    const hardState = this.hardStateChanged() ? this.hardState() : null;
    const snapshot = this.log.pendingSnapshot;
    const entries = this.log.takeUnstable();
    const committed = this.log.nextCommitted(this.committedUpTo(), COMMITTED_PER_READY_MAX);
    const last = committed[committed.length - 1];
    if (snapshot !== null && snapshot.index > this.log.applying) this.log.applying = snapshot.index;
    if (last !== undefined) this.log.applying = last.index;
    const softState = this.softStateChanged() ? { role: this.role, leaderId: this.leaderId } : null;
    if (softState !== null) this.prevSoft = softState;
    if (hardState !== null) this.prevHardState = hardState;
    const rd: Ready = {
      hardState,
      entries,
      snapshot,
      messages: this.msgs,
      messagesAfterPersist: this.msgsAfterPersist,
      committed,
      readStates: this.readStates,
      readFailures: this.readFailures,
      softState,
    };
    this.log.pendingSnapshot = null;
    this.msgs = [];
    this.msgsAfterPersist = [];
    this.readStates = [];
    this.readFailures = [];
    this.readyInFlight = true;
    return rd;
  }

  /** The embedder has done everything in `rd` (persisted, sent, applied). */
  advance(rd: Ready): void {
    assert(this.readyInFlight, 'advance() without a Ready');
    this.readyInFlight = false;
    if (rd.snapshot !== null) {
      this.log.stableTo(rd.snapshot.index, rd.snapshot.term);
      if (rd.snapshot.index > this.latestSnapshot.index) this.latestSnapshot = rd.snapshot;
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) this.log.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied = rd.committed[rd.committed.length - 1];
    if (rd.snapshot !== null && rd.snapshot.index > this.log.applied) this.log.applied = rd.snapshot.index;
    if (lastApplied !== undefined && lastApplied.index > this.log.applied)
      this.log.applied = lastApplied.index;
    this.log.release(this.log.applying);
    // Everything handed out so far is durable, the candidate's own vote included.
    const hs = this.prevHardState;
    if (this.wonOnOwnVote && hs.term === this.currentTerm && hs.vote === this.id) {
      this.wonOnOwnVote = false;
      this.becomeLeader();
    }
    if (this.role === 'leader') {
      // The leader counts itself only for what is durable on its own disk (thesis §10.2.1).
      if (this.maybeCommit()) this.bcastAppendsOrHeartbeats();
      this.stepDownIfRemoved();
    }
  }

  /** The runtime finished (ok) or gave up (not ok) streaming a snapshot to `to`. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.progress.get(to);
    if (this.role !== 'leader' || pr === undefined || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0 as LogIndex;
    // Wait for the follower's acknowledgement before sending more (probe).
    pr.becomeProbe();
    pr.probeSent = ok;
  }

  /** The transport could not reach `to`: fall back to probing it. */
  reportUnreachable(to: NodeId): void {
    const pr = this.progress.get(to);
    if (this.role !== 'leader' || pr === undefined) return;
    if (pr.state === 'replicate') pr.becomeProbe();
  }

  /**
   * As leader of this term, how often a follower was found holding less of the log than it had
   * acknowledged (Progress.maybeDecrTo), by follower; empty otherwise. Cheap: no copy of the
   * progress unless some follower regressed.
   */
  followerRegressions(): ReadonlyMap<NodeId, number> {
    if (this.role !== 'leader') return NO_REGRESSIONS;
    let out: Map<NodeId, number> | null = null;
    for (const [id, pr] of this.progress) {
      if (pr.regressions === 0) continue;
      out ??= new Map();
      out.set(id, pr.regressions);
    }
    return out ?? NO_REGRESSIONS;
  }

  /**
   * The state machine holds a snapshot described by `snapshot` (index <= applied). Entries up to
   * `compactTo` (<= snapshot.index) are dropped from the in-memory log; followers that need them
   * receive the snapshot instead.
   */
  compact(snapshot: SnapshotMeta, compactTo: LogIndex): void {
    assert(snapshot.index <= this.log.applied, 'snapshot beyond the applied index');
    assert(compactTo <= snapshot.index, 'compacting beyond the snapshot');
    if (snapshot.index > this.latestSnapshot.index) this.latestSnapshot = snapshot;
    this.log.compact(compactTo);
  }

  /** Entries in [lo, hiExclusive) after the compaction point (released ones read back from the store). */
  entries(lo: LogIndex, hiExclusive: LogIndex): Entry[] {
    const from = Math.max(lo, this.log.firstIndex()) as LogIndex;
    if (from >= hiExclusive) return [];
    return this.log.slice(from, hiExclusive);
  }

  /** The membership in force at a committed index (for the snapshot's metadata). */
  membershipAt(index: LogIndex): Membership {
    return this.log.membershipAt(index);
  }

  /** The index of a snapshot received from the leader that the next Ready will install, or null. */
  pendingSnapshotIndex(): LogIndex | null {
    return this.log.pendingSnapshot?.index ?? null;
  }

  /** This node's role now (status() without copying the membership and the progress). */
  get currentRole(): Role {
    return this.role;
  }

  /** The leader this node knows now, itself included (status() without its copies). */
  get currentLeaderId(): NodeId | null {
    return this.leaderId;
  }

  /** The membership now (status() without the progress' copies). */
  currentMembership(): Membership {
    return this.log.membership();
  }

  status(): Status {
    let progress: Map<NodeId, import('./types.js').ProgressStatus> | null = null;
    if (this.role === 'leader') {
      progress = new Map();
      for (const [id, pr] of this.progress) progress.set(id, pr.status());
    }
    return {
      id: this.id,
      role: this.role,
      term: this.currentTerm,
      vote: this.vote,
      leaderId: this.leaderId,
      commitIndex: this.log.committed,
      appliedIndex: this.log.applied,
      lastIndex: this.log.lastIndex(),
      firstIndex: this.log.firstIndex(),
      snapshotIndex: this.latestSnapshot.index,
      membership: this.log.membership(),
      transferTarget: this.leadTransferee,
      progress,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Time
  // ---------------------------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable()) {
      if (this.electionElapsed >= this.randomizedElectionTimeout) {
        this.electionElapsed = 0;
        this.startElection(this.cfg.preVote ? 'pre-vote' : 'vote', false);
      }
    } else if (this.leaderId !== null && this.electionElapsed >= this.cfg.electionTimeoutTicks) {
      // A node that never campaigns (a learner, a node being added or removed) forgets a leader
      // it has not heard from in an election timeout, as a voter does when it campaigns: else it
      // names a dead leader to whoever asks for ever (found by the fault suite: a learner of an
      // in-memory cache group whose majority restarted kept naming node 1, which had dropped
      // its state and, told it led the group, never founded it anew).
      this.leaderId = null;
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTimeoutTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) {
        // Thesis §6.2: a leader that has not heard from a quorum in an election timeout steps down,
        // so clients stop waiting on a partitioned leader and its reads cannot go stale.
        const active = (id: NodeId) => id === this.id || this.progress.get(id)?.recentActive === true;
        const quorumActive = hasQuorum(this.log.membership().voters, active);
        for (const pr of this.progress.values()) pr.recentActive = false;
        if (!quorumActive) {
          this.becomeFollower(this.currentTerm, null);
          return;
        }
      }
      // Thesis §3.10: abort a transfer that did not complete within an election timeout.
      if (this.leadTransferee !== null) this.leadTransferee = null;
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatIntervalTicks) {
      this.heartbeatElapsed = 0;
      for (const pr of this.progress.values()) pr.heartbeatFreed = false;
      this.bcastHeartbeat(0);
    }
  }

  private tickForwardedReads(): void {
    if (this.forwardedReads.size === 0) return;
    for (const r of this.forwardedReads.values()) {
      r.ticksLeft--;
      if (r.ticksLeft <= 0) {
        this.forwardedReads.delete(r.requestId);
        this.readFailures.push({ requestId: r.requestId, reason: 'leadership-lost' });
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Role transitions
  // ---------------------------------------------------------------------------------------------

  private becomeFollower(t: Term, leader: NodeId | null): void {
    const wasLeader = this.role === 'leader';
    this.reset(t);
    this.role = 'follower';
    this.leaderId = leader;
    if (wasLeader) this.failLeaderReads();
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become pre-candidate');
    // Pre-vote does not change the term or the vote (thesis §9.6).
    this.votes = new Map();
    this.role = 'pre-candidate';
    this.leaderId = null;
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'leader cannot become candidate');
    this.reset((this.currentTerm + 1) as Term);
    this.role = 'candidate';
    this.vote = this.id;
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', 'only a candidate becomes leader');
    this.reset(this.currentTerm);
    this.role = 'leader';
    this.leaderId = this.id;
    this.syncProgress();
    // Raft §8 / thesis §6.4: a no-op entry commits the previous terms' entries and lets the leader
    // learn its commit index before serving reads.
    this.appendAsLeader({ kind: 'noop', index: this.nextIndex(), term: this.currentTerm });
    // Config entries not yet committed are pending (we may not know whether they were).
    this.pendingConfigIndex = this.log.lastConfigIndex();
  }

  private reset(t: Term): void {
    if (t !== this.currentTerm) {
      this.currentTerm = t;
      this.vote = null;
      this.committedBeforeTerm = this.log.committed;
    }
    this.leaderId = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.votes = new Map();
    this.wonOnOwnVote = false;
    this.leadTransferee = null;
    this.progress = new Map();
    this.uncommittedBytes = 0;
    this.appendsPending = false;
    this.pendingConfigIndex = 0 as LogIndex;
    this.failForwardedReads();
  }

  private resetRandomizedElectionTimeout(): void {
    const et = this.cfg.electionTimeoutTicks;
    this.randomizedElectionTimeout = this.cfg.random.int(et, 2 * et);
  }

  /** Align the leader's progress map with the membership in force. */
  private syncProgress(): void {
    const m = this.log.membership();
    const members = new Set<NodeId>([...m.voters, ...m.learners]);
    for (const id of this.progress.keys()) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      if (id === this.id || this.progress.has(id)) continue;
      this.progressEpochs += 1;
      const pr = new Progress(
        this.nextIndex(),
        this.progressEpochs,
        this.cfg.inflightMessagesMax,
        this.cfg.inflightBytesMax,
      );
      pr.recentActive = true;
      this.progress.set(id, pr);
    }
    if (this.leadTransferee !== null && !m.voters.includes(this.leadTransferee)) this.leadTransferee = null;
  }

  /**
   * Whether this node may start an election. A voter of its latest configuration may. So may a
   * node that the latest, not yet committed, configuration removes (thesis §4.2.2: "a server
   * that is not part of its own latest configuration should still start new elections, as it
   * might still be needed until the C_new entry is committed"): its log may be the only one
   * holding that entry, and without it no other node could win. It then counts only the votes
   * of the new configuration's voters. Once the removal is committed it stops campaigning.
   */
  private promotable(): boolean {
    if (this.log.pendingSnapshot !== null || this.cfg.abstain?.() === true) return false;
    if (this.log.membership().voters.includes(this.id)) return true;
    return (
      this.log.lastConfigIndex() > this.log.committed &&
      this.log.membershipAt(this.log.committed).voters.includes(this.id)
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Elections
  // ---------------------------------------------------------------------------------------------

  private startElection(kind: 'pre-vote' | 'vote', transfer: boolean): void {
    if (kind === 'pre-vote') this.becomePreCandidate();
    else this.becomeCandidate();
    const voteTerm = (kind === 'pre-vote' ? this.currentTerm + 1 : this.currentTerm) as Term;
    this.votes.set(this.id, true);
    if (voteOutcome(this.log.membership().voters, this.votes) === 'won') {
      // A single-voter cluster wins with its own vote alone, once that vote is durable
      // (advance()): as leader it would at once send appends of this term to its learners, and
      // after a crash that lost the vote it could lead the same term again with other entries.
      if (kind === 'pre-vote') this.startElection('vote', transfer);
      else this.wonOnOwnVote = true;
      return;
    }
    for (const to of this.log.membership().voters) {
      if (to === this.id) continue;
      // The candidate's own vote must be durable before it asks for others' (Raft Figure 2).
      this.sendAfterPersist({
        type: kind,
        from: this.id,
        to,
        term: voteTerm,
        lastIndex: this.log.lastIndex(),
        lastTerm: this.log.lastTerm(),
        transfer,
      });
    }
  }

  private handleVoteRequest(m: Extract<Message, { type: 'vote' | 'pre-vote' }>): void {
    const isPre = m.type === 'pre-vote';
    // Thesis §9.6 / etcd: we can vote for the node we already voted for, for anyone when we have
    // neither voted nor know a leader in this term, and grant pre-votes for a future term.
    const canVote =
      this.vote === m.from ||
      (this.vote === null && this.leaderId === null) ||
      (isPre && m.term > this.currentTerm);
    const upToDate = this.bugs.voteWithoutLogCheck === true || this.log.isUpToDate(m.lastIndex, m.lastTerm);
    // A node that knows no membership at all is a fresh (or wiped) joiner: it may have voted in
    // this term before it lost its state, so it never votes until the leader brings it in.
    const knowsCluster = this.log.membership().voters.length > 0;
    const granted = canVote && upToDate && knowsCluster && this.cfg.abstain?.() !== true;
    const respType = isPre ? 'pre-vote-response' : 'vote-response';
    // A granted pre-vote answers with the requested term; a rejection carries ours.
    const respTerm = granted && isPre ? m.term : this.currentTerm;
    const resp: Message = { type: respType, from: this.id, to: m.from, term: respTerm, granted };
    if (granted && !isPre) {
      this.electionElapsed = 0;
      this.vote = m.from;
    }
    // A vote is a promise that must survive a crash: answer only once it is durable.
    if (!isPre && this.bugs.voteBeforePersist === true) this.send(resp);
    else this.sendAfterPersist(resp);
  }

  private handleVoteResponse(m: Extract<Message, { type: 'vote-response' | 'pre-vote-response' }>): void {
    const expected = this.role === 'pre-candidate' ? 'pre-vote-response' : 'vote-response';
    if (m.type !== expected || (this.role !== 'pre-candidate' && this.role !== 'candidate')) return;
    this.votes.set(m.from, m.granted);
    const outcome = voteOutcome(this.log.membership().voters, this.votes);
    if (outcome === 'won') {
      if (this.role === 'pre-candidate') this.startElection('vote', false);
      else this.becomeLeader();
    } else if (outcome === 'lost') {
      this.becomeFollower(this.currentTerm, null);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Message dispatch
  // ---------------------------------------------------------------------------------------------

  /** A message from a higher term. Returns whether to continue processing it. */
  private stepHigherTerm(m: Message): boolean {
    if (m.type === 'vote' || m.type === 'pre-vote') {
      // Thesis §4.2.3: while we hear from a leader, ignore vote requests (they come from a
      // disruptive server), unless the leader itself asked for the election (transfer).
      const inLease =
        this.cfg.checkQuorum &&
        this.leaderId !== null &&
        this.electionElapsed < this.cfg.electionTimeoutTicks;
      if (inLease && !m.transfer) return false;
    }
    if (m.type === 'pre-vote') return true; // never changes our term
    if (m.type === 'pre-vote-response' && m.granted) return true; // term is the one we will campaign in
    const leader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot' ? m.from : null;
    this.becomeFollower(m.term, leader);
    return true;
  }

  private stepLowerTerm(m: Message): void {
    if (m.type === 'append' || m.type === 'heartbeat') {
      // A stale leader (e.g. after a partition healed) learns the new term from this answer and
      // steps down (Raft §5.1: every answer carries the term). etcd answers only with pre-vote or
      // check-quorum, since otherwise the higher-term node campaigns; a learner never does, so
      // a learner that kept a higher term from an earlier life (a voter then) would wait forever
      // (simulator seed 21594).
      this.sendAfterPersist({
        type: 'append-response',
        from: this.id,
        to: m.from,
        term: this.currentTerm,
        matchIndex: 0 as LogIndex,
        reject: false,
        rejectedIndex: 0 as LogIndex,
        rejectHint: 0 as LogIndex,
        rejectHintTerm: 0 as Term,
        epoch: 0,
      });
    } else if (m.type === 'pre-vote') {
      this.sendAfterPersist({
        type: 'pre-vote-response',
        from: this.id,
        to: m.from,
        term: this.currentTerm,
        granted: false,
      });
    } else if (m.type === 'read-index') {
      this.send(this.readIndexReply(m.from, m.requestId, 0 as LogIndex, false));
    }
    // Everything else from a stale term is ignored.
  }

  private stepCurrentTerm(m: Message): void {
    switch (m.type) {
      case 'vote':
      case 'pre-vote':
        this.handleVoteRequest(m);
        return;
      case 'vote-response':
      case 'pre-vote-response':
        this.handleVoteResponse(m);
        return;
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        if (this.role === 'leader') {
          // Election safety makes this impossible; with a planted bug the simulator's checker
          // must be the one to notice, so ignore the message instead of crashing.
          assert(
            Object.keys(this.bugs).length > 0,
            `two leaders in term ${this.currentTerm}: ${this.id} and ${m.from}`,
          );
          return;
        }
        if (this.role !== 'follower') this.becomeFollower(this.currentTerm, m.from);
        this.leaderId = m.from;
        this.electionElapsed = 0;
        if (m.type === 'append') this.handleAppend(m);
        else if (m.type === 'heartbeat') this.handleHeartbeat(m);
        else this.handleSnapshot(m);
        return;
      case 'append-response':
        if (this.role === 'leader') this.handleAppendResponse(m);
        return;
      case 'heartbeat-response':
        if (this.role === 'leader') this.handleHeartbeatResponse(m);
        return;
      case 'timeout-now':
        // Thesis §3.10: the leader asks us to start an election at once, skipping pre-vote.
        if (this.promotable() && this.role !== 'leader') this.startElection('vote', true);
        return;
      case 'read-index':
        if (this.role === 'leader') this.leaderReadIndex(m.from, m.requestId);
        else this.send(this.readIndexReply(m.from, m.requestId, 0 as LogIndex, false));
        return;
      case 'read-index-response':
        this.handleReadIndexResponse(m);
        return;
      default:
        assertNever(m, 'message');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Follower side of replication
  // ---------------------------------------------------------------------------------------------

  /** This node's committed log conflicts with its leader's; it answers appends no more. */
  divergence(): Divergence | null {
    return this.diverged;
  }

  /**
   * An entry the leader says it has at `index` with term `leaders`, against ours, committed:
   * records a divergence when we hold that index with another term (compacted: not known).
   */
  private divergesCommitted(index: LogIndex, leaders: Term, leader: NodeId): boolean {
    if (index > this.log.committed || index === 0) return false;
    const ours = this.log.term(index);
    if (ours === undefined || ours === leaders) return false;
    this.diverged ??= { index, ours, leaders, leader, leaderLastIndex: 0 as LogIndex };
    return true;
  }

  private handleAppend(m: Extract<Message, { type: 'append' }>): void {
    if (this.diverged !== null) return;
    const reply = (fields: { matchIndex: LogIndex; reject: boolean; hint: LogIndex; hintTerm: Term }) =>
      this.sendAfterPersist({
        type: 'append-response',
        from: this.id,
        to: m.from,
        term: this.currentTerm,
        matchIndex: fields.matchIndex,
        reject: fields.reject,
        rejectedIndex: fields.reject ? m.prevIndex : (0 as LogIndex),
        rejectHint: fields.hint,
        rejectHintTerm: fields.hintTerm,
        epoch: m.epoch,
      });
    if (m.prevIndex < this.log.committed) {
      // Everything up to our commit index matches the leader's log (Raft's log matching and
      // leader completeness), unless the cluster lost committed entries we hold: check what we
      // can, and never answer a leader whose log contradicts ours below our commit index (we
      // would claim to match it, and serve another history for good as a healthy member).
      if (this.divergesCommitted(m.prevIndex, m.prevTerm, m.from)) return;
      for (const e of m.entries) {
        if (e.index > this.log.committed) break;
        if (this.divergesCommitted(e.index, e.term, m.from)) return;
      }
      reply({ matchIndex: this.log.committed, reject: false, hint: 0 as LogIndex, hintTerm: 0 as Term });
      return;
    }
    if (this.divergesCommitted(m.prevIndex, m.prevTerm, m.from)) return;
    const lastNew = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.commit, m.entries);
    if (lastNew !== null) {
      reply({ matchIndex: lastNew, reject: false, hint: 0 as LogIndex, hintTerm: 0 as Term });
      return;
    }
    const hint = this.log.findConflictByTerm(
      Math.min(m.prevIndex, this.log.lastIndex()) as LogIndex,
      m.prevTerm,
    );
    reply({ matchIndex: 0 as LogIndex, reject: true, hint: hint.index, hintTerm: hint.term });
  }

  private handleHeartbeat(m: Extract<Message, { type: 'heartbeat' }>): void {
    if (this.diverged !== null) return;
    if (m.lastIndex < this.committedBeforeTerm) {
      // The leader lacks entries we hold committed since before its term (with our log
      // compacted, the append checks may never see an entry of both logs to compare): the
      // cluster lost them.
      const index = this.committedBeforeTerm;
      this.diverged = {
        index,
        ours: this.log.term(index) ?? (0 as Term),
        leaders: 0 as Term,
        leader: m.from,
        leaderLastIndex: m.lastIndex,
      };
      return;
    }
    // The leader sends a commit index no further than what it believes we match, with the term
    // of its entry there. Commit only when we hold that very entry (log matching: then every
    // entry before it is the leader's too). A commit past our last entry, or onto an entry of
    // another term, means we hold less than we acknowledged (an older copy of our data was
    // restored): commit nothing; the leader's probe (Progress.maybeDecrTo) repairs our log.
    if (
      m.commit > this.log.committed &&
      m.commit <= this.log.lastIndex() &&
      m.commitTerm !== 0 &&
      this.log.term(m.commit) === m.commitTerm
    ) {
      this.log.commitTo(m.commit);
    }
    this.sendAfterPersist({
      type: 'heartbeat-response',
      from: this.id,
      to: m.from,
      term: this.currentTerm,
      readContext: m.readContext,
      matchHint: this.log.lastIndex(),
    });
  }

  private handleSnapshot(m: Extract<Message, { type: 'snapshot' }>): void {
    if (this.diverged !== null || this.divergesCommitted(m.snapshot.index, m.snapshot.term, m.from)) return;
    const s = m.snapshot;
    const reply = (matchIndex: LogIndex) =>
      this.sendAfterPersist({
        type: 'append-response',
        from: this.id,
        to: m.from,
        term: this.currentTerm,
        matchIndex,
        reject: false,
        rejectedIndex: 0 as LogIndex,
        rejectHint: 0 as LogIndex,
        rejectHintTerm: 0 as Term,
        epoch: m.epoch,
      });
    if (s.index <= this.log.committed) {
      reply(this.log.committed);
      return;
    }
    if (this.log.matchTerm(s.index, s.term)) {
      // We already hold the snapshot's last entry: just learn that it is committed.
      this.log.commitTo(s.index);
      reply(s.index);
      return;
    }
    this.log.restore(s);
    reply(s.index);
  }

  // ---------------------------------------------------------------------------------------------
  // Leader side of replication
  // ---------------------------------------------------------------------------------------------

  private refuseProposal(bytes: number): ProposeResult | null {
    if (this.role !== 'leader') {
      return { ok: false, error: { code: 'HQL_NOT_LEADER', leaderId: this.leaderId } };
    }
    if (this.leadTransferee !== null) {
      return { ok: false, error: { code: 'HQL_LEADERSHIP_TRANSFER', target: this.leadTransferee } };
    }
    if (bytes > this.cfg.commandBytesMax) {
      return { ok: false, error: { code: 'HQL_ENTRY_TOO_LARGE', bytes, bytesMax: this.cfg.commandBytesMax } };
    }
    if (this.log.lastIndex() - this.log.committed >= this.cfg.uncommittedEntriesMax) {
      return { ok: false, error: { code: 'HQL_OVERLOADED', reason: 'uncommitted-entries' } };
    }
    // Always admit one entry, so a single large command is not refused forever.
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.cfg.uncommittedBytesMax) {
      return { ok: false, error: { code: 'HQL_OVERLOADED', reason: 'uncommitted-bytes' } };
    }
    return null;
  }

  private nextIndex(): LogIndex {
    return (this.log.lastIndex() + 1) as LogIndex;
  }

  private appendAsLeader(e: Entry): void {
    this.log.append([e]);
    this.uncommittedBytes += entryBytes(e);
    if (e.kind === 'config') {
      this.pendingConfigIndex = e.index;
      // Thesis §4.1: the new configuration takes effect as soon as it is in the log.
      this.syncProgress();
    }
    this.appendsPending = true;
    // A lone voter commits as soon as its own disk has the entry (see advance()).
  }

  /** Send appends to every follower that has entries to receive; batched per Ready. */
  private flushAppends(): void {
    if (!this.appendsPending || this.role !== 'leader') return;
    this.appendsPending = false;
    for (const [id, pr] of this.progress) {
      if (pr.next <= this.log.lastIndex()) this.sendAppend(id, pr);
    }
  }

  private bcastAppendsOrHeartbeats(): void {
    // Followers learn the new commit index with the next append or heartbeat. A follower that
    // cannot be told more than it was (the commit sent is capped at what it is known to match)
    // gets nothing now: it is told when its acknowledgement arrives (handleAppendResponse).
    for (const [id, pr] of this.progress) {
      if (pr.next <= this.log.lastIndex() && !pr.isPaused()) this.sendAppend(id, pr);
      else if (Math.min(pr.match, this.log.committed) > pr.commitSent) this.sendHeartbeat(id, pr, 0);
    }
  }

  /**
   * Send as many appends as the follower's window allows (one while probing). With `sendIfEmpty`
   * a follower in replicate state with nothing new still gets an empty append: it doubles as a
   * probe, so an append lost in the network is detected by the follower's rejection (etcd does
   * the same on heartbeat responses).
   */
  private sendAppend(to: NodeId, pr: Progress, sendIfEmpty = false): void {
    for (let sent = 0; sent < this.cfg.inflightMessagesMax; sent++) {
      if (pr.isPaused()) return;
      const prevIndex = (pr.next - 1) as LogIndex;
      const prevTerm = this.log.term(prevIndex);
      if (prevTerm === undefined) {
        this.sendSnapshot(to, pr);
        return;
      }
      const entries =
        pr.next <= this.log.lastIndex()
          ? this.log.slice(pr.next, this.nextIndex(), this.cfg.appendBytesMax)
          : [];
      if (entries.length === 0 && pr.state === 'replicate' && (sent > 0 || !sendIfEmpty)) return;
      let bytes = 0;
      for (const e of entries) bytes += entryBytes(e);
      this.send({
        type: 'append',
        from: this.id,
        to,
        term: this.currentTerm,
        prevIndex,
        prevTerm,
        entries,
        commit: this.log.committed,
        epoch: pr.epoch,
      });
      const last = entries[entries.length - 1];
      const commitKnown = Math.min(this.log.committed, last?.index ?? prevIndex) as LogIndex;
      if (commitKnown > pr.commitSent) pr.commitSent = commitKnown;
      pr.sentEntries((last?.index ?? prevIndex) as LogIndex, bytes, entries.length);
      if (pr.state !== 'replicate' || pr.next > this.log.lastIndex()) return;
    }
  }

  private sendSnapshot(to: NodeId, pr: Progress): void {
    const s = this.latestSnapshot;
    assert(s.index >= this.log.firstIndex() - 1, 'compacted log without a snapshot covering it');
    pr.becomeSnapshot(s.index);
    this.send({ type: 'snapshot', from: this.id, to, term: this.currentTerm, snapshot: s, epoch: pr.epoch });
  }

  private sendHeartbeat(to: NodeId, pr: Progress, readContext: number): void {
    // Never tell a follower to commit beyond what it is known to match: its log may differ there.
    const commit = Math.min(pr.match, this.log.committed) as LogIndex;
    if (commit > pr.commitSent) pr.commitSent = commit;
    const commitTerm = this.log.term(commit) ?? (0 as Term);
    this.send({
      type: 'heartbeat',
      from: this.id,
      to,
      term: this.currentTerm,
      commit,
      commitTerm,
      lastIndex: this.log.lastIndex(),
      readContext,
    });
  }

  private bcastHeartbeat(readContext: number): void {
    for (const [id, pr] of this.progress) this.sendHeartbeat(id, pr, readContext);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'timeout-now', from: this.id, to, term: this.currentTerm });
  }

  private handleAppendResponse(m: Extract<Message, { type: 'append-response' }>): void {
    const pr = this.progress.get(m.from);
    // An answer to what was sent under an earlier record of this follower (before it was
    // removed and added again) says nothing about the node that holds its id now.
    if (pr === undefined || m.epoch !== pr.epoch) return;
    pr.recentActive = true;
    if (m.reject) {
      let hint = m.rejectHint;
      if (m.rejectHintTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.rejectHintTerm).index;
      if (pr.maybeDecrTo(m.rejectedIndex, hint)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from, pr);
      }
      return;
    }
    // A follower never holds committed entries beyond a leader's log (leader completeness),
    // unless the cluster lost entries it had committed and the follower still holds them (it
    // stops: RaftCore.divergence). Taken as is, match would point past our log.
    if (m.matchIndex > this.log.lastIndex()) return;
    const oldPaused = pr.isPaused();
    // An answer at match itself is news for a probing follower: its log matches there, so it
    // may replicate again (etcd does the same). A probe at match is how the leader checks a
    // follower whose heartbeat answer said it holds less (handleHeartbeatResponse).
    if (!pr.maybeUpdate(m.matchIndex) && !(pr.state === 'probe' && m.matchIndex === pr.match)) {
      // No news; but a snapshot-state follower that caught up some other way may resume.
      if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) pr.becomeProbe();
      return;
    }
    switch (pr.state) {
      case 'probe':
        pr.becomeReplicate();
        break;
      case 'snapshot':
        if (pr.match >= pr.pendingSnapshot) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case 'replicate':
        pr.inflights.freeLE(m.matchIndex);
        break;
    }
    if (this.maybeCommit()) {
      this.bcastAppendsOrHeartbeats();
    } else if (oldPaused || pr.next <= this.log.lastIndex()) {
      this.sendAppend(m.from, pr);
    }
    // The follower now holds entries committed before it acknowledged them: tell it, or it would
    // wait a heartbeat interval to apply them.
    if (Math.min(pr.match, this.log.committed) > pr.commitSent) this.sendHeartbeat(m.from, pr, 0);
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
    this.stepDownIfRemoved();
  }

  private handleHeartbeatResponse(m: Extract<Message, { type: 'heartbeat-response' }>): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    pr.recentActive = true;
    // The follower is alive but has not answered the last append: it may have been lost, so
    // one more may go out (a probe again, or the window's first slot freed) — once per
    // heartbeat round, or a burst of answers would send a burst of appends beyond the window.
    // The empty append that doubles as a probe also goes once per heartbeat round: heartbeats
    // that carry a new commit index are answered too, and under load that would be one probe
    // (and its answer) per commit.
    let probe = false;
    if (!pr.heartbeatFreed) {
      pr.heartbeatFreed = true;
      probe = true;
      if (pr.state === 'probe') pr.probeSent = false;
      if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    }
    if (pr.match < this.log.lastIndex()) {
      this.sendAppend(m.from, pr, probe);
    } else if (m.matchHint < pr.match && probe) {
      // Nothing left to send, yet the follower's log ends before what it acknowledged: it lost a
      // tail (or answered this heartbeat before it took our last entries). An empty probe at
      // match settles which (Progress.maybeDecrTo); without it a follower that came back with an
      // older copy of its log would wait behind until the next write.
      if (pr.state === 'replicate') pr.becomeProbe();
      this.sendAppend(m.from, pr, true);
    }
    if (m.readContext !== 0) {
      this.readOnly.ack(m.from, m.readContext);
      this.releaseConfirmedReads();
    }
  }

  /** Advance the commit index to what a quorum of voters holds, counting only current-term entries. */
  private maybeCommit(): boolean {
    const voters = this.log.membership().voters;
    const self =
      this.bugs.leaderCountsSelfBeforePersist === true ? this.log.lastIndex() : this.log.stableIndex;
    const idx = committedIndex(voters, (id) =>
      id === this.id ? self : (this.progress.get(id)?.match ?? (0 as LogIndex)),
    );
    if (idx <= this.log.committed) return false;
    // Raft §5.4.2: never commit an entry from a previous term by counting replicas; it becomes
    // committed when an entry of the current term after it is.
    if (this.log.term(idx) !== this.currentTerm && this.bugs.commitPreviousTermByCount !== true) return false;
    const before = this.log.committed;
    this.log.commitTo(idx);
    for (let i = before + 1; i <= idx; i++) {
      const e = this.log.entry(i as LogIndex);
      if (e !== undefined) this.uncommittedBytes -= entryBytes(e);
    }
    if (this.uncommittedBytes < 0) this.uncommittedBytes = 0;
    this.serveReadsAwaitingCommit();
    return true;
  }

  /** Thesis §4.2.2: a leader removed from the configuration steps down once the removal commits. */
  private stepDownIfRemoved(): void {
    if (this.role !== 'leader') return;
    if (this.log.membership().voters.includes(this.id)) return;
    if (this.pendingConfigIndex > this.log.committed) return;
    this.becomeFollower(this.currentTerm, null);
  }

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.currentTerm;
  }

  /** How far entries may be handed out for application. */
  private committedUpTo(): LogIndex {
    if (this.bugs.applyBeforeCommit === true) return this.log.lastIndex();
    return this.log.committed;
  }

  // ---------------------------------------------------------------------------------------------
  // ReadIndex (thesis §6.4)
  // ---------------------------------------------------------------------------------------------

  private leaderReadIndex(from: NodeId, requestId: number): void {
    if (this.leadTransferee !== null) {
      this.answerRead(from, requestId, null, 'transfer-in-progress');
      return;
    }
    if (this.readOnly.size + this.readsAwaitingCommit.length >= this.cfg.pendingReadsMax) {
      this.answerRead(from, requestId, null, 'not-leader');
      return;
    }
    if (!this.committedInCurrentTerm()) {
      // Step 1: until an entry of this term commits, the leader may not know the commit index.
      this.readsAwaitingCommit.push({ from, requestId });
      return;
    }
    this.queueRead(from, requestId);
  }

  private queueRead(from: NodeId, requestId: number): void {
    const voters = this.log.membership().voters;
    const alone = voters.length === 1 && voters[0] === this.id;
    if (alone || this.bugs.readIndexWithoutQuorum === true) {
      this.answerRead(from, requestId, this.log.committed, null);
      return;
    }
    // Steps 2–3: record the commit index, confirm leadership with a heartbeat round.
    const context = this.readContextNext++;
    const acks = new Set<NodeId>();
    if (voters.includes(this.id)) acks.add(this.id);
    this.readOnly.add({ context, index: this.log.committed, from, requestId, acks });
    this.bcastHeartbeat(context);
  }

  private serveReadsAwaitingCommit(): void {
    if (this.readsAwaitingCommit.length === 0 || !this.committedInCurrentTerm()) return;
    const waiting = this.readsAwaitingCommit;
    this.readsAwaitingCommit = [];
    for (const r of waiting) this.queueRead(r.from, r.requestId);
  }

  private releaseConfirmedReads(): void {
    const voters = this.log.membership().voters;
    const q = majority(voters.length);
    const confirmed = this.readOnly.takeConfirmed((acks) => {
      let n = 0;
      for (const id of voters) if (acks.has(id)) n++;
      return n >= q;
    });
    for (const r of confirmed) this.answerRead(r.from, r.requestId, r.index, null);
  }

  private answerRead(
    from: NodeId,
    requestId: number,
    index: LogIndex | null,
    reason: ReadFailure['reason'] | null,
  ): void {
    if (from === this.id) {
      if (index !== null) this.readStates.push({ requestId, index });
      else this.readFailures.push({ requestId, reason: reason ?? 'not-leader' });
      return;
    }
    this.send(this.readIndexReply(from, requestId, index ?? (0 as LogIndex), index !== null));
  }

  private readIndexReply(to: NodeId, requestId: number, index: LogIndex, ok: boolean): Message {
    return { type: 'read-index-response', from: this.id, to, term: this.currentTerm, requestId, index, ok };
  }

  private handleReadIndexResponse(m: Extract<Message, { type: 'read-index-response' }>): void {
    const pending = this.forwardedReads.get(m.requestId);
    if (pending === undefined) return;
    this.forwardedReads.delete(m.requestId);
    if (m.ok) this.readStates.push({ requestId: m.requestId, index: m.index });
    else this.readFailures.push({ requestId: m.requestId, reason: 'not-leader' });
  }

  private failLeaderReads(): void {
    for (const r of this.readOnly.takeAll()) this.answerRead(r.from, r.requestId, null, 'leadership-lost');
    const waiting = this.readsAwaitingCommit;
    this.readsAwaitingCommit = [];
    for (const r of waiting) this.answerRead(r.from, r.requestId, null, 'leadership-lost');
  }

  private failForwardedReads(): void {
    if (this.forwardedReads.size === 0) return;
    for (const r of this.forwardedReads.values()) {
      this.readFailures.push({ requestId: r.requestId, reason: 'leadership-lost' });
    }
    this.forwardedReads.clear();
  }

  // ---------------------------------------------------------------------------------------------
  // Outboxes and state
  // ---------------------------------------------------------------------------------------------

  /** A message that does not depend on this Ready's persistence. */
  private send(m: Message): void {
    this.msgs.push(m);
  }

  /** A message that promises something persisted in this Ready (votes, acknowledgements). */
  private sendAfterPersist(m: Message): void {
    this.msgsAfterPersist.push(m);
  }

  private hardState(): HardState {
    return { term: this.currentTerm, vote: this.vote, commit: this.log.committed };
  }

  private hardStateChanged(): boolean {
    const p = this.prevHardState;
    return p.term !== this.currentTerm || p.vote !== this.vote || p.commit !== this.log.committed;
  }

  private softStateChanged(): boolean {
    return this.prevSoft.role !== this.role || this.prevSoft.leaderId !== this.leaderId;
  }
}

/** The membership after `change`, or the reason it is invalid. */
export function applyChange(m: Membership, change: MembershipChange): Membership | string {
  const isVoter = m.voters.includes(change.node);
  const isLearner = m.learners.includes(change.node);
  switch (change.type) {
    case 'add-learner':
      if (isVoter || isLearner) return `node ${change.node} is already a member`;
      return { voters: m.voters, learners: [...m.learners, change.node] };
    case 'promote':
      if (!isLearner) return `node ${change.node} is not a learner`;
      return { voters: [...m.voters, change.node], learners: m.learners.filter((n) => n !== change.node) };
    case 'remove':
      if (!isVoter && !isLearner) return `node ${change.node} is not a member`;
      if (isVoter && m.voters.length === 1) return 'cannot remove the last voter';
      return {
        voters: m.voters.filter((n) => n !== change.node),
        learners: m.learners.filter((n) => n !== change.node),
      };
    default:
      return assertNever(change, 'membership change');
  }
}

function validateConfig(c: RaftConfig): void {
  const positive = (name: keyof RaftConfig) => {
    const v = c[name];
    assert(
      typeof v === 'number' && Number.isInteger(v) && v >= 1,
      `raft config: ${name} must be an integer >= 1`,
    );
  };
  positive('electionTimeoutTicks');
  positive('heartbeatIntervalTicks');
  positive('inflightMessagesMax');
  positive('inflightBytesMax');
  positive('appendBytesMax');
  positive('uncommittedEntriesMax');
  positive('uncommittedBytesMax');
  positive('commandBytesMax');
  positive('pendingReadsMax');
  assert(
    c.heartbeatIntervalTicks < c.electionTimeoutTicks,
    'raft config: heartbeat interval must be below the election timeout',
  );
}
