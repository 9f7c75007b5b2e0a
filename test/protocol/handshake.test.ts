import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { FrameDecoder } from '../../src/protocol/frame.js';
import {
  CLUSTER_ID_BYTES,
  clusterIdBytes,
  clusterIdText,
  decodeHandshakeFrame,
  encodeHandshakeFrame,
  HANDSHAKE_FRAME_BYTES_MAX,
  type HandshakeFrame,
  type HandshakeTranscript,
  handshakeMac,
  MAC_BYTES,
  NO_CLUSTER_ID,
  NONCE_BYTES,
  verifyHandshakeMac,
} from '../../src/protocol/handshake.js';
import { ProtocolError } from '../../src/protocol/protocol-error.js';

const secret = new TextEncoder().encode('a-cluster-secret-of-enough-bytes');
const nonce = () => new Uint8Array(randomBytes(NONCE_BYTES));

const transcript = (over: Partial<HandshakeTranscript> = {}): HandshakeTranscript => ({
  purpose: 'raft',
  version: 1,
  channel: 1,
  clientId: 1,
  serverId: 2,
  serverNonce: new Uint8Array(NONCE_BYTES).fill(1),
  clientNonce: new Uint8Array(NONCE_BYTES).fill(2),
  channelBinding: new Uint8Array(0),
  clientClusterId: NO_CLUSTER_ID,
  serverClusterId: new Uint8Array(CLUSTER_ID_BYTES).fill(7),
  ...over,
});

function roundTrip(f: HandshakeFrame): HandshakeFrame {
  const frames = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX).push(encodeHandshakeFrame(f));
  assert.equal(frames.length, 1);
  return decodeHandshakeFrame(frames[0] as Uint8Array);
}

describe('handshake', () => {
  test('the four frames round-trip and fit the handshake frame limit', () => {
    const frames: HandshakeFrame[] = [
      { kind: 'challenge', version: 1, purpose: 'api', serverNonce: nonce() },
      {
        kind: 'auth',
        version: 1,
        channel: 2,
        clientId: 0xffffffff,
        serverId: 7,
        clientNonce: nonce(),
        clusterId: new Uint8Array(CLUSTER_ID_BYTES).fill(5),
        mac: new Uint8Array(MAC_BYTES).fill(3),
      },
      { kind: 'accept', clusterId: NO_CLUSTER_ID, mac: new Uint8Array(MAC_BYTES).fill(4) },
      { kind: 'refuse' },
    ];
    for (const f of frames) assert.deepEqual(roundTrip(f), f);
  });

  test('garbage is a ProtocolError, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
        try {
          decodeHandshakeFrame(bytes);
        } catch (err) {
          assert.ok(err instanceof ProtocolError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('a proof verifies only with the same secret and the same transcript', () => {
    const t = transcript();
    const mac = handshakeMac(secret, 'client', t);
    assert.ok(verifyHandshakeMac(secret, 'client', t, mac));
    const otherSecret = new TextEncoder().encode('another-secret-of-enough-bytes!!');
    assert.ok(!verifyHandshakeMac(otherSecret, 'client', t, mac));
    const changes: Array<Partial<HandshakeTranscript>> = [
      { purpose: 'api' },
      { channel: 2 },
      { clientId: 3 },
      { serverId: 3 },
      { serverNonce: new Uint8Array(NONCE_BYTES).fill(9) },
      { clientNonce: new Uint8Array(NONCE_BYTES).fill(9) },
      { channelBinding: new Uint8Array(32).fill(5) },
      { clientClusterId: new Uint8Array(CLUSTER_ID_BYTES).fill(6) },
    ];
    for (const change of changes) {
      assert.ok(
        !verifyHandshakeMac(secret, 'client', transcript(change), mac),
        JSON.stringify(Object.keys(change)),
      );
    }
  });

  test("the server's proof covers the cluster id it names", () => {
    const t = transcript();
    const mac = handshakeMac(secret, 'server', t);
    assert.ok(verifyHandshakeMac(secret, 'server', t, mac));
    const other = transcript({ serverClusterId: new Uint8Array(CLUSTER_ID_BYTES).fill(8) });
    assert.ok(!verifyHandshakeMac(secret, 'server', other, mac));
  });

  test('cluster ids travel as 16 bytes, none as zeros', () => {
    const id = '0123456789abcdef0123456789abcdef';
    assert.equal(clusterIdText(clusterIdBytes(id)), id);
    assert.equal(clusterIdText(clusterIdBytes(null)), null);
  });

  test("a client's proof cannot be reflected as the server's", () => {
    const t = transcript();
    assert.ok(!verifyHandshakeMac(secret, 'server', t, handshakeMac(secret, 'client', t)));
  });

  test('the secret never appears in what is sent', () => {
    const t = transcript();
    const wire = Buffer.from(
      encodeHandshakeFrame({
        kind: 'auth',
        version: 1,
        channel: 1,
        clientId: 1,
        serverId: 2,
        clientNonce: t.clientNonce,
        clusterId: t.clientClusterId,
        mac: handshakeMac(secret, 'client', t),
      }),
    );
    assert.equal(wire.indexOf(Buffer.from(secret)), -1);
  });
});
