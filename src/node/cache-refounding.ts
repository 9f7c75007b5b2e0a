/**
 * A cache group kept in memory (`cache_storage_disk = false`) that a majority of its voters
 * forgot — they restarted and lost their state — can elect no leader again. What brings it back,
 * without I/O of its own (the questions to the other nodes, the clock and the timers are given),
 * so that `HiqliteNode` runs it over its API port and the cache simulator (test/sim/cache) over
 * its simulated network:
 * - what a node answers about its group when asked (`cacheGroupAnswer`);
 * - node 1's proof that no node holds the group any more (`provenNoCacheGroup`), before it
 *   founds it anew, empty;
 * - a joining node left behind: the leader the others name leads a group that does not list it
 *   (`leftBehindBy`);
 * - the watchdog of a voter cut off for good (`CacheWatchdog`): most of its group's voters are
 *   gone from it, so it drops its state and joins the group founded anew.
 */
import type { Clock, TimerHandle } from '../lib/clock.js';
import type { Membership, NodeId } from '../raft/types.js';
import { type CacheLeaderAnswer, groupHolding, voterLeftCacheGroup } from './cache-voter-answer.js';

/** How a node reaches the others' answers about their cache group. */
export interface CacheAsking {
  readonly nodeId: NodeId;
  /** Every configured node, this one included. */
  readonly nodes: readonly NodeId[];
  /** Node `id`'s answer about its cache group, or null when it did not answer (bounded). */
  ask(id: NodeId): Promise<CacheLeaderAnswer | null>;
}

/**
 * What this node answers about its cache group: `status` undefined while it has not opened the
 * group's storage (member null: it cannot say yet, unless it knows it starts without state);
 * `leaderId` the leader it names (none once it stopped serving); `abstains` while it joins the
 * group and has not applied the entry that added it (it never votes).
 */
export function cacheGroupAnswer(
  status: { readonly membership: Membership } | undefined,
  o: {
    readonly me: NodeId;
    readonly leaderId: NodeId | null;
    readonly freshWhileClosed: boolean;
    readonly abstains: boolean;
  },
): Required<CacheLeaderAnswer> {
  const { me, leaderId, freshWhileClosed, abstains } = o;
  return {
    leaderId,
    abstains,
    member:
      status === undefined
        ? freshWhileClosed
          ? false
          : null
        : status.membership.voters.includes(me) || status.membership.learners.includes(me),
    voters: status === undefined ? null : status.membership.voters,
    learners: status === undefined ? null : status.membership.learners,
  };
}

/**
 * Node 1 founds the group again only with proof that no node holds it: a majority of the nodes,
 * itself included, answer that they are not members of it, and none answers that it is
 * (groupHolding). A node still opening its storage does not answer (member: null), so a node that
 * has the group on disk is never counted as having none. Asks again every `retryMs` until
 * `deadline` (the clock's monotonic ms): false then.
 */
export async function provenNoCacheGroup(
  a: CacheAsking,
  o: {
    readonly deadline: number;
    readonly clock: Pick<Clock, 'monotonicMs'>;
    readonly sleep: (ms: number) => Promise<void>;
    readonly retryMs: number;
    readonly checkCancelled: () => void;
  },
): Promise<boolean> {
  const others = a.nodes.filter((n) => n !== a.nodeId);
  const majority = Math.floor(a.nodes.length / 2) + 1;
  for (;;) {
    const answers = await Promise.all(
      others.map(async (n) => {
        const v = await a.ask(n).catch(() => null);
        return v === null ? 'unknown' : groupHolding(v, n);
      }),
    );
    o.checkCancelled();
    if (answers.includes('holds')) return false;
    if (1 + answers.filter((x) => x === 'none').length >= majority) return true;
    if (o.clock.monotonicMs() > o.deadline) return false;
    await o.sleep(o.retryMs);
  }
}

/**
 * Whether `leader`'s answer shows this node left behind: it leads a group that lists this node
 * neither as voter nor as learner — a group founded anew while this node waited for the one
 * before (found by the fault suite: such a node waited for that group's entry until its start
 * timed out, 120 s, and exited). Such a node drops its state and joins that group.
 */
export function leftBehindBy(a: CacheLeaderAnswer | null, leader: NodeId, me: NodeId): boolean {
  if (!leadsSaying(a, leader)) return false;
  return !a.voters.includes(me) && !a.learners.includes(me);
}

/** Whether `a` is `leader`'s answer that it leads a group, with that group's members. */
export function leadsSaying(
  a: CacheLeaderAnswer | null,
  leader: NodeId,
): a is CacheLeaderAnswer & { readonly voters: readonly NodeId[]; readonly learners: readonly NodeId[] } {
  return a !== null && a.leaderId === leader && Array.isArray(a.voters) && Array.isArray(a.learners);
}

/**
 * The voters (other than this node) that answer they are out of its cache group — not members,
 * joining without a vote (abstains), or following a leader of a group that does not list this
 * node — and those that do not answer;
 * `dead` when the gone ones leave too few for a majority. A voter that does not answer may still
 * hold the group: it counts as holding it (only answers decide).
 */
export async function votersGoneFromCacheGroup(
  a: CacheAsking,
  voters: readonly NodeId[],
  o: { readonly selfAbstains?: boolean } = {},
): Promise<{ gone: NodeId[]; silent: NodeId[]; dead: boolean }> {
  const others = voters.filter((v) => v !== a.nodeId);
  const answers = await Promise.all(
    others.map(async (v): Promise<'gone' | 'holds' | 'silent'> => {
      const r = await a.ask(v).catch(() => null);
      if (r === null) return 'silent';
      return voterLeftCacheGroup(r, a.nodeId) ? 'gone' : 'holds';
    }),
  );
  const gone = others.filter((_, i) => answers[i] === 'gone');
  const silent = others.filter((_, i) => answers[i] === 'silent');
  const majority = Math.floor(voters.length / 2) + 1;
  // A joining node asking about the copy it holds cannot vote with it either.
  const selfGone = o.selfAbstains === true && voters.includes(a.nodeId) ? 1 : 0;
  return { gone, silent, dead: voters.length - gone.length - selfGone < majority };
}

export interface CacheWatchdogOptions {
  readonly asking: CacheAsking;
  readonly clock: Clock;
  readonly electionTimeoutMs: number;
  /** The group as this node sees it, or null while the watchdog has nothing to watch (not running, joining, stopped). */
  readonly watched: () => {
    readonly leaderId: NodeId | null;
    readonly voters: readonly NodeId[];
    readonly commitIndex: number;
    readonly lastIndex: number;
  } | null;
  /** The group is dead: this node drops its state and joins the group founded anew. */
  readonly onDead: (why: { voters: readonly NodeId[]; gone: readonly NodeId[] }) => Promise<void>;
  readonly log: { warn(obj: object, msg: string): void };
}

/**
 * Watches a cache group kept in memory for the state no leader can come out of again: this node
 * a voter with no leader for a while (or a leader that commits nothing while entries wait), and most of the voters no longer in the group with it —
 * they answer that they are not members (they restarted and lost their in-memory state, and wait
 * to join) or that they follow a leader of a group that does not list this node (one founded anew
 * without it; voterLeftCacheGroup). The voters still with it cannot make a majority: no election
 * can ever succeed, the nodes that restarted can never be taken in, and (since this node answers
 * that it holds the group) node 1 never founds it anew. Found from outside: two of three
 * in-memory nodes restarted at once left both unable to start for good, with SQL on disk
 * healthy. This node then drops its state and joins the group founded anew (`onDead`), as a
 * restart of its process would (always safe: a node that forgot its state never votes until a
 * leader takes it in again); the data only it held is lost, as with the others. Two checks in a
 * row, an election timeout apart at least, so a node that was only paused hears from its leader
 * first. Only the answers decide: the first check after 2 election timeouts without a leader, the
 * second an election timeout later (it waited 5, then 2 between checks: 15-20 s from a majority's
 * loss to writes again with the default timings, measured from outside; 6-10 s now: npm run bench:refound).
 */
export class CacheWatchdog {
  private timer: TimerHandle | null = null;
  private stopped = false;
  private leaderlessSince: number | null = null;
  private confirmed = 0;
  private loggedAtMs = Number.NEGATIVE_INFINITY;
  /** This node's commit index at the last check while it led. */
  private commitSeen = -1;
  private readonly everyMs: number;
  private readonly leaderlessMs: number;

  constructor(private readonly o: CacheWatchdogOptions) {
    this.everyMs = Math.max(500, o.electionTimeoutMs);
    this.leaderlessMs = 2 * o.electionTimeoutMs;
  }

  start(): void {
    if (this.timer !== null || this.stopped) return;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.o.clock.clearTimer(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    this.timer = this.o.clock.setTimer(
      () => {
        this.timer = null;
        void this.tick()
          .catch((e: unknown) => this.o.log.warn({ err: String(e) }, 'cache group watchdog failed'))
          .finally(() => {
            if (!this.stopped) this.schedule();
          });
      },
      this.everyMs,
      { keepAlive: false },
    );
  }

  /** One check (every `everyMs`). */
  async tick(): Promise<void> {
    const s = this.o.watched();
    const now = this.o.clock.monotonicMs();
    const me = this.o.asking.nodeId;
    // A leader that commits nothing while entries wait is watched as a voter without a leader:
    // the other voter of a two-voter group (a third node not yet promoted) that lost its state
    // answers its appends (a rejection), so it stays leader of a group that can commit nothing
    // again (found by the cache simulator, --cache-loss seed 26).
    const stuckLeader =
      s !== null && s.leaderId === me && s.commitIndex < s.lastIndex && s.commitIndex === this.commitSeen;
    this.commitSeen = s !== null && s.leaderId === me ? s.commitIndex : -1;
    if (s === null || (s.leaderId !== null && !stuckLeader) || !s.voters.includes(me)) {
      this.leaderlessSince = null;
      this.confirmed = 0;
      return;
    }
    this.leaderlessSince ??= now;
    if (now - this.leaderlessSince < this.leaderlessMs) return;
    const { gone, silent, dead } = await votersGoneFromCacheGroup(this.o.asking, s.voters);
    if (this.stopped) return;
    if (!dead) {
      this.confirmed = 0;
      // Why it waits, for whoever reads the log (at most every 30 s).
      if (now - this.loggedAtMs >= 30_000) {
        this.loggedAtMs = now;
        this.o.log.warn(
          { voters: s.voters, gone, silent, leaderlessMs: Math.round(now - this.leaderlessSince) },
          'the cache group has no leader: a majority of its voters must answer (the silent ones may still hold it); it waits for them',
        );
      }
      return;
    }
    if (++this.confirmed < 2) return;
    this.confirmed = 0;
    this.leaderlessSince = null;
    await this.o.onDead({ voters: s.voters, gone });
  }
}
