/**
 * A request's deadline travels with it (`timeoutMs`): a proxy on the way answers by the client's
 * deadline, so every op that may wait long must keep it through the codec.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Packr } from 'msgpackr';
import { type ApiRequest, decodeApiRequest, encodeApiMessage } from '../../src/protocol/api-codec.js';
import { ProtocolError } from '../../src/protocol/protocol-error.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

describe("the API codec keeps a request's deadline", () => {
  test('propose, query and backup round-trip with and without timeoutMs', () => {
    const requests: ApiRequest[] = [
      { id: 1, op: 'propose', group: 'sql', data: new Uint8Array([1, 2]), timeoutMs: 2500 },
      { id: 2, op: 'query', sql: 'SELECT 1', params: [], consistency: 'local', minIndex: 0, timeoutMs: 9 },
      { id: 3, op: 'backup', timeoutMs: 3_600_000 },
      { id: 4, op: 'backup' },
    ];
    for (const r of requests) {
      const back = decodeApiRequest(encodeApiMessage(r)) as ApiRequest & { timeoutMs?: number };
      assert.equal(back.op, r.op);
      assert.equal(back.timeoutMs, (r as { timeoutMs?: number }).timeoutMs, r.op);
    }
  });

  test('a deadline that is not a whole number of milliseconds >= 1 is a ProtocolError', () => {
    for (const timeoutMs of [0, -1, 1.5, '10', null, Number.MAX_VALUE]) {
      assert.throws(
        () => decodeApiRequest(packr.pack({ id: 1, op: 'backup', timeoutMs })),
        (e: unknown) => e instanceof ProtocolError,
        String(timeoutMs),
      );
    }
  });
});
