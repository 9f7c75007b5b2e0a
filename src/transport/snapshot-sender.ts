/**
 * Sends snapshot streams to one peer over its bulk lane: a begin frame carrying the Raft
 * `snapshot` message, the data cut into chunks of at most `snapshotChunkBytesMax`, an end frame
 * with the byte count and the SHA-256 the caller gives (the snapshot's stored checksum, not one
 * computed here from the bytes as they are read: the receiver then refuses bytes damaged at rest
 * as well as in transit), then the receiver's acknowledgement. Backpressure: each chunk waits until
 * the lane's queue is at most half full, and the queue drains only as fast as the socket does,
 * so a snapshot file is streamed, never held in memory. A stream is bound to one connection:
 * if that connection drops, the stream fails and the runtime starts over (Raft reports the
 * snapshot as failed and retries).
 */
import { whenAborted } from '../lib/abort.js';
import { assert } from '../lib/assert.js';
import { encodePeerFrame, type PeerFrame, SHA256_BYTES } from '../protocol/peer-frame.js';
import type { RaftGroupId } from '../protocol/raft-group.js';
import type { SnapshotMessage } from '../protocol/raft-message-codec.js';
import type { OutboundLane } from './outbound-lane.js';
import { SnapshotTransferError } from './transport-errors.js';

interface PendingStream {
  readonly epoch: number;
  /** Set when the stream failed from outside: receiver's negative ack, lost connection, abort. */
  failure: Error | null;
  /** The receiver acknowledged (either way): no abort frame is owed. */
  acked: boolean;
  readonly settle: (error: Error | null) => void;
}

const STREAM_ID_MAX = 2 ** 32 - 1;

export class SnapshotSender {
  private nextStreamId = 1;
  private readonly pending = new Map<number, PendingStream>();

  constructor(
    private readonly lane: OutboundLane,
    private readonly chunkBytesMax: number,
  ) {}

  /** An acknowledgement arrived; one for a stream we already gave up on is ignored. */
  onAck(frame: Extract<PeerFrame, { kind: 'snapshot-ack' }>): void {
    const p = this.pending.get(frame.streamId);
    if (p === undefined) return;
    p.acked = true;
    p.settle(frame.ok ? null : new SnapshotTransferError(`peer refused it: ${frame.reason}`));
  }

  /** The lane's connection is gone: every stream on it has failed. */
  onDisconnect(error: Error): void {
    for (const p of this.pending.values()) p.settle(error);
  }

  async send(
    groupId: RaftGroupId,
    message: SnapshotMessage,
    chunks: AsyncIterable<Uint8Array>,
    sha256: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    assert(sha256.byteLength === SHA256_BYTES, 'sendSnapshot: a SHA-256 of the data');
    let epoch: number;
    try {
      signal?.throwIfAborted();
      epoch = await this.lane.whenReady();
    } catch (err) {
      throw asTransferError(err);
    }
    const streamId = this.nextStreamId;
    this.nextStreamId = streamId === STREAM_ID_MAX ? 1 : streamId + 1;
    let settle: (error: Error | null) => void = () => {};
    const outcome = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === null ? resolve() : reject(error));
    });
    // Observed here so an early failure is never an unhandled rejection; awaited below.
    outcome.catch(() => {});
    const p: PendingStream = {
      epoch,
      failure: null,
      acked: false,
      settle: (error) => {
        if (error !== null && p.failure === null) p.failure = error;
        settle(error);
      },
    };
    this.pending.set(streamId, p);
    // Aborted while the lane was getting ready too (whenAborted calls at once then).
    const stopListening = whenAborted(signal, () =>
      p.settle(new SnapshotTransferError('aborted by the caller', signal?.reason)),
    );
    try {
      await this.put(p, { kind: 'snapshot-begin', streamId, groupId, message }, outcome);
      let totalBytes = 0;
      for await (const chunk of chunks) {
        // Bounded by the source; each piece is at most chunkBytesMax.
        for (let at = 0; at < chunk.byteLength; at += this.chunkBytesMax) {
          const data = chunk.subarray(at, Math.min(chunk.byteLength, at + this.chunkBytesMax));
          await this.put(p, { kind: 'snapshot-chunk', streamId, data }, outcome);
          totalBytes += data.byteLength;
        }
      }
      await this.put(p, { kind: 'snapshot-end', streamId, totalBytes, sha256 }, outcome);
      await outcome;
    } catch (err) {
      const error = p.failure ?? err;
      this.abortOnWire(p, streamId, error);
      throw asTransferError(error);
    } finally {
      stopListening();
      this.pending.delete(streamId);
    }
  }

  /** Waits for room in the lane, then queues `frame`; fails as soon as the stream has failed. */
  private async put(p: PendingStream, frame: PeerFrame, outcome: Promise<void>): Promise<void> {
    if (p.failure !== null) throw p.failure;
    if (!this.lane.hasRoomNow()) await Promise.race([this.lane.waitForRoom(p.epoch), outcome]);
    if (p.failure !== null) throw p.failure;
    this.lane.enqueueReliable(encodePeerFrame(frame), p.epoch);
  }

  /** Tells the receiver to drop the stream, unless it already answered or the connection died. */
  private abortOnWire(p: PendingStream, streamId: number, error: unknown): void {
    if (p.acked || this.lane.epoch !== p.epoch || this.lane.state !== 'ready') return;
    const reason = error instanceof Error ? error.message : String(error);
    assert(streamId >= 1, 'stream id');
    this.lane.enqueueReliable(encodePeerFrame({ kind: 'snapshot-abort', streamId, reason }), p.epoch);
  }
}

/** Every failure of a transfer reaches the caller as one type, with the original as its cause. */
function asTransferError(err: unknown): SnapshotTransferError {
  if (err instanceof SnapshotTransferError) return err;
  return new SnapshotTransferError(err instanceof Error ? err.message : String(err), err);
}
