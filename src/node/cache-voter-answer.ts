/**
 * How the cache watchdog (HiqliteNode.startCacheWatchdog) reads another voter's answer to
 * `leader` (group `cache`) when this node, a voter of a cache group kept in memory, has heard
 * from no leader for a while.
 */
import type { NodeId } from '../raft/types.js';

/** The fields of a node's `leader` answer about its cache group that the watchdog reads. */
export interface CacheLeaderAnswer {
  /** Whether it is a member of its cache group: false once it lost its state (it restarted). */
  readonly member?: boolean | null;
  /** The leader it follows, or null. */
  readonly leaderId?: number | null;
  /** The voters of its cache group as it knows them (absent from a node that does not say). */
  readonly voters?: readonly number[] | null;
  /** Its learners as it knows them (absent from a node that does not say). */
  readonly learners?: readonly number[] | null;
}

/**
 * Whether the voter that answered `a` is out of this node's cache group: it lost its state (not
 * a member), or it follows a leader of a group whose voters do not list this node — one founded
 * anew without it. A voter that follows a leader of a group that lists this node (as a voter, or
 * as a learner: a membership change this node has not heard of) holds this very
 * group: the group lives and only this node is cut off from its leader (it hears no heartbeat
 * but can ask; found by the fault suite's one-way partitions: such a node dropped its state and
 * its clients' locks while the group went on). An answer that does not list the voters counts as
 * holding the group: only what an answer says makes a voter gone.
 */
export function voterLeftCacheGroup(a: CacheLeaderAnswer, me: NodeId): boolean {
  if (a.member === false) return true;
  if ((a.leaderId ?? null) === null) return false;
  if (!Array.isArray(a.voters) || a.voters.includes(me)) return false;
  // Listed as a learner (a membership change this node has not heard of yet): the same group.
  return !(Array.isArray(a.learners) && a.learners.includes(me));
}
