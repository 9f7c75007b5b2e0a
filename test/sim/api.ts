/**
 * Requests between the API ports of simulated nodes (the join procedure's and the bootstrap
 * proof's): each way crosses the simulated network (network.ts: its latency, drops and cut
 * links), the answer is computed on the receiving node when the request arrives there, and a
 * request without an answer fails after its timeout, as the product's do over TCP.
 */
import { HiqliteError } from '../../src/lib/errors.js';
import type { NodeId } from '../../src/raft/types.js';
import type { ClusterAccess } from './nemesis.js';
import type { SimNode } from './node.js';

/** The receiving node gives no answer (down, stalled, its group not open where one is needed). */
export const NO_ANSWER = Symbol('no answer');

/**
 * `from` asks `to`; `handle` runs on `to` when the request arrives (only if its process is up and
 * not stalled) and its outcome travels back. Rejects with HQL_TIMEOUT (retryable) after
 * `timeoutMs` without an answer.
 */
export function apiCall<T>(
  cluster: ClusterAccess,
  from: NodeId,
  to: NodeId,
  timeoutMs: number,
  handle: (target: SimNode) => Promise<T> | typeof NO_ANSWER,
): Promise<T> {
  const { queue, network } = cluster;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      fn();
    };
    queue.after(Math.round(timeoutMs * 1000), 'api-timeout', from, () =>
      settle(() => reject(new HiqliteError('HQL_TIMEOUT', `no answer from n${to}`, { retryable: true }))),
    );
    network.sendApi(from, to, () => {
      const target = cluster.nodes.get(to);
      if (target === undefined || !target.alive || target.paused || target.decommissioned) return;
      const handled = handle(target);
      if (handled === NO_ANSWER) return;
      handled.then(
        (v) => network.sendApi(to, from, () => settle(() => resolve(v))),
        (e: unknown) => network.sendApi(to, from, () => settle(() => reject(e))),
      );
    });
  });
}

/** What a node answers to `{ op: 'leader' }` (as `HiqliteNode.handleApi`; a SQL node). */
export function leaderAnswer(n: SimNode): {
  leaderId: NodeId | null;
  member: boolean;
  clusterId: string | null;
  sqlite: true;
} {
  const st = n.raft?.status();
  const member =
    st !== undefined && (st.membership.voters.includes(n.id) || st.membership.learners.includes(n.id));
  return { leaderId: st?.leaderId ?? null, member, clusterId: n.clusterId, sqlite: true };
}

/**
 * As `HiqliteNode.findLeader`: asks the other nodes in turn who leads, until one knows. Stops
 * asking once the asking process is `gone` (it died: it sends nothing more).
 */
export async function findLeader(
  cluster: ClusterAccess,
  me: NodeId,
  gone: () => boolean,
): Promise<NodeId | null> {
  for (const id of cluster.profile.nodeIds) {
    if (gone()) return null;
    if (id === me) continue;
    try {
      const v = await apiCall(cluster, me, id, 2000, async (t) => leaderAnswer(t));
      if (v.leaderId !== null) return v.leaderId;
    } catch {
      // the next one
    }
  }
  return null;
}

/** Virtual time; a stalled process wakes up only once it resumes. */
export function processSleep(cluster: ClusterAccess, n: SimNode, us: number, kind: string): Promise<void> {
  return new Promise((resolve) => {
    const wake = () => (n.paused ? cluster.queue.after(1_000, kind, n.id, wake) : resolve());
    cluster.queue.after(Math.max(0, Math.round(us)), kind, n.id, wake);
  });
}
