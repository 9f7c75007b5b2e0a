/**
 * LogClock (src/lib/log-clock.ts): the time a node stamps on the entries it proposes. It follows
 * the wall clock, takes every jump of the log's applied time, runs on at real-time rate from a
 * log time ahead of the wall clock (a leader whose clock ran ahead must not stop time for the
 * others), and drifts back to the wall clock by LOG_CLOCK_SLEW. Stamps never go back; reads
 * carry only log time, so a wall clock wrong for a moment does not stay in them.
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
  test('stamps ask the cluster clock for the later of two disagreeing clocks only while the log has no time, reads always', () => {
    const c = { mono: 5_000, applied: 0, asked: [] as Array<string | undefined> };
    const clock = new LogClock(
      {
        monotonicMs: () => c.mono,
        wallMs: (tieBreak) => {
          c.asked.push(tieBreak);
          return tieBreak === 'later' ? T0 : T0 - HOUR_MS;
        },
      },
      () => c.applied,
    );
    assert.equal(clock.stampMs(), T0, 'a new group: the later');
    assert.deepEqual(c.asked, ['later']);
    assert.equal(clock.stampMs(), T0, 'carried on from its first stamp');
    assert.deepEqual(c.asked, ['later', 'earlier']);
    clock.nowMs();
    assert.equal(c.asked[2], 'later', 'a read judges by the later: never live after it may have ended');
    const applied = new LogClock(
      { monotonicMs: () => c.mono, wallMs: (tieBreak) => (tieBreak === 'later' ? T0 + HOUR_MS : T0) },
      () => T0 - 1_000,
    );
    assert.equal(applied.stampMs(), T0, 'a log with time: the earlier (one ahead would end TTLs early)');
  });

  test('reads before any time leave the log without time: the first stamp is still the first (the later clock)', () => {
    // Reads took the missing log time as 0 and carried it forward by the monotonic clock, so a
    // node that read before it stamped no longer counted its first stamp as first: a group
    // founded anew started from the earlier of two disagreeing clocks, or, with a stamp taken
    // while it did not lead, from a guess it carried (the cache simulation, seed 2669).
    const c = { mono: 5_000, asked: [] as Array<string | undefined> };
    const clock = new LogClock(
      {
        monotonicMs: () => c.mono,
        wallMs: (tieBreak) => {
          c.asked.push(tieBreak);
          return tieBreak === 'later' ? T0 : T0 - HOUR_MS;
        },
      },
      () => 0,
    );
    for (let i = 0; i < 3; i++) {
      clock.nowMs();
      c.mono += 50;
    }
    assert.equal(clock.hasTime(), false, 'reads give the log no time');
    assert.equal(clock.stampMs(), T0, 'the first stamp takes the later');
    assert.equal(c.asked.at(-1), 'later');
    assert.equal(clock.hasTime(), true, 'a stamp gives it time');
  });

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

  test('a wall clock ahead for a moment does not stay: only log time is carried', () => {
    const { c, clock, step } = fixture();
    clock.nowMs();
    c.wall += HOUR_MS; // read before the peers answered: this node's own clock, an hour ahead
    assert.equal(clock.nowMs(), T0 + HOUR_MS);
    c.wall -= HOUR_MS; // the cluster's clock, once known
    step(1_000);
    assert.equal(clock.nowMs(), T0 + 1_000, 'back to the wall clock: nothing was stamped');
    // What was stamped and applied meanwhile does stay (the log's time).
    c.applied = T0 + 1_000 + 60_000;
    step(1_000);
    const t = clock.nowMs();
    assert.equal(t, T0 + 61_000, 'takes the applied log time');
    step(1_000);
    assert.equal(clock.nowMs(), t + Math.floor(1_000 * (1 - LOG_CLOCK_SLEW)));
  });

  test('stamps are carried: they never go back, and run on at real-time rate (less the slew) from the last', () => {
    const { c, clock, step } = fixture();
    c.wall += HOUR_MS;
    const first = clock.stampMs(); // stamped by a clock an hour ahead, not yet applied
    c.wall -= HOUR_MS;
    step(400);
    const second = clock.stampMs();
    assert.equal(second, first + Math.floor(400 * (1 - LOG_CLOCK_SLEW)), 'not the same stamp, nor back');
  });

  test('any sequence of readings: whole, never below the wall clock or the log, non-decreasing while the wall clock is', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rng = new Prng(seed);
      const { c, clock } = fixture();
      const wallOnlyForward = seed % 2 === 0;
      let last = Number.NEGATIVE_INFINITY;
      // The log's own path: the highest applied time, carried at real-time rate.
      let logBound = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < 300; i++) {
        const dt = rng.int(0, 5_000);
        c.mono += dt;
        logBound += dt;
        c.wall += wallOnlyForward ? rng.int(0, 20_000) : rng.int(-20_000, 20_000);
        if (rng.int(0, 9) === 0) c.applied = Math.max(c.applied, c.wall + rng.int(-HOUR_MS, HOUR_MS));
        logBound = Math.max(logBound, c.applied);
        const t = clock.nowMs();
        assert.ok(Number.isInteger(t), `seed ${seed}: ${t} is whole`);
        if (wallOnlyForward) assert.ok(t >= last, `seed ${seed}, step ${i}: ${t} < ${last}`);
        assert.ok(
          t >= Math.floor(c.wall) && t >= c.applied,
          `seed ${seed}, step ${i}: below the wall or the log`,
        );
        assert.ok(
          t <= Math.max(c.wall, logBound),
          `seed ${seed}, step ${i}: ${t} is ahead of both the wall clock and the log's own time`,
        );
        last = t;
      }
    }
  });

  test('any sequence of stamps: whole, non-decreasing, never below the wall clock or the log', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rng = new Prng(seed);
      const { c, clock } = fixture();
      let last = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < 300; i++) {
        c.mono += rng.int(0, 5_000);
        c.wall += rng.int(-20_000, 20_000);
        if (rng.int(0, 9) === 0) c.applied = Math.max(c.applied, c.wall + rng.int(-HOUR_MS, HOUR_MS));
        // Reads between stamps change nothing a stamp relies on.
        if (rng.int(0, 2) === 0) clock.nowMs();
        const t = clock.stampMs();
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
