/**
 * The keys of a proxy's configuration (`hiqlite proxy --config FILE`, table `[hiqlite]`, every key
 * overridable by `HQL_<KEY>`), documented in docs/CONFIGURATION.md ("The proxy"). The limits of
 * the API port are the node's keys, with the node's defaults and ranges (config-keys.ts).
 */
import { INTEGER_SETTINGS } from '../node/config/config.js';
import type { IntegerKey } from '../node/config/config-types.js';

export type ProxyValueKind = 'string' | 'boolean' | 'integer' | 'list';

export interface ProxyIntegerSetting {
  readonly toml: string;
  readonly default: number;
  /** Inclusive bounds. */
  readonly min: number;
  readonly max: number;
}

/** The node's API-port limits, which a proxy's API port has too. */
const SHARED_LIMITS: readonly IntegerKey[] = [
  'entryBytesMax',
  'frameBytesMax',
  'apiConnectionsMax',
  'apiRequestsInflightMax',
  'apiSendBufferBytesMax',
  'apiSendBufferTotalBytesMax',
  'apiReceiveBufferTotalBytesMax',
  'apiIdleTimeoutMs',
  'unauthenticatedConnectionsMax',
  'handshakeTimeoutMs',
  'httpBodyTimeoutMs',
  'httpLingerBytesMax',
  'httpJsonDepthMax',
  'httpJsonValuesMax',
  'cacheListenerBufferMax',
  'cacheListenerBufferBytesMax',
];

export const PROXY_INTEGER_SETTINGS: readonly ProxyIntegerSetting[] = [
  ...INTEGER_SETTINGS.filter((s) => SHARED_LIMITS.includes(s.key)).map((s) => ({
    toml: s.toml,
    default: s.default,
    min: s.min,
    max: s.max,
  })),
  // A request whose client gave no shorter deadline: retries across leader changes included.
  { toml: 'request_timeout_ms', default: 10_000, min: 1, max: 3_600_000 },
  { toml: 'connect_timeout_ms', default: 3000, min: 1, max: 600_000 },
  // Requests in flight on the proxy's connection to one node; beyond, HQL_OVERLOADED.
  { toml: 'cluster_requests_inflight_max', default: 65_536, min: 1, max: 1_000_000 },
  // Concurrent JSON writes (each holds a client session lane while it runs).
  { toml: 'json_writes_max', default: 4096, min: 1, max: 1_000_000 },
  // Keepalive of the connections to the nodes (api-connection.ts): a silent one pings, then is
  // closed as dead. The interval must stay below the nodes' api_idle_timeout_ms.
  { toml: 'keepalive_interval_ms', default: 1_000, min: 0, max: 3_600_000 },
  { toml: 'keepalive_timeout_ms', default: 4_000, min: 1, max: 3_600_000 },
];

export const PROXY_KEYS: Readonly<Record<string, ProxyValueKind>> = {
  proxy_addr_api: 'string',
  listen_addr_api: 'string',
  nodes: 'list',
  secret_api: 'string',
  secret_api_cluster: 'string',
  tls_api_cert: 'string',
  tls_api_key: 'string',
  tls_auto_certificates: 'boolean',
  tls_cluster: 'boolean',
  tls_cluster_ca: 'string',
  ...Object.fromEntries(PROXY_INTEGER_SETTINGS.map((s) => [s.toml, 'integer' as const])),
};
