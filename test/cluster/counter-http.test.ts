/**
 * The counter routes of HTTP (`/counter/{name}/{key}`) and the HTTP status of the cache group's
 * limits, on a `hiqlite serve` process and through a `hiqlite proxy` in front of it: the same
 * values a remote client sees, int64 as decimal strings (past 2^53, saturating at the bounds),
 * malformed, huge and out-of-range input refused with typed errors while the node keeps serving,
 * a full cache 507 and an oversized value 413 on both surfaces.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HiqliteClient } from '../../src/index.js';
import { Proxies, type ProxyProcess } from '../proxy/proxy-harness.js';
import { SECRET_API, TestCluster } from './harness.js';

const ENTRY_BYTES_MAX = 65_536;
const VALUE_BYTES_MAX = 1024;
/** Keys of one cache (and of one counter name): small so a test fills it. */
const ENTRIES_MAX = 3;
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

interface Answer {
  readonly status: number;
  readonly body: { ok?: boolean; value?: unknown; error?: { code?: string; retryable?: boolean } };
}

describe('HTTP: counters, and the status of the cache limits (node and proxy)', () => {
  let cluster: TestCluster;
  let proxies: Proxies;
  let proxy: ProxyProcess;
  let db: HiqliteClient;

  before(async () => {
    cluster = await TestCluster.create({
      nodes: 1,
      toml: [
        `entry_bytes_max = ${ENTRY_BYTES_MAX}`,
        `cache_value_bytes_max = ${VALUE_BYTES_MAX}`,
        `cache_entries_per_cache_max = ${ENTRIES_MAX}`,
      ].join('\n'),
    });
    proxies = new Proxies(cluster.dir, cluster.apiAddresses());
    proxy = await proxies.start('p', { toml: [`entry_bytes_max = ${ENTRY_BYTES_MAX}`] });
    db = await cluster.client();
  });

  after(async () => {
    await proxies?.close();
    await cluster?.close();
  });

  /** One request to the node (`via` 'node') or the proxy, JSON answer parsed. */
  async function call(via: 'node' | 'proxy', method: string, path: string, body?: string): Promise<Answer> {
    const base = via === 'node' ? `http://127.0.0.1:${cluster.node(1).apiPort}` : `http://${proxy.address}`;
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { 'X-API-SECRET': SECRET_API, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let parsed: Answer['body'];
    try {
      parsed = JSON.parse(text) as Answer['body'];
    } catch {
      parsed = { error: { code: `not JSON: ${text.slice(0, 80)}` } };
    }
    return { status: res.status, body: parsed };
  }
  const shape = (r: Answer) => [r.status, r.body.ok === true ? r.body.value : r.body.error?.code];

  for (const via of ['node', 'proxy'] as const) {
    test(`${via}: add, get, set, delete; int64 values as decimal strings, the same as the client's`, async () => {
      const name = `hits-${via}`;
      assert.deepEqual(shape(await call(via, 'GET', `/counter/${name}/home`)), [404, 'HQL_NOT_FOUND']);
      assert.deepEqual(shape(await call(via, 'POST', `/counter/${name}/home`, '{"delta":"5"}')), [200, '5']);
      assert.deepEqual(shape(await call(via, 'POST', `/counter/${name}/home`, '{"delta":-7}')), [200, '-2']);
      assert.equal(await db.counter(name).get('home', { consistency: 'linearizable' }), -2n);
      // Past 2^53: exact, both ways.
      await db.counter(name).set('big', 9_007_199_254_740_993n);
      assert.deepEqual(shape(await call(via, 'GET', `/counter/${name}/big?consistency=linearizable`)), [
        200,
        '9007199254740993',
      ]);
      assert.deepEqual(
        shape(await call(via, 'PUT', `/counter/${name}/big`, `{"value":"${INT64_MAX - 1n}"}`)),
        [200, null],
      );
      assert.equal(await db.counter(name).get('big', { consistency: 'linearizable' }), INT64_MAX - 1n);
      // Adds saturate at the bounds.
      assert.deepEqual(shape(await call(via, 'POST', `/counter/${name}/big`, '{"delta":"1000"}')), [
        200,
        String(INT64_MAX),
      ]);
      assert.deepEqual(shape(await call(via, 'PUT', `/counter/${name}/low`, `{"value":"${INT64_MIN}"}`)), [
        200,
        null,
      ]);
      assert.deepEqual(shape(await call(via, 'POST', `/counter/${name}/low`, `{"delta":"${INT64_MIN}"}`)), [
        200,
        String(INT64_MIN),
      ]);
      assert.deepEqual(shape(await call(via, 'DELETE', `/counter/${name}/home`)), [200, { deleted: true }]);
      assert.deepEqual(shape(await call(via, 'DELETE', `/counter/${name}/home`)), [200, { deleted: false }]);
      assert.equal(await db.counter(name).get('home', { consistency: 'linearizable' }), null);
      // A key in the path is URL-decoded, as the cache routes'.
      assert.deepEqual(shape(await call(via, 'POST', `/counter/${name}/a%2Fb%20c`, '{"delta":"1"}')), [
        200,
        '1',
      ]);
      assert.equal(await db.counter(name).get('a/b c', { consistency: 'linearizable' }), 1n);
      assert.deepEqual(shape(await call(via, 'DELETE', `/counter/${name}`)), [200, { removed: 3 }]);
      assert.equal(await db.counter(name).get('big', { consistency: 'linearizable' }), null);
    });

    test(`${via}: malformed, huge and out-of-range input is a typed 4xx; the node keeps serving`, async () => {
      const name = `bad-${via}`;
      const refused = async (
        method: string,
        path: string,
        body: string | undefined,
        status: number,
        code: string,
      ) =>
        assert.deepEqual(
          shape(await call(via, method, path, body)),
          [status, code],
          `${method} ${path.slice(0, 80)} ${body?.slice(0, 80)}`,
        );
      const invalid = (body: string, method = 'POST') =>
        refused(method, `/counter/${name}/k`, body, 400, 'HQL_INVALID_PARAMS');
      await invalid(`{"delta":"${INT64_MAX + 1n}"}`);
      await invalid(`{"delta":"${INT64_MIN - 1n}"}`);
      await invalid(`{"value":"${INT64_MAX + 1n}"}`, 'PUT');
      await invalid('{"delta":"99999999999999999999999999"}');
      await invalid('{"delta":9007199254740993}'); // a JSON number past 2^53 is not exact
      await invalid('{"delta":1.5}');
      await invalid('{"delta":"1e3"}');
      await invalid('{"delta":" 1"}');
      await invalid('{"delta":"0x10"}');
      await invalid('{"delta":""}');
      await invalid('{"delta":null}');
      // A number that parses to a whole double but is written as a fraction or with an exponent
      // (found from outside: 1.0000000000000001 added 1, 1e2 added 100).
      await invalid('{"delta":1.0000000000000001}');
      await invalid('{"delta":0.99999999999999999}');
      await invalid('{"delta":1e2}');
      await invalid('{"value":1.0}', 'PUT');
      await invalid('{"value":"5"}'); // POST takes a delta
      await invalid('{"delta":"5"}', 'PUT'); // PUT takes a value
      await invalid('[1]');
      await invalid('"5"');
      await invalid('{"delta":');
      await refused('GET', `/counter/${name}/k?consistency=strong`, undefined, 400, 'HQL_INVALID_PARAMS');
      await refused('GET', `/counter/${name}/%E0%A4%A`, undefined, 400, 'HQL_INVALID_PARAMS');
      await refused('GET', '/counter//k', undefined, 400, 'HQL_INVALID_PARAMS');
      await refused('PATCH', `/counter/${name}/k`, '{}', 405, 'HQL_INVALID_PARAMS');
      await refused('GET', `/counter/${name}`, undefined, 405, 'HQL_INVALID_PARAMS');
      // A body over entry_bytes_max is refused before it is kept.
      await refused(
        'POST',
        `/counter/${name}/k`,
        `{"delta":"1","pad":"${'x'.repeat(ENTRY_BYTES_MAX)}"}`,
        413,
        'HQL_REQUEST_TOO_LARGE',
      );
      // A key over cache_key_bytes_max: the state machine's limit, 413 like any request too large.
      await refused(
        'POST',
        `/counter/${name}/${'k'.repeat(5000)}`,
        '{"delta":"1"}',
        413,
        'HQL_CACHE_TOO_LARGE',
      );
      // Without the secret.
      const anon = await fetch(
        via === 'node'
          ? `http://127.0.0.1:${cluster.node(1).apiPort}/counter/x/k`
          : `http://${proxy.address}/counter/x/k`,
        { signal: AbortSignal.timeout(15_000) },
      );
      assert.equal(anon.status, 401);
      await anon.text();
      // Nothing was written, and the node serves.
      assert.deepEqual(shape(await call(via, 'GET', `/counter/${name}/k`)), [404, 'HQL_NOT_FOUND']);
      assert.deepEqual(shape(await call(via, 'POST', `/counter/${name}/k`, '{"delta":"2"}')), [200, '2']);
    });

    test(`${via}: a full cache is 507 HQL_CACHE_FULL (retryable), a value over its limit 413; room again is 200`, async () => {
      const cache = `full-${via}`;
      for (let i = 0; i < ENTRIES_MAX; i++)
        assert.deepEqual(shape(await call(via, 'PUT', `/cache/${cache}/k${i}`, '1')), [200, null]);
      const full = await call(via, 'PUT', `/cache/${cache}/one-more`, '1');
      assert.deepEqual(shape(full), [507, 'HQL_CACHE_FULL']);
      assert.equal(full.body.error?.retryable, true);
      // Counters have the same limit per name.
      const counter = `cfull-${via}`;
      for (let i = 0; i < ENTRIES_MAX; i++)
        assert.deepEqual(shape(await call(via, 'POST', `/counter/${counter}/k${i}`, '{"delta":"1"}')), [
          200,
          '1',
        ]);
      assert.deepEqual(shape(await call(via, 'POST', `/counter/${counter}/one-more`, '{"delta":"1"}')), [
        507,
        'HQL_CACHE_FULL',
      ]);
      const big = await call(
        via,
        'PUT',
        `/cache/${cache}/k0`,
        JSON.stringify('x'.repeat(VALUE_BYTES_MAX + 1)),
      );
      assert.deepEqual(shape(big), [413, 'HQL_CACHE_TOO_LARGE']);
      // Room again: the same request succeeds.
      assert.deepEqual(shape(await call(via, 'DELETE', `/cache/${cache}/k0`)), [200, { deleted: true }]);
      assert.deepEqual(shape(await call(via, 'PUT', `/cache/${cache}/one-more`, '1')), [200, null]);
    });
  }
});
