import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { committedIndex, hasQuorum, majority, voteOutcome } from '../../src/raft/quorum.js';
import type { LogIndex, NodeId } from '../../src/raft/types.js';

const ids = (...ns: number[]): NodeId[] => ns as NodeId[];
const matchFrom =
  (m: Record<number, number>) =>
  (id: NodeId): LogIndex =>
    (m[id] ?? 0) as LogIndex;

/** A voter set of 0..9 distinct ids drawn from 1..12 (so some ids stay outside as non-voters). */
const votersArb = fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { maxLength: 9 }).map((a) => a as NodeId[]);

/** Brute force: the largest i such that at least a majority of voters has match >= i. */
function committedModel(voters: readonly NodeId[], match: (id: NodeId) => number): number {
  if (voters.length === 0) return 0;
  const need = Math.floor(voters.length / 2) + 1;
  const top = Math.max(...voters.map(match));
  for (let i = top; i > 0; i--) {
    if (voters.filter((v) => match(v) >= i).length >= need) return i;
  }
  return 0;
}

describe('majority', () => {
  test('is floor(n/2)+1 for small clusters', () => {
    const expected = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5];
    for (let n = 0; n < expected.length; n++) assert.equal(majority(n), expected[n], `n=${n}`);
  });

  test('is the smallest strict majority: two majorities always intersect', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), (n) => {
        const q = majority(n);
        assert.ok(2 * q > n, 'two quorums intersect');
        assert.ok(2 * (q - 1) <= n, 'one fewer would not');
      }),
      { numRuns: 200, seed: 1 },
    );
  });
});

describe('committedIndex', () => {
  test('an empty voter set commits nothing', () => {
    assert.equal(
      committedIndex([], () => 99 as LogIndex),
      0,
    );
  });

  test('a single voter commits what it matched', () => {
    assert.equal(committedIndex(ids(1), matchFrom({ 1: 7 })), 7);
  });

  test('three voters commit the median match', () => {
    assert.equal(committedIndex(ids(1, 2, 3), matchFrom({ 1: 5, 2: 3, 3: 1 })), 3);
    assert.equal(committedIndex(ids(1, 2, 3), matchFrom({ 1: 5, 2: 5, 3: 0 })), 5);
  });

  test('four voters need three matches: the second-lowest match of four', () => {
    assert.equal(committedIndex(ids(1, 2, 3, 4), matchFrom({ 1: 9, 2: 8, 3: 2, 4: 1 })), 2);
  });

  test('only voters count: a learner far ahead does not commit anything', () => {
    const asked: NodeId[] = [];
    const match = (id: NodeId): LogIndex => {
      asked.push(id);
      return matchFrom({ 1: 4, 2: 1, 3: 1, 9: 100 })(id);
    };
    assert.equal(committedIndex(ids(1, 2, 3), match), 1);
    assert.deepEqual([...asked].sort(), ids(1, 2, 3));
  });

  test('equals the brute-force model for random voter sets and match maps', () => {
    fc.assert(
      fc.property(votersArb, fc.array(fc.nat(20), { minLength: 12, maxLength: 12 }), (voters, matches) => {
        const match = (id: NodeId): LogIndex => matches[id - 1] as LogIndex;
        assert.equal(committedIndex(voters, match), committedModel(voters, match));
      }),
      { numRuns: 300, seed: 2 },
    );
  });

  test('does not depend on the order of the voter list', () => {
    fc.assert(
      fc.property(
        votersArb,
        fc.array(fc.nat(20), { minLength: 12, maxLength: 12 }),
        fc.nat(),
        (voters, matches, rot) => {
          const match = (id: NodeId): LogIndex => matches[id - 1] as LogIndex;
          const k = voters.length === 0 ? 0 : rot % voters.length;
          const rotated = [...voters.slice(k), ...voters.slice(0, k)].reverse();
          assert.equal(committedIndex(rotated, match), committedIndex(voters, match));
        },
      ),
      { numRuns: 200, seed: 3 },
    );
  });
});

describe('voteOutcome', () => {
  const votes = (m: Record<number, boolean>) =>
    new Map(Object.entries(m).map(([k, v]) => [Number(k) as NodeId, v]));

  test('a single voter that votes for itself wins', () => {
    assert.equal(voteOutcome(ids(1), votes({ 1: true })), 'won');
  });

  test('three voters: two grants win, two rejections lose, one each is pending', () => {
    const v = ids(1, 2, 3);
    assert.equal(voteOutcome(v, votes({ 1: true, 2: true })), 'won');
    assert.equal(voteOutcome(v, votes({ 2: false, 3: false })), 'lost');
    assert.equal(voteOutcome(v, votes({ 1: true, 2: false })), 'pending');
    assert.equal(voteOutcome(v, votes({})), 'pending');
  });

  test('four voters split two to two is lost: a majority of three can no longer be reached', () => {
    assert.equal(voteOutcome(ids(1, 2, 3, 4), votes({ 1: true, 2: true, 3: false, 4: false })), 'lost');
  });

  test('votes from non-voters are ignored', () => {
    assert.equal(voteOutcome(ids(1, 2, 3), votes({ 1: true, 7: true, 8: true })), 'pending');
    assert.equal(voteOutcome(ids(1, 2, 3), votes({ 1: true, 7: false, 8: false })), 'pending');
  });

  test('equals the model: won at a majority of grants, lost once grants plus undecided fall short', () => {
    fc.assert(
      fc.property(
        votersArb,
        fc.array(fc.constantFrom<boolean | undefined>(true, false, undefined), {
          minLength: 12,
          maxLength: 12,
        }),
        (voters, answers) => {
          const m = new Map<NodeId, boolean>();
          answers.forEach((a, i) => {
            if (a !== undefined) m.set((i + 1) as NodeId, a);
          });
          const granted = voters.filter((v) => m.get(v) === true).length;
          const undecided = voters.filter((v) => !m.has(v)).length;
          const need = Math.floor(voters.length / 2) + 1;
          const expected = granted >= need ? 'won' : granted + undecided < need ? 'lost' : 'pending';
          assert.equal(voteOutcome(voters, m), expected);
        },
      ),
      { numRuns: 300, seed: 4 },
    );
  });
});

describe('hasQuorum', () => {
  test('true exactly when a majority of voters is active', () => {
    const v = ids(1, 2, 3, 4, 5);
    assert.equal(
      hasQuorum(v, (id) => id <= 3),
      true,
    );
    assert.equal(
      hasQuorum(v, (id) => id <= 2),
      false,
    );
  });

  test('active non-voters do not make a quorum', () => {
    const active = new Set(ids(1, 7, 8, 9));
    assert.equal(
      hasQuorum(ids(1, 2, 3), (id) => active.has(id)),
      false,
    );
  });

  test('an empty voter set never has a quorum', () => {
    assert.equal(
      hasQuorum([], () => true),
      false,
    );
  });

  test('equals the model for random voter sets and active sets', () => {
    fc.assert(
      fc.property(votersArb, fc.uniqueArray(fc.integer({ min: 1, max: 12 })), (voters, activeList) => {
        const active = new Set(activeList);
        const n = voters.filter((v) => active.has(v)).length;
        assert.equal(
          hasQuorum(voters, (id) => active.has(id)),
          n >= Math.floor(voters.length / 2) + 1,
        );
      }),
      { numRuns: 300, seed: 5 },
    );
  });
});
