/**
 * The frames two authenticated nodes exchange on the Raft port (after the handshake of
 * `handshake.ts`, whose frame kinds are disjoint from these). One kind byte, then its fields:
 *
 *   0x10 raft            a Raft message with its group (raft-message-codec.ts)
 *   0x11 snapshot-begin  u32 streamId, a Raft `snapshot` message with its group
 *   0x12 snapshot-chunk  u32 streamId, data (the rest of the frame, at least one byte)
 *   0x13 snapshot-end    u32 streamId, u53 totalBytes, 32 B sha256 (what the receiver must have
 *                        counted, and the SHA-256 the bytes must have: the sender's stored checksum)
 *   0x14 snapshot-abort  u32 streamId, text reason      (sender gave up; receiver discards)
 *   0x15 snapshot-ack    u32 streamId, bool ok, text reason  (receiver → sender, end to end)
 *
 * `text` is u16 length + UTF-8, at most `REASON_BYTES_MAX` bytes.
 *
 * `encodePeerFrame` returns the whole wire frame, length header included, in one allocation (no
 * copy on the send path); `decodePeerFrame` takes a payload as returned by `FrameDecoder`.
 */
import { assert, assertNever } from '../lib/assert.js';
import type { Message } from '../raft/types.js';
import { ByteReader, ByteWriter, utf8Bounded } from './bytes.js';
import { FRAME_HEADER_BYTES, writeFrameHeader } from './frame.js';
import { ProtocolError } from './protocol-error.js';
import type { RaftGroupId } from './raft-group.js';
import {
  encodedRaftMessageBytes,
  encodeRaftMessageInto,
  readRaftMessage,
  type SnapshotMessage,
} from './raft-message-codec.js';

export const REASON_BYTES_MAX = 512;
/** The SHA-256 a `snapshot-end` frame carries. */
export const SHA256_BYTES = 32;
/** kind + streamId: the overhead of a snapshot chunk frame on top of its data. */
export const SNAPSHOT_CHUNK_OVERHEAD_BYTES = 1 + 4;

export type PeerFrame =
  | { readonly kind: 'raft'; readonly groupId: RaftGroupId; readonly message: Message }
  | {
      readonly kind: 'snapshot-begin';
      readonly streamId: number;
      readonly groupId: RaftGroupId;
      readonly message: SnapshotMessage;
    }
  | { readonly kind: 'snapshot-chunk'; readonly streamId: number; readonly data: Uint8Array }
  | {
      readonly kind: 'snapshot-end';
      readonly streamId: number;
      readonly totalBytes: number;
      /** The SHA-256 of the whole stream's bytes (SHA256_BYTES). */
      readonly sha256: Uint8Array;
    }
  | { readonly kind: 'snapshot-abort'; readonly streamId: number; readonly reason: string }
  | {
      readonly kind: 'snapshot-ack';
      readonly streamId: number;
      readonly ok: boolean;
      readonly reason: string;
    };

const KIND_RAFT = 0x10;
const KIND_SNAPSHOT_BEGIN = 0x11;
const KIND_SNAPSHOT_CHUNK = 0x12;
const KIND_SNAPSHOT_END = 0x13;
const KIND_SNAPSHOT_ABORT = 0x14;
const KIND_SNAPSHOT_ACK = 0x15;

/** The payload size of `f` (without the frame header). */
export function peerFramePayloadBytes(f: PeerFrame): number {
  switch (f.kind) {
    case 'raft':
      return 1 + encodedRaftMessageBytes(f.message);
    case 'snapshot-begin':
      return 1 + 4 + encodedRaftMessageBytes(f.message);
    case 'snapshot-chunk':
      return SNAPSHOT_CHUNK_OVERHEAD_BYTES + f.data.byteLength;
    case 'snapshot-end':
      return 1 + 4 + 8 + SHA256_BYTES;
    case 'snapshot-abort':
      return 1 + 4 + 2 + utf8Bounded(f.reason, REASON_BYTES_MAX).byteLength;
    case 'snapshot-ack':
      return 1 + 4 + 1 + 2 + utf8Bounded(f.reason, REASON_BYTES_MAX).byteLength;
    default:
      return assertNever(f, 'peer frame');
  }
}

/** One wire frame (u32 length header + payload) carrying `f`. */
export function encodePeerFrame(f: PeerFrame): Uint8Array {
  const payloadBytes = peerFramePayloadBytes(f);
  const out = new Uint8Array(FRAME_HEADER_BYTES + payloadBytes);
  writeFrameHeader(out, 0, payloadBytes);
  const w = new ByteWriter(out, FRAME_HEADER_BYTES);
  switch (f.kind) {
    case 'raft':
      w.u8(KIND_RAFT);
      w.skip(encodeRaftMessageInto(f.groupId, f.message, out, w.offset));
      break;
    case 'snapshot-begin':
      w.u8(KIND_SNAPSHOT_BEGIN);
      w.u32(f.streamId);
      w.skip(encodeRaftMessageInto(f.groupId, f.message, out, w.offset));
      break;
    case 'snapshot-chunk':
      assert(f.data.byteLength > 0, 'empty snapshot chunk');
      w.u8(KIND_SNAPSHOT_CHUNK);
      w.u32(f.streamId);
      w.bytes(f.data);
      break;
    case 'snapshot-end':
      assert(f.sha256.byteLength === SHA256_BYTES, 'snapshot-end: a SHA-256');
      w.u8(KIND_SNAPSHOT_END);
      w.u32(f.streamId);
      w.u53(f.totalBytes);
      w.bytes(f.sha256);
      break;
    case 'snapshot-abort':
      w.u8(KIND_SNAPSHOT_ABORT);
      w.u32(f.streamId);
      writeText(w, f.reason);
      break;
    case 'snapshot-ack':
      w.u8(KIND_SNAPSHOT_ACK);
      w.u32(f.streamId);
      w.bool(f.ok);
      writeText(w, f.reason);
      break;
    default:
      assertNever(f, 'peer frame');
  }
  assert(w.offset === out.byteLength, 'peerFramePayloadBytes disagrees with encodePeerFrame');
  return out;
}

/**
 * Decodes one frame payload. Snapshot chunk data is a view into `payload` (no copy): the
 * receiver hands it on and drops it.
 */
export function decodePeerFrame(payload: Uint8Array): PeerFrame {
  const r: ByteReader = new ByteReader(payload, 'peer frame');
  const kind = r.u8('kind');
  let frame: PeerFrame;
  switch (kind) {
    case KIND_RAFT: {
      const { groupId, message } = readRaftMessage(r);
      frame = { kind: 'raft', groupId, message };
      break;
    }
    case KIND_SNAPSHOT_BEGIN: {
      const streamId = r.u32('streamId');
      const { groupId, message } = readRaftMessage(r);
      if (message.type !== 'snapshot') r.fail(`snapshot-begin carries a '${message.type}' message`);
      frame = { kind: 'snapshot-begin', streamId, groupId, message };
      break;
    }
    case KIND_SNAPSHOT_CHUNK: {
      const streamId = r.u32('streamId');
      const data = r.rest();
      if (data.byteLength === 0) r.fail('empty snapshot chunk');
      frame = { kind: 'snapshot-chunk', streamId, data };
      break;
    }
    case KIND_SNAPSHOT_END: {
      const streamId = r.u32('streamId');
      const totalBytes = r.u53('totalBytes');
      frame = {
        kind: 'snapshot-end',
        streamId,
        totalBytes,
        sha256: r.bytesView(SHA256_BYTES, 'sha256').slice(),
      };
      break;
    }
    case KIND_SNAPSHOT_ABORT:
      frame = { kind: 'snapshot-abort', streamId: r.u32('streamId'), reason: readText(r, 'reason') };
      break;
    case KIND_SNAPSHOT_ACK: {
      const streamId = r.u32('streamId');
      const ok = r.bool('ok');
      frame = { kind: 'snapshot-ack', streamId, ok, reason: readText(r, 'reason') };
      break;
    }
    default:
      throw new ProtocolError('unknown-type', `unknown peer frame kind ${kind}`);
  }
  r.end();
  return frame;
}

function writeText(w: ByteWriter, s: string): void {
  const bytes = utf8Bounded(s, REASON_BYTES_MAX);
  w.u16(bytes.byteLength);
  w.bytes(bytes);
}

function readText(r: ByteReader, field: string): string {
  return r.text(field, REASON_BYTES_MAX);
}
