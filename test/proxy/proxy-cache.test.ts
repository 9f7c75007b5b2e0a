/**
 * The cache group through `hiqlite proxy`, on a 3-node cluster of processes: a remote client that
 * knows only the proxy puts, reads (linearizable), takes, counts and locks (fencing tokens), and
 * its `listen()` stream, relayed by the proxy from one node (relay-listen.ts), receives what
 * another client notifies directly to the cluster: every notification once, in log order. Across
 * a kill -9 of the node the relay reads from (the cache group's leader) and across a kill -9 and
 * restart of the proxy, the listener resumes after the last notification it received; when the
 * nodes no longer hold what it missed, it is told HQL_LAGGED with the exact number. Never a
 * silent gap.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, type HiqliteClient, HiqliteError, LaggedError } from '../../src/index.js';
import { eventually, SECRET_API, TestCluster } from '../cluster/harness.js';
import { openSse } from '../support/sse.js';
import { Proxies, type ProxyProcess } from './proxy-harness.js';

/** Notifications every node keeps for resuming listeners: small, so one test can outrun it. */
const RING = 64;

interface Received {
  readonly payloads: number[];
  readonly indexes: number[];
  /** The error that ended the stream (a LaggedError is the only one expected). */
  error: unknown;
}

/**
 * Reads `db.listen(channel)`: payloads that are numbers are kept (a probe, `'probe'`, is not),
 * until `stop()` says so (`stopWhen` checked after each notification) or the stream ends.
 */
function collect(
  db: HiqliteClient,
  channel: string,
  stopWhen: (r: Received) => boolean,
): { received: Received; sawProbe: () => boolean; done: Promise<void> } {
  const received: Received = { payloads: [], indexes: [], error: null };
  let probe = false;
  const it = db.listen<number | 'probe'>(channel);
  const done = (async () => {
    try {
      for await (const n of it) {
        received.indexes.push(n.index);
        if (n.payload === 'probe') probe = true;
        else received.payloads.push(n.payload);
        if (stopWhen(received)) break;
      }
    } catch (e) {
      received.error = e;
    }
  })();
  return { received, sawProbe: () => probe, done };
}

/**
 * Notifies probes on `channel` until the listener saw one: from then on its stream is open, and
 * every later notification must reach it (no fixed wait for the listener to open).
 */
async function untilListening(
  writer: HiqliteClient,
  channel: string,
  sawProbe: () => boolean,
): Promise<void> {
  await eventually(`the listener of ${channel} to receive a probe`, async () => {
    if (sawProbe()) return true;
    await writer.notify(channel, 'probe');
    return sawProbe();
  });
}

/** Log order, each notification at most once. */
function assertOrderedOnce(r: Received): void {
  for (let i = 1; i < r.indexes.length; i++)
    assert.ok((r.indexes[i] as number) > (r.indexes[i - 1] as number), `log order at ${i}: ${r.indexes}`);
  assert.equal(new Set(r.payloads).size, r.payloads.length, `a notification twice: ${r.payloads}`);
}

/**
 * Notifies `count` numbered notifications on `channel`, one after another; `fault` runs after
 * the `faultAt`th is acknowledged, while the next ones are sent. A notify that fails (its outcome
 * unknown across the fault) is retried as a new number; the failed one is `uncertain`.
 */
async function notifyThrough(
  writer: HiqliteClient,
  channel: string,
  count: number,
  faultAt: number,
  fault: () => Promise<void>,
): Promise<{ acknowledged: number[]; uncertain: number[] }> {
  const acknowledged: number[] = [];
  const uncertain: number[] = [];
  let faulted: Promise<void> | null = null;
  for (let n = 0; acknowledged.length < count && n < count * 4; n++) {
    try {
      await writer.notify(channel, n);
      acknowledged.push(n);
    } catch (e) {
      if (!(e instanceof HiqliteError) || !e.retryable) throw e;
      uncertain.push(n);
    }
    if (faulted === null && acknowledged.length === faultAt) faulted = fault();
  }
  await faulted;
  assert.equal(acknowledged.length, count, `notifications acknowledged (uncertain: ${uncertain})`);
  return { acknowledged, uncertain };
}

/** Every acknowledged notification received, nothing but sent ones, in log order, once. */
function assertExactlyOnce(r: Received, sent: { acknowledged: number[]; uncertain: number[] }): void {
  assert.equal(r.error, null, `the listener ended with ${String(r.error)}`);
  assertOrderedOnce(r);
  const acknowledged = new Set(sent.acknowledged);
  const uncertain = new Set(sent.uncertain);
  for (const p of r.payloads) assert.ok(acknowledged.has(p) || uncertain.has(p), `never sent: ${p}`);
  const received = new Set(r.payloads);
  assert.deepEqual(
    sent.acknowledged.filter((p) => !received.has(p)),
    [],
    'acknowledged notifications the listener never received',
  );
}

describe('the cache group through a proxy', () => {
  let c: TestCluster;
  let proxies: Proxies;
  let p: ProxyProcess;
  /** A client of the cluster itself (not of the proxy). */
  let direct: HiqliteClient;
  before(async () => {
    c = await TestCluster.create({ nodes: 3, toml: `cache_notifications_ring_max = ${RING}` });
    proxies = new Proxies(c.dir, c.apiAddresses());
    p = await proxies.start('proxy');
    direct = await c.client([1, 2, 3], { requestTimeoutMs: 30_000 });
  });
  after(async () => {
    await proxies?.close();
    await c?.close();
  });

  const viaProxy = (proxy: ProxyProcess) =>
    connect({
      nodes: [proxy.address],
      secretApi: SECRET_API,
      requestTimeoutMs: 30_000,
      listenResumeTimeoutMs: 60_000,
    });

  test('caches, counters and locks (fencing tokens) of a client that knows only the proxy', async () => {
    const db = await viaProxy(p);
    try {
      const sessions = db.cache<{ user: number }>('sessions');
      await sessions.put('s1', { user: 7 });
      assert.deepEqual(await sessions.get('s1', { consistency: 'linearizable' }), { user: 7 });
      // The cluster's own clients see the proxy's writes, and the other way around.
      assert.deepEqual(await direct.cache('sessions').get('s1', { consistency: 'linearizable' }), {
        user: 7,
      });
      await direct.cache('tokens').put('t', 'once');
      const taken = await Promise.all([
        db.cache('tokens').getRemove('t'),
        direct.cache('tokens').getRemove('t'),
      ]);
      assert.deepEqual(
        taken.filter((v) => v !== null),
        ['once'],
      );
      assert.equal(await db.cache('tokens').get('t', { consistency: 'linearizable' }), null);

      const adds = await Promise.all([
        ...Array.from({ length: 10 }, () => db.counter('hits').add('/home', 2)),
        ...Array.from({ length: 10 }, () => direct.counter('hits').add('/home', 1)),
      ]);
      assert.equal(new Set(adds).size, 20, 'every add saw its own total');
      assert.equal(await db.counter('hits').get('/home', { consistency: 'linearizable' }), 30n);

      const first = await db.lock('job', { leaseMs: 10_000 });
      assert.equal(await direct.tryLock('job'), null, 'held through the proxy');
      const waiting = direct.lock('job', { leaseMs: 10_000 });
      await first.release();
      const second = await waiting;
      assert.ok(second.token > first.token, 'the fencing token increases across holders');
      assert.equal(await db.tryLock('job'), null, 'held by the direct client');
      await second.release();
      const third = await eventually('the lock to be free through the proxy', () => db.tryLock('job'));
      assert.ok(third.token > second.token);
      await third.release();
    } finally {
      await db.close();
    }
  });

  test('a listener through the proxy receives what another client notifies to the cluster: once, in order', async () => {
    const db = await viaProxy(p);
    try {
      const l = collect(db, 'orders', (r) => r.payloads.length === 50);
      await untilListening(direct, 'orders', l.sawProbe);
      // Another channel is not relayed to this listener.
      const sent = await notifyThrough(direct, 'orders', 50, 25, () =>
        direct.notify('other', -1).then(() => {}),
      );
      await l.done;
      assertExactlyOnce(l.received, sent);
      assert.deepEqual(l.received.payloads, sent.acknowledged);
    } finally {
      await db.close();
    }
  });

  test('across a kill -9 of the node the proxy relays from (the cache leader), the listener resumes: nothing lost, nothing twice', async () => {
    // The cache group's leader: the node a proxy relays from is the first of its `nodes` that
    // answers, so this proxy lists the leader first.
    const leader = (await direct.metrics()).cache.leaderId;
    assert.ok(leader !== null, 'the cache group has a leader');
    const others = [1, 2, 3].filter((id) => id !== leader).map((id) => `127.0.0.1:${c.node(id).apiPort}`);
    const relaying = new Proxies(c.dir, [`127.0.0.1:${c.node(leader).apiPort}`, ...others]);
    const q = await relaying.start('proxy-leader-first');
    const db = await viaProxy(q);
    try {
      const count = 40;
      const l = collect(db, 'failover', () => false);
      await untilListening(direct, 'failover', l.sawProbe);
      const sent = await notifyThrough(direct, 'failover', count, 10, () => c.kill(leader));
      // The last acknowledged one arrives (bounded): then all before it must have.
      await eventually(
        'the last notification to arrive',
        async () =>
          l.received.error !== null || l.received.payloads.includes(sent.acknowledged.at(-1) as number),
        60_000,
      );
      assertExactlyOnce(l.received, sent);
      // The listener did resume (a second listen through this proxy), not merely outlive the kill.
      assert.ok((await listensServed(q)) >= 2, 'the listener was opened again after the kill');
      await c.start(leader);
    } finally {
      await db.close();
      await relaying.close();
    }
  });

  test('across a kill -9 and restart of the proxy, the listener resumes: nothing lost, nothing twice', async () => {
    const db = await viaProxy(p);
    try {
      const count = 40;
      const l = collect(db, 'restart', () => false);
      await untilListening(direct, 'restart', l.sawProbe);
      const duringFault: number[] = [];
      const sent = await notifyThrough(direct, 'restart', count, 10, async () => {
        await p.kill();
        // Sent while the listener has no way to the cluster (fewer than the nodes hold).
        for (let i = 0; i < 5; i++) {
          await direct.notify('restart', 1000 + i);
          duringFault.push(1000 + i);
        }
        await p.start();
      });
      const last = sent.acknowledged.at(-1) as number;
      await eventually(
        'the last notification to arrive',
        async () => l.received.error !== null || l.received.payloads.includes(last),
        60_000,
      );
      assertExactlyOnce(l.received, {
        acknowledged: [...sent.acknowledged, ...duringFault],
        uncertain: sent.uncertain,
      });
    } finally {
      await db.close();
    }
  });

  test('a listener that missed more than the nodes hold, while its proxy was down, is told HQL_LAGGED with the number missed', async () => {
    const db = await viaProxy(p);
    try {
      const l = collect(db, 'lag', () => false);
      await untilListening(direct, 'lag', l.sawProbe);
      for (let i = 0; i < 5; i++) await direct.notify('lag', i);
      await eventually('the first five to arrive', async () => l.received.payloads.length === 5);
      await p.kill();
      // Only this test notifies now: seqs are global, so `missed` is exact.
      const missedSent = RING + 7;
      for (let i = 0; i < missedSent; i++) await direct.notify('lag', 100 + i);
      await p.start();
      await l.done;
      assert.deepEqual(
        l.received.payloads,
        [0, 1, 2, 3, 4],
        'nothing of the gap delivered as if it were none',
      );
      assert.ok(l.received.error instanceof LaggedError, `ended with ${String(l.received.error)}`);
      assert.equal(l.received.error.code, 'HQL_LAGGED');
      // Every one sent while it was away: those the ring no longer holds, and the RING held
      // after them, which a listener that ends at the gap does not get either.
      assert.equal(l.received.error.missed, missedSent);
    } finally {
      await db.close();
    }
  });

  test('HTTP: GET /listen through the proxy, resumed with Last-Event-ID after a kill -9 and restart of the proxy', async () => {
    const secret = { 'X-API-SECRET': SECRET_API };
    const url = () => `http://${p.address}/listen?channel=sse`;
    const first = await openSse(url(), secret, 30_000);
    assert.equal((await first.next()).event, 'listening');
    for (let i = 0; i < 3; i++) await direct.notify('sse', i);
    const got = [await first.next(), await first.next(), await first.next()];
    assert.deepEqual(
      got.map((e) => [e.event, (JSON.parse(e.data) as { payload: unknown }).payload]),
      [
        ['notification', 0],
        ['notification', 1],
        ['notification', 2],
      ],
    );
    await p.kill();
    await assert.rejects(first.next(), 'the stream ends with the proxy');
    for (let i = 3; i < 6; i++) await direct.notify('sse', i);
    await p.start();
    // What a browser's EventSource sends by itself: the id of the last event it received.
    const again = await openSse(url(), { ...secret, 'Last-Event-ID': got[2]?.id as string }, 30_000);
    assert.equal((await again.next()).event, 'listening');
    await direct.notify('sse', 6);
    const resumed = [await again.next(), await again.next(), await again.next(), await again.next()];
    assert.deepEqual(
      resumed.map((e) => (JSON.parse(e.data) as { payload: unknown }).payload),
      [3, 4, 5, 6],
    );
    const ids = [...got, ...resumed].map((e) => Number(e.id));
    for (let i = 1; i < ids.length; i++) assert.ok((ids[i] as number) > (ids[i - 1] as number), `ids ${ids}`);
    again.close();
  });

  test('no listener is left on any node once the clients of the proxy are gone', async () => {
    await eventually('every relayed listener to be released', async () => {
      for (const id of [1, 2, 3]) if ((await c.metricsOf(id)).cache.listeners !== 0) return false;
      return true;
    });
  });
});

/** How many listeners `proxy` has opened for its clients (its /metrics). */
async function listensServed(proxy: ProxyProcess): Promise<number> {
  const res = await fetch(`http://${proxy.address}/metrics`, {
    headers: { 'X-API-SECRET': SECRET_API },
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const m = /^hiqlite_proxy_requests_total\{op="listen"\} (\d+)$/m.exec(text);
  assert.ok(m !== null, `no listen count in the proxy's metrics:\n${text}`);
  return Number(m[1]);
}
