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
 * The bounds of a session's protection window (`session_protect_ms`), which the node that
 * proposes a write stamps into its session: for that long after a session was last seen, the
 * state machine never forgets it to make room for another (a retry within the window finds it),
 * and a new session that finds the table full of protected ones is refused (HQL_SESSIONS_FULL)
 * instead. A session without the stamp (entries written before it existed) is forgotten for room
 * as it was: least recently seen first.
 */
export const SESSION_PROTECT_MS_MIN = 1000;
export const SESSION_PROTECT_MS_MAX = 3_600_000;

/** `session` with the node's protection window in place of whatever its client sent. */
export function protectedSession<
  S extends { readonly clientId: string; readonly seq: number; readonly protectMs?: number },
>(session: S, protectMs: number | undefined): S {
  const { protectMs: _client, ...rest } = session;
  return (protectMs === undefined ? rest : { ...rest, protectMs }) as S;
}
