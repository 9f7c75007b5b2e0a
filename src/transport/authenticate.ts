/**
 * Runs the challenge-response of `protocol/handshake.ts` over a `FramedConnection`, as client
 * or as server. Generic over the secret, the purpose and the channel, so the API port can use
 * it with `secretApi` (and `secretRaft` for cluster nodes) as the Raft port does with `secretRaft`. The caller owns the deadline
 * (it arms a timer before connecting) and what a failure means (log, close): these functions
 * only exchange and check frames, then call `done` exactly once, unless the connection closes
 * first.
 */
import { randomBytes } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import {
  clusterIdBytes,
  clusterIdText,
  decodeHandshakeFrame,
  encodeHandshakeFrame,
  HANDSHAKE_VERSION,
  type HandshakeFrame,
  type HandshakePurpose,
  type HandshakeTranscript,
  handshakeMac,
  NO_CLUSTER_ID,
  NONCE_BYTES,
  TLS_EXPORTER_BYTES,
  TLS_EXPORTER_LABEL,
  verifyHandshakeMac,
} from '../protocol/handshake.js';
import { ProtocolError } from '../protocol/protocol-error.js';
import type { FramedConnection } from './framed-connection.js';
import { HandshakeError } from './transport-errors.js';

export interface HandshakeIdentity {
  readonly secret: Uint8Array;
  readonly purpose: HandshakePurpose;
  readonly localId: number;
  /**
   * This side's cluster id (32 hex digits), or null when it has none yet (a remote client, a
   * node before it bootstraps or joins). Read at every handshake: a node learns it when it joins.
   */
  readonly clusterId?: () => string | null;
}

export interface ClientHandshakeParams extends HandshakeIdentity {
  /** The node this connection was opened to. */
  readonly serverId: number;
  readonly channel: number;
}

export interface ServerHandshakeParams extends Omit<HandshakeIdentity, 'secret'> {
  /**
   * The secret a client claiming `clientId` must prove; this side proves the same one back. The
   * Raft port has one secret; the API port asks `secretApi` of clients and `secretRaft` of
   * cluster nodes, so that claiming a node's id takes the cluster's internal secret.
   */
  readonly secretFor: (clientId: number) => Uint8Array;
  /** Whether an authenticated `clientId` may open `channel` (known peer, known lane). */
  readonly accepts: (clientId: number, channel: number) => boolean;
}

export interface AuthenticatedClient {
  readonly clientId: number;
  readonly channel: number;
}

/** Channel binding: TLS exporter keying material, or nothing on a plain TCP connection. */
export function channelBinding(conn: FramedConnection): Uint8Array {
  const s = conn.socket;
  if (s instanceof TLSSocket)
    return new Uint8Array(s.exportKeyingMaterial(TLS_EXPORTER_BYTES, TLS_EXPORTER_LABEL, Buffer.alloc(0)));
  return new Uint8Array(0);
}

/**
 * The client's side of the handshake. `done` gets null and the server's cluster id (authenticated
 * by its proof; null when it has none yet) on success, the error otherwise.
 */
export function authenticateClient(
  conn: FramedConnection,
  p: ClientHandshakeParams,
  done: (error: HandshakeError | null, serverClusterId: string | null) => void,
): void {
  const clientNonce = new Uint8Array(randomBytes(NONCE_BYTES));
  let transcript: HandshakeTranscript | null = null;
  let finished = false;
  const finish = (error: HandshakeError | null, serverClusterId: string | null = null) => {
    if (finished) return;
    finished = true;
    conn.onFrame(() => {});
    done(error, serverClusterId);
  };
  conn.onFrame((payload) => {
    const frame = decodeOrFail(payload, finish);
    if (frame === null) return;
    if (transcript === null) {
      if (frame.kind !== 'challenge')
        return finish(new HandshakeError(`expected a challenge, got '${frame.kind}'`));
      if (frame.version !== HANDSHAKE_VERSION) {
        return finish(new HandshakeError(versionMismatch('server', frame.version)));
      }
      if (frame.purpose !== p.purpose) {
        return finish(new HandshakeError(`this is a '${frame.purpose}' port, not a '${p.purpose}' port`));
      }
      transcript = {
        purpose: p.purpose,
        version: HANDSHAKE_VERSION,
        channel: p.channel,
        clientId: p.localId,
        serverId: p.serverId,
        serverNonce: frame.serverNonce,
        clientNonce,
        channelBinding: channelBinding(conn),
        clientClusterId: clusterIdBytes(p.clusterId?.() ?? null),
        serverClusterId: NO_CLUSTER_ID,
      };
      const mac = handshakeMac(p.secret, 'client', transcript);
      conn.write(
        encodeHandshakeFrame({
          kind: 'auth',
          version: HANDSHAKE_VERSION,
          channel: p.channel,
          clientId: p.localId,
          serverId: p.serverId,
          clientNonce,
          clusterId: transcript.clientClusterId,
          mac,
        }),
      );
      return;
    }
    if (frame.kind === 'refuse')
      return finish(
        new HandshakeError('the server refused our proof (wrong secret, or an id it does not take)'),
      );
    if (frame.kind !== 'accept') return finish(new HandshakeError(`expected accept, got '${frame.kind}'`));
    const full = { ...transcript, serverClusterId: frame.clusterId };
    if (!verifyHandshakeMac(p.secret, 'server', full, frame.mac)) {
      return finish(new HandshakeError(`server proof invalid (wrong secret, or not node ${p.serverId})`));
    }
    const serverClusterId = clusterIdText(frame.clusterId);
    const mismatch = clusterMismatch(p.clusterId?.() ?? null, serverClusterId, p.serverId);
    if (mismatch !== null) return finish(new HandshakeError(mismatch));
    finish(null, serverClusterId);
  });
}

export function authenticateServer(
  conn: FramedConnection,
  p: ServerHandshakeParams,
  done: (result: AuthenticatedClient | HandshakeError) => void,
): void {
  const serverNonce = new Uint8Array(randomBytes(NONCE_BYTES));
  let finished = false;
  const finish = (result: AuthenticatedClient | HandshakeError) => {
    if (finished) return;
    finished = true;
    conn.onFrame(() => {});
    // A refusal says so (the same bare frame whatever failed), so the client can tell it from a
    // node that died mid-handshake; the caller closes with `flush` so that it leaves.
    if (result instanceof HandshakeError) conn.write(encodeHandshakeFrame({ kind: 'refuse' }));
    done(result);
  };
  conn.onFrame((payload) => {
    const frame = decodeOrFail(payload, finish);
    if (frame === null) return;
    if (frame.kind !== 'auth') return finish(new HandshakeError(`expected auth, got '${frame.kind}'`));
    const transcript: HandshakeTranscript = {
      purpose: p.purpose,
      version: frame.version,
      channel: frame.channel,
      clientId: frame.clientId,
      serverId: frame.serverId,
      serverNonce,
      clientNonce: frame.clientNonce,
      channelBinding: channelBinding(conn),
      clientClusterId: frame.clusterId,
      serverClusterId: clusterIdBytes(p.clusterId?.() ?? null),
    };
    // Every check runs before deciding, and every refusal looks the same to the client (the
    // connection closes): it cannot tell a wrong secret from a wrong or unknown id.
    const secret = p.secretFor(frame.clientId);
    const proofOk = verifyHandshakeMac(secret, 'client', transcript, frame.mac);
    const versionOk = frame.version === HANDSHAKE_VERSION;
    // An API client may not know which node it reached (it was given addresses): it names
    // server 0. Raft peers always name the node they dialled.
    const targetOk = frame.serverId === p.localId || (p.purpose === 'api' && frame.serverId === 0);
    const clientOk = frame.clientId !== p.localId && p.accepts(frame.clientId, frame.channel);
    if (!proofOk)
      return finish(new HandshakeError(`bad proof from claimed node ${frame.clientId} (wrong secret?)`));
    if (!versionOk) return finish(new HandshakeError(versionMismatch('client', frame.version)));
    // The nodes lists of two nodes differ, or two nodes have one node_id: said in those words.
    if (!targetOk) {
      return finish(
        new HandshakeError(
          `node ${frame.clientId} dialled node ${frame.serverId} at this address, but this is node ${p.localId}: the nodes lists of the two nodes differ`,
        ),
      );
    }
    if (frame.clientId === p.localId) {
      return finish(
        new HandshakeError(
          `a node claims this node's own id ${p.localId}: two nodes are configured with node_id ${p.localId}`,
        ),
      );
    }
    if (!clientOk) {
      return finish(
        new HandshakeError(
          `node ${frame.clientId} is not in this node's nodes list (or channel ${frame.channel} is not one it may open): the nodes lists of the nodes differ`,
        ),
      );
    }
    const mismatch = clusterMismatch(
      clusterIdText(transcript.serverClusterId),
      clusterIdText(frame.clusterId),
      frame.clientId,
    );
    if (mismatch !== null) return finish(new HandshakeError(mismatch));
    conn.write(
      encodeHandshakeFrame({
        kind: 'accept',
        clusterId: transcript.serverClusterId,
        mac: handshakeMac(secret, 'server', transcript),
      }),
    );
    finish({ clientId: frame.clientId, channel: frame.channel });
  });
  conn.write(
    encodeHandshakeFrame({ kind: 'challenge', version: HANDSHAKE_VERSION, purpose: p.purpose, serverNonce }),
  );
}

/**
 * Nodes of two different clusters refuse each other (each side checks): a node that bootstrapped
 * a cluster of its own, or a data directory from another cluster, must not exchange Raft messages
 * with this one. A side without an id yet (a client, a node still joining) matches any.
 */
function clusterMismatch(own: string | null, peer: string | null, peerId: number): string | null {
  if (own === null || peer === null || own === peer) return null;
  return `node ${peerId} belongs to cluster ${peer}, this node to cluster ${own}: refused (check the nodes list, or remove the data directory of the node that is in the wrong cluster)`;
}

function decodeOrFail(payload: Uint8Array, fail: (e: HandshakeError) => void): HandshakeFrame | null {
  try {
    return decodeHandshakeFrame(payload);
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    fail(new HandshakeError(`not a handshake frame: ${err.message}`, err));
    return null;
  }
}

/**
 * The other side runs another hiqlite version (HANDSHAKE_VERSION differs): said as such, with
 * what to do, in the node's log and in a client's error (it was read as a wrong secret).
 */
export function versionMismatch(other: 'server' | 'client', version: number): string {
  return `${other} speaks handshake version ${version}, this side ${HANDSHAKE_VERSION}: it runs another hiqlite version; the nodes and remote clients of a cluster must run the same version (upgrade them together: docs/ARCHITECTURE.md, "Upgrades")`;
}
