/**
 * The Cluster page's data: every member of the configuration with its own view of itself. This
 * node answers from memory; every other node is asked over its API port, all at once, each with a
 * deadline (`peerTimeoutMs`), so a stopped or paused node shows as down within that time.
 *
 * Rounds are shared: while one is in flight, and for `reuseMs` after it ended, callers get its
 * answer, so many open pages cost the cluster one round per `reuseMs`.
 */
import type { Clock } from '../lib/clock.js';
import type { ClusterStatus, MemberStatus } from './api-types.js';
import type { DashboardBackend, NodeView } from './backend.js';

export interface ClusterStatusOptions {
  readonly peerTimeoutMs: number;
  readonly reuseMs: number;
}

export const CLUSTER_STATUS_DEFAULT: ClusterStatusOptions = { peerTimeoutMs: 1500, reuseMs: 500 };

export class ClusterStatusSource {
  private round: Promise<ClusterStatus> | null = null;
  private roundEndedMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly backend: DashboardBackend,
    private readonly clock: Clock,
    private readonly o: ClusterStatusOptions = CLUSTER_STATUS_DEFAULT,
  ) {}

  get(): Promise<ClusterStatus> {
    if (this.round !== null && this.clock.monotonicMs() - this.roundEndedMs < this.o.reuseMs)
      return this.round;
    if (this.round !== null && this.roundEndedMs === Number.POSITIVE_INFINITY) return this.round;
    this.roundEndedMs = Number.POSITIVE_INFINITY; // in flight
    const round = this.ask().finally(() => {
      if (this.round === round) this.roundEndedMs = this.clock.monotonicMs();
    });
    this.round = round;
    return round;
  }

  private async ask(): Promise<ClusterStatus> {
    const b = this.backend;
    const answers = await Promise.all(
      b.members.map(
        async (
          m,
        ): Promise<{ id: number; view: NodeView | null; error: string | null; healthy?: boolean }> => {
          if (m.id === b.nodeId) {
            const l = b.local();
            return { id: m.id, view: l.view, error: l.error, healthy: l.healthy };
          }
          try {
            return {
              id: m.id,
              view: await this.withDeadline(b.peer(m.id, this.o.peerTimeoutMs)),
              error: null,
            };
          } catch (e) {
            return { id: m.id, view: null, error: e instanceof Error ? e.message : String(e) };
          }
        },
      ),
    );
    const commitMax = Math.max(0, ...answers.map((a) => a.view?.commitIndex ?? 0));
    const members: MemberStatus[] = b.members.map((m, i): MemberStatus => {
      const a = answers[i] ?? { id: m.id, view: null, error: 'no answer' };
      const v = a.view;
      const member = v !== null && (v.voters.includes(m.id) || v.learners.includes(m.id));
      return {
        id: m.id,
        addrApi: m.addrApi,
        listed: true,
        self: m.id === b.nodeId,
        up: v !== null,
        error: a.error,
        role: v?.role ?? null,
        voter: v === null ? null : v.voters.includes(m.id),
        term: v?.term ?? null,
        leaderId: v?.leaderId ?? null,
        commitIndex: v?.commitIndex ?? null,
        appliedIndex: v?.appliedIndex ?? null,
        lastLogIndex: v?.lastLogIndex ?? null,
        lag: v === null ? null : Math.max(0, commitMax - v.appliedIndex),
        clockOffsetMs: typeof v?.clockOffsetMs === 'number' ? v.clockOffsetMs : null,
        healthy: a.healthy ?? (member && v?.leaderId !== null),
      };
    });
    members.push(...unlistedMembers(b.members, answers));
    const leaderId = mostNamedLeader(members);
    const leader = members.find((m) => m.id === leaderId);
    return {
      nodeId: b.nodeId,
      leaderId,
      term: leader?.term ?? Math.max(0, ...members.map((m) => m.term ?? 0)),
      members,
      atWallMs: this.clock.wallMs(),
    };
  }

  /** `p`, or a rejection once `peerTimeoutMs` passed (the connection may take longer to fail). */
  private withDeadline<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = this.clock.setTimer(
        () => reject(new Error(`no answer within ${this.o.peerTimeoutMs} ms`)),
        this.o.peerTimeoutMs,
        { keepAlive: false },
      );
      p.then(
        (v) => {
          this.clock.clearTimer(timer);
          resolve(v);
        },
        (e: unknown) => {
          this.clock.clearTimer(timer);
          reject(e);
        },
      );
    });
  }
}

/**
 * Members that the answering nodes' membership holds and this node's `nodes` list does not name:
 * their votes count toward a majority all the same. The page showed only the listed ones (found
 * by an outside probe: "2 of 3 members up" and no leader, while a fourth voter, taken out of the
 * lists but never removed, was what kept the two from electing one).
 */
function unlistedMembers(
  listed: readonly { readonly id: number }[],
  answers: readonly { readonly view: NodeView | null }[],
): MemberStatus[] {
  const known = new Set(listed.map((m) => m.id));
  const voters = new Set<number>();
  const learners = new Set<number>();
  for (const a of answers) {
    for (const id of a.view?.voters ?? []) if (!known.has(id)) voters.add(id);
    for (const id of a.view?.learners ?? []) if (!known.has(id)) learners.add(id);
  }
  return [...new Set([...voters, ...learners])]
    .sort((x, y) => x - y)
    .map((id) => ({
      id,
      addrApi: '',
      listed: false,
      self: false,
      up: false,
      error: `a ${voters.has(id) ? 'voter' : 'learner'} of the cluster that this node's nodes list does not name${voters.has(id) ? ': its vote still counts toward a majority' : ''}; if it is gone for good, remove it (hiqlite remove-node ${id})`,
      role: null,
      voter: voters.has(id),
      term: null,
      leaderId: null,
      commitIndex: null,
      appliedIndex: null,
      lastLogIndex: null,
      lag: null,
      clockOffsetMs: null,
      healthy: false,
    }));
}

/** The leader named by most members that are up (ties: the lowest id); null when none names one. */
function mostNamedLeader(members: readonly MemberStatus[]): number | null {
  const votes = new Map<number, number>();
  for (const m of members) if (m.leaderId !== null) votes.set(m.leaderId, (votes.get(m.leaderId) ?? 0) + 1);
  let best: number | null = null;
  let bestVotes = 0;
  for (const [id, n] of [...votes].sort((a, b) => a[0] - b[0])) {
    if (n > bestVotes) {
      best = id;
      bestVotes = n;
    }
  }
  return best;
}
