/**
 * The core's in-memory view of the Raft log: the entries after the compaction point, the commit
 * and apply positions, and what has not yet been handed to the embedder for persistence.
 *
 * Indices: entries[k].index === offset + 1 + k, where (offset, offsetTerm) identifies the entry
 * just before the first one held (the compaction point, or the snapshot the log was restored from).
 */
import { assert } from '../lib/assert.js';
import type { Entry, LogIndex, Membership, SnapshotMeta, Term } from './types.js';

export function entryBytes(e: Entry): number {
  return e.kind === 'command' ? e.data.byteLength : 16;
}

/** The payload of a released command entry (see RaftLog.release); never handed out. */
const RELEASED = new Uint8Array(0);

type EntryReader = (lo: LogIndex, hiExclusive: LogIndex, bytesMax: number) => Entry[];

export class RaftLog {
  private entriesHeld: Entry[] = [];
  /**
   * Entries up to here keep their index and term (and a config entry its membership) but not
   * their payload, which `readEntries` reads back from the embedder's log store.
   */
  private releasedThrough: LogIndex;
  private readonly readEntries: EntryReader | null;
  private offset: LogIndex;
  private offsetTerm: Term;
  committed: LogIndex;
  /** Highest index handed to the embedder for application (in a Ready's `committed`). */
  applying: LogIndex;
  /** Highest index the embedder confirmed applied (advance). */
  applied: LogIndex;
  /** First index not yet handed out for persistence. */
  unstableFrom: LogIndex;
  /** Highest index known durable on this node's disk (confirmed through advance). */
  stableIndex: LogIndex;
  /** A snapshot received from the leader, to be handed out in the next Ready. */
  pendingSnapshot: SnapshotMeta | null = null;
  /** Configuration entries held in the log, in order, above `baseMembership`. */
  private configs: Array<{ index: LogIndex; membership: Membership }> = [];
  /** The membership in force at `offset` (from the snapshot or folded-in config entries). */
  private baseMembership: Membership;

  constructor(
    snapshot: SnapshotMeta,
    entries: readonly Entry[],
    committed: LogIndex,
    applied: LogIndex,
    readEntries: EntryReader | null = null,
  ) {
    this.readEntries = readEntries;
    this.releasedThrough = snapshot.index;
    this.offset = snapshot.index;
    this.offsetTerm = snapshot.term;
    this.baseMembership = snapshot.membership;
    this.committed = committed;
    this.applied = applied;
    this.applying = applied;
    for (const e of entries) this.push(e);
    this.unstableFrom = (this.lastIndex() + 1) as LogIndex;
    this.stableIndex = this.lastIndex();
    assert(applied >= snapshot.index, 'boot: applied below snapshot');
    assert(committed >= applied, 'boot: commit below applied');
    assert(committed <= this.lastIndex(), 'boot: commit beyond the last persisted entry');
  }

  firstIndex(): LogIndex {
    return (this.offset + 1) as LogIndex;
  }

  lastIndex(): LogIndex {
    return (this.offset + this.entriesHeld.length) as LogIndex;
  }

  lastTerm(): Term {
    return this.term(this.lastIndex()) as Term;
  }

  /** The term of the entry at `index`; undefined when compacted away or beyond the end. */
  term(index: LogIndex): Term | undefined {
    if (index === this.offset) return this.offsetTerm;
    if (index < this.offset || index > this.lastIndex()) return undefined;
    return (this.entriesHeld[index - this.offset - 1] as Entry).term;
  }

  /** An entry that was not released (uncommitted entries never are). */
  entry(index: LogIndex): Entry | undefined {
    if (index <= this.offset || index > this.lastIndex()) return undefined;
    assert(index > this.releasedThrough, `entry ${index} was released`);
    return this.entriesHeld[index - this.offset - 1];
  }

  matchTerm(index: LogIndex, t: Term): boolean {
    return this.term(index) === t;
  }

  /** Raft §5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: LogIndex, lastTerm: Term): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Entries in [lo, hiExclusive), at most `bytesMax` payload bytes (but at least one entry). */
  slice(lo: LogIndex, hiExclusive: LogIndex, bytesMax = Number.POSITIVE_INFINITY): Entry[] {
    assert(lo > this.offset, `slice below the compaction point (${lo} <= ${this.offset})`);
    const hi = Math.min(hiExclusive, this.lastIndex() + 1);
    const out: Entry[] = [];
    let bytes = 0;
    let i: number = lo;
    if (i <= this.releasedThrough && i < hi) {
      const upTo = Math.min(hi, this.releasedThrough + 1);
      const read = (this.readEntries as EntryReader)(i as LogIndex, upTo as LogIndex, bytesMax);
      assert(read.length > 0, `the log store returned no entries at ${i}`);
      for (const e of read) {
        // What the store returns must be what this log holds there: same place, same term.
        assert(
          e.index === i && e.index < upTo && e.term === this.term(e.index),
          `log store entry ${e.index} differs`,
        );
        bytes += entryBytes(e);
        out.push(e);
        i++;
      }
      if (i < upTo) return out; // the byte budget ended inside the released part
    }
    for (; i < hi; i++) {
      const e = this.entriesHeld[i - this.offset - 1] as Entry;
      bytes += entryBytes(e);
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(e);
    }
    return out;
  }

  /**
   * Drops the payload of command entries up to `index` (kept: index, term, kind, a config's
   * membership). Only for entries that are durable here and handed out for applying: they can
   * no longer be truncated, and `slice` reads them back through `readEntries`.
   */
  release(index: LogIndex): void {
    if (this.readEntries === null) return;
    const upTo = Math.min(index, this.applying, this.stableIndex, this.lastIndex());
    for (let i = this.releasedThrough + 1; i <= upTo; i++) {
      const k = i - this.offset - 1;
      const e = this.entriesHeld[k] as Entry;
      // An empty payload (released already, or passed without one at boot) stays as it is.
      if (e.kind === 'command' && e.data.byteLength > 0)
        this.entriesHeld[k] = { kind: 'command', index: e.index, term: e.term, data: RELEASED };
    }
    if (upTo > this.releasedThrough) this.releasedThrough = upTo as LogIndex;
  }

  /** Append entries, truncating any conflicting suffix first. Never truncates committed entries. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(first.index > this.committed, `truncating committed entry ${first.index} <= ${this.committed}`);
    assert(first.index <= this.lastIndex() + 1, 'append leaves a gap');
    if (first.index <= this.lastIndex()) this.truncateFrom(first.index);
    for (const e of entries) this.push(e);
  }

  private push(e: Entry): void {
    assert(e.index === this.lastIndex() + 1, `non-contiguous entry ${e.index} after ${this.lastIndex()}`);
    assert(e.term >= this.lastTerm(), 'entry term regressed');
    this.entriesHeld.push(e);
    if (e.kind === 'config') this.configs.push({ index: e.index, membership: e.membership });
  }

  private truncateFrom(index: LogIndex): void {
    assert(index > this.releasedThrough, `truncating released entry ${index}`);
    this.entriesHeld.length = index - this.offset - 1;
    while (this.configs.length > 0 && (this.configs[this.configs.length - 1]?.index as number) >= index) {
      this.configs.pop();
    }
    if (this.unstableFrom > index) this.unstableFrom = index;
    if (this.stableIndex >= index) this.stableIndex = (index - 1) as LogIndex;
  }

  /**
   * Find the append point for a leader's entries that follow (prevIndex, prevTerm): returns the
   * index of the last new entry, or null when our log does not match at prevIndex.
   */
  maybeAppend(
    prevIndex: LogIndex,
    prevTerm: Term,
    leaderCommit: LogIndex,
    entries: readonly Entry[],
  ): LogIndex | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = (prevIndex + entries.length) as LogIndex;
    let k = 0;
    // Skip what we already hold (duplicates, reordered messages).
    for (; k < entries.length; k++) {
      const e = entries[k] as Entry;
      if (e.index <= this.offset) continue; // compacted: committed and therefore matching
      if (e.index > this.lastIndex() || this.term(e.index) !== e.term) break;
    }
    if (k < entries.length) this.append(entries.slice(k));
    this.commitTo(Math.min(leaderCommit, lastNew) as LogIndex);
    return lastNew;
  }

  commitTo(index: LogIndex): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit ${index} beyond last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /**
   * Fast back-off (etcd's findConflictByTerm): the largest index <= `index` whose term is <= `t`,
   * so a leader can skip a whole term of divergent entries in one round trip.
   */
  findConflictByTerm(index: LogIndex, t: Term): { index: LogIndex; term: Term } {
    let i = Math.min(index, this.lastIndex()) as LogIndex;
    // Bounded: i only decreases, and term() is undefined below the compaction point.
    for (; i >= this.offset; i = (i - 1) as LogIndex) {
      const ti = this.term(i) as Term;
      if (ti <= t) return { index: i, term: ti };
    }
    return { index: i, term: 0 as Term };
  }

  /** Entries not yet handed out for persistence; marks them handed out. */
  takeUnstable(): Entry[] {
    if (this.unstableFrom > this.lastIndex()) return [];
    const out = this.slice(this.unstableFrom, (this.lastIndex() + 1) as LogIndex);
    this.unstableFrom = (this.lastIndex() + 1) as LogIndex;
    return out;
  }

  hasUnstable(): boolean {
    return this.unstableFrom <= this.lastIndex();
  }

  /** The persisted copy of (index, term) is durable, unless it was truncated meanwhile. */
  stableTo(index: LogIndex, t: Term): void {
    if (this.term(index) === t && index > this.stableIndex) this.stableIndex = index;
  }

  /** Committed entries ready for application, up to `upTo`, at most `countMax`. */
  nextCommitted(upTo: LogIndex, countMax: number): Entry[] {
    const lo = Math.max(this.applying + 1, this.firstIndex());
    const hi = Math.min(upTo, this.lastIndex(), lo + countMax - 1);
    if (hi < lo) return [];
    return this.slice(lo as LogIndex, (hi + 1) as LogIndex);
  }

  /** Replace the whole log by a snapshot received from the leader. */
  restore(snapshot: SnapshotMeta): void {
    assert(snapshot.index > this.committed, 'restoring a snapshot behind the commit index');
    // Only what matched the leader (up to our commit index) stays known durable; the snapshot
    // itself becomes durable when the embedder persists it (advance → stableTo).
    this.stableIndex = Math.min(this.stableIndex, this.committed) as LogIndex;
    this.entriesHeld = [];
    this.configs = [];
    this.releasedThrough = snapshot.index;
    this.offset = snapshot.index;
    this.offsetTerm = snapshot.term;
    this.baseMembership = snapshot.membership;
    this.committed = snapshot.index;
    this.unstableFrom = (snapshot.index + 1) as LogIndex;
    this.pendingSnapshot = snapshot;
  }

  /** Drop entries up to and including `index` (they are covered by a snapshot). */
  compact(index: LogIndex): void {
    if (index <= this.offset) return;
    assert(index <= this.applied, 'compacting unapplied entries');
    assert(index <= this.stableIndex, 'compacting unpersisted entries');
    const t = this.term(index) as Term;
    const drop = index - this.offset;
    this.entriesHeld.splice(0, drop);
    this.offset = index;
    this.offsetTerm = t;
    if (this.releasedThrough < index) this.releasedThrough = index;
    while (this.configs.length > 0 && (this.configs[0]?.index as number) <= index) {
      this.baseMembership = (this.configs.shift() as { membership: Membership }).membership;
    }
  }

  /** The membership in force: the latest configuration in the log, committed or not (thesis §4.1). */
  membership(): Membership {
    const last = this.configs[this.configs.length - 1];
    return last === undefined ? this.baseMembership : last.membership;
  }

  /** The membership in force at `index` (which must not be compacted away). */
  membershipAt(index: LogIndex): Membership {
    assert(index >= this.offset, 'membershipAt a compacted index');
    let m = this.baseMembership;
    for (const c of this.configs) {
      if (c.index > index) break;
      m = c.membership;
    }
    return m;
  }

  /** Index of the latest configuration entry held (0 when none above the base). */
  lastConfigIndex(): LogIndex {
    return (this.configs[this.configs.length - 1]?.index ?? 0) as LogIndex;
  }
}
