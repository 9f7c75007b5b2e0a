/**
 * InFlight (src/node/in-flight.ts), what a graceful shutdown waits on: the node's writes, each API
 * connection's requests, the HTTP requests. drained() says true once nothing is in flight, false
 * at its deadline, with a Clock (the node) or Timers (the API server) alike, and leaves no timer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InFlight } from '../../src/node/in-flight.js';
import type { Timers } from '../../src/transport/timers.js';
import { ManualClock } from '../support/manual-clock.js';

/** Timers on the manual clock, as the API server takes them. */
function timersOf(clock: ManualClock): Timers {
  return {
    setTimeout: (fn, ms) => clock.setTimer(fn, ms),
    clearTimeout: (h) => clock.clearTimer(h as never),
  };
}

for (const kind of ['clock', 'timers'] as const) {
  test(`drained() with ${kind}: true when idle or once the last leaves, false at the deadline`, async () => {
    const clock = new ManualClock();
    const time = kind === 'clock' ? clock : timersOf(clock);
    const f = new InFlight();
    assert.equal(await f.drained(100, time), true, 'nothing in flight');
    f.enter();
    f.enter();
    assert.equal(await f.drained(0, time), false, 'no time to wait');
    const waiting = f.drained(100, time);
    f.leave();
    clock.advance(50);
    f.leave();
    assert.equal(await waiting, true);
    assert.equal(clock.pendingTimers, 0, 'its deadline timer was cleared');
    f.enter();
    const late = f.drained(100, time);
    clock.advance(100);
    assert.equal(await late, false);
    assert.equal(f.size, 1);
    f.leave(); // a leave after the deadline wakes nobody
    assert.equal(await f.track(async () => f.size), 1, 'track() counts the work while it runs');
    assert.equal(f.size, 0);
  });
}
