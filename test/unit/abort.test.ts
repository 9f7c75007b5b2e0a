/**
 * whenAborted (src/lib/abort.ts): a listener for an abort that may already have happened. A
 * listener added to an aborted signal never fires; code that subscribes after an `await` must
 * see an abort that came meanwhile (a lock wait did not, and waited on).
 */
import assert from 'node:assert/strict';
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
});
