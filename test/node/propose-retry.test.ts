/**
 * The write loop of a node (propose-retry.ts), both groups': what a caller learns of a write
 * under a session, from the attempts the loop made. The rule a user relies on: an error other
 * than HQL_OUTCOME_UNKNOWN means the write was certainly not applied; HQL_OUTCOME_UNKNOWN is
 * returned only when an attempt may have reached the log; a retry after such an attempt goes on
 * until a final answer (the session makes it safe).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Clock, TimerHandle } from '../../src/lib/clock.js';
import { HiqliteError, outcomeUnknown } from '../../src/lib/errors.js';
import { type Forwarded, type ProposeRetry, proposeWithRetries } from '../../src/node/propose-retry.js';
import { systemClock } from '../../src/node/system-clock.js';
import type { NodeId } from '../../src/raft/types.js';

const unavailable = (m = 'no leader') => new HiqliteError('HQL_UNAVAILABLE', m, { retryable: true });
const notLeader = () => new HiqliteError('HQL_NOT_LEADER', 'not the leader', { retryable: true });
const io = () => new HiqliteError('HQL_IO', 'raft group sql stopped: ENOSPC', { retryable: false });

type Step =
  | { here: () => Promise<string> }
  | { leader: null }
  | { forward: () => Promise<Forwarded<string>> };

/** A loop whose attempt n does steps[n] (the last step repeats); counts attempts. */
function loop(steps: Step[], o: { stopping?: () => boolean; clock?: Clock } = {}) {
  let attempt = 0;
  const step = () => steps[Math.min(attempt, steps.length - 1)] as Step;
  const p: ProposeRetry<string> = {
    clock: o.clock ?? systemClock,
    heartbeatIntervalMs: 20,
    isLeader: () => 'here' in step(),
    leaderId: () => {
      const s = step();
      return 'here' in s ? (1 as NodeId) : 'leader' in s ? null : (2 as NodeId satisfies NodeId);
    },
    here: async () => {
      const s = step();
      attempt++;
      assert.ok('here' in s);
      return s.here();
    },
    forward: async () => {
      const s = step();
      attempt++;
      assert.ok('forward' in s);
      return s.forward();
    },
    noLeaderError: () => {
      attempt++;
      return unavailable('no leader: node 1 reaches 1 of 3 voters');
    },
    stopping: o.stopping ?? (() => false),
  };
  return { p, attempts: () => attempt };
}

const code = async (run: Promise<unknown>) =>
  run.then(
    () => 'ok',
    (e: HiqliteError) => e.code,
  );

describe('proposeWithRetries (the node’s write loop)', () => {
  test('proposed here, or forwarded, the answer is returned', async () => {
    assert.equal(await proposeWithRetries(loop([{ here: async () => 'a' }]).p, 1000), 'a');
    const fwd = loop([{ forward: async () => ({ ok: true, value: 'b' }) }]);
    assert.equal(await proposeWithRetries(fwd.p, 1000), 'b');
  });

  test('a refusal that can pass is retried: not the leader, no leader, a connection not opened', async () => {
    const l = loop([
      { forward: async () => ({ ok: false, error: notLeader() }) },
      { leader: null },
      { forward: async () => ({ ok: false, error: unavailable('connect ECONNREFUSED') }) },
      { here: async () => 'done' },
    ]);
    assert.equal(await proposeWithRetries(l.p, 5000), 'done');
    assert.equal(l.attempts(), 4);
  });

  test('a non-retryable refusal before any attempt could be in the log is the refusal itself', async () => {
    const l = loop([
      { forward: async () => ({ ok: false, error: notLeader() }) },
      { here: () => Promise.reject(io()) },
    ]);
    await assert.rejects(proposeWithRetries(l.p, 5000), (e: HiqliteError) => e.code === 'HQL_IO');
  });

  test('the same refusal after an attempt that got no answer is HQL_OUTCOME_UNKNOWN, naming it', async () => {
    const l = loop([
      { forward: () => Promise.reject(new HiqliteError('HQL_TIMEOUT', 'no answer', { retryable: true })) },
      { here: () => Promise.reject(io()) },
    ]);
    await assert.rejects(proposeWithRetries(l.p, 5000), (e: HiqliteError) => {
      assert.equal(e.code, 'HQL_OUTCOME_UNKNOWN');
      assert.match(e.message, /ENOSPC/);
      assert.equal((e.cause as HiqliteError).code, 'HQL_IO');
      return true;
    });
  });

  test('after an unknown outcome the write is sent again under its session, to a final answer', async () => {
    const l = loop([
      { here: () => Promise.reject(outcomeUnknown('leader stepped down')) },
      { forward: () => Promise.reject(new Error('socket closed')) },
    ]);
    // A non-HiqliteError is a bug, not an outcome: it ends the loop as it is.
    await assert.rejects(proposeWithRetries(l.p, 5000), /socket closed/);
    const m = loop([
      { here: () => Promise.reject(outcomeUnknown('leader stepped down')) },
      { forward: async () => ({ ok: true, value: 'original result' }) },
    ]);
    assert.equal(await proposeWithRetries(m.p, 5000), 'original result');
  });

  test('after an attempt that may be in the log, a slow answer does not end the retries before the deadline', async () => {
    // The first forward gets no answer for 300 ms (a leader that stopped, an election): the retry
    // budget of a refused write would end the loop here (600 ms left < 4 x 300 ms), as an unknown
    // outcome that the next attempt answers.
    const l = loop([
      {
        forward: () =>
          new Promise((_, reject) =>
            setTimeout(() => reject(new HiqliteError('HQL_TIMEOUT', 'no answer', { retryable: true })), 300),
          ),
      },
      { forward: async () => ({ ok: true, value: 'original result' }) },
    ]);
    assert.equal(await proposeWithRetries(l.p, 900), 'original result');
    assert.equal(l.attempts(), 2);
  });

  test('retries after an attempt that may be in the log stop short of the deadline, however fine the clock (no spin)', async () => {
    // A clock whose timers keep whole microseconds of a time that runs a little fast (as the
    // simulator's drifting clocks): near the deadline the pause shrinks with the time left, and a
    // pause below a microsecond advances nothing.
    const RATE = 1.0003;
    let nowUs = 0;
    const clock: Clock = {
      monotonicMs: () => (nowUs * RATE) / 1000,
      wallMs: () => (nowUs * RATE) / 1000,
      setTimer: (callback, delayMs) => {
        nowUs += Math.floor((delayMs * 1000) / RATE);
        queueMicrotask(callback);
        return null as unknown as TimerHandle;
      },
      clearTimer: () => {},
    };
    // The first attempt gets no answer (it may be in the log); then no leader is known, an
    // answer that takes no time at all.
    const l = loop(
      [
        {
          forward: async () => {
            nowUs += 333;
            throw new HiqliteError('HQL_TIMEOUT', 'no answer', { retryable: true });
          },
        },
        { leader: null },
      ],
      { clock },
    );
    // Bounded: a loop that spins fails here instead of hanging the test.
    const isLeader = l.p.isLeader;
    let looks = 0;
    l.p.isLeader = () => {
      assert.ok(++looks < 10_000, 'the loop spins at its deadline');
      return isLeader();
    };
    await assert.rejects(proposeWithRetries(l.p, 1000.5), (e: HiqliteError) => {
      assert.equal(e.code, 'HQL_OUTCOME_UNKNOWN', e.message);
      return true;
    });
    assert.ok(clock.monotonicMs() <= 1000.5, 'the deadline is kept');
  });

  test('at the deadline: the last refusal when nothing may be in the log, else HQL_OUTCOME_UNKNOWN', async () => {
    assert.equal(await code(proposeWithRetries(loop([{ leader: null }]).p, 200)), 'HQL_UNAVAILABLE');
    const refused = loop([
      { forward: async () => ({ ok: false, error: unavailable('connect ECONNREFUSED') }) },
    ]);
    assert.equal(await code(proposeWithRetries(refused.p, 200)), 'HQL_UNAVAILABLE');
    const silent = loop([
      {
        forward: () => Promise.reject(new HiqliteError('HQL_TIMEOUT', 'no answer', { retryable: true })),
      },
      { leader: null },
    ]);
    await assert.rejects(proposeWithRetries(silent.p, 200), (e: HiqliteError) => {
      assert.equal(e.code, 'HQL_OUTCOME_UNKNOWN');
      assert.match(e.message, /no final answer within 200 ms \(last: no leader/);
      return true;
    });
  });

  test('a closing node ends the loop at the first refusal', async () => {
    const m = loop([{ forward: async () => ({ ok: false, error: notLeader() }) }], { stopping: () => true });
    assert.equal(await code(proposeWithRetries(m.p, 5000)), 'HQL_NOT_LEADER');
    assert.equal(m.attempts(), 1);
  });
});
