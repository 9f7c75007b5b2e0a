/**
 * When a retry is still worth sending. A request retried until its deadline sends its last
 * attempt with whatever time is left; when that attempt's answer cannot arrive in time, a write
 * that every earlier attempt saw refused (certainly not applied) ends as HQL_OUTCOME_UNKNOWN. So
 * while no attempt may have reached the log, a retry is sent only while the time left covers the
 * slowest answer seen in this call a few times over, and never with less than
 * `RETRY_ANSWER_MS_MIN`; otherwise the call ends with the last answer it got.
 *
 * Once an attempt may have reached the log, the call can only end as HQL_OUTCOME_UNKNOWN or with
 * a final answer: a retry under the write's session can only turn the first into the second, so
 * it is sent however slow the answers were, down to the same floor. (A slow answer, such as a node that waited out an election,
 * says nothing about the next one; ending early there turned writes the new leader would have
 * answered into unknown outcomes.) Used by the remote client (cluster-link.ts) and by a node's
 * write loop (propose-retry.ts: SQL and cache writes forwarded to the leader).
 */

/** The least time left for which a retry is still sent. */
export const RETRY_ANSWER_MS_MIN = 100;

/**
 * True while a retry sent now, `remainingMs` before the deadline, is worth sending: never with
 * less than RETRY_ANSWER_MS_MIN left (the loops' pauses shrink with the time left: without a
 * floor they would spin through the last fraction of a millisecond); above it, always once an
 * attempt may be in the log (`maybeApplied`), else while the slowest answer can still come in time.
 */
export function retryHasTime(remainingMs: number, slowestAnswerMs: number, maybeApplied: boolean): boolean {
  if (remainingMs < RETRY_ANSWER_MS_MIN) return false;
  return maybeApplied || remainingMs >= 4 * slowestAnswerMs;
}
