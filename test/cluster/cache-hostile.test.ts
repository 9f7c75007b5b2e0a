/**
 * The cache group against careless and hostile clients, on a `hiqlite serve` process and
 * through a `hiqlite proxy` in front of it: what a client sends wrong is answered with a typed
 * error (docs/ERRORS.md) and the node keeps serving.
 *
 * - JSON nested deeper than the msgpack encoder recurses (PUT /cache, POST /notify): 400
 *   HQL_INVALID_PARAMS, not HQL_INTERNAL; nested SQL parameters (POST /query, /execute, /txn):
 *   400 before they reach a read thread (a deep one crashed the node there).
 * - A request line or headers over Node's limit, a request that is not HTTP: a JSON answer
 *   (431 / 400), not a reset connection.
 * - `GET /listen` with a Last-Event-ID the cluster never sent: 400, not a stream that passes
 *   every notification up to that seq in silence.
 * - A query parameter a cache route does not take (`?ttl=` for `ttl_ms`, `?if_absent=1`), or one
 *   given twice: 400, not ignored in silence.
 * - Lock waits longer than a timer holds (2^31 ms) wait; a lease longer than 3 × 2^31 ms is
 *   not renewed every millisecond; absurd leaseMs / waitMs are HQL_INVALID_PARAMS; a value
 *   msgpack cannot hold is HQL_INVALID_PARAMS, not an untyped error.
 */
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type HiqliteClient, HiqliteError } from '../../src/index.js';
import { Proxies, type ProxyProcess } from '../proxy/proxy-harness.js';
import { openSse } from '../support/sse.js';
import { SECRET_API, sleep, TestCluster } from './harness.js';

interface Answer {
  readonly status: number;
  readonly body: { ok?: boolean; value?: unknown; error?: { code?: string; message?: string } };
}

describe('the cache group against careless and hostile clients (node and proxy)', () => {
  let cluster: TestCluster;
  let proxies: Proxies;
  let proxy: ProxyProcess;
  let db: HiqliteClient;

  before(async () => {
    cluster = await TestCluster.create({ nodes: 1 });
    proxies = new Proxies(cluster.dir, cluster.apiAddresses());
    proxy = await proxies.start('p');
    db = await cluster.client();
  });

  after(async () => {
    await proxies?.close();
    await cluster?.close();
  });

  const base = (via: 'node' | 'proxy') =>
    via === 'node' ? `http://127.0.0.1:${cluster.node(1).apiPort}` : `http://${proxy.address}`;

  async function call(
    via: 'node' | 'proxy',
    method: string,
    path: string,
    body?: string,
    headers: Record<string, string> = {},
  ): Promise<Answer> {
    const res = await fetch(`${base(via)}${path}`, {
      method,
      headers: { 'X-API-SECRET': SECRET_API, 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    try {
      return { status: res.status, body: JSON.parse(text) as Answer['body'] };
    } catch {
      return { status: res.status, body: { error: { code: `not JSON: ${text.slice(0, 80)}` } } };
    }
  }
  const shape = (r: Answer) => [r.status, r.body.ok === true ? 'ok' : r.body.error?.code];

  /** One raw request on a new connection: the whole answer the server sends before it closes. */
  function raw(via: 'node' | 'proxy', request: string): Promise<string> {
    const port = via === 'node' ? cluster.node(1).apiPort : proxy.port;
    return new Promise((resolve, reject) => {
      const s = netConnect(port, '127.0.0.1');
      let text = '';
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`no end of the answer within 10 s: ${text.slice(0, 200)}`));
      }, 10_000);
      s.on('data', (d: Buffer) => {
        text += d.toString('latin1');
      });
      s.on('error', () => {});
      s.on('close', () => {
        clearTimeout(timer);
        resolve(text);
      });
      s.write(request);
    });
  }

  async function alive(via: 'node' | 'proxy'): Promise<void> {
    assert.deepEqual(shape(await call(via, 'PUT', '/cache/alive/k', '"yes"')), [200, 'ok']);
  }

  const deep = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

  for (const via of ['node', 'proxy'] as const) {
    test(`${via}: JSON nested too deep for msgpack is 400 HQL_INVALID_PARAMS (PUT, notify)`, async () => {
      for (const depth of [5_000, 100_000]) {
        const put = await call(via, 'PUT', '/cache/deep/k', deep(depth));
        assert.deepEqual(shape(put), [400, 'HQL_INVALID_PARAMS'], JSON.stringify(put.body));
        const notify = await call(via, 'POST', '/notify', `{"channel":"d","payload":${deep(depth)}}`);
        assert.deepEqual(shape(notify), [400, 'HQL_INVALID_PARAMS'], JSON.stringify(notify.body));
      }
      // An empty channel could not be listened to alone (GET /listen without one is every channel).
      const empty = await call(via, 'POST', '/notify', '{"channel":"","payload":1}');
      assert.deepEqual(shape(empty), [400, 'HQL_INVALID_PARAMS'], JSON.stringify(empty.body));
      // A nesting msgpack holds is stored as it came.
      assert.deepEqual(shape(await call(via, 'PUT', '/cache/deep/ok', deep(100))), [200, 'ok']);
      assert.deepEqual((await call(via, 'GET', '/cache/deep/ok')).body.value, JSON.parse(deep(100)));
      await alive(via);
    });

    test(`${via}: nested SQL parameters are 400 HQL_INVALID_PARAMS and the node keeps serving`, async () => {
      const bodies: [string, string][] = [
        ['/query', `{"sql":"SELECT ?","params":[${deep(100_000)}]}`],
        ['/query', `{"sql":"SELECT :a","params":{"a":${deep(100_000)}}}`],
        ['/query', '{"sql":"SELECT ?","params":[[1]]}'],
        ['/execute', `{"sql":"SELECT ?","params":[${deep(100_000)}]}`],
        ['/txn', `{"statements":[["SELECT ?",[${deep(100_000)}]]]}`],
        ['/query', '{"sql":"SELECT ?","params":"x"}'],
      ];
      for (const [path, body] of bodies) {
        const r = await call(via, 'POST', path, body);
        assert.deepEqual(shape(r), [400, 'HQL_INVALID_PARAMS'], `${path}: ${JSON.stringify(r.body)}`);
      }
      const q = await call(via, 'POST', '/query', '{"sql":"SELECT ? AS a, :b AS b","params":[1]}');
      assert.deepEqual(shape(q), [400, 'HQL_INVALID_PARAMS']); // mixed styles: the SQL layer's own check
      const ok = await call(
        via,
        'POST',
        '/query',
        '{"sql":"SELECT ? AS a, ? AS b, ? AS c","params":[1,"x",true]}',
      );
      assert.deepEqual(ok.body.value, [{ a: 1, b: 'x', c: 1 }]);
      // `$ref` of a txn still passes.
      const txn = await call(
        via,
        'POST',
        '/txn',
        '{"statements":[["SELECT 7 AS n"],["SELECT ? AS m",[{"$ref":[0,0,"n"]}]]]}',
      );
      assert.deepEqual(shape(txn), [200, 'ok'], JSON.stringify(txn.body));
      await alive(via);
    });

    test(`${via}: a request line over the header limit is 431 JSON, a request that is not HTTP 400 JSON`, async () => {
      const long = await raw(
        via,
        `GET /cache/big/${'a'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\nX-API-SECRET: ${SECRET_API}\r\n\r\n`,
      );
      assert.match(long, /^HTTP\/1\.1 431 /);
      assert.match(long, /"code":"HQL_REQUEST_TOO_LARGE"/);
      const garbage = await raw(via, 'NOT HTTP AT ALL\r\n\r\n');
      assert.match(garbage, /^HTTP\/1\.1 400 /);
      assert.match(garbage, /"code":"HQL_INVALID_PARAMS"/);
      await alive(via);
    });

    test(`${via}: a query parameter a cache route does not take, or one given twice, is 400`, async () => {
      const refused: [string, string, string?][] = [
        ['PUT', `/cache/q-${via}/k?ttl=60000`, '1'], // misspelt ttl_ms: the entry would never expire
        ['PUT', `/cache/q-${via}/k?if_absent=1`, '1'], // if_absent=1 stored unconditionally
        ['PUT', `/cache/q-${via}/k?if_absent=TRUE`, '1'],
        ['PUT', `/cache/q-${via}/k?ttl_ms=1000&ttl_ms=2000`, '1'],
        ['GET', `/cache/q-${via}/k?consistency=linearizable&x=1`],
        ['DELETE', `/cache/q-${via}/k?force=true`],
        ['DELETE', `/cache/q-${via}?all=1`],
        ['GET', `/counter/q-${via}/k?consistancy=linearizable`],
        ['POST', `/counter/q-${via}/k?delta=1`, '{"delta":"1"}'],
        ['POST', '/notify?channel=x', '{"channel":"x"}'],
        ['GET', '/listen?chanel=x'],
      ];
      for (const [method, path, body] of refused) {
        const r = await call(via, method, path, body);
        assert.deepEqual(
          shape(r),
          [400, 'HQL_INVALID_PARAMS'],
          `${method} ${path}: ${JSON.stringify(r.body)}`,
        );
      }
      const absent = await call(via, 'GET', `/cache/q-${via}/k`);
      assert.deepEqual(shape(absent), [404, 'HQL_NOT_FOUND'], 'nothing was stored');
      assert.deepEqual(shape(await call(via, 'PUT', `/cache/q-${via}/k?ttl_ms=60000&if_absent=false`, '1')), [
        200,
        'ok',
      ]);
      assert.deepEqual(shape(await call(via, 'PUT', `/cache/q-${via}/k?if_absent=true`, '2')), [200, 'ok']);
      assert.deepEqual((await call(via, 'GET', `/cache/q-${via}/k?consistency=linearizable`)).body.value, 1);
    });

    test(`${via}: GET /listen after a seq the cluster never sent is 400, not a silent stream`, async () => {
      const { seq } = (await call(via, 'POST', '/notify', '{"channel":"resume","payload":1}')).body.value as {
        seq: number;
      };
      for (const id of [seq + 1, seq + 1_000_000]) {
        const r = await call(via, 'GET', '/listen?channel=resume', undefined, {
          'last-event-id': String(id),
        });
        assert.deepEqual(shape(r), [400, 'HQL_INVALID_PARAMS'], JSON.stringify(r.body));
        assert.match(r.body.error?.message ?? '', /cannot resume after notification/);
      }
      // The last seq sent is a resume point: the next notification arrives.
      const sse = await openSse(`${base(via)}/listen?channel=resume`, {
        'X-API-SECRET': SECRET_API,
        'last-event-id': String(seq),
      });
      try {
        assert.equal((await sse.next()).event, 'listening');
        await call(via, 'POST', '/notify', '{"channel":"resume","payload":2}');
        const n = await sse.next();
        assert.equal(n.event, 'notification');
        assert.equal(Number(n.id), seq + 1);
      } finally {
        sse.close();
      }
    });
  }

  test('a lock wait longer than a timer holds (2^31 ms) waits, and is granted on release', async () => {
    const holder = await db.lock('long-wait', { leaseMs: 10_000 });
    const started = Date.now();
    const waiting = db.lock('long-wait', { leaseMs: 10_000, waitMs: 3_000_000_000 });
    const early = await Promise.race([
      waiting.then(
        () => 'granted',
        (e: unknown) => `failed after ${Date.now() - started} ms: ${(e as Error).message}`,
      ),
      sleep(1_500).then(() => 'waiting'),
    ]);
    assert.equal(early, 'waiting');
    await holder.release();
    const next = await waiting;
    assert.ok(next.token > holder.token);
    await next.release();
  });

  test('a lease longer than 3 × 2^31 ms is not renewed every millisecond', async () => {
    const commitIndex = async () =>
      ((await cluster.http(1, '/health')).body as { cache: { commitIndex: number } }).cache.commitIndex;
    const lock = await db.lock('long-lease', { leaseMs: 10_000_000_000 });
    const before = await commitIndex();
    await sleep(1_000);
    const grown = (await commitIndex()) - before;
    await lock.release();
    assert.ok(grown < 5, `the cache log grew by ${grown} entries in 1 s of holding one lock`);
    assert.equal(lock.lost.aborted, false);
  });

  test('absurd leaseMs and waitMs, and values msgpack cannot hold, are HQL_INVALID_PARAMS', async () => {
    const code = async (f: () => Promise<unknown>) => {
      try {
        await f();
        return 'ok';
      } catch (e) {
        return e instanceof HiqliteError ? e.code : `untyped ${String(e)}`;
      }
    };
    for (const leaseMs of [
      0,
      -1,
      1.5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      1e16,
      '100' as unknown as number,
    ]) {
      assert.equal(
        await code(() => db.lock('absurd', { leaseMs })),
        'HQL_INVALID_PARAMS',
        `leaseMs ${leaseMs}`,
      );
      assert.equal(
        await code(() => db.tryLock('absurd', { leaseMs })),
        'HQL_INVALID_PARAMS',
        `leaseMs ${leaseMs}`,
      );
    }
    for (const waitMs of [-1, 0.5, Number.NaN, 1e16]) {
      assert.equal(await code(() => db.lock('absurd', { waitMs })), 'HQL_INVALID_PARAMS', `waitMs ${waitMs}`);
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    let nested: unknown[] = [];
    for (let i = 0; i < 100_000; i++) nested = [nested];
    const c = db.cache('odd');
    for (const value of [Symbol('s'), cyclic, 2n ** 70n, nested]) {
      assert.equal(await code(() => c.put('k', value)), 'HQL_INVALID_PARAMS', String(typeof value));
      assert.equal(await code(() => db.notify('odd', value)), 'HQL_INVALID_PARAMS', String(typeof value));
    }
    // Nothing was taken by the refused calls: the lock is free.
    const l = await db.tryLock('absurd');
    assert.ok(l !== null);
    await l.release();
  });
});
