/**
 * Addresses as written in a config: `host:port` with IPv6 in brackets (`[::1]:8100`), bind hosts
 * without a port, and the Rust project's node entries `"<id> <raft host:port> <api host:port>"`.
 * Pure syntax: nothing is resolved through DNS here.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { HostPort } from './config-types.js';

export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: string };

const HOSTNAME_LENGTH_MAX = 253;
// RFC 1123 labels; `_` is accepted because container platforms use it in service names.
const HOSTNAME_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
const LOOKS_LIKE_IPV4 = /^[0-9.]+$/;
const PORT_DIGITS = /^[0-9]{1,5}$/;

/** `"host:port"`: hostname, IPv4, or IPv6 in brackets; port 1..65535. */
export function parseHostPort(text: string): Parsed<HostPort> {
  if (text.length === 0) return fail('is empty (expected "host:port")');
  if (/\s/.test(text)) return fail('contains whitespace');
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return fail('has "[" without a closing "]"');
    host = text.slice(1, close);
    if (!isIPv6(host)) return fail(`has "${host}" in brackets, which is not an IPv6 address`);
    if (text[close + 1] !== ':') return fail('needs ":port" after the bracketed IPv6 address');
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return fail('has no port (expected "host:port")');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return fail('must put an IPv6 address in brackets, like "[::1]:8100"');
    const hostProblem = checkHostname(host);
    if (hostProblem !== null) return fail(hostProblem);
  }
  if (!PORT_DIGITS.test(portText)) return fail(`has port "${portText}", expected a number from 1 to 65535`);
  const port = Number(portText);
  if (port < 1 || port > 65535) return fail(`has port ${port}, expected a number from 1 to 65535`);
  return { ok: true, value: { host, port } };
}

/**
 * A host to bind to, without port: hostname, IPv4, or IPv6 with or without brackets (`::`,
 * `[::1]`). The result carries no brackets.
 */
export function parseBindHost(text: string): Parsed<string> {
  if (text.length === 0) return fail('is empty (expected a host or IP address)');
  if (/\s/.test(text)) return fail('contains whitespace');
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIPv6(bare)) return { ok: true, value: bare };
  if (bare.includes(':') || bare.includes('[')) {
    return fail("must be a host without a port: the port comes from this node's entry in nodes");
  }
  const problem = checkHostname(bare);
  return problem === null ? { ok: true, value: bare } : fail(problem);
}

/** `"host:port"`, IPv6 in brackets: the inverse of parseHostPort. */
export function formatHostPort(a: HostPort): string {
  return isIPv6(a.host) ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** Two addresses that compare equal here cannot both be bound by one machine. */
export function hostPortKey(a: HostPort): string {
  return `${a.host.toLowerCase()} ${a.port}`;
}

/** A node entry as the Rust project writes it: `"1 127.0.0.1:8100 127.0.0.1:8200"` (id, Raft, API). */
export function parseNodeEntry(text: string): Parsed<{ id: number; addrRaft: string; addrApi: string }> {
  const parts = text.trim().split(/\s+/);
  const [id, addrRaft, addrApi] = parts;
  if (parts.length !== 3 || id === undefined || addrRaft === undefined || addrApi === undefined) {
    return fail('expected "<id> <raft host:port> <api host:port>", like "1 127.0.0.1:8100 127.0.0.1:8200"');
  }
  if (!/^[0-9]{1,10}$/.test(id)) return fail(`has id "${id}", expected a positive integer`);
  return { ok: true, value: { id: Number(id), addrRaft, addrApi } };
}

/**
 * A node entry as a TOML inline table: `{ id = 1, addr_raft = "127.0.0.1:8100", addr_api =
 * "127.0.0.1:8200" }`, the shape of `start()`'s `nodes` (a first-hour user writes it so; the
 * string form is the Rust project's). Exactly these three keys.
 */
export function parseNodeTable(
  table: Readonly<Record<string, unknown>>,
): Parsed<{ id: number; addrRaft: string; addrApi: string }> {
  const keys = Object.keys(table);
  const unknown = keys.filter((k) => !NODE_TABLE_KEYS.includes(k));
  if (unknown.length > 0)
    return fail(`has ${unknown.map((k) => `"${k}"`).join(', ')}: a node table takes ${NODE_TABLE_FORM}`);
  const { id, addr_raft: addrRaft, addr_api: addrApi } = table;
  const missing = NODE_TABLE_KEYS.filter((k) => table[k] === undefined);
  if (missing.length > 0) return fail(`lacks ${missing.join(', ')}: a node table takes ${NODE_TABLE_FORM}`);
  if (typeof id !== 'number' && typeof id !== 'bigint')
    return fail(`has id ${JSON.stringify(String(id))}, expected a positive integer`);
  if (typeof addrRaft !== 'string' || typeof addrApi !== 'string')
    return fail(`has an address that is not a "host:port" string: a node table takes ${NODE_TABLE_FORM}`);
  return { ok: true, value: { id: Number(id), addrRaft, addrApi } };
}

/** A TOML table (not a list, not a date). */
export function isPlainTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

const NODE_TABLE_KEYS = ['id', 'addr_raft', 'addr_api'];
const NODE_TABLE_FORM = '{ id = <id>, addr_raft = "<host:port>", addr_api = "<host:port>" }';

function checkHostname(host: string): string | null {
  if (host.length === 0) return 'has an empty host';
  if (LOOKS_LIKE_IPV4.test(host)) return isIPv4(host) ? null : `has "${host}", which is not an IPv4 address`;
  if (host.length > HOSTNAME_LENGTH_MAX) return `has a host longer than ${HOSTNAME_LENGTH_MAX} characters`;
  for (const label of host.split('.')) {
    if (!HOSTNAME_LABEL.test(label)) return `has "${host}", which is not a valid host name`;
  }
  return null;
}

function fail(reason: string): { readonly ok: false; readonly reason: string } {
  return { ok: false, reason };
}
