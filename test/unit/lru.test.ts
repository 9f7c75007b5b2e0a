import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Lru } from '../../src/sm/sql/lru.js';

describe('Lru', () => {
  test('evicts the least recently used entry; a get counts as a use', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    assert.equal(lru.get('a'), 1);
    lru.set('c', 3);
    assert.equal(lru.get('b'), undefined);
    assert.equal(lru.get('a'), 1);
    assert.equal(lru.get('c'), 3);
    assert.equal(lru.size, 2);
  });

  test('set of a present key replaces the value and does not evict', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    lru.set('a', 10);
    assert.equal(lru.size, 2);
    assert.equal(lru.get('a'), 10);
    assert.equal(lru.get('b'), 2);
  });

  test('behaves like a reference LRU for any sequence of operations', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('get' as const), key: fc.integer({ min: 0, max: 9 }) }),
      fc.record({
        kind: fc.constant('set' as const),
        key: fc.integer({ min: 0, max: 9 }),
        value: fc.integer(),
      }),
      fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 9 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(op, { maxLength: 200 }), (max, ops) => {
        const lru = new Lru<number, number>(max);
        const model: [number, number][] = []; // most recent last
        for (const o of ops) {
          const at = model.findIndex(([k]) => k === o.key);
          if (o.kind === 'get') {
            const expected = at === -1 ? undefined : model[at]![1];
            if (at !== -1) model.push(model.splice(at, 1)[0]!);
            assert.equal(lru.get(o.key), expected);
          } else if (o.kind === 'set') {
            if (at !== -1) model.splice(at, 1);
            else if (model.length >= max) model.shift();
            model.push([o.key, o.value]);
            lru.set(o.key, o.value);
          } else {
            if (at !== -1) model.splice(at, 1);
            lru.delete(o.key);
          }
          assert.equal(lru.size, model.length);
          assert.ok(lru.size <= max);
        }
      }),
      { numRuns: 300 },
    );
  });

  test('rejects a bound below 1', () => {
    assert.throws(() => new Lru(0), RangeError);
  });
});
