/**
 * Quorum math, pure. A majority of n voters is floor(n/2)+1 (Raft §5.2).
 */
import type { LogIndex, NodeId } from './types.js';

export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index that a majority of voters has matched: sort the match indices in
 * descending order and take the one at position majority-1. An empty voter set commits nothing.
 */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => LogIndex): LogIndex {
  if (voters.length === 0) return 0 as LogIndex;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  return matches[majority(voters.length) - 1] as LogIndex;
}

export type VoteOutcome = 'won' | 'lost' | 'pending';

/** Tally of a (pre-)election: won once a majority granted, lost once a majority cannot be reached. */
export function voteOutcome(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteOutcome {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const q = majority(voters.length);
  if (granted >= q) return 'won';
  if (rejected > voters.length - q) return 'lost';
  return 'pending';
}

/** True when the nodes in `active` (plus nothing else) form a majority of `voters`. */
export function hasQuorum(voters: readonly NodeId[], active: (id: NodeId) => boolean): boolean {
  let n = 0;
  for (const id of voters) if (active(id)) n++;
  return n >= majority(voters.length);
}
