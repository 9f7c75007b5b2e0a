/**
 * A listener that resumes further behind than its buffer holds (a remote client back after a
 * reconnect, an SSE client with Last-Event-ID) is served the ring's notifications as it reads
 * them, all of them, in order, then live ones. Found by an outside probe: a resume 300 behind
 * with a buffer of 256 ended at once with HQL_LAGGED, although the listener read promptly: the
 * whole catch-up was queued at once into the listener's bounded buffer.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ApiPush } from '../../src/protocol/api-codec.js';
import { ApiConnection, REMOTE_CLIENT_ID } from '../../src/transport/api-connection.js';
import { eventually } from '../cluster/harness.js';
import { nodeAndRemote, TEST_SECRETS } from '../support/one-node-config.js';
import { openSse } from '../support/sse.js';

const BUFFER = 10;
const BEHIND = 120;

describe('a resume further behind than the listener buffer', () => {
  const f = nodeAndRemote('hq-listen-catchup-', { cacheListenerBufferMax: BUFFER });

  test('over the API connection: every held notification, in order, then live ones; no HQL_LAGGED', async () => {
    // The node's first notifications: seqs 1 … BEHIND.
    for (let i = 0; i < BEHIND; i++) await f.remote.notify('catchup', i);
    const conn = await ApiConnection.open({
      host: '127.0.0.1',
      port: Number(f.cfg.nodes[0]!.addrApi.split(':')[1]),
      secret: TEST_SECRETS.secretApi,
      localId: REMOTE_CLIENT_ID,
      connectTimeoutMs: 3000,
      frameBytesMax: 1 << 24,
      inflightMax: 16,
    });
    try {
      const seqs: number[] = [];
      let lagged: number | null = null;
      const afterSeq = 0;
      const l = conn.listen({ op: 'listen', channel: 'catchup', afterSeq }, 5000, (p: ApiPush) => {
        if ('items' in p) for (const n of p.items) seqs.push(n.seq);
        if ('lagged' in p) lagged = p.lagged as number;
      });
      assert.equal((await l.answer).ok, true);
      await eventually('the catch-up', async () => seqs.length >= BEHIND || lagged !== null);
      await f.remote.notify('catchup', 'live');
      await eventually('the live one', async () => seqs.length >= BEHIND + 1 || lagged !== null);
      assert.equal(lagged, null, `HQL_LAGGED after ${seqs.length} of ${BEHIND}`);
      assert.deepEqual(
        seqs,
        Array.from({ length: BEHIND + 1 }, (_, i) => afterSeq + 1 + i),
      );
    } finally {
      conn.close();
    }
  });

  test('over HTTP (SSE with Last-Event-ID): the same', async () => {
    const url = `http://${f.cfg.nodes[0]!.addrApi}/listen?channel=sse-catchup`;
    const headers = { 'X-API-SECRET': TEST_SECRETS.secretApi };
    const live = await openSse(url, headers);
    assert.equal((await live.next()).event, 'listening');
    await f.remote.notify('sse-catchup', 'first');
    const firstEvent = await live.next();
    live.close();
    for (let i = 1; i < BEHIND; i++) await f.remote.notify('sse-catchup', i);
    const again = await openSse(url, { ...headers, 'Last-Event-ID': String(Number(firstEvent.id) - 1) });
    assert.equal((await again.next()).event, 'listening');
    const payloads: unknown[] = [];
    // Bounded: BEHIND events, each read with a deadline (openSse).
    for (let i = 0; i < BEHIND; i++) {
      const e = await again.next();
      assert.equal(e.event, 'notification', `event ${i}: ${e.event} ${e.data}`);
      payloads.push((JSON.parse(e.data) as { payload: unknown }).payload);
    }
    again.close();
    assert.deepEqual(payloads, ['first', ...Array.from({ length: BEHIND - 1 }, (_, i) => i + 1)]);
  });
});
