/**
 * A cache command prepared by a remote client, taken over by the node that proposes it: as for
 * the SQL group (src/sm/sql/client-proposal.ts), the bytes are decoded as untrusted input, a
 * session outside the clients' namespace is refused, and the envelope is encoded again (the
 * leader stamps its own time when it proposes).
 */
import { clientSessionIdProblem } from '../../lib/client-session.js';
import { type CacheCommandEnvelope, decodeCacheCommand, encodeCacheCommand } from './command.js';
import { CacheError } from './errors.js';

/** Throws `CacheError` (HQL_MALFORMED_COMMAND) on bytes a client may not propose. */
export function adoptClientCacheCommand(
  bytes: Uint8Array,
  ctx: { readonly nowMs: number },
): { readonly data: Uint8Array; readonly envelope: CacheCommandEnvelope } {
  const envelope = decodeCacheCommand(bytes);
  if (envelope.session !== undefined) {
    const problem = clientSessionIdProblem(envelope.session.clientId);
    if (problem !== null) throw new CacheError({ code: 'HQL_MALFORMED_COMMAND', message: problem });
  }
  const adopted = { ...envelope, nowMs: Math.floor(ctx.nowMs) };
  return { data: encodeCacheCommand(adopted), envelope: adopted };
}
