/**
 * PeerClocks (src/node/peer-clocks.ts): the cluster's wall clock is the median of this node's and
 * the peers' clocks once a majority of the nodes is known, so a clock that runs ahead is outvoted
 * (its own node stamps the others' time) and a minority of wrong clocks never moves the others.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Logger, pino } from 'pino';
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
  /** Timers are run by hand (`fireTimers`). */
  const timers = new Map<number, { fn: () => void; at: number }>();
  let timerId = 0;
  const clock: Clock = {
    monotonicMs: () => t.mono,
    wallMs: () => t.trueMs + t.own,
    setTimer: (fn, ms) => {
      timers.set(++timerId, { fn, at: t.mono + ms });
      return timerId as unknown as TimerHandle;
    },
    clearTimer: (h) => {
      timers.delete(h as unknown as number);
    },
  };
  /** What the node logged as warnings. */
  const warnings: string[] = [];
  const clocks = new PeerClocks({
    clock,
    log: { warn: (_fields: unknown, message: string) => warnings.push(message) } as unknown as Logger,
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
  const fireTimers = () => {
    for (const [id, tm] of [...timers]) {
      if (tm.at > t.mono) continue;
      timers.delete(id);
      tm.fn();
    }
  };
  return { t, peers, clocks, pass, fireTimers, warnings };
}

/** PeerClocks of node 1 in `c` (peers 2 and 3, no timers) whose questions `ask` answers. */
function askedBy(c: ReturnType<typeof cluster>, ask: (peer: number) => Promise<unknown>): PeerClocks {
  return new PeerClocks({
    clock: {
      monotonicMs: () => c.t.mono,
      wallMs: () => c.t.trueMs + c.t.own,
      setTimer: () => 0 as unknown as TimerHandle,
      clearTimer: () => {},
    },
    log: pino({ level: 'silent' }),
    intervalMs: 10_000,
    peers: [2, 3],
    askWallMs: ask,
  });
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

  test('two clocks that disagree, with no cluster clock known before: the earlier is taken', async () => {
    const { t, peers, clocks } = cluster(2);
    peers.set(2, 'down');
    peers.set(3, HOUR_MS);
    await clocks.probeAll();
    assert.equal(clocks.wallMs(), t.trueMs, 'a peer an hour ahead does not move this node');
    // A node restarted with its clock an hour ahead, one peer down: it stamps the peer's time.
    const restarted = cluster(2);
    restarted.t.own = HOUR_MS;
    restarted.peers.set(2, 'down');
    await restarted.clocks.probeAll();
    assert.equal(restarted.clocks.wallMs(), restarted.t.trueMs);
    // Behind, its own (earlier) is taken: log time runs on from the log's time (log-clock.ts).
    const behind = cluster(2);
    behind.t.own = -HOUR_MS;
    behind.peers.set(2, 'down');
    await behind.clocks.probeAll();
    assert.equal(behind.clocks.wallMs(), behind.t.trueMs - HOUR_MS);
  });

  test('two clocks that disagree, with no cluster clock known before, for a log without time: the later is taken', async () => {
    // A new group's first stamps: started from the clock behind, log time would jump forward
    // once the third clock is known, ending the leases granted until then early.
    const behind = cluster(2);
    behind.t.own = -HOUR_MS;
    behind.peers.set(2, 'down');
    behind.peers.set(3, 0);
    await behind.clocks.probeAll();
    assert.equal(behind.clocks.wallMs('later'), behind.t.trueMs);
    // A guess, not carried: each caller breaks the tie its own way until a third clock is known.
    assert.equal(behind.clocks.wallMs('earlier'), behind.t.trueMs - HOUR_MS);
    behind.peers.set(2, 0);
    await behind.clocks.probeAll();
    assert.equal(behind.clocks.wallMs('earlier'), behind.t.trueMs, 'the median of three');
    const peerBehind = cluster(2);
    peerBehind.peers.set(2, 'down');
    peerBehind.peers.set(3, -HOUR_MS);
    await peerBehind.clocks.probeAll();
    assert.equal(
      peerBehind.clocks.wallMs('later'),
      peerBehind.t.trueMs,
      'a peer behind does not take it back',
    );
  });

  test('between two clocks that disagree, the one nearer the last cluster clock is taken', async () => {
    const { t, peers, clocks, pass } = cluster(2);
    await clocks.probeAll();
    assert.equal(clocks.wallMs(), t.trueMs);
    // Node 2 goes down, then this node's clock is stepped an hour ahead: of the two clocks left,
    // the peer's agrees with the cluster clock carried forward by the monotonic clock.
    peers.set(2, 'down');
    pass(3 * INTERVAL_MS + 1); // node 2's samples aged out
    await clocks.probeAll();
    t.own = HOUR_MS;
    assert.equal(clocks.wallMs(), t.trueMs, 'this node’s stepped clock is outvoted');
    // And the other way round: the peer's clock is stepped back an hour.
    t.own = 0;
    peers.set(3, -HOUR_MS);
    pass(3 * INTERVAL_MS + 1);
    await clocks.probeAll();
    assert.equal(clocks.wallMs(), t.trueMs, 'the peer’s stepped clock is outvoted');
  });

  test('while fewer than a majority answer, the last cluster clock runs on by the monotonic clock', async () => {
    const { t, peers, clocks, pass } = cluster(2);
    await clocks.probeAll();
    peers.set(2, 'down');
    peers.set(3, 'down');
    pass(10 * INTERVAL_MS); // every sample aged out: cut off
    t.own = HOUR_MS; // and this node's clock stepped meanwhile
    await clocks.probeAll();
    assert.equal(clocks.wallMs(), t.trueMs, 'not this node’s stepped clock');
    assert.equal(clocks.offsetMs(), HOUR_MS);
    peers.set(2, 0);
    await clocks.probeAll();
    assert.equal(clocks.wallMs(), t.trueMs, 'and the median again once a majority answers');
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
    assert.equal(clocks.peerOffsets().size, 2);
    pass(1);
    assert.equal(clocks.peerOffsets().size, 0, 'then no longer counted');
    assert.equal(clocks.wallMs(), t.trueMs, 'the last median runs on (the test below)');
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
    // Its middle says 100 ms behind; a peer is never taken later than the middle (provenClock).
    assert.equal(clocks.peerOffsets().get(2)?.offsetMs, -100, 'off by up to half the round trip');
    assert.equal(clocks.peerOffsets().get(2)?.rttMs, 1000);
    slow = false;
    await clocks.probeAll();
    assert.equal(clocks.peerOffsets().get(2)?.offsetMs, 0);
    assert.equal(clocks.peerOffsets().get(2)?.rttMs, 0);
  });

  test('writers wait (ready()) for a majority’s answers after start, one interval at most', async () => {
    const { peers, clocks } = cluster(4); // majority: this node and two peers
    const wait = clocks.ready();
    assert.ok(wait !== null, 'pending before any answer');
    let resolved = false;
    void wait.then(() => {
      resolved = true;
    });
    for (const id of [2, 3, 4]) peers.set(id, 'down');
    await clocks.probeAll();
    await Promise.resolve();
    assert.equal(resolved, false, 'two clocks of five are not a majority');
    assert.ok(clocks.ready() !== null);
    peers.set(4, 0);
    await clocks.probeAll();
    await Promise.resolve();
    assert.equal(resolved, true, 'three are');
    assert.equal(clocks.ready(), null);

    const late = cluster(2);
    for (const id of [2, 3]) late.peers.set(id, 'down');
    const lateWait = late.clocks.ready();
    assert.ok(lateWait !== null);
    await late.clocks.probeAll();
    late.pass(INTERVAL_MS - 1);
    late.fireTimers();
    assert.ok(late.clocks.ready() !== null, 'still waiting just before one interval');
    late.pass(1);
    late.fireTimers();
    assert.equal(late.clocks.ready(), null, 'not longer than one interval');
    await lateWait;
  });

  test('while writers wait, a peer that could not be asked is asked again soon, not a whole interval later', async () => {
    const { peers, clocks, pass, fireTimers } = cluster(2);
    for (const id of [2, 3]) peers.set(id, 'down'); // their ports are not open yet
    clocks.start();
    fireTimers(); // the first round: both refused
    await new Promise((r) => setImmediate(r));
    assert.notEqual(clocks.ready(), null);
    peers.set(2, 0); // node 2 opened its port
    pass(100);
    fireTimers(); // asked again, long before the next round (INTERVAL_MS)
    await new Promise((r) => setImmediate(r));
    assert.equal(clocks.ready(), null, 'two clocks of three known: writers go on');
    // Nobody waits any more: node 3, still down, is left to the rounds.
    peers.set(3, 0);
    pass(200);
    fireTimers();
    await new Promise((r) => setImmediate(r));
    assert.equal(clocks.peerOffsets().has(3), false, 'not asked again before the next round');
    pass(INTERVAL_MS);
    fireTimers();
    await new Promise((r) => setImmediate(r));
    assert.equal(clocks.peerOffsets().has(3), true, 'asked at the next round');
    clocks.close();
  });

  test('waitReady keeps the writer’s deadline: HQL_TIMEOUT when the clock is not known by then', async () => {
    const { peers, clocks, pass, fireTimers } = cluster(2);
    for (const id of [2, 3]) peers.set(id, 'down');
    const waiting = clocks.waitReady(300);
    pass(300);
    fireTimers();
    await assert.rejects(waiting, (e: unknown) => (e as { code?: string }).code === 'HQL_TIMEOUT');

    const later = clocks.waitReady(5_000);
    peers.set(2, 0);
    pass(200);
    await clocks.probeAll(); // a majority answers 500 ms after start
    assert.equal(await later, 4_800, 'what is left of the deadline');
    assert.equal(await clocks.waitReady(1_000), 1_000, 'no wait once known');
  });

  test('starting to lead with too few clocks known (cut off, restarted): ask again at once, writers wait for the answers', async () => {
    const { t, peers, clocks, pass } = cluster(2);
    t.own = -HOUR_MS;
    await clocks.probeAll();
    assert.equal(clocks.ready(), null, 'a majority answered');
    clocks.refresh();
    assert.equal(clocks.ready(), null, 'a majority known: nothing to wait for');
    // Cut off for longer than three intervals: the answers aged out.
    peers.set(2, 'down');
    peers.set(3, 'down');
    pass(4 * INTERVAL_MS);
    clocks.refresh();
    assert.notEqual(clocks.ready(), null, 'writers wait for the answers before stamping');
    peers.set(2, 0);
    peers.set(3, 0);
    await clocks.probeAll();
    assert.equal(clocks.ready(), null, 'answered: writers go on');
    assert.equal(clocks.wallMs(), t.trueMs, "the cluster's time, not this node's clock an hour behind");
  });

  test('two known clocks seconds apart are a guess: writers wait for a third (within their wait)', async () => {
    const { t, peers, clocks } = cluster(2);
    t.own = -HOUR_MS;
    peers.set(2, 'down');
    peers.set(3, 0);
    await clocks.probeAll();
    assert.notEqual(clocks.ready(), null, 'a majority answered, but it cannot tell the time');
    peers.set(2, 0);
    await clocks.probeAll();
    assert.equal(clocks.ready(), null);
    assert.equal(clocks.wallMs(), t.trueMs);
    // Two that agree settle it.
    const agreeing = cluster(2);
    agreeing.peers.set(2, 'down');
    agreeing.peers.set(3, 20);
    await agreeing.clocks.probeAll();
    assert.equal(agreeing.clocks.ready(), null);
  });

  test('a cluster of one never waits', () => {
    const { clocks } = cluster(0);
    assert.equal(clocks.ready(), null);
    assert.equal(clocks.foundingReady(), null);
  });

  test('a group without log time waits for a clock it can start from: two clocks seconds apart wait for the third past the interval, within the writer’s deadline', async () => {
    // Started from the later of two clocks 4.3 s apart (one node of three down), a cache group's
    // tokens ran 4.3 s ahead, and the group founded anew after it, with the third clock known,
    // granted tokens below them (the cache simulation with --cache-loss, seed 2669).
    const { t, peers, clocks, pass, fireTimers, warnings } = cluster(2);
    peers.set(2, 4_300);
    peers.set(3, 'down');
    clocks.start();
    fireTimers();
    await new Promise((r) => setImmediate(r));
    pass(INTERVAL_MS);
    fireTimers();
    await new Promise((r) => setImmediate(r));
    assert.equal(clocks.ready(), null, 'a log with time goes on after one interval (the tie-break)');
    assert.notEqual(clocks.foundingReady(), null, 'a first stamp waits');
    const late = clocks.waitFounding(300);
    pass(300);
    fireTimers();
    await assert.rejects(late, (e: unknown) => {
      const err = e as { code?: string; retryable?: boolean; message: string };
      return err.code === 'HQL_TIMEOUT' && err.retryable === true && /node 2 4300 ms/.test(err.message);
    });
    const logged = () => warnings.filter((w) => /no log time yet/.test(w)).length;
    assert.equal(logged(), 1, 'the operator is told');
    const again = clocks.waitFounding(100);
    pass(100);
    fireTimers();
    await assert.rejects(again);
    assert.equal(logged(), 1, 'at most once a minute');
    const waiting = clocks.waitFounding(5_000);
    peers.set(3, 0); // back: asked again soon while a first stamp waits, not at the next round
    pass(100);
    fireTimers();
    await new Promise((r) => setImmediate(r));
    assert.equal(await waiting, 5_000 - 100, 'what is left of the deadline');
    assert.equal(clocks.foundingReady(), null);
    assert.equal(clocks.wallMs('later'), t.trueMs, 'the median of three: the clock 4.3 s ahead is outvoted');
    clocks.close();
  });

  test('a group without log time does not wait when every node’s clock is known (two nodes that disagree: nothing left to ask)', async () => {
    const { t, peers, clocks } = cluster(1);
    peers.set(2, 4_300);
    await clocks.probeAll();
    assert.equal(clocks.foundingReady(), null);
    assert.equal(clocks.wallMs('later'), t.trueMs + 4_300, 'the tie-break: the later');
  });

  test('two clocks agree within what the round trip leaves uncertain: one host’s clock read late does not look behind', async () => {
    // A peer that answers at once, read at the end of a long round trip (this node's event loop
    // busy), is seen half the round trip behind; compared as points, two clocks of one host
    // looked 500 ms apart and writers waited for a third.
    const c = cluster(2);
    const clocks = askedBy(c, async (peer) => {
      if (peer === 3) throw new Error('down');
      const answer = c.t.trueMs;
      c.pass(1_000);
      return answer;
    });
    await clocks.probeAll();
    assert.equal(clocks.peerOffsets().get(2)?.offsetMs, -500, 'seen half the round trip behind');
    assert.equal(clocks.ready(), null, 'settled: the two agree within the uncertainty');
    assert.equal(clocks.foundingReady(), null);
    clocks.close();
  });
});

describe('PeerClocks: slow answers', () => {
  /** Peers that answer at the end of a round trip of `rttMs` (busy: a node starting up). */
  function slow(rttMs: number, offsets: [number, number]) {
    const c = cluster(2);
    c.peers.set(2, offsets[0]);
    c.peers.set(3, offsets[1]);
    const clocks = askedBy(c, async (peer) => {
      // Both asked at once: the round trip passes once, both answer at its end.
      if (peer === 2) c.pass(rttMs);
      return c.t.trueMs + (c.peers.get(peer) as number);
    });
    return { ...c, clocks };
  }

  test('peers whose clocks are this node’s own but answer late in a long round trip do not move the cluster’s clock', async () => {
    // Found from outside: two of three nodes restarted at once answered after 4.7 s; taken at the
    // middle of the round trip their clocks looked 2.3 s ahead, and log time jumped ahead by up to
    // 0.5 s on one host (TTLs ended that early).
    const { t, clocks } = slow(4_700, [0, 0]);
    await clocks.probeAll();
    assert.equal(clocks.wallMs(), t.trueMs);
    assert.equal(clocks.offsetMs(), 0);
    assert.equal(clocks.peerOffsets().get(2)?.offsetMs, 0);
  });

  test('what a long round trip proves still counts: peers an hour ahead are seen at least an hour less half the round trip ahead', async () => {
    const { t, clocks } = slow(4_000, [HOUR_MS, HOUR_MS]);
    await clocks.probeAll();
    const ahead = clocks.wallMs() - t.trueMs;
    assert.ok(
      ahead >= HOUR_MS - 2_000 && ahead <= HOUR_MS,
      `the cluster's clock ${ahead} ms ahead of this node's`,
    );
  });

  test('peers whose answers come fast are taken as they say', async () => {
    const { t, clocks } = slow(2, [700, 900]);
    await clocks.probeAll();
    const ahead = clocks.wallMs() - t.trueMs;
    // The median of 0, 700 and 900 (each within 1 ms, half the round trip).
    assert.ok(Math.abs(ahead - 700) <= 1, `the cluster's clock ${ahead} ms ahead of this node's`);
  });
});
