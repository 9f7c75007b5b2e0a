/**
 * A `join` says the joining node's `sqlite` setting, so that a leader of the other setting can
 * refuse it; absent means true (nodes of earlier versions always ran SQLite).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Packr } from 'msgpackr';
import { type ApiRequest, decodeApiRequest, encodeApiMessage } from '../../src/protocol/api-codec.js';
import { ProtocolError } from '../../src/protocol/protocol-error.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

describe('the API codec: join', () => {
  test('round-trips with and without group and sqlite', () => {
    const requests: ApiRequest[] = [
      { id: 1, op: 'join', nodeId: 2, nonce: 'n1' },
      { id: 2, op: 'join', nodeId: 2, nonce: 'n1', group: 'cache' },
      { id: 3, op: 'join', nodeId: 3, nonce: 'n2', group: 'cache', sqlite: false },
      { id: 4, op: 'join', nodeId: 3, nonce: 'n2', sqlite: true },
    ];
    for (const r of requests) assert.deepEqual(decodeApiRequest(encodeApiMessage(r)), r);
  });

  test('a sqlite that is not a boolean is a ProtocolError', () => {
    for (const sqlite of [0, 1, 'false', null, {}]) {
      assert.throws(
        () => decodeApiRequest(packr.pack({ id: 1, op: 'join', nodeId: 2, nonce: 'n', sqlite })),
        (e: unknown) => e instanceof ProtocolError,
        String(sqlite),
      );
    }
  });
});
