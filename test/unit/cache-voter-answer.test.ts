/**
 * The cache watchdog's reading of another voter's `leader` answer (src/node/cache-voter-answer.ts):
 * a voter is gone from this node's in-memory cache group when it lost its state or follows a
 * group founded anew without this node; one that follows a leader of a group listing this node
 * holds this very group (this node is only cut off from the leader: it must keep its state).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { voterLeftCacheGroup } from '../../src/node/cache-voter-answer.js';
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
