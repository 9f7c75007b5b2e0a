/**
 * The snapshot format of the cache state machine, written and read as a stream.
 *
 * Layout: the 8 bytes `HQLCACHE`, then frames `[u32 big-endian length][msgpack array]`, then the
 * CRC-32 (big-endian u32) of everything before it. The records, in this order:
 *
 *   ['H', version, index, term, membership | null, clockMs, fenceNext, notificationNextSeq,
 *        foundedAtMs]                                   (foundedAtMs absent from older writers: 0)
 *   ['C', cacheName]   then per entry  ['E', key, value, expiresAtMs | null]
 *   ['G', counterName] then per key    ['K', key, int64]
 *   ['L', key, holderId, token, leaseMs, expiresAtMs,
 *        [[holderId, leaseMs, deadlineMs | null, aliveUntilMs | null], …]]  (older: 3 items a waiter)
 *   ['S', clientId, seq, lastSeenMs, result | null, protectMs?] (least recently seen first;
 *                                                         protectMs when the session has one)
 *   ['N', seq, index, time, channel, payload]                (the ring, oldest first)
 *   ['Z', recordCount]
 *
 * Everything is written in the state's own iteration order (insertion order of its maps), which
 * a restore reproduces, so a snapshot of a restored state is byte-identical to the one it came
 * from, and so is the snapshot of any replica that applied the same log.
 *
 * Cost: `capture` runs synchronously and copies references only (one small array per entry;
 * values are never copied, they are immutable), so commands can apply while the capture is
 * streamed. The writer holds one chunk (`SNAPSHOT_CHUNK_BYTES`) plus the record being encoded
 * (at most one value). The reader holds one chunk plus a partial frame, and the state it builds.
 */
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import { HiqliteError } from '../../lib/errors.js';
import { type Membership, nodeId } from '../../raft/types.js';
import type { Entry } from './kv.js';
import type { Holder, Waiter } from './locks.js';
import type { Notification } from './notifications.js';
import { type CacheResult, reviveResult } from './result.js';
import type { CacheState } from './state.js';

export const SNAPSHOT_MAGIC = new TextEncoder().encode('HQLCACHE');
export const SNAPSHOT_FORMAT_VERSION = 1;
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** A frame longer than this is corruption (the largest record holds one value of ≤ 32 MiB). */
const FRAME_BYTES_MAX = 64 * 1024 * 1024;

export interface SnapshotHeader {
  readonly index: number;
  readonly term: number;
  readonly membership: Membership | null;
  readonly clockMs: number;
  readonly fenceNext: number;
  readonly notificationNextSeq: number;
  /** CacheState.foundedAtMs (0 when a snapshot of an older version did not say). */
  readonly foundedAtMs: number;
}

/** A consistent view of the state at one applied index, by reference. */
export interface CapturedSnapshot {
  readonly header: SnapshotHeader;
  readonly caches: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, Entry]>]>;
  readonly counters: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, bigint]>]>;
  readonly locks: ReadonlyArray<readonly [string, Holder, readonly Waiter[]]>;
  readonly sessions: ReadonlyArray<readonly [string, number, number, CacheResult | null, number | null]>;
  readonly notifications: readonly Notification[];
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** Copies what a snapshot needs; later commands cannot change what was captured. */
export function captureSnapshot(
  state: CacheState,
  at: { index: number; term: number; membership: Membership | null },
): CapturedSnapshot {
  const header: SnapshotHeader = {
    ...at,
    clockMs: state.clockMs,
    fenceNext: state.locks.fenceNext,
    notificationNextSeq: state.ring.nextSeq,
    foundedAtMs: state.foundedAtMs,
  };
  return {
    header,
    caches: [...state.kv.caches].map(([name, c]) => [name, [...c.entries]] as const),
    counters: [...state.kv.counters].map(([name, g]) => [name, [...g.values]] as const),
    // Holders and waiters are mutable (renewals), the queues spliced: copy them all.
    locks: [...state.locks.locks].map(
      ([key, s]) => [key, { ...s.holder }, s.waiters.map((w) => ({ ...w }))] as const,
    ),
    sessions: [...state.sessions.rows].map(
      ([id, r]) => [id, r.seq, r.lastSeenMs, r.result, r.protectMs] as const,
    ),
    notifications: [...state.ring.held()],
  };
}

function* records(s: CapturedSnapshot): Generator<unknown[]> {
  const h = s.header;
  yield [
    'H',
    SNAPSHOT_FORMAT_VERSION,
    h.index,
    h.term,
    h.membership,
    h.clockMs,
    h.fenceNext,
    h.notificationNextSeq,
    h.foundedAtMs,
  ];
  for (const [name, entries] of s.caches) {
    yield ['C', name];
    for (const [key, e] of entries) yield ['E', key, e.value, e.expiresAtMs];
  }
  for (const [name, values] of s.counters) {
    yield ['G', name];
    for (const [key, v] of values) yield ['K', key, v];
  }
  for (const [key, holder, waiters] of s.locks) {
    const w = waiters.map((x) => [x.holderId, x.leaseMs, x.deadlineMs, x.aliveUntilMs]);
    yield ['L', key, holder.holderId, holder.token, holder.leaseMs, holder.expiresAtMs, w];
  }
  for (const [id, seq, lastSeenMs, result, protectMs] of s.sessions)
    yield protectMs === null
      ? ['S', id, seq, lastSeenMs, result]
      : ['S', id, seq, lastSeenMs, result, protectMs];
  for (const n of s.notifications) yield ['N', n.seq, n.index, n.time, n.channel, n.payload];
}

/** The snapshot's bytes in chunks of about `SNAPSHOT_CHUNK_BYTES` (each a fresh buffer). */
export function* snapshotChunks(s: CapturedSnapshot): Generator<Uint8Array> {
  let chunk = new Uint8Array(SNAPSHOT_CHUNK_BYTES);
  let view = new DataView(chunk.buffer);
  let used = 0;
  let crc = 0;
  let count = 0;
  const flush = (): Uint8Array => {
    const out = chunk.subarray(0, used);
    crc = crc32(out, crc);
    chunk = new Uint8Array(SNAPSHOT_CHUNK_BYTES);
    view = new DataView(chunk.buffer);
    used = 0;
    return out;
  };
  chunk.set(SNAPSHOT_MAGIC, 0);
  used = SNAPSHOT_MAGIC.length;
  // Appends one record; returns the full chunk to hand out first, if the record did not fit.
  // (A plain function, not a generator per record: a snapshot has one record per entry.)
  const frame = (record: unknown[]): Uint8Array | null => {
    // msgpackr returns a view of its reusable buffer: copy it before the next pack.
    const packed = packr.pack(record);
    const need = 4 + packed.length;
    let full: Uint8Array | null = null;
    if (used + need > chunk.length) {
      if (used > 0) full = flush();
      if (need > chunk.length) {
        chunk = new Uint8Array(need);
        view = new DataView(chunk.buffer);
      }
    }
    view.setUint32(used, packed.length);
    chunk.set(packed, used + 4);
    used += need;
    count++;
    return full;
  };
  for (const r of records(s)) {
    const full = frame(r);
    if (full !== null) yield full;
  }
  const last = frame(['Z', count + 1]);
  if (last !== null) yield last;
  if (used > 0) yield flush();
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(0, crc >>> 0);
  yield tail;
}

// ---- reading ---------------------------------------------------------------------------------

/** Receives the records of a snapshot, in order (see `readSnapshot`). */
export interface SnapshotSink {
  header(h: SnapshotHeader): void;
  entry(cache: string, key: string, e: Entry): void;
  counter(group: string, key: string, v: bigint): void;
  lock(key: string, holder: Holder, waiters: Waiter[]): void;
  session(
    clientId: string,
    seq: number,
    lastSeenMs: number,
    result: CacheResult | null,
    protectMs: number | null,
  ): void;
  notification(n: Notification): void;
}

/**
 * Parses a snapshot stream into `sink`, checking its structure and checksum. Throws
 * HiqliteError `HQL_CORRUPTION` on anything wrong with the bytes, `HQL_IO` when the source
 * fails (the sink must be discarded either way).
 */
export async function readSnapshot(source: AsyncIterable<Uint8Array>, sink: SnapshotSink): Promise<void> {
  const parser = new Parser(sink);
  const chunks = source[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = await chunks.next();
      } catch (e) {
        if (e instanceof HiqliteError) throw e;
        throw new HiqliteError('HQL_IO', `cannot read the cache snapshot: ${(e as Error).message}`, {
          retryable: false,
          cause: e,
        });
      }
      if (next.done === true) break;
      parse(() => parser.push(next.value));
    }
    parse(() => parser.end());
  } finally {
    await chunks.return?.();
  }
}

/** Anything the parser or the sink throws on bad bytes is corruption. */
function parse(step: () => void): void {
  try {
    step();
  } catch (e) {
    if (e instanceof HiqliteError) throw e;
    throw corrupt(e instanceof Error ? e.message : String(e), e);
  }
}

function corrupt(why: string, cause?: unknown): HiqliteError {
  return new HiqliteError('HQL_CORRUPTION', `cache snapshot is not valid: ${why}`, {
    retryable: false,
    cause,
  });
}

class Parser {
  private pending: Uint8Array = new Uint8Array(0);
  private crc = 0;
  private magicSeen = false;
  private count = 0;
  private done = false;
  private trailer: Uint8Array | null = null;
  private cache: string | null = null;
  private group: string | null = null;
  private section = 0;

  constructor(private readonly sink: SnapshotSink) {}

  push(chunk: Uint8Array): void {
    this.pending = this.pending.length === 0 ? chunk : concat(this.pending, chunk);
    if (!this.magicSeen) {
      if (this.pending.length < SNAPSHOT_MAGIC.length) return;
      for (let i = 0; i < SNAPSHOT_MAGIC.length; i++) {
        if (this.pending[i] !== SNAPSHOT_MAGIC[i]) throw corrupt('bad magic');
      }
      this.consume(SNAPSHOT_MAGIC.length);
      this.magicSeen = true;
    }
    while (!this.done && this.pending.length >= 4) {
      const view = new DataView(this.pending.buffer, this.pending.byteOffset, this.pending.byteLength);
      const length = view.getUint32(0);
      if (length === 0 || length > FRAME_BYTES_MAX) throw corrupt(`frame of ${length} bytes`);
      if (this.pending.length < 4 + length) return;
      const body = this.pending.subarray(4, 4 + length);
      const record = packr.unpack(body) as unknown;
      this.consume(4 + length);
      this.count++;
      this.record(record);
    }
    if (this.done) {
      if (this.trailer !== null || this.pending.length > 4) throw corrupt('bytes after the checksum');
      if (this.pending.length === 4) {
        this.trailer = this.pending;
        this.pending = new Uint8Array(0);
      }
    }
  }

  end(): void {
    if (!this.done) throw corrupt('truncated (no end record)');
    if (this.trailer === null) throw corrupt('truncated (no checksum)');
    const expected = new DataView(this.trailer.buffer, this.trailer.byteOffset).getUint32(0);
    if (expected !== this.crc >>> 0) throw corrupt('checksum mismatch');
  }

  private consume(n: number): void {
    this.crc = crc32(this.pending.subarray(0, n), this.crc);
    this.pending = this.pending.subarray(n);
  }

  /** Sections must come in the written order: H C/E G/K L S N Z. */
  private enter(section: number): void {
    if (section < this.section) throw corrupt('records out of order');
    this.section = section;
  }

  private record(r: unknown): void {
    if (!Array.isArray(r) || typeof r[0] !== 'string') throw corrupt('record is not a tagged array');
    if (this.count === 1 && r[0] !== 'H') throw corrupt('no header');
    const sink = this.sink;
    switch (r[0]) {
      case 'H': {
        if (this.count !== 1) throw corrupt('second header');
        if (r[1] !== SNAPSHOT_FORMAT_VERSION) throw corrupt(`unsupported format version ${String(r[1])}`);
        sink.header({
          index: num(r[2]),
          term: num(r[3]),
          membership: membership(r[4]),
          clockMs: num(r[5]),
          fenceNext: num(r[6]),
          notificationNextSeq: num(r[7]),
          foundedAtMs: r.length > 8 ? num(r[8]) : 0,
        });
        return;
      }
      case 'C':
        this.enter(1);
        this.cache = str(r[1]);
        return;
      case 'E':
        if (this.section !== 1 || this.cache === null) throw corrupt('entry outside a cache');
        sink.entry(this.cache, str(r[1]), {
          value: bytes(r[2]),
          expiresAtMs: r[3] === null ? null : num(r[3]),
          decoded: undefined,
        });
        return;
      case 'G':
        this.enter(2);
        this.group = str(r[1]);
        return;
      case 'K':
        if (this.section !== 2 || this.group === null) throw corrupt('counter outside a group');
        if (typeof r[2] !== 'bigint') throw corrupt('counter value is not an int64');
        sink.counter(this.group, str(r[1]), r[2]);
        return;
      case 'L': {
        this.enter(3);
        if (!Array.isArray(r[6])) throw corrupt('lock waiters');
        const holder: Holder = {
          holderId: str(r[2]),
          token: num(r[3]),
          leaseMs: num(r[4]),
          expiresAtMs: num(r[5]),
        };
        const waiters: Waiter[] = (r[6] as unknown[]).map((w) => {
          if (!Array.isArray(w)) throw corrupt('lock waiter');
          // A fourth item since wait leases (a snapshot of an older build has none: no wait lease).
          if (w.length !== 3 && w.length !== 4) throw corrupt('lock waiter');
          return {
            holderId: str(w[0]),
            leaseMs: num(w[1]),
            deadlineMs: w[2] === null ? null : num(w[2]),
            aliveUntilMs: w[3] === undefined || w[3] === null ? null : num(w[3]),
          };
        });
        sink.lock(str(r[1]), holder, waiters);
        return;
      }
      case 'S': {
        this.enter(4);
        const result = r[4] === null ? null : reviveResult(r[4] as CacheResult);
        if (result !== null && (typeof result !== 'object' || typeof result.ok !== 'boolean')) {
          throw corrupt('session result');
        }
        sink.session(str(r[1]), num(r[2]), num(r[3]), result, r[5] === undefined ? null : num(r[5]));
        return;
      }
      case 'N':
        this.enter(5);
        sink.notification({
          seq: num(r[1]),
          index: num(r[2]),
          time: num(r[3]),
          channel: str(r[4]),
          payload: bytes(r[5]),
        });
        return;
      case 'Z':
        if (r[1] !== this.count)
          throw corrupt(`end record counts ${String(r[1])} records, read ${this.count}`);
        this.done = true;
        return;
      default:
        throw corrupt(`unknown record '${r[0]}'`);
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function num(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    throw corrupt(`expected an integer, got ${String(v)}`);
  return v;
}

function str(v: unknown): string {
  if (typeof v !== 'string') throw corrupt('expected a string');
  return v;
}

function bytes(v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw corrupt('expected bytes');
  return new Uint8Array(v);
}

function membership(v: unknown): Membership | null {
  if (v === null) return null;
  const m = v as Membership;
  if (typeof m !== 'object' || !Array.isArray(m.voters) || !Array.isArray(m.learners))
    throw corrupt('membership');
  return {
    voters: m.voters.map((x) => nodeId(num(x))),
    learners: m.learners.map((x) => nodeId(num(x))),
  };
}
