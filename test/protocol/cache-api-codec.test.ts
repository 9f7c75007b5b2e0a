/**
 * The cache ops of the API protocol and the frames a node pushes (and its goaway): what encodes decodes to the
 * same request, and anything out of shape is a ProtocolError (never another exception).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import {
  API_EVENT_CACHE_REFOUNDED,
  API_EVENT_CACHE_TOKEN_FLOOR,
  type ApiRequest,
  decodeApiRequest,
  decodeApiServerMessage,
  encodeApiMessage,
  GOAWAY_PENDING_MAX,
} from '../../src/protocol/api-codec.js';
import { ProtocolError } from '../../src/protocol/protocol-error.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

describe('cache ops of the API protocol', () => {
  test('every cache op round-trips', () => {
    const requests: ApiRequest[] = [
      { id: 1, op: 'cacheRead', read: { type: 'get', cache: 'c', key: 'k' }, consistency: 'local' },
      {
        id: 2,
        op: 'cacheRead',
        read: { type: 'entries', cache: 'c' },
        consistency: 'linearizable',
        timeoutMs: 5,
      },
      { id: 3, op: 'cacheRead', read: { type: 'counterGet', counter: 'n', key: 'k' }, consistency: 'local' },
      { id: 4, op: 'cacheLock', key: 'job', holderId: 'h', leaseMs: 10_000 },
      { id: 5, op: 'cacheLock', key: 'job', holderId: 'h', leaseMs: 1, waitMs: 0, timeoutMs: 100 },
      { id: 6, op: 'listen', channel: null },
      { id: 7, op: 'listen', channel: 'orders', afterSeq: 42 },
      { id: 8, op: 'unlisten', sub: 7 },
      { id: 9, op: 'cancel', target: 5 },
    ];
    for (const r of requests) assert.deepEqual(decodeApiRequest(encodeApiMessage(r)), r);
  });

  test('out-of-shape cache ops are ProtocolErrors', () => {
    const bad = [
      { id: 1, op: 'cacheRead', read: { type: 'scan', cache: 'c' } },
      { id: 1, op: 'cacheRead', read: { type: 'get', cache: 1, key: 'k' } },
      { id: 1, op: 'cacheRead', read: null },
      { id: 1, op: 'cacheRead', read: { type: 'get', cache: 'c', key: 'k' }, consistency: 'eventual' },
      { id: 1, op: 'cacheLock', key: 'k', holderId: '', leaseMs: 1 },
      { id: 1, op: 'cacheLock', key: 'k', holderId: 'h', leaseMs: 0 },
      { id: 1, op: 'cacheLock', key: 'k', holderId: 'h', leaseMs: 1, waitMs: -1 },
      { id: 1, op: 'cacheLock', key: 'k', holderId: 'h', leaseMs: 1.5 },
      { id: 1, op: 'cacheLock', key: 'k'.repeat((1 << 18) + 1), holderId: 'h', leaseMs: 1 },
      { id: 1, op: 'listen', channel: 5 },
      { id: 1, op: 'listen', channel: null, afterSeq: -1 },
      { id: 1, op: 'unlisten' },
      { id: 1, op: 'cancel', target: 'x' },
    ];
    for (const b of bad)
      assert.throws(() => decodeApiRequest(packr.pack(b)), ProtocolError, JSON.stringify(b).slice(0, 80));
  });

  test('pushes decode with plain Uint8Array payloads; malformed pushes are ProtocolErrors', () => {
    const items = [{ channel: 'c', payload: new Uint8Array([1, 2]), index: 3, time: 4, seq: 5 }];
    const p = decodeApiServerMessage(encodeApiMessage({ push: 7, items }));
    assert.deepEqual(p, { push: 7, items });
    assert.equal(
      Object.getPrototypeOf((p as { items: Array<{ payload: Uint8Array }> }).items[0]?.payload),
      Uint8Array.prototype,
    );
    assert.deepEqual(decodeApiServerMessage(encodeApiMessage({ push: 7, lagged: 12 })), {
      push: 7,
      lagged: 12,
    });
    const end = { code: 'HQL_CLOSED' as const, message: 'bye', retryable: true };
    assert.deepEqual(decodeApiServerMessage(encodeApiMessage({ push: 7, end })), { push: 7, end });
    for (const b of [
      { push: 7 },
      { push: -1, lagged: 1 },
      { push: 7, items: [{ channel: 'c', payload: 'not bytes', index: 1, time: 1, seq: 1 }] },
      { push: 7, items: [{ channel: 'c', payload: new Uint8Array(), index: 0, time: 1, seq: 1 }] },
      { push: 7, end: { code: 'NOPE', message: 'x' } },
    ])
      assert.throws(() => decodeApiServerMessage(packr.pack(b)), ProtocolError);
  });

  test('a goaway round-trips; a malformed one is a ProtocolError', () => {
    assert.deepEqual(decodeApiServerMessage(encodeApiMessage({ goaway: true, pending: [3, 9] })), {
      goaway: true,
      pending: [3, 9],
    });
    assert.deepEqual(decodeApiServerMessage(encodeApiMessage({ goaway: true, pending: [] })), {
      goaway: true,
      pending: [],
    });
    for (const b of [
      { goaway: 1, pending: [] },
      { goaway: true },
      { goaway: true, pending: [-1] },
      { goaway: true, pending: ['1'] },
      { goaway: true, pending: [1.5] },
      { goaway: true, pending: { length: 1 } },
      { goaway: true, pending: new Array(GOAWAY_PENDING_MAX + 1).fill(1) },
    ])
      assert.throws(() => decodeApiServerMessage(packr.pack(b)), ProtocolError);
  });

  test("a node's event round-trips, an unknown name included (a client ignores it); a malformed one is a ProtocolError", () => {
    assert.deepEqual(decodeApiServerMessage(encodeApiMessage({ event: API_EVENT_CACHE_REFOUNDED })), {
      event: 'cacheRefounded',
    });
    assert.deepEqual(decodeApiServerMessage(encodeApiMessage({ event: 'somethingLater' })), {
      event: 'somethingLater',
    });
    // A token floor of today's log time in µs (past 2^32: msgpack's 64-bit numbers).
    const floor = 1_796_650_653_375_000;
    assert.deepEqual(
      decodeApiServerMessage(encodeApiMessage({ event: API_EVENT_CACHE_TOKEN_FLOOR, floor })),
      { event: 'cacheTokenFloor', floor },
    );
    for (const b of [
      { event: 'cacheTokenFloor', floor: -1 },
      { event: 'cacheTokenFloor', floor: 1.5 },
      { event: 'cacheTokenFloor', floor: '5' },
      { event: 'cacheTokenFloor', floor: 2 ** 60 },
      { event: 1 },
      { event: '' },
      { event: 'x'.repeat(65) },
      { event: null },
      { event: ['a'] },
    ])
      assert.throws(() => decodeApiServerMessage(packr.pack(b)), ProtocolError);
  });

  test('random maps with a cache op never throw anything but a ProtocolError', () => {
    const op = fc.constantFrom('cacheRead', 'cacheLock', 'listen', 'unlisten', 'cancel');
    fc.assert(
      fc.property(
        op,
        fc.dictionary(fc.string({ maxLength: 12 }), fc.anything({ maxDepth: 2 })),
        (o, extra) => {
          try {
            decodeApiRequest(packr.pack({ ...extra, id: 1, op: o }));
          } catch (e) {
            if (!(e instanceof ProtocolError)) throw e;
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
