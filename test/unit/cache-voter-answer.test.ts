/**
 * The cache watchdog's reading of another voter's `leader` answer (src/node/cache-voter-answer.ts):
 * a voter is gone from this node's in-memory cache group when it lost its state or follows a
 * group founded anew without this node; one that follows a leader of a group listing this node
 * holds this very group (this node is only cut off from the leader: it must keep its state).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { groupHolding, voterLeftCacheGroup } from '../../src/node/cache-voter-answer.js';
import type { NodeId } from '../../src/raft/types.js';

const ME = 3 as NodeId;

test('a voter that lost its state (not a member) is gone', () => {
  assert.equal(voterLeftCacheGroup({ member: false, leaderId: null, voters: [] }, ME), true);
  assert.equal(voterLeftCacheGroup({ member: false, leaderId: 1, voters: [1] }, ME), true);
});

test('a voter following a leader of a group founded anew without this node is gone', () => {
  assert.equal(voterLeftCacheGroup({ member: true, leaderId: 1, voters: [1, 2] }, ME), true);
});

test('a voter following a leader of a group that lists this node holds it: this node is only cut off', () => {
  // Found by the fault suite (a node that could ask but not hear its leader dropped its state).
  assert.equal(voterLeftCacheGroup({ member: true, leaderId: 1, voters: [1, 2, 3] }, ME), false);
});

test('a voter following a leader of a group that lists this node as a learner holds it (a change not heard of here)', () => {
  assert.equal(voterLeftCacheGroup({ member: true, leaderId: 1, voters: [1, 2], learners: [3] }, ME), false);
  assert.equal(voterLeftCacheGroup({ member: true, leaderId: 1, voters: [1, 2], learners: [4] }, ME), true);
  assert.equal(voterLeftCacheGroup({ member: true, leaderId: 1, voters: [1, 2], learners: null }, ME), true);
});

test('a voter without a leader holds the group, as does an answer that does not list the voters', () => {
  assert.equal(voterLeftCacheGroup({ member: true, leaderId: null, voters: [1, 2, 3] }, ME), false);
  assert.equal(voterLeftCacheGroup({ member: null, leaderId: null }, ME), false);
  assert.equal(voterLeftCacheGroup({ member: true, leaderId: 1 }, ME), false);
  assert.equal(voterLeftCacheGroup({ member: true, leaderId: 1, voters: null }, ME), false);
});

test("node 1's proof: a node following a leader or a voter of its group holds it; one not a member has none", () => {
  const N = 2 as NodeId;
  assert.equal(groupHolding({ member: true, leaderId: 1, voters: [1, 2, 3] }, N), 'holds');
  assert.equal(groupHolding({ member: false, leaderId: 3, voters: [3] }, N), 'holds');
  assert.equal(groupHolding({ member: true, leaderId: null, voters: [1, 2, 3] }, N), 'holds');
  assert.equal(groupHolding({ member: true, leaderId: null }, N), 'holds', 'no voters said: holds');
  assert.equal(groupHolding({ member: false, leaderId: null, voters: [] }, N), 'none');
  assert.equal(groupHolding({ member: null, leaderId: null, voters: null }, N), 'unknown', 'still opening');
});

test("node 1's proof: a learner that hears no leader cannot bring its group back: it counts as not answering (seed 15002)", () => {
  const N = 2 as NodeId;
  assert.equal(groupHolding({ member: true, leaderId: null, voters: [1, 3], learners: [2] }, N), 'unknown');
  // The same learner while it hears a leader: the group lives.
  assert.equal(groupHolding({ member: true, leaderId: 3, voters: [1, 3], learners: [2] }, N), 'holds');
});

test('a node joining with a copy it was sent (abstains) cannot vote with it: gone for the watchdog, not answering for the proof (seeds 39, 63)', () => {
  const N = 2 as NodeId;
  const copy = { member: true, leaderId: null, voters: [1, 2, 3], learners: [], abstains: true };
  assert.equal(voterLeftCacheGroup(copy, ME), true);
  assert.equal(groupHolding(copy, N), 'unknown');
  // Once a leader took it in, it follows that leader: it holds the group.
  assert.equal(voterLeftCacheGroup({ ...copy, leaderId: 1 }, ME), false);
  assert.equal(groupHolding({ ...copy, leaderId: 1 }, N), 'holds');
});
