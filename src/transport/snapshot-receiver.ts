/**
 * Receives snapshot streams on one inbound bulk connection and answers each with an
 * acknowledgement: ok once the application's handler resolved after the whole stream arrived,
 * a failure (with the reason) otherwise. So the sender learns the outcome end to end, not just
 * that its bytes left. While more than `snapshotReceiveBufferBytesMax` bytes wait for a slow
 * consumer the connection stops reading (TCP pushes back on the sender); reading resumes below
 * half of it.
 *
 * The receiver hashes the bytes as they arrive and compares the SHA-256 with the one in the
 * sender's end frame, as it compares the byte count: a stream that does not match fails the
 * handler's iteration with `SnapshotChecksumError` at its end, so the handler stores nothing and
 * the sender is told why. The handler never sees the last chunk's end before the check passed.
 */
import { createHash, type Hash } from 'node:crypto';
import type { PeerFrame } from '../protocol/peer-frame.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import type { NodeId } from '../raft/types.js';
import { ChunkChannel } from './chunk-channel.js';
import type { TransportLogger } from './logger.js';
import { SnapshotChecksumError, SnapshotTransferError } from './transport-errors.js';
import type { SnapshotHandler, TransportLimits } from './transport-options.js';

type StreamFrame = Extract<
  PeerFrame,
  { kind: 'snapshot-begin' | 'snapshot-chunk' | 'snapshot-end' | 'snapshot-abort' }
>;

interface Stream {
  readonly channel: ChunkChannel;
  bytesReceived: number;
  /** The SHA-256 of the bytes received so far. */
  readonly hash: Hash;
  /** The sender's end frame arrived. */
  ended: boolean;
  /** … and its byte count matched what arrived: only then can the stream be acknowledged ok. */
  complete: boolean;
  /** The handler settled (resolved or rejected). */
  settled: boolean;
  /** The sender aborted: no acknowledgement is owed. */
  aborted: boolean;
  /** Acknowledged as failed before the sender finished: later chunks are dropped. */
  discarding: boolean;
}

export interface SnapshotReceiverDeps {
  readonly peerId: NodeId;
  readonly limits: TransportLimits;
  readonly onSnapshot: SnapshotHandler | null;
  readonly logger: TransportLogger;
  readonly sendAck: (frame: PeerFrame) => void;
  readonly pause: () => void;
  readonly resume: () => void;
  /** Registers a handler's promise so that closing the transport awaits it. */
  readonly track: (task: Promise<void>) => void;
}

export class SnapshotReceiver {
  private readonly streams = new Map<number, Stream>();
  private bufferedBytes = 0;
  private paused = false;
  private failed = false;

  constructor(private readonly deps: SnapshotReceiverDeps) {}

  /** Handles one stream frame; a frame that makes no sense here is a `ProtocolError`. */
  handle(frame: StreamFrame): void {
    switch (frame.kind) {
      case 'snapshot-begin':
        this.begin(frame);
        return;
      case 'snapshot-chunk': {
        const s = this.stream(frame.streamId);
        if (s.discarding || s.aborted) return;
        if (s.ended)
          throw new ProtocolError('unexpected-frame', `chunk after the end of stream ${frame.streamId}`);
        s.bytesReceived += frame.data.byteLength;
        s.hash.update(frame.data);
        this.bufferedBytes += frame.data.byteLength;
        s.channel.push(frame.data);
        if (!this.paused && this.bufferedBytes > this.deps.limits.snapshotReceiveBufferBytesMax) {
          this.paused = true;
          this.deps.pause();
        }
        return;
      }
      case 'snapshot-end': {
        const s = this.stream(frame.streamId);
        if (s.ended || s.aborted)
          throw new ProtocolError('unexpected-frame', `second end of stream ${frame.streamId}`);
        if (s.discarding) {
          this.streams.delete(frame.streamId);
          return;
        }
        s.ended = true;
        if (s.bytesReceived !== frame.totalBytes) {
          s.channel.fail(
            new SnapshotTransferError(`sender sent ${frame.totalBytes} bytes, ${s.bytesReceived} arrived`),
          );
          return;
        }
        const actual = s.hash.digest();
        if (!actual.equals(frame.sha256)) {
          s.channel.fail(
            new SnapshotChecksumError(Buffer.from(frame.sha256).toString('hex'), actual.toString('hex')),
          );
          return;
        }
        s.complete = true;
        s.channel.end();
        return;
      }
      case 'snapshot-abort': {
        const s = this.stream(frame.streamId);
        if (s.discarding || s.settled) {
          this.streams.delete(frame.streamId);
          return;
        }
        s.aborted = true;
        s.channel.fail(new SnapshotTransferError(`aborted by the sender: ${frame.reason}`));
        return;
      }
    }
  }

  /** The connection is gone: every unfinished stream fails. */
  fail(detail: string): void {
    if (this.failed) return;
    this.failed = true;
    for (const s of this.streams.values()) {
      s.channel.fail(new SnapshotTransferError(`connection from peer ${this.deps.peerId} lost: ${detail}`));
    }
    this.streams.clear();
  }

  private begin(frame: Extract<PeerFrame, { kind: 'snapshot-begin' }>): void {
    const id = frame.streamId;
    if (this.streams.has(id))
      throw new ProtocolError('unexpected-frame', `snapshot stream ${id} begun twice`);
    // Refused streams linger until their sender ends or aborts them; a peer that keeps opening
    // streams regardless is broken, and the map must stay bounded.
    if (this.streams.size >= 2 * this.deps.limits.snapshotStreamsMax) {
      throw new ProtocolError('unexpected-frame', 'too many open snapshot streams');
    }
    const channel = new ChunkChannel((bytes) => this.consumed(bytes));
    const s: Stream = {
      channel,
      bytesReceived: 0,
      hash: createHash('sha256'),
      ended: false,
      complete: false,
      settled: false,
      aborted: false,
      discarding: false,
    };
    this.streams.set(id, s);
    const handler = this.deps.onSnapshot;
    let refusal: string | null = null;
    if (handler === null) refusal = 'this node accepts no snapshots';
    else if (this.activeStreams() > this.deps.limits.snapshotStreamsMax) {
      refusal = `more than ${this.deps.limits.snapshotStreamsMax} concurrent snapshot streams`;
    }
    if (handler === null || refusal !== null) {
      s.settled = true;
      s.discarding = true;
      channel.discard();
      this.deps.sendAck({ kind: 'snapshot-ack', streamId: id, ok: false, reason: refusal ?? 'refused' });
      return;
    }
    // A synchronous throw from the handler becomes a rejection like any other failure.
    const task = new Promise<void>((resolve) =>
      resolve(handler(frame.groupId, frame.message.from, frame.message, channel)),
    );
    this.deps.track(
      task.then(
        () => this.settle(id, s, null),
        (err: unknown) => this.settle(id, s, err),
      ),
    );
  }

  private settle(id: number, s: Stream, error: unknown): void {
    s.settled = true;
    // The stream may already be gone (connection lost) or replaced by a new one with this id.
    if (this.streams.get(id) !== s) return;
    if (s.aborted) {
      this.streams.delete(id);
      return;
    }
    if (error === null && s.complete) {
      this.streams.delete(id);
      this.deps.sendAck({ kind: 'snapshot-ack', streamId: id, ok: true, reason: '' });
      return;
    }
    const reason =
      error === null
        ? 'the receiver finished before the end of the stream'
        : `the receiver failed: ${error instanceof Error ? error.message : String(error)}`;
    this.deps.logger.warn({ peer: this.deps.peerId, stream: id, reason }, 'snapshot stream failed');
    s.channel.discard();
    if (s.ended) this.streams.delete(id);
    else s.discarding = true;
    this.deps.sendAck({ kind: 'snapshot-ack', streamId: id, ok: false, reason });
  }

  private activeStreams(): number {
    let n = 0;
    for (const s of this.streams.values()) if (!s.discarding) n++;
    return n;
  }

  private stream(id: number): Stream {
    const s = this.streams.get(id);
    if (s === undefined) throw new ProtocolError('unexpected-frame', `no snapshot stream ${id}`);
    return s;
  }

  private consumed(bytes: number): void {
    this.bufferedBytes -= bytes;
    if (this.paused && this.bufferedBytes * 2 <= this.deps.limits.snapshotReceiveBufferBytesMax) {
      this.paused = false;
      this.deps.resume();
    }
  }
}
