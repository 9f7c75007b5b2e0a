import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FRAME_HEADER_BYTES, FrameDecoder } from '../../src/protocol/frame.js';
import {
  decodePeerFrame,
  encodePeerFrame,
  type PeerFrame,
  REASON_BYTES_MAX,
} from '../../src/protocol/peer-frame.js';
import { ProtocolError } from '../../src/protocol/protocol-error.js';
import type { SnapshotMessage } from '../../src/protocol/raft-message-codec.js';
import type { LogIndex, NodeId, Term } from '../../src/raft/types.js';
import { groupIdArb, messageArb, u53 } from './arbitraries.js';

const snapshotMessage: SnapshotMessage = {
  type: 'snapshot',
  from: 1 as NodeId,
  to: 2 as NodeId,
  term: 4 as Term,
  snapshot: {
    index: 77 as LogIndex,
    term: 3 as Term,
    membership: { voters: [1 as NodeId, 2 as NodeId], learners: [] },
  },
  epoch: 1,
};

const streamId = fc.nat({ max: 0xffffffff });
const reason = fc.string({ maxLength: 100 });

const frameArb: fc.Arbitrary<PeerFrame> = fc.oneof(
  fc.record({ kind: fc.constant('raft' as const), groupId: groupIdArb, message: messageArb }),
  fc.record({
    kind: fc.constant('snapshot-begin' as const),
    streamId,
    groupId: groupIdArb,
    message: fc.constant(snapshotMessage),
  }),
  fc.record({
    kind: fc.constant('snapshot-chunk' as const),
    streamId,
    data: fc.uint8Array({ minLength: 1, maxLength: 300 }),
  }),
  fc.record({
    kind: fc.constant('snapshot-end' as const),
    streamId,
    totalBytes: u53,
    sha256: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  }),
  fc.record({ kind: fc.constant('snapshot-abort' as const), streamId, reason }),
  fc.record({ kind: fc.constant('snapshot-ack' as const), streamId, ok: fc.boolean(), reason }),
);

/** The payload of one wire frame (drops the length header, checking it). */
function payloadOf(wire: Uint8Array): Uint8Array {
  const frames = new FrameDecoder(1 << 20).push(wire);
  assert.equal(frames.length, 1);
  return frames[0] as Uint8Array;
}

describe('peer frames', () => {
  test('every frame round-trips through the wire framing', () => {
    fc.assert(
      fc.property(frameArb, (frame) => {
        const decoded = decodePeerFrame(payloadOf(encodePeerFrame(frame)));
        const expected = frame.kind === 'snapshot-chunk' ? { ...frame, data: frame.data } : frame;
        assert.deepEqual({ ...decoded }, { ...expected });
      }),
      { numRuns: 500 },
    );
  });

  test('random and corrupted payloads decode or fail with a ProtocolError only', () => {
    fc.assert(
      fc.property(
        frameArb,
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 4 }),
        (frame, flips) => {
          const payload = payloadOf(encodePeerFrame(frame)).slice();
          for (const [at, value] of flips) payload[at % payload.byteLength] = value;
          try {
            decodePeerFrame(payload);
          } catch (err) {
            assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
          }
        },
      ),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        try {
          decodePeerFrame(bytes);
        } catch (err) {
          assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('a snapshot-begin must carry a snapshot message', () => {
    const raft = payloadOf(
      encodePeerFrame({
        kind: 'raft',
        groupId: 'sql',
        message: { type: 'timeout-now', from: 1 as NodeId, to: 2 as NodeId, term: 1 as Term },
      }),
    );
    const begin = new Uint8Array(raft.byteLength + 4);
    begin[0] = 0x11;
    begin.set(raft.subarray(1), 5);
    assert.throws(
      () => decodePeerFrame(begin),
      (e: unknown) => e instanceof ProtocolError && e.kind === 'malformed',
    );
  });

  test('reasons are cut to REASON_BYTES_MAX bytes on a character boundary', () => {
    const long = 'é'.repeat(REASON_BYTES_MAX);
    const wire = encodePeerFrame({ kind: 'snapshot-abort', streamId: 1, reason: long });
    const decoded = decodePeerFrame(payloadOf(wire));
    assert.ok(decoded.kind === 'snapshot-abort');
    assert.equal(decoded.reason, 'é'.repeat(REASON_BYTES_MAX / 2));
    assert.ok(wire.byteLength <= FRAME_HEADER_BYTES + 7 + REASON_BYTES_MAX);
  });

  test('an unknown frame kind is refused as unknown-type', () => {
    assert.throws(
      () => decodePeerFrame(new Uint8Array([0x7f, 0, 0])),
      (e: unknown) => e instanceof ProtocolError && e.kind === 'unknown-type',
    );
  });
});
