/**
 * A cache command prepared by a remote client, taken over by the node that proposes it: as for
 * the SQL group (src/sm/sql/client-proposal.ts), the bytes are decoded as untrusted input, a
 * session outside the clients' namespace is refused, and the envelope is encoded again (the
 * leader stamps its own time when it proposes).
 */
import { clientSession, clientSessionIdProblem } from '../../lib/client-session.js';
import { HiqliteError } from '../../lib/errors.js';
import { type CacheCommandEnvelope, decodeCacheCommand, encodeCacheCommand } from './command.js';
import { CacheError } from './errors.js';
import { cacheValueBytesProblem } from './value.js';

/**
 * Throws on bytes a client may not propose: `CacheError` HQL_MALFORMED_COMMAND, or
 * `HiqliteError` HQL_INVALID_PARAMS for a value or payload a reader could not read back (value.ts).
 */
export function adoptClientCacheCommand(
  bytes: Uint8Array,
  ctx: { readonly nowMs: number; readonly sessionProtectMs?: number },
): { readonly data: Uint8Array; readonly envelope: CacheCommandEnvelope } {
  const envelope = decodeCacheCommand(bytes);
  if (envelope.session !== undefined) {
    const problem = clientSessionIdProblem(envelope.session.clientId);
    if (problem !== null) throw new CacheError({ code: 'HQL_MALFORMED_COMMAND', message: problem });
  }
  // A client's lock wait is its node's (the lock API, `cacheLock`): the node renews its wait
  // lease and withdraws it when the client leaves. Queued by raw bytes, a waiter nobody tracks
  // would be granted the lock in its turn and hold it for its lease (found from outside).
  const c = envelope.command;
  if (c.type === 'lockWaitRenew' || (c.type === 'lockAcquire' && c.waitMs !== 0)) {
    throw new HiqliteError(
      'HQL_INVALID_PARAMS',
      `${c.type} is not a client's command: wait for a lock with lock() (a client may send a try-lock, waitMs 0)`,
      { retryable: false },
    );
  }
  // A value no reader could decode (or not in the shape a client stores) would fail every read
  // of it, every entries() of its cache and every listener of its channel: refused here.
  const value =
    c.type === 'put' || c.type === 'replace' || c.type === 'putIfAbsent'
      ? c.value
      : c.type === 'notify'
        ? c.payload
        : null;
  const valueProblem = value === null ? null : cacheValueBytesProblem(value);
  if (valueProblem !== null) throw new HiqliteError('HQL_INVALID_PARAMS', valueProblem, { retryable: false });
  // The node's protection window, not the client's: the client is trusted with data only.
  const { session } = envelope;
  const adopted: CacheCommandEnvelope = {
    ...envelope,
    nowMs: Math.floor(ctx.nowMs),
    ...(session === undefined
      ? {}
      : { session: clientSession(session.clientId, session.seq, ctx.sessionProtectMs) }),
  };
  return { data: encodeCacheCommand(adopted), envelope: adopted };
}
