/**
 * The namespace of remote clients' session ids, shared by both Raft groups. A client is trusted
 * with data, not with the cluster: the node that takes a client's command refuses a session id
 * outside this namespace, so no client can claim (and so poison or replay) the session of a node
 * (`n<id>-…`) or of an embedded application.
 */

/** Every session id of a remote client starts with this. */
export const CLIENT_SESSION_PREFIX = 'c-';

/** Why `clientId` may not be a remote client's session id, or null when it may. */
export function clientSessionIdProblem(clientId: string): string | null {
  if (clientId.startsWith(CLIENT_SESSION_PREFIX)) return null;
  return `a client's session id must start with "${CLIENT_SESSION_PREFIX}" (got "${clientId.slice(0, 40)}")`;
}

/**
 * A session's protection: how long after its last command the state machine never forgets it to
 * make room for another, because its client may still retry that command (a retry that found it
 * gone would be applied a second time). The node that takes a write stamps it into the write's
 * session (`protectMs`), from how long the write may still be retried: its deadline, plus
 * `SESSION_PROTECT_MARGIN_MS`, at most the node's `session_protect_ms`. A new session that finds
 * the table full of protected ones is refused (HQL_SESSIONS_FULL) instead. A session without the
 * stamp (entries written before it existed) has none, and a command without it evicts the least
 * recently seen, as it did.
 */
export const SESSION_PROTECT_MS_MIN = 1000;
export const SESSION_PROTECT_MS_MAX = 3_600_000;
/**
 * Added to a write's deadline: log time (the nodes' median clock) may run ahead of the client's
 * time after a leader change, and the retry that comes last is sent just before the deadline.
 */
export const SESSION_PROTECT_MARGIN_MS = 30_000;
/**
 * The smallest `session_protect_ms`: a remote client's default deadline (10 s) plus the margin,
 * with room. Below it the default client's retries outlived their sessions: found from outside
 * with 1,000 ms, 35 writes of 60,861 applied twice after leader kills.
 */
export const SESSION_PROTECT_CONFIG_MIN_MS = 60_000;

/** The protection a node stamps into a write that may be retried for `retryMs` (see above). */
export function sessionProtectMs(retryMs: number, capMs: number): number {
  const wanted = Number.isFinite(retryMs) ? Math.ceil(retryMs) + SESSION_PROTECT_MARGIN_MS : capMs;
  return Math.max(SESSION_PROTECT_MS_MIN, Math.min(capMs, wanted));
}

/** A session's fields in their canonical order (the encoded bytes depend on it), protection only when set. */
export function clientSession(
  clientId: string,
  seq: number,
  protectMs: number | undefined,
): { readonly clientId: string; readonly seq: number; readonly protectMs?: number } {
  return protectMs === undefined ? { clientId, seq } : { clientId, seq, protectMs };
}
