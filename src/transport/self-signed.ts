/**
 * A self-signed certificate for `tls: 'self-signed'` (tests, development). Node has no API to
 * create X.509 certificates, so this runs the `openssl` binary; without it the transport
 * refuses to start with a clear error (give certFile/keyFile instead). One certificate is made
 * per process and shared by every transport in it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { invalidConfig } from './transport-errors.js';

export interface CertificatePem {
  readonly certPem: string;
  readonly keyPem: string;
}

let cached: Promise<CertificatePem> | null = null;

export function selfSignedCertificate(): Promise<CertificatePem> {
  if (cached === null) {
    cached = generate();
    // A failure is not cached: the next start may find openssl installed.
    cached.catch(() => {
      cached = null;
    });
  }
  return cached;
}

async function generate(): Promise<CertificatePem> {
  const dir = await mkdtemp(join(tmpdir(), 'hiqlite-cert-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    const args = [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '3650',
      '-subj',
      '/CN=hiqlite-self-signed',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ];
    await new Promise<void>((resolve, reject) => {
      execFile('openssl', args, { timeout: 30_000 }, (err, _stdout, stderr) => {
        if (err === null) return resolve();
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        reject(
          invalidConfig(
            missing
              ? "tls: 'self-signed' needs the openssl binary on PATH, which was not found; give certFile and keyFile"
              : `tls: openssl could not create a self-signed certificate: ${String(stderr).trim() || err.message}`,
          ),
        );
      });
    });
    return { certPem: await readFile(certFile, 'utf8'), keyPem: await readFile(keyFile, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
