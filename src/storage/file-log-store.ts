/**
 * The durable Raft log: segmented append-only files with checksummed records, group commit,
 * an in-memory index and a cache of recent entries. Format and crash reasoning:
 * docs/internals/storage.md.
 *
 * Two layers of state:
 * - the view (terms, cache, purge point) is what readers see; every call updates it at once,
 *   in call order;
 * - the disk (segments, record locations) is changed only by the single writer task, which
 *   replays the queued operations in the same order. Each append resolves once its records
 *   are written and durable: the active segment is open with O_DSYNC where the platform has it,
 *   so one write is one trip to the I/O thread pool instead of a write and an fdatasync (under
 *   three nodes' concurrent writes on one disk, 410 against 565 µs at the median:
 *   docs/BENCHMARKS.md, tenth round); elsewhere a write is followed by fdatasync.
 *
 * Invariants tying them together: every entry in the view below `cacheFirst` has been written
 * to disk (the cache never evicts an unwritten entry), so a cache miss can always be read back
 * from its recorded location; beyond the write position of the last segment the file holds
 * only zeros, so a stale record can never reappear after a crash.
 */

import { constants, readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { assert, assertNever } from '../lib/assert.js';
import { HiqliteError } from '../lib/errors.js';
import { PRIVATE_DIR_MODE } from '../lib/file-modes.js';
import { IndexDeque } from '../lib/index-deque.js';
import { encodedEntryBytes } from '../protocol/entry-codec.js';
import type { Entry, HardState, LogIndex, Term } from '../raft/types.js';
import { fsyncDir } from './atomic-file.js';
import { type FileLogLimits, type FileLogStoreOptions, fileLogLimits } from './file-log-options.js';
import { writeHardStateFile } from './hard-state-file.js';
import { type LogMeta, writeLogMetaFile } from './log-meta-file.js';
import {
  assertAppendable,
  assertReadable,
  closedError,
  entryTooLargeError,
  type LogStore,
  planPurge,
} from './log-store.js';
import { type PreparedSegment, prepareSegment, ReadFdPool, writeFully } from './segment-files.js';
import {
  encodeRecord,
  RECORD_HEADER_BYTES,
  readRecordAt,
  SEGMENT_HEADER_BYTES,
  segmentFileName,
} from './segment-format.js';
import { type LogRecoveryReport, type RecordLocations, recoverLog } from './segment-recovery.js';
import { ioError, LogCorruptionError } from './storage-errors.js';
import { SyncedMarkWriter } from './synced-mark-file.js';

export type { FileLogStoreOptions } from './file-log-options.js';
export type { LogRecoveryReport } from './segment-recovery.js';

/** Read descriptors kept open for `entries()` cache misses. */
const READ_FDS_MAX = 16;
/** Largest single read of `entries()` on a cache miss; longer ranges are read in pieces. */
const READ_CHUNK_BYTES_MAX = 4 * 1024 * 1024;

export interface OpenedFileLogStore {
  readonly store: FileLogStore;
  /** The hard state on disk, or null for a new directory (same as `store.loadHardState()`). */
  readonly hardState: HardState | null;
  readonly report: LogRecoveryReport;
}

/**
 * Opens (creating if needed) the log in `dir`, recovering from an unclean shutdown: a torn tail
 * is cut off and reported; corruption throws `LogCorruptionError` (HQL_CORRUPTION); invalid
 * options throw HQL_INVALID_CONFIG. Only one store may have a directory open at a time.
 */
export async function openFileLogStore(
  dir: string,
  options: FileLogStoreOptions = {},
): Promise<OpenedFileLogStore> {
  const limits = fileLogLimits(options);
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const recovered = await recoverLog(dir, limits.cacheBytesMax);
  const lastSeq = recovered.segmentSeqs.at(-1);
  const active =
    lastSeq === undefined
      ? null
      : {
          seq: lastSeq,
          fh: await openActiveSegment(join(dir, segmentFileName(lastSeq))),
          writePos: recovered.lastWritePos,
        };
  const store = new FileLogStore(dir, limits, {
    meta: recovered.meta,
    purgedIndex: recovered.meta.purgedIndex,
    purgedTerm: recovered.meta.purgedTerm,
    nextSeq: Math.max(lastSeq ?? 0, recovered.meta.segmentSeqFloor - 1) + 1,
    segmentSeqs: recovered.segmentSeqs,
    active,
    terms: recovered.terms,
    locations: recovered.locations,
    recent: recovered.recent,
    hardState: recovered.hardState,
    syncedMark: { sequence: recovered.syncedMarkSequence, index: recovered.report.syncedMark },
  });
  return { store, hardState: recovered.hardState, report: recovered.report };
}

/** Counters for benchmarks and metrics. */
export interface FileLogStats {
  /** fdatasync calls on segments (group commits). */
  readonly syncs: number;
  readonly entriesWritten: number;
  readonly bytesWritten: number;
}

interface CacheItem {
  readonly entry: Entry;
  readonly payloadBytes: number;
  /** Set by the writer once the record is in the file (readable with pread). */
  written: boolean;
}

interface Deferred {
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

type WriteOp =
  | {
      readonly type: 'append';
      /** Drop every on-disk entry from this index first (Raft conflict), or null. */
      readonly truncateFrom: number | null;
      readonly firstIndex: number;
      readonly records: readonly Buffer[];
      readonly items: readonly CacheItem[];
      readonly bytes: number;
      readonly done: Deferred;
    }
  | {
      readonly type: 'purge';
      readonly index: number;
      readonly term: number;
      readonly all: boolean;
      readonly bytes: 0;
      readonly done: Deferred;
    };

interface ActiveSegment {
  readonly seq: number;
  /** Opened by openActiveSegment: with O_DSYNC where the platform has it (SYNC_ON_WRITE). */
  readonly fh: FileHandle;
  /** End of the records; zeros (or EOF) from here on. */
  writePos: number;
}

interface InitialState {
  readonly meta: LogMeta;
  readonly purgedIndex: number;
  readonly purgedTerm: number;
  readonly nextSeq: number;
  readonly segmentSeqs: number[];
  readonly active: ActiveSegment | null;
  readonly terms: IndexDeque<number>;
  readonly locations: RecordLocations;
  readonly recent: IndexDeque<Entry>;
  readonly hardState: HardState | null;
  readonly syncedMark: { readonly sequence: number; readonly index: number };
}

export class FileLogStore implements LogStore {
  // The view.
  private purgedIndex: number;
  private purgedTerm: number;
  private readonly terms: IndexDeque<number>;
  private readonly cache = new IndexDeque<CacheItem>();
  /** Index of cache slot 0; the cache always ends at lastIndex. */
  private cacheFirst: number;
  private cacheBytes = 0;
  private hardState: HardState | null;

  // The disk, owned by the writer task.
  private readonly locations: RecordLocations;
  private readonly segmentSeqs: number[];
  private active: ActiveSegment | null;
  private nextSeq: number;
  /** What the meta file on disk says (purge point, floor, high-water mark). */
  private meta: LogMeta;
  private spare: { readonly seq: number; readonly ready: Promise<PreparedSegment> } | null = null;
  private readonly readFds: ReadFdPool;

  // The writer.
  private readonly queue: WriteOp[] = [];
  private queueBytes = 0;
  private writerTask: Promise<void> | null = null;
  private hardStateWaiters: Deferred[] = [];
  private hardStateTask: Promise<void> | null = null;
  /** Set by the first failed write: the disk state is unknown, every later write is refused. */
  private failure: HiqliteError | null = null;
  private closing: Promise<void> | null = null;
  private syncs = 0;
  private entriesWritten = 0;
  private bytesWritten = 0;

  // The synced mark (synced-mark-file.ts).
  private readonly markWriter: SyncedMarkWriter;
  /** The mark on disk, or being written (`markTask`). */
  private markIndex: number;
  /** The mark write in flight: marks are written one at a time, in order. */
  private markTask: Promise<void> | null = null;
  private markWrittenAtMs = 0;
  /** A later write of the mark, once the interval since the last one has passed. */
  private markTimer: ReturnType<typeof setTimeout> | null = null;
  /** The writer is removing entries from the disk: the mark is not raised meanwhile. */
  private cutting = false;
  /** The last entry durable on disk (the purge point when none is): what the mark may say. */
  private synced: number;

  /** Use `openFileLogStore`. */
  constructor(
    private readonly dir: string,
    private readonly limits: FileLogLimits,
    initial: InitialState,
  ) {
    this.purgedIndex = initial.purgedIndex;
    this.purgedTerm = initial.purgedTerm;
    this.terms = initial.terms;
    this.hardState = initial.hardState;
    this.locations = initial.locations;
    this.segmentSeqs = initial.segmentSeqs;
    this.active = initial.active;
    this.nextSeq = initial.nextSeq;
    this.meta = initial.meta;
    this.readFds = new ReadFdPool(dir, READ_FDS_MAX);
    this.markWriter = new SyncedMarkWriter(dir, initial.syncedMark);
    this.synced = this.locations.first + this.locations.seq.length - 1;
    // A mark above the log's end was reported at open (report.syncedMark) for the owner to
    // decide; a log that goes on from here is marked from what it holds.
    this.markIndex = Math.min(initial.syncedMark.index, this.synced);
    this.cacheFirst = this.lastIndexNumber() + 1 - initial.recent.length;
    for (let i = 0; i < initial.recent.length; i++) {
      const entry = initial.recent.get(i);
      const payloadBytes = encodedEntryBytes(entry);
      this.cache.push({ entry, payloadBytes, written: true });
      this.cacheBytes += payloadBytes;
    }
  }

  firstIndex(): LogIndex {
    this.checkOpen();
    return (this.purgedIndex + 1) as LogIndex;
  }

  lastIndex(): LogIndex {
    this.checkOpen();
    return this.lastIndexNumber() as LogIndex;
  }

  termAt(index: LogIndex): Term | undefined {
    this.checkOpen();
    if (index === this.purgedIndex) return this.purgedTerm as Term;
    const rel = index - this.purgedIndex - 1;
    if (!Number.isInteger(rel) || rel < 0 || rel >= this.terms.length) return undefined;
    return this.terms.get(rel) as Term;
  }

  entries(lo: LogIndex, hiExclusive: LogIndex, bytesMax?: number): Entry[] {
    this.checkOpen();
    assertReadable(this.purgedIndex + 1, this.lastIndexNumber(), lo, hiExclusive, bytesMax);
    const out: Entry[] = [];
    const budget = { bytes: 0, max: bytesMax ?? Number.POSITIVE_INFINITY };
    let i: number = lo;
    // Bounded: each round consumes at least one index or stops at the byte budget.
    while (i < hiExclusive) {
      if (i < this.cacheFirst) {
        const read = this.readFromDisk(i, Math.min(hiExclusive, this.cacheFirst), budget, out);
        if (read === 0) break;
        i += read;
        continue;
      }
      const item = this.cache.get(i - this.cacheFirst);
      if (out.length > 0 && budget.bytes + item.payloadBytes > budget.max) break;
      out.push(item.entry);
      budget.bytes += item.payloadBytes;
      i++;
    }
    return out;
  }

  append(entries: readonly Entry[]): Promise<void> {
    const refused = this.refusal();
    if (refused !== null) return Promise.reject(refused);
    const head = entries[0];
    if (head === undefined) return Promise.resolve();
    const payloadSizes = entries.map(encodedEntryBytes);
    for (let i = 0; i < entries.length; i++) {
      const size = payloadSizes[i]!;
      if (size > this.limits.entryBytesMax) {
        return Promise.reject(entryTooLargeError(entries[i]!.index, size, this.limits.entryBytesMax));
      }
    }
    const last = this.lastIndexNumber();
    assertAppendable(this.purgedIndex + 1, last, (i) => this.termAt(i), entries);
    // Encoded before the view changes: nothing below can fail half-way.
    const records = entries.map(encodeRecord);
    let bytes = 0;
    for (const r of records) bytes += r.length;
    if (this.queueBytes > 0 && this.queueBytes + bytes > this.limits.queueBytesMax) {
      return Promise.reject(
        new HiqliteError(
          'HQL_OVERLOADED',
          `log write queue full (${this.queueBytes} bytes waiting, queueBytesMax ${this.limits.queueBytesMax})`,
          { retryable: true },
        ),
      );
    }
    const truncateFrom = head.index <= last ? head.index : null;
    if (truncateFrom !== null) this.truncateView(truncateFrom);
    assert(this.cacheFirst + this.cache.length === head.index, 'cache does not end at the last index');
    const items: CacheItem[] = [];
    for (let i = 0; i < entries.length; i++) {
      const item: CacheItem = { entry: entries[i]!, payloadBytes: payloadSizes[i]!, written: false };
      items.push(item);
      this.terms.push(item.entry.term);
      this.cache.push(item);
      this.cacheBytes += item.payloadBytes;
    }
    return this.enqueue((done) => ({
      type: 'append',
      truncateFrom,
      firstIndex: head.index,
      records,
      items,
      bytes,
      done,
    }));
  }

  purgeTo(index: LogIndex, term: Term): Promise<void> {
    const refused = this.refusal();
    if (refused !== null) return Promise.reject(refused);
    const plan = planPurge(this.purgedIndex + 1, this.lastIndexNumber(), (i) => this.termAt(i), index, term);
    switch (plan.type) {
      case 'none':
        return Promise.resolve();
      case 'prefix': {
        const drop = index - this.purgedIndex;
        this.terms.dropFront(drop);
        const cacheDrop = Math.max(0, Math.min(this.cache.length, index + 1 - this.cacheFirst));
        for (let i = 0; i < cacheDrop; i++) this.cacheBytes -= this.cache.get(i).payloadBytes;
        this.cache.dropFront(cacheDrop);
        this.cacheFirst = Math.max(this.cacheFirst, index + 1);
        break;
      }
      case 'all':
        this.terms.clear();
        this.cache.clear();
        this.cacheBytes = 0;
        this.cacheFirst = index + 1;
        break;
      default:
        assertNever(plan, 'purge plan');
    }
    this.purgedIndex = index;
    this.purgedTerm = term;
    return this.enqueue((done) => ({ type: 'purge', index, term, all: plan.type === 'all', bytes: 0, done }));
  }

  saveHardState(hs: HardState): Promise<void> {
    const refused = this.refusal();
    if (refused !== null) return Promise.reject(refused);
    this.hardState = hs;
    return new Promise<void>((resolve, reject) => {
      this.hardStateWaiters.push({ resolve, reject });
      this.kickHardStateWriter();
    });
  }

  loadHardState(): HardState | null {
    this.checkOpen();
    return this.hardState;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  stats(): FileLogStats {
    return { syncs: this.syncs, entriesWritten: this.entriesWritten, bytesWritten: this.bytesWritten };
  }

  // ---- the view ----

  private lastIndexNumber(): number {
    return this.purgedIndex + this.terms.length;
  }

  private checkOpen(): void {
    if (this.closing !== null) throw closedError();
  }

  private refusal(): HiqliteError | null {
    if (this.closing !== null) return closedError();
    return this.failure;
  }

  /** Drops entries >= from from the view (Raft §5.3 conflict). */
  private truncateView(from: number): void {
    this.terms.truncate(from - this.purgedIndex - 1);
    if (from <= this.cacheFirst) {
      this.cache.clear();
      this.cacheBytes = 0;
      this.cacheFirst = from;
      return;
    }
    const keep = from - this.cacheFirst;
    for (let i = keep; i < this.cache.length; i++) this.cacheBytes -= this.cache.get(i).payloadBytes;
    this.cache.truncate(keep);
  }

  /** Evicts the oldest written entries while the cache is over its budget. */
  private evictCache(): void {
    let drop = 0;
    while (this.cacheBytes > this.limits.cacheBytesMax && drop < this.cache.length) {
      const item = this.cache.get(drop);
      if (!item.written) break;
      this.cacheBytes -= item.payloadBytes;
      drop++;
    }
    this.cache.dropFront(drop);
    this.cacheFirst += drop;
  }

  /**
   * Reads entries [lo, hiExclusive), all older than the cache, from the segment files: one pread
   * per segment run, each record checked again (length, checksum, index) as it is decoded.
   * Returns how many entries were appended to `out` (0 once the byte budget is used up).
   */
  private readFromDisk(
    lo: number,
    hiExclusive: number,
    budget: { bytes: number; max: number },
    out: Entry[],
  ): number {
    const loc = this.locations;
    const rel = lo - loc.first;
    assert(
      rel >= 0 && hiExclusive - loc.first <= loc.seq.length,
      `entries ${lo}..${hiExclusive} not on disk`,
    );
    const seq = loc.seq.get(rel);
    const start = loc.offset.get(rel);
    let count = 0;
    let span = 0;
    while (lo + count < hiExclusive && loc.seq.get(rel + count) === seq) {
      const recordBytes = loc.bytes.get(rel + count);
      const payloadBytes = recordBytes - RECORD_HEADER_BYTES;
      const first = out.length === 0 && count === 0;
      if (!first && budget.bytes + payloadBytes > budget.max) break;
      if (count > 0 && span + recordBytes > READ_CHUNK_BYTES_MAX) break;
      budget.bytes += payloadBytes;
      span += recordBytes;
      count++;
    }
    if (count === 0) return 0;
    const name = segmentFileName(seq);
    const buf = Buffer.allocUnsafe(span);
    const n = readSync(this.readFds.get(seq), buf, 0, span, start);
    if (n !== span) throw new LogCorruptionError(name, start + n, `short read: ${n} of ${span} bytes`);
    let pos = 0;
    for (let k = 0; k < count; k++) {
      const recordBytes = loc.bytes.get(rel + k);
      const r = readRecordAt(buf.subarray(pos, pos + recordBytes), 0);
      if (r.type !== 'record' || r.next !== recordBytes) {
        throw new LogCorruptionError(
          name,
          start + pos,
          r.type === 'record' ? 'record length changed' : r.type === 'end' ? 'record vanished' : r.reason,
        );
      }
      if (r.entry.index !== lo + k) {
        throw new LogCorruptionError(name, start + pos, `holds entry ${r.entry.index}, expected ${lo + k}`);
      }
      out.push(r.entry);
      pos += recordBytes;
    }
    return count;
  }

  // ---- the writer ----

  private enqueue(make: (done: Deferred) => WriteOp): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const op = make({ resolve, reject });
      this.queue.push(op);
      this.queueBytes += op.bytes;
      this.evictCache();
      // Prepared on the first write, not at open: opening a log only to read it writes nothing.
      this.ensureSpare();
      this.kickWriter();
    });
  }

  private kickWriter(): void {
    if (this.writerTask !== null || this.queue.length === 0) return;
    this.writerTask = this.runWriter().finally(() => {
      this.writerTask = null;
      // An operation queued between the loop's last check and this callback.
      this.kickWriter();
    });
  }

  /** Group commit: every operation queued while the previous batch was syncing forms the next batch. */
  private async runWriter(): Promise<void> {
    // Let the rest of the current synchronous burst of calls join the first batch.
    await Promise.resolve();
    // Bounded: each round removes at least one operation from the queue.
    while (this.queue.length > 0) {
      if (this.failure !== null) {
        this.rejectAll(this.queue.splice(0), this.failure);
        return;
      }
      let bytes = 0;
      let take = 0;
      while (take < this.queue.length && (take === 0 || bytes < this.limits.writeBatchBytesMax)) {
        bytes += this.queue[take]!.bytes;
        take++;
      }
      const batch = this.queue.splice(0, take);
      try {
        await this.writeBatch(batch);
        this.queueBytes -= bytes;
        for (const op of batch) op.done.resolve();
        this.scheduleMark();
      } catch (err) {
        this.failure ??= err instanceof HiqliteError ? err : ioError('write', err);
        this.rejectAll(batch, this.failure);
      }
    }
  }

  private rejectAll(ops: readonly WriteOp[], err: HiqliteError): void {
    for (const op of ops) {
      this.queueBytes -= op.bytes;
      op.done.reject(err);
    }
  }

  private async writeBatch(batch: readonly WriteOp[]): Promise<void> {
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      if (pendingBytes === 0) return;
      const active = this.active!;
      await writeFully(
        active.fh,
        pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes),
        active.writePos,
      );
      active.writePos += pendingBytes;
      this.bytesWritten += pendingBytes;
      this.entriesWritten += pending.length;
      pending.length = 0;
      pendingBytes = 0;
      if (!SYNC_ON_WRITE) await active.fh.datasync();
      this.syncs++;
      this.synced = this.locations.first + this.locations.seq.length - 1;
    };
    for (const op of batch) {
      switch (op.type) {
        case 'append': {
          if (op.truncateFrom !== null) {
            await flush();
            await this.truncateDisk(op.truncateFrom);
          }
          for (let i = 0; i < op.records.length; i++) {
            const record = op.records[i]!;
            if (
              this.active === null ||
              this.active.writePos + pendingBytes + record.length > this.limits.segmentBytesMax
            ) {
              // The old segment is complete and durable before the new one gets a byte.
              await flush();
              await this.rollOver();
            }
            const active = this.active!;
            const loc = this.locations;
            assert(loc.first + loc.seq.length === op.firstIndex + i, 'writer: records out of order');
            loc.seq.push(active.seq);
            loc.offset.push(active.writePos + pendingBytes);
            loc.bytes.push(record.length);
            pending.push(record);
            pendingBytes += record.length;
          }
          break;
        }
        case 'purge':
          await flush();
          await this.purgeDisk(op.index, op.term, op.all);
          break;
        default:
          assertNever(op, 'write op');
      }
    }
    await flush();
    for (const op of batch) {
      if (op.type === 'append') for (const item of op.items) item.written = true;
    }
    this.evictCache();
  }

  /**
   * Drops on-disk entries >= from. Later segments are deleted newest first, each deletion made
   * durable before the next, so a crash leaves a prefix of the old log and never a gap; then
   * the segment holding `from` is cut there (ftruncate + fdatasync) and becomes the active one.
   * It is not preallocated again: appends grow it until the next roll-over (truncation is rare).
   */
  private async truncateDisk(from: number): Promise<void> {
    const loc = this.locations;
    const rel = from - loc.first;
    assert(rel >= 0 && rel <= loc.seq.length, `truncate at ${from} outside the disk log`);
    if (rel === loc.seq.length) return;
    // Entries below the mark are about to go, legitimately: the mark comes down first.
    await this.lowerMark(from - 1);
    const seq = loc.seq.get(rel);
    const offset = loc.offset.get(rel);
    // The high-water mark comes down first: a crash among the deletions must not leave a mark
    // above the newest segment left, which the next open would take for a lost tail.
    if (this.segmentSeqs.at(-1)! > seq) await this.writeMeta({ ...this.meta, segmentSeqHigh: seq });
    // Bounded by the number of segments.
    while (this.segmentSeqs.at(-1)! > seq) {
      const doomed = this.segmentSeqs.pop()!;
      await this.deleteSegment(doomed);
      await fsyncDir(this.dir);
    }
    if (this.active === null || this.active.seq !== seq) {
      assert(this.active === null, 'truncate: active segment is not the last');
      this.active = {
        seq,
        fh: await openActiveSegment(join(this.dir, segmentFileName(seq))),
        writePos: offset,
      };
    }
    await this.active.fh.truncate(offset);
    await this.active.fh.datasync();
    this.active.writePos = offset;
    loc.seq.truncate(rel);
    loc.offset.truncate(rel);
    loc.bytes.truncate(rel);
    this.synced = from - 1;
    this.cutting = false;
  }

  /**
   * Commits the purge point in the meta file (atomic rename), then deletes the segments it made
   * garbage. A crash in between leaves segments below the recorded floor, deleted at open.
   */
  private async purgeDisk(index: number, term: number, all: boolean): Promise<void> {
    const loc = this.locations;
    const rel = index + 1 - loc.first;
    const reservedSeq = this.spare?.seq ?? this.nextSeq;
    let floor: number;
    if (all) {
      // The whole log goes, entries after the purge point included (a snapshot replacing a
      // log that does not hold its last entry): the mark comes down to the purge point first.
      await this.lowerMark(index);
      floor = reservedSeq;
    } else {
      assert(rel > 0 && rel <= loc.seq.length, `purge at ${index} outside the disk log`);
      floor = rel < loc.seq.length ? loc.seq.get(rel) : (this.active?.seq ?? reservedSeq);
    }
    await this.writeMeta({ ...this.meta, purgedIndex: index, purgedTerm: term, segmentSeqFloor: floor });
    // Bounded by the number of segments.
    while (this.segmentSeqs.length > 0 && this.segmentSeqs[0]! < floor) {
      await this.deleteSegment(this.segmentSeqs.shift()!);
    }
    if (all) {
      loc.seq.clear();
      loc.offset.clear();
      loc.bytes.clear();
      loc.first = index + 1;
      this.synced = index;
      this.cutting = false;
    } else {
      loc.seq.dropFront(rel);
      loc.offset.dropFront(rel);
      loc.bytes.dropFront(rel);
      loc.first = index + 1;
    }
  }

  private async writeMeta(meta: LogMeta): Promise<void> {
    await writeLogMetaFile(this.dir, meta);
    this.meta = meta;
  }

  private async deleteSegment(seq: number): Promise<void> {
    this.readFds.close(seq);
    if (this.active?.seq === seq) {
      const fh = this.active.fh;
      this.active = null;
      await fh.close();
    }
    await unlink(join(this.dir, segmentFileName(seq)));
  }

  /**
   * Brings the mark up to the durable end, at most once per syncedMarkIntervalMs and never on
   * the append path: a write now when the interval has passed, else one timer for later.
   */
  private scheduleMark(): void {
    if (this.markTask !== null || this.markTimer !== null || this.closing !== null) return;
    if (this.cutting || this.failure !== null) return;
    if (this.synced <= this.markIndex) return;
    const waitMs = this.markWrittenAtMs + this.limits.syncedMarkIntervalMs - performance.now();
    if (waitMs > 0) {
      this.markTimer = setTimeout(() => {
        this.markTimer = null;
        this.scheduleMark();
      }, waitMs);
      (this.markTimer as { unref?: () => void }).unref?.();
      return;
    }
    const index = this.synced;
    this.markIndex = index;
    this.markWrittenAtMs = performance.now();
    this.markTask = this.markWriter
      .write(index)
      .catch((err: unknown) => {
        // The mark's state on disk is unknown: refuse further writes, as for any failed write.
        this.failure ??= ioError('synced mark write', err);
      })
      .finally(() => {
        this.markTask = null;
        this.scheduleMark();
      });
  }

  /**
   * Before entries after `index` are removed from the disk: the mark comes down to `index`,
   * durably (a mark above the log's end at the next open would say synced records were lost).
   */
  private async lowerMark(index: number): Promise<void> {
    // Set until the caller's removal is done (no raise meanwhile); a write started before may be
    // in flight: waited for, then the mark comes down. Bounded: no new write starts meanwhile.
    this.cutting = true;
    while (this.markTask !== null) await this.markTask;
    if (this.markIndex <= index) return;
    this.markIndex = index;
    await this.markWriter.write(index);
  }

  /** Seals the active segment (already durable) and continues in the prepared spare. */
  private async rollOver(): Promise<void> {
    if (this.active !== null) {
      const fh = this.active.fh;
      this.active = null;
      await fh.close();
    }
    const prepared = await this.ensureSpare().ready;
    this.spare = null;
    const path = join(this.dir, segmentFileName(prepared.seq));
    await rename(prepared.tempPath, path);
    // The new name must be durable before records in it are acknowledged, and so must the
    // high-water mark that names it (a lost newest segment is found at open: segment-recovery.ts).
    await fsyncDir(this.dir);
    await this.writeMeta({ ...this.meta, segmentSeqHigh: prepared.seq });
    // Prepared (zero-filled) without O_DSYNC: its zeros were synced once, not chunk by chunk.
    let fh: FileHandle;
    if (SYNC_ON_WRITE) {
      await prepared.fh.close();
      fh = await openActiveSegment(path);
    } else fh = prepared.fh;
    this.active = { seq: prepared.seq, fh, writePos: SEGMENT_HEADER_BYTES };
    this.segmentSeqs.push(prepared.seq);
    this.ensureSpare();
  }

  /**
   * The next segment, being prepared in the background (at most one at a time). Its promise is
   * awaited at roll-over or at close.
   */
  private ensureSpare(): { readonly seq: number; readonly ready: Promise<PreparedSegment> } {
    if (this.spare !== null) return this.spare;
    const seq = this.nextSeq++;
    const ready = prepareSegment(this.dir, seq, this.limits.segmentBytesMax);
    // A failure surfaces where the spare is awaited; this only keeps it from being reported unhandled first.
    ready.catch(() => undefined);
    this.spare = { seq, ready };
    return this.spare;
  }

  private kickHardStateWriter(): void {
    if (this.hardStateTask !== null || this.hardStateWaiters.length === 0) return;
    this.hardStateTask = this.runHardStateWriter().finally(() => {
      this.hardStateTask = null;
      this.kickHardStateWriter();
    });
  }

  /** Saves requested while a write is in flight are coalesced: the next write carries the latest. */
  private async runHardStateWriter(): Promise<void> {
    // Bounded: each round takes every waiter queued so far.
    while (this.hardStateWaiters.length > 0) {
      const waiters = this.hardStateWaiters;
      this.hardStateWaiters = [];
      const hs = this.hardState;
      assert(hs !== null, 'hard state writer without a hard state');
      try {
        await writeHardStateFile(this.dir, hs);
        for (const w of waiters) w.resolve();
      } catch (err) {
        this.failure ??= ioError('hard state write', err);
        for (const w of waiters) w.reject(this.failure);
      }
    }
  }

  private async shutdown(): Promise<void> {
    // Bounded: close() refuses new operations, so the writers drain what is queued and stop.
    while (this.writerTask !== null || this.hardStateTask !== null) {
      await this.writerTask;
      await this.hardStateTask;
    }
    // The mark, up to the end of what is durable (a failed store leaves it where it is).
    if (this.markTimer !== null) clearTimeout(this.markTimer);
    this.markTimer = null;
    await this.markTask;
    if (this.failure === null && this.synced > this.markIndex) {
      this.markIndex = this.synced;
      await this.markWriter.write(this.markIndex).catch(() => undefined);
    }
    await this.markWriter.close();
    const spare = this.spare;
    this.spare = null;
    if (spare !== null) {
      const prepared = await spare.ready.catch(() => null);
      if (prepared !== null) {
        await prepared.fh.close();
        await unlink(prepared.tempPath).catch(() => undefined);
      }
    }
    if (this.active !== null) {
      const fh = this.active.fh;
      this.active = null;
      await fh.close();
    }
    this.readFds.closeAll();
  }
}

/**
 * O_DSYNC: every write returns once its data is durable (as a write followed by fdatasync), in
 * one system call. Undefined where the platform has no such flag (Windows).
 */
const O_DSYNC: number | undefined = constants.O_DSYNC;
/** Whether a write to the active segment is durable when it returns (no fdatasync after it). */
const SYNC_ON_WRITE = O_DSYNC !== undefined;

/** The segment appends go to: read-write, with O_DSYNC where the platform has it. */
function openActiveSegment(path: string): Promise<FileHandle> {
  return open(path, SYNC_ON_WRITE ? constants.O_RDWR | (O_DSYNC as number) : 'r+');
}
