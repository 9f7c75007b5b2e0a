/**
 * The API port's listen and binary surfaces against careless or hostile clients, over real
 * sockets: an ApiServer on 127.0.0.1 whose cache routes and binary `listen` are served by a real
 * NotificationHub (src/node/cache-listeners.ts), as a node wires them (cache-serve.ts).
 *
 * - more listeners than the node's bound (`cache_listeners_max`): refused with a typed, retryable
 *   error (503 HQL_OVERLOADED over HTTP, the same code over the binary protocol);
 * - an SSE reader that never reads: the node's memory for it stays bounded (the socket's buffer
 *   and the listener's queue), the listener is told HQL_LAGGED and dropped;
 * - a flood of malformed binary requests: each is answered with its typed error and the
 *   connection goes on serving.
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Packr } from 'msgpackr';
import { ApiServer } from '../../src/node/api-server.js';
import { NotificationHub } from '../../src/node/cache-listeners.js';
import { SSE_BATCH_BYTES_MAX } from '../../src/node/listen-pump.js';
import { cacheListenStream } from '../../src/node/listen-stream.js';
import type { Notification } from '../../src/sm/cache/notifications.js';
import { watchListenerLeaks } from '../support/listener-leaks.js';
import { type SseEvent, sseFields } from '../support/sse.js';
import { apiServerOptions, openApiClient, SECRET_API, stubHandler } from './api-helpers.js';
import { HOST, waitFor } from './helpers.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

const servers: ApiServer[] = [];
const sockets = new Set<Socket>();
after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => s.close()));
});

/** The server side of every connection `api` accepts from now on, while open. */
function serverSocketsOf(api: ApiServer): Set<Socket> {
  const serverSockets = new Set<Socket>();
  // The server's own sockets, to read what it buffers for a client (ApiServer keeps its server private).
  (api as unknown as { server: Server }).server.on('connection', (s: Socket) => {
    serverSockets.add(s);
    s.once('close', () => serverSockets.delete(s));
  });
  return serverSockets;
}

/** A hub fed by the test (`publish`), behind an ApiServer's cache routes and binary listen. */
async function listenServer(o: { listenersMax: number; bufferMax: number }): Promise<{
  port: number;
  hub: NotificationHub;
  publish: (payload: unknown, channel?: string) => void;
  /** The server side of every accepted connection. */
  serverSockets: Set<Socket>;
}> {
  let seq = 0;
  const hub = new NotificationHub(
    {
      lastSeq: () => seq,
      heldAfter: () => ({ notifications: [], missed: 0 }),
      replayingTo: () => 0,
    },
    o.listenersMax,
  );
  const group = {
    subscribe: (s: { channel: string | null; afterSeq?: number; bufferMax?: number }) =>
      hub.subscribe({ ...s, bufferMax: s.bufferMax ?? o.bufferMax }),
  };
  const listen = async (channel: string | null, afterSeq: number | undefined) =>
    cacheListenStream(group, { channel, ...(afterSeq === undefined ? {} : { afterSeq }) });
  const api = new ApiServer({
    ...apiServerOptions(),
    handler: {
      ...stubHandler(async (req) => ({ op: req.op })),
      listen: (req) => listen(req.channel, req.afterSeq),
      cache: {
        write: async () => {
          throw new Error('not in this test');
        },
        read: async () => null,
        listen,
      },
    },
  });
  servers.push(api);
  const { port } = await api.start();
  const serverSockets = serverSocketsOf(api);
  const publish = (payload: unknown, channel = 'c') => {
    seq++;
    const n: Notification = {
      channel,
      payload: new Uint8Array(packr.pack(payload)),
      index: seq,
      time: 0,
      seq,
    };
    hub.publish(n);
  };
  return { port, hub, publish, serverSockets };
}

/**
 * Publishes `payload` in batches (a turn of the event loop after each) until the hub holds no
 * listener or `max` are published; measures the peak of what the server's sockets and the hub's
 * queues buffered meanwhile.
 */
async function publishUntilDropped(
  server: Awaited<ReturnType<typeof listenServer>>,
  o: { payload: string; batch: number; max: number },
): Promise<{ published: number; peakWritable: number; peakQueued: number }> {
  const { hub, publish, serverSockets } = server;
  let published = 0;
  let peakWritable = 0;
  let peakQueued = 0;
  const measure = () => {
    for (const s of serverSockets) peakWritable = Math.max(peakWritable, s.writableLength);
    peakQueued = Math.max(peakQueued, hub.buffered());
  };
  while (hub.size > 0 && published < o.max) {
    for (let i = 0; i < o.batch; i++) {
      publish(o.payload);
      published++;
      measure();
    }
    await nextTurn();
    measure();
  }
  return { published, peakWritable, peakQueued };
}

/** Parses the events of an SSE text (comments skipped); `rest` is an unfinished event. */
function parseSse(text: string): { events: SseEvent[]; rest: string } {
  const blocks = text.split('\n\n');
  const rest = blocks.pop() ?? '';
  const events: SseEvent[] = [];
  for (const block of blocks) {
    const fields = sseFields(block);
    const event = fields.get('event');
    if (event !== undefined) events.push({ event, data: fields.get('data') ?? '', id: fields.get('id') });
  }
  return { events, rest };
}

/** GET /listen with node:http: resolves with the status, and the first event or the JSON error. */
function openListen(port: number): Promise<{ status: number; res: IncomingMessage; first: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: HOST, port, path: '/listen?channel=c', headers: { 'x-api-secret': SECRET_API } },
      (res) => {
        let text = '';
        const onData = (chunk: Buffer) => {
          text += chunk.toString('utf8');
          if (res.statusCode !== 200) return;
          const { events } = parseSse(text);
          if (events.length > 0) {
            res.off('data', onData);
            resolve({ status: 200, res, first: events[0] });
          }
        };
        res.on('data', onData);
        res.on('end', () => {
          if (res.statusCode !== 200) resolve({ status: res.statusCode ?? 0, res, first: JSON.parse(text) });
        });
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error('no answer from /listen within 20 s')));
    req.on('error', reject);
    req.on('socket', (s) => sockets.add(s));
    req.end();
  });
}

describe('GET /listen and binary listen: the listeners bound', () => {
  test('beyond cache_listeners_max a listener is refused with 503 HQL_OVERLOADED (retryable), over HTTP and binary; a freed place is taken again', async () => {
    const MAX = 4;
    const { port, hub } = await listenServer({ listenersMax: MAX, bufferMax: 100 });
    const open: IncomingMessage[] = [];
    for (let i = 0; i < MAX; i++) {
      const r = await openListen(port);
      assert.equal(r.status, 200);
      assert.equal((r.first as SseEvent).event, 'listening');
      open.push(r.res);
    }
    assert.equal(hub.size, MAX);
    // Ten more over HTTP: each refused, none counted.
    for (let i = 0; i < 10; i++) {
      const r = await openListen(port);
      assert.equal(r.status, 503);
      const body = r.first as { ok: boolean; error: { code: string; retryable: boolean; message: string } };
      assert.equal(body.error.code, 'HQL_OVERLOADED');
      assert.equal(body.error.retryable, true);
      assert.match(body.error.message, /cache_listeners_max/);
    }
    // The binary protocol's listen meets the same bound.
    const conn = await openApiClient(port);
    try {
      const refused = await conn.listen({ op: 'listen', channel: 'c' }, 10_000, () => {}).answer;
      assert.equal(refused.ok, false);
      assert.equal(!refused.ok && refused.error.code, 'HQL_OVERLOADED');
      assert.equal(hub.size, MAX);
      // One listener leaves: its place is free again.
      open[0]?.destroy();
      await waitFor(() => hub.size === MAX - 1, 'the closed listener leaves the hub', 20_000);
      const again = await openListen(port);
      assert.equal(again.status, 200);
      assert.equal(hub.size, MAX);
      again.res.destroy();
    } finally {
      conn.close();
      for (const r of open) r.destroy();
    }
    await waitFor(() => hub.size === 0, 'every listener leaves the hub once its client hangs up', 20_000);
  });
});

describe('GET /listen: a reader that never reads', () => {
  test('the node buffers at most one batch for it, then tells it HQL_LAGGED and drops it', async (t) => {
    const BUFFER_MAX = 50;
    const server = await listenServer({ listenersMax: 10, bufferMax: BUFFER_MAX });
    const { port, hub } = server;
    const socket = netConnect({ host: HOST, port });
    sockets.add(socket);
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
    };
    socket.on('data', onData);
    socket.write(`GET /listen?channel=c HTTP/1.1\r\nHost: x\r\nX-API-SECRET: ${SECRET_API}\r\n\r\n`);
    await waitFor(() => text.includes('event: listening'), 'the stream starts', 20_000);
    // From here the client reads nothing.
    socket.off('data', onData);
    socket.pause();
    assert.equal(hub.size, 1);
    // 16 KiB notifications until the listener is dropped: far more than the socket buffers hold
    // (bounded: 4000 of them, 64 MiB, if it never were).
    const { published, peakWritable, peakQueued } = await publishUntilDropped(server, {
      payload: 'p'.repeat(16 * 1024),
      batch: 20,
      max: 4000,
    });
    assert.equal(hub.size, 0, `the listener was dropped (after ${published} notifications)`);
    t.diagnostic(
      `dropped after ${published} notifications; peak socket buffer ${peakWritable} B, peak queue ${peakQueued}`,
    );
    // What the node held for this reader: the listener's queue never passed its bound, the
    // socket's buffer never more than one batch (SSE_BATCH_BYTES_MAX, 64 KiB of payloads: a
    // node holds up to api_connections_max streams; with the binary protocol's 1 MiB batches a
    // thousand streams that never read held 2 GB) and the stream's own lines.
    assert.ok(peakQueued <= BUFFER_MAX, `queued ${peakQueued} > ${BUFFER_MAX}`);
    assert.ok(
      peakWritable <= 4 * SSE_BATCH_BYTES_MAX,
      `the server buffered ${peakWritable} bytes for a reader that does not read`,
    );
    // The reader reads at last: what it got, in order, then lagged with the number dropped, then the end.
    socket.on('data', onData);
    socket.resume();
    await waitFor(() => text.includes('event: lagged'), 'the lagged event', 20_000);
    await Promise.race([
      closed,
      new Promise((_r, reject) =>
        setTimeout(() => reject(new Error('the stream was not ended after lagged')), 20_000),
      ),
    ]);
    const body = text.slice(text.indexOf('\r\n\r\n') + 4);
    // Chunked transfer encoding: the event text is what is left once chunk-size lines are dropped.
    const unchunked = body
      .split('\r\n')
      .filter((_line, i) => i % 2 === 1)
      .join('');
    const { events } = parseSse(unchunked);
    const notifications = events.filter((e) => e.event === 'notification');
    assert.ok(notifications.length > 0, 'some notifications reached the reader before it stalled');
    assert.deepEqual(
      notifications.map((e) => Number(e.id)),
      notifications.map((_e, i) => i + 1),
      'the ones delivered are every notification from the first, in order',
    );
    const last = events.at(-1);
    assert.equal(last?.event, 'lagged');
    const info = JSON.parse(last?.data ?? '{}') as { code: string; missed: number };
    assert.equal(info.code, 'HQL_LAGGED');
    assert.equal(info.missed, BUFFER_MAX + 1, 'the dropped queue and the one that did not fit');
  });
});

describe('binary listen: a client that never reads', () => {
  test('many listens on one connection: the node buffers about one batch for the connection, not one per listen, and each listen lags', async (t) => {
    const LISTENS = 20;
    const BUFFER_MAX = 20;
    const server = await listenServer({ listenersMax: 100, bufferMax: BUFFER_MAX });
    const { port, hub } = server;
    const conn = await openApiClient(port, { inflightMax: 100, keepaliveIntervalMs: 0 });
    // The node's listens share the wait for the socket to drain: no listener-leak warning.
    const watch = watchListenerLeaks();
    try {
      const lagged = new Map<number, number>();
      for (let i = 0; i < LISTENS; i++) {
        const l = conn.listen({ op: 'listen', channel: 'c' }, 10_000, (p) => {
          if ('lagged' in p && typeof p.lagged === 'number') lagged.set(i, p.lagged);
        });
        const a = await l.answer;
        assert.equal(a.ok, true);
      }
      assert.equal(hub.size, LISTENS);
      // From here the client reads nothing.
      (conn as unknown as { conn: { socket: Socket } }).conn.socket.pause();
      const { published, peakWritable } = await publishUntilDropped(server, {
        payload: 'p'.repeat(64 * 1024),
        batch: 10,
        max: 2000,
      });
      t.diagnostic(
        `${LISTENS} listens dropped after ${published} notifications; peak socket buffer ${peakWritable} B`,
      );
      assert.equal(hub.size, 0, 'every listen lagged and was dropped');
      // One batch is at most LISTEN_BATCH_BYTES_MAX (1 MiB) of payloads: the connection holds
      // about one, whatever the number of its listens (20 batches would be 20 MiB).
      assert.ok(
        peakWritable <= 3 * 1024 * 1024,
        `the server buffered ${peakWritable} bytes for a client that does not read`,
      );
      // The client reads again: every listen is told it lagged.
      (conn as unknown as { conn: { socket: Socket } }).conn.socket.resume();
      await waitFor(() => lagged.size === LISTENS, 'every listen gets its lagged push', 20_000);
      for (const missed of lagged.values()) assert.equal(missed, BUFFER_MAX + 1);
      assert.deepEqual(await watch.leaks(), [], 'the node adds no listener per listen to its connection');
    } finally {
      watch.stop();
      conn.close();
    }
  });
});

describe('binary API: malformed requests', () => {
  test('a flood of requests with garbage fields or unknown ops: each gets HQL_PROTOCOL, the connection keeps serving', async () => {
    const served: string[] = [];
    const api = new ApiServer({
      ...apiServerOptions(),
      handler: stubHandler(async (req) => {
        served.push(req.op);
        return { op: req.op };
      }),
    });
    servers.push(api);
    const { port } = await api.start();
    const conn = await openApiClient(port, { inflightMax: 100 });
    try {
      const garbage: unknown[] = [
        { op: 'cacheLock', key: 42, holderId: '', leaseMs: -1 },
        { op: 'cacheLock', key: 'k', holderId: 'h', leaseMs: 'soon', waitMs: { a: 1 } },
        { op: 'cacheLock', key: 'k', holderId: 'h', leaseMs: 2 ** 60 },
        { op: 'cachePut', cache: null, key: [1, 2], value: 'not bytes' },
        { op: 'query', sql: 7 },
        { op: 'query', sql: 'SELECT 1', consistency: 'eventually' },
        { op: 'propose', group: 'nope', data: 'x' },
        { op: 'no-such-op' },
        { op: 17 },
      ];
      for (let round = 0; round < 50; round++) {
        const answers = await Promise.all(garbage.map((g) => conn.request(g as never, 10_000)));
        for (const [i, a] of answers.entries()) {
          assert.equal(a.ok, false, `garbage ${i} was refused`);
          assert.equal(!a.ok && a.error.code, 'HQL_PROTOCOL', `garbage ${i}: ${JSON.stringify(a)}`);
          assert.equal(!a.ok && a.error.retryable, false);
        }
      }
      assert.deepEqual(served, [], 'no malformed request reached the handler');
      assert.equal(conn.closed, false);
      // The same connection serves a valid request.
      const ok = await conn.request({ op: 'metrics' }, 10_000);
      assert.deepEqual(ok.ok && ok.value, { op: 'metrics' });
      assert.equal(api.status().streams, 1);
    } finally {
      conn.close();
    }
  });
});

describe('HTTP bodies on the API port: the body deadline', () => {
  test('a JSON route and a cache route whose body never ends are 408 HQL_TIMEOUT at bodyTimeoutMs, and the connection closes', async () => {
    const api = new ApiServer({
      ...apiServerOptions(),
      bodyTimeoutMs: 1000,
      handler: {
        ...stubHandler(async (req) => ({ op: req.op })),
        cache: {
          write: async () => {
            throw new Error('the body never arrived: nothing is written');
          },
          read: async () => null,
          listen: async () => {
            throw new Error('not in this test');
          },
        },
      },
    });
    servers.push(api);
    const { port } = await api.start();
    for (const [method, path, type] of [
      ['POST', '/query', 'application/json'],
      ['PUT', '/cache/c/k', 'application/octet-stream'],
      ['POST', '/notify', 'application/json'],
    ] as const) {
      const socket = netConnect({ host: HOST, port });
      sockets.add(socket);
      socket.on('error', () => {});
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString('utf8');
      });
      socket.write(
        `${method} ${path} HTTP/1.1\r\nHost: x\r\nX-API-SECRET: ${SECRET_API}\r\nContent-Type: ${type}\r\n` +
          'Content-Length: 1000\r\n\r\n{"sql": "SEL',
      );
      await waitFor(() => socket.closed, `${method} ${path}: the server closes the connection`, 20_000);
      await closed;
      assert.match(text, /^HTTP\/1\.1 408 /, `${method} ${path}: ${text.slice(0, 40)}`);
      assert.match(text, /"code":"HQL_TIMEOUT"/);
      assert.match(text, /connection: close/i);
    }
  });
});

describe('HTTP pipelining: a client that sends many requests and reads no answer', () => {
  /** A server whose cache GET answers a value of `valueBytes`; counts the reads it served. */
  async function bigValueServer(o: { valueBytes: number; requestsInflightMax?: number }) {
    let reads = 0;
    const warnings: string[] = [];
    const value = new Uint8Array(o.valueBytes).fill(97);
    const logger = { warn: (_o: object, msg: string) => warnings.push(msg), info: () => {}, debug: () => {} };
    const api = new ApiServer({
      ...apiServerOptions(
        o.requestsInflightMax === undefined ? {} : { requestsInflightMax: o.requestsInflightMax },
      ),
      logger: logger as unknown as NonNullable<ConstructorParameters<typeof ApiServer>[0]['logger']>,
      handler: {
        ...stubHandler(async (req) => ({ op: req.op })),
        cache: {
          write: async () => {
            throw new Error('not in this test');
          },
          read: async () => {
            reads++;
            return value;
          },
          listen: async () => {
            throw new Error('not in this test');
          },
        },
      },
    });
    servers.push(api);
    const { port } = await api.start();
    return { port, reads: () => reads, serverSockets: serverSocketsOf(api), warnings };
  }

  function pipelinedGets(port: number, n: number): Socket {
    const socket = netConnect({ host: HOST, port });
    sockets.add(socket);
    socket.on('error', () => {});
    // Never read: the answers pile up wherever the server keeps them.
    socket.pause();
    const one = `GET /cache/c/k HTTP/1.1\r\nHost: x\r\nX-API-SECRET: ${SECRET_API}\r\n\r\n`;
    socket.write(one.repeat(n));
    return socket;
  }

  test('the node serves one request at a time per connection, so what it holds for the connection stays about one answer, not one per request', async () => {
    // Found from outside: 1,500 pipelined GETs of a 1 MB value on one connection, never read,
    // took a node from 190 MB to 2.7 GB (each request was served and its answer kept).
    const s = await bigValueServer({ valueBytes: 1024 * 1024 });
    const n = 60;
    const socket = pipelinedGets(s.port, n);
    await waitFor(() => s.reads() > 0, 'the first request is served', 10_000);
    // Let the node go as far as it will: answers flow until the socket's buffers are full.
    let last = -1;
    for (let i = 0; i < 50 && s.reads() !== last; i++) {
      last = s.reads();
      await new Promise((r) => setTimeout(r, 100));
    }
    let held = 0;
    for (const ss of s.serverSockets) held = Math.max(held, ss.writableLength);
    assert.ok(s.reads() < n / 3, `${s.reads()} of ${n} pipelined requests served while none was read`);
    // One answer (the JSON of 1 MiB in base64, 1.4 MB) at most waits in the node's memory.
    assert.ok(held <= 2 * 1024 * 1024, `the node holds ${held} bytes for the connection`);
    // Reading the answers, every request is served in order.
    socket.resume();
    await waitFor(() => s.reads() === n, `all ${n} served once read (${s.reads()})`, 30_000);
    socket.destroy();
  });

  test('more pipelined requests waiting than api_requests_inflight_max: the connection is closed', async () => {
    const s = await bigValueServer({ valueBytes: 1024 * 1024, requestsInflightMax: 8 });
    const socket = pipelinedGets(s.port, 100);
    await waitFor(
      () => s.warnings.some((w) => /pipelined requests/.test(w)) && s.serverSockets.size === 0,
      'the node closes the connection',
      10_000,
    );
    assert.ok(s.reads() <= 9, `${s.reads()} requests served`);
    // Said once for the connection, not once for each request parsed before it closed.
    assert.equal(s.warnings.filter((w) => /pipelined requests/.test(w)).length, 1, s.warnings.join('\n'));
    socket.destroy();
  });
});
