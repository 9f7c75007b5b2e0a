/**
 * Turns the `tls` option into Node's server and client options. TLS 1.3 only: it is what the
 * handshake's channel binding (RFC 8446 exporter) is specified against, and every supported
 * Node speaks it.
 */

import type { ConnectionOptions, TlsOptions } from 'node:tls';
import { readPemFile } from './bounded-file.js';
import { selfSignedCertificate } from './self-signed.js';
import type { TransportTls } from './transport-options.js';

export interface TlsMaterial {
  readonly server: TlsOptions;
  /** Spread into `tls.connect` together with host and port. */
  readonly client: ConnectionOptions;
}

export async function loadTlsMaterial(tls: TransportTls, handshakeTimeoutMs: number): Promise<TlsMaterial> {
  const common = { minVersion: 'TLSv1.3' as const };
  if (tls === 'self-signed') {
    const { certPem, keyPem } = await selfSignedCertificate();
    return {
      server: { ...common, cert: certPem, key: keyPem, handshakeTimeout: handshakeTimeoutMs },
      // Nobody can vouch for a self-signed certificate; the secret handshake, bound to this TLS
      // session, authenticates the peer instead (protocol/handshake.ts).
      client: { ...common, rejectUnauthorized: false },
    };
  }
  const [cert, key, ca] = await Promise.all([
    readPem(tls.certFile, 'certFile'),
    readPem(tls.keyFile, 'keyFile'),
    tls.caFile === undefined ? Promise.resolve(undefined) : readPem(tls.caFile, 'caFile'),
  ]);
  return {
    server: { ...common, cert, key, handshakeTimeout: handshakeTimeoutMs },
    client:
      ca === undefined
        ? { ...common, rejectUnauthorized: true }
        : { ...common, ca, rejectUnauthorized: true },
  };
}

async function readPem(file: string, what: string): Promise<string> {
  return readPemFile(file, `tls.${what}`).toString('utf8');
}
