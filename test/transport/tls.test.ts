import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { selfSignedCertificate } from '../../src/transport/self-signed.js';
import { heartbeat, mesh, nodeStarter, sleep, waitFor } from './helpers.js';

const node = nodeStarter();
const dir = mkdtempSync(join(tmpdir(), 'hiqlite-tls-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('TLS', () => {
  test("tls: 'self-signed' carries messages both ways", async () => {
    const a = await node(601, { tls: 'self-signed' });
    const b = await node(602, { tls: 'self-signed' });
    await mesh(a, b);
    a.transport.send('sql', heartbeat(a.id, b.id, 1));
    b.transport.send('cache', heartbeat(b.id, a.id, 2));
    await waitFor(() => a.received.length === 1 && b.received.length === 1, 'delivered over TLS');
    assert.deepEqual(b.received[0], { groupId: 'sql', message: heartbeat(a.id, b.id, 1) });
    assert.deepEqual(a.received[0], { groupId: 'cache', message: heartbeat(b.id, a.id, 2) });
  });

  test('certificate files verified against a CA file', async () => {
    const certFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    // The self-signed certificate (SAN IP:127.0.0.1) as the node's certificate and as its CA.
    const { certPem, keyPem } = await selfSignedCertificate();
    writeFileSync(certFile, certPem);
    writeFileSync(keyFile, keyPem);
    const tls = { certFile, keyFile, caFile: certFile };
    const a = await node(611, { tls });
    const b = await node(612, { tls });
    await mesh(a, b);
    a.transport.send('sql', heartbeat(a.id, b.id, 7));
    await waitFor(() => b.received.length === 1, 'delivered over verified TLS');
  });

  test('a man in the middle with his own certificate fails the handshake (channel binding)', async () => {
    const b = await node(632, { tls: 'self-signed' });
    // The proxy terminates A's TLS session with a certificate of its own and opens a second one
    // to B, relaying the decrypted bytes: in self-signed mode nobody checks certificates, so
    // only the binding of the handshake proofs to each TLS session can expose it.
    const { certPem, keyPem } = await selfSignedCertificate();
    const sockets = new Set<TLSSocket>();
    const proxy = createTlsServer({ cert: certPem, key: keyPem, minVersion: 'TLSv1.3' }, (fromA) => {
      const toB = tlsConnect({ host: b.address.host, port: b.address.port, rejectUnauthorized: false });
      for (const s of [fromA, toB]) {
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          fromA.destroy();
          toB.destroy();
        });
      }
      fromA.pipe(toB);
      toB.pipe(fromA);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyAddress = proxy.address();
    assert.ok(proxyAddress !== null && typeof proxyAddress === 'object');
    try {
      const a = await node(631, { tls: 'self-signed' });
      b.transport.setPeer(a.id, a.address);
      a.transport.setPeer(b.id, { host: '127.0.0.1', port: proxyAddress.port });
      for (let i = 0; i < 5; i++) {
        a.transport.send('sql', heartbeat(a.id, b.id, i));
        await sleep(20);
      }
      await waitFor(
        () => b.logger.warnings().some((w) => String(w.obj.detail).includes('bad proof')),
        'B refused the relayed proof',
      );
      assert.deepEqual(b.received, []);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });

  test('a plain-TCP node cannot talk to a TLS node', async () => {
    // A plain client waits for a challenge while the TLS server waits for a ClientHello: only
    // the handshake deadline ends that, so keep it short.
    const limits = { handshakeTimeoutMs: 300 };
    const a = await node(621, { limits });
    const b = await node(622, { tls: 'self-signed', limits });
    a.transport.setPeer(b.id, b.address);
    b.transport.setPeer(a.id, a.address);
    for (let i = 0; i < 5; i++) {
      a.transport.send('sql', heartbeat(a.id, b.id, i));
      b.transport.send('sql', heartbeat(b.id, a.id, i));
      await sleep(20);
    }
    await waitFor(
      () => a.unreachable.includes(b.id) && b.unreachable.includes(a.id),
      'both report unreachable',
    );
    assert.deepEqual(a.received, []);
    assert.deepEqual(b.received, []);
  });
});
