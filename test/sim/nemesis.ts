/**
 * The fault injector and the operator: at random intervals (per-seed intensity) it crashes nodes
 * (any node, the leader, or one with a write in flight), cuts the network (isolate a node or the
 * leader, split the cluster, cut links one way), heals, changes the membership (add a learner,
 * promote, remove, including the leader) and transfers leadership. Crashed nodes come back after
 * a random downtime with what their disk kept.
 */
import { assertNever } from '../../src/lib/assert.js';
import type { Random } from '../../src/lib/prng.js';
import type { MembershipChange, NodeId } from '../../src/raft/types.js';
import type { DiskCopy } from './disk.js';
import type { EventQueue } from './event-queue.js';
import type { Network } from './network.js';
import type { SimNode } from './node.js';
import type { NemesisWeights, Profile } from './profile.js';
import type { Trace } from './trace.js';

export interface NemesisStats {
  crashes: number;
  /** Processes killed (their writes survive). */
  kills: number;
  /** Every machine lost power at once. */
  powerLossesAll: number;
  /** Operator wipes of a stopped node's data (one node counts once per wipe). */
  wipes: number;
  /** Stopped nodes whose data directory was replaced by an older copy, and the entries they lost. */
  restores: number;
  restoredEntriesLost: number;
  /** Crashes while a membership change was in flight, and while a snapshot was being installed. */
  crashesDuringMembership: number;
  crashesDuringSnapshotInstall: number;
  restarts: number;
  partitions: number;
  heals: number;
  membershipProposed: number;
  transfers: number;
}

export interface ClusterAccess {
  readonly queue: EventQueue;
  readonly profile: Profile;
  readonly trace: Trace;
  readonly network: Network;
  readonly nodes: ReadonlyMap<NodeId, SimNode>;
  /** The live leader of the highest term, if any (god's view: the operator knows where to go). */
  leader(): SimNode | null;
  /**
   * The voter sets a quorum may be counted in right now: the latest membership applied anywhere
   * and the leader's (which may hold a change not yet committed).
   */
  voterSets(): ReadonlyArray<readonly NodeId[]>;
}

type Action = keyof NemesisWeights;

export class Nemesis {
  readonly stats: NemesisStats = {
    crashes: 0,
    kills: 0,
    powerLossesAll: 0,
    wipes: 0,
    restores: 0,
    restoredEntriesLost: 0,
    crashesDuringMembership: 0,
    crashesDuringSnapshotInstall: 0,
    restarts: 0,
    partitions: 0,
    heals: 0,
    membershipProposed: 0,
    transfers: 0,
  };
  private running = false;
  private readonly actions: Action[];
  /** The operator's copies of nodes' data directories (restoreOlderCopy). */
  private readonly copies = new Map<NodeId, DiskCopy>();

  constructor(
    private readonly cluster: ClusterAccess,
    private readonly rng: Random,
  ) {
    const w = cluster.profile.nemesis;
    this.actions = (Object.keys(w) as Action[]).filter((a) => w[a] > 0);
  }

  start(): void {
    if (this.cluster.profile.nemesisIntervalUs === 0 || this.actions.length === 0) return;
    this.running = true;
    this.scheduleNext();
  }

  /** Stop injecting faults (scheduled restarts still happen). */
  stop(): void {
    this.running = false;
  }

  /** A node became leader: with the profile's probability, it crashes young. */
  onLeader(n: SimNode): void {
    const p = this.cluster.profile;
    if (!this.running || p.crashNewLeaderRate === 0 || !this.rng.chance(p.crashNewLeaderRate)) return;
    const inc = n.incarnation;
    this.cluster.queue.after(this.rng.int(0, p.crashNewLeaderUsMax + 1), 'crash-young', n.id, () => {
      if (this.running && n.incarnation === inc && this.canCrash()) this.crashOne(n, 'crash young leader');
    });
  }

  /** Heal the network and bring every crashed node back (the liveness phase). */
  healAll(): void {
    this.cluster.network.heal();
    for (const n of this.cluster.nodes.values()) {
      if (!n.alive && !n.decommissioned) this.restart(n);
    }
    this.cluster.trace.note(this.cluster.queue.now, 'heal all: network healed, every node up');
  }

  /** A node receives a snapshot: with the profile's probability it crashes while installing it. */
  onSnapshotDelivered(n: SimNode): void {
    const rate = this.cluster.profile.crashOnSnapshotInstallRate;
    if (!this.running || rate === 0 || !this.rng.chance(rate)) return;
    const inc = n.incarnation;
    // The install is disk writes (snapshot commit, state machine, log purge) of a few ms.
    this.cluster.queue.after(this.rng.int(0, 5_000), 'crash-install', n.id, () => {
      if (!this.running || n.incarnation !== inc || !n.alive || !this.canCrash()) return;
      this.stats.crashesDuringSnapshotInstall++;
      this.crashOne(n, 'crash during snapshot install');
    });
  }

  crash(n: SimNode, kind: 'power' | 'process' = 'power'): void {
    n.crash(kind);
    this.stats.crashes++;
    const p = this.cluster.profile;
    const inc = n.incarnation;
    this.cluster.queue.after(this.rng.int(p.downtimeUsMin, p.downtimeUsMax + 1), 'restart', n.id, () => {
      if (n.incarnation === inc && !n.alive && !n.decommissioned) this.restart(n);
    });
  }

  restart(n: SimNode): void {
    n.start();
    this.stats.restarts++;
  }

  private scheduleNext(): void {
    const mean = this.cluster.profile.nemesisIntervalUs;
    this.cluster.queue.after(
      this.rng.int(Math.floor(mean / 2), Math.floor((mean * 3) / 2) + 1),
      'nemesis',
      -1,
      () => {
        if (!this.running) return;
        this.act(this.pickAction());
        this.scheduleNext();
      },
    );
  }

  private pickAction(): Action {
    const w = this.cluster.profile.nemesis;
    let total = 0;
    for (const a of this.actions) total += w[a];
    let r = this.rng.int(0, total);
    for (const a of this.actions) {
      r -= w[a];
      if (r < 0) return a;
    }
    return this.actions[this.actions.length - 1] as Action;
  }

  private act(a: Action): void {
    const live = [...this.cluster.nodes.values()].filter((n) => n.alive);
    const ids = this.cluster.profile.nodeIds;
    switch (a) {
      case 'crash':
        if (this.canCrash()) this.crashOne(live.length > 0 ? this.rng.pick(live) : null, 'crash');
        return;
      case 'crashLeader':
        if (this.canCrash()) this.crashOne(this.cluster.leader(), 'crash leader');
        return;
      case 'crashMidPersist': {
        const writing = live.filter((n) => n.hasWriteInFlight);
        if (this.canCrash() && writing.length > 0) this.crashOne(this.rng.pick(writing), 'crash mid-persist');
        return;
      }
      case 'pause': {
        const n = live.length > 0 ? this.rng.pick(live) : null;
        if (n === null || n.paused) return;
        // Half the time the leader: a stalled leader that resumes still believes it leads.
        const leader = this.cluster.leader();
        const target = leader !== null && this.rng.chance(0.5) ? leader : n;
        target.pause(this.rng.int(1_000, this.cluster.profile.pauseUsMax + 1));
        return;
      }
      case 'isolate':
        this.isolate(this.rng.pick(ids), 'isolate');
        return;
      case 'isolateLeader': {
        const leader = this.cluster.leader();
        if (leader !== null) this.isolate(leader.id, 'isolate leader');
        return;
      }
      case 'split': {
        const shuffled = shuffle(this.rng, ids);
        const cut = this.rng.int(1, Math.max(2, shuffled.length));
        this.cluster.network.partition(shuffled.slice(0, cut), shuffled.slice(cut));
        this.stats.partitions++;
        this.note(`split [${shuffled.slice(0, cut).join(',')}] | [${shuffled.slice(cut).join(',')}]`);
        return;
      }
      case 'oneWay': {
        if (ids.length < 2) return;
        const from = this.rng.pick(ids);
        const to = this.rng.pick(ids.filter((i) => i !== from));
        this.cluster.network.cutLink(from, to);
        this.stats.partitions++;
        this.note(`cut link ${from}->${to}`);
        return;
      }
      case 'heal':
        this.cluster.network.heal();
        this.stats.heals++;
        this.note('heal network');
        return;
      case 'membership':
        this.changeMembership();
        return;
      case 'transfer':
        this.transfer();
        return;
      case 'kill': {
        const n = live.length > 0 ? this.rng.pick(live) : null;
        if (n === null || !this.canCrash()) return;
        this.note(`kill process: n${n.id}`);
        this.stats.kills++;
        this.crash(n, 'process');
        return;
      }
      case 'powerLossAll':
        if (live.length === 0) return;
        this.note('power loss: every machine');
        this.stats.powerLossesAll++;
        for (const n of live) this.crash(n, 'power');
        return;
      case 'wipe':
        this.wipeOne();
        return;
      case 'wipeAlone':
        this.wipeAlone();
        return;
      case 'crashDuringMembership':
        this.changeMembership(true);
        return;
      case 'restoreOlderCopy':
        this.restoreOlderCopy();
        return;
      default:
        assertNever(a, 'nemesis action');
    }
  }

  private canCrash(): boolean {
    let down = 0;
    for (const n of this.cluster.nodes.values()) if (!n.alive && !n.decommissioned) down++;
    return down < this.cluster.profile.crashedMax;
  }

  private crashOne(n: SimNode | null, why: string): void {
    if (n === null || !n.alive) return;
    this.note(`${why}: n${n.id}`);
    this.crash(n);
  }

  private isolate(id: NodeId, why: string): void {
    const others = this.cluster.profile.nodeIds.filter((i) => i !== id);
    this.cluster.network.partition([id], others);
    this.stats.partitions++;
    this.note(`${why}: n${id}`);
  }

  /**
   * Whether `n` may lose its state: a voter only while the voters that lost theirs (and have not
   * joined again) stay a minority of every voter set a quorum may be counted in. Beyond that a
   * committed entry could be gone from every voter that can still vote: an operator who wipes a
   * majority loses data, whatever the software does.
   */
  private mayWipe(n: SimNode): boolean {
    for (const voters of this.cluster.voterSets()) {
      if (!voters.includes(n.id)) continue;
      let impaired = 0;
      for (const v of voters) if (v !== n.id && this.cluster.nodes.get(v)?.lostState === true) impaired++;
      if (impaired + 1 > Math.floor((voters.length - 1) / 2)) return false;
    }
    return true;
  }

  private isVoter(n: SimNode): boolean {
    return this.cluster.voterSets().some((v) => v.includes(n.id));
  }

  /** The operator deletes part of a stopped node's data (stopping it first if it runs). */
  private wipeOne(): void {
    const nodes = [...this.cluster.nodes.values()].filter((n) => !n.decommissioned);
    if (nodes.length === 0) return;
    const down = nodes.filter((n) => !n.alive);
    const target = down.length > 0 && this.rng.chance(0.7) ? this.rng.pick(down) : this.rng.pick(nodes);
    if (!this.mayWipe(target)) return;
    if (target.alive) {
      if (!this.canCrash()) return;
      this.crashOne(target, 'stop for a wipe');
    }
    const what = this.rng.pick(['log', 'snapshots', 'db', 'all'] as const);
    target.wipe(what, this.isVoter(target));
    this.stats.wipes++;
  }

  /**
   * The operator copies a node's data directory now, and later puts that older copy back in
   * place of the stopped node's: it comes back holding less of the log than it acknowledged (and
   * an older database and snapshots). The leader must find out and send it what it lacks.
   * Only a restore no software could be blamed for: the node keeps its current term and vote
   * (an older vote could be cast twice in a term: the operator docs forbid restoring a copy; what
   * is simulated is the log, database and snapshots going back), it never lost its state since
   * the copy, and every entry it loses stays on a quorum of the other members of each voter set
   * it belongs to (a lost entry may have been counted for a commit; with fewer copies the
   * cluster itself would lose it).
   */
  private restoreOlderCopy(): void {
    const nodes = [...this.cluster.nodes.values()].filter(
      (n) => !n.decommissioned && !n.lostState && !n.everLostState,
    );
    if (nodes.length === 0) return;
    const target = this.rng.pick(nodes);
    const copy = this.copies.get(target.id);
    if (copy === undefined || this.rng.chance(0.3)) {
      if (target.disk.log.hardState !== null) this.copies.set(target.id, target.disk.copy());
      return;
    }
    if (target.alive) {
      if (!this.canCrash()) return;
      this.crashOne(target, 'stop to restore an older copy');
    }
    const d = target.disk.log;
    const hs = d.hardState;
    const old = copy.log;
    if (hs === null || old.hardState === null) return;
    const last = d.purgedIndex + d.entries.length;
    const oldLast = old.purgedIndex + old.entries.length;
    // Entries compacted since the copy (their terms are gone from this log) are not checked: skip.
    if (d.purgedIndex > oldLast) return;
    // Entries the node loses: past the copy's end, or where the copy holds another term.
    let lost = 0;
    for (let i = Math.max(d.purgedIndex, old.purgedIndex) + 1; i <= last; i++) {
      const term = d.entries[i - d.purgedIndex - 1]?.term;
      const oldTerm = i <= oldLast ? old.entries[i - old.purgedIndex - 1]?.term : undefined;
      if (term === undefined || term === oldTerm) continue;
      if (!this.heldWithout(target, i, term)) return;
      lost++;
    }
    this.copies.delete(target.id);
    target.disk.restore(copy, hs);
    this.stats.restores++;
    this.stats.restoredEntriesLost += lost;
    this.note(
      `n${target.id} restored from an older copy: log to ${oldLast} (held ${last}, ${lost} entries lost)`,
    );
  }

  /** Entry `index` of `term` is durable on a quorum of the other members of each voter set of `n`. */
  private heldWithout(n: SimNode, index: number, term: number): boolean {
    for (const voters of this.cluster.voterSets()) {
      if (!voters.includes(n.id)) continue;
      let holders = 0;
      for (const v of voters) {
        const other = this.cluster.nodes.get(v);
        if (v === n.id || other === undefined || other.lostState) continue;
        const log = other.disk.log;
        const held =
          index <= log.purgedIndex
            ? log.purgedTerm > 0 || log.purgedIndex > 0
            : log.entries[index - log.purgedIndex - 1]?.term === term;
        if (held) holders++;
      }
      if (holders < Math.floor(voters.length / 2) + 1) return false;
    }
    return true;
  }

  /**
   * Every node goes down; one voter (node 1 as likely as any) loses its whole data directory or
   * its log and starts again alone, long before the others: it must not vote from the state it
   * forgot, nor found a cluster of its own, and it joins again once the others are back.
   */
  private wipeAlone(): void {
    const voters = this.cluster.voterSets()[0] ?? [];
    const id = voters.length > 0 ? this.rng.pick(voters) : null;
    const target = id === null ? undefined : this.cluster.nodes.get(id);
    if (target === undefined || target.decommissioned || !this.mayWipe(target)) return;
    this.note(`every node down; n${target.id} wiped and started alone`);
    for (const n of this.cluster.nodes.values()) if (n.alive) this.crash(n, 'power');
    target.wipe(this.rng.pick(['log', 'all'] as const), true);
    this.stats.wipes++;
    const inc = target.incarnation;
    this.cluster.queue.after(this.rng.int(1_000, 20_000), 'restart', target.id, () => {
      if (target.incarnation === inc && !target.alive && !target.decommissioned) this.restart(target);
    });
  }

  /** One single-server change through the leader (thesis §4.1), keeping at least one voter. */
  private changeMembership(crashMeanwhile = false): void {
    const leader = this.cluster.leader();
    const core = leader?.raft;
    if (leader === undefined || leader === null || core === null || core === undefined) return;
    const m = core.status().membership;
    const members = new Set<number>([...m.voters, ...m.learners]);
    const candidates: MembershipChange[] = [];
    // Nodes that lost their state join by their own procedure (rejoin.ts), not the operator's.
    const settled = (id: NodeId) => this.cluster.nodes.get(id)?.lostState !== true;
    for (const id of this.cluster.profile.nodeIds) {
      if (!members.has(id) && settled(id)) candidates.push({ type: 'add-learner', node: id });
    }
    for (const id of m.learners) {
      if (settled(id)) candidates.push({ type: 'promote', node: id }, { type: 'remove', node: id });
    }
    // A voter is removed only if the voters that lost their state stay a minority of the rest
    // (an operator who leaves a majority of wiped voters has a cluster that cannot elect).
    if (m.voters.length > 1) {
      for (const id of m.voters) {
        if (!settled(id)) continue;
        const rest = m.voters.filter((v) => v !== id);
        const impaired = rest.filter((v) => this.cluster.nodes.get(v)?.lostState === true).length;
        if (impaired <= Math.floor((rest.length - 1) / 2)) candidates.push({ type: 'remove', node: id });
      }
    }
    if (candidates.length === 0) return;
    const change = this.rng.pick(candidates);
    const target = this.cluster.nodes.get(change.node);
    // A decommissioned node asked back comes back with its disk (a wiped disk could vote twice).
    if (change.type === 'add-learner' && target !== undefined && target.decommissioned) {
      target.decommissioned = false;
      if (!target.alive) this.restart(target);
    }
    const proposed = leader.proposeMembership(change, (result) => {
      if (result === 'ok') this.stats.membershipProposed++;
      this.note(`${change.type} n${change.node} proposed on n${leader.id}: ${result}`);
    });
    if (!proposed) this.note(`propose ${change.type} n${change.node} on n${leader.id}: down or paused`);
    if (!crashMeanwhile || !proposed) return;
    // Restarts during membership changes: the leader that proposed it, or the node it concerns.
    const victim = this.rng.chance(0.5) ? leader : target;
    if (victim === undefined) return;
    const inc = victim.incarnation;
    this.cluster.queue.after(this.rng.int(0, 20_000), 'crash-change', victim.id, () => {
      if (!this.running || victim.incarnation !== inc || !victim.alive || !this.canCrash()) return;
      this.stats.crashesDuringMembership++;
      this.crashOne(victim, `crash during ${change.type} n${change.node}`);
    });
  }

  private transfer(): void {
    const leader = this.cluster.leader();
    const core = leader?.raft;
    if (leader === undefined || leader === null || core === null || core === undefined) return;
    const voters = core.status().membership.voters.filter((v) => v !== leader.id);
    if (voters.length === 0) return;
    const to = this.rng.pick(voters);
    const res = leader.transferLeadership(to);
    if (res?.ok === true) this.stats.transfers++;
    this.note(
      `transfer leadership n${leader.id} -> n${to}: ${res?.ok === true ? 'ok' : (res?.reason ?? 'down')}`,
    );
  }

  private note(text: string): void {
    this.cluster.trace.note(this.cluster.queue.now, text);
  }
}

function shuffle<T>(rng: Random, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
