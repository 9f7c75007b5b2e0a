/**
 * Node 1's proof that no cluster exists, the only ground on which it founds one (bootstraps the
 * genesis membership): it has no trace of any membership itself (start-decision.ts), and every
 * other configured node answers that it knows none (not a member of any group, no cluster id).
 * Any node that answers it is a member, or knows a cluster id, means a cluster exists: node 1
 * then joins it. A node that did not answer, or answered something else, counts for nothing:
 * node 1 asks again until `deadline`, and never founds a cluster by timeout, which would found a
 * second one beside one that is only unreachable.
 *
 * Why every node and not a majority: a node whose volume was wiped answers "none" exactly as a
 * node that never ran. With 5 nodes, voters {1, 2, 3}, nodes 4 and 5 wiped while still learners
 * and node 1 wiped, a majority (1, 4, 5) would answer "none" while 2 and 3 — a majority of the
 * voters, holding every acknowledged write — are only unreachable: node 1 would found a second
 * cluster. No answer can tell a wiped node from a new one, and the voters of an existing cluster
 * can be any of the configured nodes, so only the answer of every one of them proves that none
 * holds a cluster. The price: a cluster is founded only once all its configured nodes run (a
 * node that never comes up must be removed from `nodes`).
 *
 * No I/O of its own: the requests, the clock and the sleeps are given, so `HiqliteNode` runs it
 * over the API port and the deterministic simulator (test/sim) over its simulated network.
 */
import { HiqliteError } from '../lib/errors.js';
import type { NodeId } from '../raft/types.js';
import { saidSqlite } from './sqlite-setting.js';

/** What a node answers to `{ op: 'leader' }` (the fields the proof reads). */
export interface ClusterAnswer {
  readonly member?: boolean | null;
  readonly clusterId?: string | null;
  /** The node's sqlite setting (absent: a node of a version that has only SQL nodes). */
  readonly sqlite?: boolean;
}

export type ProofAnswer = 'exists' | 'none' | 'unknown';

export interface BootstrapProof {
  readonly nodeId: NodeId;
  /** Every configured node (this one included). */
  readonly nodes: readonly NodeId[];
  /** This node's sqlite setting: a node of the other setting is no evidence either way. */
  readonly sqlite: boolean;
  /** Asks `peer` whether it knows a cluster; a rejection (unreachable, timeout) counts for nothing. */
  readonly ask: (peer: NodeId, timeoutMs: number) => Promise<ClusterAnswer>;
  /** The error for a peer of the other sqlite setting that has a cluster (joining it would be refused). */
  readonly mismatch: (peer: NodeId, theirSqlite: boolean) => Error;
  readonly nowMs: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** Between rounds of questions. */
  readonly retryMs: number;
  /** Throws when the start was cancelled. */
  readonly checkCancelled: () => void;
  readonly log: {
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
  };
}

/** How long one question may take. */
export const PROOF_REQUEST_TIMEOUT_MS = 2000;
/** How often node 1 says it is still waiting for answers. */
const WAITING_LOG_MS = 5000;

/**
 * What one answer proves. Throws `mismatch` for a node of the other kind that has a cluster.
 * `warned` holds the peers already reported as of the other kind (reported once, not per round).
 */
export function classifyAnswer(
  p: BootstrapProof,
  peer: NodeId,
  v: ClusterAnswer,
  warned: Set<NodeId>,
): ProofAnswer {
  const exists = v.member === true || (v.clusterId ?? null) !== null;
  if (saidSqlite(v.sqlite) !== p.sqlite) {
    if (exists) throw p.mismatch(peer, saidSqlite(v.sqlite));
    if (!warned.has(peer)) {
      warned.add(peer);
      p.log.warn(
        { peer },
        `node ${peer} has the other sqlite setting: it can never be a member, and node 1 founds no cluster until it answers with the same setting`,
      );
    }
    return 'unknown';
  }
  if (exists) return 'exists';
  // Only an explicit "not a member" counts: a node still opening its storage cannot say yet.
  return v.member === false ? 'none' : 'unknown';
}

/**
 * True once every configured node answered that it knows no cluster (node 1 bootstraps); false
 * as soon as one answers that a cluster exists (node 1 joins it). HQL_UNAVAILABLE (retryable)
 * past `deadline` without either.
 */
export async function proveNoCluster(p: BootstrapProof, deadline: number): Promise<boolean> {
  const others = p.nodes.filter((id) => id !== p.nodeId);
  const warned = new Set<NodeId>();
  let lastLogMs = p.nowMs();
  for (;;) {
    p.checkCancelled();
    const answers = await Promise.all(
      others.map(async (peer): Promise<ProofAnswer> => {
        let v: ClusterAnswer;
        try {
          v = await p.ask(peer, PROOF_REQUEST_TIMEOUT_MS);
        } catch {
          return 'unknown';
        }
        return classifyAnswer(p, peer, v, warned);
      }),
    );
    p.checkCancelled();
    if (answers.includes('exists')) {
      p.log.info({}, 'a cluster exists: node 1 joins it instead of bootstrapping');
      return false;
    }
    const silent = others.filter((_, i) => answers[i] !== 'none');
    if (silent.length === 0) return true;
    const now = p.nowMs();
    if (now > deadline) {
      throw new HiqliteError(
        'HQL_UNAVAILABLE',
        `node ${p.nodeId} has no state and cannot prove that no cluster exists: node${silent.length === 1 ? '' : 's'} ${silent.join(', ')} did not answer that they have none (every configured node must, since a wiped node cannot be told from a new one). Start ${silent.length === 1 ? 'it' : 'them'}, or remove a node that will never run from \`nodes\`; node 1 never founds a cluster it cannot prove is the only one`,
        { retryable: true },
      );
    }
    if (now - lastLogMs >= WAITING_LOG_MS) {
      lastLogMs = now;
      p.log.info(
        { waitingFor: silent, nodes: p.nodes.length },
        'node 1 has no state: waiting for every configured node to answer that it has no cluster before bootstrapping',
      );
    }
    await p.sleep(p.retryMs);
  }
}
