/**
 * Turns the `tls` option into Node's server and client options. TLS 1.3 only: it is what the
 * handshake's channel binding (RFC 8446 exporter) is specified against, and every supported
 * Node speaks it.
 */

import { X509Certificate } from 'node:crypto';
import { type ConnectionOptions, createSecureContext, type TlsOptions } from 'node:tls';
import { HiqliteError } from '../lib/errors.js';
import { readPemFile } from './bounded-file.js';
import { selfSignedCertificate } from './self-signed.js';
import type { TransportTls } from './transport-options.js';

export interface TlsMaterial {
  readonly server: TlsOptions;
  /** Spread into `tls.connect` together with host and port. */
  readonly client: ConnectionOptions;
}

/** The TLS settings of a port, as a user names them: in an object and in a TOML file. */
export type TlsLane = 'raft' | 'api';

/** `tls.api.certFile (tls_api_cert)`: both names, the object's and the TOML file's. */
export function tlsKeyName(lane: TlsLane, file: 'certFile' | 'keyFile' | 'caFile'): string {
  return `tls.${lane}.${file} (tls_${lane}_${file.slice(0, -4)})`;
}

/**
 * Refuses TLS material Node cannot use (a key that is not the certificate's, a file that is no
 * PEM certificate or key) as HQL_INVALID_CONFIG naming the keys, before any server is made: it
 * was OpenSSL's own error, not a HiqliteError, naming no key.
 */
export function checkTlsMaterial(lane: TlsLane, pem: { cert: string; key: string; ca?: string }): void {
  const caProblem = pem.ca === undefined ? null : caFileProblem(pem.ca);
  if (caProblem !== null)
    throw new HiqliteError('HQL_INVALID_CONFIG', `${tlsKeyName(lane, 'caFile')}: ${caProblem}`, {
      retryable: false,
    });
  try {
    createSecureContext({ minVersion: 'TLSv1.3', ...pem });
  } catch (e) {
    const names = [tlsKeyName(lane, 'certFile'), tlsKeyName(lane, 'keyFile')];
    if (pem.ca !== undefined) names.push(tlsKeyName(lane, 'caFile'));
    throw new HiqliteError(
      'HQL_INVALID_CONFIG',
      `${names.join(', ')}: cannot be used for TLS: ${e instanceof Error ? e.message : String(e)} (is the key the certificate's, both in PEM?)`,
      { retryable: false },
    );
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * What is wrong with a CA file's text, or null: it holds no PEM certificate, or one that does not
 * parse. OpenSSL takes such a file without a word and every handshake then fails with "unable to
 * verify the first certificate", which does not say that the CA file is at fault (found by an
 * outside probe).
 */
export function caFileProblem(pem: string): string | null {
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0)
    return 'holds no PEM certificate (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)';
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (e) {
      return `its certificate ${i + 1} of ${blocks.length} cannot be read: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  return null;
}

/** A CA file a client trusts, checked before it connects: HQL_INVALID_CONFIG naming `key`. */
export function checkCaFile(file: string, key: string): void {
  const problem = caFileProblem(readPemFile(file, key).toString('utf8'));
  if (problem !== null)
    throw new HiqliteError('HQL_INVALID_CONFIG', `${key} ${JSON.stringify(file)}: ${problem}`, {
      retryable: false,
    });
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
  checkTlsMaterial('raft', ca === undefined ? { cert, key } : { cert, key, ca });
  return {
    server: { ...common, cert, key, handshakeTimeout: handshakeTimeoutMs },
    client:
      ca === undefined
        ? { ...common, rejectUnauthorized: true }
        : { ...common, ca, rejectUnauthorized: true },
  };
}

async function readPem(file: string, what: 'certFile' | 'keyFile' | 'caFile'): Promise<string> {
  return readPemFile(file, tlsKeyName('raft', what)).toString('utf8');
}
