/**
 * The remote client's cache token floor (src/client/cluster-link.ts) against a real API server:
 * the link keeps the highest floor a node told (its `limits` answer at connect, or the event),
 * passes on a raise only, and while the client holds locks opens a closed connection again soon,
 * so that a node restarted into a cache group founded anew tells it its floor without a call.
 */
import assert from 'node:assert/strict';
import { type AddressInfo, createServer, connect as netConnect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { ApiServer } from '../../src/node/api-server.js';
import { API_EVENT_CACHE_TOKEN_FLOOR, type ApiEvent, type ApiRequest } from '../../src/protocol/api-codec.js';
import { apiServerOptions, stubHandler, testLink } from './api-helpers.js';
import { HOST } from './helpers.js';

/** A node whose `limits` answer says `floor.now`, counting those requests. */
async function floorNode(floor: {
  now: number;
  limitsAsked: number;
}): Promise<{ api: ApiServer; port: number }> {
  const api = new ApiServer({
    ...apiServerOptions(),
    handler: stubHandler(async (req: ApiRequest) => {
      if (req.op === 'limits') {
        floor.limitsAsked++;
        return { cacheTokenFloor: floor.now };
      }
      return {};
    }),
  });
  const { port } = await api.start();
  return { api, port };
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !cond(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const floorEvent = (floor: number): ApiEvent => ({ event: API_EVENT_CACHE_TOKEN_FLOOR, floor });

describe('cluster link: the cache token floor', () => {
  test('is the highest a node told, at connect or by event; only a raise is passed on', async () => {
    const floor = { now: 7000, limitsAsked: 0 };
    const { api, port } = await floorNode(floor);
    const link = testLink({ nodes: [`${HOST}:${port}`], requestTimeoutMs: 5000 });
    const heard: number[] = [];
    link.onEvent((e) => {
      if (e.event === API_EVENT_CACHE_TOKEN_FLOOR) heard.push(e.floor ?? -1);
    });
    try {
      assert.equal(link.cacheTokenFloor(), 0, 'none told before a connection');
      await link.call({ op: 'metrics' }, { kind: 'other', route: 'any' });
      assert.equal(link.cacheTokenFloor(), 7000, 'the limits answer at connect');
      assert.deepEqual(heard, [7000]);
      // A node still in an older group tells a lower floor: not passed on, not lowered.
      api.tellClients(floorEvent(5000));
      api.tellClients(floorEvent(7000));
      api.tellClients(floorEvent(9000));
      await until('the raise', () => heard.length >= 2);
      assert.deepEqual(heard, [7000, 9000]);
      assert.equal(link.cacheTokenFloor(), 9000);
    } finally {
      await link.close();
      await api.close();
    }
  });
});

describe('cluster link: keepConnectedWhile', () => {
  /** A relay in front of `port` whose connections the test cuts (a node that restarts). */
  async function relayTo(port: number) {
    const sockets = new Set<Socket>();
    const relay = createServer((client) => {
      const upstream = netConnect(port, HOST);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {});
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((r) => relay.listen(0, HOST, r));
    return {
      addr: `${HOST}:${(relay.address() as AddressInfo).port}`,
      cut: () => {
        for (const s of sockets) s.destroy();
      },
      connections: () => sockets.size,
      close: () => new Promise((r) => relay.close(r)),
    };
  }

  test('while it holds, a closed connection is opened again and the floor learned without a call', async () => {
    const floor = { now: 7000, limitsAsked: 0 };
    const { api, port } = await floorNode(floor);
    const relay = await relayTo(port);
    const link = testLink({ nodes: [relay.addr], requestTimeoutMs: 5000 });
    let holds = true;
    link.keepConnectedWhile(() => holds);
    try {
      await link.call({ op: 'metrics' }, { kind: 'other', route: 'any' });
      assert.equal(floor.limitsAsked, 1);
      // The node restarts into a group founded anew: a higher floor, and the connection closes.
      floor.now = 12_000;
      relay.cut();
      await until('the floor of the node connected again', () => link.cacheTokenFloor() === 12_000);
      // The reconnection: the connect's `limits`, then its own call's (wait for both: a cut while
      // that call is under way makes it retry, as every call does within its deadline).
      await until('the reconnection done', () => floor.limitsAsked >= 3);
      await new Promise((r) => setTimeout(r, 100));
      // Holding nothing: a closed connection waits for the next call.
      holds = false;
      const asked = floor.limitsAsked;
      relay.cut();
      await until('the cut', () => relay.connections() === 0);
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(floor.limitsAsked, asked, 'no connection opened while nothing is held');
      assert.equal(relay.connections(), 0);
    } finally {
      await link.close();
      relay.cut();
      await relay.close();
      await api.close();
    }
  });

  test('close() cancels a reconnection that is due', async () => {
    const floor = { now: 7000, limitsAsked: 0 };
    const { api, port } = await floorNode(floor);
    const relay = await relayTo(port);
    const link = testLink({ nodes: [relay.addr], requestTimeoutMs: 5000 });
    link.keepConnectedWhile(() => true);
    try {
      await link.call({ op: 'metrics' }, { kind: 'other', route: 'any' });
      relay.cut();
      await until('the cut', () => relay.connections() === 0);
      await link.close();
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(floor.limitsAsked, 1, 'no connection after close()');
    } finally {
      relay.cut();
      await relay.close();
      await api.close();
    }
  });
});
