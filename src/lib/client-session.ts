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
