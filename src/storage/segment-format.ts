/**
 * The on-disk format of log segments (docs/internals/storage.md), as pure functions on buffers.
 *
 * A segment file `<seq, 20 decimal digits>.seg`:
 *
 *   header (16 bytes): u32 magic 'HQLS' | u16 version | u16 header bytes | u32 seq low | u32 seq high
 *   records:           u32 payload bytes | u32 CRC-32 of the payload | payload (an encoded Entry)
 *   tail:              zeros (preallocated) or end of file
 *
 * A zero length marks the end of the records: entries always encode to at least 17 bytes, and
 * a preallocated tail reads as zeros. The checksum is CRC-32 (ISO-HDLC, `zlib.crc32`), not
 * CRC-32C: it is built into Node (>= 20.15) and fast enough at these record sizes.
 */
import { crc32 } from 'node:zlib';
import {
  decodeEntry,
  ENTRY_HEADER_BYTES,
  ENTRY_INDEX_OFFSET,
  encodedEntryBytes,
  encodeEntryInto,
} from '../protocol/entry-codec.js';
import type { Entry } from '../raft/types.js';

export const SEGMENT_MAGIC = 0x534c5148; // 'HQLS' little-endian
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER_BYTES = 16;
export const RECORD_HEADER_BYTES = 8;

const SEGMENT_NAME = /^(\d{20})\.seg$/;
const U32_LIMIT = 2 ** 32;

export function segmentFileName(seq: number): string {
  return `${String(seq).padStart(20, '0')}.seg`;
}

/** The sequence number of a segment file name, or null when `name` is not one. */
export function parseSegmentFileName(name: string): number | null {
  const m = SEGMENT_NAME.exec(name);
  if (m === null) return null;
  const seq = Number(m[1]);
  return Number.isSafeInteger(seq) ? seq : null;
}

export function encodeSegmentHeader(seq: number): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  b.writeUInt32LE(SEGMENT_MAGIC, 0);
  b.writeUInt16LE(SEGMENT_VERSION, 4);
  b.writeUInt16LE(SEGMENT_HEADER_BYTES, 6);
  b.writeUInt32LE(seq % U32_LIMIT, 8);
  b.writeUInt32LE(Math.floor(seq / U32_LIMIT), 12);
  return b;
}

/** Why the header of segment `seq` is unacceptable, or null when it is fine. */
export function checkSegmentHeader(buf: Buffer, seq: number): string | null {
  if (buf.length < SEGMENT_HEADER_BYTES) return `file of ${buf.length} bytes is shorter than the header`;
  if (buf.readUInt32LE(0) !== SEGMENT_MAGIC) return 'bad magic';
  if (buf.readUInt16LE(4) !== SEGMENT_VERSION) return `unsupported version ${buf.readUInt16LE(4)}`;
  if (buf.readUInt16LE(6) !== SEGMENT_HEADER_BYTES) return `unexpected header size ${buf.readUInt16LE(6)}`;
  const headerSeq = buf.readUInt32LE(12) * U32_LIMIT + buf.readUInt32LE(8);
  if (headerSeq !== seq) return `header says segment ${headerSeq}`;
  return null;
}

/** The record bytes of one entry: length, checksum, encoded entry. */
export function encodeRecord(e: Entry): Buffer {
  const payloadBytes = encodedEntryBytes(e);
  const rec = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payloadBytes);
  encodeEntryInto(e, rec, RECORD_HEADER_BYTES);
  rec.writeUInt32LE(payloadBytes, 0);
  rec.writeUInt32LE(crc32(rec.subarray(RECORD_HEADER_BYTES)), 4);
  return rec;
}

export type RecordRead =
  /** A record with a valid checksum that decodes; the next one starts at `next`. */
  | { readonly type: 'record'; readonly entry: Entry; readonly next: number }
  /** A zero length, or the end of the buffer exactly at a record boundary. */
  | { readonly type: 'end' }
  /** Torn or damaged: truncated header or payload, or a checksum mismatch. */
  | { readonly type: 'bad'; readonly reason: string }
  /** The checksum matches but the payload is not an entry: never the result of a torn write. */
  | { readonly type: 'invalid'; readonly reason: string };

const truncatedHeader: RecordRead = { type: 'bad', reason: 'truncated record header' };

export function readRecordAt(buf: Buffer, pos: number): RecordRead {
  const remaining = buf.length - pos;
  // A few zero bytes before the end of the file are an end marker cut short by EOF.
  if (remaining < 4) return buf.subarray(pos).every((b) => b === 0) ? { type: 'end' } : truncatedHeader;
  const payloadBytes = buf.readUInt32LE(pos);
  if (payloadBytes === 0) return { type: 'end' };
  if (remaining < RECORD_HEADER_BYTES) return truncatedHeader;
  const start = pos + RECORD_HEADER_BYTES;
  if (payloadBytes > buf.length - start) {
    return { type: 'bad', reason: `record length ${payloadBytes} runs past the end of the file` };
  }
  const payload = buf.subarray(start, start + payloadBytes);
  if (crc32(payload) !== buf.readUInt32LE(pos + 4)) return { type: 'bad', reason: 'checksum mismatch' };
  try {
    return { type: 'record', entry: decodeEntry(payload), next: start + payloadBytes };
  } catch (err) {
    return { type: 'invalid', reason: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Searches `buf` after `from` for a well-formed record holding an entry with index >= indexMin.
 * Finding one proves that the damage at `from` is not a torn tail: entries were written after
 * it. Each byte offset is pre-filtered with cheap checks (kind byte, length, index) before a
 * checksum is computed, so a scan of a zero or garbage tail stays linear.
 */
export function findRecordAfter(buf: Buffer, from: number, indexMin: number): number | null {
  const last = buf.length - RECORD_HEADER_BYTES - ENTRY_HEADER_BYTES;
  for (let p = from + 1; p <= last; p++) {
    const kind = buf[p + RECORD_HEADER_BYTES]!;
    if (kind < 1 || kind > 3) continue;
    const payloadBytes = buf.readUInt32LE(p);
    if (payloadBytes < ENTRY_HEADER_BYTES || payloadBytes > buf.length - p - RECORD_HEADER_BYTES) continue;
    const indexAt = p + RECORD_HEADER_BYTES + ENTRY_INDEX_OFFSET;
    const index = buf.readUInt32LE(indexAt + 4) * U32_LIMIT + buf.readUInt32LE(indexAt);
    if (index < indexMin) continue;
    const r = readRecordAt(buf, p);
    if (r.type === 'record') return p;
  }
  return null;
}

const ZERO_PROBE_BYTES = 64 * 1024;
const zeroProbe = Buffer.alloc(ZERO_PROBE_BYTES);

/**
 * The offset of the last non-zero byte in [from, buf.length), or -1 when all are zero. Runs of
 * zeros (a preallocated tail) are skipped a chunk at a time with a native compare.
 */
export function lastNonZeroByte(buf: Buffer, from: number): number {
  let end = buf.length;
  while (end - from >= ZERO_PROBE_BYTES && buf.subarray(end - ZERO_PROBE_BYTES, end).equals(zeroProbe)) {
    end -= ZERO_PROBE_BYTES;
  }
  for (let p = end - 1; p >= from; p--) if (buf[p] !== 0) return p;
  return -1;
}
