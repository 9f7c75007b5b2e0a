import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { AssertionError } from '../../src/lib/assert.js';
import { Inflights } from '../../src/raft/inflights.js';
import type { LogIndex } from '../../src/raft/types.js';

const ix = (n: number) => n as LogIndex;

describe('Inflights', () => {
  test('limits must be at least one', () => {
    assert.throws(() => new Inflights(0, 100), AssertionError);
    assert.throws(() => new Inflights(4, 0), AssertionError);
  });

  test('an empty window is not full and holds nothing', () => {
    const w = new Inflights(2, 100);
    assert.equal(w.full(), false);
    assert.equal(w.count, 0);
    assert.equal(w.bytes, 0);
  });

  test('the window is full once it holds countMax messages', () => {
    const w = new Inflights(3, 1 << 20);
    w.add(ix(1), 1);
    w.add(ix(2), 1);
    assert.equal(w.full(), false);
    w.add(ix(3), 1);
    assert.equal(w.full(), true);
    assert.equal(w.count, 3);
  });

  test('adding to a full window is an assertion error and changes nothing', () => {
    const w = new Inflights(1, 1 << 20);
    w.add(ix(5), 10);
    assert.throws(() => w.add(ix(6), 10), AssertionError);
    assert.equal(w.count, 1);
    assert.equal(w.bytes, 10);
  });

  test('the window is full once the in-flight bytes reach bytesMax', () => {
    const w = new Inflights(10, 100);
    w.add(ix(1), 60);
    assert.equal(w.full(), false);
    w.add(ix(2), 40);
    assert.equal(w.bytes, 100);
    assert.equal(w.full(), true);
    assert.throws(() => w.add(ix(3), 1), AssertionError);
  });

  test('below the byte budget one more message is admitted even if it overshoots', () => {
    const w = new Inflights(10, 100);
    w.add(ix(1), 90);
    assert.equal(w.full(), false);
    w.add(ix(2), 50);
    assert.equal(w.bytes, 140);
    assert.equal(w.full(), true);
  });

  test('an empty window always admits one message, even one larger than the byte budget', () => {
    const w = new Inflights(10, 100);
    w.add(ix(1), 1000);
    assert.equal(w.count, 1);
    assert.equal(w.full(), true);
    w.freeLE(ix(1));
    assert.equal(w.full(), false);
    w.add(ix(2), 5000);
    assert.equal(w.count, 1);
  });

  test('messages must be added in increasing last-index order', () => {
    const w = new Inflights(10, 1000);
    w.add(ix(5), 1);
    assert.throws(() => w.add(ix(5), 1), AssertionError);
    assert.throws(() => w.add(ix(4), 1), AssertionError);
  });

  test('freeLE frees exactly the messages whose last index is <= i', () => {
    const w = new Inflights(10, 1000);
    w.add(ix(2), 10);
    w.add(ix(4), 20);
    w.add(ix(6), 30);
    w.add(ix(8), 40);
    w.freeLE(ix(5));
    assert.equal(w.count, 2);
    assert.equal(w.bytes, 70);
    w.freeLE(ix(6));
    assert.equal(w.count, 1);
    assert.equal(w.bytes, 40);
  });

  test('a stale freeLE below every in-flight message frees nothing', () => {
    const w = new Inflights(10, 1000);
    w.add(ix(10), 10);
    w.add(ix(12), 10);
    w.freeLE(ix(9));
    assert.equal(w.count, 2);
    assert.equal(w.bytes, 20);
  });

  test('freeLE beyond the last message empties the window and unblocks it', () => {
    const w = new Inflights(2, 1000);
    w.add(ix(3), 10);
    w.add(ix(7), 10);
    assert.equal(w.full(), true);
    w.freeLE(ix(100));
    assert.equal(w.count, 0);
    assert.equal(w.bytes, 0);
    assert.equal(w.full(), false);
  });

  test('reset empties the window', () => {
    const w = new Inflights(2, 1000);
    w.add(ix(3), 10);
    w.add(ix(7), 10);
    w.reset();
    assert.equal(w.count, 0);
    assert.equal(w.bytes, 0);
    w.add(ix(1), 10); // order restarts after a reset
    assert.equal(w.count, 1);
  });

  test('a long sliding window keeps exact counts across many frees', () => {
    const w = new Inflights(100, 1 << 20);
    let freed = 0;
    for (let i = 1; i <= 5000; i++) {
      if (w.full()) {
        freed += 37;
        w.freeLE(ix(freed));
      }
      w.add(ix(i), i % 7);
      let bytes = 0;
      for (let j = freed + 1; j <= i; j++) bytes += j % 7;
      assert.equal(w.count, i - freed);
      assert.equal(w.bytes, bytes);
    }
  });

  type Op = { type: 'add'; gap: number; bytes: number } | { type: 'free'; at: number } | { type: 'reset' };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        type: fc.constant('add'),
        gap: fc.integer({ min: 1, max: 4 }),
        bytes: fc.nat(300),
      }),
    },
    { weight: 3, arbitrary: fc.record({ type: fc.constant('free'), at: fc.integer({ min: -3, max: 60 }) }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('reset') }) },
  );

  test('matches an array model over random add / freeLE / reset sequences', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 2000 }),
        fc.array(opArb, { maxLength: 400 }),
        (countMax, bytesMax, ops) => {
          const w = new Inflights(countMax, bytesMax);
          let model: Array<{ last: number; bytes: number }> = [];
          let lastAdded = 0;
          const modelFull = () =>
            model.length >= countMax ||
            (model.length > 0 && model.reduce((s, m) => s + m.bytes, 0) >= bytesMax);
          for (const op of ops) {
            switch (op.type) {
              case 'add': {
                const last = lastAdded + op.gap;
                if (modelFull()) {
                  assert.throws(() => w.add(ix(last), op.bytes), AssertionError);
                } else {
                  w.add(ix(last), op.bytes);
                  model.push({ last, bytes: op.bytes });
                  lastAdded = last;
                }
                break;
              }
              case 'free': {
                // Free relative to the oldest in-flight message so that frees hit the window.
                const i = (model[0]?.last ?? lastAdded) + op.at;
                w.freeLE(ix(i));
                model = model.filter((m) => m.last > i);
                break;
              }
              case 'reset':
                w.reset();
                model = [];
                break;
            }
            assert.equal(w.count, model.length);
            assert.equal(
              w.bytes,
              model.reduce((s, m) => s + m.bytes, 0),
            );
            assert.equal(w.full(), modelFull());
          }
        },
      ),
      { numRuns: 200, seed: 11 },
    );
  });
});
