/**
 * The bounded listener queue with lag counting (src/node/listen-queue.ts) that the node's
 * subscriptions, a remote client's listener and a proxy's relay share: a reader either takes
 * every notification in order, or ends with one `lagged` item counting what it did not get; the
 * queue never holds more than its bound.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HiqliteError } from '../../src/lib/errors.js';
import { type ListenItem, ListenQueue } from '../../src/node/listen-queue.js';
import type { Notification } from '../../src/sm/cache/notifications.js';

function note(seq: number): Notification {
  return { seq, index: seq, channel: 'c', payload: new Uint8Array([seq & 0xff]), time: 0 };
}

const seqOf = (i: ListenItem) => (i.kind === 'notification' ? i.notification.seq : -i.missed);

describe('ListenQueue', () => {
  test('delivers in order, to a waiting reader and from the queue', async () => {
    const q = new ListenQueue(10);
    const waiting = q.next();
    assert.equal(q.offer(note(1)), true);
    assert.equal(seqOf(await waiting), 1);
    for (const s of [2, 3, 4]) q.offer(note(s));
    assert.equal(q.buffered, 3);
    assert.deepEqual(q.drain(2).map(seqOf), [2, 3]);
    assert.deepEqual(q.drain(0), [], 'drain(0) takes nothing');
    assert.equal(seqOf(await q.next()), 4);
  });

  test('one past the bound drops the queue and ends with lagged counting every dropped one', async () => {
    let ended = 0;
    const q = new ListenQueue(3, () => ended++);
    for (const s of [1, 2, 3]) assert.equal(q.offer(note(s)), true);
    assert.equal(q.offer(note(4)), false, 'the one that did not fit');
    assert.equal(q.ended, true);
    assert.equal(ended, 1);
    assert.equal(q.buffered, 1, 'only the lagged item is held');
    assert.deepEqual(await q.next(), { kind: 'lagged', missed: 4, unreadDropped: true });
    // Ended: nothing more is taken, and the reader is told.
    assert.equal(q.offer(note(5)), false);
    await assert.rejects(q.next(), (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_CLOSED');
    q.lagged(7);
    q.close();
    assert.equal(ended, 1, 'onEnd runs once');
  });

  test('bytes are bounded too: large payloads lag long before the count, one is always taken', async () => {
    const big = (seq: number, bytes: number): Notification => ({
      seq,
      index: seq,
      channel: 'c',
      payload: new Uint8Array(bytes),
      time: 0,
    });
    // 64 bytes of overhead and 2 per channel unit: each of these counts 1,000 + 66 bytes.
    const q = new ListenQueue(10_000, () => {}, 3_500);
    for (const s of [1, 2, 3]) assert.equal(q.offer(big(s, 1000)), true);
    assert.equal(q.bufferedBytes, 3 * 1066);
    assert.equal(q.offer(big(4, 1000)), false, 'the fourth passes 3,500 bytes');
    assert.deepEqual(await q.next(), { kind: 'lagged', missed: 4, unreadDropped: true });
    // Taking returns the bytes; a notification larger than the bound is taken when none waits.
    const r = new ListenQueue(10_000, () => {}, 3_500);
    assert.equal(r.offer(big(1, 10_000)), true, 'alone, however large');
    assert.equal(r.offer(big(2, 10)), false, 'nothing beside it');
    const s = new ListenQueue(10_000, () => {}, 3_500);
    for (let i = 1; i <= 1000; i++) {
      assert.equal(s.offer(big(i, 1000)), true, `a reader that keeps up never lags (${i})`);
      assert.equal(seqOf(await s.next()), i);
      assert.equal(s.bufferedBytes, 0);
    }
  });

  test('memory stays bounded whatever a sender pushes to a reader that never reads', () => {
    const q = new ListenQueue(100);
    let accepted = 0;
    for (let s = 1; s <= 10_000; s++) if (q.offer(note(s))) accepted++;
    assert.equal(accepted, 100);
    assert.ok(q.buffered <= 100);
    assert.deepEqual(q.drain(1000), [{ kind: 'lagged', missed: 101, unreadDropped: true }]);
  });

  // A listener of the application's thread holds some downstream (client/node-worker.ts): they
  // count against the bounds, so the listener as a whole holds at most bufferMax.
  test('items held downstream count against the bounds, in number and in bytes', async () => {
    const q = new ListenQueue(5, () => {}, 10_000);
    q.holdDownstream(3, 500);
    assert.equal(q.offer(note(1)), true);
    assert.equal(q.offer(note(2)), true);
    assert.equal(q.offer(note(3)), false, 'three downstream and two here: the sixth unread lags');
    assert.deepEqual(q.drain(10).at(-1), { kind: 'lagged', missed: 3, unreadDropped: true });
    // Acknowledged downstream: room again.
    const r = new ListenQueue(5, () => {}, 10_000);
    r.holdDownstream(4, 500);
    r.holdDownstream(0, 0);
    for (let i = 1; i <= 5; i++) assert.equal(r.offer(note(i)), true, `${i}`);
    // Bytes: what is held downstream counts too.
    const b = new ListenQueue(100, () => {}, 1_000);
    b.holdDownstream(1, 950);
    assert.equal(b.offer(note(1)), false, 'over the byte bound with what is downstream');
  });

  test('lagged keepQueued delivers what was queued first, then the lag', async () => {
    const q = new ListenQueue(10);
    q.offer(note(1));
    q.offer(note(2));
    q.lagged(5, { keepQueued: true });
    assert.deepEqual(q.drain(10).map(seqOf), [1, 2, -5]);
    // A sender's lag (default) drops what was queued.
    const r = new ListenQueue(10);
    r.offer(note(1));
    r.lagged(3);
    assert.deepEqual(r.drain(10).map(seqOf), [-3]);
  });

  test('fail: queued items are still taken, then next() rejects with the error; a waiting reader rejects at once', async () => {
    const q = new ListenQueue(10);
    q.offer(note(1));
    const boom = new HiqliteError('HQL_UNAVAILABLE', 'node shutting down', { retryable: true });
    q.fail(boom);
    assert.equal(seqOf(await q.next()), 1);
    await assert.rejects(q.next(), (e: unknown) => e === boom);
    const w = new ListenQueue(10);
    const pending = w.next();
    w.close();
    await assert.rejects(pending, (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_CLOSED');
  });

  test('a long-lived queue compacts what was taken (memory follows what is held, not what passed)', () => {
    const q = new ListenQueue(5000);
    for (let s = 1; s <= 200_000; s++) {
      q.offer(note(s));
      if (s % 2000 === 0) assert.equal(q.drain(5000).length, 2000);
    }
    assert.equal(q.buffered, 0);
    assert.equal((q as unknown as { queue: unknown[] }).queue.length <= 4096, true);
  });
});
