/**
 * A connection a peer opened to us: the server side of the handshake, then every frame checked
 * before it reaches the runtime. A message must come from the authenticated peer and be for
 * this node, and travel on its lane (control messages on the control lane, appends and snapshot
 * streams on the bulk lane). Any violation closes this connection only, with the reason logged.
 */
import type { Socket } from 'node:net';
import { HANDSHAKE_FRAME_BYTES_MAX } from '../protocol/handshake.js';
import { decodePeerFrame, encodePeerFrame, type PeerFrame } from '../protocol/peer-frame.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import { isControlMessage, type Message, type NodeId } from '../raft/types.js';
import { authenticateServer } from './authenticate.js';
import { type CloseReason, FramedConnection } from './framed-connection.js';
import { type LaneKind, laneOfChannel } from './outbound-lane.js';
import { SnapshotReceiver } from './snapshot-receiver.js';
import { HandshakeError } from './transport-errors.js';
import type { ResolvedTransportOptions } from './transport-options.js';

export interface InboundHost {
  readonly opts: ResolvedTransportOptions;
  isKnownPeer(id: NodeId): boolean;
  /** The handshake succeeded: the host may close an older connection of the same peer and lane. */
  authenticated(conn: InboundConnection): void;
  closed(conn: InboundConnection, reason: CloseReason): void;
  track(task: Promise<void>): void;
}

export class InboundConnection {
  readonly conn: FramedConnection;
  private peer: NodeId | null = null;
  private laneKind: LaneKind | null = null;
  private receiver: SnapshotReceiver | null = null;

  constructor(
    socket: Socket,
    private readonly host: InboundHost,
  ) {
    const { opts } = host;
    // Until the handshake succeeds a frame may be no larger than a handshake frame. The deadline
    // of the handshake is the host's (its HandshakeGate counts from the TCP accept).
    this.conn = new FramedConnection(socket, HANDSHAKE_FRAME_BYTES_MAX, (reason) => this.onClose(reason));
    const params = {
      secretFor: () => opts.secret,
      purpose: 'raft' as const,
      localId: opts.nodeId,
      clusterId: opts.clusterId,
      accepts: (id: number, channel: number) =>
        host.isKnownPeer(id as NodeId) && laneOfChannel(channel) !== null,
    };
    authenticateServer(this.conn, params, (result) => {
      if (result instanceof HandshakeError) {
        this.conn.close({ code: 'handshake', detail: result.reason, error: result }, { flush: true });
        return;
      }
      this.onAuthenticated(result.clientId as NodeId, laneOfChannel(result.channel) as LaneKind);
    });
  }

  /** The authenticated peer, or null during the handshake. */
  get peerId(): NodeId | null {
    return this.peer;
  }

  get lane(): LaneKind | null {
    return this.laneKind;
  }

  close(reason: CloseReason): void {
    this.conn.close(reason);
  }

  private onAuthenticated(peerId: NodeId, lane: LaneKind): void {
    const { opts } = this.host;
    this.peer = peerId;
    this.laneKind = lane;
    this.conn.setFrameBytesMax(opts.limits.frameBytesMax);
    if (lane === 'bulk') {
      this.receiver = new SnapshotReceiver({
        peerId,
        limits: opts.limits,
        onSnapshot: opts.onSnapshot,
        logger: opts.logger,
        sendAck: (frame) => this.conn.write(encodePeerFrame(frame)),
        pause: () => this.conn.pause(),
        resume: () => this.conn.resume(),
        track: (task) => this.host.track(task),
      });
    }
    this.conn.onFrame((payload) => this.onFrame(payload));
    this.host.authenticated(this);
    opts.logger.debug({ peer: peerId, lane, remote: this.conn.remote }, 'peer connected');
  }

  private onFrame(payload: Uint8Array): void {
    let delivery: Extract<PeerFrame, { kind: 'raft' }> | null = null;
    try {
      const frame = decodePeerFrame(payload);
      if (frame.kind === 'raft') {
        this.checkMessage(frame.message);
        delivery = frame;
      } else if (frame.kind === 'snapshot-ack') {
        throw new ProtocolError('unexpected-frame', 'snapshot-ack on an inbound connection');
      } else {
        if (this.receiver === null)
          throw new ProtocolError('unexpected-frame', `${frame.kind} on the control lane`);
        if (frame.kind === 'snapshot-begin') this.checkMessage(frame.message);
        this.receiver.handle(frame);
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.conn.close({ code: 'protocol', detail: err.message, error: err });
      return;
    }
    // Outside the try: an exception from the runtime's handler is a programmer error, not the
    // peer's fault, and must not be mistaken for a protocol violation.
    if (delivery !== null) this.host.opts.onMessage(delivery.groupId, delivery.message);
  }

  private checkMessage(m: Message): void {
    if (m.from !== this.peer) {
      throw new ProtocolError(
        'spoofed-sender',
        `message from ${m.from} on the connection of node ${this.peer}`,
      );
    }
    if (m.to !== this.host.opts.nodeId) {
      throw new ProtocolError(
        'wrong-recipient',
        `message for ${m.to} arrived at node ${this.host.opts.nodeId}`,
      );
    }
    const control = isControlMessage(m);
    if (control !== (this.laneKind === 'control')) {
      throw new ProtocolError('unexpected-frame', `'${m.type}' on the ${this.laneKind} lane`);
    }
  }

  private onClose(reason: CloseReason): void {
    this.receiver?.fail(reason.detail);
    this.host.closed(this, reason);
  }
}
