/**
 * Dead-peer detection on the binary API connection, over real sockets:
 * - a client whose node goes silent without a FIN or RST (a partition, simulated by a relay that
 *   stops forwarding and keeps both sockets open) closes the connection after
 *   `keepaliveTimeoutMs`: a request waiting on it fails HQL_UNAVAILABLE instead of waiting forever;
 * - a silent but healthy connection stays open: the client's pings keep it alive on both sides;
 * - the server closes an authenticated connection that sent nothing (no ping) for its idle bound,
 *   and keeps a pinging one.
 */
import assert from 'node:assert/strict';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { HiqliteError } from '../../src/lib/errors.js';
import { ApiServer, type ApiServerOptions } from '../../src/node/api-server.js';
import type { ApiRequest } from '../../src/protocol/api-codec.js';
import type { ApiConnection } from '../../src/transport/api-connection.js';
import { within } from '../support/within.js';
import { apiServerOptions, openApiClient, stubHandler } from './api-helpers.js';
import { HOST, waitFor } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** An API server whose handler answers `slow` only when `release` is called (never, here). */
async function server(overrides: Partial<ApiServerOptions> = {}): Promise<{ api: ApiServer; port: number }> {
  const api = new ApiServer({
    ...apiServerOptions({
      nodeIds: [1],
      frameBytesMax: 1024 * 1024,
      jsonBodyBytesMax: 1024,
      connectionsMax: 64,
    }),
    // A request that the node never answers: what a client sees of a node that hangs.
    handler: stubHandler((req: ApiRequest) =>
      req.op === 'metrics' ? new Promise<unknown>(() => {}) : Promise.resolve(null),
    ),
    ...overrides,
  });
  const { port } = await api.start();
  cleanups.push(() => api.close());
  return { api, port };
}

function open(
  port: number,
  keepalive: { keepaliveIntervalMs?: number; keepaliveTimeoutMs?: number },
): Promise<ApiConnection> {
  return openApiClient(port, { frameBytesMax: 1024 * 1024, ...keepalive }).then((c) => {
    cleanups.push(() => c.close());
    return c;
  });
}

/**
 * A TCP relay to `port` that can be cut: `blackhole()` stops forwarding in both directions and
 * keeps every socket open (no FIN, no RST), as a partition or a frozen machine does.
 */
async function relay(port: number): Promise<{ port: number; blackhole(): void }> {
  const sockets: Socket[] = [];
  let cut = false;
  const srv: Server = createServer((client) => {
    const upstream = netConnect({ host: HOST, port });
    sockets.push(client, upstream);
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('data', (b) => {
      if (!cut) upstream.write(b);
    });
    upstream.on('data', (b) => {
      if (!cut) client.write(b);
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, HOST, resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  );
  const address = srv.address();
  assert.ok(typeof address === 'object' && address !== null);
  return {
    port: address.port,
    blackhole: () => {
      cut = true;
    },
  };
}

describe('keepalive of the binary API connection', () => {
  test('a node that goes silent without FIN or RST: the client closes the connection, a waiting request fails HQL_UNAVAILABLE', async () => {
    // The server's own idle bound is off: only the client's keepalive can end this.
    const { port } = await server({ idleTimeoutMs: 0 });
    const r = await relay(port);
    const conn = await open(r.port, { keepaliveIntervalMs: 100, keepaliveTimeoutMs: 3000 });
    let closed = false;
    conn.onClose(() => {
      closed = true;
    });
    // Healthy and idle: it pings, and stays open. A ping is sent only once the previous one was
    // answered, so three sent means at least two answered.
    assert.deepEqual(await conn.request({ op: 'limits' }, 5000), { id: 1, ok: true, value: null });
    const pingsBefore = pingCount(conn);
    await waitFor(() => pingCount(conn) >= pingsBefore + 3, 'three answered pings');
    assert.equal(closed, false, 'a connection whose pings are answered stays open');
    // The node hangs on a request, and then the path goes dark.
    const waiting = conn.request({ op: 'metrics' }, 3_600_000);
    r.blackhole();
    const error = await within(
      waiting.then(
        () => null,
        (e: unknown) => e,
      ),
      30_000,
      'the request on a dead connection to fail',
    );
    assert.ok(error instanceof HiqliteError, String(error));
    assert.equal(error.code, 'HQL_UNAVAILABLE');
    assert.equal(error.retryable, true);
    assert.match(error.message, /keepalive/);
    assert.equal(conn.closed, true);
  });

  test('keepaliveIntervalMs 0 turns it off: a dark path is not detected by the client', async () => {
    const { port } = await server({ idleTimeoutMs: 0 });
    const r = await relay(port);
    const conn = await open(r.port, { keepaliveIntervalMs: 0 });
    await conn.request({ op: 'limits' }, 5000);
    r.blackhole();
    // The request's own deadline is all that ends it.
    const error = await conn.request({ op: 'metrics' }, 1500).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(error instanceof HiqliteError);
    assert.equal(error.code, 'HQL_TIMEOUT');
    assert.equal(conn.closed, false);
  });

  test('the server closes an authenticated connection that sends nothing for api_idle_timeout_ms, and keeps a pinging one', async () => {
    const { api, port } = await server({ idleTimeoutMs: 1500 });
    const silent = await open(port, { keepaliveIntervalMs: 0 });
    const pinging = await open(port, { keepaliveIntervalMs: 100, keepaliveTimeoutMs: 10_000 });
    await silent.request({ op: 'limits' }, 5000);
    await pinging.request({ op: 'limits' }, 5000);
    await within(
      new Promise<void>((resolve) => silent.onClose(resolve)),
      30_000,
      'the silent connection to close',
    );
    assert.equal(api.status().idleClosed, 1);
    // The pinging one, open as long, is still served.
    assert.equal(pinging.closed, false);
    assert.equal((await pinging.request({ op: 'limits' }, 5000)).ok, true);
    const error = await silent.request({ op: 'limits' }, 5000).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(error instanceof HiqliteError);
    assert.equal(error.code, 'HQL_UNAVAILABLE');
  });

  test('ping is answered by the server itself, also while the node hangs on other requests', async () => {
    const seen: string[] = [];
    const { port } = await server({
      idleTimeoutMs: 0,
      handler: {
        handle: (req: ApiRequest) => {
          seen.push(req.op);
          return new Promise<unknown>(() => {});
        },
        health: () => ({ ok: true, body: {} }),
        ready: () => ({ ok: true }),
        metricsText: async () => '',
        json: async (_route, body) => body,
      },
    });
    const conn = await open(port, { keepaliveIntervalMs: 0 });
    void conn.request({ op: 'metrics' }, 3_600_000).catch(() => {});
    // Answered with the server's wall clock (a node asks its peers' clocks this way: peer-clocks.ts).
    const before = Date.now();
    const answer = await conn.request({ op: 'ping' }, 5000);
    assert.ok(answer.ok && typeof answer.value === 'number', JSON.stringify(answer));
    assert.ok(answer.value >= before && answer.value <= Date.now(), `the server's clock: ${answer.value}`);
    assert.deepEqual(seen, ['metrics']);
  });
});

/** Requests sent so far, pings included (the connection numbers each one). */
function pingCount(conn: ApiConnection): number {
  return (conn as unknown as { nextId: number }).nextId;
}
