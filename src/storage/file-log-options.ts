/**
 * Limits of the file log store, each validated at open with a clear error (HQL_INVALID_CONFIG).
 */
import { ENTRY_BYTES_MAX_DEFAULT } from './log-store.js';
import { RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES } from './segment-format.js';
import { invalidConfigError } from './storage-errors.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export interface FileLogStoreOptions {
  /**
   * Size of one segment file. Segments are preallocated (zero-filled) at this size so a durable
   * append (O_DSYNC) does not also have to persist a file size change; a purge
   * deletes whole segments, so smaller segments free disk sooner. Default 64 MiB.
   */
  readonly segmentBytesMax?: number;
  /** Largest encoded entry accepted; bigger ones are rejected with HQL_ENTRY_TOO_LARGE. */
  readonly entryBytesMax?: number;
  /**
   * Recent entries kept in memory for `entries()` without a disk read. Default 8 MiB: the Raft
   * core holds entries until they are applied and asks for older ones only for a peer that lags;
   * the page cache serves the rest.
   */
  readonly cacheBytesMax?: number;
  /** Most bytes written by one group commit (one durable write). Default 8 MiB. */
  readonly writeBatchBytesMax?: number;
  /** Bytes of appends waiting for the disk; beyond it append rejects with HQL_OVERLOADED. Default 256 MiB. */
  readonly queueBytesMax?: number;
  /**
   * How often at most the synced mark (synced-mark-file.ts) is brought up to the durable end of
   * the log, off the append path; synced entries newer than that are not covered by the check at
   * open. Default 100 ms.
   */
  readonly syncedMarkIntervalMs?: number;
}

export interface FileLogLimits {
  readonly segmentBytesMax: number;
  readonly entryBytesMax: number;
  readonly cacheBytesMax: number;
  readonly writeBatchBytesMax: number;
  readonly queueBytesMax: number;
  readonly syncedMarkIntervalMs: number;
}

export const SEGMENT_BYTES_MIN = 4 * KiB;
/** Offsets stay small integers, and one segment is read into memory whole at recovery. */
export const SEGMENT_BYTES_LIMIT = GiB;

export function fileLogLimits(o: FileLogStoreOptions): FileLogLimits {
  const segmentBytesMax = o.segmentBytesMax ?? 64 * MiB;
  checkInteger('segmentBytesMax', segmentBytesMax, SEGMENT_BYTES_MIN, SEGMENT_BYTES_LIMIT);
  const entryRoom = segmentBytesMax - SEGMENT_HEADER_BYTES - RECORD_HEADER_BYTES;
  const entryBytesMax = o.entryBytesMax ?? Math.min(ENTRY_BYTES_MAX_DEFAULT, entryRoom);
  if (o.entryBytesMax !== undefined && o.entryBytesMax > entryRoom) {
    throw invalidConfigError(
      `entryBytesMax ${o.entryBytesMax} does not fit in a segment of segmentBytesMax ${segmentBytesMax} ` +
        `(at most ${entryRoom}: one entry must fit in one segment)`,
    );
  }
  checkInteger('entryBytesMax', entryBytesMax, 64, entryRoom);
  const cacheBytesMax = o.cacheBytesMax ?? 8 * MiB;
  checkInteger('cacheBytesMax', cacheBytesMax, 0, 64 * GiB);
  const writeBatchBytesMax = o.writeBatchBytesMax ?? 8 * MiB;
  checkInteger('writeBatchBytesMax', writeBatchBytesMax, 4 * KiB, GiB);
  const queueBytesMax = o.queueBytesMax ?? Math.max(256 * MiB, 2 * entryBytesMax);
  checkInteger('queueBytesMax', queueBytesMax, entryBytesMax + RECORD_HEADER_BYTES, 64 * GiB);
  const syncedMarkIntervalMs = o.syncedMarkIntervalMs ?? 100;
  checkInteger('syncedMarkIntervalMs', syncedMarkIntervalMs, 1, 60_000);
  return {
    segmentBytesMax,
    entryBytesMax,
    cacheBytesMax,
    writeBatchBytesMax,
    queueBytesMax,
    syncedMarkIntervalMs,
  };
}

function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw invalidConfigError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}
