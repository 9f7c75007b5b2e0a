/**
 * TLS on both sides of a proxy: a cluster whose API ports speak TLS (self-signed certificates),
 * a proxy that connects to it with TLS and serves its own clients with TLS.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, HiqliteError } from '../../src/index.js';
import { SECRET_API, TestCluster } from '../cluster/harness.js';
import { Proxies, type ProxyProcess } from './proxy-harness.js';

describe('a proxy with TLS on both sides', () => {
  let c: TestCluster;
  let proxies: Proxies;
  let p: ProxyProcess;
  before(async () => {
    c = await TestCluster.create({ nodes: 3, tls: true });
    proxies = new Proxies(c.dir, c.apiAddresses());
    p = await proxies.start('proxy-tls', { toml: ['tls_auto_certificates = true', 'tls_cluster = true'] });
  });
  after(async () => {
    await proxies?.close();
    await c?.close();
  });

  test('a TLS client writes and reads through a TLS proxy of a TLS cluster', async () => {
    const db = await connect({
      nodes: [p.address],
      secretApi: SECRET_API,
      tls: true,
      requestTimeoutMs: 20_000,
    });
    try {
      await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY)');
      const w = await db.execute('INSERT INTO t (id) VALUES (1)');
      assert.deepEqual(await db.query('SELECT id FROM t', [], { minIndex: w.logIndex }), [{ id: 1 }]);
      assert.deepEqual(await db.queryConsistent('SELECT count(*) AS n FROM t'), [{ n: 1 }]);
    } finally {
      await db.close();
    }
  });

  test('a plain client is told that the proxy uses TLS', async () => {
    await assert.rejects(
      connect({ nodes: [p.address], secretApi: SECRET_API }),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_UNAVAILABLE' && /TLS/.test(e.message),
    );
  });
});
