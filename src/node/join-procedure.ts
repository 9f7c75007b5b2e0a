/**
 * How a node joins a Raft group through its leader, and what the leader does for it: the
 * joining node asks to be added (`join`, answered with the index of the entry that added it as
 * a learner), waits until it has applied that entry, then asks to be promoted (unless it stays a
 * learner). The leader removes a node that asks to join while still a member (it lost its state:
 * the leader's idea of its log and, for a voter, the memory of its votes are gone) and adds it
 * back as a learner; it promotes only a learner that has caught up.
 *
 * No I/O of its own: the requests, the clock and the sleeps are given, so `HiqliteNode` runs it
 * over the API port and the deterministic simulator (test/sim) over its simulated network.
 */
import { HiqliteError } from '../lib/errors.js';
import type { LogIndex, Membership, MembershipChange, NodeId } from '../raft/types.js';
import type { JoiningState } from './joining-marker.js';
import type { GroupId } from './seams.js';

/** What the joining node sees of its own group. */
export interface JoiningGroupView {
  applied(): LogIndex;
  status(): { readonly leaderId: NodeId | null; readonly membership: Membership };
}

/** The join in progress (GroupJoin, joining-marker.ts, or the simulator's). */
export interface JoinRecord {
  readonly state: JoiningState | null;
  /** The leader answered: `index` is the entry that added this node (kept across restarts). */
  added(index: LogIndex): Promise<void>;
  /** The node is a member again: the join is over. */
  complete(): Promise<void>;
}

export type JoinRequest = { readonly op: 'join' } | { readonly op: 'promote' };

export interface JoinProcedure {
  readonly nodeId: NodeId;
  readonly group: GroupId;
  /** Once added, stay a learner (`learner_only`) instead of asking to be promoted. */
  readonly stayLearner: boolean;
  readonly raft: JoiningGroupView;
  readonly join: JoinRecord;
  /**
   * Sends `request` to `leader`: `join` resolves with the index of the entry that added this
   * node, `promote` once the leader has promoted it (or said it is a voter). A rejection with a
   * HiqliteError that is not retryable ends the procedure (but HQL_OUTCOME_UNKNOWN: both requests
   * may be asked again); any other is retried.
   */
  readonly request: (leader: NodeId, request: JoinRequest, timeoutMs: number) => Promise<LogIndex | null>;
  /** Asks the other nodes who leads the group (when this node does not know). */
  readonly findLeader: () => Promise<NodeId | null>;
  readonly nowMs: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** Throws when the start was cancelled. */
  readonly checkCancelled: () => void;
  /**
   * While no leader is found: whether this node founded the group meanwhile (node 1 of a group
   * kept in memory, with proof that no node holds it any more: HiqliteNode). True ends the join.
   */
  readonly mayFound?: () => Promise<boolean>;
  /**
   * While this node's own group hears from no leader and the others name `leader`: whether this
   * node was left behind — `leader` leads a group that does not list it (a group kept in memory
   * founded anew while this node waited for the one before) — and dropped its state to join that
   * one (HiqliteNode). True: the join starts over (`raft` and `join` then describe the new state).
   * False: `leader` answered that it leads a group that lists this node. Null: it could not be
   * told (no answer, or `leader` does not say it leads) — a node holding a copy it was sent does
   * not ask that leader to take it in this round.
   */
  readonly leftBehind?: (leader: NodeId) => Promise<boolean | null>;
  /**
   * While no leader is found and this node holds a copy of its group (the entry that added it, or
   * a copy it was sent while its join waited): whether that group is dead — most of its voters
   * lost it (a group kept in memory whose majority restarted) — and this node dropped its copy
   * (HiqliteNode). A learner or joining node never votes, so dropping is always safe, and a copy
   * kept would count against node 1's proof that no node holds the group (found by the cache
   * simulator, --cache-loss seed 193: two learners of a group whose only voter restarted waited
   * for it for ever). True: the join starts over.
   */
  readonly groupDead?: () => Promise<boolean>;
}

/** How long one request to the leader may take. */
export const JOIN_REQUEST_TIMEOUT_MS = 5000;

/**
 * Joins the group (as a learner) and gets promoted (unless `stayLearner`), retrying until done
 * or until `timeoutMs` (HQL_TIMEOUT). A node whose join is not in progress (`join.state` null)
 * is a member already and only waits to be a voter (or asks to be promoted, a learner).
 */
export async function joinGroup(p: JoinProcedure, timeoutMs: number): Promise<void> {
  const deadline = p.nowMs() + timeoutMs;
  const me = p.nodeId;
  p.checkCancelled();
  // A joining node's own view of the membership is not to be trusted until it has applied the
  // entry that (re-)added it: a snapshot it installs on the way may predate its removal. A
  // join a restart interrupted goes on from the entry that added this node, or joins again.
  // After a drop (the join starts over), the join record says it again.
  const recorded = (): LogIndex | null => (p.join.state === null ? (0 as LogIndex) : p.join.state.joinedAt);
  let joinedAt = recorded();
  // After a failed request, ask the others who leads instead of trusting the group's own view:
  // a node the leader removed (the first half of re-adding it) hears from no leader any more,
  // and would ask its last one forever (found by the simulator, seed 782 of 200..1199).
  let askOthers = false;
  /** Rounds in which a leader was found only by asking the others (leftBehind). */
  let leaderlessRounds = 0;
  /** Rounds since the last request that moved the join on (its pause grows with them, to 1 s). */
  let idleRounds = 0;
  for (let attempt = 0; ; attempt++, idleRounds++) {
    if (joinedAt !== null && p.raft.applied() >= joinedAt) {
      const m = p.raft.status().membership;
      if (m.voters.includes(me) || (m.learners.includes(me) && p.stayLearner)) {
        await p.join.complete();
        return;
      }
    }
    p.checkCancelled();
    if (p.nowMs() > deadline) {
      throw new HiqliteError(
        'HQL_TIMEOUT',
        `node ${me} could not join the ${p.group} group before the start's join deadline (StartOptions.joinTimeoutMs; ${Math.round(timeoutMs)} ms were left for this group): no leader of it took this node in; are a majority of its nodes running, of this cluster (a restore is run on every node) and of this hiqlite version?`,
        { retryable: true },
      );
    }
    const own = askOthers ? null : p.raft.status().leaderId;
    let leader = own ?? (await p.findLeader());
    // The others name this node while its own group does not: they heard from it before it
    // lost its state (a dead group's learner, fault suite seed 15002). No leader, then.
    if (leader === me && own !== me) leader = null;
    // Asking the others takes time: a start cancelled meanwhile sends nothing more.
    p.checkCancelled();
    // Every few rounds without a leader (each asks every node: not on every round).
    if (leader === null && p.mayFound !== undefined && attempt >= 2 && (await p.mayFound())) return;
    if (
      leader === null &&
      p.groupDead !== undefined &&
      attempt >= 2 &&
      (joinedAt !== null || holdsGroupState(p.raft)) &&
      (await p.groupDead())
    ) {
      joinedAt = recorded();
      askOthers = false;
      continue;
    }
    // Found only by asking: every few such rounds, whether that leader's group is this node's
    // (found by the fault suite: a node restarted while it was re-added to an in-memory group,
    // which then died, waited for that group's entry until its start timed out).
    // A node not yet added that holds a copy of the group it was sent meanwhile asks before its
    // join: a leader whose group does not list it would send it a log that conflicts with what
    // its copy holds as committed (found by the cache simulator, --cache-loss seed 39).
    const sentCopy = joinedAt === null && holdsGroupState(p.raft);
    let joinNow = true;
    if (
      leader !== null &&
      leader !== me &&
      p.leftBehind !== undefined &&
      (sentCopy || (joinedAt !== null && p.raft.status().leaderId === null && ++leaderlessRounds % 3 === 0))
    ) {
      const behind = await p.leftBehind(leader);
      if (behind === true) {
        joinedAt = recorded();
        askOthers = false;
        continue;
      }
      // With a copy, a join goes only to a leader that said its group lists this node: one that
      // did not answer (down a moment) may lead a group founded anew when the join reaches it,
      // and take this node in with a copy whose committed log conflicts with that group's (the
      // node then stops: found by the cache simulator, --cache-loss seed 6410 of 10,000).
      if (behind === null && sentCopy) {
        joinNow = false;
        askOthers = true;
      }
    }
    if (leader !== null && leader !== me && joinNow) {
      const learner = p.raft.status().membership.learners.includes(me);
      try {
        if (joinedAt === null) {
          const index = await p.request(leader, { op: 'join' }, JOIN_REQUEST_TIMEOUT_MS);
          if (index !== null) {
            joinedAt = index;
            await p.join.added(index);
            idleRounds = 0;
          }
        } else if (learner && p.raft.applied() >= joinedAt) {
          await p.request(leader, { op: 'promote' }, JOIN_REQUEST_TIMEOUT_MS);
          idleRounds = 0;
        }
        askOthers = false;
      } catch (e) {
        // A leader that does not list this learner (a group founded anew while it waited for the
        // one before, which died: found by the cache simulator, --cache-loss seed 27) refuses to
        // promote it: left behind, it drops its state and joins that group.
        if (
          e instanceof HiqliteError &&
          e.code === 'HQL_INVALID_CONFIG_CHANGE' &&
          p.leftBehind !== undefined &&
          (await p.leftBehind(leader))
        ) {
          joinedAt = recorded();
          askOthers = false;
          continue;
        }
        // A request whose outcome is unknown (its leader stepped down or dropped the group while
        // it was being carried out) is asked again: a join is answered once per nonce, a promote
        // of a voter is a no-op (found by the cache simulator, --cache-loss seed 239: the joining
        // node's procedure ended with HQL_OUTCOME_UNKNOWN, as would a node's start).
        if (e instanceof HiqliteError && !e.retryable && e.code !== 'HQL_OUTCOME_UNKNOWN') throw e;
        askOthers = true;
      }
    }
    // After a step forward the next comes soon (the promote once caught up, then the check that
    // it is a voter): a node taken in by a group founded anew waited up to 1 s for each.
    await p.sleep(Math.min(1000, 100 * (idleRounds + 1)));
  }
}

/**
 * Whether a joining node holds a membership of the group: one it was sent while it waited for
 * its join's answer (a leader that still listed it sent it the log). Without its join's entry it
 * may still be left behind (found by the cache simulator, --cache-loss seed 39).
 */
function holdsGroupState(raft: JoiningGroupView): boolean {
  const m = raft.status().membership;
  return m.voters.length > 0 || m.learners.length > 0;
}

/** The leader's side of a group, as the procedure uses it. */
export interface LeaderGroup {
  status(): {
    readonly membership: Membership;
    readonly commitIndex: LogIndex;
    readonly progress?: ReadonlyMap<NodeId, { readonly match: LogIndex }> | null;
  };
  proposeMembership(change: MembershipChange, options: { timeoutMs: number }): Promise<{ index: LogIndex }>;
}

export interface LeaderLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * Leader: adds `id` as a learner, first removing it if it is still a member (only a node without
 * state asks to join). Resolves with the index of the entry that added it.
 */
export async function addAsLearner(
  g: LeaderGroup,
  id: NodeId,
  timeoutMs: number,
  log: LeaderLog,
  group: GroupId,
): Promise<LogIndex> {
  const m = g.status().membership;
  if (m.voters.includes(id) || m.learners.includes(id)) {
    log.warn(
      { peer: id, group },
      'a member rejoins without state: removing it, then adding it back as a learner',
    );
    await g.proposeMembership({ type: 'remove', node: id }, { timeoutMs });
  } else {
    log.info({ peer: id, group }, 'adding a node as learner');
  }
  const out = await g.proposeMembership({ type: 'add-learner', node: id }, { timeoutMs });
  return out.index;
}

/**
 * Leader: promotes the learner `id` once it has caught up (else the new voter would slow down
 * commitment): HQL_UNAVAILABLE (retryable) until then. A voter already is left as it is.
 */
export async function promoteLearner(
  g: LeaderGroup,
  id: NodeId,
  timeoutMs: number,
  log: LeaderLog,
  group: GroupId,
): Promise<void> {
  const s = g.status();
  if (s.membership.voters.includes(id)) return;
  if (!s.membership.learners.includes(id))
    throw new HiqliteError('HQL_INVALID_CONFIG_CHANGE', `node ${id} is not a learner`, { retryable: false });
  const match = s.progress?.get(id)?.match ?? 0;
  if (match < s.commitIndex) {
    throw new HiqliteError(
      'HQL_UNAVAILABLE',
      `node ${id} is still catching up (${match} of ${s.commitIndex})`,
      {
        retryable: true,
      },
    );
  }
  log.info({ peer: id, group }, 'promoting a caught-up learner to voter');
  await g.proposeMembership({ type: 'promote', node: id }, { timeoutMs });
}
