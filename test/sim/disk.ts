/**
 * One node's simulated disk: what survives a crash. A Ready's writes are one "pending write"
 * that completes after a random latency (the disk event); a crash before completion loses it,
 * or, as a torn write, keeps a prefix of it in the order the Ready contract prescribes:
 * snapshot, then entries one by one, then the hard state (so the hard state is all there or not,
 * and never there without the entries it may commit).
 */
import { assert } from '../../src/lib/assert.js';
import type { Entry, HardState, LogIndex, RaftBootState } from '../../src/raft/types.js';
import { logIndex } from '../../src/raft/types.js';
import { fail } from './failure.js';
import type { KvSnapshot } from './kv.js';

export interface DiskWrite {
  readonly snapshot: KvSnapshot | null;
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
}

/** How many independently-lost pieces a write has (a torn write keeps a prefix of them). */
export function writeUnits(w: DiskWrite): number {
  return (w.snapshot === null ? 0 : 1) + w.entries.length + (w.hardState === null ? 0 : 1);
}

export class Disk {
  hardState: HardState;
  snapshot: KvSnapshot;
  /** Persisted entries, contiguous; may start at or below snapshot.index (the kept tail). */
  private log: Entry[] = [];

  constructor(hardState: HardState, snapshot: KvSnapshot) {
    this.hardState = hardState;
    this.snapshot = snapshot;
  }

  lastIndex(): LogIndex {
    const last = this.log[this.log.length - 1];
    return last === undefined
      ? this.snapshot.meta.index
      : logIndex(Math.max(last.index, this.snapshot.meta.index));
  }

  /** Persisted entries [lo, hiExclusive), at most `bytesMax` payload bytes but at least one. */
  entries(lo: LogIndex, hiExclusive: LogIndex, bytesMax: number): Entry[] {
    const first = this.log[0];
    const out: Entry[] = [];
    if (first === undefined) return out;
    let bytes = 0;
    for (let i = lo - first.index; i >= 0 && i < this.log.length; i++) {
      const e = this.log[i] as Entry;
      if (e.index >= hiExclusive) break;
      bytes += e.kind === 'command' ? e.data.byteLength : 16;
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(e);
    }
    return out;
  }

  /** Persist the first `unitsKept` pieces of `w` (all of them for a completed write). */
  write(w: DiskWrite, unitsKept = writeUnits(w)): void {
    let budget = unitsKept;
    if (w.snapshot !== null) {
      if (budget-- <= 0) return;
      this.installSnapshot(w.snapshot);
    }
    for (const e of w.entries) {
      if (budget-- <= 0) return;
      this.appendEntry(e);
    }
    if (w.hardState !== null) {
      if (budget-- <= 0) return;
      this.hardState = w.hardState;
    }
  }

  /** The state machine took a snapshot; entries up to `compactTo` are no longer needed. */
  compact(snapshot: KvSnapshot, compactTo: LogIndex): void {
    assert(compactTo <= snapshot.meta.index, 'compacting beyond the snapshot');
    if (snapshot.meta.index > this.snapshot.meta.index) this.snapshot = snapshot;
    const drop = this.log.findIndex((e) => e.index > compactTo);
    this.log = drop < 0 ? [] : this.log.slice(drop);
  }

  /** What a restarting node finds: the state machine restarts from the snapshot. */
  bootState(): RaftBootState {
    const snap = this.snapshot.meta;
    const entries = this.log.filter((e) => e.index > snap.index);
    const first = entries[0];
    assert(first === undefined || first.index === snap.index + 1, 'disk log has a gap after the snapshot');
    const lastIndex = logIndex(snap.index + entries.length);
    // The snapshot holds applied, hence committed, entries even when a later commit was not persisted.
    const commit = logIndex(Math.max(this.hardState.commit, snap.index));
    assert(commit <= lastIndex, `persisted commit ${commit} beyond the persisted log ${lastIndex}`);
    return {
      hardState: { ...this.hardState, commit },
      snapshot: snap,
      entries,
      appliedIndex: snap.index,
    };
  }

  /** Raft Figure 13: keep the log after the snapshot only if it holds the snapshot's last entry. */
  private installSnapshot(s: KvSnapshot): void {
    const at = this.log.find((e) => e.index === s.meta.index);
    this.log =
      at !== undefined && at.term === s.meta.term ? this.log.filter((e) => e.index > s.meta.index) : [];
    this.snapshot = s;
  }

  private appendEntry(e: Entry): void {
    if (e.index <= this.snapshot.meta.index) {
      fail(
        'ready-contract',
        `entry ${e.index} to persist is covered by the snapshot at ${this.snapshot.meta.index}`,
      );
    }
    const first = this.log[0];
    if (first !== undefined && e.index <= this.log[this.log.length - 1]!.index) {
      // Drop every entry at index >= e.index (the Ready contract's truncation), then append.
      this.log.length = Math.max(0, e.index - first.index);
    }
    const last = this.log[this.log.length - 1];
    const expected = Math.max(last?.index ?? 0, this.snapshot.meta.index) + 1;
    if (e.index !== expected) {
      fail(
        'ready-contract',
        `entry ${e.index} to persist leaves a gap (the disk log ends at ${expected - 1})`,
      );
    }
    this.log.push(e);
  }
}
