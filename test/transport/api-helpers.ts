/** Test helpers for the API port: an ApiServer's options, a stub handler, a remote client, a link. */
import { ClusterLink, type ClusterLinkOptions } from '../../src/client/cluster-link.js';
import type { ApiServerOptions } from '../../src/node/api-server.js';
import {
  ApiConnection,
  type ApiConnectionOptions,
  REMOTE_CLIENT_ID,
} from '../../src/transport/api-connection.js';
import { HOST } from './helpers.js';

export const SECRET_API = 'api-secret-for-tests-0123456789';
export const SECRET_RAFT = 'raft-secret-for-tests-0123456789';

/** An ApiServer of node 1 (of 1, 2, 3) on 127.0.0.1 port 0 with roomy limits; `o` sets others. */
export function apiServerOptions(
  o: Partial<Omit<ApiServerOptions, 'handler'>> = {},
): Omit<ApiServerOptions, 'handler'> {
  return {
    host: HOST,
    port: 0,
    nodeId: 1,
    secret: SECRET_API,
    nodeSecret: SECRET_RAFT,
    nodeIds: [1, 2, 3],
    frameBytesMax: 16 * 1024 * 1024,
    jsonBodyBytesMax: 64 * 1024,
    connectionsMax: 256,
    unauthenticatedConnectionsMax: 8,
    handshakeTimeoutMs: 60_000,
    ...o,
  };
}

/** A handler whose protocol requests go to `handle`; the rest answers like the default one. */
export function stubHandler(handle: ApiServerOptions['handler']['handle']): ApiServerOptions['handler'] {
  return {
    handle,
    health: () => ({ ok: true, body: {} }),
    ready: () => ({ ok: true }),
    metricsText: async () => '',
    json: async (_route, body) => body,
  };
}

/** A remote client (secret_api) of the API on `port`: 16 MiB frames, 16 requests in flight unless `o` says. */
export function openApiClient(
  port: number,
  o: Partial<Omit<ApiConnectionOptions, 'host' | 'port'>> = {},
): Promise<ApiConnection> {
  return ApiConnection.open({
    host: HOST,
    port,
    secret: SECRET_API,
    localId: REMOTE_CLIENT_ID,
    connectTimeoutMs: 5000,
    frameBytesMax: 16 << 20,
    inflightMax: 16,
    ...o,
  });
}

/** A link to test servers: SECRET_API, 1 MiB frames, 16 in flight; connectTimeoutMs 5 s and followLeader false unless given. */
export function testLink(
  o: Pick<ClusterLinkOptions, 'nodes' | 'requestTimeoutMs'> &
    Partial<Pick<ClusterLinkOptions, 'connectTimeoutMs' | 'followLeader'>>,
): ClusterLink {
  return new ClusterLink({
    secretApi: SECRET_API,
    connectTimeoutMs: 5000,
    followLeader: false,
    frameBytesMax: 1024 * 1024,
    inflightMax: 16,
    ...o,
  });
}
