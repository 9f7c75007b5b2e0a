/** inTime (src/lib/in-time.ts): a wait with a deadline on a promise that cannot be cancelled. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inTime } from '../../src/lib/in-time.js';

const after = <T>(ms: number, v: T) => new Promise<T>((r) => setTimeout(r, ms, v));

test('the value when the promise settles in time, the stand-in when it does not', async () => {
  assert.equal(await inTime(after(5, 'done'), 1_000, 'late'), 'done');
  assert.equal(await inTime(after(1_000, 'done'), 20, 'late'), 'late');
});

test('a rejection in time is the rejection; one after the deadline goes unobserved', async () => {
  await assert.rejects(inTime(Promise.reject(new Error('refused')), 1_000, null), /refused/);
  let unhandled = 0;
  const count = () => unhandled++;
  process.on('unhandledRejection', count);
  try {
    const slow = new Promise((_, reject) => setTimeout(reject, 30, new Error('too late')));
    assert.equal(await inTime(slow, 5, 'late'), 'late');
    await after(60, null);
    assert.equal(unhandled, 0);
  } finally {
    process.off('unhandledRejection', count);
  }
});
