/**
 * A node's write to its Raft group, carried to a final answer within its deadline: proposed here
 * when this node leads, forwarded to the leader when it knows one, retried across leader changes
 * otherwise. One loop for both groups (the SQL writes of HiqliteNode, the cache group's).
 *
 * The bytes carry a session (client id and sequence number), so every retry is safe, even after
 * an attempt whose outcome was unknown: the state machine answers a duplicate with the original
 * result. What the loop tracks is whether an attempt may have reached the log (`maybeProposed`):
 * - an attempt sent to the leader that got no answer (the connection failed, or the answer came
 *   too late), or any attempt answered HQL_OUTCOME_UNKNOWN, may have;
 * - an attempt the leader (or the local group) answered with any other error was refused.
 * A non-retryable refusal ends the loop: with the error itself when no attempt may have reached
 * the log, as HQL_OUTCOME_UNKNOWN otherwise (a refusal by a group that stopped is no outcome of an
 * earlier attempt). At the deadline the same: the last error, or HQL_OUTCOME_UNKNOWN.
 *
 * Retries back off from 20 ms doubling to one heartbeat. While no attempt may be in the log, they
 * are sent only while the answer of the slowest forwarded attempt so far can still come in time;
 * after one may be, until the deadline (lib/retry-budget.ts).
 */
import type { Clock } from '../lib/clock.js';
import { HiqliteError, outcomeUnknown } from '../lib/errors.js';
import { retryHasTime } from '../lib/retry-budget.js';
import type { NodeId } from '../raft/types.js';

/** What a forwarded attempt came back with: the leader's answer, or its refusal. */
export type Forwarded<R> =
  | { readonly ok: true; readonly value: R }
  | { readonly ok: false; readonly error: HiqliteError };

/**
 * `D`: what one write carries to its attempts (its bytes): passed to `here` and `forward`, so
 * one ProposeRetry serves every write of a group instead of a set of closures per write.
 */
export interface ProposeRetry<R, D = undefined> {
  /** Time: the deadline and the pauses between attempts. */
  readonly clock: Clock;
  /** The longest pause between attempts. */
  readonly heartbeatIntervalMs: number;
  /**
   * The group as this node sees it now: whether it leads, and the leader it knows (read once
   * per attempt: no copy of the group's status, which a leader's holds its followers' progress).
   */
  isLeader(): boolean;
  leaderId(): NodeId | null;
  /** This node leads: propose here. `attempt` counts from 0. */
  here(attempt: number, remainingMs: number, data: D): Promise<R>;
  /**
   * Sends the bytes to the leader: resolves with its answer or refusal; rejects when no answer
   * came (the attempt may be in the log).
   */
  forward(leaderId: NodeId, remainingMs: number, data: D): Promise<Forwarded<R>>;
  /** No leader is known here (retryable). */
  noLeaderError(): HiqliteError;
  /** The node is closing: a retryable refusal ends the loop too. */
  stopping(): boolean;
}

export function proposeWithRetries<R, D = undefined>(
  p: ProposeRetry<R, D>,
  timeoutMs: number,
  data: D = undefined as D,
): Promise<R> {
  const deadline = p.clock.monotonicMs() + timeoutMs;
  // The common case, this node leads and its proposal is answered, without the loop's frame (an
  // async function's state per write: about 1.2 KB on the node's thread, measured with the
  // sampling heap profiler); a first attempt that fails goes on in the loop.
  if (p.isLeader()) {
    let first: Promise<R>;
    try {
      first = p.here(0, Math.max(1, timeoutMs), data);
    } catch (e) {
      first = Promise.reject(e);
    }
    return first.catch((e: unknown) => retryLoop(p, timeoutMs, data, deadline, afterFailure(p, e, false)));
  }
  return retryLoop(p, timeoutMs, data, deadline, { attempt: 0, lastError: null, maybeProposed: false });
}

/** Where the loop stands: the next attempt's number, the last refusal, whether one may be in the log. */
interface LoopState {
  readonly attempt: number;
  readonly lastError: HiqliteError | null;
  readonly maybeProposed: boolean;
}

/** The loop's state after a failed first attempt here; throws when it ends the write. */
function afterFailure<R, D>(p: ProposeRetry<R, D>, e: unknown, maybeProposed: boolean): LoopState {
  if (!(e instanceof HiqliteError)) throw e;
  if (e.code === 'HQL_OUTCOME_UNKNOWN') maybeProposed = true;
  else if (!e.retryable || p.stopping()) throw maybeProposed ? outcomeUnknown(e.message, e) : e;
  return { attempt: 1, lastError: e, maybeProposed };
}

async function retryLoop<R, D>(
  p: ProposeRetry<R, D>,
  timeoutMs: number,
  data: D,
  deadline: number,
  from: LoopState,
): Promise<R> {
  const { clock } = p;
  let { lastError, maybeProposed } = from;
  // The slowest answer of the leader to a forwarded attempt (lib/retry-budget.ts).
  let slowestMs = 0;
  if (from.attempt > 0) await pause(p, from.attempt - 1, deadline);
  for (let attempt = from.attempt; clock.monotonicMs() < deadline; attempt++) {
    if (
      attempt > 0 &&
      lastError !== null &&
      !retryHasTime(deadline - clock.monotonicMs(), slowestMs, maybeProposed)
    )
      break;
    const remaining = Math.max(1, deadline - clock.monotonicMs());
    try {
      if (p.isLeader()) return await p.here(attempt, remaining, data);
      const leaderId = p.leaderId();
      if (leaderId === null) {
        lastError = p.noLeaderError();
      } else {
        const sentAt = clock.monotonicMs();
        let answer: Forwarded<R>;
        try {
          answer = await p.forward(leaderId, remaining, data);
        } catch (e) {
          maybeProposed = true; // sent, and no answer
          throw e;
        } finally {
          slowestMs = Math.max(slowestMs, clock.monotonicMs() - sentAt);
        }
        if (answer.ok) return answer.value;
        throw answer.error;
      }
    } catch (e) {
      if (!(e instanceof HiqliteError)) throw e;
      if (e.code === 'HQL_OUTCOME_UNKNOWN') maybeProposed = true;
      else if (!e.retryable || p.stopping()) throw maybeProposed ? outcomeUnknown(e.message, e) : e;
      lastError = e;
    }
    await pause(p, attempt, deadline);
  }
  if (!maybeProposed) throw lastError ?? p.noLeaderError();
  throw outcomeUnknown(
    `no final answer within ${Math.round(timeoutMs)} ms (last: ${lastError?.message ?? 'none'})`,
    lastError,
  );
}

/** The pause after attempt `attempt`: from 20 ms doubling to one heartbeat, within the deadline. */
function pause<R, D>(p: ProposeRetry<R, D>, attempt: number, deadline: number): Promise<void> {
  const pauseMs = Math.min(p.heartbeatIntervalMs, 20 * 2 ** Math.min(attempt, 5));
  const waitMs = Math.max(0, Math.min(pauseMs, deadline - p.clock.monotonicMs()));
  return new Promise<void>((resolve) => p.clock.setTimer(resolve, waitMs));
}
