/**
 * What a node without a leader says (src/node/no-leader.ts): a majority connected is an election
 * under way or voters that cannot vote yet; fewer is a partition or a quorum loss.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noLeaderError } from '../../src/node/no-leader.js';
import type { NodeId } from '../../src/raft/types.js';

const VOTERS = [1, 2, 3] as NodeId[];

test('a majority connected: it says so, and why there is no leader anyway', () => {
  const e = noLeaderError(3 as NodeId, VOTERS, new Set([1]));
  assert.equal(e.code, 'HQL_UNAVAILABLE');
  assert.equal(e.retryable, true);
  assert.match(e.message, /connected to 2 of 3 voters, itself included/);
  assert.match(e.message, /a majority \(2\) is connected: an election is under way/);
  assert.doesNotMatch(e.message, /a leader needs/);
});

test('fewer than a majority connected: cut off, or the others are down', () => {
  const e = noLeaderError(3 as NodeId, VOTERS, new Set([7]));
  assert.match(e.message, /connected to 1 of 3 voters/);
  assert.match(e.message, /a leader needs 2: this node is cut off from the others, or they are down/);
});
