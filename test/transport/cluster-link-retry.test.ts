/**
 * The remote client's retries (src/client/cluster-link.ts) against real API servers:
 * - a node that refuses every write with HQL_UNAVAILABLE (as a joining node does), each answer
 *   slow: the call ends with that definite refusal, never with HQL_OUTCOME_UNKNOWN from a last
 *   retry sent with too little time left for its answer (seen on a loaded machine: "no answer
 *   within 133 ms");
 * - a write whose first answer was slow and left its outcome unknown: resent to its final answer
 *   while time is left, however slow that first answer was;
 * - a node that cannot serve (stopped serving, shutting down) while another can: the client
 *   moves to the other at once, as the "any" node and as the leader it followed.
 */
import assert from 'node:assert/strict';
import { type AddressInfo, createServer, connect as netConnect, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import type { ClusterLink } from '../../src/client/cluster-link.js';
import { HiqliteError, outcomeUnknown } from '../../src/lib/errors.js';
import { ApiServer } from '../../src/node/api-server.js';
import type { ApiRequest } from '../../src/protocol/api-codec.js';
import { apiServerOptions, stubHandler, testLink } from './api-helpers.js';
import { HOST } from './helpers.js';

const ANSWER_MS = 150;
/** The test servers' limits. */
const SERVER_LIMITS = {
  frameBytesMax: 1024 * 1024,
  jsonBodyBytesMax: 1024,
  connectionsMax: 16,
  handshakeTimeoutMs: 10_000,
};

describe('cluster link: retries of a refused write', () => {
  let api: ApiServer;
  const links: ClusterLink[] = [];
  after(async () => {
    await Promise.all(links.map((l) => l.close()));
    await api?.close();
  });

  test('a write refused slowly until its deadline ends HQL_UNAVAILABLE, not an unknown outcome', async () => {
    let proposals = 0;
    api = new ApiServer({
      ...apiServerOptions(SERVER_LIMITS),
      handler: {
        ...stubHandler(async (req: ApiRequest) => {
          if (req.op !== 'propose')
            throw new HiqliteError('HQL_NOT_FOUND', `no ${req.op} here`, { retryable: false });
          proposals++;
          await new Promise((r) => setTimeout(r, ANSWER_MS));
          throw new HiqliteError('HQL_UNAVAILABLE', 'this node is joining the cluster', { retryable: true });
        }),
        ready: () => ({ ok: false, reason: 'starting' }),
      },
    });
    const { port } = await api.start();
    // Deadlines where the old rule sent a last retry with less than ANSWER_MS left (attempts at
    // about 0, 170, 360, 590, 900 ms of a 1,000 ms deadline), and a few more.
    for (const timeoutMs of [1000, 1300, 1700]) {
      const link = testLink({
        nodes: [`${HOST}:${port}`],
        requestTimeoutMs: timeoutMs,
      });
      links.push(link);
      const before = proposals;
      await assert.rejects(
        link.call(
          { op: 'propose', group: 'sql', data: new Uint8Array([1]) },
          { kind: 'write', route: 'leader' },
        ),
        (e: unknown) => {
          assert.ok(e instanceof HiqliteError, String(e));
          assert.equal(e.code, 'HQL_UNAVAILABLE', `${timeoutMs} ms: ${e.message}`);
          return true;
        },
      );
      assert.ok(proposals - before >= 2, 'the refusal was retried');
    }
  });

  test('a write whose outcome a slow answer left unknown is resent to its final answer, whatever that answer took', async () => {
    // The node's first answer takes 400 ms and is HQL_OUTCOME_UNKNOWN (its leader stopped with
    // the write in flight); the retry under the session gets the original result. With 560 ms
    // left, less than 4 x the slowest answer, a refused write would end; this one may be in the
    // log, so ending would only turn a final answer into an unknown outcome.
    let proposals = 0;
    const slow = new ApiServer({
      ...apiServerOptions(SERVER_LIMITS),
      handler: stubHandler(async (req: ApiRequest) => {
        if (req.op === 'limits') return {};
        if (req.op !== 'propose')
          throw new HiqliteError('HQL_NOT_FOUND', `no ${req.op} here`, { retryable: false });
        if (proposals++ > 0) return { rowsAffected: 1 };
        await new Promise((r) => setTimeout(r, 400));
        throw outcomeUnknown('the leader stopped with the write in flight');
      }),
    });
    const { port } = await slow.start();
    try {
      const link = testLink({
        nodes: [`${HOST}:${port}`],
        requestTimeoutMs: 1000,
      });
      links.push(link);
      const r = await link.call(
        { op: 'propose', group: 'sql', data: new Uint8Array([1]) },
        { kind: 'write', route: 'leader' },
      );
      assert.deepEqual(r, { rowsAffected: 1 });
      assert.equal(proposals, 2);
    } finally {
      await slow.close();
    }
  });

  test('a read the any node refuses as overloaded goes to the next node, and the reads after it too', async () => {
    // Found by an outside probe: local reads through a proxy kept asking the one node whose read
    // queue was full, while another answered in 2 ms.
    const options = apiServerOptions(SERVER_LIMITS);
    let refused = 0;
    const full = new ApiServer({
      ...options,
      handler: stubHandler(async (req: ApiRequest) => {
        if (req.op === 'limits') return {};
        refused++;
        throw new HiqliteError('HQL_OVERLOADED', 'more than 1024 reads waiting', { retryable: true });
      }),
    });
    const up = new ApiServer({
      ...options,
      handler: stubHandler(async (req: ApiRequest) => (req.op === 'limits' ? {} : { served: req.op })),
    });
    const fullAddr = `${HOST}:${(await full.start()).port}`;
    const upAddr = `${HOST}:${(await up.start()).port}`;
    try {
      const link = testLink({
        nodes: [fullAddr, upAddr],
        requestTimeoutMs: 5000,
      });
      links.push(link);
      const query = { op: 'query', sql: 'SELECT 1', params: [], consistency: 'local', minIndex: 0 } as const;
      for (let i = 0; i < 3; i++)
        assert.deepEqual(await link.call(query, { kind: 'read', route: 'any' }), { served: 'query' });
      assert.equal(refused, 1, 'only the first read asked the overloaded node');
    } finally {
      await Promise.all([full.close(), up.close()]);
    }
  });

  for (const [code, message] of [
    ['HQL_UNAVAILABLE', 'node 1 stopped serving (ENOSPC): ask another node'],
    ['HQL_CLOSED', 'the node is shutting down'],
  ] as const)
    test(`a node that answers ${code} is left for the next one, as the any node and as the leader`, async () => {
      const options = apiServerOptions(SERVER_LIMITS);
      let refused = 0;
      let upAddr = '';
      let downAddr = '';
      const down: ApiServer = new ApiServer({
        ...options,
        handler: stubHandler(async (req: ApiRequest) => {
          // It still names itself as the leader, as a stopped leader's frozen view would.
          if (req.op === 'leader') return { leaderId: 1, leaderApi: downAddr };
          if (req.op === 'limits') return {};
          refused++;
          throw new HiqliteError(code, message, { retryable: true });
        }),
      });
      const up = new ApiServer({
        ...options,
        handler: stubHandler(async (req: ApiRequest) => {
          if (req.op === 'leader') return { leaderId: 2, leaderApi: upAddr };
          if (req.op === 'limits') return {};
          return { served: req.op };
        }),
      });
      downAddr = `${HOST}:${(await down.start()).port}`;
      upAddr = `${HOST}:${(await up.start()).port}`;
      try {
        for (const followLeader of [false, true]) {
          const link = testLink({
            nodes: [downAddr, upAddr],
            requestTimeoutMs: 5000,
            followLeader,
          });
          links.push(link);
          refused = 0;
          const write = await link.call(
            { op: 'propose', group: 'sql', data: new Uint8Array([1]) },
            { kind: 'write', route: 'leader' },
          );
          assert.deepEqual(write, { served: 'propose' });
          const read = await link.call(
            { op: 'query', sql: 'SELECT 1', params: [], consistency: 'local', minIndex: 0 },
            { kind: 'read', route: 'any' },
          );
          assert.deepEqual(read, { served: 'query' });
          // The write was refused once; the read went straight to the other node.
          assert.equal(
            refused,
            1,
            `requests refused by the node that cannot serve (followLeader ${followLeader})`,
          );
        }
      } finally {
        await Promise.all([down.close(), up.close()]);
      }
    });

  test('a node of another cluster is never used: the client stays with the cluster it first reached', async () => {
    const options = apiServerOptions(SERVER_LIMITS);
    // Node A of cluster aa…, which starts refusing (as a node restored alone answers reads while
    // it starts); node B of cluster bb… (the old cluster), which would answer everything.
    let aRefuses = false;
    const servedByB: string[] = [];
    const a = new ApiServer({
      ...options,
      clusterId: () => 'a'.repeat(32),
      handler: stubHandler(async (req: ApiRequest) => {
        if (req.op === 'limits' || req.op === 'leader') return {};
        if (aRefuses)
          throw new HiqliteError('HQL_UNAVAILABLE', 'node 1 is still starting', { retryable: true });
        return { servedBy: 'a' };
      }),
    });
    const b = new ApiServer({
      ...options,
      clusterId: () => 'b'.repeat(32),
      handler: stubHandler(async (req: ApiRequest) => {
        if (req.op === 'limits' || req.op === 'leader') return {};
        servedByB.push(req.op);
        return { servedBy: 'b' };
      }),
    });
    const aAddr = `${HOST}:${(await a.start()).port}`;
    const bAddr = `${HOST}:${(await b.start()).port}`;
    try {
      const linkOf = (nodes: string[]) => {
        const l = testLink({
          nodes,
          requestTimeoutMs: 1500,
        });
        links.push(l);
        return l;
      };
      const link = linkOf([aAddr, bAddr]);
      const read = { op: 'query', sql: 'SELECT 1', params: [], consistency: 'local', minIndex: 0 } as const;
      assert.deepEqual(await link.call(read, { kind: 'read', route: 'any' }), { servedBy: 'a' });
      aRefuses = true;
      await assert.rejects(link.call(read, { kind: 'read', route: 'any' }), (e: unknown) => {
        assert.ok(e instanceof HiqliteError, String(e));
        // The last word is A's refusal or B's other cluster; never an answer of B.
        assert.ok(['HQL_UNAVAILABLE', 'HQL_CLUSTER_MISMATCH'].includes(e.code), e.message);
        return true;
      });
      assert.deepEqual(servedByB, [], 'the node of the other cluster served nothing');
      // Started the other way round, a client stays with B's cluster: A is refused.
      const other = linkOf([bAddr, aAddr]);
      assert.deepEqual(await other.call(read, { kind: 'read', route: 'any' }), { servedBy: 'b' });
      await b.close();
      await assert.rejects(other.call(read, { kind: 'read', route: 'any' }), (e: unknown) => {
        assert.ok(e instanceof HiqliteError, String(e));
        assert.ok(['HQL_UNAVAILABLE', 'HQL_CLUSTER_MISMATCH'].includes(e.code), e.message);
        return true;
      });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('cluster link: every node of another cluster', () => {
  test('a call fails at once, not retryable, saying the cluster it knew is gone', {
    timeout: 30_000,
  }, async () => {
    // Found from outside: after a full restart of an in-memory cluster (a new cluster id on every
    // node) every call of a connected client retried to its deadline, 10-20 s, before it failed.
    let clusterId = 'a'.repeat(32);
    const a = new ApiServer({
      ...apiServerOptions(SERVER_LIMITS),
      clusterId: () => clusterId,
      handler: stubHandler(async (req: ApiRequest) => {
        if (req.op === 'limits' || req.op === 'leader') return {};
        return { servedBy: clusterId };
      }),
    });
    const addr = `${HOST}:${(await a.start()).port}`;
    const link = testLink({
      nodes: [addr],
      // Far beyond the test's own timeout: retried to its deadline, the call would time the test out.
      requestTimeoutMs: 120_000,
    });
    try {
      const read = { op: 'query', sql: 'SELECT 1', params: [], consistency: 'local', minIndex: 0 } as const;
      assert.deepEqual(await link.call(read, { kind: 'read', route: 'any' }), { servedBy: clusterId });
      // The whole cluster restarted as a new one: the node closes the connections of the old.
      clusterId = 'c'.repeat(32);
      a.closeClientsOfOtherClusters();
      await assert.rejects(link.call(read, { kind: 'read', route: 'any' }), (e: unknown) => {
        assert.ok(e instanceof HiqliteError, String(e));
        assert.equal(e.code, 'HQL_CLUSTER_MISMATCH', e.message);
        assert.equal(e.retryable, false);
        assert.match(
          e.message,
          /every node this client was given is now of cluster c+.*the cluster it knew is gone/,
        );
        assert.match(e.message, /cache_storage_disk = false.*Connect a new client/);
        return true;
      });
    } finally {
      await link.close();
      await a.close();
    }
  });
});

describe('cluster link: a request sent once whose connection fails', () => {
  test('is HQL_OUTCOME_UNKNOWN said of its op, not of a write', async () => {
    // Found from outside: a backup whose leader was killed said "the write may or may not have
    // been applied".
    let received = 0;
    const api = new ApiServer({
      ...apiServerOptions(SERVER_LIMITS),
      handler: {
        ...stubHandler(async (req: ApiRequest) => {
          if (req.op === 'backup') received++;
          return new Promise(() => {}); // the node dies under it
        }),
        ready: () => ({ ok: true }),
      },
    });
    const { port } = await api.start();
    // A relay the test cuts once the request reached the node.
    const sockets: Socket[] = [];
    const relay = createServer((client) => {
      const upstream = netConnect(port, HOST);
      sockets.push(client, upstream);
      client.pipe(upstream).pipe(client);
      client.on('error', () => {});
      upstream.on('error', () => {});
    });
    await new Promise<void>((r) => relay.listen(0, HOST, r));
    const link = testLink({
      nodes: [`${HOST}:${(relay.address() as AddressInfo).port}`],
      requestTimeoutMs: 20_000,
    });
    try {
      const call = link.call({ op: 'backup', timeoutMs: 20_000 }, { kind: 'once', route: 'any' });
      for (let i = 0; i < 500 && received === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(received, 1, 'the request reached the node');
      for (const s of sockets) s.destroy();
      await assert.rejects(call, (e: unknown) => {
        assert.ok(e instanceof HiqliteError, String(e));
        assert.equal(e.code, 'HQL_OUTCOME_UNKNOWN');
        assert.match(e.message, /^the backup request may or may not have been carried out: /);
        return true;
      });
    } finally {
      await link.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => relay.close(r));
      await api.close();
    }
  });
});

// Found from outside: a client holding 100 locks while its only node flapped dialled the node
// about 50 times a second, each renewal's retries a connection attempt of its own.
describe('cluster link: a node that refuses connections', () => {
  test('is dialled with a backoff, whatever the number of calls retrying on it', async () => {
    let dialled = 0;
    const refusing = createServer((s) => {
      dialled++;
      s.destroy();
    });
    await new Promise<void>((r) => refusing.listen(0, HOST, r));
    const link = testLink({
      nodes: [`${HOST}:${(refusing.address() as AddressInfo).port}`],
      requestTimeoutMs: 2000,
      connectTimeoutMs: 1000,
    });
    try {
      // 100 calls, started over the first 500 ms, each retrying for 2 s.
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < 100; i++) {
        calls.push(link.call({ op: 'metrics' }, { kind: 'other', route: 'any' }).catch((e: unknown) => e));
        if (i % 20 === 19) await new Promise((r) => setTimeout(r, 100));
      }
      const errors = await Promise.all(calls);
      for (const e of errors) assert.ok(e instanceof HiqliteError && e.code === 'HQL_UNAVAILABLE', String(e));
      // About 2.5 s of backoff 50, 100, 200, 400, 800, 1000 ms: under 10 dials (hundreds without).
      assert.ok(dialled >= 2 && dialled <= 10, `dialled ${dialled} times`);
    } finally {
      await link.close();
      await new Promise((r) => refusing.close(r));
    }
  });
});

// Found from outside: a node that took the TCP connection and never answered its handshake (a
// frozen process) held calls of 1 s until the connect timeout, 3 s.
describe('cluster link: a node that takes the connection and never answers', () => {
  test('a call ends at its own deadline, HQL_UNAVAILABLE (nothing was sent), not at the connect timeout', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => {
      sockets.push(s);
    });
    await new Promise<void>((r) => silent.listen(0, HOST, r));
    const link = testLink({
      nodes: [`${HOST}:${(silent.address() as AddressInfo).port}`],
      requestTimeoutMs: 500,
      connectTimeoutMs: 20_000,
    });
    try {
      for (const [body, kind] of [
        [{ op: 'metrics' }, 'other'],
        [{ op: 'propose', group: 'sql', data: new Uint8Array([1]) }, 'write'],
      ] as const) {
        const started = performance.now();
        const e = await link
          .call(body, { kind, route: kind === 'write' ? 'leader' : 'any' })
          .catch((x: unknown) => x);
        const tookMs = performance.now() - started;
        assert.ok(e instanceof HiqliteError, String(e));
        assert.equal(e.code, 'HQL_UNAVAILABLE', e.message);
        assert.equal(e.retryable, true);
        // The deadline kept: far from the connect timeout (20 s), whatever the machine's load.
        assert.ok(tookMs < 10_000, `${kind} ended after ${Math.round(tookMs)} ms`);
      }
      // A call without a deadline (a lock wait without waitMs) waits for the connection as long
      // as it takes: its timer set to Infinity fired after 1 ms (Node's TimeoutOverflowWarning),
      // and the call went round its retries, dialling again and again.
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.name);
      process.on('warning', onWarning);
      const stop = new AbortController();
      setTimeout(() => stop.abort(), 300);
      const endless = await link
        .call(
          { op: 'metrics' },
          { kind: 'other', route: 'any', timeoutMs: Number.POSITIVE_INFINITY, signal: stop.signal },
        )
        .catch((x: unknown) => x);
      assert.ok(endless instanceof HiqliteError, String(endless));
      assert.equal(endless.code, 'HQL_ABORTED', `ended by its signal, not at once: ${endless.message}`);
      await new Promise((r) => setImmediate(r));
      process.off('warning', onWarning);
      assert.deepEqual(warnings, [], 'no timer beyond what a timer holds');
      const started = performance.now();
      const listen = await link
        .listen(
          { channel: null },
          () => {},
          () => {},
          { timeoutMs: 500 },
        )
        .catch((x: unknown) => x);
      assert.ok(listen instanceof HiqliteError, String(listen));
      assert.ok(performance.now() - started < 10_000, 'the listener ended at its deadline');
    } finally {
      await link.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});
