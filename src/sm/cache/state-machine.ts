/**
 * The cache group's state machine: caches with TTL, counters, notifications and locks (see
 * docs/internals/cache-state-machine.md). It has the shape of the `GroupStateMachine` seam of
 * src/node/seams.ts (src/sm may not import src/node; the node wraps or uses it directly), runs on
 * the caller's thread, and is deterministic: the same log gives the same state, byte for byte
 * in its snapshot, whatever the batch boundaries and wherever a snapshot was taken.
 *
 * Apply contract: entries arrive in log order, starting at `appliedIndex() + 1`. The state is in
 * memory only: after a restart the runtime restores the latest snapshot and applies the log
 * after it.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { assert } from '../../lib/assert.js';
import { HiqliteError } from '../../lib/errors.js';
import type { Entry, LogIndex, Membership, SnapshotMeta, Term } from '../../raft/types.js';
import {
  type CacheCommand,
  type CacheCommandEnvelope,
  decodeCacheCommand,
  encodeCacheBatch,
  encodeCacheCommandValidated,
  isBatchable,
} from './command.js';
import { type Entry as CacheEntry, isExpired } from './kv.js';
import { type Holder, type LockTablePlantedBugs, TOKEN_PER_LOG_MS, type Waiter } from './locks.js';
import type { NotificationsAfter } from './notifications.js';
import { type CacheLimits, resolveCacheLimits } from './options.js';
import type { CacheEntryResult } from './result.js';
import {
  type CapturedSnapshot,
  captureSnapshot,
  readSnapshot,
  SNAPSHOT_CHUNK_BYTES,
  type SnapshotHeader,
  snapshotChunks,
} from './snapshot.js';
import { type CacheHooks, CacheState } from './state.js';

export interface CacheStateMachineOptions {
  /** Limits (defaults in DEFAULT_CACHE_LIMITS); must be the same on every node. */
  readonly limits?: Partial<CacheLimits>;
  readonly hooks?: CacheHooks;
  /** Test only (LockTablePlantedBugs). */
  readonly plantedBugs?: LockTablePlantedBugs;
}

export interface SnapshotInfo {
  readonly index: LogIndex;
  readonly term: Term;
  readonly membership: Membership | null;
}

export interface LockView {
  readonly holderId: string;
  readonly token: number;
  readonly expiresAtMs: number;
  /** Holder ids of the waiters, first served first. */
  readonly waiters: readonly string[];
}

export interface CacheStats {
  readonly clockMs: number;
  /** Accounted bytes of entries and counters (bounded by `bytesMax`). */
  readonly bytes: number;
  readonly caches: ReadonlyArray<{ readonly name: string; readonly entries: number; readonly bytes: number }>;
  readonly counterGroups: ReadonlyArray<{ readonly name: string; readonly keys: number }>;
  readonly locksHeld: number;
  readonly lockWaiters: number;
  readonly notificationsHeld: number;
  readonly notificationNextSeq: number;
  readonly sessions: number;
}

export interface CacheEntriesPage {
  readonly entries: ReadonlyArray<{
    readonly key: string;
    readonly value: Uint8Array;
    /** Log time (ms since the epoch) at which it expires; null: never. */
    readonly expiresAtMs: number | null;
  }>;
  /** More live entries follow this page. */
  readonly hasMore: boolean;
}

export interface CountersPage {
  readonly entries: ReadonlyArray<readonly [string, bigint]>;
  readonly hasMore: boolean;
}

export class CacheStateMachine {
  readonly limits: CacheLimits;
  private readonly hooks: CacheHooks;
  private readonly plantedBugs: LockTablePlantedBugs;
  private state: CacheState;
  private applied = 0;
  private appliedTerm = 0;
  private membership: Membership | null = null;
  private closed = false;
  /**
   * Commands this node encoded (encodeForProposal), by the identity of their bytes: applying the
   * entry that holds those very bytes takes the validated envelope instead of decoding them.
   */
  private readonly proposed = new WeakMap<
    Uint8Array,
    CacheCommandEnvelope | readonly CacheCommandEnvelope[]
  >();

  constructor(options: CacheStateMachineOptions = {}) {
    this.limits = resolveCacheLimits(options.limits);
    this.hooks = options.hooks ?? {};
    this.plantedBugs = options.plantedBugs ?? {};
    this.state = new CacheState(this.limits, this.plantedBugs);
  }

  /**
   * Validates and encodes a command to propose (encodeCacheCommand), remembering the validated
   * envelope, which is exactly what decoding the bytes gives (encodeCacheCommandValidated): the
   * leader that applies the entry holding these bytes skips the decode. Other replicas, and this
   * one when the entry comes back from the log store or over the wire, decode as always.
   */
  encodeForProposal(envelope: CacheCommandEnvelope): Uint8Array {
    const out = encodeCacheCommandValidated(envelope);
    this.proposed.set(out.bytes, out.envelope);
    return out.bytes;
  }

  /** The command of bytes made by encodeForProposal and not applied yet (else undefined). */
  proposedCommand(bytes: Uint8Array): CacheCommand | undefined {
    const known = this.proposed.get(bytes);
    return known === undefined || Array.isArray(known) ? undefined : (known as CacheCommandEnvelope).command;
  }

  /**
   * One batch entry of commands encoded by encodeForProposal (each batchable, command.ts
   * isBatchable), in order; like encodeForProposal, the leader that applies these very bytes
   * applies the validated envelopes instead of decoding them.
   */
  encodeBatchForProposal(items: readonly Uint8Array[]): Uint8Array {
    const envelopes: CacheCommandEnvelope[] = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const it = items[i] as Uint8Array;
      const known = this.proposed.get(it);
      envelopes[i] =
        known === undefined || Array.isArray(known)
          ? decodeCacheCommand(it)
          : (known as CacheCommandEnvelope);
      assert(
        isBatchable((envelopes[i] as CacheCommandEnvelope).command),
        'only batchable commands are batched',
      );
    }
    const bytes = encodeCacheBatch(items);
    this.proposed.set(bytes, envelopes);
    return bytes;
  }

  // ---- the GroupStateMachine seam --------------------------------------------------------------

  appliedIndex(): LogIndex {
    return this.applied as LogIndex;
  }

  async apply(entries: readonly Entry[], wanted: readonly boolean[]): Promise<readonly unknown[]> {
    return this.applySync(entries, wanted);
  }

  /**
   * `apply` without the promise: one result per entry where wanted (undefined elsewhere); a
   * batch entry's result is the array of its commands' results (or one error if malformed).
   */
  applySync(entries: readonly Entry[], wanted: readonly boolean[]): Array<CacheEntryResult | undefined> {
    this.checkOpen();
    assert(wanted.length === entries.length, 'one wanted flag per entry');
    const results: Array<CacheEntryResult | undefined> = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      assert(e.index === this.applied + 1, `entry ${e.index} applied after ${this.applied}`);
      if (e.kind === 'command') {
        const known = this.proposed.get(e.data);
        let r: CacheEntryResult;
        if (known === undefined) r = this.state.applyEntry(e.data, e.index);
        else {
          this.proposed.delete(e.data);
          r = Array.isArray(known)
            ? this.state.applyBatch(known, e.index)
            : this.state.applyEnvelope(known as CacheCommandEnvelope, e.index);
        }
        if (wanted[i]) results[i] = r;
      } else if (e.kind === 'config') {
        this.membership = e.membership;
      }
      this.applied = e.index;
      this.appliedTerm = e.term;
      if (this.state.events.length > 0) this.emit();
    }
    return results;
  }

  /** Hands the events of the entry just applied to the hooks (the state is complete by now). */
  private emit(): void {
    const events = this.state.events.splice(0);
    for (const ev of events) {
      if (ev.kind === 'notification') this.hooks.onNotification?.(ev.notification);
      else this.hooks.onLockGranted?.(ev.grant);
    }
  }

  /** About what a snapshot holds, in bytes. */
  sizeBytes(): number {
    const s = this.state;
    return s.kv.bytes + s.ring.bytes + s.sessions.bytes + s.locks.locks.size * 128;
  }

  /**
   * Writes a snapshot of the applied state to `path` atomically (a `.partial` file, fsync,
   * rename, fsync of the directory). Commands may apply while it is written: it holds the state
   * as of the call.
   */
  async snapshot(path: string): Promise<SnapshotInfo> {
    this.checkOpen();
    const captured = this.capture();
    const partial = `${path}.partial`;
    await mkdir(dirname(path), { recursive: true });
    const fh = await open(partial, 'w');
    try {
      for (const chunk of snapshotChunks(captured)) await fh.write(chunk);
      await fh.sync();
    } catch (e) {
      await fh.close();
      await rm(partial, { force: true });
      throw e;
    }
    await fh.close();
    await rename(partial, path);
    await fsyncDir(dirname(path));
    return infoOf(captured.header);
  }

  /** The snapshot as chunks for any sink (an in-memory store when the group keeps no files). */
  async writeSnapshot(write: (chunk: Uint8Array) => void | Promise<void>): Promise<SnapshotInfo> {
    this.checkOpen();
    const captured = this.capture();
    for (const chunk of snapshotChunks(captured)) await write(chunk);
    return infoOf(captured.header);
  }

  /** Replaces the whole state by the snapshot at `path`; the old state stays if it is invalid. */
  async restore(path: string, meta: SnapshotMeta): Promise<void> {
    const stream = createReadStream(path, { highWaterMark: SNAPSHOT_CHUNK_BYTES });
    try {
      await this.restoreFrom(stream, meta);
    } finally {
      stream.destroy();
    }
  }

  /**
   * Replaces the whole state by a snapshot stream. It is read completely and checked before the
   * state is swapped, so a corrupt or truncated snapshot (HQL_CORRUPTION) changes nothing.
   */
  async restoreFrom(source: AsyncIterable<Uint8Array>, meta?: SnapshotMeta): Promise<void> {
    this.checkOpen();
    const next = new CacheState(this.limits, this.plantedBugs);
    let header: SnapshotHeader | null = null;
    await readSnapshot(source, {
      header: (h) => {
        header = h;
        next.clockMs = h.clockMs;
        next.foundedAtMs = h.foundedAtMs;
        next.locks.fenceNext = h.fenceNext;
        next.ring.nextSeq = h.notificationNextSeq;
      },
      entry: (cache, key, e) => next.kv.restoreEntry(cache, key, e),
      counter: (group, key, v) => next.kv.restoreCounter(group, key, v),
      lock: (key, holder, waiters) => next.locks.restore(key, { holder, waiters }),
      session: (id, seq, lastSeenMs, result, protectMs) =>
        next.sessions.restore(id, { seq, lastSeenMs, result, protectMs }),
      notification: (n) => next.ring.restore(n),
    });
    const h = header as SnapshotHeader | null;
    assert(h !== null, 'a snapshot that parsed has a header');
    if (next.ring.nextSeq !== h.notificationNextSeq) {
      throw new HiqliteError(
        'HQL_CORRUPTION',
        'cache snapshot: notification sequence does not match its header',
        {
          retryable: false,
        },
      );
    }
    if (meta !== undefined && (h.index !== meta.index || h.term !== meta.term)) {
      throw new HiqliteError(
        'HQL_CORRUPTION',
        `cache snapshot covers ${h.index}/${h.term}, expected ${meta.index}/${meta.term}`,
        { retryable: false },
      );
    }
    next.kv.rebuildExpiryIndex();
    next.locks.rebuildLeaseIndex();
    this.state = next;
    this.applied = h.index;
    this.appliedTerm = h.term;
    this.membership = h.membership;
  }

  async reset(): Promise<void> {
    this.checkOpen();
    this.state = new CacheState(this.limits, this.plantedBugs);
    this.applied = 0;
    this.appliedTerm = 0;
    this.membership = null;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  // ---- local reads (no log: the state this node has applied) -----------------------------------

  /**
   * The lowest fencing token this group grants (CacheState.foundedAtMs in tokens; 0 when not
   * known): a lock whose token is below was granted by a group founded before this one.
   */
  tokenFloor(): number {
    return Math.floor(this.state.foundedAtMs) * TOKEN_PER_LOG_MS;
  }

  /** The state machine's clock: the largest `nowMs` applied. */
  clockMs(): number {
    return this.state.clockMs;
  }

  /**
   * The value, or null when absent or expired. `nowMs` (the reader's log clock) can only make
   * more entries count as expired than the log clock does: a read never changes state, so
   * it may be stricter than the log without making replicas diverge.
   */
  get(cache: string, key: string, nowMs = 0): Uint8Array | null {
    return this.state.kv.get(cache, key, Math.max(nowMs, this.state.clockMs));
  }

  /**
   * `get`, returning the stored entry itself: entries are never mutated and a write makes a new
   * one, so its identity names one stored version (a reader may keep a decoded copy keyed by
   * it). `nowMs` (the reader's log clock) is read only for an entry with an expiry that the
   * applied log clock has not passed.
   */
  getEntry(cache: string, key: string, nowMs: () => number): CacheEntry | null {
    const e = this.state.kv.caches.get(cache)?.entries.get(key);
    if (e === undefined) return null;
    if (e.expiresAtMs === null) return e;
    return isExpired(e, this.state.clockMs) || isExpired(e, nowMs()) ? null : e;
  }

  /** The live entries of one cache, in insertion order (a copy). */
  entries(cache: string, nowMs = 0): Array<[string, Uint8Array]> {
    const now = Math.max(nowMs, this.state.clockMs);
    const out: Array<[string, Uint8Array]> = [];
    const c = this.state.kv.caches.get(cache);
    if (c === undefined) return out;
    for (const [key, e] of c.entries as Map<string, CacheEntry>)
      if (!isExpired(e, now)) out.push([key, e.value]);
    return out;
  }

  /**
   * One page of a cache's live entries in insertion order: `limit` of them after skipping
   * `offset` live ones, with their expiry. Nothing is copied but the page: the work is the
   * entries walked (offset + limit, plus expired ones passed over), never a list of the cache.
   * Pages follow the map as it is now: a write between two pages may shift them.
   */
  entriesPage(cache: string, offset: number, limit: number, nowMs = 0): CacheEntriesPage {
    assert(offset >= 0 && limit >= 1, 'a page has a non-negative offset and a positive limit');
    const now = Math.max(nowMs, this.state.clockMs);
    const entries: CacheEntriesPage['entries'][number][] = [];
    const c = this.state.kv.caches.get(cache);
    if (c === undefined) return { entries, hasMore: false };
    let skipped = 0;
    for (const [key, e] of c.entries as Map<string, CacheEntry>) {
      if (isExpired(e, now)) continue;
      if (skipped < offset) {
        skipped++;
        continue;
      }
      if (entries.length === limit) return { entries, hasMore: true };
      entries.push({ key, value: e.value, expiresAtMs: e.expiresAtMs });
    }
    return { entries, hasMore: false };
  }

  /** One page of a counter group's keys and values, in insertion order (as `entriesPage`). */
  countersPage(counter: string, offset: number, limit: number): CountersPage {
    assert(offset >= 0 && limit >= 1, 'a page has a non-negative offset and a positive limit');
    const entries: Array<readonly [string, bigint]> = [];
    const g = this.state.kv.counters.get(counter);
    if (g === undefined) return { entries, hasMore: false };
    let i = 0;
    for (const pair of g.values) {
      if (i++ < offset) continue;
      if (entries.length === limit) return { entries, hasMore: true };
      entries.push(pair);
    }
    return { entries, hasMore: false };
  }

  /**
   * The earliest log time at which an entry expires or a lease ends, or null when nothing is
   * due. The leader proposes `expire` once its clock reaches it (an index item may be stale:
   * the `expire` then removes nothing but drops that item, so the next answer moves on).
   */
  nextDeadlineMs(): number | null {
    const a = this.state.kv.nextExpiryMs();
    const b = this.state.locks.nextLeaseEndMs();
    if (a === null) return b;
    return b === null ? a : Math.min(a, b);
  }

  counterGet(counter: string, key: string): bigint | null {
    return this.state.kv.counterGet(counter, key);
  }

  /** The lock's holder and queue, or null when it is free. */
  lock(key: string): LockView | null {
    const s = this.state.locks.locks.get(key);
    if (s === undefined) return null;
    const h: Holder = s.holder;
    return {
      holderId: h.holderId,
      token: h.token,
      expiresAtMs: h.expiresAtMs,
      waiters: s.waiters.map((w: Waiter) => w.holderId),
    };
  }

  /** The seq of the last notification applied (0: none yet); the next one gets this + 1. */
  lastNotificationSeq(): number {
    return this.state.ring.nextSeq - 1;
  }

  /** Held notifications after `afterSeq` (0: from the oldest held), at most `max`, and how many are gone. */
  notificationsAfter(afterSeq: number, max = Number.MAX_SAFE_INTEGER): NotificationsAfter {
    return this.state.ring.after(afterSeq, max);
  }

  stats(): CacheStats {
    const s = this.state;
    return {
      clockMs: s.clockMs,
      bytes: s.kv.bytes,
      caches: [...s.kv.caches].map(([name, c]) => ({ name, entries: c.entries.size, bytes: c.bytes })),
      counterGroups: [...s.kv.counters].map(([name, g]) => ({ name, keys: g.values.size })),
      locksHeld: s.locks.locks.size,
      lockWaiters: s.locks.waiting,
      notificationsHeld: s.ring.size,
      notificationNextSeq: s.ring.nextSeq,
      sessions: s.sessions.rows.size,
    };
  }

  /** For tests: the internal state (indexes included). */
  get internals(): CacheState {
    return this.state;
  }

  private capture(): CapturedSnapshot {
    return captureSnapshot(this.state, {
      index: this.applied,
      term: this.appliedTerm,
      membership: this.membership,
    });
  }

  private checkOpen(): void {
    if (this.closed)
      throw new HiqliteError('HQL_CLOSED', 'the cache state machine is closed', { retryable: false });
  }
}

function infoOf(h: SnapshotHeader): SnapshotInfo {
  return { index: h.index as LogIndex, term: h.term as Term, membership: h.membership };
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
