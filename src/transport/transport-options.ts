/**
 * Configuration of the Raft transport: addresses, the shared secret, TLS, the callbacks into the
 * runtime, and every limit with its default. Each limit bounds memory or time; `resolveOptions`
 * validates them once, at construction (`HQL_INVALID_CONFIG`).
 */
import { FRAME_PAYLOAD_BYTES_LIMIT } from '../protocol/frame.js';
import { SNAPSHOT_CHUNK_OVERHEAD_BYTES } from '../protocol/peer-frame.js';
import type { RaftGroupId } from '../protocol/raft-group.js';
import type { SnapshotMessage } from '../protocol/raft-message-codec.js';
import type { Message, NodeId } from '../raft/types.js';
import type { BackoffRandom } from './backoff.js';
import type { TransportLogger } from './logger.js';
import { silentLogger } from './logger.js';
import { realTimers, type Timers } from './timers.js';
import { invalidConfig } from './transport-errors.js';

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Certificate files (PEM), or `'self-signed'`: a certificate generated at start with the
 * `openssl` binary, for tests and development. With `caFile` peers' certificates are verified
 * against it; without it, against Node's default roots. In self-signed mode certificates are
 * not verified: the handshake, bound to the TLS session, authenticates the peer.
 */
export type TransportTls =
  | { readonly certFile: string; readonly keyFile: string; readonly caFile?: string }
  | 'self-signed';

export interface TransportLimits {
  /** Largest frame accepted or sent (an AppendEntries must fit: keep above appendBytesMax). */
  readonly frameBytesMax: number;
  /** Control lane queue per peer (votes, heartbeats, responses). */
  readonly controlQueueMessagesMax: number;
  readonly controlQueueBytesMax: number;
  /** Bulk lane queue per peer (appends, snapshot chunks). */
  readonly bulkQueueMessagesMax: number;
  readonly bulkQueueBytesMax: number;
  /** Frames are concatenated into writes of up to this many bytes (one write per event-loop turn). */
  readonly writeBatchBytesMax: number;
  /** Snapshot data is cut into frames of at most this many bytes. */
  readonly snapshotChunkBytesMax: number;
  /** Received snapshot bytes not yet consumed; above it the connection stops reading. */
  readonly snapshotReceiveBufferBytesMax: number;
  /** Concurrent snapshot streams on one connection. */
  readonly snapshotStreamsMax: number;
  /** Open inbound connections, handshaking ones included. */
  readonly inboundConnectionsMax: number;
  /**
   * Inbound connections not yet authenticated (at most `inboundConnectionsMax`): a full gate
   * closes the oldest of them to make room (handshake-gate.ts).
   */
  readonly unauthenticatedConnectionsMax: number;
  /** From connect (inbound: TCP accept) to a completed handshake, on both sides. */
  readonly handshakeTimeoutMs: number;
  readonly reconnectDelayMsMin: number;
  readonly reconnectDelayMsMax: number;
  /** TCP keep-alive probe delay: finds dead peers whose machine vanished without a reset. */
  readonly keepAliveMs: number;
}

export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = {
  frameBytesMax: 16 * 1024 * 1024,
  controlQueueMessagesMax: 4096,
  controlQueueBytesMax: 4 * 1024 * 1024,
  bulkQueueMessagesMax: 4096,
  bulkQueueBytesMax: 64 * 1024 * 1024,
  writeBatchBytesMax: 1024 * 1024,
  snapshotChunkBytesMax: 1024 * 1024,
  snapshotReceiveBufferBytesMax: 8 * 1024 * 1024,
  snapshotStreamsMax: 4,
  inboundConnectionsMax: 256,
  unauthenticatedConnectionsMax: 64,
  handshakeTimeoutMs: 5000,
  reconnectDelayMsMin: 50,
  reconnectDelayMsMax: 5000,
  keepAliveMs: 5000,
};

/** The smallest secret accepted: shorter ones are guessable offline from one captured proof. */
export const SECRET_BYTES_MIN = 16;

export type SnapshotHandler = (
  groupId: RaftGroupId,
  from: NodeId,
  meta: SnapshotMessage,
  chunks: AsyncIterable<Uint8Array>,
) => Promise<void>;

export interface RaftTransportOptions {
  readonly nodeId: NodeId;
  /** Where to listen. There is no default host: binding every interface must be explicit. */
  readonly listen: PeerAddress;
  /** The other nodes (an entry for `nodeId` itself is ignored). */
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  /** The shared cluster secret (`secretRaft`), at least 16 bytes. */
  readonly secret: string | Uint8Array;
  /** This node's cluster id, or null before it has one: peers of another cluster are refused. */
  readonly clusterId?: () => string | null;
  readonly tls?: TransportTls;
  readonly limits?: Partial<TransportLimits>;
  /**
   * A message from an authenticated peer, addressed to this node. Called synchronously from the
   * socket's data event; it must not throw (an exception is a programmer error and propagates).
   */
  readonly onMessage: (groupId: RaftGroupId, message: Message) => void;
  /** Messages to `peerId` are being dropped (queue full, connection down): Raft's reportUnreachable. */
  readonly onUnreachable?: (peerId: NodeId) => void;
  /**
   * An incoming snapshot stream. Resolve once the data is consumed and installed: the sender's
   * `sendSnapshot` resolves then; a rejection is reported to the sender. `chunks` throws a
   * `SnapshotTransferError` if the stream breaks.
   */
  readonly onSnapshot?: SnapshotHandler;
  readonly logger?: TransportLogger;
  /** Jitter of the reconnect delay. */
  readonly random?: BackoffRandom;
  readonly timers?: Timers;
}

export interface ResolvedTransportOptions {
  readonly nodeId: NodeId;
  readonly listen: PeerAddress;
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  readonly secret: Uint8Array;
  readonly clusterId: () => string | null;
  readonly tls: TransportTls | null;
  readonly limits: TransportLimits;
  readonly onMessage: (groupId: RaftGroupId, message: Message) => void;
  readonly onUnreachable: (peerId: NodeId) => void;
  readonly onSnapshot: SnapshotHandler | null;
  readonly logger: TransportLogger;
  readonly random: BackoffRandom;
  readonly timers: Timers;
}

export function resolveOptions(o: RaftTransportOptions): ResolvedTransportOptions {
  if (!isU32(o.nodeId)) throw invalidConfig(`nodeId ${o.nodeId} is not an integer in [0, 2^32)`);
  checkAddress(o.listen, 'listen');
  const peers = new Map<NodeId, PeerAddress>();
  for (const [id, address] of o.peers) {
    if (!isU32(id)) throw invalidConfig(`peer id ${id} is not an integer in [0, 2^32)`);
    checkAddress(address, `peer ${id}`);
    if (id !== o.nodeId) peers.set(id, address);
  }
  const secret = typeof o.secret === 'string' ? new TextEncoder().encode(o.secret) : new Uint8Array(o.secret);
  if (secret.byteLength < SECRET_BYTES_MIN)
    throw invalidConfig(`secret must have at least ${SECRET_BYTES_MIN} bytes`);
  const limits: TransportLimits = { ...DEFAULT_TRANSPORT_LIMITS, ...o.limits };
  checkLimits(limits);
  if (o.tls !== undefined && o.tls !== 'self-signed' && (!o.tls.certFile || !o.tls.keyFile)) {
    throw invalidConfig('tls needs certFile and keyFile, or the value "self-signed"');
  }
  return {
    nodeId: o.nodeId,
    listen: o.listen,
    peers,
    secret,
    clusterId: o.clusterId ?? (() => null),
    tls: o.tls ?? null,
    limits,
    onMessage: o.onMessage,
    onUnreachable: o.onUnreachable ?? (() => {}),
    onSnapshot: o.onSnapshot ?? null,
    logger: o.logger ?? silentLogger,
    random: o.random ?? { next: Math.random },
    timers: o.timers ?? realTimers,
  };
}

export function checkAddress(a: PeerAddress, what: string): void {
  if (typeof a.host !== 'string' || a.host.length === 0) throw invalidConfig(`${what}: host is required`);
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535)
    throw invalidConfig(`${what}: port ${a.port}`);
}

function checkLimits(l: TransportLimits): void {
  for (const [name, value] of Object.entries(l)) {
    if (!Number.isSafeInteger(value) || value < 1) throw invalidConfig(`${name} must be an integer >= 1`);
  }
  if (l.frameBytesMax > FRAME_PAYLOAD_BYTES_LIMIT) throw invalidConfig('frameBytesMax must fit in 32 bits');
  if (l.snapshotChunkBytesMax + SNAPSHOT_CHUNK_OVERHEAD_BYTES > l.frameBytesMax) {
    throw invalidConfig('snapshotChunkBytesMax must leave room for the chunk header within frameBytesMax');
  }
  if (l.unauthenticatedConnectionsMax > l.inboundConnectionsMax)
    throw invalidConfig('unauthenticatedConnectionsMax > inboundConnectionsMax');
  if (l.reconnectDelayMsMin > l.reconnectDelayMsMax)
    throw invalidConfig('reconnectDelayMsMin > reconnectDelayMsMax');
  // A snapshot sender waits for the queue to be half empty, so one chunk must fit in half of it.
  if ((l.snapshotChunkBytesMax + 64) * 2 > l.bulkQueueBytesMax) {
    throw invalidConfig('bulkQueueBytesMax must hold at least two snapshot chunks');
  }
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n < 2 ** 32;
}
