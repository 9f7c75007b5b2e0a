/** A node's (or a proxy's) API address as users write it. */
import { HiqliteError } from '../lib/errors.js';
import { parseHostPort } from '../node/config/config-address.js';

/**
 * A node's API address in the forms users paste: "host:port", "[::1]:port", or a URL
 * ("http://127.0.0.1:8200", "https://db.example:8200/"), as `hiqlite dev` prints it. An https
 * URL asks for TLS.
 */
export function parseApiAddress(addr: string): { host: string; port: number; tls: boolean | null } {
  let text = addr.trim();
  let tls: boolean | null = null;
  const scheme = /^([a-z]+):\/\//i.exec(text);
  if (scheme !== null) {
    const name = (scheme[1] as string).toLowerCase();
    if (name !== 'http' && name !== 'https')
      throw invalidAddress(addr, `has scheme "${name}://"; use host:port, http:// or https://`);
    tls = name === 'https';
    text = text.slice(scheme[0].length).replace(/\/+$/, '');
    if (text.includes('/')) throw invalidAddress(addr, 'has a path; give only the host and port');
  }
  const parsed = parseHostPort(text);
  if (!parsed.ok) throw invalidAddress(addr, parsed.reason);
  return { host: parsed.value.host, port: parsed.value.port, tls };
}

function invalidAddress(addr: string, reason: string): HiqliteError {
  return new HiqliteError('HQL_INVALID_CONFIG', `connect: "${addr}" ${reason}`, { retryable: false });
}
