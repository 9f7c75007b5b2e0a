/**
 * Requests a careless or hostile HTTP client sends a node's API port.
 *
 * Paths: the API port matches routes on the path as the client sent it. With the URL parser's
 * resolution of dot segments, `POST /cache/x/%2e%2e/%2e%2e/query` ran as `POST /query`: a
 * reverse proxy that lets only `/cache/*` through (and does not resolve `%2e%2e`) let SQL through.
 * Now an encoded dot segment is data (a cache key `..`), a literal one or a backslash is refused,
 * and every spelling of the SQL routes behind a cache prefix stays a cache request.
 *
 * Bodies: 8 MB of `[[[…]]]` (within entry_bytes_max) held the node's event loop for 3–5 s in
 * `JSON.parse`, and the leader lost its term; nesting past `http_json_depth_max` is now refused
 * by a scan before parsing, on every JSON route.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type HiqliteNode, start } from '../../src/index.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';

/** One request with its path exactly as given (fetch would resolve dot segments first). */
function raw(
  port: number,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; text: string; headers: import('node:http').IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: {
          'x-api-secret': TEST_SECRETS.secretApi,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer to ${method} ${path}`)));
    req.on('error', reject);
    req.end(body);
  });
}

describe('HTTP routes match the path as sent (no dot-segment resolution)', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-request-target-'));
  let node: HiqliteNode;
  let port = 0;

  before(async () => {
    const cfg = {
      ...(await oneNodeConfig(root)),
      httpJsonDepthMax: 40,
      httpJsonValuesMax: 100_000,
      cacheListenerBufferBytesMax: 350_000,
    };
    node = await start(cfg, { thread: 'main' });
    await node.waitUntilHealthy({ timeoutMs: 20_000 });
    port = Number(cfg.nodes[0]?.addrApi.split(':')[1]);
  });
  after(async () => {
    await node?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test('SQL routes spelled behind a cache or counter prefix are never SQL', async () => {
    const sql = JSON.stringify({ sql: 'SELECT 42 AS x' });
    for (const path of [
      '/cache/x/%2e%2e/%2e%2e/query',
      '/cache/x/%2E%2E/%2E%2E/query',
      '/cache/x/.%2e/%2e./query',
      '/counter/%2e%2e/query',
      '/cache/x/%2e%2e/%2e%2e/execute',
    ]) {
      const r = await raw(port, 'POST', path, sql);
      assert.notEqual(r.status, 200, `${path}: ${r.text}`);
      assert.doesNotMatch(r.text, /42/, `${path} ran SQL: ${r.text}`);
    }
  });

  test('a literal dot segment or a backslash is refused with HQL_INVALID_PARAMS', async () => {
    for (const [method, path] of [
      ['POST', '/cache/x/../../query'],
      ['GET', '/cache/c/./k'],
      ['GET', '/cache/c/..'],
      ['GET', '/health/..'],
      ['POST', '/cache\\..\\query'],
      ['GET', '/dashboard/../health'],
    ] as const) {
      const r = await raw(port, method, path, method === 'POST' ? '{}' : undefined);
      assert.equal(r.status, 400, `${method} ${path}: ${r.text}`);
      assert.equal((JSON.parse(r.text) as { error?: { code?: string } }).error?.code, 'HQL_INVALID_PARAMS');
    }
  });

  test('encoded dots are data: keys "." and ".." are stored and read over HTTP, apart from the empty key', async () => {
    for (const [key, enc] of [
      ['.', '%2E'],
      ['..', '%2e%2e'],
      ['a/..', 'a%2F%2e%2e'],
    ] as const) {
      const put = await raw(port, 'PUT', `/cache/dots/${enc}`, JSON.stringify(`value of ${key}`));
      assert.equal(put.status, 200, put.text);
      assert.equal(await node.cache('dots').get(key), `value of ${key}`);
      const got = await raw(port, 'GET', `/cache/dots/${enc}`);
      assert.equal(got.status, 200, got.text);
      assert.match(got.text, new RegExp(`value of ${key.replace(/\./g, '\\.')}`));
    }
    assert.equal(await node.cache('dots').get(''), null, 'no dot key was stored as the empty key');
  });

  test('an absolute-form target routes by its path', async () => {
    const r = await raw(port, 'GET', `http://127.0.0.1:${port}/health`);
    assert.equal(r.status, 200, r.text);
  });

  test('a JSON body nested past http_json_depth_max is refused before parsing, on SQL, cache and notify routes', async () => {
    const nested = (d: number) => `${'['.repeat(d)}${']'.repeat(d)}`;
    const deep = nested(4_000_000);
    for (const [method, path, body] of [
      ['PUT', '/cache/deep/k', deep],
      ['POST', '/execute', `{"sql":"SELECT ?","params":[${deep}]}`],
      ['POST', '/notify', `{"channel":"c","payload":${deep}}`],
      ['PUT', '/cache/deep/k', nested(41)],
    ] as const) {
      const r = await raw(port, method, path, body);
      assert.equal(r.status, 400, `${method} ${path}: ${r.text.slice(0, 200)}`);
      const e = (JSON.parse(r.text) as { error?: { code?: string; message?: string } }).error;
      assert.equal(e?.code, 'HQL_INVALID_PARAMS');
      assert.match(e?.message ?? '', /more than 40 deep \(http_json_depth_max\)/);
    }
    // Wide instead of deep: more values than http_json_values_max, refused before parsing.
    const wide = await raw(
      port,
      'POST',
      '/execute',
      `{"sql":"SELECT ?","params":[[${'[],'.repeat(100_000)}[]]]}`,
    );
    assert.equal(wide.status, 400, wide.text.slice(0, 200));
    assert.match(wide.text, /more than 100000 values \(http_json_values_max\)/);
    // At the limit the value is stored, and the node goes on serving.
    const ok = await raw(port, 'PUT', '/cache/deep/k', nested(40));
    assert.equal(ok.status, 200, ok.text);
    const got = (await node.cache('deep').get('k')) as unknown[];
    assert.ok(Array.isArray(got));
  });

  test('a notify channel with a lone surrogate (JSON "\\ud800") is refused: it would be the channel of U+FFFD', async () => {
    const r = await raw(port, 'POST', '/notify', '{"channel":"c\\ud800","payload":1}');
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /lone UTF-16 surrogate/);
    // Encoded in the path, a lone surrogate is not UTF-8 at all: 400 as before.
    const k = await raw(port, 'PUT', '/cache/c/%ED%A0%80', '1');
    assert.equal(k.status, 400, k.text);
  });

  test('a listener that does not read lags at cache_listener_buffer_bytes_max, long before its count', async () => {
    // 100 KB payloads (100,077 bytes each as counted), 350,000 bytes: three fit, the fourth does
    // not (the count bound is 10,000).
    const it = node.listen('bytes')[Symbol.asyncIterator]();
    const first = it.next(); // opens the listener; nothing is read after it
    await node.notify('bytes', 'x');
    assert.equal((await first).value?.payload, 'x');
    const payload = 'p'.repeat(100_000);
    for (let i = 0; i < 4; i++) await node.notify('bytes', payload);
    const got: unknown[] = [];
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error('no HQL_LAGGED within 10 s')), 10_000);
    });
    const reading = (async () => {
      for (;;) {
        const r = await it.next();
        if (r.done === true) return;
        got.push(r.value.payload);
      }
    })();
    await assert.rejects(
      Promise.race([reading, deadline]).finally(() => clearTimeout(timer)),
      (e: { code?: string; missed?: number }) => {
        assert.equal(e.code, 'HQL_LAGGED');
        assert.equal(
          e.missed,
          4,
          `the three queued and the one that did not fit: ${JSON.stringify(e)} ${String(e)}`,
        );
        return true;
      },
    );
    assert.deepEqual(got, [], 'what was queued was dropped with the lag');
  });

  test('a remote listener that does not read lags at its listenBufferBytesMax', async () => {
    const remote = await connect({
      nodes: [`127.0.0.1:${port}`],
      secretApi: TEST_SECRETS.secretApi,
      // Below the node's 350,000: two fit here, the third does not (the node's bound would say 4).
      listenBufferBytesMax: 250_000,
    });
    try {
      const it = remote.listen('remote-bytes')[Symbol.asyncIterator]();
      const first = it.next();
      await remote.notify('remote-bytes', 'x');
      assert.equal((await first).value?.payload, 'x');
      for (let i = 0; i < 4; i++) await remote.notify('remote-bytes', 'p'.repeat(100_000));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_r, reject) => {
        timer = setTimeout(() => reject(new Error('no HQL_LAGGED within 10 s')), 10_000);
      });
      await assert.rejects(
        Promise.race([it.next(), deadline]).finally(() => clearTimeout(timer)),
        (e: { code?: string; missed?: number }) => {
          assert.equal(e.code, 'HQL_LAGGED', String(e));
          assert.equal(e.missed, 3);
          return true;
        },
      );
    } finally {
      await remote.close();
    }
  });

  test('HEAD /health and /ready answer as GET without a body; a 405 names the methods in Allow', async () => {
    for (const path of ['/health', '/ready']) {
      const r = await raw(port, 'HEAD', path);
      assert.equal(r.status, 200, `HEAD ${path}`);
      assert.equal(r.text, '');
    }
    for (const [method, path, allow] of [
      ['POST', '/cache/c/k', 'GET, PUT, DELETE'],
      ['GET', '/notify', 'POST'],
      ['POST', '/listen', 'GET'],
      ['GET', '/counter/n', 'DELETE'],
      // The SQL routes and the node's own (a `GET /query` was 404, as if there were no route).
      ['GET', '/query', 'POST'],
      ['PUT', '/execute', 'POST'],
      ['GET', '/batch', 'POST'],
      ['DELETE', '/txn', 'POST'],
      ['GET', '/backup', 'POST'],
      ['POST', '/health', 'GET, HEAD'],
      ['DELETE', '/ready', 'GET, HEAD'],
      ['POST', '/metrics', 'GET'],
    ] as const) {
      const r = await raw(port, method, path, method === 'POST' ? '{}' : undefined);
      assert.equal(r.status, 405, `${method} ${path}: ${r.text}`);
      assert.equal(r.headers.allow, allow);
      assert.match(r.text, /HQL_INVALID_PARAMS/, `${method} ${path}`);
    }
    // A path no method has stays 404.
    const nowhere = await raw(port, 'GET', '/querys');
    assert.equal(nowhere.status, 404, nowhere.text);
    assert.equal(nowhere.headers.allow, undefined);
  });

  test('GET /listen?channel= (empty) is refused: every channel is asked by leaving it out', async () => {
    const r = await raw(port, 'GET', '/listen?channel=');
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /must not be empty: leave it out/);
  });
});
