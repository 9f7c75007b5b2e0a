/**
 * The watchdog of a cache group kept in memory (src/node/cache-refounding.ts CacheWatchdog), on a
 * manual clock with answers given: a voter without a leader, or a leader that commits nothing
 * while entries wait, asks the other voters after 2 election timeouts, and drops its state only
 * when those gone from the group leave too few for a majority, in two checks in a row; a leader
 * that commits, or a group whose voters still hold it, is left alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CacheAsking } from '../../src/node/cache-refounding.js';
import { CacheWatchdog } from '../../src/node/cache-refounding.js';
import type { CacheLeaderAnswer } from '../../src/node/cache-voter-answer.js';
import type { NodeId } from '../../src/raft/types.js';
import { ManualClock } from '../support/manual-clock.js';

const ELECTION_MS = 200; // checks every 500 ms (its floor), asks after 400 ms without a leader
const VOTERS = [1, 2] as NodeId[];

function watchdog(
  view: () => { leaderId: NodeId | null; commitIndex: number; lastIndex: number },
  answer: CacheLeaderAnswer,
) {
  const clock = new ManualClock();
  let asked = 0;
  let dead = 0;
  const asking: CacheAsking = {
    nodeId: 1 as NodeId,
    nodes: VOTERS,
    ask: async () => {
      asked++;
      return answer;
    },
  };
  const w = new CacheWatchdog({
    asking,
    clock,
    electionTimeoutMs: ELECTION_MS,
    watched: () => ({ ...view(), voters: VOTERS }),
    onDead: async () => {
      dead++;
    },
    log: { warn: () => {} },
  });
  w.start();
  /** Advances the clock by `seconds` (1 s steps, or one step of a fraction). */
  const run = async (seconds: number) => {
    for (let i = 0; i < Math.ceil(seconds); i++) {
      clock.advance(Math.min(1, seconds) * 1000);
      for (let t = 0; t < 5; t++) await Promise.resolve();
    }
  };
  return { w, run, asked: () => asked, dead: () => dead };
}

const GONE: CacheLeaderAnswer = { member: false, leaderId: null, voters: [], learners: [] };
const HOLDS: CacheLeaderAnswer = { member: true, leaderId: null, voters: VOTERS, learners: [] };

test('a leader that commits nothing while entries wait, its other voter gone: it drops its state', async () => {
  // Found by the cache simulator (--cache-loss seed 26): the other voter of a two-voter group
  // lost its state and answered every append with a rejection, so this node stayed leader.
  const d = watchdog(() => ({ leaderId: 1 as NodeId, commitIndex: 56, lastIndex: 57 }), GONE);
  await d.run(6);
  assert.ok(d.asked() >= 2, 'it asked the other voter');
  assert.equal(d.dead(), 1, 'dropped its state after two checks in a row');
  d.w.stop();
});

test('a leader that commits is never watched, nor one with nothing to commit', async () => {
  let commit = 10;
  const busy = watchdog(() => ({ leaderId: 1 as NodeId, commitIndex: commit++, lastIndex: 1000 }), GONE);
  await busy.run(8);
  assert.equal(busy.asked(), 0);
  busy.w.stop();
  const idle = watchdog(() => ({ leaderId: 1 as NodeId, commitIndex: 57, lastIndex: 57 }), GONE);
  await idle.run(8);
  assert.equal(idle.asked(), 0);
  idle.w.stop();
});

test('a voter without a leader whose group its other voter still holds keeps its state', async () => {
  const d = watchdog(() => ({ leaderId: null, commitIndex: 5, lastIndex: 5 }), HOLDS);
  await d.run(8);
  assert.ok(d.asked() >= 2, 'it asked');
  assert.equal(d.dead(), 0);
  d.w.stop();
  // The same voter once the other lost the group: dropped.
  const gone = watchdog(() => ({ leaderId: null, commitIndex: 5, lastIndex: 5 }), GONE);
  await gone.run(8);
  assert.equal(gone.dead() >= 1, true);
  gone.w.stop();
});

test('a group dead for good is dropped within 2 election timeouts without a leader and two checks an election timeout apart', async () => {
  // 15-20 s after a majority was killed with the default timings (5 election timeouts, then
  // checks 2 apart), measured from outside; the answers decide, not the wait.
  const d = watchdog(() => ({ leaderId: null, commitIndex: 5, lastIndex: 5 }), GONE);
  let elapsed = 0;
  for (; elapsed < 10_000 && d.dead() === 0; elapsed += 100) await d.run(0.1);
  assert.equal(d.dead(), 1);
  // First check at 500 ms (leaderless from then), asks at 1000 ms (400 ms on), confirms at 1500.
  assert.ok(elapsed <= 1600, `dropped after ${elapsed} ms (election timeout ${ELECTION_MS} ms)`);
  assert.ok(elapsed >= 1000, `dropped after ${elapsed} ms: before two checks`);
  d.w.stop();
});
