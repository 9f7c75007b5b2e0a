/**
 * How a node reads another node's answer to `leader` (group `cache`) about a cache group kept
 * in memory: the cache watchdog (HiqliteNode.startCacheWatchdog), when this node, a voter, has
 * heard from no leader for a while; node 1's proof that no node holds the group any more
 * (HiqliteNode.provenNoGroup), before it founds it anew.
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
  /**
   * It is joining the group and has not applied the entry that added it: it never votes (it may
   * have voted before it lost its state), whatever copy of the group it holds.
   */
  readonly abstains?: boolean;
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
  // Joining with a copy it was sent: no vote of it counts until a leader took it in (found by the
  // cache simulator, --cache-loss seed 63: such a voter kept the group's last holder waiting).
  if (a.abstains === true && (a.leaderId ?? null) === null) return true;
  if ((a.leaderId ?? null) === null) return false;
  if (!Array.isArray(a.voters) || a.voters.includes(me)) return false;
  // Listed as a learner (a membership change this node has not heard of yet): the same group.
  return !(Array.isArray(a.learners) && a.learners.includes(me));
}

/**
 * What an answer tells node 1's proof that no node holds the group (it founds the group anew
 * only when a majority of the nodes, itself included, answer `none` and no node `holds` it):
 * `holds` when the node follows a leader or is a voter of its group, `none` when it is not a
 * member, `unknown` when it cannot say (still opening its storage) — and for a learner that hears
 * from no leader: a learner never votes, so it cannot bring its group back; that group lives only
 * if enough of its voters hold it, and they answer for themselves. So such a learner — and a node
 * still joining, which abstains — counts as a node that did not answer, never as one without the group (found by the fault suite, seed 15002:
 * a learner the old leader added just before its group died vetoed the re-founding until its own
 * start timed out, 120 s).
 */
export function groupHolding(a: CacheLeaderAnswer, node: NodeId): 'holds' | 'none' | 'unknown' {
  if ((a.leaderId ?? null) !== null) return 'holds';
  if (a.member === true) {
    // A node still joining holds a copy it was sent before it was taken in (it abstains): the
    // same (found by the cache simulator, --cache-loss seed 39: such a node vetoed the
    // re-founding for good, and its own join waited for a leader that could never come back).
    const learnerOnly = Array.isArray(a.voters) && !a.voters.includes(node);
    return learnerOnly || a.abstains === true ? 'unknown' : 'holds';
  }
  return a.member === false ? 'none' : 'unknown';
}
