/**
 * The one error type for untrusted bytes that do not follow the wire protocol. Decoders throw
 * nothing else (a property test feeds them random bytes); the transport answers it by closing
 * the offending connection with `kind` in its log line, and keeps serving everyone else.
 */
import { type ErrorCode, HiqliteError } from '../lib/errors.js';

export type ProtocolErrorKind =
  /** A frame header announced more bytes than `frameBytesMax`. */
  | 'frame-too-large'
  /** The stream ended in the middle of a frame. */
  | 'truncated-frame'
  /** A frame's bytes do not decode: short, out-of-range field, trailing bytes, bad invariant. */
  | 'malformed'
  /** An unknown frame kind, message type or group id (a newer or foreign peer). */
  | 'unknown-type'
  /** A well-formed frame that is not allowed here (wrong lane, before or after the handshake). */
  | 'unexpected-frame'
  /** A message whose `from` is not the authenticated peer. */
  | 'spoofed-sender'
  /** A message whose `to` is not this node. */
  | 'wrong-recipient';

export class ProtocolError extends HiqliteError {
  override readonly name = 'ProtocolError';
  readonly kind: ProtocolErrorKind;

  constructor(kind: ProtocolErrorKind, message: string, cause?: unknown) {
    // 'HQL_PROTOCOL' is not (yet) a member of lib/errors.ts's ErrorCode union; the cast keeps it
    // readable by everyone who switches on HiqliteError.code until it is added there.
    super('HQL_PROTOCOL' as unknown as ErrorCode, `protocol violation (${kind}): ${message}`, {
      retryable: false,
      cause,
    });
    this.kind = kind;
  }
}
