/**
 * A read's minIndex (read-your-writes.ts): the wait asks the leader how far the cluster has
 * committed only once it has lasted a heartbeat, so the common read that waits a moment for its
 * own write costs no ReadIndex round; an index beyond the log is refused at once after that.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HiqliteError } from '../../src/lib/errors.js';
import { untilAppliedIndex } from '../../src/sm/sql/read-your-writes.js';
import { ManualClock } from '../support/manual-clock.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((r) => setImmediate(r));

function setup() {
  const clock = new ManualClock();
  const applied = deferred<void>();
  const rounds: ReturnType<typeof deferred<number>>[] = [];
  const wait = untilAppliedIndex(100, {
    applied: applied.promise,
    readIndex: () => {
      const round = deferred<number>();
      rounds.push(round);
      return round.promise;
    },
    probeAfterMs: 500,
    clock,
  });
  return { clock, applied, rounds, wait };
}

test('a wait that ends within the probe delay asks no ReadIndex round and leaves no timer', async () => {
  const s = setup();
  s.clock.advance(499);
  await tick();
  s.applied.resolve();
  await s.wait;
  assert.equal(s.rounds.length, 0);
  assert.equal(s.clock.pendingTimers, 0);
});

test('after the delay one round is asked; a commit index below minIndex refuses the read at once', async () => {
  const s = setup();
  s.clock.advance(500);
  await tick();
  assert.equal(s.rounds.length, 1);
  s.rounds[0]!.resolve(42);
  await assert.rejects(s.wait, (e: unknown) => {
    assert.ok(e instanceof HiqliteError && e.code === 'HQL_INVALID_PARAMS', String(e));
    assert.match(e.message, /minIndex 100 is beyond the cluster's log \(committed: 42\)/);
    return true;
  });
});

test('a round that says the index is committed, or gets no answer, leaves the wait to the applied index', async () => {
  for (const answer of ['committed', 'no leader'] as const) {
    const s = setup();
    s.clock.advance(500);
    await tick();
    if (answer === 'committed') s.rounds[0]!.resolve(150);
    else s.rounds[0]!.reject(new HiqliteError('HQL_UNAVAILABLE', 'no leader', { retryable: true }));
    await tick();
    let settled = false;
    void s.wait.then(() => {
      settled = true;
    });
    await tick();
    assert.equal(settled, false, `${answer}: still waiting for the index to be applied`);
    s.applied.resolve();
    await s.wait;
    assert.equal(s.rounds.length, 1, answer);
  }
});

test('the wait’s own failure (its deadline) is the read’s error', async () => {
  const s = setup();
  s.applied.reject(new HiqliteError('HQL_TIMEOUT', 'index 100 not applied', { retryable: true }));
  await assert.rejects(s.wait, (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_TIMEOUT');
  assert.equal(s.rounds.length, 0);
});
