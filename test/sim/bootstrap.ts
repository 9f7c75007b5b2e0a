/**
 * Node 1's proof that no cluster exists, run as the product runs it (`proveNoCluster`,
 * src/node/bootstrap-proof.ts) when node 1 starts without any trace of membership (an operator
 * wiped its data directory): its questions cross the simulated network (api.ts), its sleeps are
 * agenda events. The scenario's cluster always exists (an operator never wipes a majority of its
 * voters, nemesis.ts), so node 1 must always end up joining it: if the proof lets it found a
 * cluster while another node still holds the existing one, the run fails (bootstrap-safety).
 */
import { proveNoCluster } from '../../src/node/bootstrap-proof.js';
import type { NodeId } from '../../src/raft/types.js';
import { apiCall, leaderAnswer, processSleep } from './api.js';
import { fail } from './failure.js';
import type { ClusterAccess } from './nemesis.js';
import type { SimNode } from './node.js';

export interface BootstrapStats {
  /** Proofs node 1 ran (a start without any trace of membership). */
  proofs: number;
  /** Proofs that ended with node 1 joining the existing cluster. */
  joined: number;
}

/** Thrown into a proof whose process died: it just ends. */
class ProcessGone extends Error {}

const QUIET = { info: () => {}, warn: () => {} };

export class BootstrapProver {
  readonly stats: BootstrapStats = { proofs: 0, joined: 0 };

  constructor(private readonly cluster: ClusterAccess) {}

  async prove(n: SimNode, gone: () => boolean): Promise<boolean> {
    const { cluster } = this;
    const p = cluster.profile;
    this.stats.proofs++;
    cluster.trace.note(
      cluster.queue.now,
      `n${n.id} has no trace of membership: asks for proof that no cluster exists`,
    );
    const electionTimeoutMs = (p.electionTimeoutTicks * p.tickUs) / 1000;
    const bootstrap = await proveNoCluster(
      {
        nodeId: n.id,
        nodes: p.nodeIds,
        sqlite: true,
        ask: (peer, timeoutMs) => apiCall(cluster, n.id, peer, timeoutMs, async (t) => leaderAnswer(t)),
        mismatch: (peer) => new Error(`n${peer} answered with the other sqlite setting`),
        nowMs: () => cluster.queue.now / 1000,
        sleep: (ms) => processSleep(cluster, n, ms * 1000, 'proof-sleep'),
        retryMs: Math.min(1000, electionTimeoutMs / 2),
        checkCancelled: () => {
          if (gone()) throw new ProcessGone();
        },
        log: QUIET,
      },
      // The product gives up after join_timeout_ms and exits; restarted, it asks again.
      Number.POSITIVE_INFINITY,
    );
    if (!bootstrap) {
      this.stats.joined++;
      cluster.trace.note(cluster.queue.now, `n${n.id}: a cluster exists, it joins it`);
      return false;
    }
    const holders = this.holders(n.id);
    // Thrown into the node's start (a promise continuation): the run fails with it.
    if (holders.length > 0)
      fail(
        'bootstrap-safety',
        `n${n.id} founds a new cluster while n${holders.join(', n')} still hold the existing one`,
      );
    return true;
  }

  /** The other nodes that still hold the cluster (its id, or a membership they are part of). */
  private holders(me: NodeId): NodeId[] {
    const out: NodeId[] = [];
    for (const m of this.cluster.nodes.values()) {
      if (m.id === me || m.decommissioned) continue;
      const a = leaderAnswer(m);
      if (a.clusterId !== null || a.member) out.push(m.id);
    }
    return out;
  }
}
