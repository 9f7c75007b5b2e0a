/**
 * The synced mark (`synced-mark`): an index through which the log's entries were durable on this
 * disk. Entries this node made durable it may have acknowledged (to a leader, or, alone, to its
 * writers once applied), so a log that opens shorter than its mark lost synced records: the
 * newest segment cut short or zeroed by a fault or a hand, which otherwise looks exactly like
 * the torn tail a crash leaves behind. The node then must not vote from that log
 * (group-setup.ts: it re-syncs from the others as after any lost local state).
 *
 * The mark is a lower bound, never ahead of the disk: it is written after the appends it covers
 * are durable, at most every `syncedMarkIntervalMs` (file-log-options.ts) and at close, so it
 * costs no write on the append path; and it comes down, durably, before a truncation (a Raft
 * conflict, a snapshot that replaces the whole log) removes entries below it. Entries synced
 * within the last interval before a fault are not covered.
 *
 * Written in place, two slots in separate 512-byte sectors, alternating: a write torn by a power
 * loss damages one slot, and the other still holds the previous mark. Each slot, little-endian,
 * 28 bytes:
 *   u32 magic 'HQSM' | u16 version | u16 reserved (0) | u32×2 sequence | u32×2 index | u32 CRC-32
 * The valid slot with the higher sequence is the mark; no valid slot (or no file) is 0: not known.
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { PRIVATE_FILE_MODE } from '../lib/file-modes.js';
import { readFileOrNull, readU53, writeU53 } from './atomic-file.js';

export const SYNCED_MARK_FILE = 'synced-mark';
const MAGIC = 0x4d535148; // 'HQSM'
const VERSION = 1;
const SLOT_BYTES = 28;
const SLOT_STRIDE = 512;

export function encodeSyncedMarkSlot(sequence: number, index: number): Buffer {
  const b = Buffer.alloc(SLOT_BYTES);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt16LE(VERSION, 4);
  writeU53(b, 8, sequence);
  writeU53(b, 16, index);
  b.writeUInt32LE(crc32(b.subarray(0, SLOT_BYTES - 4)), SLOT_BYTES - 4);
  return b;
}

/** A slot's sequence and index, or null when it does not check out (never written, torn). */
function decodeSlot(b: Buffer, at: number): { sequence: number; index: number } | null {
  if (b.length < at + SLOT_BYTES) return null;
  const s = b.subarray(at, at + SLOT_BYTES);
  if (s.readUInt32LE(SLOT_BYTES - 4) !== crc32(s.subarray(0, SLOT_BYTES - 4))) return null;
  if (s.readUInt32LE(0) !== MAGIC || s.readUInt16LE(4) !== VERSION) return null;
  const sequence = readU53(s, 8);
  const index = readU53(s, 16);
  return sequence === null || index === null ? null : { sequence, index };
}

/** The mark in the file's bytes: the valid slot with the higher sequence, else 0. */
export function decodeSyncedMark(b: Buffer): { readonly sequence: number; readonly index: number } {
  const a = decodeSlot(b, 0);
  const c = decodeSlot(b, SLOT_STRIDE);
  if (a === null && c === null) return { sequence: 0, index: 0 };
  if (a === null) return c!;
  if (c === null) return a;
  return a.sequence >= c.sequence ? a : c;
}

export async function readSyncedMarkFile(dir: string): Promise<{ sequence: number; index: number }> {
  const b = await readFileOrNull(join(dir, SYNCED_MARK_FILE));
  return b === null ? { sequence: 0, index: 0 } : decodeSyncedMark(b);
}

/**
 * The mark's writer: one file handle, opened at the first write (with O_DSYNC where the platform
 * has it, else each write is followed by fdatasync). Writes are not concurrent: the caller
 * chains them.
 */
export class SyncedMarkWriter {
  private fh: FileHandle | null = null;
  private sequence: number;

  constructor(
    private readonly dir: string,
    initial: { readonly sequence: number },
  ) {
    this.sequence = initial.sequence;
  }

  /** Makes `index` the mark, durably (in the slot the previous write did not use). */
  async write(index: number): Promise<void> {
    this.fh ??= await open(
      join(this.dir, SYNCED_MARK_FILE),
      constants.O_RDWR | constants.O_CREAT | (constants.O_DSYNC ?? 0),
      PRIVATE_FILE_MODE,
    );
    this.sequence++;
    const slot = encodeSyncedMarkSlot(this.sequence, index);
    const at = (this.sequence % 2) * SLOT_STRIDE;
    const { bytesWritten } = await this.fh.write(slot, 0, slot.length, at);
    if (bytesWritten !== slot.length)
      throw new Error(`short write of the synced mark: ${bytesWritten} bytes`);
    if (constants.O_DSYNC === undefined) await this.fh.datasync();
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }
}
