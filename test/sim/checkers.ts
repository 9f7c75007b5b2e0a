/**
 * The safety checkers of the Raft paper's Figure 3, run against the whole simulated cluster
 * (god's view): election safety, log matching, leader completeness, state-machine safety.
 * "Known committed" means applied by some node: a node applies only committed entries, so an
 * entry applied anywhere must be at that index on every node, and in the log of every leader of
 * a later term than the one that committed it. That term is not observable, but it is at most
 * the applying node's current term (the node learned the commit index from a leader of a term
 * no later than its own): leaders of higher terms than that bound must hold the entry. (A leader
 * of an older term can appear late: a candidate stalled while its votes were in flight.)
 */
import type { Entry, LogIndex, NodeId, Status, Term } from '../../src/raft/types.js';
import { fail } from './failure.js';
import { entryDigest, type KvSnapshot } from './kv.js';

/** What the checkers read of a node: its status and in-memory log (a RaftGroup, or a core). */
export interface LogReader {
  status(): Status;
  entries(lo: LogIndex, hiExclusive: LogIndex): readonly Entry[];
}

export interface SafetyStats {
  leadersElected: number;
  entriesCommitted: number;
}

/** A node's in-memory log as the checkers read it. */
interface LogView {
  readonly id: NodeId;
  /** First index held in memory (entries below are covered by the snapshot). */
  readonly first: number;
  readonly entries: readonly Entry[];
}

export class SafetyChecker {
  /** Term → the node that became leader in it (Raft §5.2: at most one). */
  private readonly leaders = new Map<number, NodeId>();
  /** Index → term / content digest of the entry applied there (dense from 1). */
  private readonly committedTerm: number[] = [0];
  private readonly committedDigest: string[] = [''];
  private readonly committedBy: number[] = [0];
  /** Index → an upper bound on the term in which the entry was committed. */
  private readonly committedTermBound: number[] = [0];
  /** Snapshot index → the state-machine digest at that index, from the first node that took it. */
  private readonly snapshotDigests = new Map<number, { digest: string; node: NodeId }>();
  readonly stats: SafetyStats = { leadersElected: 0, entriesCommitted: 0 };

  /** Highest index known committed (applied somewhere). */
  get committedIndex(): number {
    return this.committedTerm.length - 1;
  }

  /** Election safety, then leader completeness (Raft §5.4): called when `id` becomes leader of `t`. */
  onLeader(id: NodeId, t: Term, core: LogReader): void {
    const other = this.leaders.get(t);
    if (other !== undefined && other !== id) {
      fail('election-safety', `nodes ${other} and ${id} were both leader in term ${t}`);
    }
    if (other === undefined) {
      this.leaders.set(t, id);
      this.stats.leadersElected++;
    }
    const view = logView(id, core);
    const missing = this.firstMissingCommitted(view, t);
    if (missing !== null) {
      fail(
        'leader-completeness',
        `node ${id} became leader of term ${t} without committed entry ${missing.index} (term ${missing.term}, applied by node ${missing.by}): ${missing.why}`,
      );
    }
  }

  /** State-machine safety: every node applies the same entry at each index. */
  onApply(id: NodeId, e: Entry, currentTerm: Term): void {
    const digest = entryDigest(e);
    const known = this.committedTerm[e.index];
    if (known === undefined) {
      if (e.index !== this.committedTerm.length) {
        fail(
          'state-machine-safety',
          `node ${id} applied index ${e.index} but nothing is known applied at ${this.committedTerm.length}`,
        );
      }
      this.committedTerm.push(e.term);
      this.committedDigest.push(digest);
      this.committedBy.push(id);
      this.committedTermBound.push(currentTerm);
      this.stats.entriesCommitted++;
      return;
    }
    if (currentTerm < (this.committedTermBound[e.index] as number))
      this.committedTermBound[e.index] = currentTerm;
    if (known !== e.term || this.committedDigest[e.index] !== digest) {
      fail(
        'state-machine-safety',
        `node ${id} applied ${describe(e.term, digest)} at index ${e.index}, node ${this.committedBy[e.index]} applied ${describe(known, this.committedDigest[e.index] ?? '')}`,
      );
    }
  }

  /** A node's state machine at `snap.meta.index` must equal every other node's at that index. */
  onSnapshot(id: NodeId, snap: KvSnapshot, how: 'taken' | 'installed'): void {
    const i = snap.meta.index;
    if (i === 0) return;
    const t = this.committedTerm[i];
    if (t !== undefined && t !== snap.meta.term) {
      fail(
        'state-machine-safety',
        `node ${id} ${how} a snapshot at ${i} of term ${snap.meta.term}; term ${t} was applied there`,
      );
    }
    const known = this.snapshotDigests.get(i);
    if (known === undefined) {
      this.snapshotDigests.set(i, { digest: snap.digest, node: id });
      return;
    }
    if (known.digest !== snap.digest) {
      fail(
        'state-machine-safety',
        `node ${id} ${how} a snapshot at ${i} with state {${snap.digest}}; node ${known.node} had {${known.digest}}`,
      );
    }
  }

  /**
   * Log matching (Raft §5.3): if two logs hold an entry with the same index and term, they are
   * identical up to that index. Checked pairwise over the range both still hold in memory.
   */
  checkLogMatching(cores: ReadonlyArray<{ id: NodeId; core: LogReader }>): void {
    const views = cores.map(({ id, core }) => logView(id, core));
    for (const v of views) this.checkAgainstCommitted(v);
    for (let a = 0; a < views.length; a++) {
      for (let b = a + 1; b < views.length; b++) {
        checkPair(views[a] as LogView, views[b] as LogView);
      }
    }
  }

  /**
   * A log's boundary (Raft §7): the entry just before its first one, (index, term), is the point
   * it was compacted or restored to. It must be an entry known committed, with the term
   * committed there, and the log after it must go on from it (terms never decrease along a
   * log). A snapshot install that keeps a tail contradicting the snapshot breaks both.
   */
  checkLogBoundary(
    id: NodeId,
    where: string,
    boundary: { index: number; term: number },
    firstEntryTerm: number | undefined,
  ): void {
    const { index, term } = boundary;
    if (firstEntryTerm !== undefined && firstEntryTerm < term) {
      fail(
        'log-matching',
        `node ${id}'s ${where} log starts after (${index}, term ${term}) with an entry of term ${firstEntryTerm}: terms never decrease along a log`,
      );
    }
    if (index === 0) return;
    const t = this.committedTerm[index];
    if (t === undefined) {
      fail(
        'log-matching',
        `node ${id}'s ${where} log was compacted to ${index}, beyond every index known committed (${this.committedIndex})`,
      );
    }
    if (t !== term) {
      fail(
        'log-matching',
        `node ${id}'s ${where} log starts after (${index}, term ${term}); term ${t} was committed at ${index} (applied by node ${this.committedBy[index]})`,
      );
    }
  }

  /**
   * Log matching against the committed prefix: a log that holds a known-committed entry's index
   * with its term holds every committed entry up to it (an entry that agrees on (index, term)
   * agrees on everything before).
   */
  private checkAgainstCommitted(v: LogView): void {
    const hi = Math.min(v.first + v.entries.length - 1, this.committedIndex);
    let k = hi;
    for (; k >= v.first; k--) if ((v.entries[k - v.first] as Entry).term === this.committedTerm[k]) break;
    for (let i = k; i >= v.first; i--) {
      const e = v.entries[i - v.first] as Entry;
      const digest = this.committedDigest[i] as string;
      if (e.term !== this.committedTerm[i] || entryDigest(e) !== digest) {
        fail(
          'log-matching',
          `node ${v.id} holds committed entry ${k} (term ${this.committedTerm[k]}) but differs from the committed log at ${i}: ${describe(e.term, entryDigest(e))} vs ${describe(this.committedTerm[i] as number, digest)} (applied by node ${this.committedBy[i]})`,
        );
      }
    }
  }

  private firstMissingCommitted(
    view: LogView,
    leaderTerm: Term,
  ): { index: number; term: number; by: number; why: string } | null {
    const last = view.first + view.entries.length - 1;
    for (let i = view.first; i <= this.committedIndex; i++) {
      if ((this.committedTermBound[i] as number) >= leaderTerm) continue;
      const t = this.committedTerm[i] as number;
      const by = this.committedBy[i] as number;
      if (i > last) return { index: i, term: t, by, why: `its log ends at ${last}` };
      const e = view.entries[i - view.first] as Entry;
      if (e.term !== t) return { index: i, term: t, by, why: `it holds term ${e.term} there` };
      if (entryDigest(e) !== this.committedDigest[i])
        return { index: i, term: t, by, why: 'its entry differs' };
    }
    return null;
  }
}

function logView(id: NodeId, core: LogReader): LogView {
  const st = core.status();
  const first = st.firstIndex as number;
  const entries =
    st.lastIndex >= first ? core.entries(st.firstIndex, (st.lastIndex + 1) as typeof st.lastIndex) : [];
  return { id, first, entries };
}

function checkPair(a: LogView, b: LogView): void {
  const lo = Math.max(a.first, b.first);
  const hi = Math.min(a.first + a.entries.length, b.first + b.entries.length) - 1;
  let k = hi;
  for (; k >= lo; k--) {
    if ((a.entries[k - a.first] as Entry).term === (b.entries[k - b.first] as Entry).term) break;
  }
  for (let i = k; i >= lo; i--) {
    const ea = a.entries[i - a.first] as Entry;
    const eb = b.entries[i - b.first] as Entry;
    if (ea.term !== eb.term || entryDigest(ea) !== entryDigest(eb)) {
      fail(
        'log-matching',
        `nodes ${a.id} and ${b.id} agree on index ${k} (term ${(a.entries[k - a.first] as Entry).term}) but differ at ${i}: ${describe(ea.term, entryDigest(ea))} vs ${describe(eb.term, entryDigest(eb))}`,
      );
    }
  }
}

function describe(t: number, digest: string): string {
  return `(term ${t}, ${digest.length > 80 ? `${digest.slice(0, 77)}...` : digest})`;
}
