/**
 * A proxy's configuration: table `[hiqlite]` of a TOML file, every key overridable by an
 * `HQL_<KEY>` environment variable (the variable wins), as a node's (config-toml.ts). Problems
 * are collected and reported together, each naming its key. Keys: proxy-config-keys.ts.
 */
import { parseApiAddress } from '../client/api-address.js';
import {
  type Env,
  type HostPort,
  isPlainTable,
  NODES_MAX,
  parseBindHost,
  parseHostPort,
  parseNodeEntry,
  parseNodeTable,
  SECRET_CHARS_MIN,
} from '../node/config/config.js';
import { ConfigError, ConfigProblems, closestKey, describeValue } from '../node/config/config-errors.js';
import { FRAME_HEADROOM_BYTES } from '../node/config/config-keys.js';
import { parseTomlDocument, readConfigFile, splitEnvList } from '../node/config/config-toml.js';
import { PROXY_INTEGER_SETTINGS, PROXY_KEYS } from './proxy-config-keys.js';

export interface ProxyConfig {
  /** Where clients reach this proxy, "host:port": the port it listens on, and its answer to `leader`. */
  readonly addrApi: string;
  /** Bind address: `listen_addr_api` (or the host of `proxy_addr_api`) and the port of `proxy_addr_api`. */
  readonly listen: HostPort;
  /** The cluster's API addresses. */
  readonly nodes: readonly string[];
  /** What the proxy's clients prove. */
  readonly secretApi: string;
  /** What the proxy proves to the cluster (`secret_api_cluster`, else `secret_api`). */
  readonly secretApiCluster: string;
  readonly tlsApi: { readonly certFile: string; readonly keyFile: string } | 'self-signed' | null;
  /** TLS towards the cluster: true accepts any certificate (the handshake authenticates), or a CA. */
  readonly tlsCluster: boolean | { readonly caFile: string };
  /** Every integer key, by its TOML name. */
  readonly limits: Readonly<Record<string, number>>;
}

/** Reads and validates `path`; throws ConfigError (HQL_INVALID_CONFIG) listing every problem. */
export function loadProxyConfig(path: string, env: Env = process.env): ProxyConfig {
  return parseProxyConfig(readConfigFile(path), env, path);
}

export function parseProxyConfig(text: string, env: Env = process.env, source = 'TOML'): ProxyConfig {
  const document = parseTomlDocument(text, source);
  const table = document.hiqlite ?? {};
  if (typeof table !== 'object' || table === null || Array.isArray(table))
    throw new ConfigError([{ key: '[hiqlite]', message: 'must be a table' }], source);
  const fromEnv = new Map<string, string>();
  const problems = new ConfigProblems((key) => {
    const variable = fromEnv.get(key);
    return variable === undefined ? key : `${key} (from ${variable})`;
  }, source);
  const values = new Map<string, unknown>();
  for (const [key, value] of Object.entries(table as Record<string, unknown>)) {
    if (PROXY_KEYS[key] !== undefined) values.set(key, value);
    else {
      const guess = closestKey(key, Object.keys(PROXY_KEYS));
      problems.addNamed(key, `not a proxy key${guess === null ? '' : ` (did you mean ${guess}?)`}`);
    }
  }
  for (const [key, kind] of Object.entries(PROXY_KEYS)) {
    const variable = `HQL_${key.toUpperCase()}`;
    const raw = env[variable];
    if (raw === undefined || raw === '') continue;
    fromEnv.set(key, variable);
    values.set(key, envValue(kind, raw));
  }
  const config = resolve(values, problems);
  problems.throwIfAny();
  return config as ProxyConfig;
}

/** A variable's text as the key's kind; a value that does not parse is kept, and reported by resolve. */
function envValue(kind: string, raw: string): unknown {
  switch (kind) {
    case 'integer':
      return /^\s*[+-]?[0-9]+\s*$/.test(raw) ? Number(raw.trim()) : raw;
    case 'boolean': {
      const v = raw.trim().toLowerCase();
      return v === 'true' ? true : v === 'false' ? false : raw;
    }
    case 'list':
      return splitEnvList(raw);
    default:
      return raw;
  }
}

function resolve(values: ReadonlyMap<string, unknown>, problems: ConfigProblems): ProxyConfig | null {
  const str = (key: string): string | undefined => {
    const v = values.get(key);
    if (v === undefined) return undefined;
    if (typeof v === 'string') return v;
    problems.add(key, `must be a string, got ${describeValue(v)}`);
    return undefined;
  };
  const bool = (key: string): boolean => {
    const v = values.get(key);
    if (v === undefined || typeof v === 'boolean') return v === true;
    problems.add(key, `must be true or false, got ${describeValue(v)}`);
    return false;
  };
  const limits: Record<string, number> = {};
  for (const s of PROXY_INTEGER_SETTINGS) {
    const v = values.get(s.toml) ?? s.default;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < s.min || v > s.max)
      problems.add(s.toml, `must be an integer from ${s.min} to ${s.max}, got ${describeValue(v)}`);
    else limits[s.toml] = v;
  }
  const addrApi = str('proxy_addr_api');
  let listen: HostPort | null = null;
  if (addrApi === undefined)
    problems.add('proxy_addr_api', 'is required: "host:port" clients reach the proxy at');
  else {
    const parsed = parseHostPort(addrApi);
    if (!parsed.ok) problems.add('proxy_addr_api', `"${addrApi}" ${parsed.reason}`);
    else listen = parsed.value;
  }
  const bindHost = str('listen_addr_api');
  if (bindHost !== undefined && listen !== null) {
    const parsed = parseBindHost(bindHost);
    if (!parsed.ok) problems.add('listen_addr_api', `"${bindHost}" ${parsed.reason}`);
    else listen = { host: parsed.value, port: listen.port };
  }
  const nodes = clusterNodes(values.get('nodes'), problems);
  const secretApi = secret('secret_api', str('secret_api'), true, problems);
  const secretApiCluster = secret('secret_api_cluster', str('secret_api_cluster'), false, problems);
  const certFile = str('tls_api_cert');
  const keyFile = str('tls_api_key');
  if ((certFile === undefined) !== (keyFile === undefined))
    problems.add('tls_api_cert', 'tls_api_cert and tls_api_key go together');
  const auto = bool('tls_auto_certificates');
  const tlsCluster = bool('tls_cluster');
  const caFile = str('tls_cluster_ca');
  const entry = limits.entry_bytes_max;
  const frame = limits.frame_bytes_max;
  if (entry !== undefined && frame !== undefined && entry + FRAME_HEADROOM_BYTES > frame)
    problems.add('frame_bytes_max', `${frame} must be at least entry_bytes_max + ${FRAME_HEADROOM_BYTES}`);
  const unauth = limits.unauthenticated_connections_max;
  const conns = limits.api_connections_max;
  if (unauth !== undefined && conns !== undefined && unauth >= conns)
    problems.add('unauthenticated_connections_max', `${unauth} must be below api_connections_max (${conns})`);
  if (listen === null || addrApi === undefined || secretApi === undefined || nodes === null) return null;
  return {
    addrApi,
    listen,
    nodes,
    secretApi,
    secretApiCluster: secretApiCluster ?? secretApi,
    tlsApi:
      certFile !== undefined && keyFile !== undefined ? { certFile, keyFile } : auto ? 'self-signed' : null,
    tlsCluster: caFile !== undefined ? { caFile } : tlsCluster,
    limits,
  };
}

function secret(
  key: string,
  value: string | undefined,
  required: boolean,
  problems: ConfigProblems,
): string | undefined {
  if (value === undefined) {
    if (required) problems.add(key, `is required (at least ${SECRET_CHARS_MIN} characters)`);
    return undefined;
  }
  if (value.length < SECRET_CHARS_MIN) {
    problems.add(key, `must be at least ${SECRET_CHARS_MIN} characters, got ${value.length}`);
    return undefined;
  }
  return value;
}

/**
 * `nodes`: API addresses, or the node entries of a node's config (`"<id> <raft> <api>"` or
 * `{ id, addr_raft, addr_api }`).
 */
function clusterNodes(value: unknown, problems: ConfigProblems): string[] | null {
  if (value === undefined) {
    problems.add('nodes', "is required: the cluster's API addresses");
    return null;
  }
  if (!Array.isArray(value) || value.length === 0 || value.length > NODES_MAX) {
    problems.add('nodes', `must be a list of 1 to ${NODES_MAX} API addresses, got ${describeValue(value)}`);
    return null;
  }
  const out: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    // A node config's table entry ({ id, addr_raft, addr_api }): its API address.
    if (isPlainTable(item)) {
      const table = parseNodeTable(item);
      if (!table.ok) {
        problems.add(`nodes[${i}]`, `a table: ${table.reason}`);
        continue;
      }
      out.push(...apiAddressOf(table.value.addrApi, i, problems));
      continue;
    }
    if (typeof item !== 'string') {
      problems.add(
        `nodes[${i}]`,
        `must be an API address string (or a node entry), got ${describeValue(item)}`,
      );
      continue;
    }
    const entry = /\s/.test(item.trim()) ? parseNodeEntry(item) : null;
    if (entry !== null && !entry.ok) {
      problems.add(`nodes[${i}]`, `"${item}": ${entry.reason}`);
      continue;
    }
    out.push(...apiAddressOf(entry === null ? item.trim() : entry.value.addrApi, i, problems));
  }
  return out.length === value.length ? out : null;
}

/** [addr] when it is a valid API address, else [] with the problem reported. */
function apiAddressOf(addr: string, i: number, problems: ConfigProblems): string[] {
  try {
    parseApiAddress(addr);
    return [addr];
  } catch (e) {
    problems.add(`nodes[${i}]`, e instanceof Error ? e.message.replace(/^connect: /, '') : String(e));
    return [];
  }
}
