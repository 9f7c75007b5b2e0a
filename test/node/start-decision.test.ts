/**
 * What a node does at start with what its data directory holds (src/node/start-decision.ts):
 * the decision `HiqliteNode.open` takes and the simulator runs.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { lostLocalState } from '../../src/node/raft-group.js';
import { decideStart, type LocalStateSummary } from '../../src/node/start-decision.js';
import type { LogIndex, NodeId, Term } from '../../src/raft/types.js';

const nothing: LocalStateSummary = {
  hardState: null,
  lastIndex: 0 as LogIndex,
  hasSnapshot: false,
  appliedIndex: 0 as LogIndex,
  hasClusterId: false,
  logUncovered: null,
};
const hardState = { term: 7 as Term, vote: 2 as NodeId, commit: 0 as LogIndex };

describe('the start decision', () => {
  test('a node without any state knows no membership and may look for proof to bootstrap', () => {
    assert.deepEqual(decideStart(nothing), { discard: null, fresh: true, mayBootstrap: true });
  });

  test('a node with its log and hard state keeps them and never bootstraps', () => {
    const d = decideStart({ ...nothing, hardState, lastIndex: 40 as LogIndex, appliedIndex: 30 as LogIndex });
    assert.deepEqual(d, { discard: null, fresh: false, mayBootstrap: false });
  });

  test('data without the hard state (a lost log directory) is discarded: it may have voted', () => {
    const d = decideStart({ ...nothing, appliedIndex: 30 as LogIndex, hasSnapshot: true });
    assert.equal(d.discard, 'the Raft hard state is lost but data remains');
    assert.equal(d.fresh, true);
    assert.equal(d.mayBootstrap, false);
  });

  test('a compacted log that nothing covers is discarded', () => {
    const d = decideStart({ ...nothing, hardState, lastIndex: 40 as LogIndex, logUncovered: 'gap' });
    assert.deepEqual(d, { discard: 'gap', fresh: true, mayBootstrap: false });
  });

  test('a hard state alone (it stopped while joining, before any log arrived) knows no membership', () => {
    // It used to start from the genesis membership: node 1 would find itself the only voter and
    // elect itself beside the real cluster (found by the simulator's wipes, seed 193).
    const d = decideStart({ ...nothing, hardState, hasClusterId: true });
    assert.equal(d.discard, null);
    assert.equal(d.fresh, true, 'it joins again through the leader');
    // Node 1 asks the others first: a cluster that exists answers, and it joins it.
    assert.equal(d.mayBootstrap, true);
  });

  test('a cluster id without a log (a lost log directory) is a trace of membership: no bootstrap', () => {
    const d = decideStart({ ...nothing, hasClusterId: true });
    assert.deepEqual(d, { discard: null, fresh: true, mayBootstrap: false });
  });
});

describe('lostLocalState: what a node cannot recover locally', () => {
  const store = (first: number, last: number) => ({
    firstIndex: () => first as LogIndex,
    lastIndex: () => last as LogIndex,
  });
  const snapshotAt = (index: number) => ({
    latest: () => (index === 0 ? null : ({ meta: { index } } as never)),
  });

  test('a log that ends before what the state machine applied lost its tail: discarded, never voted on', () => {
    // Found from outside: a follower's last segment deleted; it rolled its state machine back,
    // voted on, and with the other node that missed the writes elected a leader without them.
    const why = lostLocalState(store(1, 125), snapshotAt(0), 126 as LogIndex);
    assert.match(why ?? '', /the Raft log ends at index 125, before entries this node applied \(to 126\)/);
    assert.match(
      lostLocalState(store(101, 120), snapshotAt(100), 300 as LogIndex) ?? '',
      /its tail was lost/,
    );
    assert.equal(
      decideStart({
        ...nothing,
        hardState,
        lastIndex: 125 as LogIndex,
        appliedIndex: 126 as LogIndex,
        logUncovered: why,
      }).discard,
      why,
    );
  });

  test('what recovers: a log at or past the applied index, or a snapshot that covers it', () => {
    assert.equal(lostLocalState(store(1, 126), snapshotAt(0), 126 as LogIndex), null);
    // A snapshot installed (state machine at its index) before the log was reset to it.
    assert.equal(lostLocalState(store(1, 40), snapshotAt(200), 200 as LogIndex), null);
    // Compacted to the snapshot: the log is empty after it.
    assert.equal(lostLocalState(store(201, 200), snapshotAt(200), 200 as LogIndex), null);
    assert.equal(lostLocalState(store(1, 0), snapshotAt(0), 0 as LogIndex), null);
  });
});
