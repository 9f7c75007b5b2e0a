/**
 * File handling of segments: preparing the next segment ahead of time, and a bounded pool of
 * read descriptors for the synchronous `entries()` path.
 */
import { closeSync, openSync } from 'node:fs';
import { type FileHandle, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { assert } from '../lib/assert.js';
import { PRIVATE_FILE_MODE } from '../lib/file-modes.js';
import { TEMP_SUFFIX } from './atomic-file.js';
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES, segmentFileName } from './segment-format.js';

const ZERO_CHUNK_BYTES = 1024 * 1024;
let zeroChunk: Buffer | null = null;

/** A fully preallocated segment under a temporary name, ready to be renamed into place. */
export interface PreparedSegment {
  readonly seq: number;
  readonly tempPath: string;
  readonly fh: FileHandle;
}

/**
 * Creates segment `seq` as a temporary file: header, then zeros up to `segmentBytesMax`,
 * fdatasynced. Writing real zeros (not ftruncate, which leaves a hole) allocates the blocks now,
 * so the durable write of a later append has no allocation or size change to persist.
 */
export async function prepareSegment(
  dir: string,
  seq: number,
  segmentBytesMax: number,
): Promise<PreparedSegment> {
  const tempPath = join(dir, segmentFileName(seq) + TEMP_SUFFIX);
  const fh = await open(tempPath, 'w+', PRIVATE_FILE_MODE);
  try {
    const header = encodeSegmentHeader(seq);
    await writeFully(fh, header, 0);
    zeroChunk ??= Buffer.alloc(ZERO_CHUNK_BYTES);
    for (let at = SEGMENT_HEADER_BYTES; at < segmentBytesMax; at += ZERO_CHUNK_BYTES) {
      await writeFully(fh, zeroChunk.subarray(0, Math.min(ZERO_CHUNK_BYTES, segmentBytesMax - at)), at);
    }
    await fh.datasync();
    return { seq, tempPath, fh };
  } catch (err) {
    await fh.close();
    await unlink(tempPath).catch(() => undefined);
    throw err;
  }
}

/** Writes all of `bytes` at `position`, continuing after short writes. */
export async function writeFully(fh: FileHandle, bytes: Buffer, position: number): Promise<void> {
  let done = 0;
  // Bounded: every round writes at least one byte or throws.
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done);
    assert(bytesWritten > 0, 'write made no progress');
    done += bytesWritten;
  }
}

/** Read-only descriptors of segment files, at most `max` open, least recently used closed first. */
export class ReadFdPool {
  private readonly fds = new Map<number, number>();

  constructor(
    private readonly dir: string,
    private readonly max: number,
  ) {}

  get(seq: number): number {
    const fd = this.fds.get(seq);
    if (fd !== undefined) {
      this.fds.delete(seq);
      this.fds.set(seq, fd);
      return fd;
    }
    const opened = openSync(join(this.dir, segmentFileName(seq)), 'r');
    this.fds.set(seq, opened);
    if (this.fds.size > this.max) {
      const [oldest, oldestFd] = this.fds.entries().next().value as [number, number];
      this.fds.delete(oldest);
      closeSync(oldestFd);
    }
    return opened;
  }

  /** Before a segment file is deleted or truncated away. */
  close(seq: number): void {
    const fd = this.fds.get(seq);
    if (fd === undefined) return;
    this.fds.delete(seq);
    closeSync(fd);
  }

  closeAll(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
