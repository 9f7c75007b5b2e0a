/**
 * The mutual challenge-response that opens every connection (DESIGN.md, "Networking and
 * security"). Both sides prove knowledge of a shared secret with HMAC-SHA256 over a transcript
 * holding fresh nonces from both sides, both node ids, the channel and, under TLS, keying
 * material exported from the TLS session. The secret never crosses the wire.
 *
 *   server → client  challenge  u8 0x01 | "HQLT" | u8 version | u8 purpose | 32 B serverNonce
 *   client → server  auth       u8 0x02 | u8 version | u8 channel | u32 clientId | u32 serverId
 *                               | 32 B clientNonce | 16 B clusterId | 32 B clientMac
 *   server → client  accept     u8 0x03 | 16 B clusterId | 32 B serverMac
 *   server → client  refuse     u8 0x04 (then it closes)
 *
 * Each side names its cluster (the id fixed at bootstrap; all zeros for a client, or a node that
 * has not joined one yet), covered by its proof: nodes of two different clusters refuse each
 * other with a reason they can log, instead of mixing their logs.
 *
 * The client proves itself first, so a stranger who connects to a node learns nothing it could
 * attack offline (no MAC under the secret is sent before the client's proof checks out). The
 * server answers a bad proof, an unknown id or a wrong target id all the same way: a bare
 * `refuse`, then it closes. The frame tells a refusal from a node that went down in the middle
 * of the handshake (a close with no `refuse`): the first is final, the second worth a retry.
 * Role labels in the MAC input stop a proof from being reflected back; the purpose label
 * ('raft' | 'api') stops a proof for one port from being replayed on the other, so the same
 * code serves `secretRaft` and `secretApi`. The TLS exporter value binds the proof to the TLS
 * session: a man in the middle with his own certificate (self-signed mode, where certificates
 * are not verified) runs two TLS sessions with different keying material and fails the check.
 *
 * This module is pure (codecs and MACs); `transport/authenticate.ts` drives it over a socket.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { assert, assertNever } from '../lib/assert.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { FRAME_HEADER_BYTES, writeFrameHeader } from './frame.js';
import { ProtocolError } from './protocol-error.js';

/**
 * The version of everything spoken after the handshake (Raft messages, API frames). A peer of
 * another version is refused at the handshake, so nodes of builds that encode messages or log
 * entries differently never form a cluster together (docs/ARCHITECTURE.md, "Upgrades").
 * 3: appends, snapshots and their answers carry the leader's progress epoch.
 * 4: a cache group log entry may hold a batch of commands (src/sm/cache/command.ts).
 * 5: a snapshot stream's end frame carries the SHA-256 of its bytes (peer-frame.ts); a cache
 *    group lock's renewal and release carry its holder id (refused without it when proposed).
 * 6: a heartbeat carries the term of the leader's entry at its commit index (a follower that
 *    holds another entry there does not commit it) and the leader's last index (a follower that
 *    holds more committed stops: the cluster lost committed entries).
 * 7: a SQL write carries its proposer's `sql_value_bytes_max` (`valueBytesMax`, command.ts), which
 *    a node of version 6 reads as a malformed command while the others apply it.
 * 8: a write's session (SQL and cache) carries its proposer's `session_protect_ms` (`protectMs`),
 *    which a node of version 7 reads as a malformed command, and under which a full session
 *    table refuses a new session instead of forgetting one still protected.
 * 9: a cache group lock waiter has a wait lease (`lockAcquire.waitLeaseMs`, renewed by
 *    `lockWaitRenew`), which a node of version 8 reads as a malformed command.
 * 10: a node tells its API connections events of its own accord (api-codec.ts `ApiEvent`: its
 *    in-memory cache group founded anew), which a client of version 9 reads as a malformed answer.
 */
export const HANDSHAKE_VERSION = 10;
export const CLUSTER_ID_BYTES = 16;
/** "No cluster": a remote client, or a node that has not bootstrapped or joined one yet. */
export const NO_CLUSTER_ID: Uint8Array = new Uint8Array(CLUSTER_ID_BYTES);
export const NONCE_BYTES = 32;
export const MAC_BYTES = 32;
/** Every handshake frame is smaller: the decoder uses this limit until the handshake succeeds. */
export const HANDSHAKE_FRAME_BYTES_MAX = 128;
/** Exported from the TLS session for channel binding (RFC 5705 / RFC 8446 §7.5). */
export const TLS_EXPORTER_LABEL = 'EXPORTER-hiqlite-handshake-v1';
export const TLS_EXPORTER_BYTES = 32;

export type HandshakePurpose = 'raft' | 'api';

export type HandshakeFrame =
  | {
      readonly kind: 'challenge';
      readonly version: number;
      readonly purpose: HandshakePurpose;
      readonly serverNonce: Uint8Array;
    }
  | {
      readonly kind: 'auth';
      readonly version: number;
      /** What the connection is for (the Raft transport: 1 = control lane, 2 = bulk lane). */
      readonly channel: number;
      readonly clientId: number;
      /** The node the client means to reach. */
      readonly serverId: number;
      readonly clientNonce: Uint8Array;
      readonly clusterId: Uint8Array;
      readonly mac: Uint8Array;
    }
  | { readonly kind: 'accept'; readonly clusterId: Uint8Array; readonly mac: Uint8Array }
  | { readonly kind: 'refuse' };

/** Everything both proofs cover. */
export interface HandshakeTranscript {
  readonly purpose: HandshakePurpose;
  readonly version: number;
  readonly channel: number;
  readonly clientId: number;
  readonly serverId: number;
  readonly serverNonce: Uint8Array;
  readonly clientNonce: Uint8Array;
  /** TLS exporter keying material, or empty without TLS. */
  readonly channelBinding: Uint8Array;
  /** The client's cluster id (both proofs cover it). */
  readonly clientClusterId: Uint8Array;
  /** The server's cluster id: only the server's proof covers it (the client learns it last). */
  readonly serverClusterId: Uint8Array;
}

const KIND_CHALLENGE = 0x01;
const KIND_AUTH = 0x02;
const KIND_ACCEPT = 0x03;
const KIND_REFUSE = 0x04;
const MAGIC = new Uint8Array([0x48, 0x51, 0x4c, 0x54]); // "HQLT"

export function encodeHandshakeFrame(f: HandshakeFrame): Uint8Array {
  const payloadBytes = handshakePayloadBytes(f);
  const out = new Uint8Array(FRAME_HEADER_BYTES + payloadBytes);
  writeFrameHeader(out, 0, payloadBytes);
  const w = new ByteWriter(out, FRAME_HEADER_BYTES);
  switch (f.kind) {
    case 'challenge':
      assert(f.serverNonce.byteLength === NONCE_BYTES, 'server nonce size');
      w.u8(KIND_CHALLENGE);
      w.bytes(MAGIC);
      w.u8(f.version);
      w.u8(purposeByte(f.purpose));
      w.bytes(f.serverNonce);
      break;
    case 'auth':
      assert(f.clientNonce.byteLength === NONCE_BYTES && f.mac.byteLength === MAC_BYTES, 'auth field size');
      w.u8(KIND_AUTH);
      w.u8(f.version);
      w.u8(f.channel);
      w.u32(f.clientId);
      w.u32(f.serverId);
      assert(f.clusterId.byteLength === CLUSTER_ID_BYTES, 'auth cluster id size');
      w.bytes(f.clientNonce);
      w.bytes(f.clusterId);
      w.bytes(f.mac);
      break;
    case 'accept':
      assert(f.mac.byteLength === MAC_BYTES, 'accept mac size');
      assert(f.clusterId.byteLength === CLUSTER_ID_BYTES, 'accept cluster id size');
      w.u8(KIND_ACCEPT);
      w.bytes(f.clusterId);
      w.bytes(f.mac);
      break;
    case 'refuse':
      w.u8(KIND_REFUSE);
      break;
    default:
      assertNever(f, 'handshake frame');
  }
  assert(w.offset === out.byteLength, 'handshake frame size');
  return out;
}

/** Decodes one handshake frame payload; anything else is a `ProtocolError`. */
export function decodeHandshakeFrame(payload: Uint8Array): HandshakeFrame {
  const r: ByteReader = new ByteReader(payload, 'handshake frame');
  const kind = r.u8('kind');
  let frame: HandshakeFrame;
  switch (kind) {
    case KIND_CHALLENGE: {
      const magic = r.bytesView(MAGIC.byteLength, 'magic');
      if (!magic.every((b, i) => b === MAGIC[i])) r.fail('not a hiqlite handshake (bad magic)');
      const version = r.u8('version');
      const purposeRaw = r.u8('purpose');
      const purpose = purposeFromByte(purposeRaw);
      if (purpose === null) r.fail(`unknown purpose ${purposeRaw}`);
      const serverNonce = copy(r.bytesView(NONCE_BYTES, 'server nonce'));
      frame = { kind: 'challenge', version, purpose, serverNonce };
      break;
    }
    case KIND_AUTH: {
      const version = r.u8('version');
      const channel = r.u8('channel');
      const clientId = r.u32('clientId');
      const serverId = r.u32('serverId');
      const clientNonce = copy(r.bytesView(NONCE_BYTES, 'client nonce'));
      const clusterId = copy(r.bytesView(CLUSTER_ID_BYTES, 'cluster id'));
      const mac = copy(r.bytesView(MAC_BYTES, 'mac'));
      frame = { kind: 'auth', version, channel, clientId, serverId, clientNonce, clusterId, mac };
      break;
    }
    case KIND_ACCEPT: {
      const clusterId = copy(r.bytesView(CLUSTER_ID_BYTES, 'cluster id'));
      frame = { kind: 'accept', clusterId, mac: copy(r.bytesView(MAC_BYTES, 'mac')) };
      break;
    }
    case KIND_REFUSE:
      frame = { kind: 'refuse' };
      break;
    default:
      throw new ProtocolError('unknown-type', `unknown handshake frame kind ${kind}`);
  }
  r.end();
  return frame;
}

/** The proof `role` sends: HMAC-SHA256 keyed with the secret over the labelled transcript. */
export function handshakeMac(
  secret: Uint8Array,
  role: 'client' | 'server',
  t: HandshakeTranscript,
): Uint8Array {
  assert(t.serverNonce.byteLength === NONCE_BYTES && t.clientNonce.byteLength === NONCE_BYTES, 'nonce size');
  assert(t.channelBinding.byteLength < 65536, 'channel binding size');
  const fixed = new Uint8Array(1 + 1 + 4 + 4 + 2);
  const w = new ByteWriter(fixed);
  w.u8(t.version);
  w.u8(t.channel);
  w.u32(t.clientId);
  w.u32(t.serverId);
  w.u16(t.channelBinding.byteLength);
  const mac = createHmac('sha256', secret);
  mac.update(`hiqlite-handshake-v1\0${role}\0${t.purpose}\0`, 'utf8');
  mac.update(fixed);
  mac.update(t.serverNonce);
  mac.update(t.clientNonce);
  mac.update(t.channelBinding);
  assert(t.clientClusterId.byteLength === CLUSTER_ID_BYTES, 'client cluster id size');
  mac.update(t.clientClusterId);
  if (role === 'server') {
    assert(t.serverClusterId.byteLength === CLUSTER_ID_BYTES, 'server cluster id size');
    mac.update(t.serverClusterId);
  }
  return new Uint8Array(mac.digest());
}

/** Constant-time comparison of a received proof with the expected one. */
export function verifyHandshakeMac(
  secret: Uint8Array,
  role: 'client' | 'server',
  t: HandshakeTranscript,
  received: Uint8Array,
): boolean {
  const expected = handshakeMac(secret, role, t);
  return received.byteLength === expected.byteLength && timingSafeEqual(received, expected);
}

function handshakePayloadBytes(f: HandshakeFrame): number {
  switch (f.kind) {
    case 'challenge':
      return 1 + MAGIC.byteLength + 1 + 1 + NONCE_BYTES;
    case 'auth':
      return 1 + 1 + 1 + 4 + 4 + NONCE_BYTES + CLUSTER_ID_BYTES + MAC_BYTES;
    case 'accept':
      return 1 + CLUSTER_ID_BYTES + MAC_BYTES;
    case 'refuse':
      return 1;
    default:
      return assertNever(f, 'handshake frame');
  }
}

function purposeByte(p: HandshakePurpose): number {
  switch (p) {
    case 'raft':
      return 1;
    case 'api':
      return 2;
    default:
      return assertNever(p, 'handshake purpose');
  }
}

function purposeFromByte(b: number): HandshakePurpose | null {
  if (b === 1) return 'raft';
  if (b === 2) return 'api';
  return null;
}

/** Handshake fields outlive the read buffer they came in; copy the few bytes. */
function copy(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

/** The wire form of a cluster id (32 hex digits), or NO_CLUSTER_ID for none. */
export function clusterIdBytes(hex: string | null): Uint8Array {
  if (hex === null) return NO_CLUSTER_ID;
  assert(/^[0-9a-f]{32}$/.test(hex), 'a cluster id is 32 hex digits');
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** The cluster id a peer sent, or null for none. */
export function clusterIdText(bytes: Uint8Array): string | null {
  return bytes.every((b) => b === 0) ? null : Buffer.from(bytes).toString('hex');
}
