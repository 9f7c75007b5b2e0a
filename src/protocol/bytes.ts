/**
 * Bounds-checked little-endian readers and writers for the wire codecs. The reader turns every
 * short read or out-of-range value into a `ProtocolError('malformed')`, so a decoder built on it
 * cannot throw a RangeError on hostile input. Integers above 32 bits (terms, indexes) travel as
 * two u32 words (low, high) and must stay below 2^53, like the log store's entry codec.
 */
import { assert } from '../lib/assert.js';
import { ProtocolError } from './protocol-error.js';

const U32_LIMIT = 2 ** 32;
/** The high word of any safe integer is at most 2^21 - 1. */
const U53_HIGH_MAX = 2 ** 21 - 1;

export class ByteReader {
  private readonly view: DataView;
  private at = 0;

  /** `what` names the structure in error messages ("raft message", "handshake frame"). */
  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get offset(): number {
    return this.at;
  }

  get remaining(): number {
    return this.bytes.byteLength - this.at;
  }

  u8(field: string): number {
    this.need(1, field);
    const v = this.view.getUint8(this.at);
    this.at += 1;
    return v;
  }

  u16(field: string): number {
    this.need(2, field);
    const v = this.view.getUint16(this.at, true);
    this.at += 2;
    return v;
  }

  u32(field: string): number {
    this.need(4, field);
    const v = this.view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }

  u53(field: string): number {
    this.need(8, field);
    const low = this.view.getUint32(this.at, true);
    const high = this.view.getUint32(this.at + 4, true);
    if (high > U53_HIGH_MAX) this.fail(`${field} is not below 2^53`);
    this.at += 8;
    return high * U32_LIMIT + low;
  }

  /** Exactly 0 or 1: any other byte is malformed, which keeps the encoding canonical. */
  bool(field: string): boolean {
    const v = this.u8(field);
    if (v > 1) this.fail(`${field} is ${v}, not a boolean`);
    return v === 1;
  }

  /** A view of the next `n` bytes (no copy). */
  bytesView(n: number, field: string): Uint8Array {
    this.need(n, field);
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  /** A view of everything left (no copy). */
  rest(): Uint8Array {
    const out = this.bytes.subarray(this.at);
    this.at = this.bytes.byteLength;
    return out;
  }

  /** UTF-8 text with a u16 length; invalid UTF-8 is malformed rather than silently replaced. */
  text(field: string, bytesMax: number): string {
    const n = this.u16(`${field} length`);
    if (n > bytesMax) this.fail(`${field} of ${n} bytes, longer than ${bytesMax}`);
    const raw = this.bytesView(n, field);
    try {
      return utf8Strict.decode(raw);
    } catch (err) {
      return this.fail(`${field} is not valid UTF-8`, err);
    }
  }

  /** Rejects trailing bytes: every encoding is exact, so one value has one length. */
  end(): void {
    if (this.at !== this.bytes.byteLength) this.fail(`${this.remaining} trailing bytes`);
  }

  fail(reason: string, cause?: unknown): never {
    throw new ProtocolError('malformed', `${this.what} at byte ${this.at}: ${reason}`, cause);
  }

  private need(n: number, field: string): void {
    if (this.at + n > this.bytes.byteLength) {
      this.fail(`truncated ${field}: need ${n} bytes, ${this.remaining} left`);
    }
  }
}

// ignoreBOM keeps a leading U+FEFF in the text, so decode-then-encode gives back the same bytes.
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8 = new TextEncoder();

/** Writes into a buffer sized in advance; overrunning it is a programmer error. */
export class ByteWriter {
  private readonly view: DataView;
  private at: number;

  constructor(
    private readonly target: Uint8Array,
    offset = 0,
  ) {
    this.view = new DataView(target.buffer, target.byteOffset, target.byteLength);
    this.at = offset;
  }

  get offset(): number {
    return this.at;
  }

  u8(v: number): void {
    assert(Number.isInteger(v) && v >= 0 && v < 256, `u8 out of range: ${v}`);
    this.view.setUint8(this.at, v);
    this.at += 1;
  }

  u16(v: number): void {
    assert(Number.isInteger(v) && v >= 0 && v < 65536, `u16 out of range: ${v}`);
    this.view.setUint16(this.at, v, true);
    this.at += 2;
  }

  u32(v: number): void {
    assert(Number.isInteger(v) && v >= 0 && v < U32_LIMIT, `u32 out of range: ${v}`);
    this.view.setUint32(this.at, v, true);
    this.at += 4;
  }

  u53(v: number): void {
    assert(Number.isSafeInteger(v) && v >= 0, `u53 out of range: ${v}`);
    this.view.setUint32(this.at, v % U32_LIMIT, true);
    this.view.setUint32(this.at + 4, Math.floor(v / U32_LIMIT), true);
    this.at += 8;
  }

  bool(v: boolean): void {
    this.u8(v ? 1 : 0);
  }

  bytes(b: Uint8Array): void {
    this.target.set(b, this.at);
    this.at += b.byteLength;
  }

  /** Skips `n` bytes that another encoder fills in place (see `entry-codec`'s `encodeEntryInto`). */
  skip(n: number): void {
    this.at += n;
  }
}

/** UTF-8 bytes of `s`, cut to at most `bytesMax` bytes on a character boundary. */
export function utf8Bounded(s: string, bytesMax: number): Uint8Array {
  const out = new Uint8Array(Math.min(bytesMax, s.length * 3));
  const { written } = utf8.encodeInto(s, out);
  return out.subarray(0, written);
}
