/**
 * Typed errors of the transport. Malformed bytes are `ProtocolError` (src/protocol); these are
 * the other ways a connection or a transfer fails.
 */
import { type ErrorCode, HiqliteError } from '../lib/errors.js';

// These codes are not (yet) members of lib/errors.ts's ErrorCode union; the casts keep them
// readable by everyone who switches on HiqliteError.code until they are added there.
export type TransportErrorCode = 'HQL_UNAUTHORIZED' | 'HQL_UNREACHABLE' | 'HQL_SNAPSHOT_FAILED';

/**
 * The handshake failed: wrong secret, unknown or unexpected node id, timeout, or a peer that
 * does not speak the protocol. `reason` is for this node's log only; the other side learns
 * nothing beyond the closed connection.
 */
export class HandshakeError extends HiqliteError {
  override readonly name = 'HandshakeError';
  readonly reason: string;

  constructor(reason: string, cause?: unknown) {
    super('HQL_UNAUTHORIZED' as TransportErrorCode as unknown as ErrorCode, `handshake failed: ${reason}`, {
      retryable: false,
      cause,
    });
    this.reason = reason;
  }
}

/** The peer is not connected (connection down, reconnecting, or never configured). */
export class PeerUnreachableError extends HiqliteError {
  override readonly name = 'PeerUnreachableError';
  readonly peerId: number;

  constructor(peerId: number, detail: string) {
    super(
      'HQL_UNREACHABLE' as TransportErrorCode as unknown as ErrorCode,
      `peer ${peerId} unreachable: ${detail}`,
      {
        retryable: true,
      },
    );
    this.peerId = peerId;
  }
}

/**
 * A snapshot stream did not complete: the sender's source failed, the receiver's handler failed
 * or returned early, or the connection broke. Both sides see one (DESIGN.md: a broken stream is
 * reported to both sides); retrying sends the snapshot again from the start.
 */
export class SnapshotTransferError extends HiqliteError {
  override readonly name: string = 'SnapshotTransferError';

  constructor(message: string, cause?: unknown) {
    super(
      'HQL_SNAPSHOT_FAILED' as TransportErrorCode as unknown as ErrorCode,
      `snapshot transfer failed: ${message}`,
      {
        retryable: true,
        cause,
      },
    );
  }
}

/**
 * The bytes of a snapshot stream do not match the SHA-256 its sender sent with them: damaged in
 * transit, read from a damaged file, or a broken peer. The receiver refuses the stream (nothing
 * is stored) and the sender learns it in the acknowledgement; the leader retries later.
 */
export class SnapshotChecksumError extends SnapshotTransferError {
  override readonly name = 'SnapshotChecksumError';

  constructor(expectedHex: string, actualHex: string) {
    super(`the bytes received have SHA-256 ${actualHex}, the sender's checksum is ${expectedHex}`);
  }
}

export function closedError(what: string): HiqliteError {
  return new HiqliteError('HQL_CLOSED', `${what}: the transport is closed`, { retryable: false });
}

export function invalidConfig(message: string): HiqliteError {
  return new HiqliteError('HQL_INVALID_CONFIG', `transport config: ${message}`, { retryable: false });
}
