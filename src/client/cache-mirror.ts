/**
 * A replica of the cache group's state on the application's thread, so that local cache reads
 * of an embedded node on its own thread (`thread: 'worker'`) are a synchronous lookup here, not
 * a round trip to the node's thread (issue 12: about 150 µs per read before).
 *
 * The state machine is deterministic, so a second `CacheStateMachine` fed with exactly the
 * entries the node applies, in order, holds the same state (expiry included: both judge it by
 * the log clock or the process's wall clock, the later). The node's thread sends them
 * (cache-mirror-feed.ts, cache-mirror-wire.ts): a snapshot to begin an epoch, then every applied
 * entry batch. This side checks that every batch continues exactly where the state stands; a gap
 * is never applied: the mirror stops serving and asks for a new epoch.
 *
 * The mirror serves reads only while `live`. Otherwise (before the first snapshot arrived, while
 * one is restored, after the node announced the epoch lost, after a gap) the client reads on the
 * node's thread as before, so a read never sees less than an earlier read or a write that
 * returned: answers and entries travel in one ordered stream, handled entries first.
 *
 * Hooks (notifications, lock grants) do not fire here: listeners and lock waiters stay on the
 * node's thread, which is the authority and keeps working while the mirror is not live.
 *
 * Memory: the mirror holds a second copy of every cache value, counter, lock, session result and
 * held notification (the node's `cache_*` bounds bound it too), plus the window of entries in
 * flight (`cacheMirrorInflightBytesMax`). `cacheMirror: false` turns it off.
 */
import { createHash } from 'node:crypto';
import { assert } from '../lib/assert.js';
import { LogClock, type LogClockSource } from '../lib/log-clock.js';
import type { CacheRead, CacheReadValue } from '../node/cache-group.js';
import type { Entry } from '../raft/types.js';
import type { Entry as CacheEntry } from '../sm/cache/kv.js';
import type { CacheLimits } from '../sm/cache/options.js';
import { CacheStateMachine } from '../sm/cache/state-machine.js';
import { type MirrorEvent, unpackEntries } from './cache-mirror-wire.js';

export interface CacheMirrorOptions {
  readonly limits: Partial<CacheLimits>;
  /** Tells the node's thread that this many bytes were applied or dropped (opens its window). */
  readonly ack: (bytes: number) => void;
  /** Asks the node's thread for a new epoch: a gap, or a snapshot that could not be read. */
  readonly resync: (epoch: number) => void;
  /**
   * The clock reads judge expiry by, through a LogClock over the mirror's applied log time as on
   * the node's thread (src/lib/log-clock.ts); the process clock by default.
   */
  readonly clock?: LogClockSource;
  /** Something went wrong that the mirror recovered from by asking for a new epoch. */
  readonly onProblem?: (message: string) => void;
}

type Mode = 'waiting' | 'restoring' | 'live';

const PROCESS_CLOCK: LogClockSource = { monotonicMs: () => performance.now(), wallMs: () => Date.now() };

export interface CacheMirrorStatus {
  readonly mode: Mode;
  readonly epoch: number;
  readonly appliedIndex: number;
  /** Entry batches found not to continue the state (each answered by a new epoch). */
  readonly gaps: number;
  /** Epochs that began (a snapshot each). */
  readonly snapshots: number;
}

interface Waiter {
  readonly index: number;
  readonly resolve: (live: boolean) => void;
  readonly timer: NodeJS.Timeout;
}

export class CacheMirror {
  private sm: CacheStateMachine;
  private mode: Mode = 'waiting';
  private epoch = 0;
  private gaps = 0;
  private snapshots = 0;
  /** The snapshot being restored: its chunk stream, and entries that arrived meanwhile. */
  private restoring: { stream: ChunkStream; queue: Array<{ entries: Entry[]; bytes: number }> } | null = null;
  private readonly waiters = new Set<Waiter>();
  private readonly logClock: LogClock;
  private readonly readNowMs = (): number => this.logClock.nowMs();
  /**
   * Entry batches received while live and not applied yet. They are applied by `drain()`, which
   * every read here calls first and the client calls once the answers of a message batch are
   * handled and its next calls posted: a write's answer does not wait for the mirror to apply
   * the entries in front of it, and a read still sees every entry that came before the answer
   * it follows (both are on this thread). Bounded by the feed's window (acknowledged on apply).
   */
  private pending: Array<Extract<MirrorEvent, { type: 'mirror-entries' }>> = [];

  constructor(private readonly o: CacheMirrorOptions) {
    this.sm = new CacheStateMachine({ limits: o.limits });
    this.logClock = new LogClock(o.clock ?? PROCESS_CLOCK, () => this.sm.clockMs());
  }

  /** True when reads may be served here (entries received so far applied first). */
  get live(): boolean {
    this.drain();
    return this.mode === 'live';
  }

  appliedIndex(): number {
    this.drain();
    return this.sm.appliedIndex();
  }

  /** True when entry batches wait to be applied (`drain()`). */
  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** Applies the entry batches received so far (in order). */
  drain(): void {
    if (this.pending.length === 0) return;
    const batches = this.pending;
    this.pending = [];
    for (let i = 0; i < batches.length; i++) {
      const e = batches[i] as Extract<MirrorEvent, { type: 'mirror-entries' }>;
      if (this.mode !== 'live' || e.epoch !== this.epoch) {
        this.o.ack(e.bytes.byteLength);
        continue;
      }
      this.applyBatch(this.unpack(e), e.bytes.byteLength);
    }
  }

  status(): CacheMirrorStatus {
    this.drain();
    return {
      mode: this.mode,
      epoch: this.epoch,
      appliedIndex: this.sm.appliedIndex(),
      gaps: this.gaps,
      snapshots: this.snapshots,
    };
  }

  /** A local read of the mirror; only while `live`. */
  read(read: CacheRead): CacheReadValue {
    this.drain();
    assert(this.mode === 'live', 'a mirror read while the mirror is not live');
    switch (read.type) {
      case 'get':
        return this.sm.getEntry(read.cache, read.key, this.readNowMs)?.value ?? null;
      case 'entries':
        return this.sm.entries(read.cache, this.logClock.nowMs());
      case 'counterGet':
        return this.sm.counterGet(read.counter, read.key);
    }
  }

  /** The live entry of `key` (getLocal); only while `live`. */
  entry(cache: string, key: string): CacheEntry | null {
    this.drain();
    assert(this.mode === 'live', 'a mirror read while the mirror is not live');
    return this.sm.getEntry(cache, key, this.readNowMs);
  }

  /**
   * A write answered by the node's thread, which had applied `nodeApplied` when it answered: if
   * the mirror is live it holds at least that much, since the entries came first.
   */
  checkAfterAnswer(nodeApplied: number): void {
    if (this.mode !== 'live') return;
    const last = this.pending.at(-1);
    assert(
      Math.max(this.sm.appliedIndex(), last === undefined ? 0 : last.last) >= nodeApplied,
      `cache mirror at ${this.sm.appliedIndex()} behind an answer of the node at ${nodeApplied}`,
    );
  }

  /**
   * Resolves true once the mirror is live with `index` applied, false if it is not live (or not
   * yet) at `deadlineMs` (performance.now() time) or stops being live while restoring.
   */
  waitFor(index: number, deadlineMs: number): Promise<boolean> {
    this.drain();
    if (this.mode === 'live' && this.sm.appliedIndex() >= index) return Promise.resolve(true);
    if (this.mode !== 'restoring') return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const w: Waiter = {
        index,
        resolve,
        timer: setTimeout(
          () => {
            this.waiters.delete(w);
            resolve(false);
          },
          Math.max(0, deadlineMs - performance.now()),
        ),
      };
      this.waiters.add(w);
    });
  }

  /** sha256 of the mirror's snapshot bytes and the index they cover (tests compare replicas). */
  async digest(): Promise<{ index: number; sha256: string }> {
    this.drain();
    return digestOf(this.sm);
  }

  /** One event from the node's thread, in the order it was sent. */
  onEvent(e: MirrorEvent): void {
    switch (e.type) {
      case 'mirror-snapshot':
        this.begin(e.epoch, e.index);
        return;
      case 'mirror-chunk':
        if (e.epoch === this.epoch && this.restoring !== null) {
          const bytes = e.chunk.byteLength;
          this.restoring.stream.push(e.chunk, () => this.o.ack(bytes));
        } else this.o.ack(e.chunk.byteLength);
        return;
      case 'mirror-snapshot-end':
        if (e.epoch === this.epoch) this.restoring?.stream.end();
        return;
      case 'mirror-entries':
        this.onEntries(e);
        return;
      case 'mirror-lost':
        if (e.epoch === this.epoch) this.stopServing();
        return;
    }
  }

  close(): void {
    this.stopServing();
    this.dropPending();
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    this.waiters.clear();
  }

  // ---------------------------------------------------------------------------------------------

  private begin(epoch: number, index: number): void {
    assert(epoch > this.epoch, `mirror epoch ${epoch} after ${this.epoch}`);
    this.stopServing();
    this.epoch = epoch;
    this.snapshots++;
    this.mode = 'restoring';
    const stream = new ChunkStream();
    const restoring = { stream, queue: [] as Array<{ entries: Entry[]; bytes: number }> };
    this.restoring = restoring;
    // A state machine of its own: an abandoned restore can never swap its state in late.
    const next = new CacheStateMachine({ limits: this.o.limits });
    next.restoreFrom(stream).then(
      () => {
        if (this.restoring !== restoring) return;
        this.restoring = null;
        if (next.appliedIndex() !== index) {
          for (const b of restoring.queue) this.o.ack(b.bytes);
          this.requestResync(`the snapshot covers ${next.appliedIndex()}, announced ${index}`);
          return;
        }
        this.sm = next;
        this.mode = 'live';
        for (const b of restoring.queue) this.applyBatch(b.entries, b.bytes);
        this.wake();
      },
      (err: unknown) => {
        if (this.restoring !== restoring) return;
        this.restoring = null;
        stream.abort(); // acknowledges the chunks the reader did not take
        for (const b of restoring.queue) this.o.ack(b.bytes);
        this.requestResync(`the snapshot could not be read: ${(err as Error).message}`);
      },
    );
  }

  private onEntries(e: Extract<MirrorEvent, { type: 'mirror-entries' }>): void {
    const bytes = e.bytes.byteLength;
    if (e.epoch !== this.epoch || this.mode === 'waiting') {
      this.o.ack(bytes);
      return;
    }
    if (this.restoring !== null) this.restoring.queue.push({ entries: this.unpack(e), bytes });
    else this.pending.push(e);
  }

  private unpack(e: Extract<MirrorEvent, { type: 'mirror-entries' }>): Entry[] {
    const entries = unpackEntries(e.bytes);
    assert(
      entries.length > 0 && entries[0]?.index === e.first && entries[entries.length - 1]?.index === e.last,
      'a mirror batch holds what its header says',
    );
    return entries;
  }

  /** Batches not applied are acknowledged (their epoch ended, or the mirror closed). */
  private dropPending(): void {
    for (const e of this.pending.splice(0)) this.o.ack(e.bytes.byteLength);
  }

  /** Applies a batch that must continue the state exactly; a gap stops serving instead. */
  private applyBatch(entries: Entry[], bytes: number): void {
    try {
      if (this.mode !== 'live') return;
      let expected = this.sm.appliedIndex() + 1;
      for (const en of entries) {
        if (en.index !== expected) {
          this.gaps++;
          this.requestResync(`entry ${en.index} does not follow ${expected - 1}`);
          return;
        }
        expected++;
      }
      this.sm.applySync(entries, noResults(entries.length));
    } finally {
      this.o.ack(bytes);
    }
    this.wake();
  }

  private requestResync(why: string): void {
    this.o.onProblem?.(`cache mirror: ${why}; asking for a new snapshot`);
    this.stopServing();
    this.o.resync(this.epoch);
  }

  /** Not live any more until the next epoch; entries queued for a restore are dropped (acked). */
  private stopServing(): void {
    this.mode = 'waiting';
    this.dropPending();
    const r = this.restoring;
    this.restoring = null;
    if (r !== null) {
      r.stream.abort();
      for (const b of r.queue) this.o.ack(b.bytes);
    }
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters) {
      const live = this.mode === 'live';
      if (live && this.sm.appliedIndex() < w.index) continue;
      if (this.mode === 'restoring') continue;
      clearTimeout(w.timer);
      this.waiters.delete(w);
      w.resolve(live);
    }
  }
}

const NO_RESULTS_CACHE: boolean[][] = [];
/** `wanted` flags of all false (the mirror needs no results), shared per length. */
function noResults(n: number): boolean[] {
  if (n > 1024) return new Array<boolean>(n).fill(false);
  let a = NO_RESULTS_CACHE[n];
  if (a === undefined) {
    a = new Array<boolean>(n).fill(false);
    NO_RESULTS_CACHE[n] = a;
  }
  return a;
}

/** sha256 of a state machine's snapshot bytes: equal for replicas that applied the same log. */
export async function digestOf(sm: CacheStateMachine): Promise<{ index: number; sha256: string }> {
  const hash = createHash('sha256');
  const info = await sm.writeSnapshot((chunk) => {
    hash.update(chunk);
  });
  return { index: info.index, sha256: hash.digest('hex') };
}

/**
 * Chunks pushed by message handlers, read by the snapshot reader. Each chunk is acknowledged
 * once the reader took it, so the node's window bounds what waits here.
 */
class ChunkStream implements AsyncIterable<Uint8Array> {
  private readonly chunks: Array<{ chunk: Uint8Array; taken: () => void }> = [];
  private ended = false;
  private aborted = false;
  private wakeReader: (() => void) | null = null;

  push(chunk: Uint8Array, taken: () => void): void {
    if (this.ended || this.aborted) {
      taken();
      return;
    }
    this.chunks.push({ chunk, taken });
    this.wakeUp();
  }

  end(): void {
    this.ended = true;
    this.wakeUp();
  }

  /** The reader fails at its next step; chunks not taken are acknowledged now. */
  abort(): void {
    this.aborted = true;
    for (const c of this.chunks.splice(0)) c.taken();
    this.wakeUp();
  }

  private wakeUp(): void {
    const w = this.wakeReader;
    this.wakeReader = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      if (this.aborted) throw new Error('the snapshot was abandoned');
      const next = this.chunks.shift();
      if (next !== undefined) {
        next.taken();
        yield next.chunk;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((r) => {
        this.wakeReader = r;
      });
    }
  }
}
