/**
 * One node's simulated disk, under the product's storage seams: the log store (`LogStore`: log
 * and hard state), the snapshot store (`GroupSnapshotStore`) and the state machine's database.
 *
 * A write is visible at once (LogStore's contract) and durable only after a random latency; its
 * promise resolves then (when the process runs: a paused process learns of it late). Writes
 * become durable in the order they were made. A crash keeps what is durable; of what is not, it
 * keeps nothing (a lost write) or, as a torn write, a prefix in call order, counted in pieces
 * (each entry of an append is a piece; a hard state, a purge and a snapshot commit are one each),
 * so a hard state is never durable without the entries written before it. Uncommitted snapshot
 * files (being written or received) are gone after a crash, as the file store deletes them at
 * open. The state machine's database is durable with every applied entry (a SQLite transaction
 * per batch).
 */
import { assert } from '../../src/lib/assert.js';
import type { Random } from '../../src/lib/prng.js';
import type { GroupSnapshotStore, SnapshotCheck, StoredSnapshot } from '../../src/node/seams.js';
import type { Entry, HardState, LogIndex, NodeId, SnapshotMeta, Term } from '../../src/raft/types.js';
import type { LogStore } from '../../src/storage/log-store.js';
import {
  emptyMemoryLogState,
  type MemoryLogState,
  MemoryLogStore,
} from '../../src/storage/memory-log-store.js';
import type { EventQueue } from './event-queue.js';
import { fail } from './failure.js';
import { type KvSnapshot, KvStateMachine } from './kv.js';

/** What an operator wipe deletes (see SimDisk.wipe). */
export type WipeTarget = 'log' | 'snapshots' | 'db' | 'all';

/** A copy of a node's durable data (SimDisk.copy). */
export interface DiskCopy {
  readonly log: Readonly<MemoryLogState>;
  readonly kv: KvSnapshot;
  readonly committed: ReadonlyArray<{ stored: StoredSnapshot; file: KvSnapshot }>;
}

/** One life of a process: its writes count only while it lives (a crash ends it). */
export interface ProcessLife {
  readonly dead: boolean;
  /** Runs `fn` now, or when the process resumes if it is paused; never once it is dead. */
  whenRunning(kind: string, fn: () => void): void;
}

export interface DiskTiming {
  readonly diskLatencyUsMin: number;
  readonly diskLatencyUsMax: number;
  /** Probability that one write is much slower (a long window for crashes mid-persist). */
  readonly slowDiskRate: number;
  readonly slowDiskUsMax: number;
}

interface PendingWrite {
  readonly pieces: number;
  /** Makes the first `kept` pieces durable (nothing once its process dropped the disk: drop()). */
  persist: (kept: number) => void;
}

/** A promise that never settles: what a dead process's calls return. */
const NEVER = new Promise<never>(() => {});

/** Snapshots kept committed (as the file store keeps two). */
const SNAPSHOTS_KEPT = 2;

export class SimDisk {
  /** The durable log and hard state. */
  readonly log: MemoryLogState = emptyMemoryLogState();
  /** The state machine's database (durable with every applied entry). */
  kv: KvStateMachine;
  /** Every snapshot file, committed or not, by path. */
  readonly files = new Map<string, KvSnapshot>();
  /** Committed snapshots, oldest first. */
  committed: StoredSnapshot[] = [];
  private pending: PendingWrite[] = [];
  /** Lives that dropped what this disk held and run on (drop()): their writes persist nothing. */
  private readonly dropped = new WeakSet<ProcessLife>();
  private lastDurableUs = 0;
  private tempSeq = 0;

  constructor(
    readonly id: NodeId,
    readonly initial: KvSnapshot,
    private readonly queue: EventQueue,
    private readonly rng: Random,
    private readonly timing: DiskTiming,
  ) {
    this.kv = new KvStateMachine(initial);
  }

  /** Some write is not durable yet. */
  get writing(): boolean {
    return this.pending.length > 0;
  }

  /**
   * A write of `pieces` made by `life`: durable after a random latency (never before an earlier
   * write), resolved once durable and the process runs.
   */
  write(life: ProcessLife, pieces: number, persist: (kept: number) => void): Promise<void> {
    if (life.dead) return NEVER;
    if (this.dropped.has(life)) return Promise.resolve();
    const t = this.timing;
    let latencyUs = this.rng.int(t.diskLatencyUsMin, t.diskLatencyUsMax + 1);
    if (t.slowDiskRate > 0 && this.rng.chance(t.slowDiskRate))
      latencyUs += this.rng.int(0, t.slowDiskUsMax + 1);
    const durableUs = Math.max(this.lastDurableUs, this.queue.now + latencyUs);
    this.lastDurableUs = durableUs;
    const w: PendingWrite = { pieces, persist };
    this.pending.push(w);
    return new Promise<void>((resolve) => {
      this.queue.after(durableUs - this.queue.now, 'disk', this.id, () => {
        if (life.dead) return;
        assert(this.pending[0] === w, 'disk writes become durable in order');
        this.pending.shift();
        w.persist(w.pieces);
        life.whenRunning('disk-done', resolve);
      });
    });
  }

  /**
   * The process dies. On power loss (the machine goes down with it) what is durable stays; the
   * writes in flight are lost, or torn (a prefix of their pieces survives, `tornRate`). When
   * only the process dies (killed, crashed), the operating system still holds every write it
   * made and writes it out: nothing is lost. Returns what happened, for the trace; null when
   * nothing was in flight.
   */
  crash(tornRate: number, kind: 'power' | 'process' = 'power'): { what: string; torn: boolean } | null {
    const pending = this.pending;
    this.pending = [];
    this.lastDurableUs = this.queue.now;
    for (const path of [...this.files.keys()]) {
      if (!this.committed.some((s) => s.path === path)) this.files.delete(path);
    }
    const pieces = pending.reduce((n, w) => n + w.pieces, 0);
    if (pieces === 0) return null;
    if (kind === 'process') {
      for (const w of pending) w.persist(w.pieces);
      return { what: `process killed: the OS wrote its ${pieces} pending pieces`, torn: false };
    }
    if (!this.rng.chance(tornRate)) return { what: `write of ${pieces} pieces lost`, torn: false };
    const kept = this.rng.int(0, pieces + 1);
    let budget = kept;
    for (const w of pending) {
      if (budget <= 0) break;
      w.persist(Math.min(budget, w.pieces));
      budget -= w.pieces;
    }
    return { what: `torn write: ${kept}/${pieces} pieces kept`, torn: true };
  }

  /**
   * An operator deletes part of a stopped node's data directory: its Raft log (with the hard
   * state: term and vote), its snapshots, its state machine's database, or all of it.
   */
  wipe(what: WipeTarget): void {
    assert(this.pending.length === 0, 'wipe of a disk with writes in flight (the node must be down)');
    this.clear(what);
  }

  /**
   * The running process `life` drops everything this disk holds and keeps its state elsewhere
   * from now on (the cache simulator's node whose group kept in memory is founded or joined anew
   * in place: CacheGroup.refound). Its writes in flight and any later write of this life (the
   * closed group's last ones) persist nothing; they still complete, in order.
   */
  drop(life: ProcessLife): void {
    this.dropped.add(life);
    for (const w of this.pending) w.persist = () => {};
    this.clear('all');
  }

  private clear(what: WipeTarget): void {
    if (what === 'log' || what === 'all') {
      const d = this.log;
      d.purgedIndex = 0;
      d.purgedTerm = 0;
      d.entries = [];
      d.hardState = null;
    }
    if (what === 'snapshots' || what === 'all') {
      for (const s of this.committed) this.files.delete(s.path);
      this.committed = [];
    }
    if (what === 'db' || what === 'all') this.kv = new KvStateMachine(this.initial);
  }

  /**
   * What an operator's copy of the stopped or running node's data directory holds: what is
   * durable at this instant (a consistent file-system snapshot).
   */
  copy(): DiskCopy {
    const d = this.log;
    return {
      log: {
        purgedIndex: d.purgedIndex,
        purgedTerm: d.purgedTerm,
        entries: [...d.entries],
        hardState: d.hardState,
      },
      kv: this.kv.snapshot(),
      committed: this.committed.map((s) => ({ stored: s, file: this.file(s.path) })),
    };
  }

  /**
   * The operator puts an older copy back in place of the stopped node's data directory; the
   * hard state keeps `keep`'s term and vote (with the copy's commit).
   */
  restore(c: DiskCopy, keep: HardState): void {
    assert(this.pending.length === 0, 'restore onto a disk with writes in flight (the node must be down)');
    const d = this.log;
    d.purgedIndex = c.log.purgedIndex;
    d.purgedTerm = c.log.purgedTerm;
    d.entries = [...c.log.entries];
    const commit = c.log.hardState?.commit ?? (0 as LogIndex);
    d.hardState = { term: keep.term, vote: keep.vote, commit };
    this.kv = new KvStateMachine(c.kv);
    this.files.clear();
    this.committed = [];
    for (const { stored, file } of c.committed) {
      this.files.set(stored.path, file);
      this.committed.push(stored);
    }
  }

  tempPath(): string {
    return `n${this.id}/incoming-${++this.tempSeq}.tmp`;
  }

  /** A snapshot file that must exist (a broken runtime contract otherwise). */
  file(path: string): KvSnapshot {
    const f = this.files.get(path);
    if (f === undefined) fail('ready-contract', `node ${this.id}: no snapshot file ${path}`);
    return f;
  }
}

/** The log store of one process life over its disk. */
export class SimLogStore implements LogStore {
  /** What the process sees (every call at once). */
  private readonly live: MemoryLogStore;
  /** What survives (each call once durable). */
  private readonly durable: MemoryLogStore;
  /** Entries read by the core after boot (RaftConfig.readEntries), for the run's statistics. */
  entriesRead = 0;

  constructor(
    private readonly disk: SimDisk,
    private readonly life: ProcessLife,
    /** Called after every purge, of what the process sees and of what survives (checkers). */
    private readonly onPurge: (where: 'live' | 'durable', log: Readonly<MemoryLogState>) => void = () => {},
  ) {
    const d = disk.log;
    this.live = new MemoryLogStore({
      state: {
        purgedIndex: d.purgedIndex,
        purgedTerm: d.purgedTerm,
        entries: [...d.entries],
        hardState: d.hardState,
      },
    });
    this.durable = new MemoryLogStore({ state: d });
  }

  firstIndex(): LogIndex {
    return this.live.firstIndex();
  }

  lastIndex(): LogIndex {
    return this.live.lastIndex();
  }

  termAt(index: LogIndex): Term | undefined {
    return this.live.termAt(index);
  }

  entries(lo: LogIndex, hiExclusive: LogIndex, bytesMax?: number): Entry[] {
    const out = this.live.entries(lo, hiExclusive, bytesMax);
    this.entriesRead += out.length;
    return out;
  }

  loadHardState(): HardState | null {
    return this.live.loadHardState();
  }

  append(entries: readonly Entry[]): Promise<void> {
    if (this.life.dead) return NEVER;
    void this.live.append(entries);
    return this.disk.write(this.life, entries.length, (kept) => {
      if (kept > 0) void this.durable.append(entries.slice(0, kept));
    });
  }

  purgeTo(index: LogIndex, t: Term): Promise<void> {
    if (this.life.dead) return NEVER;
    void this.live.purgeTo(index, t);
    this.onPurge('live', this.live.state);
    return this.disk.write(this.life, 1, () => {
      void this.durable.purgeTo(index, t);
      this.onPurge('durable', this.durable.state);
    });
  }

  /** What the process sees of its log (the checkers read its boundary). */
  get view(): Readonly<MemoryLogState> {
    return this.live.state;
  }

  saveHardState(hs: HardState): Promise<void> {
    if (this.life.dead) return NEVER;
    void this.live.saveHardState(hs);
    return this.disk.write(this.life, 1, () => void this.durable.saveHardState(hs));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The snapshot store of one process life: a commit is a disk write like any other. */
export class SimSnapshotStore implements GroupSnapshotStore {
  constructor(
    private readonly disk: SimDisk,
    private readonly life: ProcessLife,
  ) {}

  latest(): StoredSnapshot | null {
    return this.disk.committed[this.disk.committed.length - 1] ?? null;
  }

  tempPath(): string {
    return this.disk.tempPath();
  }

  commit(tempPath: string, meta: SnapshotMeta): Promise<StoredSnapshot> {
    if (this.life.dead) return NEVER;
    const disk = this.disk;
    const data = disk.file(tempPath);
    assert(
      data.meta.index === meta.index && data.meta.term === meta.term,
      `snapshot file ${tempPath} holds ${data.meta.index}/${data.meta.term}, committed as ${meta.index}/${meta.term}`,
    );
    // No checksum: the simulated disk holds a snapshot as a value, not bytes a fault could flip.
    const stored: StoredSnapshot = {
      meta,
      path: `n${disk.id}/${meta.index}-${meta.term}.snap`,
      sha256: null,
    };
    return disk
      .write(this.life, 1, () => {
        disk.files.delete(tempPath);
        disk.files.set(stored.path, data);
        const kept = disk.committed.filter((s) => s.meta.index !== meta.index);
        kept.push(stored);
        kept.sort((a, b) => a.meta.index - b.meta.index);
        while (kept.length > SNAPSHOTS_KEPT) disk.files.delete((kept.shift() as StoredSnapshot).path);
        disk.committed = kept;
      })
      .then(() => stored);
  }

  discard(path: string): Promise<void> {
    if (!this.disk.committed.some((s) => s.path === path)) this.disk.files.delete(path);
    return Promise.resolve();
  }

  /** A snapshot is whole as long as its file exists: the simulated disk damages no bytes. */
  check(stored: StoredSnapshot): Promise<SnapshotCheck> {
    return Promise.resolve(
      this.disk.files.has(stored.path)
        ? { ok: true, snapshot: stored }
        : { ok: false, reason: 'its file is gone' },
    );
  }

  drop(stored: StoredSnapshot): Promise<void> {
    if (this.life.dead) return NEVER;
    const disk = this.disk;
    return disk.write(this.life, 1, () => {
      disk.committed = disk.committed.filter((s) => s.path !== stored.path);
      disk.files.delete(stored.path);
    });
  }
}
