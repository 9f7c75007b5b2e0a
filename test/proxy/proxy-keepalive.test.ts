/**
 * The proxy's connections to the nodes have the client's keepalive (cluster-link.ts uses the
 * same ApiConnection): a listener relayed by the proxy from a node that is frozen (SIGSTOP: its
 * connections stay open, no FIN, no RST) resumes on another node once the proxy's keepalive
 * finds the node dead, and loses no notification the nodes hold. Three `hiqlite serve`
 * processes and a `hiqlite proxy` process.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, type HiqliteClient } from '../../src/index.js';
import { eventually, SECRET_API, TestCluster } from '../cluster/harness.js';
import { within } from '../support/within.js';
import { Proxies } from './proxy-harness.js';

describe('proxy keepalive', () => {
  let c: TestCluster;
  let proxies: Proxies;

  before(async () => {
    c = await TestCluster.create({ nodes: 3 });
  });
  after(async () => {
    await proxies?.close();
    await c?.close();
  });

  test('a listener relayed from a frozen node (SIGSTOP) resumes on another node: nothing lost', async () => {
    const leader = await c.leader();
    const [x, y] = [1, 2, 3].filter((id) => id !== leader) as [number, number];
    // The proxy relays from the first of its nodes that answers: x.
    proxies = new Proxies(
      c.dir,
      [x, y, leader].map((id) => `127.0.0.1:${c.node(id).apiPort}`),
    );
    const proxy = await proxies.start('p', {
      toml: ['keepalive_interval_ms = 200', 'keepalive_timeout_ms = 2000'],
    });
    const writer = await c.client([leader, y]);
    const db: HiqliteClient = await connect({
      nodes: [proxy.address],
      secretApi: SECRET_API,
      requestTimeoutMs: 30_000,
      listenResumeTimeoutMs: 60_000,
    });
    try {
      const got: number[] = [];
      const it = db.listen<number>('frozen');
      const done = (async () => {
        for await (const n of it) {
          if (n.payload >= 0) got.push(n.payload);
          if (n.payload === 9) break;
        }
      })();
      // Probes (-1) until the relay is open: from then on every notification must arrive.
      await eventually('the relayed listener to be open', async () => {
        if (got.length > 0) return true;
        await writer.notify('frozen', -1);
        const text = String((await c.http(x, '/metrics')).body);
        return /^hiqlite_cache_listeners 1$/m.test(text);
      });
      for (let i = 0; i < 3; i++) await writer.notify('frozen', i);
      await eventually('the first notifications to arrive', async () => got.length === 3);
      c.pause(x);
      try {
        for (let i = 3; i < 10; i++) await writer.notify('frozen', i);
        await within(done, 60_000, 'the relayed listener resuming on another node');
        assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      } finally {
        c.resume(x);
      }
    } finally {
      await db.close();
      await writer.close();
    }
  });
});
