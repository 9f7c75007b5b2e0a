/**
 * Length-prefixed framing: every frame on a connection is `u32 payloadBytes (little-endian) |
 * payload`. The decoder accepts the stream cut into arbitrary chunks and refuses a frame header
 * announcing more than `frameBytesMax` before buffering any of it, so a peer cannot make us
 * allocate more than that. A stream that ends inside a frame is `truncated-frame`.
 */
import { assert } from '../lib/assert.js';
import { ProtocolError } from './protocol-error.js';

export const FRAME_HEADER_BYTES = 4;
/** The largest payload the u32 header can announce. */
export const FRAME_PAYLOAD_BYTES_LIMIT = 2 ** 32 - 1;

/** Writes the header of a frame whose payload follows at `offset + FRAME_HEADER_BYTES`. */
export function writeFrameHeader(target: Uint8Array, offset: number, payloadBytes: number): void {
  assert(
    Number.isInteger(payloadBytes) && payloadBytes >= 0 && payloadBytes <= FRAME_PAYLOAD_BYTES_LIMIT,
    `frame payload of ${payloadBytes} bytes`,
  );
  new DataView(target.buffer, target.byteOffset + offset, FRAME_HEADER_BYTES).setUint32(
    0,
    payloadBytes,
    true,
  );
}

/** `payload` as one frame (header + a copy of the payload). */
export function encodeFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  writeFrameHeader(out, 0, payload.byteLength);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Incremental frame decoder. `push` returns the payloads completed by a chunk, in order; a
 * payload that lies inside one chunk is a view of that chunk (no copy), one that spans chunks is
 * copied once when its last byte arrives. After a `ProtocolError` the decoder stays failed.
 */
export class FrameDecoder {
  /** Unconsumed chunks; `head` bytes of the first one are already consumed. */
  private chunks: Uint8Array[] = [];
  private head = 0;
  private buffered = 0;
  /** Payload bytes of the frame whose header was read, or -1 while waiting for a header. */
  private payloadBytes = -1;
  private failure: ProtocolError | null = null;

  constructor(private frameBytesMax: number) {
    FrameDecoder.checkLimit(frameBytesMax);
  }

  /** Raises (or lowers) the limit, e.g. from the small handshake limit to the full one. */
  setFrameBytesMax(frameBytesMax: number): void {
    FrameDecoder.checkLimit(frameBytesMax);
    this.frameBytesMax = frameBytesMax;
  }

  /** Bytes received but not yet returned as part of a frame (header bytes included). */
  get bufferedBytes(): number {
    return this.buffered + (this.payloadBytes >= 0 ? FRAME_HEADER_BYTES : 0);
  }

  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failure !== null) throw this.failure;
    const frames: Uint8Array[] = [];
    if (chunk.byteLength === 0) return frames;
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    // Bounded: every iteration consumes a 4-byte header or ends the loop.
    for (;;) {
      if (this.payloadBytes < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        const header = this.take(FRAME_HEADER_BYTES);
        const announced = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_BYTES).getUint32(
          0,
          true,
        );
        if (announced > this.frameBytesMax) {
          this.failure = new ProtocolError(
            'frame-too-large',
            `frame of ${announced} bytes exceeds frameBytesMax ${this.frameBytesMax}`,
          );
          this.chunks = [];
          this.buffered = 0;
          throw this.failure;
        }
        this.payloadBytes = announced;
      }
      if (this.buffered < this.payloadBytes) break;
      frames.push(this.take(this.payloadBytes));
      this.payloadBytes = -1;
    }
    return frames;
  }

  /** Call when the stream ends: bytes of an unfinished frame are a `truncated-frame` error. */
  end(): void {
    if (this.failure !== null) throw this.failure;
    const pending = this.bufferedBytes;
    if (pending > 0) {
      this.failure = new ProtocolError('truncated-frame', `stream ended ${pending} bytes into a frame`);
      throw this.failure;
    }
  }

  private take(n: number): Uint8Array {
    assert(n <= this.buffered, 'take beyond the buffered bytes');
    this.buffered -= n;
    const first = this.chunks[0];
    if (n === 0) return new Uint8Array(0);
    assert(first !== undefined, 'buffered bytes without a chunk');
    const inFirst = first.byteLength - this.head;
    if (n <= inFirst) {
      const out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.byteLength) {
        this.chunks.shift();
        this.head = 0;
      }
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    let used = 0;
    // Bounded by the number of buffered chunks.
    for (const c of this.chunks) {
      const from = used === 0 ? this.head : 0;
      const count = Math.min(c.byteLength - from, n - filled);
      out.set(c.subarray(from, from + count), filled);
      filled += count;
      if (from + count === c.byteLength) {
        used++;
        this.head = 0;
      } else {
        this.head = from + count;
      }
      if (filled === n) break;
    }
    this.chunks.splice(0, used);
    return out;
  }

  private static checkLimit(frameBytesMax: number): void {
    assert(
      Number.isInteger(frameBytesMax) && frameBytesMax >= 0 && frameBytesMax <= FRAME_PAYLOAD_BYTES_LIMIT,
      `frameBytesMax ${frameBytesMax} is not a u32`,
    );
  }
}
