/**
 * TLS files are read with a bound (PEM_FILE_BYTES_MAX): a certificate, key or CA path that names
 * an endless file (/dev/zero, /dev/urandom) or a huge one is HQL_INVALID_CONFIG naming the key,
 * where the whole file was read into memory before (a process filling gigabytes until it died).
 * A start() that fails there closes what it opened: the SQL state machine's thread outlived it
 * and kept an application on its own thread ('main') from exiting. Material Node cannot use (the
 * key of another certificate, a file that is no PEM) is HQL_INVALID_CONFIG naming the keys by both
 * their names, not OpenSSL's own error (found from outside).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { connect, HiqliteError, start } from '../../src/index.js';
import { HiqliteProxy } from '../../src/proxy/proxy.js';
import { parseProxyConfig } from '../../src/proxy/proxy-config.js';
import { selfSignedCertificate } from '../../src/transport/self-signed.js';
import { oneNodeConfig } from '../support/one-node-config.js';

/** A proxy's configuration that trusts `caFile` for its connections to the cluster. */
function proxyToml(caFile: string): string {
  return [
    '[hiqlite]',
    'proxy_addr_api = "127.0.0.1:1"',
    'nodes = ["127.0.0.1:2"]',
    `secret_api = "${'s'.repeat(32)}"`,
    `tls_cluster_ca = ${JSON.stringify(caFile)}`,
  ].join('\n');
}

/** Message ports alive in this process (one per worker thread it started). */
function threadPorts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;
}

function refusedAsConfig(pattern: RegExp): (e: unknown) => true {
  return (e) => {
    assert.ok(e instanceof HiqliteError, String(e));
    assert.equal(e.code, 'HQL_INVALID_CONFIG', e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

describe('TLS files named by a user are read with a bound', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-tls-bounds-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  for (const lane of ['raft', 'api'] as const) {
    test(`tls.${lane}.certFile /dev/zero: HQL_INVALID_CONFIG, the node does not start`, async () => {
      const cfg = await oneNodeConfig(join(root, lane));
      const tls = { certFile: '/dev/zero', keyFile: '/dev/zero' };
      const before = threadPorts();
      await assert.rejects(
        start({ ...cfg, tls: { [lane]: tls } } as never, { thread: 'main' }),
        refusedAsConfig(/certFile .*larger than 1048576 bytes/),
      );
      // The failed start() closed what it opened: the state machine's thread (which kept the
      // process alive) is gone.
      assert.equal(threadPorts(), before);
    });
  }

  for (const lane of ['raft', 'api'] as const) {
    test(`tls.${lane}: a key that is not the certificate's, or no PEM at all: HQL_INVALID_CONFIG naming the keys`, async () => {
      const dir = join(root, `pair-${lane}`);
      const cfg = await oneNodeConfig(dir);
      const a = await selfSignedCertificate();
      const otherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
        .privateKey.export({ type: 'pkcs8', format: 'pem' })
        .toString();
      const file = (name: string, text: string) => {
        const path = join(root, `${lane}-${name}`);
        writeFileSync(path, text);
        return path;
      };
      const cert = file('cert.pem', a.certPem);
      for (const keyFile of [file('other-key.pem', otherKey), file('not-pem.txt', 'not a key')]) {
        const before = threadPorts();
        await assert.rejects(
          start({ ...cfg, tls: { [lane]: { certFile: cert, keyFile } } } as never, { thread: 'main' }),
          refusedAsConfig(
            new RegExp(
              `tls\\.${lane}\\.certFile \\(tls_${lane}_cert\\), tls\\.${lane}\\.keyFile \\(tls_${lane}_key\\): cannot be used for TLS`,
            ),
          ),
        );
        assert.equal(threadPorts(), before);
      }
    });
  }

  test('a CA file that holds no certificate: HQL_INVALID_CONFIG naming the key (client, node, proxy)', async () => {
    // OpenSSL takes such a file without a word; every handshake then failed with "unable to
    // verify the first certificate", not naming the file (found from outside).
    const a = await selfSignedCertificate();
    const notPem = join(root, 'ca-not-pem.txt');
    writeFileSync(notPem, 'this is not a certificate\n');
    const broken = join(root, 'ca-broken.pem');
    writeFileSync(broken, `${a.certPem}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`);
    for (const [caFile, why] of [
      [notPem, /holds no PEM certificate/],
      [broken, /its certificate 2 of 2 cannot be read/],
    ] as const) {
      await assert.rejects(
        connect({ nodes: ['127.0.0.1:1'], secretApi: 'x'.repeat(32), tls: { caFile } }),
        refusedAsConfig(new RegExp(`tls\\.caFile: .*${why.source}`)),
      );
      const cert = join(root, 'ca-test-cert.pem');
      const key = join(root, 'ca-test-key.pem');
      writeFileSync(cert, a.certPem);
      writeFileSync(key, a.keyPem);
      const cfg = await oneNodeConfig(join(root, `ca-node-${why.source.length}`));
      await assert.rejects(
        start({ ...cfg, tls: { raft: { certFile: cert, keyFile: key, caFile } } } as never, {
          thread: 'main',
        }),
        refusedAsConfig(new RegExp(`tls\\.raft\\.caFile \\(tls_raft_ca\\): ${why.source}`)),
      );
      assert.throws(
        () => new HiqliteProxy(parseProxyConfig(proxyToml(caFile), {}), pino({ level: 'silent' })),
        refusedAsConfig(new RegExp(`tls_cluster_ca .*${why.source}`)),
      );
    }
  });

  test('connect({ tls: { caFile: "/dev/zero" } }): HQL_INVALID_CONFIG naming tls.caFile', async () => {
    await assert.rejects(
      connect({ nodes: ['127.0.0.1:1'], secretApi: 'x'.repeat(32), tls: { caFile: '/dev/zero' } }),
      refusedAsConfig(/tls\.caFile: cannot be read: it is larger than 1048576 bytes/),
    );
  });
});
