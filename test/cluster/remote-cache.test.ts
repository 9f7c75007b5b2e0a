/**
 * The cache API of a remote client (`connect()`) against three `hiqlite serve` processes, and the
 * protocol under it: caches, counters, notify/listen, locks, as an embedded node has them; a
 * listener that resumes after its node was killed (-9), or frozen (SIGSTOP, found dead by the
 * keepalive), without losing a notification the nodes still hold; a resume from a seq the nodes
 * no longer hold is told how many it missed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type HiqliteClient, HiqliteError } from '../../src/index.js';
import type { ApiPush } from '../../src/protocol/api-codec.js';
import { ApiConnection, REMOTE_CLIENT_ID } from '../../src/transport/api-connection.js';
import { openSse } from '../support/sse.js';
import { within } from '../support/within.js';
import { eventually, SECRET_API, TestCluster } from './harness.js';

/** Notifications every node keeps for resuming listeners (small, so a test can outrun it). */
const RING = 8;
const ENTRY_BYTES_MAX = 65_536;
const VALUE_BYTES_MAX = 16_384;

/** The listeners a node holds (its `/metrics`), local and remote. */
async function listenersOn(cluster: TestCluster, id: number): Promise<number> {
  const text = String((await cluster.http(id, '/metrics')).body);
  const m = /^hiqlite_cache_listeners (\d+)$/m.exec(text);
  assert.ok(m !== null, 'hiqlite_cache_listeners is exported');
  return Number(m[1]);
}

/** Waiters queued on locks, replicated (seen on node `id`). */
async function lockWaitersOn(cluster: TestCluster, id: number): Promise<number> {
  const text = String((await cluster.http(id, '/metrics')).body);
  const m = /^hiqlite_cache_lock_waiters (\d+)$/m.exec(text);
  assert.ok(m !== null, 'hiqlite_cache_lock_waiters is exported');
  return Number(m[1]);
}

describe('remote client: the cache API over the API port', () => {
  let cluster: TestCluster;
  const on = new Map<number, HiqliteClient>();
  const db = (id: number) => on.get(id) as HiqliteClient;

  before(async () => {
    cluster = await TestCluster.create({
      nodes: 3,
      toml: [
        `cache_notifications_ring_max = ${RING}`,
        `entry_bytes_max = ${ENTRY_BYTES_MAX}`,
        `cache_value_bytes_max = ${VALUE_BYTES_MAX}`,
      ].join('\n'),
    });
    for (const id of [1, 2, 3]) on.set(id, await cluster.client([id]));
  });

  after(async () => {
    await cluster?.close();
  });

  test('caches: a write through any node is read on every node; TTL, replace, putIfAbsent, entries, clear', async () => {
    const sessions = db(2).cache<{ user: number }>('sessions');
    await sessions.put('s1', { user: 7 });
    await db(3).cache('sessions').put('short', 'x', { ttlMs: 300 });
    for (const id of [1, 2, 3]) {
      assert.deepEqual(await db(id).cache('sessions').get('s1', { consistency: 'linearizable' }), {
        user: 7,
      });
    }
    // The writer's node has applied its own write: a local read there sees it.
    assert.deepEqual(await sessions.get('s1'), { user: 7 });
    assert.deepEqual(await sessions.replace('s1', { user: 8 }), { user: 7 });
    assert.equal(await sessions.putIfAbsent('s1', { user: 9 }), false);
    assert.equal(await sessions.putIfAbsent('s2', { user: 9 }), true);
    const bytes = new Uint8Array([0, 1, 2, 255]);
    await db(1).cache('blobs').put('b', bytes);
    assert.deepEqual(await db(1).cache('blobs').get('b', { consistency: 'linearizable' }), bytes);
    await eventually('the TTL to end the entry everywhere', async () => {
      for (const id of [1, 2, 3])
        if ((await db(id).cache('sessions').get('short', { consistency: 'linearizable' })) !== null)
          return false;
      return true;
    });
    const entries = await db(2).cache('sessions').entries();
    assert.deepEqual(entries.map(([k]) => k).sort(), ['s1', 's2']);
    assert.equal(await sessions.delete('s2'), true);
    assert.equal(await sessions.delete('s2'), false);
    assert.equal(await db(3).cache('blobs').clear(), 1);
  });

  test('getRemove: of concurrent takers on every node exactly one gets the value', async () => {
    for (let round = 0; round < 3; round++) {
      await db(1).cache('tokens').put(`t${round}`, 'once');
      const got = await Promise.all(
        [1, 2, 3, 1, 2, 3].map((id) => db(id).cache('tokens').getRemove(`t${round}`)),
      );
      assert.deepEqual(
        got.filter((v) => v !== null),
        ['once'],
      );
    }
  });

  test('counters: concurrent adds through every node sum up exactly', async () => {
    await Promise.all(
      [1, 2, 3].flatMap((id) => Array.from({ length: 20 }, () => db(id).counter('hits').add('k', 5))),
    );
    for (const id of [1, 2, 3])
      assert.equal(await db(id).counter('hits').get('k', { consistency: 'linearizable' }), 300n);
    await db(1).counter('hits').set('k', 9_007_199_254_740_993n);
    assert.equal(await db(2).counter('hits').add('k', 1), 9_007_199_254_740_994n);
    assert.equal(await db(3).counter('hits').delete('k'), true);
  });

  test('notify: a listener on every node receives every notification once, in log order', async () => {
    const listeners = [1, 2, 3].map((id) => db(id).listen<number>('events'));
    // A notification of another channel is not delivered to these.
    const sent: number[] = [];
    const received = listeners.map(async (it) => {
      const got: number[] = [];
      let lastIndex = 0;
      for await (const n of it) {
        assert.ok(n.index > lastIndex, 'log order');
        lastIndex = n.index;
        got.push(n.payload);
        if (got.length === 30) break;
      }
      return got;
    });
    // Listeners are open once their node holds them: a notification after that reaches them.
    // (An iterator subscribes on its first next(), which the loops above have called.)
    await eventually('every node to hold its listener', async () => {
      for (const id of [1, 2, 3]) if ((await listenersOn(cluster, id)) < 1) return false;
      return true;
    });
    for (let i = 0; i < 30; i++) {
      const from = (i % 3) + 1;
      if (i % 5 === 0) await db(from).notify('other', i);
      await db(from).notify('events', i);
      sent.push(i);
    }
    for (const got of await Promise.all(received)) assert.deepEqual(got, sent);
  });

  test('locks: one holder at a time, waiters first come first served, fencing tokens increase', async () => {
    const first = await db(1).lock('job', { leaseMs: 5000 });
    assert.equal(await db(2).tryLock('job'), null);
    const order: string[] = [];
    const second = db(2)
      .lock('job', { leaseMs: 5000 })
      .then((l) => {
        order.push('second');
        return l;
      });
    await eventually('node 2 queued on the lock', async () => (await lockWaitersOn(cluster, 1)) === 1);
    const third = db(3)
      .lock('job', { leaseMs: 5000 })
      .then((l) => {
        order.push('third');
        return l;
      });
    await eventually('node 3 queued behind node 2', async () => (await lockWaitersOn(cluster, 1)) === 2);
    await first.release();
    const l2 = await second;
    assert.ok(l2.token > first.token, 'fencing token increases');
    await l2.release();
    const l3 = await third;
    assert.ok(l3.token > l2.token, 'fencing token increases');
    assert.deepEqual(order, ['second', 'third']);
    // A wait that runs out is HQL_TIMEOUT, and leaves no waiter behind.
    await assert.rejects(db(1).lock('job', { waitMs: 300 }), (e: unknown) => {
      return e instanceof HiqliteError && e.code === 'HQL_TIMEOUT';
    });
    // An aborted wait is HQL_ABORTED; its node withdraws the waiter (it never holds the lock).
    const ac = new AbortController();
    const aborted = db(2).lock('job', { signal: ac.signal });
    setTimeout(() => ac.abort(), 200);
    await assert.rejects(aborted, (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_ABORTED');
    await l3.release();
    const after = await eventually('the lock to be free after the release', () => db(3).tryLock('job'));
    assert.ok(after.token > l3.token);
    await after.release();
  });

  test('a listener resumes after its node is killed (-9), losing nothing the nodes still hold', async () => {
    const leader = await cluster.leader();
    const [x, y] = [1, 2, 3].filter((id) => id !== leader) as [number, number];
    // The listeners of earlier tests are gone, so the count below is this one's.
    await eventually('earlier listeners to be closed', async () => {
      return (await listenersOn(cluster, x)) + (await listenersOn(cluster, y)) === 0;
    });
    const listenerClient = await cluster.client([x, y], { listenResumeTimeoutMs: 30_000 });
    const it = listenerClient.listen<number>('resume');
    const got: Array<{ payload: number; index: number }> = [];
    const done = (async () => {
      for await (const n of it) {
        got.push({ payload: n.payload, index: n.index });
        if (n.payload === 9) break;
      }
    })();
    await eventually('node x or y to hold the listener', async () => {
      return (await listenersOn(cluster, x)) + (await listenersOn(cluster, y)) >= 1;
    });
    const writer = db(leader);
    for (let i = 0; i < 3; i++) await writer.notify('resume', i);
    await eventually('the first notifications to arrive', async () => got.length === 3);
    await cluster.kill(x);
    // Sent while the listener has no connection (fewer than the ring holds).
    for (let i = 3; i < 10; i++) await writer.notify('resume', i);
    await done;
    assert.deepEqual(
      got.map((n) => n.payload),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    for (let i = 1; i < got.length; i++)
      assert.ok((got[i] as { index: number }).index > (got[i - 1] as { index: number }).index);
    await cluster.start(x);
    await cluster.dropClient(listenerClient);
  });

  test('a listener whose node is frozen (SIGSTOP: no FIN, no RST) resumes on another node by the keepalive, losing nothing', async () => {
    const leader = await cluster.leader();
    const [x, y] = [1, 2, 3].filter((id) => id !== leader) as [number, number];
    await eventually('earlier listeners to be closed', async () => {
      return (await listenersOn(cluster, x)) + (await listenersOn(cluster, y)) === 0;
    });
    // x first: the listener is opened on x. Without the keepalive its connection to a frozen x
    // would stay open, and silent, forever.
    const listenerClient = await cluster.client([x, y], {
      listenResumeTimeoutMs: 60_000,
      keepaliveIntervalMs: 200,
      keepaliveTimeoutMs: 2000,
    });
    const it = listenerClient.listen<number>('frozen');
    const got: Array<{ payload: number; index: number }> = [];
    const done = (async () => {
      for await (const n of it) {
        got.push({ payload: n.payload, index: n.index });
        if (n.payload === 9) break;
      }
    })();
    await eventually('node x to hold the listener', async () => (await listenersOn(cluster, x)) === 1);
    const writer = db(leader);
    for (let i = 0; i < 3; i++) await writer.notify('frozen', i);
    await eventually('the first notifications to arrive', async () => got.length === 3);
    cluster.pause(x);
    try {
      for (let i = 3; i < 10; i++) await writer.notify('frozen', i);
      await within(done, 60_000, 'the listener resuming on another node');
      assert.deepEqual(
        got.map((n) => n.payload),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      );
      for (let i = 1; i < got.length; i++)
        assert.ok((got[i] as { index: number }).index > (got[i - 1] as { index: number }).index);
    } finally {
      cluster.resume(x);
    }
    await cluster.dropClient(listenerClient);
  });

  test('a resume from a seq the nodes no longer hold is told how many were missed; one they hold is replayed', async () => {
    // On the leader, which no test restarted: it has applied everything it acknowledged.
    const leader = await cluster.leader();
    const first = await db(leader).notify('ring', 'marker');
    for (let i = 0; i < RING + 4; i++) await db(leader).notify('ring', i);
    const conn = await ApiConnection.open({
      host: '127.0.0.1',
      port: cluster.node(leader).apiPort,
      secret: SECRET_API,
      localId: REMOTE_CLIENT_ID,
      connectTimeoutMs: 3000,
      frameBytesMax: 1 << 24,
      inflightMax: 16,
    });
    try {
      // The seq of the marker: read back from a replay of what the ring holds.
      const pushes: ApiPush[] = [];
      const latest = conn.listen({ op: 'listen', channel: null, afterSeq: 0 }, 5000, (p) => pushes.push(p));
      const answer = await latest.answer;
      assert.equal(answer.ok, true);
      await eventually('the too-old resume to be answered with lagged', async () => pushes.length > 0);
      const lagged = pushes[0] as { lagged?: number };
      assert.equal(typeof lagged.lagged, 'number');
      // Everything after seq 0 was missed: the gone ones, and the RING held after them, which a
      // listener that ends there does not get either.
      const afterSeqMissed = await seqOfNewest(conn);
      assert.equal(lagged.lagged, afterSeqMissed);
      // A resume a few notifications back is replayed from the ring, in order.
      const replay: number[] = [];
      const r = conn.listen({ op: 'listen', channel: 'ring', afterSeq: afterSeqMissed - 3 }, 5000, (p) => {
        if ('items' in p) for (const n of p.items) replay.push(n.seq);
      });
      assert.equal((await r.answer).ok, true);
      await eventually('the replay', async () => replay.length === 3);
      assert.deepEqual(replay, [afterSeqMissed - 2, afterSeqMissed - 1, afterSeqMissed]);
      assert.ok(first > 0);
    } finally {
      conn.close();
    }
  });

  test('HTTP: GET/PUT/DELETE /cache/{name}/{key} with JSON or raw bytes, TTL, if_absent; the same values as the client', async () => {
    const secret = { 'X-API-SECRET': SECRET_API };
    const json = { ...secret, 'content-type': 'application/json' };
    let r = await cluster.http(1, '/cache/web/user%2F1?ttl_ms=60000', {
      method: 'PUT',
      headers: json,
      body: '{"name":"ada","tags":[1,2]}',
    });
    assert.deepEqual(r, { status: 200, body: { ok: true, value: null } });
    r = await cluster.http(2, '/cache/web/user%2F1?consistency=linearizable', { headers: secret });
    assert.deepEqual(r, { status: 200, body: { ok: true, value: { name: 'ada', tags: [1, 2] } } });
    assert.deepEqual(await db(3).cache('web').get('user/1', { consistency: 'linearizable' }), {
      name: 'ada',
      tags: [1, 2],
    });
    // Raw bytes in, bytes out (JSON gives them as $blob).
    const raw = await fetch(`http://127.0.0.1:${cluster.node(1).apiPort}/cache/web/raw`, {
      method: 'PUT',
      headers: { ...secret, 'content-type': 'application/octet-stream' },
      body: new Uint8Array([1, 2, 3, 250]),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(raw.status, 200);
    assert.deepEqual(
      await db(1).cache('web').get('raw', { consistency: 'linearizable' }),
      new Uint8Array([1, 2, 3, 250]),
    );
    r = await cluster.http(1, '/cache/web/raw', { headers: secret });
    assert.deepEqual(r.body, { ok: true, value: { $blob: Buffer.from([1, 2, 3, 250]).toString('base64') } });
    const bytes = await fetch(`http://127.0.0.1:${cluster.node(1).apiPort}/cache/web/raw`, {
      headers: { ...secret, accept: 'application/octet-stream' },
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(bytes.headers.get('content-type'), 'application/octet-stream');
    assert.deepEqual(new Uint8Array(await bytes.arrayBuffer()), new Uint8Array([1, 2, 3, 250]));
    // A client's value is read over HTTP as JSON.
    await db(2).cache('web').put('fromClient', { n: 1 });
    r = await cluster.http(2, '/cache/web/fromClient', { headers: secret });
    assert.deepEqual(r.body, { ok: true, value: { n: 1 } });
    // TTL by header; if_absent.
    r = await cluster.http(1, '/cache/web/short', {
      method: 'PUT',
      headers: { ...json, 'X-TTL-MS': '300' },
      body: '1',
    });
    assert.equal(r.status, 200);
    r = await cluster.http(1, '/cache/web/short?if_absent=true', { method: 'PUT', headers: json, body: '2' });
    assert.deepEqual(r.body, { ok: true, value: { stored: false } });
    await eventually('the TTL of the header to end the entry', async () => {
      const g = await cluster.http(1, '/cache/web/short?consistency=linearizable', { headers: secret });
      return g.status === 404 && (g.body as { error: { code: string } }).error.code === 'HQL_NOT_FOUND';
    });
    r = await cluster.http(3, '/cache/web/raw', { method: 'DELETE', headers: secret });
    assert.deepEqual(r.body, { ok: true, value: { deleted: true } });
    r = await cluster.http(3, '/cache/web', { method: 'DELETE', headers: secret });
    assert.deepEqual(r.body, { ok: true, value: { removed: 2 } });
  });

  test('HTTP: a wrong secret, malformed and huge input get typed errors, and the node keeps serving', async () => {
    const secret = { 'X-API-SECRET': SECRET_API };
    const json = { ...secret, 'content-type': 'application/json' };
    const code = (r: { body: unknown }) => (r.body as { error?: { code?: string } }).error?.code;
    let r = await cluster.http(1, '/cache/web/k', { headers: { 'X-API-SECRET': 'wrong-secret-0123456789' } });
    assert.equal(r.status, 401);
    assert.equal(code(r), 'HQL_UNAUTHORIZED');
    r = await cluster.http(1, '/notify', { method: 'POST', body: '{"channel":"x"}' });
    assert.equal(r.status, 401);
    r = await cluster.http(1, '/cache/web/%E0%A4%A', { headers: secret });
    assert.deepEqual([r.status, code(r)], [400, 'HQL_INVALID_PARAMS']);
    r = await cluster.http(1, '/cache/web/k', { method: 'PUT', headers: json, body: '{"not json' });
    assert.deepEqual([r.status, code(r)], [400, 'HQL_INVALID_PARAMS']);
    r = await cluster.http(1, '/cache/web/k?ttl_ms=-5', { method: 'PUT', headers: json, body: '1' });
    assert.deepEqual([r.status, code(r)], [400, 'HQL_INVALID_PARAMS']);
    r = await cluster.http(1, '/cache/web/k?ttl_ms=5000', {
      method: 'PUT',
      headers: { ...json, 'X-TTL-MS': '5000' },
      body: '1',
    });
    assert.deepEqual([r.status, code(r)], [400, 'HQL_INVALID_PARAMS']);
    assert.match((r.body as { error: { message: string } }).error.message, /given twice/);
    r = await cluster.http(1, '/cache/web/k', { method: 'POST', headers: json, body: '1' });
    assert.deepEqual([r.status, code(r)], [405, 'HQL_INVALID_PARAMS']);
    r = await cluster.http(1, '/notify', { method: 'POST', headers: json, body: '[1,2]' });
    assert.deepEqual([r.status, code(r)], [400, 'HQL_INVALID_PARAMS']);
    r = await cluster.http(1, '/listen?channel=x', { headers: { ...secret, 'last-event-id': 'soon' } });
    assert.deepEqual([r.status, code(r)], [400, 'HQL_INVALID_PARAMS']);
    // A body over entry_bytes_max is refused before it is kept; a value over the cache's limit
    // is the state machine's typed error.
    r = await cluster.http(1, '/cache/web/big', {
      method: 'PUT',
      headers: { ...secret, 'content-type': 'application/octet-stream' },
      body: 'x'.repeat(ENTRY_BYTES_MAX + 1),
    });
    assert.deepEqual([r.status, code(r)], [413, 'HQL_REQUEST_TOO_LARGE']);
    r = await cluster.http(1, '/cache/web/big', {
      method: 'PUT',
      headers: { ...secret, 'content-type': 'application/octet-stream' },
      body: 'x'.repeat(VALUE_BYTES_MAX + 1),
    });
    assert.deepEqual([r.status, code(r)], [413, 'HQL_CACHE_TOO_LARGE']);
    const longKey = 'k'.repeat(5000);
    r = await cluster.http(1, `/cache/web/${longKey}`, { method: 'PUT', headers: json, body: '1' });
    assert.deepEqual([r.status, code(r)], [413, 'HQL_CACHE_TOO_LARGE']);
    // A key over the limit is never stored, so a read or a delete of one finds nothing (a key
    // stored under a larger limit, before it was lowered, stays readable and deletable).
    r = await cluster.http(1, `/cache/web/${longKey}`, { headers: secret });
    assert.deepEqual([r.status, code(r)], [404, 'HQL_NOT_FOUND']);
    r = await cluster.http(1, `/cache/web/${longKey}`, { method: 'DELETE', headers: secret });
    assert.deepEqual(r.body, { ok: true, value: { deleted: false } });
    // Still serving.
    assert.equal((await cluster.http(1, '/health')).status, 200);
    r = await cluster.http(1, '/cache/web/ok', { method: 'PUT', headers: json, body: '"fine"' });
    assert.equal(r.status, 200);
    assert.equal(await db(1).cache('web').get('ok', { consistency: 'linearizable' }), 'fine');
  });

  test('HTTP: POST /notify and GET /listen as Server-Sent Events, resumed with Last-Event-ID', async () => {
    const port = cluster.node(3).apiPort;
    const secret = { 'X-API-SECRET': SECRET_API };
    const first = await openSse(`http://127.0.0.1:${port}/listen?channel=sse`, secret);
    const listening = await first.next();
    assert.equal(listening.event, 'listening');
    for (const payload of [{ a: 1 }, 'two', 3]) {
      const r = await cluster.http(1, '/notify', {
        method: 'POST',
        headers: { ...secret, 'content-type': 'application/json' },
        body: JSON.stringify({ channel: 'sse', payload }),
      });
      assert.equal(r.status, 200);
    }
    await db(2).notify('sse', new Uint8Array([9]));
    const events = [await first.next(), await first.next(), await first.next(), await first.next()];
    assert.deepEqual(
      events.map((e) => [e.event, (JSON.parse(e.data) as { payload: unknown }).payload]),
      [
        ['notification', { a: 1 }],
        ['notification', 'two'],
        ['notification', 3],
        ['notification', { $blob: Buffer.from([9]).toString('base64') }],
      ],
    );
    const seqs = events.map((e) => Number(e.id));
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
    );
    first.close();
    // Sent while no one listens; a reconnect with the last id gets them, in order.
    await db(1).notify('sse', 'five');
    await db(1).notify('sse', 'six');
    const again = await openSse(`http://127.0.0.1:${port}/listen?channel=sse`, {
      ...secret,
      'Last-Event-ID': String(seqs[3]),
    });
    assert.equal((await again.next()).event, 'listening');
    const resumed = [await again.next(), await again.next()];
    assert.deepEqual(
      resumed.map((e) => JSON.parse(e.data).payload),
      ['five', 'six'],
    );
    again.close();
    // Too far back: the ring no longer holds them: lagged, with the number missed, and the end.
    const late = await openSse(`http://127.0.0.1:${port}/listen?channel=sse`, {
      ...secret,
      'Last-Event-ID': '1',
    });
    assert.equal((await late.next()).event, 'listening');
    const lagged = await late.next();
    assert.equal(lagged.event, 'lagged');
    const info = JSON.parse(lagged.data) as { code: string; missed: number };
    assert.equal(info.code, 'HQL_LAGGED');
    assert.ok(info.missed > 0);
    assert.equal(await late.ended(), true);
  });
});

/** The seq of the newest notification (what a fresh listen starts after). */
async function seqOfNewest(conn: ApiConnection): Promise<number> {
  const r = conn.listen({ op: 'listen', channel: null }, 5000, () => {});
  const a = await r.answer;
  if (!a.ok) throw new Error(a.error.message);
  await conn.unlisten(r.sub, 5000);
  return (a.value as { afterSeq: number }).afterSeq;
}
