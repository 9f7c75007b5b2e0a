/**
 * A command prepared by a remote client, taken over by the node that proposes it.
 *
 * A client is trusted with data, not with the cluster (DESIGN.md, "Time, limits and trust"), so
 * the node does not take the client's envelope as it is:
 *   - limits: the node stamps its own `sql_value_bytes_max` (a client's stamp is replaced, or
 *     removed when the node gives none), as it bounds a recursion with its own setting;
 *   - time: the client's `nowMs` is replaced by the node's clock. One client with a clock two
 *     hours ahead would otherwise store `datetime('now')` two hours ahead and, through the
 *     sessions' monotonic clock, expire every other client's session early (and a write retried
 *     after its session expired is applied twice);
 *   - sessions: a remote client's session ids live in their own namespace (`CLIENT_SESSION_PREFIX`),
 *     so no client can claim the session of a node or of an embedded application;
 *   - validity: the command is decoded and statically checked here, as `prepareForProposal` does
 *     for local writes, so a client that skips its own checks cannot spend a log entry on a
 *     command every replica would refuse.
 * The seed stays the client's: it only chooses which values `random()` returns.
 */
import { clientSession, clientSessionIdProblem } from '../../lib/client-session.js';
import { type CommandEnvelope, decodeCommand, encodeCommand } from './command.js';
import { staticCheck } from './determinism.js';
import { SqlError, sqlError } from './errors.js';

export { CLIENT_SESSION_PREFIX } from '../../lib/client-session.js';

/**
 * Decodes a client's command bytes, checks them and encodes them again with the node's time.
 * Throws `SqlError` (HQL_MALFORMED_COMMAND, HQL_STATEMENT_NOT_ALLOWED, …) on what cannot be
 * proposed.
 */
export function adoptClientCommand(
  bytes: Uint8Array,
  ctx: {
    readonly nowMs: number;
    readonly recursionRowsMax?: number;
    readonly valueBytesMax?: number;
    readonly sessionProtectMs?: number;
  },
): { readonly data: Uint8Array; readonly command: CommandEnvelope['command'] } {
  const envelope: CommandEnvelope = decodeCommand(bytes);
  const problem = envelope.session === undefined ? null : clientSessionIdProblem(envelope.session.clientId);
  if (problem !== null) throw sqlError('HQL_MALFORMED_COMMAND', problem);
  const error = staticCheck(envelope.command, ctx.recursionRowsMax);
  if (error !== null) throw new SqlError(error);
  // The node's bounds, not the client's: the client is trusted with data only.
  const { valueBytesMax: _client, session, ...rest } = envelope;
  const adopted: CommandEnvelope = {
    ...rest,
    ...(session === undefined
      ? {}
      : { session: clientSession(session.clientId, session.seq, ctx.sessionProtectMs) }),
    nowMs: Math.floor(ctx.nowMs),
    ...(ctx.valueBytesMax === undefined ? {} : { valueBytesMax: ctx.valueBytesMax }),
  };
  return { data: encodeCommand(adopted), command: envelope.command };
}
