/**
 * One simulated server: a RaftCore driven through the Ready contract (types.ts), with a
 * simulated disk that completes writes after a random latency, and the KV state machine.
 *
 * Per Ready: send `messages` at once → start the disk write → (disk event) write done → send
 * `messagesAfterPersist` → apply `committed` → serve read states → `advance`. One Ready is in
 * flight at a time; the core keeps ticking and stepping meanwhile. A crash discards the core, the
 * state machine and the write in flight (or keeps a torn prefix of it); a restart boots from disk.
 */
import type { Random } from '../../src/lib/prng.js';
import { RaftCore } from '../../src/raft/raft.js';
import type {
  Entry,
  LogIndex,
  Membership,
  Message,
  NodeId,
  ProposeResult,
  RaftConfig,
  Ready,
  Term,
} from '../../src/raft/types.js';
import { logIndex, term } from '../../src/raft/types.js';
import type { SafetyChecker } from './checkers.js';
import { Disk, type DiskWrite, writeUnits } from './disk.js';
import type { EventQueue } from './event-queue.js';
import { fail } from './failure.js';
import { encodeCommand, type KvCommand, type KvSnapshot, KvStateMachine } from './kv.js';
import type { KvResult } from './linearizability.js';
import type { Envelope } from './network.js';
import type { Profile } from './profile.js';
import type { Trace } from './trace.js';

export type ProposalOutcome =
  | { readonly kind: 'applied'; readonly result: KvResult }
  /** A different entry was applied at the proposal's index: it never took effect. */
  | { readonly kind: 'not-applied' }
  /** The proposer crashed or skipped the index through a snapshot: it may or may not take effect. */
  | { readonly kind: 'unknown' };

export type ReadOutcome =
  | { readonly kind: 'value'; readonly value: number | null }
  | { readonly kind: 'failed' };

export interface NodeStats {
  snapshotsTaken: number;
  /** Entries the cores read back from disk after releasing them (RaftConfig.readEntries). */
  entriesReadBack: number;
  snapshotsInstalled: number;
  tornWrites: number;
  lostWrites: number;
  membershipApplied: number;
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
}

interface PendingProposal {
  readonly term: number;
  readonly opId: number;
  readonly done: (o: ProposalOutcome) => void;
}

interface PendingRead {
  readonly key: string;
  readonly done: (o: ReadOutcome) => void;
  /** Set once the read state arrived: serve when the state machine reaches it. */
  index: number | null;
}

/** Readies handled back to back in one pump before yielding (each needs no disk write). */
const READIES_PER_PUMP_MAX = 64;
/** Snapshots kept in memory for sending / installing (older ones are never asked for). */
const SNAPSHOTS_KEPT_MAX = 4;

export class SimNode {
  readonly disk: Disk;
  private core: RaftCore | null = null;
  private kv: KvStateMachine | null = null;
  /** Bumped by every crash: events of a previous life are ignored. */
  incarnation = 0;
  /** The Ready being persisted; `durable` once the disk finished (the process may be paused). */
  private writing: { rd: Ready; write: DiskWrite; durable: boolean } | null = null;
  private readonly proposals = new Map<number, PendingProposal>();
  private readonly reads = new Map<number, PendingRead>();
  /** Snapshots this node can send (its own, or installed). */
  private snapshots: KvSnapshot[] = [];
  /** Snapshot data received next to snapshot messages, until the core installs one. */
  private incoming: KvSnapshot[] = [];
  private leaderTermSeen = -1;
  /** Removed from the membership and shut down for good (the operator decommissioned it). */
  decommissioned = false;
  /** A stalled process (GC pause, overloaded host): until then it handles nothing. */
  private pausedUntilUs = 0;
  /** This node's tick interval: clocks drift, so nodes tick at slightly different rates. */
  private tickUs: number;

  constructor(
    readonly id: NodeId,
    private readonly host: NodeHost,
    initial: KvSnapshot,
  ) {
    this.disk = new Disk({ term: term(0), vote: null, commit: logIndex(0) }, initial);
    const skewUs = Math.floor((host.profile.tickUs * host.profile.tickSkewPct) / 100);
    this.tickUs = host.profile.tickUs + host.rng.int(-skewUs, skewUs + 1);
  }

  get paused(): boolean {
    return this.host.queue.now < this.pausedUntilUs;
  }

  /** Stall the process for `durationUs`: events that reach it wait until it resumes. */
  pause(durationUs: number): void {
    if (this.core === null) return;
    this.pausedUntilUs = Math.max(this.pausedUntilUs, this.host.queue.now + durationUs);
    this.host.trace.note(this.host.queue.now, `n${this.id} paused for ${Math.round(durationUs / 1000)}ms`);
  }

  /** Run `fn` now, or when the process resumes if it is paused (in arrival order). */
  whenRunning(kind: string, fn: () => void): void {
    if (!this.paused) {
      fn();
      return;
    }
    this.host.queue.after(this.pausedUntilUs - this.host.queue.now, kind, this.id, () =>
      this.whenRunning(kind, fn),
    );
  }

  get alive(): boolean {
    return this.core !== null;
  }

  /** The live core (for checkers and the operator); null while down. */
  get raft(): RaftCore | null {
    return this.core;
  }

  get appliedIndex(): number {
    return this.kv?.appliedIndex ?? -1;
  }

  /** The membership as of the applied index (committed), null while down. */
  get appliedMembership(): Membership | null {
    return this.kv?.membership ?? null;
  }

  get hasWriteInFlight(): boolean {
    return this.writing !== null && !this.writing.durable;
  }

  kvDigest(): string {
    return this.kv?.digest() ?? '';
  }

  /** Boot from what the disk holds. */
  start(): void {
    if (this.core !== null) return;
    const p = this.host.profile;
    const config: RaftConfig = {
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
      ...(p.releaseEntries ? { readEntries: (lo, hi, bytesMax) => this.readBack(lo, hi, bytesMax) } : {}),
    };
    const boot = this.disk.bootState();
    this.core = new RaftCore(config, boot);
    this.kv = new KvStateMachine(this.disk.snapshot);
    this.snapshots = [this.disk.snapshot];
    this.incoming = [];
    this.leaderTermSeen = -1;
    this.host.trace.note(
      this.host.queue.now,
      `n${this.id} start term=${boot.hardState.term} vote=${boot.hardState.vote} commit=${boot.hardState.commit} snap=${boot.snapshot.index} last=${boot.snapshot.index + boot.entries.length}`,
    );
    const inc = this.incarnation;
    // A random phase, so nodes do not tick in lockstep.
    this.scheduleTick(inc, this.host.rng.int(1, this.tickUs + 1));
    this.pump();
  }

  /** Power loss: the write in flight is lost, or torn (a prefix of it survives). */
  crash(): void {
    if (this.core === null) return;
    const w = this.writing;
    let what = '';
    if (w !== null && !w.durable) {
      const units = writeUnits(w.write);
      if (this.host.rng.chance(this.host.profile.tornWriteRate)) {
        const kept = this.host.rng.int(0, units + 1);
        this.disk.write(w.write, kept);
        this.host.stats.tornWrites++;
        what = ` (torn write: ${kept}/${units} pieces kept)`;
      } else {
        this.host.stats.lostWrites++;
        what = ` (write of ${units} pieces lost)`;
      }
    }
    this.host.trace.note(this.host.queue.now, `n${this.id} crash${what}`);
    this.writing = null;
    this.core = null;
    this.kv = null;
    this.pausedUntilUs = 0;
    this.incarnation++;
    this.snapshots = [];
    this.incoming = [];
    const proposals = [...this.proposals.values()];
    const reads = [...this.reads.values()];
    this.proposals.clear();
    this.reads.clear();
    for (const p of proposals) p.done({ kind: 'unknown' });
    for (const r of reads) r.done({ kind: 'failed' });
  }

  deliver(env: Envelope): void {
    if (this.paused) {
      this.whenRunning('deliver', () => this.deliver(env));
      return;
    }
    const core = this.core;
    if (core === null) return;
    if (env.snapshot !== null) {
      this.incoming.push(env.snapshot);
      if (this.incoming.length > SNAPSHOTS_KEPT_MAX) this.incoming.shift();
    }
    core.step(env.msg);
    this.afterInput();
  }

  /** Propose a client command; null when the node is down. */
  propose(cmd: KvCommand, done: (o: ProposalOutcome) => void): ProposeResult | null {
    const core = this.core;
    if (core === null || this.paused) return null;
    const res = core.propose(encodeCommand(cmd));
    if (res.ok) {
      // An older proposal at this index was overwritten in this node's log: its fate is unknown here.
      this.proposals.get(res.index)?.done({ kind: 'unknown' });
      this.proposals.set(res.index, { term: res.term, opId: cmd.opId, done });
    }
    this.afterInput();
    return res;
  }

  /** Start a read-index read; false when the node is down. */
  read(requestId: number, key: string, done: (o: ReadOutcome) => void): boolean {
    const core = this.core;
    if (core === null || this.paused) return false;
    this.reads.set(requestId, { key, done, index: null });
    core.readIndex(requestId);
    this.afterInput();
    return true;
  }

  /** Give up on a read (client timeout): a late read state for it is ignored. */
  forgetRead(requestId: number): void {
    this.reads.delete(requestId);
  }

  /** Run an operator action against the live core, then process what it produced. */
  withCore<T>(fn: (core: RaftCore) => T): T | null {
    const core = this.core;
    if (core === null) return null;
    const out = fn(core);
    this.afterInput();
    return out;
  }

  private scheduleTick(inc: number, delayUs: number): void {
    this.host.queue.after(delayUs, 'tick', this.id, () => {
      if (inc !== this.incarnation || this.core === null) return;
      // A paused process's timer fires once, late, when it resumes.
      const lateUs = this.paused ? this.pausedUntilUs - this.host.queue.now : 0;
      if (lateUs > 0) {
        this.scheduleTick(inc, lateUs);
        return;
      }
      this.core.tick();
      this.afterInput();
      this.scheduleTick(inc, this.tickUs);
    });
  }

  private afterInput(): void {
    this.observeLeadership();
    this.pump();
  }

  /**
   * Record leadership as soon as the core has it, even if its Ready is held back behind a disk
   * write (a leader that steps down before its first Ready must still count for election safety).
   */
  private observeLeadership(): void {
    const core = this.core;
    if (core === null) return;
    const st = core.status();
    if (st.role !== 'leader' || st.term === this.leaderTermSeen) return;
    this.leaderTermSeen = st.term;
    this.host.trace.note(
      this.host.queue.now,
      `n${this.id} leader term=${st.term} last=${st.lastIndex} commit=${st.commitIndex}`,
    );
    this.host.safety.onLeader(this.id, st.term, core);
    this.host.onLeader(this);
  }

  private pump(): void {
    for (let i = 0; i < READIES_PER_PUMP_MAX; i++) {
      const core = this.core;
      if (core === null) return;
      if (this.writing !== null) {
        // While the disk works, heartbeats and fresh appends may still leave (they depend on
        // nothing being persisted); an embedder may also simply wait, so some seeds do.
        if (this.host.profile.sendWhileWriting) for (const m of core.takeMessages()) this.send(m);
        // … and committed entries that are durable here may be applied (as the runtime does).
        if (this.host.profile.applyWhileWriting) this.applyCommittedNow(core);
        return;
      }
      if (!core.hasReady()) return;
      this.handleReady(core.ready());
    }
  }

  /**
   * As the runtime does: committed entries below the Ready's first new entry are durable here
   * already and are applied before its disk write (takeCommitted relies on it). Returns the
   * rest, to apply after the write.
   */
  private applyDurableCommitted(rd: Ready): readonly Entry[] {
    const core = this.core;
    const firstNew = rd.entries[0]?.index ?? Number.POSITIVE_INFINITY;
    if (core === null || rd.snapshot !== null || (rd.committed[0]?.index ?? firstNew) >= firstNew)
      return rd.committed;
    const currentTerm = core.status().term;
    const later: Entry[] = [];
    for (const e of rd.committed) {
      if (e.index < firstNew) this.apply(e, currentTerm);
      else later.push(e);
    }
    return later;
  }

  private applyCommittedNow(core: RaftCore): void {
    const committed = core.takeCommitted();
    if (committed.length === 0) return;
    const currentTerm = core.status().term;
    for (const e of committed) this.apply(e, currentTerm);
    this.serveReads();
  }

  private handleReady(rd: Ready): void {
    for (const m of rd.messages) this.send(m);
    const applyAfterWrite = this.host.profile.applyWhileWriting
      ? this.applyDurableCommitted(rd)
      : rd.committed;
    const write: DiskWrite = {
      snapshot: rd.snapshot === null ? null : this.incomingSnapshot(rd.snapshot.index, rd.snapshot.term),
      entries: rd.entries,
      hardState: rd.hardState,
    };
    if (writeUnits(write) === 0) {
      this.finishReady(rd, write, applyAfterWrite);
      return;
    }
    const writing = { rd, write, durable: false };
    this.writing = writing;
    const inc = this.incarnation;
    const p = this.host.profile;
    const rng = this.host.rng;
    let latencyUs = rng.int(p.diskLatencyUsMin, p.diskLatencyUsMax + 1);
    if (p.slowDiskRate > 0 && rng.chance(p.slowDiskRate)) latencyUs += rng.int(0, p.slowDiskUsMax + 1);
    this.host.queue.after(latencyUs, 'disk', this.id, () => {
      if (inc !== this.incarnation) return;
      // The write is durable now; the process learns of it when it runs again.
      this.disk.write(write);
      writing.durable = true;
      this.whenRunning('disk-done', () => {
        if (inc !== this.incarnation) return;
        this.writing = null;
        this.finishReady(rd, write, applyAfterWrite);
        this.afterInput();
      });
    });
  }

  private finishReady(rd: Ready, write: DiskWrite, committed: readonly Entry[]): void {
    const core = this.core;
    if (core === null) return;
    if (write.snapshot !== null) this.installSnapshot(write.snapshot);
    for (const m of rd.messagesAfterPersist) this.send(m);
    if (committed.length > 0) {
      const currentTerm = core.status().term;
      for (const e of committed) this.apply(e, currentTerm);
    }
    for (const rs of rd.readStates) {
      const r = this.reads.get(rs.requestId);
      if (r !== undefined) r.index = rs.index;
    }
    for (const rf of rd.readFailures) {
      const r = this.reads.get(rf.requestId);
      if (r === undefined) continue;
      this.reads.delete(rf.requestId);
      r.done({ kind: 'failed' });
    }
    this.serveReads();
    core.advance(rd);
    this.maybeCompact(core);
  }

  private apply(e: Entry, currentTerm: Term): void {
    const kv = this.kv as KvStateMachine;
    if (e.index !== kv.appliedIndex + 1) {
      fail('ready-contract', `node ${this.id} was handed entry ${e.index} to apply after ${kv.appliedIndex}`);
    }
    this.host.safety.onApply(this.id, e, currentTerm);
    const out = kv.apply(e);
    if (e.kind === 'config') {
      this.host.stats.membershipApplied++;
      this.host.onMembershipApplied(this.id, e);
    }
    const p = this.proposals.get(e.index);
    if (p === undefined) return;
    this.proposals.delete(e.index);
    if (p.term !== e.term) {
      p.done({ kind: 'not-applied' });
      return;
    }
    if (out === null || out.opId !== p.opId) {
      fail(
        'state-machine-safety',
        `node ${this.id} proposed op ${p.opId} at (${e.index}, ${e.term}) but applied another entry there`,
      );
    }
    p.done({ kind: 'applied', result: out.result });
  }

  private serveReads(): void {
    const kv = this.kv as KvStateMachine;
    for (const [id, r] of this.reads) {
      if (r.index === null || r.index > kv.appliedIndex) continue;
      this.reads.delete(id);
      r.done({ kind: 'value', value: kv.read(r.key) });
    }
  }

  private installSnapshot(s: KvSnapshot): void {
    this.host.safety.onSnapshot(this.id, s, 'installed');
    this.host.stats.snapshotsInstalled++;
    this.host.trace.note(this.host.queue.now, `n${this.id} install snapshot ${s.meta.index}/${s.meta.term}`);
    this.kv = new KvStateMachine(s);
    this.rememberSnapshot(s);
    for (const [index, p] of this.proposals) {
      if (index > s.meta.index) continue;
      this.proposals.delete(index);
      p.done({ kind: 'unknown' });
    }
  }

  private readBack(lo: LogIndex, hiExclusive: LogIndex, bytesMax: number): Entry[] {
    const out = this.disk.entries(lo, hiExclusive, bytesMax);
    this.host.stats.entriesReadBack += out.length;
    return out;
  }

  private maybeCompact(core: RaftCore): void {
    const kv = this.kv as KvStateMachine;
    const p = this.host.profile;
    if (kv.appliedIndex - this.disk.snapshot.meta.index < p.compactEveryEntries) return;
    const snap = kv.snapshot();
    this.host.safety.onSnapshot(this.id, snap, 'taken');
    const compactTo = Math.max(0, snap.meta.index - this.host.rng.int(0, p.compactTailMax + 1)) as LogIndex;
    this.disk.compact(snap, compactTo);
    this.rememberSnapshot(snap);
    core.compact(snap.meta, compactTo);
    this.host.stats.snapshotsTaken++;
  }

  private rememberSnapshot(s: KvSnapshot): void {
    this.snapshots.push(s);
    if (this.snapshots.length > SNAPSHOTS_KEPT_MAX) this.snapshots.shift();
  }

  private incomingSnapshot(index: number, t: number): KvSnapshot {
    for (let i = this.incoming.length - 1; i >= 0; i--) {
      const s = this.incoming[i] as KvSnapshot;
      if (s.meta.index === index && s.meta.term === t) return s;
    }
    return fail(
      'ready-contract',
      `node ${this.id} was asked to install snapshot ${index}/${t} that it never received`,
    );
  }

  private send(m: Message): void {
    let snapshot: KvSnapshot | null = null;
    if (m.type === 'snapshot') {
      snapshot =
        this.snapshots.findLast(
          (s) => s.meta.index === m.snapshot.index && s.meta.term === m.snapshot.term,
        ) ?? null;
      if (snapshot === null) {
        fail(
          'ready-contract',
          `node ${this.id} sent snapshot ${m.snapshot.index}/${m.snapshot.term} that it does not hold`,
        );
      }
    }
    this.host.send({ msg: m, snapshot, senderIncarnation: this.incarnation });
  }
}
