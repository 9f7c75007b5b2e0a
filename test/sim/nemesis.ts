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
import type { EventQueue } from './event-queue.js';
import type { Network } from './network.js';
import type { SimNode } from './node.js';
import type { NemesisWeights, Profile } from './profile.js';
import type { Trace } from './trace.js';

export interface NemesisStats {
  crashes: number;
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
}

type Action = keyof NemesisWeights;

export class Nemesis {
  readonly stats: NemesisStats = {
    crashes: 0,
    restarts: 0,
    partitions: 0,
    heals: 0,
    membershipProposed: 0,
    transfers: 0,
  };
  private running = false;
  private readonly actions: Action[];

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

  crash(n: SimNode): void {
    n.crash();
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

  /** One single-server change through the leader (thesis §4.1), keeping at least one voter. */
  private changeMembership(): void {
    const leader = this.cluster.leader();
    const core = leader?.raft;
    if (leader === undefined || leader === null || core === null || core === undefined) return;
    const m = core.status().membership;
    const members = new Set<number>([...m.voters, ...m.learners]);
    const candidates: MembershipChange[] = [];
    for (const id of this.cluster.profile.nodeIds) {
      if (!members.has(id)) candidates.push({ type: 'add-learner', node: id });
    }
    for (const id of m.learners) candidates.push({ type: 'promote', node: id }, { type: 'remove', node: id });
    if (m.voters.length > 1) for (const id of m.voters) candidates.push({ type: 'remove', node: id });
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
