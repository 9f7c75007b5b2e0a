import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { AssertionError } from '../../src/lib/assert.js';
import { entryBytes, RaftLog } from '../../src/raft/raft-log.js';
import type { Entry, LogIndex, Membership, NodeId, SnapshotMeta, Term } from '../../src/raft/types.js';

const ix = (n: number) => n as LogIndex;
const tm = (n: number) => n as Term;
const members = (...voters: number[]): Membership => ({ voters: voters as NodeId[], learners: [] });
const BASE = members(1, 2, 3);

const cmd = (index: number, t: number, bytes = 1): Entry => ({
  kind: 'command',
  index: ix(index),
  term: tm(t),
  data: new Uint8Array(bytes),
});
const config = (index: number, t: number, m: Membership): Entry => ({
  kind: 'config',
  index: ix(index),
  term: tm(t),
  membership: m,
});
const noop = (index: number, t: number): Entry => ({ kind: 'noop', index: ix(index), term: tm(t) });

const snap = (index: number, t: number, membership: Membership = BASE): SnapshotMeta => ({
  index: ix(index),
  term: tm(t),
  membership,
});

/** Command entries after `offset`, one per term in `terms`. */
const entriesWithTerms = (terms: readonly number[], offset = 0, bytes = 1): Entry[] =>
  terms.map((t, k) => cmd(offset + 1 + k, t, bytes));

/** A log holding `terms` (entries 1..n) with the given commit and apply positions, all persisted. */
function logOf(terms: readonly number[], committed = 0, applied = 0): RaftLog {
  return new RaftLog(snap(0, 0), entriesWithTerms(terms), ix(committed), ix(applied));
}

const termsOf = (log: RaftLog): number[] => {
  const out: number[] = [];
  for (let i = log.firstIndex(); i <= log.lastIndex(); i++) out.push(log.term(ix(i)) as number);
  return out;
};
const indices = (es: readonly Entry[]) => es.map((e) => e.index as number);

describe('RaftLog construction', () => {
  test('boot rejects a commit index beyond the last persisted entry', () => {
    assert.throws(() => logOf([1, 1], 3, 0), AssertionError);
  });

  test('boot rejects applied beyond commit and applied below the snapshot', () => {
    assert.throws(() => logOf([1, 1], 1, 2), AssertionError);
    assert.throws(() => new RaftLog(snap(5, 2), [], ix(5), ix(4)), AssertionError);
  });

  test('boot rejects non-contiguous entries', () => {
    assert.throws(() => new RaftLog(snap(0, 0), [cmd(1, 1), cmd(3, 1)], ix(0), ix(0)), AssertionError);
  });

  test('a log restored at boot from a snapshot starts right after it', () => {
    const log = new RaftLog(snap(10, 3), entriesWithTerms([3, 4], 10), ix(10), ix(10));
    assert.equal(log.firstIndex(), 11);
    assert.equal(log.lastIndex(), 12);
    assert.equal(log.lastTerm(), 4);
    assert.equal(log.hasUnstable(), false, 'boot entries are already persisted');
  });
});

describe('RaftLog.slice', () => {
  const log = new RaftLog(snap(0, 0), entriesWithTerms([1, 1, 1, 2, 2], 0, 10), ix(0), ix(0));

  test('returns entries in [lo, hiExclusive)', () => {
    assert.deepEqual(indices(log.slice(ix(2), ix(4))), [2, 3]);
  });

  test('is clipped at the last index', () => {
    assert.deepEqual(indices(log.slice(ix(4), ix(100))), [4, 5]);
    assert.deepEqual(log.slice(ix(6), ix(10)), []);
  });

  test('stops before the entry that would exceed bytesMax; an exact fit is included', () => {
    assert.deepEqual(indices(log.slice(ix(1), ix(6), 25)), [1, 2]);
    assert.deepEqual(indices(log.slice(ix(1), ix(6), 30)), [1, 2, 3]);
  });

  test('returns at least one entry even if it alone exceeds bytesMax', () => {
    assert.deepEqual(indices(log.slice(ix(3), ix(6), 1)), [3]);
    assert.deepEqual(indices(log.slice(ix(3), ix(6), 0)), [3]);
  });

  test('counts a command by its payload and a noop or config entry as 16 bytes', () => {
    assert.equal(entryBytes(cmd(1, 1, 123)), 123);
    assert.equal(entryBytes(noop(1, 1)), 16);
    assert.equal(entryBytes(config(1, 1, BASE)), 16);
  });

  test('below the compaction point is an assertion error', () => {
    assert.throws(() => log.slice(ix(0), ix(3)), AssertionError);
  });

  test('property: a byte-bounded slice is the longest prefix within budget, never empty', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(50), { minLength: 1, maxLength: 40 }),
        fc.nat(39),
        fc.nat(200),
        (sizes, loOff, bytesMax) => {
          const l = new RaftLog(
            snap(0, 0),
            sizes.map((b, k) => cmd(k + 1, 1, b)),
            ix(0),
            ix(0),
          );
          const lo = 1 + (loOff % sizes.length);
          const got = l.slice(ix(lo), ix(sizes.length + 1), bytesMax);
          let n = 0;
          let total = 0;
          for (let k = lo - 1; k < sizes.length; k++) {
            total += sizes[k] as number;
            if (n > 0 && total > bytesMax) break;
            n++;
          }
          assert.deepEqual(
            indices(got),
            Array.from({ length: n }, (_, k) => lo + k),
          );
        },
      ),
      { numRuns: 200, seed: 31 },
    );
  });
});

describe('RaftLog.term', () => {
  test('answers for held entries, undefined beyond the end', () => {
    const log = logOf([1, 2, 2]);
    assert.equal(log.term(ix(0)), 0);
    assert.equal(log.term(ix(2)), 2);
    assert.equal(log.term(ix(4)), undefined);
  });

  test('answers at the compaction boundary with the compacted entry term, undefined below it', () => {
    const log = logOf([1, 1, 2, 3, 3], 5, 5);
    log.compact(ix(3));
    assert.equal(log.term(ix(3)), 2);
    assert.equal(log.term(ix(2)), undefined);
    assert.equal(log.entry(ix(3)), undefined, 'the boundary entry itself is gone');
    assert.equal(log.entry(ix(4))?.term, 3);
    assert.equal(log.matchTerm(ix(3), tm(2)), true);
  });

  test('answers at the snapshot a log was restored from', () => {
    const log = new RaftLog(snap(7, 4), [], ix(7), ix(7));
    assert.equal(log.term(ix(7)), 4);
    assert.equal(log.lastTerm(), 4);
    assert.equal(log.term(ix(6)), undefined);
  });
});

describe('RaftLog.append', () => {
  test('appends contiguous entries and hands them out once as unstable', () => {
    const log = logOf([1]);
    log.append([cmd(2, 1), cmd(3, 2)]);
    assert.deepEqual(termsOf(log), [1, 1, 2]);
    assert.deepEqual(indices(log.takeUnstable()), [2, 3]);
    assert.deepEqual(log.takeUnstable(), []);
  });

  test('truncates a conflicting suffix before appending', () => {
    const log = logOf([1, 1, 1, 1, 1], 2);
    log.append(entriesWithTerms([2, 2, 2], 3));
    assert.deepEqual(termsOf(log), [1, 1, 1, 2, 2, 2]);
  });

  test('a truncated suffix is no longer durable and is handed out again', () => {
    const log = logOf([1, 1, 1, 1, 1], 2);
    assert.equal(log.stableIndex, 5);
    log.append([cmd(3, 2)]);
    assert.equal(log.stableIndex, 2);
    assert.equal(log.lastIndex(), 3);
    assert.deepEqual(indices(log.takeUnstable()), [3]);
  });

  test('truncating config entries reverts membership to the earlier configuration', () => {
    const a = members(1, 2, 3, 4);
    const b = members(1, 3, 4);
    const log = new RaftLog(
      snap(0, 0, BASE),
      [cmd(1, 1), config(2, 1, a), cmd(3, 1), config(4, 1, b)],
      ix(1),
      ix(0),
    );
    assert.deepEqual(log.membership(), b);
    assert.equal(log.lastConfigIndex(), 4);

    log.append([cmd(4, 2)]);
    assert.deepEqual(log.membership(), a);
    assert.equal(log.lastConfigIndex(), 2);

    log.append([cmd(2, 3)]);
    assert.deepEqual(log.membership(), BASE);
    assert.equal(log.lastConfigIndex(), 0);
  });

  test('a config entry takes effect as soon as it is appended, committed or not', () => {
    const log = logOf([1]);
    const m = members(1, 2, 3, 4);
    log.append([config(2, 1, m)]);
    assert.deepEqual(log.membership(), m);
    assert.equal(log.committed, 0);
  });

  test('truncating committed entries is an assertion error', () => {
    const log = logOf([1, 1, 1], 2);
    assert.throws(() => log.append([cmd(2, 2)]), AssertionError);
    assert.deepEqual(termsOf(log), [1, 1, 1], 'the log is unchanged');
  });

  test('leaving a gap is an assertion error', () => {
    const log = logOf([1, 1]);
    assert.throws(() => log.append([cmd(4, 1)]), AssertionError);
  });

  test('an entry with a lower term than its predecessor is an assertion error', () => {
    const log = logOf([1, 3]);
    assert.throws(() => log.append([cmd(3, 2)]), AssertionError);
  });

  test('appending nothing is a no-op', () => {
    const log = logOf([1, 1], 2);
    log.append([]);
    assert.equal(log.lastIndex(), 2);
  });
});

describe('RaftLog.maybeAppend', () => {
  test('rejects when the log does not hold prevIndex with prevTerm', () => {
    const log = logOf([1, 1, 2]);
    assert.equal(log.maybeAppend(ix(3), tm(1), ix(0), [cmd(4, 3)]), null, 'term mismatch');
    assert.equal(log.maybeAppend(ix(5), tm(2), ix(0), [cmd(6, 3)]), null, 'beyond the end');
    assert.deepEqual(termsOf(log), [1, 1, 2]);
  });

  test('appends after a matching prevIndex and returns the last new index', () => {
    const log = logOf([1, 1]);
    assert.equal(log.maybeAppend(ix(2), tm(1), ix(0), [cmd(3, 2), cmd(4, 2)]), 4);
    assert.deepEqual(termsOf(log), [1, 1, 2, 2]);
  });

  test('a duplicate or reordered (older, shorter) append never truncates entries it matches', () => {
    const log = logOf([1, 1, 1, 1, 1]);
    assert.equal(log.maybeAppend(ix(1), tm(1), ix(0), [cmd(2, 1), cmd(3, 1)]), 3);
    assert.equal(log.lastIndex(), 5);
    assert.equal(log.hasUnstable(), false, 'nothing new to persist');
  });

  test('a conflicting entry truncates from the conflict on and appends the rest', () => {
    const log = logOf([1, 1, 1, 1, 1]);
    assert.equal(log.maybeAppend(ix(2), tm(1), ix(0), [cmd(3, 1), cmd(4, 2)]), 4);
    assert.deepEqual(termsOf(log), [1, 1, 1, 2]);
    assert.deepEqual(indices(log.takeUnstable()), [4]);
  });

  test('an empty append (heartbeat-like) matches and returns prevIndex', () => {
    const log = logOf([1, 1, 1]);
    assert.equal(log.maybeAppend(ix(2), tm(1), ix(0), []), 2);
    assert.equal(log.lastIndex(), 3);
  });

  test('commits min(leaderCommit, last new index), never beyond what the leader vouched for', () => {
    const log = logOf([1, 1, 1, 1, 1]);
    log.maybeAppend(ix(1), tm(1), ix(10), [cmd(2, 1), cmd(3, 1)]);
    assert.equal(log.committed, 3, 'entries 4..5 were not in this message: they may differ');
    log.maybeAppend(ix(1), tm(1), ix(2), []);
    assert.equal(log.committed, 3, 'commit never regresses');
  });

  test('the conflict search compares against the compaction boundary', () => {
    const log = logOf([1, 1, 2, 2], 4, 4);
    log.compact(ix(3));
    assert.equal(log.maybeAppend(ix(3), tm(2), ix(4), [cmd(4, 2), cmd(5, 3)]), 5);
    assert.deepEqual(termsOf(log), [2, 3]);
    assert.equal(log.maybeAppend(ix(3), tm(1), ix(4), [cmd(4, 2)]), null);
  });

  /**
   * Leader-consistent histories: leader k holds the log L_k = (a prefix of L_{k-1} that contains
   * every entry committed so far) + at least one entry of its own, higher term (its noop, Raft §8),
   * so its last entry has the highest term. It sends random slices of L_k, duplicated and out of
   * order, with a commit index it has reached. Messages of an older leader are never delivered
   * after a newer one (the term check in raft.ts drops them).
   */
  interface Phase {
    keep: number;
    add: number;
    commitGain: number;
    msgs: Array<{ prev: number; len: number; commitSeen: number }>;
  }
  const phaseArb: fc.Arbitrary<Phase> = fc.record({
    keep: fc.nat(3),
    add: fc.integer({ min: 1, max: 8 }), // at least the new leader's noop (Raft §8)
    commitGain: fc.nat(4),
    msgs: fc.array(fc.record({ prev: fc.nat(30), len: fc.nat(6), commitSeen: fc.nat(30) }), {
      maxLength: 12,
    }),
  });

  test('property: after any leader-consistent appends the log equals the model and matches the leader', () => {
    fc.assert(
      fc.property(fc.array(phaseArb, { minLength: 1, maxLength: 6 }), (phases) => {
        const log = new RaftLog(snap(0, 0), [], ix(0), ix(0));
        let model: number[] = []; // model[i - 1] = term of entry i
        let modelCommit = 0;
        let leader: number[] = [];
        let leaderCommit = 0;
        let t = 0;
        for (const ph of phases) {
          t++;
          // Leader completeness: a new leader holds every committed entry.
          const keep = Math.min(leader.length, leaderCommit + ph.keep);
          leader = [...leader.slice(0, keep), ...Array.from({ length: ph.add }, () => t)];
          leaderCommit = Math.min(leader.length, leaderCommit + ph.commitGain);
          for (const msg of ph.msgs) {
            const prev = msg.prev % (leader.length + 1);
            const len = Math.min(msg.len, leader.length - prev);
            const commit = Math.min(leaderCommit, msg.commitSeen);
            const prevTerm = prev === 0 ? 0 : (leader[prev - 1] as number);
            const entries = leader.slice(prev, prev + len).map((et, k) => cmd(prev + 1 + k, et));

            // The model: reject on mismatch; else skip matching entries, truncate at the first
            // conflict, append the rest; commit up to min(leader commit, last new index).
            let expected: number | null = null;
            if (prev <= model.length && (prev === 0 ? 0 : model[prev - 1]) === prevTerm) {
              for (let k = 0; k < len; k++) {
                const i = prev + 1 + k;
                const et = leader[i - 1] as number;
                if (i <= model.length && model[i - 1] === et) continue;
                model = [...model.slice(0, i - 1), ...leader.slice(i - 1, prev + len)];
                break;
              }
              expected = prev + len;
              modelCommit = Math.max(modelCommit, Math.min(commit, prev + len));
            }

            const got = log.maybeAppend(ix(prev), tm(prevTerm), ix(commit), entries);
            assert.equal(got, expected);
            assert.deepEqual(termsOf(log), model);
            assert.equal(log.committed, modelCommit);
            if (got !== null) {
              // Log matching: everything up to the last new entry equals the leader's log.
              assert.deepEqual(termsOf(log).slice(0, got), leader.slice(0, got));
            }
          }
        }
        // A final append of the leader's whole log from the start converges the follower.
        log.maybeAppend(ix(0), tm(0), ix(leaderCommit), entriesWithTerms(leader));
        assert.deepEqual(termsOf(log), leader);
        assert.equal(log.committed, leaderCommit);
      }),
      { numRuns: 300, seed: 32 },
    );
  });
});

describe('RaftLog.findConflictByTerm', () => {
  // etcd's example log: terms by index 1..10.
  const log = logOf([1, 1, 1, 4, 4, 5, 5, 6, 6, 6]);

  test('skips every entry of a higher term in one step', () => {
    assert.deepEqual(log.findConflictByTerm(ix(10), tm(5)), { index: 7, term: 5 });
    assert.deepEqual(log.findConflictByTerm(ix(10), tm(3)), { index: 3, term: 1 });
    assert.deepEqual(log.findConflictByTerm(ix(5), tm(4)), { index: 5, term: 4 });
  });

  test('an index beyond the last entry starts from the last entry', () => {
    assert.deepEqual(log.findConflictByTerm(ix(20), tm(6)), { index: 10, term: 6 });
  });

  test('reaches index 0 when every entry has a higher term', () => {
    assert.deepEqual(log.findConflictByTerm(ix(10), tm(0)), { index: 0, term: 0 });
  });

  test('below the compaction point the term is unknown (0) and the search stops', () => {
    const l = logOf([1, 1, 2, 3, 3], 5, 5);
    l.compact(ix(3));
    assert.deepEqual(l.findConflictByTerm(ix(5), tm(2)), { index: 3, term: 2 });
    assert.deepEqual(l.findConflictByTerm(ix(5), tm(1)), { index: 2, term: 0 });
  });

  test('property: the largest index <= min(index, last) whose term is <= t', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 30 }),
        fc.nat(40),
        fc.nat(12),
        (steps, at, t) => {
          const terms: number[] = [];
          for (const s of steps) terms.push((terms[terms.length - 1] ?? 0) + (s === 1 ? 1 : 0));
          const l = logOf(terms);
          let i = Math.min(at, terms.length);
          while (i > 0 && (terms[i - 1] as number) > t) i--;
          const expected = { index: i, term: i === 0 ? 0 : (terms[i - 1] as number) };
          assert.deepEqual(l.findConflictByTerm(ix(at), tm(t)), expected);
        },
      ),
      { numRuns: 300, seed: 33 },
    );
  });
});

describe('RaftLog.compact', () => {
  test('drops entries up to the index; later slices start after it', () => {
    const log = logOf([1, 1, 2, 2, 3], 5, 4);
    log.compact(ix(2));
    assert.equal(log.firstIndex(), 3);
    assert.equal(log.lastIndex(), 5);
    assert.deepEqual(indices(log.slice(ix(3), ix(6))), [3, 4, 5]);
    assert.throws(() => log.slice(ix(2), ix(6)), AssertionError);
    log.compact(ix(4));
    assert.deepEqual(indices(log.slice(ix(5), ix(6))), [5]);
    assert.deepEqual(termsOf(log), [3]);
  });

  test('compacting at or below the compaction point is a no-op', () => {
    const log = logOf([1, 1, 2], 3, 3);
    log.compact(ix(2));
    log.compact(ix(1));
    log.compact(ix(2));
    assert.equal(log.firstIndex(), 3);
  });

  test('compacting unapplied entries is an assertion error', () => {
    const log = logOf([1, 1, 2], 3, 1);
    assert.throws(() => log.compact(ix(2)), AssertionError);
  });

  test('compacting unpersisted entries is an assertion error', () => {
    const log = logOf([1], 1, 1);
    log.append([cmd(2, 1)]);
    log.commitTo(ix(2));
    log.applied = ix(2);
    assert.throws(() => log.compact(ix(2)), AssertionError);
    log.stableTo(ix(2), tm(1));
    log.compact(ix(2));
    assert.equal(log.firstIndex(), 3);
  });

  test('the whole log can be compacted; appends continue after it', () => {
    const log = logOf([1, 2], 2, 2);
    log.compact(ix(2));
    assert.equal(log.lastIndex(), 2);
    assert.equal(log.lastTerm(), 2);
    log.append([cmd(3, 2)]);
    assert.deepEqual(indices(log.slice(ix(3), ix(4))), [3]);
  });

  test('compacted config entries become the base membership', () => {
    const a = members(1, 2, 3, 4);
    const b = members(1, 2, 4);
    const log = new RaftLog(
      snap(0, 0),
      [cmd(1, 1), config(2, 1, a), cmd(3, 1), config(4, 1, b)],
      ix(4),
      ix(4),
    );
    log.compact(ix(3));
    assert.deepEqual(log.membershipAt(ix(3)), a);
    assert.deepEqual(log.membership(), b);
    log.compact(ix(4));
    assert.deepEqual(log.membershipAt(ix(4)), b);
    assert.equal(log.lastConfigIndex(), 0);
  });
});

describe('RaftLog.restore', () => {
  test('replaces the whole log by the snapshot', () => {
    const m = members(1, 2, 4);
    const log = logOf([1, 1, 1, 1, 1], 2, 2);
    log.restore(snap(8, 3, m));
    assert.equal(log.firstIndex(), 9);
    assert.equal(log.lastIndex(), 8);
    assert.equal(log.lastTerm(), 3);
    assert.equal(log.term(ix(8)), 3);
    assert.equal(log.term(ix(5)), undefined);
    assert.equal(log.entry(ix(5)), undefined);
    assert.equal(log.committed, 8);
    assert.deepEqual(log.membership(), m);
    assert.deepEqual(log.pendingSnapshot, snap(8, 3, m));
    assert.equal(log.hasUnstable(), false);
  });

  test('entries applied from the snapshot are never handed out for application', () => {
    const log = logOf([1, 1, 1], 1, 1);
    log.restore(snap(6, 2));
    assert.deepEqual(log.nextCommitted(ix(6), 100), []);
    log.append([cmd(7, 2)]);
    log.commitTo(ix(7));
    assert.deepEqual(indices(log.nextCommitted(ix(7), 100)), [7]);
  });

  test('appends continue right after the snapshot', () => {
    const log = logOf([1, 1], 1, 1);
    log.restore(snap(4, 2));
    assert.equal(log.maybeAppend(ix(4), tm(2), ix(5), [cmd(5, 2)]), 5);
    assert.equal(log.committed, 5);
    assert.deepEqual(indices(log.takeUnstable()), [5]);
  });

  test('drops config entries of the replaced log', () => {
    const log = new RaftLog(snap(0, 0), [cmd(1, 1), config(2, 1, members(1, 2))], ix(1), ix(1));
    const m = members(1, 2, 3, 5);
    log.restore(snap(3, 2, m));
    assert.deepEqual(log.membership(), m);
    assert.equal(log.lastConfigIndex(), 0);
  });

  test('restoring a snapshot at or behind the commit index is an assertion error', () => {
    const log = logOf([1, 1, 1], 3, 3);
    assert.throws(() => log.restore(snap(3, 1)), AssertionError);
    assert.throws(() => log.restore(snap(2, 1)), AssertionError);
  });
});

describe('RaftLog.membershipAt', () => {
  const a = members(1, 2, 3, 4);
  const b = members(2, 3, 4);
  const log = new RaftLog(
    snap(2, 1, BASE),
    [cmd(3, 1), config(4, 1, a), cmd(5, 1), cmd(6, 2), config(7, 2, b), cmd(8, 2)],
    ix(5),
    ix(5),
  );

  test('is the base membership at and after the snapshot until the first config entry', () => {
    assert.deepEqual(log.membershipAt(ix(2)), BASE);
    assert.deepEqual(log.membershipAt(ix(3)), BASE);
  });

  test('is the latest config entry at or before the index', () => {
    assert.deepEqual(log.membershipAt(ix(4)), a);
    assert.deepEqual(log.membershipAt(ix(6)), a);
    assert.deepEqual(log.membershipAt(ix(7)), b);
    assert.deepEqual(log.membershipAt(ix(100)), b);
  });

  test('a compacted index is an assertion error', () => {
    assert.throws(() => log.membershipAt(ix(1)), AssertionError);
  });
});

describe('RaftLog persistence and application bookkeeping', () => {
  test('stableTo ignores an acknowledgement for an entry that was truncated meanwhile', () => {
    const log = logOf([1], 1, 1);
    log.append([cmd(2, 1), cmd(3, 1)]);
    log.takeUnstable();
    log.append([cmd(3, 2)]); // replaces 3@1 before its write was acknowledged
    log.stableTo(ix(3), tm(1));
    assert.equal(log.stableIndex, 1);
    log.stableTo(ix(2), tm(1));
    assert.equal(log.stableIndex, 2);
  });

  test('nextCommitted hands out committed entries in order, at most countMax, from applying + 1', () => {
    const log = logOf([1, 1, 1, 1, 1], 4, 0);
    assert.deepEqual(indices(log.nextCommitted(ix(4), 2)), [1, 2]);
    log.applying = ix(2);
    assert.deepEqual(indices(log.nextCommitted(ix(4), 10)), [3, 4]);
    assert.deepEqual(log.nextCommitted(ix(2), 10), []);
  });

  test('commitTo never regresses and never passes the last index', () => {
    const log = logOf([1, 1, 1], 2);
    log.commitTo(ix(1));
    assert.equal(log.committed, 2);
    assert.throws(() => log.commitTo(ix(4)), AssertionError);
  });

  test('isUpToDate compares last term first, then last index (Raft §5.4.1)', () => {
    const log = logOf([1, 2, 2]);
    assert.equal(log.isUpToDate(ix(1), tm(3)), true, 'higher last term wins even if shorter');
    assert.equal(log.isUpToDate(ix(3), tm(2)), true, 'same term, same length');
    assert.equal(log.isUpToDate(ix(2), tm(2)), false, 'same term, shorter');
    assert.equal(log.isUpToDate(ix(9), tm(1)), false, 'lower term loses even if longer');
  });
});

test('restore never leaves stableIndex beyond the durable prefix of the new log', () => {
  const m = { voters: [1, 2, 3] as NodeId[], learners: [] };
  const e = (i: number, t: number): Entry => ({ kind: 'noop', index: i as LogIndex, term: t as Term });
  const log = new RaftLog(
    { index: 0 as LogIndex, term: 0 as Term, membership: m },
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((i) => e(i, 1)),
    3 as LogIndex,
    3 as LogIndex,
  );
  // Our term at index 5 differs from the snapshot's: the whole log is replaced.
  log.restore({ index: 5 as LogIndex, term: 2 as Term, membership: m });
  log.append([e(6, 2), e(7, 2)]);
  assert.ok(log.stableIndex <= 3, `stableIndex ${log.stableIndex} claims unpersisted entries are durable`);
  log.stableTo(5 as LogIndex, 2 as Term);
  assert.equal(log.stableIndex, 5);
});
