/** A remote client's raw binary API connection to `addrApi` (`host:port`), with the test secret. */
import { ApiConnection, REMOTE_CLIENT_ID } from '../../src/transport/api-connection.js';
import { TEST_SECRETS } from './one-node-config.js';

export function openClientConnection(addrApi: string): Promise<ApiConnection> {
  return ApiConnection.open({
    host: '127.0.0.1',
    port: Number(addrApi.split(':')[1]),
    secret: TEST_SECRETS.secretApi,
    localId: REMOTE_CLIENT_ID,
    connectTimeoutMs: 1000,
    frameBytesMax: 1 << 24,
    inflightMax: 16,
  });
}
