import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Prng } from '../../src/lib/prng.js';
import { reconnectDelayMs } from '../../src/transport/backoff.js';
import { ChunkChannel } from '../../src/transport/chunk-channel.js';
import { FrameQueue } from '../../src/transport/frame-queue.js';

describe('reconnect backoff', () => {
  test('grows exponentially, stays within [half, full] of the capped delay', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 100 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer(),
        (failures, minMs, extra, seed) => {
          const maxMs = minMs + extra;
          const capped = Math.min(maxMs, minMs * 2 ** Math.min(failures, 30));
          const d = reconnectDelayMs(failures, minMs, maxMs, new Prng(seed));
          assert.ok(
            d >= Math.max(1, Math.floor(capped / 2)) && d <= capped,
            `${d} outside [${capped / 2}, ${capped}]`,
          );
        },
      ),
    );
  });

  test('jitter spreads nodes that failed together', () => {
    const random = new Prng(7);
    const delays = new Set(Array.from({ length: 20 }, () => reconnectDelayMs(5, 50, 5000, random)));
    assert.ok(delays.size > 10);
  });
});

describe('frame queue', () => {
  test('refuses beyond its frame count and its byte bound', () => {
    const q = new FrameQueue(3, 100);
    assert.ok(q.push(new Uint8Array(40)));
    assert.ok(q.push(new Uint8Array(40)));
    assert.ok(!q.push(new Uint8Array(40)), 'bytes bound');
    assert.ok(q.push(new Uint8Array(10)));
    assert.ok(!q.push(new Uint8Array(1)), 'count bound');
    assert.equal(q.length, 3);
    assert.equal(q.bytes, 90);
  });

  test('batches at least one frame and otherwise stay within the batch size', () => {
    const q = new FrameQueue(100, 10_000);
    for (const n of [500, 300, 300, 2000, 10]) q.push(new Uint8Array(n));
    assert.deepEqual(
      q.takeBatch(1000).map((f) => f.byteLength),
      [500, 300],
    );
    assert.deepEqual(
      q.takeBatch(1000).map((f) => f.byteLength),
      [300],
    );
    assert.deepEqual(
      q.takeBatch(1000).map((f) => f.byteLength),
      [2000],
    );
    assert.equal(q.bytes, 10);
    assert.equal(q.clear(), 1);
    assert.equal(q.length, 0);
  });
});

describe('chunk channel', () => {
  test('hands out chunks in order, then ends; reports consumption', async () => {
    let consumed = 0;
    const ch = new ChunkChannel((n) => {
      consumed += n;
    });
    ch.push(new Uint8Array(3));
    ch.push(new Uint8Array(4));
    setImmediate(() => {
      ch.push(new Uint8Array(5));
      ch.end();
    });
    const sizes: number[] = [];
    for await (const c of ch) sizes.push(c.byteLength);
    assert.deepEqual(sizes, [3, 4, 5]);
    assert.equal(consumed, 12);
  });

  test('a failure reaches the consumer and releases what was buffered', async () => {
    let consumed = 0;
    const ch = new ChunkChannel((n) => {
      consumed += n;
    });
    ch.push(new Uint8Array(10));
    ch.fail(new Error('broken'));
    await assert.rejects(
      (async () => {
        for await (const _ of ch) {
          // nothing
        }
      })(),
      /broken/,
    );
    assert.equal(consumed, 10);
  });

  test('a consumer that stops early discards the rest', async () => {
    let consumed = 0;
    const ch = new ChunkChannel((n) => {
      consumed += n;
    });
    ch.push(new Uint8Array(1));
    ch.push(new Uint8Array(2));
    for await (const _ of ch) break;
    ch.push(new Uint8Array(100));
    assert.equal(consumed, 3);
  });
});
