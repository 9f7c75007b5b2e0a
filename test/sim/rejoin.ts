/**
 * Nodes that lost their state join the cluster again, as the product's node does
 * (src/node/hiqlite-node.ts: `ensureMembership` on the joining node, `addAsLearner` and
 * `handlePromote` on the leader). That logic is mirrored here, not run: it is not behind a seam
 * yet (docs/internals/simulator.md, "Limits of the model").
 *
 * A node without state knows no membership, so it never votes or campaigns (it may have voted in
 * a term it no longer remembers). The leader removes it if it is still a member (its replication
 * progress and, for a voter, the memory of its votes are gone) and adds it back as a learner;
 * once it has applied that change and caught up with the leader's commit index, it is promoted
 * again if it was a voter.
 */
import type { Random } from '../../src/lib/prng.js';
import type { LogIndex, MembershipChange } from '../../src/raft/types.js';
import type { ClusterAccess } from './nemesis.js';
import type { SimNode } from './node.js';

export interface RejoinStats {
  /** Nodes added back as learners. */
  joins: number;
  /** Nodes whose join completed (promoted again, or a learner again). */
  rejoined: number;
}

/** How often the joining nodes retry (the product backs off from 100 ms to 1 s). */
const STEP_US_MIN = 20_000;
const STEP_US_MAX = 100_000;
/** A request to a leader that crashed meanwhile is given up after this long. */
const REQUEST_TIMEOUT_US = 5_000_000;

export class Rejoiner {
  readonly stats: RejoinStats = { joins: 0, rejoined: 0 };

  constructor(
    private readonly cluster: ClusterAccess,
    private readonly rng: Random,
  ) {}

  /** Runs until the end of the run (joins go on in the liveness phase). */
  start(): void {
    this.cluster.queue.after(this.rng.int(STEP_US_MIN, STEP_US_MAX + 1), 'rejoin', -1, () => {
      for (const n of this.cluster.nodes.values()) this.step(n);
      this.start();
    });
  }

  private step(n: SimNode): void {
    const r = n.rejoin;
    const own = n.raft;
    if (r === null || own === null || n.paused || n.decommissioned) return;
    if (r.busyUntilUs > this.cluster.queue.now) return;
    // Its own view of the membership counts only once it has applied the change that re-added it
    // (a snapshot it installed on the way may predate its removal).
    if (r.joinedAt !== null && n.appliedIndex >= r.joinedAt) {
      const view = own.status().membership;
      if (view.voters.includes(n.id) || (view.learners.includes(n.id) && !r.wasVoter)) {
        n.rejoin = null;
        this.stats.rejoined++;
        this.cluster.trace.note(
          this.cluster.queue.now,
          `n${n.id} rejoined as ${r.wasVoter ? 'voter' : 'learner'}`,
        );
        return;
      }
    }
    const leader = this.cluster.leader();
    const core = leader?.raft;
    if (leader === null || leader === n || core === null || core === undefined) return;
    const me = n.id;
    if (r.joinedAt === null) {
      const m = core.status().membership;
      const member = m.voters.includes(me) || m.learners.includes(me);
      const addLearner = () =>
        this.request(n, leader, { type: 'add-learner', node: me }, (index, current) => {
          current.joinedAt = index;
          this.stats.joins++;
        });
      // The leader's idea of this node's log (its match index) is from before the state was lost.
      if (member) this.request(n, leader, { type: 'remove', node: me }, () => addLearner());
      else addLearner();
      return;
    }
    if (n.appliedIndex < r.joinedAt) return;
    const view = own.status().membership;
    const current = core.status().membership;
    if (!view.learners.includes(me) || !(current.learners.includes(me) || current.voters.includes(me))) {
      // Removed again meanwhile (the operator's churn): join again.
      r.joinedAt = null;
      return;
    }
    // Promote only a learner that has caught up, or the new voter would slow down commitment.
    const st = core.status();
    if ((st.progress?.get(me)?.match ?? 0) < st.commitIndex) return;
    this.request(n, leader, { type: 'promote', node: me }, () => {});
  }

  /**
   * One membership change through the leader on behalf of `n`; `ok` runs if it was applied and
   * `n` has not restarted meanwhile (a restart starts its join over).
   */
  private request(
    n: SimNode,
    leader: SimNode,
    change: MembershipChange,
    ok: (index: LogIndex, current: NonNullable<SimNode['rejoin']>) => void,
  ): void {
    const r = n.rejoin;
    if (r === null) return;
    r.busyUntilUs = this.cluster.queue.now + REQUEST_TIMEOUT_US;
    const proposed = leader.proposeMembership(change, (result, index) => {
      this.cluster.trace.note(
        this.cluster.queue.now,
        `rejoin n${n.id}: ${change.type} on n${leader.id}: ${result}`,
      );
      if (n.rejoin !== r) return;
      r.busyUntilUs = 0;
      if (result === 'ok' && index !== undefined) ok(index, r);
    });
    if (!proposed) r.busyUntilUs = 0;
  }
}
