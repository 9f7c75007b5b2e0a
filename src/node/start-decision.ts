/**
 * What a node does at start with what its data directory holds: keep its state, or discard it
 * and join the cluster again as a new node; and whether it knows any membership (a node that
 * knows none never votes: it may have voted in a term it no longer remembers). A pure function,
 * so the deterministic simulator (test/sim) runs the same decision as `HiqliteNode.open`.
 */
import type { HardState, LogIndex } from '../raft/types.js';

/** What the data directory holds, as far as the decision goes. */
export interface LocalStateSummary {
  /** Term and vote, or null when the log directory has none (never written, lost or wiped). */
  readonly hardState: HardState | null;
  /** The log's last index (0: empty and never compacted). */
  readonly lastIndex: LogIndex;
  readonly hasSnapshot: boolean;
  /** The state machine's applied index (its database). */
  readonly appliedIndex: LogIndex;
  /** A cluster id is on disk (`data_dir/cluster_id`: written at bootstrap or when joining). */
  readonly hasClusterId: boolean;
  /** Why the log cannot be recovered here (`lostLocalState`), or null. */
  readonly logUncovered: string | null;
}

export interface StartDecision {
  /** Discard the log, the snapshots and the database, and join as a new node: why. Or null. */
  readonly discard: string | null;
  /**
   * The node knows no membership (after any discard): it starts with an empty one and joins
   * through the leader, or, node 1 only, bootstraps once it has proof that no cluster exists.
   */
  readonly fresh: boolean;
  /** No trace of any membership: node 1 may look for proof that no cluster exists. */
  readonly mayBootstrap: boolean;
}

export function decideStart(s: LocalStateSummary): StartDecision {
  const hasData = s.lastIndex > 0 || s.hasSnapshot || s.appliedIndex > 0;
  // The term and vote are gone but data remains: this node may have voted in a term it no
  // longer remembers. Or the log was compacted behind a snapshot that is gone and the database
  // is behind it too. Either way it must not take part as it was.
  const discard =
    s.hardState === null && hasData ? 'the Raft hard state is lost but data remains' : s.logUncovered;
  if (discard !== null) return { discard, fresh: true, mayBootstrap: false };
  // A hard state and nothing else: a node that started to join (or node 1 that began to
  // bootstrap) and stopped before it received any log or snapshot. Its index-0 membership is
  // not the cluster's genesis for it: starting from the genesis, node 1 would find itself its
  // only voter and elect itself beside the real cluster; any other node could vote from what
  // it forgot. It knows no membership, as a node without state.
  const bare = s.hardState !== null && !hasData;
  const fresh = s.hardState === null || bare;
  // Any trace of a past membership: such a node never bootstraps a cluster, whatever it lost.
  const hadMembership = hasData || (!bare && (s.hardState !== null || s.hasClusterId));
  return { discard: null, fresh, mayBootstrap: fresh && !hadMembership };
}
