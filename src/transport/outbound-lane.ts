/**
 * One outgoing connection to one peer, for one lane. Control messages (votes, heartbeats,
 * read-index, timeout-now, all responses) and bulk traffic (appends, snapshot streams) each get
 * their own TCP connection, so a heartbeat never waits behind megabytes of AppendEntries in a
 * socket buffer (DESIGN.md, "Liveness under load").
 *
 * States: connecting → ready → (connection lost) → backoff → connecting … ; closed is final.
 * While connecting, frames queue (bounded); when ready they are written, coalesced into one
 * write per event-loop turn, never more than one batch beyond the socket's high-water mark. In
 * backoff, or when the queue is full, a message is dropped and the owner is told the peer is
 * unreachable: Raft tolerates loss and resends, while an unbounded queue would hold stale
 * messages and memory. A lost connection drops its queue too (its snapshot frames belong to a
 * stream that died with it).
 */
import type { Socket } from 'node:net';
import { HANDSHAKE_FRAME_BYTES_MAX } from '../protocol/handshake.js';
import type { NodeId } from '../raft/types.js';
import { authenticateClient } from './authenticate.js';
import { reconnectDelayMs } from './backoff.js';
import { FrameQueue } from './frame-queue.js';
import { type CloseReason, FramedConnection } from './framed-connection.js';
import { closedError, PeerUnreachableError } from './transport-errors.js';
import type { PeerAddress, ResolvedTransportOptions } from './transport-options.js';

export type LaneKind = 'control' | 'bulk';
export type LaneState = 'connecting' | 'ready' | 'backoff' | 'closed';

/** The handshake `channel` byte of each lane. */
export const LANE_CHANNELS: Readonly<Record<LaneKind, number>> = { control: 1, bulk: 2 };

export function laneOfChannel(channel: number): LaneKind | null {
  if (channel === LANE_CHANNELS.control) return 'control';
  if (channel === LANE_CHANNELS.bulk) return 'bulk';
  return null;
}

export interface OutboundLaneDeps {
  readonly peerId: NodeId;
  readonly kind: LaneKind;
  readonly opts: ResolvedTransportOptions;
  /** Opens a plain or TLS socket to `address`. */
  readonly connect: (address: PeerAddress) => Socket;
  /** Frames the peer sends back on this connection (snapshot acknowledgements). */
  readonly onFrame: (payload: Uint8Array, conn: FramedConnection) => void;
  /** The connection was lost or the lane closed: streams bound to it have failed. */
  readonly onDisconnect: (error: Error) => void;
}

interface Waiter {
  readonly epoch: number;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

export class OutboundLane {
  private failure: string | null = null;
  private stateNow: LaneState = 'connecting';
  private readonly queue: FrameQueue;
  private conn: FramedConnection | null = null;
  private address: PeerAddress;
  /** Consecutive failed attempts since the last ready connection. */
  private failures = 0;
  /** Counts connection attempts; a stream is bound to the epoch it started in. */
  private epochNow = 0;
  private reconnectTimer: unknown = null;
  private handshakeTimer: unknown = null;
  private flushScheduled = false;
  private awaitingDrain = false;
  private unreachableReported = false;
  private roomWaiters: Waiter[] = [];
  private readyWaiters: Waiter[] = [];

  constructor(
    private readonly deps: OutboundLaneDeps,
    address: PeerAddress,
  ) {
    this.address = address;
    const l = deps.opts.limits;
    this.queue =
      deps.kind === 'control'
        ? new FrameQueue(l.controlQueueMessagesMax, l.controlQueueBytesMax)
        : new FrameQueue(l.bulkQueueMessagesMax, l.bulkQueueBytesMax);
  }

  /** Why the last attempt to connect failed or the connection was lost (no address in it), until it is up again. */
  get lastFailure(): string | null {
    return this.failure;
  }

  get state(): LaneState {
    return this.stateNow;
  }

  get epoch(): number {
    return this.epochNow;
  }

  get queuedFrames(): number {
    return this.queue.length;
  }

  get queuedBytes(): number {
    return this.queue.bytes;
  }

  start(): void {
    this.connect();
  }

  /** Whether `enqueue` could accept a frame now (lets the caller skip encoding). */
  accepting(): boolean {
    return this.stateNow === 'ready' || this.stateNow === 'connecting';
  }

  /** Queues one message frame; false when it was dropped (and the peer reported unreachable). */
  enqueue(frame: Uint8Array): boolean {
    if (!this.accepting() || !this.queue.push(frame)) {
      this.reportUnreachable();
      return false;
    }
    this.scheduleFlush();
    return true;
  }

  /** A message for this lane was dropped before reaching it (not accepting, too large). */
  dropped(): void {
    this.reportUnreachable();
  }

  /** Resolves with the epoch of a ready connection; rejects if the current attempt fails. */
  whenReady(): Promise<number> {
    switch (this.stateNow) {
      case 'ready':
        return Promise.resolve(this.epochNow);
      case 'connecting':
        return new Promise((resolve, reject) => {
          const epoch = this.epochNow;
          this.readyWaiters.push({ epoch, resolve: () => resolve(epoch), reject });
        });
      case 'backoff':
        return Promise.reject(new PeerUnreachableError(this.deps.peerId, 'reconnecting after a failure'));
      case 'closed':
        return Promise.reject(closedError('send snapshot'));
    }
  }

  /** Whether the queue is at most half full (a snapshot sender may queue its next frame). */
  hasRoomNow(): boolean {
    return this.queue.hasHalfRoom();
  }

  /** Resolves when the queue is at most half full, as long as the `epoch` connection lives. */
  waitForRoom(epoch: number): Promise<void> {
    if (epoch !== this.epochNow || this.stateNow !== 'ready') {
      return Promise.reject(this.lostError());
    }
    if (this.queue.hasHalfRoom()) return Promise.resolve();
    return new Promise((resolve, reject) => this.roomWaiters.push({ epoch, resolve, reject }));
  }

  /** Queues a snapshot frame, beyond the bounds: its sender waited for room (`waitForRoom`). */
  enqueueReliable(frame: Uint8Array, epoch: number): void {
    if (epoch !== this.epochNow || this.stateNow !== 'ready') throw this.lostError();
    this.queue.pushAlways(frame);
    this.scheduleFlush();
  }

  /** Points the lane at a new address; the current connection is replaced. */
  setAddress(address: PeerAddress): void {
    this.address = address;
    if (this.conn !== null) this.conn.close({ code: 'closed', detail: 'peer address changed' });
  }

  close(): void {
    if (this.stateNow === 'closed') return;
    this.stateNow = 'closed';
    this.clearTimers();
    this.conn?.close({ code: 'closed', detail: 'transport closed' });
    this.conn = null;
    this.queue.clear();
    const err = closedError(`lane ${this.deps.kind} to peer ${this.deps.peerId}`);
    this.rejectWaiters(err);
    this.deps.onDisconnect(err);
  }

  private connect(): void {
    const { opts, peerId, kind } = this.deps;
    this.stateNow = 'connecting';
    this.epochNow++;
    const socket = this.deps.connect(this.address);
    const conn = new FramedConnection(socket, HANDSHAKE_FRAME_BYTES_MAX, (reason) =>
      this.onClose(conn, reason),
    );
    this.conn = conn;
    this.handshakeTimer = opts.timers.setTimeout(() => {
      conn.close({
        code: 'handshake',
        detail: `no completed handshake within ${opts.limits.handshakeTimeoutMs} ms`,
      });
    }, opts.limits.handshakeTimeoutMs);
    const params = {
      secret: opts.secret,
      purpose: 'raft' as const,
      localId: opts.nodeId,
      clusterId: opts.clusterId,
      serverId: peerId,
      channel: LANE_CHANNELS[kind],
    };
    authenticateClient(conn, params, (error) => {
      if (error !== null) {
        conn.close({ code: 'handshake', detail: error.reason, error });
        return;
      }
      this.onReady(conn);
    });
  }

  private onReady(conn: FramedConnection): void {
    this.clearHandshakeTimer();
    conn.setFrameBytesMax(this.deps.opts.limits.frameBytesMax);
    conn.onFrame((payload) => this.deps.onFrame(payload, conn));
    this.stateNow = 'ready';
    this.failures = 0;
    this.failure = null;
    this.unreachableReported = false;
    this.deps.opts.logger.debug(
      { peer: this.deps.peerId, lane: this.deps.kind, remote: conn.remote },
      'connected to peer',
    );
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.resolve();
    this.scheduleFlush();
  }

  private onClose(conn: FramedConnection, reason: CloseReason): void {
    if (conn !== this.conn) return;
    this.conn = null;
    this.clearHandshakeTimer();
    if (this.stateNow === 'closed') return;
    const wasReady = this.stateNow === 'ready';
    // Shown on the unauthenticated /health: a handshake's reason (versions, a refused secret)
    // names no address; a socket error's detail does, so only its kind is kept.
    this.failure = reason.code === 'handshake' ? `handshake: ${reason.detail}` : reason.code;
    const log = {
      peer: this.deps.peerId,
      lane: this.deps.kind,
      reason: reason.code,
    };
    // One warning per outage: a peer that stays down is retried quietly.
    if (wasReady) this.deps.opts.logger.warn({ ...log, detail: reason.detail }, 'connection to peer lost');
    else if (this.failures === 0)
      this.deps.opts.logger.warn({ ...log, detail: reason.detail }, 'cannot connect to peer');
    this.awaitingDrain = false;
    if (this.queue.clear() > 0) this.reportUnreachable();
    const err = this.lostError();
    this.rejectWaiters(err);
    this.deps.onDisconnect(err);
    this.stateNow = 'backoff';
    const { limits, random, timers } = this.deps.opts;
    const delayMs = reconnectDelayMs(
      this.failures,
      limits.reconnectDelayMsMin,
      limits.reconnectDelayMsMax,
      random,
    );
    this.failures++;
    this.reconnectTimer = timers.setTimeout(() => {
      this.reconnectTimer = null;
      if (this.stateNow === 'backoff') this.connect();
    }, delayMs);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.stateNow !== 'ready' || this.awaitingDrain || this.queue.length === 0)
      return;
    this.flushScheduled = true;
    // One write per event-loop turn: every message queued during this turn shares it.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const conn = this.conn;
    if (conn === null || this.stateNow !== 'ready') return;
    const batchBytesMax = this.deps.opts.limits.writeBatchBytesMax;
    // Bounded: each pass removes at least one frame from a bounded queue.
    while (this.queue.length > 0 && !this.awaitingDrain) {
      const batch = this.queue.takeBatch(batchBytesMax);
      const bytes = batch.length === 1 ? (batch[0] as Uint8Array) : Buffer.concat(batch);
      if (!conn.write(bytes)) {
        this.awaitingDrain = true;
        conn.socket.once('drain', () => {
          if (this.conn !== conn) return;
          this.awaitingDrain = false;
          this.wakeRoomWaiters();
          this.scheduleFlush();
        });
      }
    }
    this.unreachableReported = false;
    this.wakeRoomWaiters();
  }

  private wakeRoomWaiters(): void {
    if (this.roomWaiters.length === 0 || !this.queue.hasHalfRoom()) return;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const w of waiters) {
      if (w.epoch === this.epochNow) w.resolve();
      else w.reject(this.lostError());
    }
  }

  /**
   * Edge-triggered: once per outage or overflow episode, not once per dropped message. Called
   * back in a microtask, never from inside `send`, so the runtime is not re-entered while it
   * is in the middle of handling a Ready.
   */
  private reportUnreachable(): void {
    if (this.unreachableReported || this.stateNow === 'closed') return;
    this.unreachableReported = true;
    queueMicrotask(() => {
      if (this.stateNow !== 'closed') this.deps.opts.onUnreachable(this.deps.peerId);
    });
  }

  private rejectWaiters(err: Error): void {
    const waiters = [...this.roomWaiters, ...this.readyWaiters];
    this.roomWaiters = [];
    this.readyWaiters = [];
    for (const w of waiters) w.reject(err);
  }

  private lostError(): Error {
    if (this.stateNow === 'closed') return closedError(`lane ${this.deps.kind} to peer ${this.deps.peerId}`);
    return new PeerUnreachableError(this.deps.peerId, `${this.deps.kind} connection lost`);
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer !== null) this.deps.opts.timers.clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }

  private clearTimers(): void {
    this.clearHandshakeTimer();
    if (this.reconnectTimer !== null) this.deps.opts.timers.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
  }
}
