/**
 * whenAborted (src/lib/abort.ts): a listener for an abort that may already have happened. A
 * listener added to an aborted signal never fires; code that subscribes after an `await` must
 * see an abort that came meanwhile (a lock wait did not, and waited on).
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, test } from 'node:test';
import { whenAborted } from '../../src/lib/abort.js';

describe('whenAborted', () => {
  test('a signal that already aborted calls at once', () => {
    const ac = new AbortController();
    ac.abort();
    let calls = 0;
    whenAborted(ac.signal, () => calls++);
    assert.equal(calls, 1);
  });

  test('a signal that aborts later calls then, once', () => {
    const ac = new AbortController();
    let calls = 0;
    whenAborted(ac.signal, () => calls++);
    assert.equal(calls, 0);
    ac.abort();
    ac.abort();
    assert.equal(calls, 1);
  });

  test('after the removal nothing is called; without a signal nothing ever is', () => {
    const ac = new AbortController();
    let calls = 0;
    const stop = whenAborted(ac.signal, () => calls++);
    stop();
    ac.abort();
    whenAborted(undefined, () => calls++)();
    assert.equal(calls, 0);
  });

  test('fifty waits on one signal hold one listener of it (no MaxListenersExceededWarning); each is called once, removed ones not', () => {
    const ac = new AbortController();
    const calls: number[] = [];
    const stops = Array.from({ length: 50 }, (_, i) => whenAborted(ac.signal, () => calls.push(i)));
    assert.equal(getEventListeners(ac.signal, 'abort').length, 1);
    for (const stop of stops.slice(0, 10)) stop();
    ac.abort();
    assert.deepEqual(
      calls,
      Array.from({ length: 40 }, (_, i) => i + 10),
    );
    // A wait that an earlier one's call removes is not called.
    const racing = new AbortController();
    const order: string[] = [];
    let stopSecond = () => {};
    whenAborted(racing.signal, () => {
      order.push('first');
      stopSecond();
    });
    stopSecond = whenAborted(racing.signal, () => order.push('second'));
    racing.abort();
    assert.deepEqual(order, ['first']);
    // The same function twice is two waits.
    const again = new AbortController();
    let n = 0;
    const f = () => n++;
    whenAborted(again.signal, f);
    const stop = whenAborted(again.signal, f);
    stop();
    again.abort();
    assert.equal(n, 1);
  });
});
