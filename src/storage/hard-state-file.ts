/**
 * The hard state file (`hard-state`): term, vote and commit, replaced atomically
 * (atomic-file.ts) before any vote or acknowledgement that depends on it is sent.
 *
 * Layout, little-endian, 32 bytes:
 *   u32 magic 'HQHS' | u16 version | u16 flags (bit 0: vote present) |
 *   u32 term low | u32 term high | u32 vote | u32 commit low | u32 commit high | u32 CRC-32 of bytes 0..27
 */
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { assert } from '../lib/assert.js';
import type { HardState, LogIndex, NodeId, Term } from '../raft/types.js';
import { readFileOrNull, readU53, writeFileAtomic, writeU53 } from './atomic-file.js';
import { LogCorruptionError } from './storage-errors.js';

export const HARD_STATE_FILE = 'hard-state';
const MAGIC = 0x53485148; // 'HQHS'
const VERSION = 1;
const BYTES = 32;
const U32_LIMIT = 2 ** 32;

export function encodeHardState(hs: HardState): Buffer {
  const b = Buffer.alloc(BYTES);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt16LE(VERSION, 4);
  b.writeUInt16LE(hs.vote === null ? 0 : 1, 6);
  writeU53(b, 8, hs.term);
  assert(
    hs.vote === null || (Number.isInteger(hs.vote) && hs.vote >= 0 && hs.vote < U32_LIMIT),
    'vote is not a u32',
  );
  b.writeUInt32LE(hs.vote ?? 0, 16);
  writeU53(b, 20, hs.commit);
  b.writeUInt32LE(crc32(b.subarray(0, BYTES - 4)), BYTES - 4);
  return b;
}

/** Decodes the file content; a file that fails any check is corruption (it was written atomically). */
export function decodeHardState(b: Buffer): HardState {
  const bad = (reason: string, offset = 0) => new LogCorruptionError(HARD_STATE_FILE, offset, reason);
  if (b.length !== BYTES) throw bad(`size ${b.length}, expected ${BYTES}`);
  if (b.readUInt32LE(BYTES - 4) !== crc32(b.subarray(0, BYTES - 4)))
    throw bad('checksum mismatch', BYTES - 4);
  if (b.readUInt32LE(0) !== MAGIC) throw bad('bad magic');
  if (b.readUInt16LE(4) !== VERSION) throw bad(`unsupported version ${b.readUInt16LE(4)}`, 4);
  const flags = b.readUInt16LE(6);
  if (flags > 1) throw bad(`unknown flags ${flags}`, 6);
  const term = readU53(b, 8);
  const commit = readU53(b, 20);
  if (term === null) throw bad('term out of range', 8);
  if (commit === null) throw bad('commit out of range', 20);
  return {
    term: term as Term,
    vote: flags === 1 ? (b.readUInt32LE(16) as NodeId) : null,
    commit: commit as LogIndex,
  };
}

export async function readHardStateFile(dir: string): Promise<HardState | null> {
  const b = await readFileOrNull(join(dir, HARD_STATE_FILE));
  return b === null ? null : decodeHardState(b);
}

export async function writeHardStateFile(dir: string, hs: HardState): Promise<void> {
  await writeFileAtomic(dir, HARD_STATE_FILE, encodeHardState(hs));
}
