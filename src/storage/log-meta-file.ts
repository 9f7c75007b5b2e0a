/**
 * The log meta file (`log-meta`): the purge point (the snapshot boundary: last purged index and
 * its term), the segment floor (every segment with a lower sequence number is garbage) and the
 * segment high-water mark (the newest segment the log holds: a lower newest one at open means
 * the newest segments were lost, with entries that were acknowledged). Replaced atomically
 * (atomic-file.ts); renaming it is the single step that commits a purge, so a crash in the
 * middle of deleting segments leaves nothing ambiguous behind.
 *
 * Layout, little-endian, 44 bytes (version 2):
 *   u32 magic 'HQLM' | u16 version | u16 reserved (0) | u32×2 purged index | u32×2 purged term |
 *   u32×2 segment floor | u32×2 segment high-water mark | u32 CRC-32 of the bytes before it
 * Version 1 (36 bytes, no high-water mark) is read as a mark of 0: not known, not checked.
 */
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { readFileOrNull, readU53, writeFileAtomic, writeU53 } from './atomic-file.js';
import { LogCorruptionError } from './storage-errors.js';

export const LOG_META_FILE = 'log-meta';
const MAGIC = 0x4d4c5148; // 'HQLM'
const VERSION = 2;
const BYTES = 44;
/** Files written before the high-water mark. */
const V1_BYTES = 36;

export interface LogMeta {
  readonly purgedIndex: number;
  readonly purgedTerm: number;
  readonly segmentSeqFloor: number;
  /**
   * The sequence number of the newest segment records were written to, raised at each roll-over
   * once the new segment is durable and lowered before a truncation deletes segments; 0 when
   * not known (a new log, or a file of version 1). Below the floor it says nothing (all purged).
   */
  readonly segmentSeqHigh: number;
}

export const EMPTY_LOG_META: LogMeta = {
  purgedIndex: 0,
  purgedTerm: 0,
  segmentSeqFloor: 0,
  segmentSeqHigh: 0,
};

export function encodeLogMeta(m: LogMeta): Buffer {
  const b = Buffer.alloc(BYTES);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt16LE(VERSION, 4);
  writeU53(b, 8, m.purgedIndex);
  writeU53(b, 16, m.purgedTerm);
  writeU53(b, 24, m.segmentSeqFloor);
  writeU53(b, 32, m.segmentSeqHigh);
  b.writeUInt32LE(crc32(b.subarray(0, BYTES - 4)), BYTES - 4);
  return b;
}

export function decodeLogMeta(b: Buffer): LogMeta {
  const bad = (reason: string, offset = 0) => new LogCorruptionError(LOG_META_FILE, offset, reason);
  if (b.length !== BYTES && b.length !== V1_BYTES) throw bad(`size ${b.length}, expected ${BYTES}`);
  const n = b.length;
  if (b.readUInt32LE(n - 4) !== crc32(b.subarray(0, n - 4))) throw bad('checksum mismatch', n - 4);
  if (b.readUInt32LE(0) !== MAGIC) throw bad('bad magic');
  const version = b.readUInt16LE(4);
  if (version !== VERSION && version !== 1) throw bad(`unsupported version ${version}`, 4);
  if ((version === 1) !== (n === V1_BYTES)) throw bad(`version ${version} in a file of ${n} bytes`, 4);
  const purgedIndex = readU53(b, 8);
  const purgedTerm = readU53(b, 16);
  const segmentSeqFloor = readU53(b, 24);
  const segmentSeqHigh = version === 1 ? 0 : readU53(b, 32);
  if (purgedIndex === null || purgedTerm === null || segmentSeqFloor === null || segmentSeqHigh === null)
    throw bad('integer out of range', 8);
  return { purgedIndex, purgedTerm, segmentSeqFloor, segmentSeqHigh };
}

export async function readLogMetaFile(dir: string): Promise<LogMeta> {
  const b = await readFileOrNull(join(dir, LOG_META_FILE));
  return b === null ? EMPTY_LOG_META : decodeLogMeta(b);
}

export async function writeLogMetaFile(dir: string, m: LogMeta): Promise<void> {
  await writeFileAtomic(dir, LOG_META_FILE, encodeLogMeta(m));
}
