/**
 * The node-to-node transport of the Raft port (docs/internals/transport.md). One instance per
 * node serves every Raft group. Per peer it opens two outgoing connections, a control lane and a
 * bulk lane, each authenticated by the shared-secret handshake and optionally TLS; peers do the
 * same towards us, so every connection carries traffic one way (plus snapshot acknowledgements
 * back). `send` never blocks: it queues (bounded) or drops and reports the peer unreachable.
 *
 *   const t = new RaftTransport({ nodeId, listen, peers, secret, onMessage, onUnreachable, onSnapshot });
 *   await t.start();
 *   t.send('sql', message);                       // false: dropped (Raft resends)
 *   await t.sendSnapshot('sql', snapshotMessage, chunksOfTheFile, sha256OfTheFile);
 *   await t.close();
 */

import { createServer as createNetServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { assert } from '../lib/assert.js';
import { HiqliteError } from '../lib/errors.js';
import { LogThrottle, STRANGER_LOG_MS } from '../lib/log-throttle.js';
import {
  decodePeerFrame,
  encodePeerFrame,
  type PeerFrame,
  peerFramePayloadBytes,
} from '../protocol/peer-frame.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import type { RaftGroupId } from '../protocol/raft-group.js';
import type { SnapshotMessage } from '../protocol/raft-message-codec.js';
import { isControlMessage, type Message, type NodeId } from '../raft/types.js';
import type { CloseReason, FramedConnection } from './framed-connection.js';
import { evictionGraceMs, HandshakeGate } from './handshake-gate.js';
import { InboundConnection, type InboundHost } from './inbound-connection.js';
import { type LaneKind, type LaneState, OutboundLane } from './outbound-lane.js';
import { SnapshotSender } from './snapshot-sender.js';
import { loadTlsMaterial, type TlsMaterial } from './tls-material.js';
import { closedError, PeerUnreachableError, SnapshotTransferError } from './transport-errors.js';
import {
  checkAddress,
  type PeerAddress,
  type RaftTransportOptions,
  type ResolvedTransportOptions,
  resolveOptions,
} from './transport-options.js';

export interface PeerStatus {
  readonly peerId: NodeId;
  readonly address: PeerAddress;
  readonly control: LaneState;
  readonly bulk: LaneState;
  readonly controlQueuedFrames: number;
  readonly bulkQueuedFrames: number;
  readonly bulkQueuedBytes: number;
  /** Whether the peer's own connections to us are up (it can reach us). */
  readonly inboundControl: boolean;
  readonly inboundBulk: boolean;
  /** Why the control lane is down (its last failure), null while it is up. */
  readonly controlFailure: string | null;
}

export interface SendSnapshotOptions {
  /** Aborts the transfer (e.g. `AbortSignal.timeout(ms)`): without it, a receiver that never answers waits forever. */
  readonly signal?: AbortSignal;
}

interface Peer {
  readonly id: NodeId;
  address: PeerAddress;
  readonly control: OutboundLane;
  readonly bulk: OutboundLane;
  readonly snapshots: SnapshotSender;
}

type TransportState = 'new' | 'starting' | 'running' | 'closed';

export class RaftTransport {
  private readonly strangerLog = new LogThrottle(STRANGER_LOG_MS, () => performance.now());
  private readonly opts: ResolvedTransportOptions;
  private state: TransportState = 'new';
  private server: Server | null = null;
  private tls: TlsMaterial | null = null;
  private bound: PeerAddress | null = null;
  private readonly addresses: Map<NodeId, PeerAddress>;
  private readonly peers = new Map<NodeId, Peer>();
  /** Every accepted socket, including ones still in their TLS handshake: closed on close(). */
  private readonly rawSockets = new Set<Socket>();
  private readonly inbound = new Set<InboundConnection>();
  private readonly inboundByLane = new Map<string, InboundConnection>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly warnedUnknownPeers = new Set<NodeId>();
  private closing: Promise<void> | null = null;
  private readonly host: InboundHost;
  /** Inbound connections from TCP accept until authenticated: bounded apart, with a deadline. */
  private readonly gate: HandshakeGate;

  constructor(options: RaftTransportOptions) {
    this.opts = resolveOptions(options);
    this.gate = new HandshakeGate({
      pendingMax: this.opts.limits.unauthenticatedConnectionsMax,
      timeoutMs: this.opts.limits.handshakeTimeoutMs,
      graceMs: evictionGraceMs(this.opts.limits.handshakeTimeoutMs),
      timers: this.opts.timers,
      port: {
        connectionsMax: this.opts.limits.inboundConnectionsMax,
        openConnections: () => this.rawSockets.size,
      },
    });
    this.addresses = new Map(this.opts.peers);
    this.host = {
      opts: this.opts,
      isKnownPeer: (id) => this.addresses.has(id),
      authenticated: (c) => this.onInboundAuthenticated(c),
      closed: (c, reason) => this.onInboundClosed(c, reason),
      track: (task) => this.track(task),
    };
  }

  get nodeId(): NodeId {
    return this.opts.nodeId;
  }

  /** Listens, then connects to every peer. Resolves with the bound address (port 0 → real port). */
  async start(): Promise<PeerAddress> {
    assert(this.state === 'new', 'RaftTransport.start() called twice');
    this.state = 'starting';
    if (this.opts.tls !== null)
      this.tls = await loadTlsMaterial(this.opts.tls, this.opts.limits.handshakeTimeoutMs);
    if (this.state !== 'starting') throw closedError('start');
    const server = this.createServer();
    this.server = server;
    await listen(server, this.opts.listen);
    if (this.state !== 'starting') throw closedError('start');
    const address = server.address();
    assert(address !== null && typeof address === 'object', 'a TCP server has an address');
    this.bound = { host: address.address, port: address.port };
    this.state = 'running';
    for (const [id, addr] of this.addresses) this.addPeer(id, addr);
    this.opts.logger.info({ ...this.bound, tls: this.tls !== null }, 'raft transport listening');
    return this.bound;
  }

  address(): PeerAddress {
    assert(this.bound !== null, 'address() before start()');
    return this.bound;
  }

  /**
   * Queues `message` for its recipient on the lane its type belongs to. Never blocks; returns
   * false when the message was dropped (queue full, peer down, unknown peer, too large), in which
   * case `onUnreachable` fires (at most once per episode, in a microtask).
   */
  send(groupId: RaftGroupId, message: Message): boolean {
    if (this.state !== 'running') return false;
    assert(
      message.from === this.opts.nodeId,
      `send: message from node ${message.from}, this is ${this.opts.nodeId}`,
    );
    const peer = this.peers.get(message.to);
    if (peer === undefined) {
      this.unknownPeer(message.to);
      return false;
    }
    const lane = isControlMessage(message) ? peer.control : peer.bulk;
    if (!lane.accepting()) {
      lane.dropped();
      return false;
    }
    const frame: PeerFrame = { kind: 'raft', groupId, message };
    const payloadBytes = peerFramePayloadBytes(frame);
    if (payloadBytes > this.opts.limits.frameBytesMax) {
      this.opts.logger.warn(
        { peer: message.to, type: message.type, payloadBytes },
        'message larger than frameBytesMax dropped (keep appendBytesMax well below it)',
      );
      lane.dropped();
      return false;
    }
    return lane.enqueue(encodePeerFrame(frame));
  }

  /**
   * Streams a snapshot to `meta.to` on its bulk lane: `meta` is the Raft `snapshot` message the
   * receiver steps once the data is installed, `chunks` the snapshot's bytes (cut into frames of
   * at most `snapshotChunkBytesMax`), `sha256` the SHA-256 they must have (the receiver refuses
   * them otherwise: `SnapshotChecksumError` on its side). Resolves when the receiver's
   * `onSnapshot` resolved; rejects with `SnapshotTransferError` when either side failed or the
   * connection broke.
   */
  async sendSnapshot(
    groupId: RaftGroupId,
    meta: SnapshotMessage,
    chunks: AsyncIterable<Uint8Array>,
    sha256: Uint8Array,
    options: SendSnapshotOptions = {},
  ): Promise<void> {
    if (this.state !== 'running') throw closedError('sendSnapshot');
    assert(
      meta.type === 'snapshot' && meta.from === this.opts.nodeId,
      'sendSnapshot: a snapshot message from this node',
    );
    const peer = this.peers.get(meta.to);
    if (peer === undefined) {
      throw new SnapshotTransferError(
        `unknown peer ${meta.to}`,
        new PeerUnreachableError(meta.to, 'not configured'),
      );
    }
    return peer.snapshots.send(groupId, meta, chunks, sha256, options.signal);
  }

  /** Adds a peer or changes its address (its connections are re-established). */
  setPeer(id: NodeId, address: PeerAddress): void {
    checkAddress(address, `peer ${id}`);
    if (id === this.opts.nodeId || this.state === 'closed') return;
    this.addresses.set(id, address);
    this.warnedUnknownPeers.delete(id);
    if (this.state !== 'running') return;
    const peer = this.peers.get(id);
    if (peer === undefined) {
      this.addPeer(id, address);
    } else if (peer.address.host !== address.host || peer.address.port !== address.port) {
      peer.address = address;
      peer.control.setAddress(address);
      peer.bulk.setAddress(address);
    }
  }

  /** Forgets a peer: its connections (both directions) close and it may no longer connect. */
  removePeer(id: NodeId): void {
    this.addresses.delete(id);
    const peer = this.peers.get(id);
    if (peer !== undefined) {
      this.peers.delete(id);
      peer.control.close();
      peer.bulk.close();
    }
    for (const c of [...this.inbound]) {
      if (c.peerId === id) c.close({ code: 'closed', detail: 'peer removed' });
    }
  }

  status(): PeerStatus[] {
    return [...this.peers.values()].map((p) => ({
      peerId: p.id,
      address: p.address,
      control: p.control.state,
      bulk: p.bulk.state,
      controlQueuedFrames: p.control.queuedFrames,
      bulkQueuedFrames: p.bulk.queuedFrames,
      bulkQueuedBytes: p.bulk.queuedBytes,
      inboundControl: this.inboundByLane.has(laneKey(p.id, 'control')),
      inboundBulk: this.inboundByLane.has(laneKey(p.id, 'bulk')),
      controlFailure: p.control.lastFailure,
    }));
  }

  /** Inbound connections accepted and not yet authenticated (at most `unauthenticatedConnectionsMax`). */
  unauthenticatedInbound(): number {
    return this.gate.size;
  }

  /** Closes every connection and the listener; awaits the snapshot handlers still running. */
  close(): Promise<void> {
    if (this.closing === null) this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.state = 'closed';
    this.gate.close();
    for (const p of this.peers.values()) {
      p.control.close();
      p.bulk.close();
    }
    this.peers.clear();
    for (const c of [...this.inbound]) c.close({ code: 'closed', detail: 'transport closed' });
    for (const s of this.rawSockets) s.destroy();
    const server = this.server;
    if (server?.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    // Bounded: the set only shrinks once closed (no new connections, so no new handlers).
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
  }

  private addPeer(id: NodeId, address: PeerAddress): void {
    const lane = (kind: LaneKind) =>
      new OutboundLane(
        {
          peerId: id,
          kind,
          opts: this.opts,
          connect: (a) => this.connectSocket(a),
          onFrame: (payload, conn) => this.onOutboundFrame(peer, kind, payload, conn),
          onDisconnect: (error) => {
            if (kind === 'bulk') peer.snapshots.onDisconnect(error);
          },
        },
        address,
      );
    const control = lane('control');
    const bulk = lane('bulk');
    const peer: Peer = {
      id,
      address,
      control,
      bulk,
      snapshots: new SnapshotSender(bulk, this.opts.limits.snapshotChunkBytesMax),
    };
    this.peers.set(id, peer);
    control.start();
    bulk.start();
  }

  private createServer(): Server {
    const server = this.tls === null ? createNetServer() : createTlsServer(this.tls.server);
    server.maxConnections = this.opts.limits.inboundConnectionsMax;
    // Registered first: the gate knows a connection before anything else sees it.
    server.on('connection', (socket: Socket) => {
      this.rawSockets.add(socket);
      socket.once('close', () => this.rawSockets.delete(socket));
      // Under TLS this is before the TLS handshake: it counts against the deadline too.
      this.gate.accept(socket);
    });
    server.on(this.tls === null ? 'connection' : 'secureConnection', (socket: Socket) => this.accept(socket));
    // After listen() succeeded (accept failures such as EMFILE): log, never crash the node.
    server.on('error', (err: Error) => {
      if (this.state === 'running') {
        this.opts.logger.warn({ detail: err.message }, 'raft listener error');
      }
    });
    server.on('tlsClientError', (err: Error, socket: Socket) => {
      this.opts.logger.warn(
        {
          remote: `${socket.remoteAddress}:${socket.remotePort}`,
          detail: err.message,
        },
        'TLS handshake with an incoming connection failed',
      );
    });
    return server;
  }

  private accept(socket: Socket): void {
    if (this.state !== 'running') {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, this.opts.limits.keepAliveMs);
    const c = new InboundConnection(socket, this.host);
    this.inbound.add(c);
    this.gate.onExpire(socket, (_why, detail) => c.close({ code: 'handshake', detail }));
  }

  private connectSocket(address: PeerAddress): Socket {
    const options = {
      host: address.host,
      port: address.port,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: this.opts.limits.keepAliveMs,
    };
    return this.tls === null ? netConnect(options) : tlsConnect({ ...this.tls.client, ...options });
  }

  /** Frames a peer sends back on a connection we opened: only snapshot acknowledgements. */
  private onOutboundFrame(peer: Peer, kind: LaneKind, payload: Uint8Array, conn: FramedConnection): void {
    let frame: PeerFrame;
    try {
      frame = decodePeerFrame(payload);
      if (frame.kind !== 'snapshot-ack' || kind !== 'bulk') {
        throw new ProtocolError('unexpected-frame', `${frame.kind} sent back on our ${kind} connection`);
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      conn.close({ code: 'protocol', detail: err.message, error: err });
      return;
    }
    peer.snapshots.onAck(frame);
  }

  private onInboundAuthenticated(c: InboundConnection): void {
    assert(c.peerId !== null && c.lane !== null, 'authenticated connection without peer and lane');
    this.gate.admit(c.conn.socket);
    const key = laneKey(c.peerId, c.lane);
    const older = this.inboundByLane.get(key);
    this.inboundByLane.set(key, c);
    // The peer reconnected (it restarted, or its side saw the old connection die first).
    older?.close({ code: 'replaced', detail: 'the peer opened a newer connection' });
  }

  private onInboundClosed(c: InboundConnection, reason: CloseReason): void {
    this.inbound.delete(c);
    if (c.peerId !== null && c.lane !== null && this.inboundByLane.get(laneKey(c.peerId, c.lane)) === c) {
      this.inboundByLane.delete(laneKey(c.peerId, c.lane));
    }
    const log = {
      peer: c.peerId,
      lane: c.lane,
      remote: c.conn.remote,
      reason: reason.code,
      ...(reason.error instanceof ProtocolError ? { kind: reason.error.kind } : {}),
      detail: reason.detail,
    };
    switch (reason.code) {
      case 'protocol':
        this.opts.logger.warn(log, 'closed a peer connection: protocol violation');
        return;
      case 'handshake': {
        // Anyone can connect and fail: one line per STRANGER_LOG_MS, counting the rest.
        const suppressed = this.strangerLog.admit('handshake');
        if (suppressed !== null)
          this.opts.logger.warn(
            { ...log, suppressedBefore: suppressed },
            'refused a connection: handshake failed',
          );
        return;
      }
      case 'socket-error':
      case 'peer-closed': {
        if (c.peerId !== null) {
          this.opts.logger.info(log, 'peer connection closed');
          return;
        }
        // Closed before it proved anything. A node of another hiqlite version does that: it
        // checks the version in this node's challenge and hangs up, and only its own log said
        // why (found from outside, in an upgrade). Port probes do it too: one line per
        // STRANGER_LOG_MS, counting the rest.
        const suppressed = this.strangerLog.admit('handshake-closed');
        if (suppressed !== null)
          this.opts.logger.info(
            { ...log, suppressedBefore: suppressed },
            "a connection closed during the handshake, before the peer proved who it is: a node of another hiqlite version (it hangs up on this one's challenge; its log names both versions), a port probe, or a client of another protocol",
          );
        return;
      }
      case 'replaced':
      case 'closed':
        return;
    }
  }

  private unknownPeer(id: NodeId): void {
    if (!this.warnedUnknownPeers.has(id)) {
      this.warnedUnknownPeers.add(id);
      this.opts.logger.warn({ peer: id }, 'message for a node with no known address dropped');
    }
    queueMicrotask(() => {
      if (this.state === 'running') this.opts.onUnreachable(id);
    });
  }

  private track(task: Promise<void>): void {
    this.tasks.add(task);
    const done = () => {
      this.tasks.delete(task);
    };
    task.then(done, done);
  }
}

function laneKey(peer: NodeId, lane: LaneKind): string {
  return `${peer}/${lane}`;
}

function listen(server: Server, address: PeerAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      reject(
        new HiqliteError('HQL_IO', `cannot listen on ${address.host}:${address.port}: ${err.message}`, {
          retryable: false,
          cause: err,
        }),
      );
    };
    server.once('error', onError);
    server.listen(address.port, address.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
