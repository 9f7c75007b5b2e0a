/**
 * Opening a log directory after a clean or unclean shutdown (docs/internals/storage.md,
 * "Recovery"). Reads every segment, checks each record, and decides for the first record that
 * does not check out:
 *
 * - a torn tail (an append cut short by a crash): only in the last segment, and nothing that
 *   parses as a later entry follows it. Those bytes were never acknowledged (the append had not
 *   been fsynced), so they are overwritten with zeros and reported;
 * - corruption: anything else (a bad record followed by valid ones, damage in a segment that
 *   has a successor, a gap in the indices). Thrown as `LogCorruptionError` naming the file and
 *   offset; entries are never skipped silently.
 *
 * Also deletes what a crash can leave behind: temporary files and segments below the floor
 * recorded in the meta file (a purge that was committed but not finished).
 */
import { open, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { IndexDeque } from '../lib/index-deque.js';
import { encodedEntryBytes } from '../protocol/entry-codec.js';
import type { Entry, HardState } from '../raft/types.js';
import { fsyncDir, TEMP_SUFFIX } from './atomic-file.js';
import { readHardStateFile } from './hard-state-file.js';
import { type LogMeta, readLogMetaFile } from './log-meta-file.js';
import {
  checkSegmentHeader,
  findRecordAfter,
  lastNonZeroByte,
  parseSegmentFileName,
  RECORD_HEADER_BYTES,
  readRecordAt,
  SEGMENT_HEADER_BYTES,
  segmentFileName,
} from './segment-format.js';
import { LogCorruptionError } from './storage-errors.js';
import { readSyncedMarkFile } from './synced-mark-file.js';

export interface LogRecoveryReport {
  /** Segment files holding the log after recovery. */
  readonly segmentCount: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  /** The torn last record(s) cut off, or null when the log ended cleanly. */
  readonly tornTail: { readonly file: string; readonly offset: number; readonly bytes: number } | null;
  /** Leftovers of an interrupted operation that were deleted (temporary files, purged segments). */
  readonly removedFiles: readonly string[];
  /**
   * The synced mark (synced-mark-file.ts): entries through it were durable in this log; 0 when
   * not known. Above the log's end (`lastIndex`, or the purge point of an empty log), synced
   * records were lost.
   */
  readonly syncedMark: number;
}

/** Where the record of one live entry sits on disk. */
export interface RecordLocations {
  /** The index of the first location held. */
  first: number;
  readonly seq: IndexDeque<number>;
  readonly offset: IndexDeque<number>;
  /** Record bytes, header included. */
  readonly bytes: IndexDeque<number>;
}

export interface RecoveredLog {
  readonly meta: LogMeta;
  readonly hardState: HardState | null;
  /** Sequence numbers of the segments, ascending; the last one is where appends continue. */
  readonly segmentSeqs: number[];
  /** The end of the records in the last segment. */
  readonly lastWritePos: number;
  /** Terms of the live entries purgedIndex + 1, … */
  readonly terms: IndexDeque<number>;
  readonly locations: RecordLocations;
  /** The newest live entries, up to cacheBytesMax of encoded bytes (a suffix of the log). */
  readonly recent: IndexDeque<Entry>;
  readonly recentBytes: number;
  /** The synced mark file's sequence (its writer continues from it). */
  readonly syncedMarkSequence: number;
  readonly report: LogRecoveryReport;
}

export async function recoverLog(dir: string, cacheBytesMax: number): Promise<RecoveredLog> {
  const names = await readdir(dir);
  const removedFiles: string[] = [];
  for (const name of names) {
    if (!name.endsWith(TEMP_SUFFIX)) continue;
    await unlink(join(dir, name));
    removedFiles.push(name);
  }
  const meta = await readLogMetaFile(dir);
  const hardState = await readHardStateFile(dir);
  const mark = await readSyncedMarkFile(dir);
  const allSeqs = names
    .map(parseSegmentFileName)
    .filter((s): s is number => s !== null)
    .sort((a, b) => a - b);
  const segmentSeqs: number[] = [];
  for (const seq of allSeqs) {
    if (seq >= meta.segmentSeqFloor) {
      segmentSeqs.push(seq);
      continue;
    }
    await unlink(join(dir, segmentFileName(seq)));
    removedFiles.push(segmentFileName(seq));
  }
  if (removedFiles.length > 0) await fsyncDir(dir);
  // The newest segment the log wrote is gone (deleted, a restore of an older copy of the
  // directory): it held entries that were durable here, so acknowledged to the leader and
  // perhaps applied. Found here, as any damage: the node re-syncs from the others
  // (group-setup.ts, openLogOrMoveAside) and never votes from a log missing what it promised.
  const high = meta.segmentSeqHigh;
  if (high > 0 && high >= meta.segmentSeqFloor && (segmentSeqs.at(-1) ?? 0) < high) {
    throw new LogCorruptionError(
      segmentFileName(high),
      0,
      `the newest segment of the log is missing (the log wrote up to segment ${high}, the newest here is ${segmentSeqs.length === 0 ? 'none' : segmentSeqs.at(-1)}): entries this node acknowledged are gone`,
    );
  }

  const scan = new LogScan(meta, cacheBytesMax);
  let tornTail: LogRecoveryReport['tornTail'] = null;
  let lastWritePos = 0;
  for (let i = 0; i < segmentSeqs.length; i++) {
    const seq = segmentSeqs[i]!;
    const result = await scan.segment(dir, seq, i === segmentSeqs.length - 1);
    lastWritePos = result.writePos;
    if (result.tornBytes > 0) {
      tornTail = { file: segmentFileName(seq), offset: result.writePos, bytes: result.tornBytes };
      await zeroRange(join(dir, segmentFileName(seq)), result.writePos, result.tornBytes);
    }
  }
  const firstIndex = meta.purgedIndex + 1;
  return {
    meta,
    hardState,
    segmentSeqs,
    lastWritePos,
    terms: scan.terms,
    locations: scan.locations,
    recent: scan.recent,
    recentBytes: scan.recentBytes,
    syncedMarkSequence: mark.sequence,
    report: {
      segmentCount: segmentSeqs.length,
      firstIndex,
      lastIndex: firstIndex + scan.terms.length - 1,
      tornTail,
      removedFiles,
      syncedMark: mark.index,
    },
  };
}

/** Walks the segments in order, carrying the expected next index across them. */
class LogScan {
  readonly terms = new IndexDeque<number>();
  readonly locations: RecordLocations;
  readonly recent = new IndexDeque<Entry>();
  recentBytes = 0;
  /** The index of the last record seen (purged or live), or null before the first. */
  private prevIndex: number | null = null;

  constructor(
    private readonly meta: LogMeta,
    private readonly cacheBytesMax: number,
  ) {
    this.locations = {
      first: meta.purgedIndex + 1,
      seq: new IndexDeque(),
      offset: new IndexDeque(),
      bytes: new IndexDeque(),
    };
  }

  async segment(dir: string, seq: number, isLast: boolean): Promise<{ writePos: number; tornBytes: number }> {
    const name = segmentFileName(seq);
    const buf = await readFile(join(dir, name));
    const headerProblem = checkSegmentHeader(buf, seq);
    if (headerProblem !== null) throw new LogCorruptionError(name, 0, headerProblem);
    let pos = SEGMENT_HEADER_BYTES;
    let stopReason = 'data after the end marker';
    // Bounded: every record advances pos by more than RECORD_HEADER_BYTES.
    for (;;) {
      const r = readRecordAt(buf, pos);
      if (r.type === 'end') break;
      if (r.type === 'bad') {
        stopReason = r.reason;
        break;
      }
      if (r.type === 'invalid') throw new LogCorruptionError(name, pos, r.reason);
      this.accept(name, seq, pos, r.next - pos, r.entry);
      pos = r.next;
    }
    const lastNonZero = lastNonZeroByte(buf, pos);
    if (lastNonZero < 0) return { writePos: pos, tornBytes: 0 };
    // Segments are fsynced before the next one is written, so only the last can be torn.
    if (!isLast) throw new LogCorruptionError(name, pos, `${stopReason} in a segment that has a successor`);
    const later = findRecordAfter(buf, pos, this.prevIndex === null ? 0 : this.prevIndex + 1);
    if (later !== null) {
      throw new LogCorruptionError(name, pos, `${stopReason}, followed by a valid record at byte ${later}`);
    }
    return { writePos: pos, tornBytes: lastNonZero + 1 - pos };
  }

  private accept(name: string, seq: number, pos: number, recordBytes: number, entry: Entry): void {
    const index = entry.index;
    if (this.prevIndex !== null && index !== this.prevIndex + 1) {
      throw new LogCorruptionError(name, pos, `entry ${index} follows entry ${this.prevIndex}`);
    }
    if (this.prevIndex === null && index > this.meta.purgedIndex + 1) {
      throw new LogCorruptionError(
        name,
        pos,
        `entries ${this.meta.purgedIndex + 1}..${index - 1} are missing`,
      );
    }
    this.prevIndex = index;
    if (index <= this.meta.purgedIndex) return;
    if (index === this.meta.purgedIndex + 1 && entry.term < this.meta.purgedTerm) {
      throw new LogCorruptionError(
        name,
        pos,
        `entry ${index} has term ${entry.term} below the purge point's`,
      );
    }
    this.terms.push(entry.term);
    this.locations.seq.push(seq);
    this.locations.offset.push(pos);
    this.locations.bytes.push(recordBytes);
    this.recent.push(entry);
    this.recentBytes += recordBytes - RECORD_HEADER_BYTES;
    while (this.recentBytes > this.cacheBytesMax && this.recent.length > 0) {
      this.recentBytes -= encodedEntryBytes(this.recent.get(0));
      this.recent.dropFront(1);
    }
  }
}

/** Overwrites a torn tail with zeros and makes that durable before any new append lands there. */
async function zeroRange(path: string, offset: number, bytes: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const zeros = Buffer.alloc(Math.min(bytes, 1024 * 1024));
    for (let done = 0; done < bytes; done += zeros.length) {
      const n = Math.min(zeros.length, bytes - done);
      await fh.write(zeros, 0, n, offset + done);
    }
    await fh.datasync();
  } finally {
    await fh.close();
  }
}
