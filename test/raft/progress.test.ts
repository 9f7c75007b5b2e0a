import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { AssertionError } from '../../src/lib/assert.js';
import { Progress } from '../../src/raft/progress.js';
import type { LogIndex } from '../../src/raft/types.js';

const ix = (n: number) => n as LogIndex;

/** A progress with the given match and next, in probe state. */
function probeAt(match: number, next: number, countMax = 4, bytesMax = 1000): Progress {
  const pr = new Progress(ix(next), 1, countMax, bytesMax);
  pr.match = ix(match);
  return pr;
}

/** A progress in replicate state that has matched `match` (next = match + 1). */
function replicateAt(match: number, countMax = 4, bytesMax = 1000): Progress {
  const pr = probeAt(match, match + 1, countMax, bytesMax);
  pr.becomeReplicate();
  return pr;
}

describe('Progress state transitions', () => {
  test('a new progress probes from the given next index and is not paused', () => {
    const pr = new Progress(ix(11), 1, 4, 1000);
    assert.equal(pr.state, 'probe');
    assert.equal(pr.match, 0);
    assert.equal(pr.next, 11);
    assert.equal(pr.isPaused(), false);
  });

  test('probe → replicate restarts streaming right after match', () => {
    const pr = probeAt(5, 9);
    pr.probeSent = true;
    pr.becomeReplicate();
    assert.equal(pr.state, 'replicate');
    assert.equal(pr.next, 6);
    assert.equal(pr.probeSent, false);
    assert.equal(pr.inflights.count, 0);
  });

  test('replicate → snapshot records the pending snapshot, drops the in-flight window and pauses', () => {
    const pr = replicateAt(5);
    pr.sentEntries(ix(7), 10, 2);
    pr.becomeSnapshot(ix(20));
    assert.equal(pr.state, 'snapshot');
    assert.equal(pr.pendingSnapshot, 20);
    assert.equal(pr.inflights.count, 0);
    assert.equal(pr.isPaused(), true);
  });

  test('snapshot → probe resumes after the snapshot when the follower is behind it', () => {
    const pr = replicateAt(5);
    pr.becomeSnapshot(ix(20));
    pr.becomeProbe();
    assert.equal(pr.state, 'probe');
    assert.equal(pr.next, 21);
    assert.equal(pr.pendingSnapshot, 0);
    assert.equal(pr.isPaused(), false);
  });

  test('snapshot → probe resumes after match when the follower is already past the snapshot', () => {
    const pr = replicateAt(5);
    pr.becomeSnapshot(ix(20));
    pr.maybeUpdate(ix(25));
    pr.becomeProbe();
    assert.equal(pr.next, 26);
  });

  test('replicate → probe falls back to match + 1 and forgets the in-flight window', () => {
    const pr = replicateAt(5);
    pr.sentEntries(ix(8), 30, 3);
    pr.sentEntries(ix(9), 10, 1);
    assert.equal(pr.next, 10);
    pr.becomeProbe();
    assert.equal(pr.state, 'probe');
    assert.equal(pr.next, 6);
    assert.equal(pr.inflights.count, 0);
    assert.equal(pr.inflights.bytes, 0);
  });

  test('the full cycle probe → replicate → snapshot → probe ends probing after the snapshot', () => {
    const pr = new Progress(ix(1), 1, 4, 1000);
    assert.equal(pr.maybeUpdate(ix(3)), true);
    pr.becomeReplicate();
    assert.equal(pr.next, 4);
    pr.becomeSnapshot(ix(50));
    pr.becomeProbe();
    assert.deepEqual(
      { state: pr.state, match: pr.match, next: pr.next },
      { state: 'probe', match: 3, next: 51 },
    );
  });
});

describe('Progress.maybeUpdate', () => {
  test('a new acknowledgement raises match, returns true and unpauses a probe', () => {
    const pr = probeAt(3, 4);
    pr.sentEntries(ix(3), 0, 0);
    assert.equal(pr.isPaused(), true);
    assert.equal(pr.maybeUpdate(ix(6)), true);
    assert.equal(pr.match, 6);
    assert.equal(pr.next, 7);
    assert.equal(pr.isPaused(), false);
  });

  test('a stale acknowledgement (<= match) returns false and changes nothing', () => {
    const pr = replicateAt(8);
    pr.sentEntries(ix(12), 40, 4);
    for (const stale of [0, 5, 8]) {
      assert.equal(pr.maybeUpdate(ix(stale)), false, `stale ${stale}`);
      assert.equal(pr.match, 8);
      assert.equal(pr.next, 13);
    }
  });

  test('a stale acknowledgement does not unpause an outstanding probe', () => {
    const pr = probeAt(5, 6);
    pr.sentEntries(ix(5), 0, 0);
    assert.equal(pr.maybeUpdate(ix(5)), false);
    assert.equal(pr.isPaused(), true);
  });

  test('an acknowledgement below next does not pull an optimistic next back', () => {
    const pr = replicateAt(5);
    pr.sentEntries(ix(10), 50, 5);
    assert.equal(pr.maybeUpdate(ix(7)), true);
    assert.equal(pr.match, 7);
    assert.equal(pr.next, 11);
  });
});

describe('Progress.maybeDecrTo', () => {
  test('replicate: a rejection at or below match is stale and ignored', () => {
    const pr = replicateAt(10);
    pr.sentEntries(ix(15), 50, 5);
    assert.equal(pr.maybeDecrTo(ix(10), ix(0)), false);
    assert.equal(pr.maybeDecrTo(ix(4), ix(0)), false);
    assert.equal(pr.next, 16);
    assert.equal(pr.match, 10);
  });

  test('replicate: a real rejection sends next back to match + 1', () => {
    const pr = replicateAt(10);
    pr.sentEntries(ix(15), 50, 5);
    assert.equal(pr.maybeDecrTo(ix(13), ix(11)), true);
    assert.equal(pr.next, 11);
  });

  test('probe: only the answer to the latest probe (rejected == next - 1) counts', () => {
    const pr = probeAt(0, 10);
    pr.sentEntries(ix(9), 0, 0);
    assert.equal(pr.maybeDecrTo(ix(8), ix(2)), false);
    assert.equal(pr.maybeDecrTo(ix(12), ix(2)), false);
    assert.equal(pr.next, 10);
    assert.equal(pr.isPaused(), true, 'a stale rejection does not unpause the probe');
  });

  test('probe: the fast back-off hint moves next to hint + 1 and unpauses', () => {
    const pr = probeAt(0, 10);
    pr.sentEntries(ix(9), 0, 0);
    assert.equal(pr.maybeDecrTo(ix(9), ix(3)), true);
    assert.equal(pr.next, 4);
    assert.equal(pr.isPaused(), false);
  });

  test('probe: a hint at or beyond the rejected index backs off by one', () => {
    const pr = probeAt(0, 10);
    assert.equal(pr.maybeDecrTo(ix(9), ix(50)), true);
    assert.equal(pr.next, 9);
  });

  test('probe: a rejection at match (the follower lost its state) is not answered at once: the probe waits for a heartbeat answer', () => {
    const pr = probeAt(6, 7);
    pr.sentEntries(ix(6), 0, 0);
    assert.equal(pr.isPaused(), true);
    assert.equal(pr.maybeDecrTo(ix(6), ix(0)), false, 'nothing to back off to');
    assert.equal(pr.next, 7);
    assert.equal(pr.isPaused(), true, 'paused until the next heartbeat answer');
  });

  test('probe: a rejection at match with a hint below it (the follower lost a tail) forgets match and probes from the hint', () => {
    const pr = probeAt(8, 9);
    pr.sentEntries(ix(8), 0, 0);
    assert.equal(pr.maybeDecrTo(ix(8), ix(3)), true);
    assert.equal(pr.match, 0);
    assert.equal(pr.next, 4);
    assert.equal(pr.isPaused(), false);
    assert.equal(pr.regressions, 1);
    // A hint at or beyond the rejected index says nothing it can back off to.
    const other = probeAt(8, 9);
    assert.equal(other.maybeDecrTo(ix(8), ix(8)), false);
    assert.equal(other.match, 8);
  });

  test('replicate: a rejection at match may be an old duplicate: it is ignored', () => {
    const pr = replicateAt(8);
    assert.equal(pr.maybeDecrTo(ix(8), ix(3)), false);
    assert.equal(pr.match, 8);
    assert.equal(pr.regressions, 0);
  });

  test('probe: next never goes below match + 1 whatever the hint', () => {
    const pr = probeAt(6, 10);
    assert.equal(pr.maybeDecrTo(ix(9), ix(0)), true);
    assert.equal(pr.next, 7);
  });

  test('next stays above match under any sequence of updates, rejections and sends', () => {
    type Op =
      | { type: 'update'; at: number }
      | { type: 'reject'; at: number; hint: number }
      | { type: 'send'; count: number }
      | { type: 'state'; to: 'probe' | 'replicate' };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ type: fc.constant('update'), at: fc.integer({ min: -5, max: 8 }) }),
      fc.record({
        type: fc.constant('reject'),
        at: fc.integer({ min: -6, max: 3 }),
        hint: fc.integer({ min: -10, max: 10 }),
      }),
      fc.record({ type: fc.constant('send'), count: fc.nat(3) }),
      fc.record({ type: fc.constant('state'), to: fc.constantFrom('probe', 'replicate') }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.array(opArb, { maxLength: 150 }), (start, ops) => {
        const pr = new Progress(ix(start), 1, 8, 1 << 20);
        for (const op of ops) {
          const matchBefore = pr.match;
          const nextBefore = pr.next;
          switch (op.type) {
            case 'update':
              pr.maybeUpdate(ix(Math.max(0, pr.match + op.at)));
              break;
            case 'reject': {
              // Offsets are relative to next - 1, the prevIndex of the latest append.
              const rejected = Math.max(0, pr.next - 1 + op.at);
              const hint = Math.max(0, rejected + op.hint);
              const wasProbe = pr.state === 'probe';
              const regressionsBefore = pr.regressions;
              const changed = pr.maybeDecrTo(ix(rejected), ix(hint));
              // The one way match goes back: a probe rejected at or below match with a hint
              // between 0 and the rejected index (the follower holds less than it acknowledged).
              const regressed = wasProbe && rejected <= matchBefore && hint > 0 && hint < rejected;
              assert.equal(pr.regressions - regressionsBefore, regressed && changed ? 1 : 0);
              if (pr.regressions > regressionsBefore) assert.equal(pr.match, 0);
              if (wasProbe && changed) assert.ok(pr.next <= nextBefore, 'probe back-off only decreases');
              if (!changed) assert.equal(pr.next, nextBefore, 'a stale rejection changes nothing');
              // As raft.ts does: a real rejection while replicating falls back to probing, which
              // also forgets the in-flight window that no longer matches next.
              if (changed && pr.state === 'replicate') pr.becomeProbe();
              break;
            }
            case 'send':
              if (!pr.isPaused()) pr.sentEntries(ix(pr.next - 1 + op.count), op.count * 10, op.count);
              break;
            case 'state':
              if (op.to === 'probe') pr.becomeProbe();
              else pr.becomeReplicate();
              break;
          }
          if (op.type !== 'reject' || pr.match !== 0)
            assert.ok(pr.match >= matchBefore, 'match never regresses but for a lost tail');
          assert.ok(pr.next >= pr.match + 1, `next ${pr.next} below match ${pr.match} + 1`);
        }
      }),
      { numRuns: 300, seed: 21 },
    );
  });
});

describe('Progress.isPaused', () => {
  test('probe: paused exactly while a probe is outstanding', () => {
    const pr = probeAt(0, 5);
    assert.equal(pr.isPaused(), false);
    pr.sentEntries(ix(6), 20, 2);
    assert.equal(pr.isPaused(), true);
    pr.maybeDecrTo(ix(4), ix(1));
    assert.equal(pr.isPaused(), false);
  });

  test('replicate: paused exactly while the in-flight window is full', () => {
    const pr = replicateAt(0, 2, 1000);
    pr.sentEntries(ix(1), 10, 1);
    assert.equal(pr.isPaused(), false);
    pr.sentEntries(ix(2), 10, 1);
    assert.equal(pr.isPaused(), true);
    pr.maybeUpdate(ix(1));
    pr.inflights.freeLE(ix(1));
    assert.equal(pr.isPaused(), false);
  });

  test('replicate: the byte budget pauses too', () => {
    const pr = replicateAt(0, 100, 50);
    pr.sentEntries(ix(3), 60, 3);
    assert.equal(pr.isPaused(), true);
  });

  test('snapshot: always paused', () => {
    const pr = replicateAt(3);
    pr.becomeSnapshot(ix(10));
    assert.equal(pr.isPaused(), true);
    pr.maybeUpdate(ix(12));
    assert.equal(pr.isPaused(), true);
  });
});

describe('Progress.sentEntries', () => {
  test('replicate: moves next optimistically past the last entry sent and records it in flight', () => {
    const pr = replicateAt(4);
    pr.sentEntries(ix(7), 30, 3);
    assert.equal(pr.next, 8);
    assert.equal(pr.inflights.count, 1);
    assert.equal(pr.inflights.bytes, 30);
    pr.sentEntries(ix(9), 20, 2);
    assert.equal(pr.next, 10);
    assert.equal(pr.inflights.count, 2);
  });

  test('replicate: an append without entries (commit update) takes no window slot', () => {
    const pr = replicateAt(4);
    pr.sentEntries(ix(4), 0, 0);
    assert.equal(pr.next, 5);
    assert.equal(pr.inflights.count, 0);
  });

  test('probe: next does not move, the probe is outstanding instead', () => {
    const pr = probeAt(2, 5);
    pr.sentEntries(ix(9), 50, 5);
    assert.equal(pr.next, 5);
    assert.equal(pr.probeSent, true);
    assert.equal(pr.inflights.count, 0);
  });

  test('snapshot: sending entries is an assertion error', () => {
    const pr = replicateAt(2);
    pr.becomeSnapshot(ix(10));
    assert.throws(() => pr.sentEntries(ix(3), 1, 1), AssertionError);
  });

  test('status reports match, next, state and the window', () => {
    const pr = replicateAt(4);
    pr.sentEntries(ix(6), 25, 2);
    pr.recentActive = true;
    assert.deepEqual(pr.status(), {
      match: 4,
      next: 7,
      state: 'replicate',
      inflightCount: 1,
      inflightBytes: 25,
      recentActive: true,
      epoch: 1,
      regressions: 0,
    });
  });
});
