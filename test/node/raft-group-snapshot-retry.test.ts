/**
 * A snapshot that a peer cannot take is offered again after a pause that doubles, not at once:
 * found from outside, the leader sent it hundreds of times a second while the peer restarted,
 * each a failure and a warning (about 1,000 log lines per restart of such a peer).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message, NodeId } from '../../src/raft/types.js';
import { GroupCluster, KvStateMachine } from './group-harness.js';

test('failed snapshot sends to a peer back off', async () => {
  const c = await GroupCluster.create(3, 20);
  try {
    const { stopped } = await c.followerBehindSnapshot();
    // The peer is back and answers (its appends and heartbeats go through), but every snapshot
    // sent to it fails, as to a peer whose snapshot port is not up yet.
    const attempts: number[] = [];
    const real = c.sendSnapshot.bind(c);
    c.sendSnapshot = async (g, m: Extract<Message, { type: 'snapshot' }>, path) => {
      if (m.to === stopped.id) {
        attempts.push(performance.now());
        return false;
      }
      return real(g, m, path);
    };
    const voters = [...c.nodes.keys(), stopped.id].sort() as NodeId[];
    await c.startNode(stopped.id, voters, 20, stopped.logState, new KvStateMachine());
    await c.waitFor('four attempts', () => attempts.length >= 4, 15_000);
    // Each pause at least the one before doubled: 200 ms, 400, 800 (a slow scheduler only
    // lengthens them). Reported at once, the next attempt came with the next heartbeat round.
    const gaps = attempts.slice(1, 4).map((t, i) => t - (attempts[i] as number));
    gaps.forEach((gap, i) => {
      assert.ok(gap >= 0.95 * 200 * 2 ** i, `pause ${i + 1}: ${gap.toFixed(0)} ms (${gaps.map(Math.round)})`);
    });
  } finally {
    await c.close();
  }
});
