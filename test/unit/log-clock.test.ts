/**
 * LogClock (src/lib/log-clock.ts): the time a node stamps on the entries it proposes. It follows
 * the wall clock, takes every jump of the log's applied time, runs on at real-time rate from a
 * log time ahead of the wall clock (a leader whose clock ran ahead must not stop time for the
 * others), drifts back to the wall clock by LOG_CLOCK_SLEW, and never goes back.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LOG_CLOCK_SLEW, LogClock } from '../../src/lib/log-clock.js';
import { Prng } from '../../src/lib/prng.js';

const HOUR_MS = 3_600_000;
const T0 = 1_800_000_000_000;

function fixture() {
  const c = { mono: 5_000, wall: T0, applied: 0 };
  const clock = new LogClock({ monotonicMs: () => c.mono, wallMs: () => c.wall }, () => c.applied);
  const step = (ms: number) => {
    c.mono += ms;
    c.wall += ms;
  };
  return { c, clock, step };
}

describe('LogClock', () => {
  test('follows the wall clock while the log is not ahead of it', () => {
    const { c, clock, step } = fixture();
    assert.equal(clock.nowMs(), T0);
    step(1_234);
    assert.equal(clock.nowMs(), T0 + 1_234);
    c.applied = T0; // this node's own stamps, applied
    step(10);
    assert.equal(clock.nowMs(), T0 + 1_244);
  });

  test('runs on from a log time an hour ahead instead of standing still', () => {
    const { c, clock, step } = fixture();
    clock.nowMs();
    c.applied = T0 + HOUR_MS; // another node's clock ran an hour ahead and stamped an entry
    assert.equal(clock.nowMs(), T0 + HOUR_MS);
    step(10_000);
    const t = clock.nowMs();
    // Ten seconds later, log time moved by ten seconds, less the slew (not 0, as the wall clock alone).
    assert.equal(t, T0 + HOUR_MS + Math.floor(10_000 * (1 - LOG_CLOCK_SLEW)));
    step(1);
    assert.ok(clock.nowMs() >= t, 'never goes back');
  });

  test('counts the time since it last looked at the log, so a new leader does not lose the idle time', () => {
    const { c, clock, step } = fixture();
    c.applied = T0 + HOUR_MS;
    assert.equal(clock.nowMs(), T0 + HOUR_MS); // a follower's read
    step(600_000); // idle for ten minutes, then this node leads and stamps
    assert.equal(clock.nowMs(), T0 + HOUR_MS + Math.floor(600_000 * (1 - LOG_CLOCK_SLEW)));
  });

  test('drifts back to the wall clock and then follows it exactly', () => {
    const { c, clock, step } = fixture();
    c.applied = T0 + 1_000; // one second ahead
    clock.nowMs();
    // 1 s at 1% of elapsed time takes 100 s; in steps of a second it is absorbed by then.
    for (let i = 0; i < 101; i++) {
      step(1_000);
      clock.nowMs();
    }
    assert.equal(clock.nowMs(), c.wall);
    step(777);
    assert.equal(clock.nowMs(), c.wall);
  });

  test('takes a forward jump of the wall clock, and never follows it back', () => {
    const { c, clock, step } = fixture();
    clock.nowMs();
    c.wall += 60_000; // the clock is stepped forward
    assert.equal(clock.nowMs(), T0 + 60_000);
    c.wall -= 60_000; // and back
    step(1_000);
    const t = clock.nowMs();
    assert.ok(t >= T0 + 60_000 + 1_000 * (1 - LOG_CLOCK_SLEW) - 1, `ran on: ${t - T0}`);
    assert.ok(t <= T0 + 61_000, `not faster than real time: ${t - T0}`);
  });

  test('any sequence of clock readings gives whole, non-decreasing times, never below the wall clock or the log', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rng = new Prng(seed);
      const { c, clock } = fixture();
      let last = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < 300; i++) {
        c.mono += rng.int(0, 5_000);
        c.wall += rng.int(-20_000, 20_000);
        if (rng.int(0, 9) === 0) c.applied = Math.max(c.applied, c.wall + rng.int(-HOUR_MS, HOUR_MS));
        const t = clock.nowMs();
        assert.ok(Number.isInteger(t), `seed ${seed}: ${t} is whole`);
        assert.ok(t >= last, `seed ${seed}, step ${i}: ${t} < ${last}`);
        assert.ok(
          t >= Math.floor(c.wall) && t >= c.applied,
          `seed ${seed}, step ${i}: below the wall or the log`,
        );
        last = t;
      }
    }
  });
});
