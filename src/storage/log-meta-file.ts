/**
 * The log meta file (`log-meta`): the purge point (the snapshot boundary: last purged index and
 * its term) and the segment floor (every segment with a lower sequence number is garbage).
 * Replaced atomically (atomic-file.ts); renaming it is the single step that commits a purge,
 * so a crash in the middle of deleting segments leaves nothing ambiguous behind.
 *
 * Layout, little-endian, 36 bytes:
 *   u32 magic 'HQLM' | u16 version | u16 reserved (0) | u32×2 purged index | u32×2 purged term |
 *   u32×2 segment floor | u32 CRC-32 of bytes 0..31
 */
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { readFileOrNull, readU53, writeFileAtomic, writeU53 } from './atomic-file.js';
import { LogCorruptionError } from './storage-errors.js';

export const LOG_META_FILE = 'log-meta';
const MAGIC = 0x4d4c5148; // 'HQLM'
const VERSION = 1;
const BYTES = 36;

export interface LogMeta {
  readonly purgedIndex: number;
  readonly purgedTerm: number;
  readonly segmentSeqFloor: number;
}

export const EMPTY_LOG_META: LogMeta = { purgedIndex: 0, purgedTerm: 0, segmentSeqFloor: 0 };

export function encodeLogMeta(m: LogMeta): Buffer {
  const b = Buffer.alloc(BYTES);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt16LE(VERSION, 4);
  writeU53(b, 8, m.purgedIndex);
  writeU53(b, 16, m.purgedTerm);
  writeU53(b, 24, m.segmentSeqFloor);
  b.writeUInt32LE(crc32(b.subarray(0, BYTES - 4)), BYTES - 4);
  return b;
}

export function decodeLogMeta(b: Buffer): LogMeta {
  const bad = (reason: string, offset = 0) => new LogCorruptionError(LOG_META_FILE, offset, reason);
  if (b.length !== BYTES) throw bad(`size ${b.length}, expected ${BYTES}`);
  if (b.readUInt32LE(BYTES - 4) !== crc32(b.subarray(0, BYTES - 4)))
    throw bad('checksum mismatch', BYTES - 4);
  if (b.readUInt32LE(0) !== MAGIC) throw bad('bad magic');
  if (b.readUInt16LE(4) !== VERSION) throw bad(`unsupported version ${b.readUInt16LE(4)}`, 4);
  const purgedIndex = readU53(b, 8);
  const purgedTerm = readU53(b, 16);
  const segmentSeqFloor = readU53(b, 24);
  if (purgedIndex === null || purgedTerm === null || segmentSeqFloor === null)
    throw bad('integer out of range', 8);
  return { purgedIndex, purgedTerm, segmentSeqFloor };
}

export async function readLogMetaFile(dir: string): Promise<LogMeta> {
  const b = await readFileOrNull(join(dir, LOG_META_FILE));
  return b === null ? EMPTY_LOG_META : decodeLogMeta(b);
}

export async function writeLogMetaFile(dir: string, m: LogMeta): Promise<void> {
  await writeFileAtomic(dir, LOG_META_FILE, encodeLogMeta(m));
}
