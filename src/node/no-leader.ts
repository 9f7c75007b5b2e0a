/**
 * What a node says when it knows no leader: how many voters it is connected to tells a partition
 * or a quorum loss (fewer than a majority) from an election under way or voters that cannot vote
 * yet (a majority connected). Connected is not voting: it said "reaches 2 of 3 voters (a leader
 * needs 2)", which read as a contradiction (found from outside, while two of three nodes
 * restarted and rejoined).
 */
import { HiqliteError } from '../lib/errors.js';
import type { NodeId } from '../raft/types.js';

export function noLeaderError(
  me: NodeId,
  voters: readonly NodeId[],
  connected: ReadonlySet<number>,
): HiqliteError {
  const reachable = voters.filter((v) => v === me || connected.has(v)).length;
  const majority = Math.floor(voters.length / 2) + 1;
  const why =
    reachable >= majority
      ? `a majority (${majority}) is connected: an election is under way, or a connected voter cannot vote yet (restarted and rejoining, or stopped)`
      : `a leader needs ${majority}: this node is cut off from the others, or they are down`;
  return new HiqliteError(
    'HQL_UNAVAILABLE',
    `no leader: node ${me} is connected to ${reachable} of ${voters.length} voters, itself included (${why})`,
    { retryable: true },
  );
}
