/**
 * PeerClocks (src/node/peer-clocks.ts): the cluster's wall clock is the median of this node's and
 * the peers' clocks once a majority of the nodes is known, so a clock that runs ahead is outvoted
 * (its own node stamps the others' time) and a minority of wrong clocks never moves the others.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { Clock, TimerHandle } from '../../src/lib/clock.js';
import { PeerClocks } from '../../src/node/peer-clocks.js';

const HOUR_MS = 3_600_000;
const T0 = 1_800_000_000_000;
const INTERVAL_MS = 1_000;

/** Real time is `trueMs`; each node's wall clock is it plus its own offset. */
function cluster(peerCount: number) {
  const t = { mono: 50_000, trueMs: T0, own: 0 };
  const peers = new Map<number, number | null | 'down'>();
  for (let id = 2; id <= peerCount + 1; id++) peers.set(id, 0);
  const clock: Clock = {
    monotonicMs: () => t.mono,
    wallMs: () => t.trueMs + t.own,
    setTimer: () => 0 as unknown as TimerHandle,
    clearTimer: () => {},
  };
  const clocks = new PeerClocks({
    clock,
    log: pino({ level: 'silent' }),
    intervalMs: INTERVAL_MS,
    peers: [...peers.keys()],
    askWallMs: async (peer) => {
      const o = peers.get(peer);
      if (o === 'down') throw new Error('connection refused');
      return o === null ? null : t.trueMs + (o ?? 0);
    },
  });
  const pass = (ms: number) => {
    t.mono += ms;
    t.trueMs += ms;
  };
  return { t, peers, clocks, pass };
}

describe('PeerClocks', () => {
  test('with no answers yet, the cluster clock is this node’s own', () => {
    const { t, clocks } = cluster(2);
    t.own = HOUR_MS;
    assert.equal(clocks.wallMs(), T0 + HOUR_MS);
    assert.equal(clocks.offsetMs(), 0);
  });

  test('a node whose clock runs an hour ahead takes the others’ time', async () => {
    const { t, clocks, pass } = cluster(2);
    t.own = HOUR_MS;
    await clocks.probeAll();
    assert.equal(clocks.wallMs(), t.trueMs);
    assert.equal(clocks.offsetMs(), HOUR_MS);
    pass(500);
    assert.equal(clocks.wallMs(), t.trueMs, 'carried forward by the monotonic clock');
  });

  test('one peer an hour ahead moves nobody', async () => {
    const { t, peers, clocks } = cluster(2);
    peers.set(2, HOUR_MS);
    await clocks.probeAll();
    assert.equal(clocks.wallMs(), t.trueMs);
    assert.equal(clocks.peerOffsets().get(2)?.offsetMs, HOUR_MS);
  });

  test('two clocks that disagree (one node of three down) leave this node with its own', async () => {
    const { t, peers, clocks } = cluster(2);
    peers.set(2, 'down');
    peers.set(3, HOUR_MS);
    await clocks.probeAll();
    assert.equal(clocks.wallMs(), t.trueMs);
    t.own = HOUR_MS;
    peers.set(3, 0);
    await clocks.probeAll();
    assert.equal(clocks.wallMs(), t.trueMs + HOUR_MS, 'nor is it moved by one peer');
  });

  test('in a cluster of five, two peers are a majority with this node', async () => {
    const { t, peers, clocks } = cluster(4);
    peers.set(2, 'down');
    peers.set(3, 'down');
    t.own = HOUR_MS;
    await clocks.probeAll();
    assert.equal(clocks.wallMs(), t.trueMs);
    peers.set(4, 'down');
    await clocks.probeAll(); // 4's sample is still fresh
    assert.equal(clocks.wallMs(), t.trueMs);
  });

  test('a node of an earlier version (ping answers null) does not count', async () => {
    const { t, peers, clocks } = cluster(2);
    peers.set(2, null);
    peers.set(3, null);
    t.own = HOUR_MS;
    await clocks.probeAll();
    assert.equal(clocks.wallMs(), t.trueMs + HOUR_MS);
    assert.equal(clocks.peerOffsets().size, 0);
  });

  test('a jump of this node’s clock shows at once, before the next question', async () => {
    const { t, clocks, pass } = cluster(2);
    await clocks.probeAll();
    pass(200);
    t.own = HOUR_MS; // the clock is stepped after the samples were taken
    assert.equal(clocks.wallMs(), t.trueMs);
    assert.equal(clocks.offsetMs(), HOUR_MS);
  });

  test('answers age out after three intervals', async () => {
    const { t, clocks, pass } = cluster(2);
    t.own = HOUR_MS;
    await clocks.probeAll();
    pass(3 * INTERVAL_MS);
    assert.equal(clocks.wallMs(), t.trueMs, 'fresh for three intervals');
    pass(1);
    assert.equal(clocks.wallMs(), t.trueMs + HOUR_MS);
  });

  test('the answer with the shortest round trip is used', async () => {
    const { t, clocks } = cluster(2);
    // A slow answer: the peer's clock read 400 ms into a round trip of 1 s.
    let slow = true;
    const ask = async (peer: number) => {
      if (peer === 3) throw new Error('down');
      if (!slow) return t.trueMs;
      t.mono += 400;
      t.trueMs += 400;
      const w = t.trueMs;
      t.mono += 600;
      t.trueMs += 600;
      return w;
    };
    (clocks as unknown as { d: { askWallMs: unknown } }).d.askWallMs = ask;
    await clocks.probeAll();
    assert.equal(
      Math.round(clocks.peerOffsets().get(2)?.offsetMs ?? 0),
      -100,
      'off by up to half the round trip',
    );
    slow = false;
    await clocks.probeAll();
    assert.equal(clocks.peerOffsets().get(2)?.offsetMs, 0);
    assert.equal(clocks.peerOffsets().get(2)?.rttMs, 0);
  });
});
