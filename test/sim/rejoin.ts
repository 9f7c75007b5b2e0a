/**
 * Nodes that lost their state join the cluster again by the product's procedure, run as it is:
 * `joinGroup` on the joining node and `addAsLearner` / `promoteLearner` on the leader
 * (src/node/join-procedure.ts, which `HiqliteNode` runs over its API port). Here its requests
 * (to the leader, and to the other nodes to find it) cross the simulated network (api.ts: its
 * latency, drops and partitions), its sleeps are agenda events, and its join record is
 * `SimNode.rejoin` (kept across crashes, as the product's `joining` file). The leader's answer
 * carries the cluster id, which the node keeps (its `data_dir/cluster_id`).
 *
 * A node without state knows no membership, so it never votes or campaigns (it may have voted in
 * a term it no longer remembers). The leader removes it if it is still a member (its replication
 * progress and, for a voter, the memory of its votes are gone) and adds it back as a learner;
 * once it has applied that change and caught up with the leader's commit index, it is promoted
 * again if it was a voter.
 */
import { HiqliteError } from '../../src/lib/errors.js';
import type { Random } from '../../src/lib/prng.js';
import {
  addAsLearner,
  type JoinProcedure,
  type JoinRequest,
  joinGroup,
  type LeaderGroup,
  promoteLearner,
} from '../../src/node/join-procedure.js';
import type { LogIndex, Membership, NodeId } from '../../src/raft/types.js';
import { apiCall, findLeader, NO_ANSWER, processSleep } from './api.js';
import type { ClusterAccess } from './nemesis.js';
import type { SimNode } from './node.js';

export interface RejoinStats {
  /** Nodes added back as learners. */
  joins: number;
  /** Nodes whose join completed (promoted again, or a learner again). */
  rejoined: number;
}

/** How often nodes that must join are looked for (a restarted process starts its join at once). */
const SCAN_US_MIN = 20_000;
const SCAN_US_MAX = 100_000;

const EMPTY: Membership = { voters: [], learners: [] };
const QUIET = { info: () => {}, warn: () => {} };

/** Thrown into a procedure whose process died (or was decommissioned): it just ends. */
class ProcessGone extends Error {}

export class Rejoiner {
  readonly stats: RejoinStats = { joins: 0, rejoined: 0 };
  /** The incarnation whose procedure runs, per node. */
  private readonly running = new Map<NodeId, number>();

  constructor(
    private readonly cluster: ClusterAccess,
    private readonly rng: Random,
    private readonly onError: (e: unknown) => void,
  ) {}

  /** Runs until the end of the run (joins go on in the liveness phase). */
  start(): void {
    this.cluster.queue.after(this.rng.int(SCAN_US_MIN, SCAN_US_MAX + 1), 'rejoin', -1, () => {
      for (const n of this.cluster.nodes.values()) this.maybeStart(n);
      this.start();
    });
  }

  private maybeStart(n: SimNode): void {
    if (n.rejoin === null || n.raft === null || n.paused || n.decommissioned) return;
    if (this.running.get(n.id) === n.incarnation) return;
    const inc = n.incarnation;
    this.running.set(n.id, inc);
    const gone = () => n.incarnation !== inc || n.raft === null || n.decommissioned;
    joinGroup(this.procedure(n, gone), Number.POSITIVE_INFINITY).then(
      () => this.ended(n, inc),
      (e: unknown) => {
        this.ended(n, inc);
        if (!(e instanceof ProcessGone)) this.onError(e);
      },
    );
  }

  private ended(n: SimNode, inc: number): void {
    if (this.running.get(n.id) === inc) this.running.delete(n.id);
  }

  private procedure(n: SimNode, gone: () => boolean): JoinProcedure {
    const queue = this.cluster.queue;
    const r = n.rejoin;
    const wasVoter = r?.wasVoter ?? true;
    const mine = () => !gone() && n.rejoin === r && r !== null;
    return {
      nodeId: n.id,
      group: 'sql',
      stayLearner: !wasVoter,
      raft: {
        applied: () => Math.max(0, n.appliedIndex) as LogIndex,
        status: () => {
          const st = n.raft?.status();
          return st === undefined ? { leaderId: null, membership: EMPTY } : st;
        },
      },
      join: {
        get state() {
          return r === null ? null : { joinedAt: r.joinedAt };
        },
        added: async (index) => {
          if (!mine() || r === null) throw new ProcessGone();
          r.joinedAt = index;
          this.stats.joins++;
        },
        complete: async () => {
          if (!mine()) throw new ProcessGone();
          n.rejoin = null;
          this.stats.rejoined++;
          this.cluster.trace.note(queue.now, `n${n.id} rejoined as ${wasVoter ? 'voter' : 'learner'}`);
        },
      },
      // A process that died sends nothing more (its procedure may still be between two steps).
      request: (leader, req, timeoutMs) => {
        if (gone()) return Promise.reject(new ProcessGone());
        return this.request(n, leader, req, timeoutMs);
      },
      findLeader: () => findLeader(this.cluster, n.id, gone),
      nowMs: () => queue.now / 1000,
      sleep: (ms) => processSleep(this.cluster, n, ms * 1000, 'rejoin-sleep'),
      checkCancelled: () => {
        if (gone()) throw new ProcessGone();
      },
    };
  }

  /**
   * One request of `n`'s procedure to `leaderId`, across the network: handled there by the
   * product's leader side if that node still leads; a request that gets no answer (lost, the
   * leader crashed or is stalled) fails after `timeoutMs` (retryable).
   */
  private request(
    n: SimNode,
    leaderId: NodeId,
    req: JoinRequest,
    timeoutMs: number,
  ): Promise<LogIndex | null> {
    const queue = this.cluster.queue;
    const inc = n.incarnation;
    let clusterId: string | null = null;
    const call = apiCall(this.cluster, n.id, leaderId, timeoutMs, (leader) => {
      const g = leader.raft;
      if (g === null) return NO_ANSWER;
      if (g.status().role !== 'leader')
        return Promise.reject(
          new HiqliteError('HQL_NOT_LEADER', `n${leaderId} does not lead`, { retryable: true }),
        );
      const lg = leaderGroup(leader);
      const handled =
        req.op === 'join'
          ? addAsLearner(lg, n.id, timeoutMs, QUIET, 'sql')
          : promoteLearner(lg, n.id, timeoutMs, QUIET, 'sql').then(() => null);
      return handled.then(
        (index) => {
          this.cluster.trace.note(queue.now, `rejoin n${n.id}: ${req.op} on n${leaderId}: ok`);
          clusterId = leader.clusterId;
          return index;
        },
        (e: unknown) => {
          const code = e instanceof HiqliteError ? e.code : String(e);
          this.cluster.trace.note(queue.now, `rejoin n${n.id}: ${req.op} on n${leaderId}: ${code}`);
          throw e;
        },
      );
    });
    // The answer carries the leader's cluster id: a node without one keeps it (adoptClusterId).
    return call.then((index) => {
      if (n.incarnation === inc) n.clusterId ??= clusterId;
      return index;
    });
  }
}

/** The leader's group as the procedure's leader side uses it (its changes go through SimNode). */
function leaderGroup(leader: SimNode): LeaderGroup {
  return {
    status: () => {
      const g = leader.raft;
      if (g === null) throw new HiqliteError('HQL_NOT_LEADER', 'the leader is down', { retryable: true });
      return g.status();
    },
    proposeMembership: (change) =>
      new Promise((resolve, reject) => {
        const proposed = leader.proposeMembership(change, (result, index) => {
          if (result === 'ok' && index !== undefined) resolve({ index });
          else reject(new HiqliteError('HQL_UNAVAILABLE', `${change.type}: ${result}`, { retryable: true }));
        });
        if (!proposed) reject(new HiqliteError('HQL_NOT_LEADER', 'the leader is down', { retryable: true }));
      }),
  };
}
