/**
 * Strangers flooding the API port with connections they never authenticate must not shut real
 * clients out (found from outside: 50 loops opening connections, 5 of 5 new clients refused).
 * The handshake gate closes the oldest unauthenticated connections near the port's cap, even
 * within their grace.
 */
import assert from 'node:assert/strict';
import { type Socket, connect as tcpConnect } from 'node:net';
import { describe, test } from 'node:test';
import { connect } from '../../src/index.js';
import { nodeAndRemote, TEST_SECRETS } from '../support/one-node-config.js';

describe('a flood of unauthenticated connections on the API port', () => {
  const f = nodeAndRemote('hq-flood-', { apiConnectionsMax: 64, unauthenticatedConnectionsMax: 16 });

  test('new clients still connect and are served while it lasts', async () => {
    const addr = f.cfg.nodes[0]!.addrApi;
    const [host, port] = [
      addr.slice(0, addr.lastIndexOf(':')),
      Number(addr.slice(addr.lastIndexOf(':') + 1)),
    ];
    const sockets = new Set<Socket>();
    let flooding = true;
    let opened = 0;
    const flood = (async () => {
      // Bounded: at most 3,000 connections, 20 at a time per turn, until the test ends.
      while (flooding && opened < 3_000) {
        for (let i = 0; i < 20; i++) {
          const s = tcpConnect({ host, port });
          s.on('error', () => {});
          s.on('close', () => sockets.delete(s));
          sockets.add(s);
          opened++;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 300)); // the port is full of strangers
      let served = 0;
      for (let i = 0; i < 5; i++) {
        const client = await connect({
          nodes: [addr],
          secretApi: TEST_SECRETS.secretApi,
          connectTimeoutMs: 3_000,
        });
        try {
          assert.deepEqual(await client.query('SELECT 1 AS one'), [{ one: 1 }]);
          served++;
        } finally {
          await client.close();
        }
      }
      assert.equal(served, 5);
      assert.ok(opened > 200, `the flood opened ${opened} connections`);
    } finally {
      flooding = false;
      await flood;
      for (const s of sockets) s.destroy();
    }
  });
});
