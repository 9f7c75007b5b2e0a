/**
 * When a retry is still worth sending. A request retried until its deadline sends its last
 * attempt with whatever time is left; when that attempt's answer cannot arrive in time, a write
 * that every earlier attempt saw refused (certainly not applied) ends as HQL_OUTCOME_UNKNOWN. So
 * a retry is sent only while the time left covers the slowest answer seen in this call a few
 * times over, and never with less than `RETRY_ANSWER_MS_MIN`; otherwise the call ends with the
 * last answer it got. Used by the remote client (cluster-link.ts) and by a node forwarding
 * writes to its leader (hiqlite-node.ts, cache-group.ts).
 */

/** The least time left for which a retry is still sent. */
export const RETRY_ANSWER_MS_MIN = 100;

/** True while a retry sent now, `remainingMs` before the deadline, can still get its answer. */
export function retryHasTime(remainingMs: number, slowestAnswerMs: number): boolean {
  return remainingMs >= Math.max(RETRY_ANSWER_MS_MIN, 4 * slowestAnswerMs);
}
