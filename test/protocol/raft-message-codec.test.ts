import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { encodeEntry } from '../../src/protocol/entry-codec.js';
import { ProtocolError } from '../../src/protocol/protocol-error.js';
import {
  decodeRaftMessage,
  encodedRaftMessageBytes,
  encodeRaftMessage,
  type GroupMessage,
} from '../../src/protocol/raft-message-codec.js';
import type { LogIndex, Message, NodeId, Term } from '../../src/raft/types.js';
import { groupIdArb, messageArb, oneOfEachType } from './arbitraries.js';

function decodeOrTypedError(bytes: Uint8Array): GroupMessage | ProtocolError {
  try {
    return decodeRaftMessage(bytes);
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.code, 'HQL_PROTOCOL');
    return err;
  }
}

const header = (type: number, bodyBytes: number): { bytes: Uint8Array; view: DataView } => {
  const bytes = new Uint8Array(18 + bodyBytes);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, 1); // sql
  view.setUint8(1, type);
  view.setUint32(2, 1, true);
  view.setUint32(6, 2, true);
  view.setUint32(10, 5, true); // term 5
  return { bytes, view };
};

describe('raft message codec', () => {
  test('every message round-trips with its group, and its size is known before encoding', () => {
    fc.assert(
      fc.property(groupIdArb, messageArb, (groupId, message) => {
        const bytes = encodeRaftMessage(groupId, message);
        assert.equal(bytes.byteLength, encodedRaftMessageBytes(message));
        assert.deepEqual(decodeRaftMessage(bytes), { groupId, message });
      }),
      { numRuns: 1000 },
    );
  });

  test('each message type round-trips (one example of each)', () => {
    const all = oneOfEachType(1 as NodeId, 2 as NodeId);
    assert.equal(new Set(all.map((m) => m.type)).size, 12);
    for (const m of all) assert.deepEqual(decodeRaftMessage(encodeRaftMessage('cache', m)).message, m);
  });

  test('random bytes decode to a message or a ProtocolError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        decodeOrTypedError(bytes);
      }),
      { numRuns: 3000 },
    );
  });

  test('corrupted or truncated encodings never throw anything but a ProtocolError; what decodes re-encodes identically', () => {
    fc.assert(
      fc.property(
        groupIdArb,
        messageArb,
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 4 }),
        fc.nat(),
        (groupId, message, flips, cut) => {
          const bytes = encodeRaftMessage(groupId, message);
          for (const [at, value] of flips) bytes[at % bytes.byteLength] = value;
          const damaged = bytes.subarray(0, bytes.byteLength - (cut % 3 === 0 ? cut % bytes.byteLength : 0));
          const decoded = decodeOrTypedError(damaged);
          // The encoding is canonical: whatever is accepted has exactly these bytes.
          if (!(decoded instanceof ProtocolError)) {
            assert.deepEqual(encodeRaftMessage(decoded.groupId, decoded.message), damaged);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('unknown group and unknown message type are refused as unknown-type', () => {
    const good = encodeRaftMessage('sql', {
      type: 'timeout-now',
      from: 1 as NodeId,
      to: 2 as NodeId,
      term: 1 as Term,
    });
    const badGroup = good.slice();
    badGroup[0] = 9;
    const badType = good.slice();
    badType[1] = 200;
    for (const bytes of [badGroup, badType]) {
      const err = decodeOrTypedError(bytes);
      assert.ok(err instanceof ProtocolError && err.kind === 'unknown-type', String(err));
    }
  });

  test('a boolean other than 0 or 1 and trailing bytes are malformed', () => {
    const vote = encodeRaftMessage('sql', {
      type: 'vote-response',
      from: 1 as NodeId,
      to: 2 as NodeId,
      term: 1 as Term,
      granted: true,
    });
    const two = vote.slice();
    two[18] = 2;
    const trailing = new Uint8Array([...vote, 0]);
    for (const bytes of [two, trailing]) {
      const err = decodeOrTypedError(bytes);
      assert.ok(err instanceof ProtocolError && err.kind === 'malformed', String(err));
    }
  });

  test('an append whose entries do not extend the log after prevIndex is refused', () => {
    const entry = (index: number, term: number) =>
      encodeEntry({ kind: 'noop', index: index as LogIndex, term: term as Term });
    const append = (prevIndex: number, prevTerm: number, entries: Uint8Array[]) => {
      // prevIndex, prevTerm, commit, epoch, entry count.
      const bodyBytes = 8 * 4 + 4 + entries.reduce((n, e) => n + 4 + e.byteLength, 0);
      const { bytes, view } = header(1, bodyBytes);
      let at = 18;
      view.setUint32(at, prevIndex, true);
      view.setUint32(at + 8, prevTerm, true);
      at += 32;
      view.setUint32(at, entries.length, true);
      at += 4;
      for (const e of entries) {
        view.setUint32(at, e.byteLength, true);
        bytes.set(e, at + 4);
        at += 4 + e.byteLength;
      }
      return bytes;
    };
    // Sanity: a valid one decodes.
    assert.ok(!(decodeOrTypedError(append(10, 2, [entry(11, 2), entry(12, 3)])) instanceof ProtocolError));
    const cases: Array<[string, Uint8Array]> = [
      ['gap', append(10, 2, [entry(12, 2)])],
      ['overlap', append(10, 2, [entry(10, 2)])],
      ['term regresses', append(10, 2, [entry(11, 3), entry(12, 2)])],
      ['below prevTerm', append(10, 2, [entry(11, 1)])],
      ['above the message term', append(10, 2, [entry(11, 6)])],
      [
        'count overruns',
        (() => {
          const b = append(10, 2, []);
          new DataView(b.buffer).setUint32(18 + 32, 0xffffffff, true);
          return b;
        })(),
      ],
    ];
    for (const [what, bytes] of cases) {
      const err = decodeOrTypedError(bytes);
      assert.ok(err instanceof ProtocolError && err.kind === 'malformed', `${what}: ${String(err)}`);
    }
  });

  test('a snapshot membership listing a node twice is refused', () => {
    const m: Message = {
      type: 'snapshot',
      from: 1 as NodeId,
      to: 2 as NodeId,
      term: 5 as Term,
      snapshot: {
        index: 9 as LogIndex,
        term: 5 as Term,
        membership: { voters: [1 as NodeId], learners: [1 as NodeId] },
      },
      epoch: 1,
    };
    const err = decodeOrTypedError(encodeRaftMessage('sql', m));
    assert.ok(err instanceof ProtocolError && err.kind === 'malformed', String(err));
  });
});
