/**
 * The HTTP JSON routes (`/execute`, `/query`, `/txn`, `/batch`) and the cache read routes refuse
 * a field they do not take and a value of the wrong kind with HQL_INVALID_PARAMS (400), instead
 * of ignoring it: `"consistency": "Linearizable"` was a local read without a word, `"retuning":
 * true` (a typo) an execute that returned no rows, `"returning": "yes"` the same.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type HiqliteNode, start } from '../../src/index.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';

interface Answer {
  value?: unknown;
  error?: { code: string; message: string };
}

describe('HTTP JSON routes: fields checked, none ignored', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-json-fields-'));
  let node: HiqliteNode;
  let base = '';

  before(async () => {
    const cfg = await oneNodeConfig(root);
    node = await start(cfg, { thread: 'main' });
    await node.waitUntilHealthy({ timeoutMs: 20_000 });
    base = `http://${cfg.nodes[0]?.addrApi}`;
    await node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  });
  after(async () => {
    await node?.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** One request with the secret and a JSON content type; `body` sent as it is (text or bytes). */
  async function send(
    method: string,
    route: string,
    body?: string | Buffer,
  ): Promise<{ status: number; json: Answer }> {
    const res = await fetch(`${base}${route}`, {
      method,
      headers: { 'x-api-secret': TEST_SECRETS.secretApi, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body }),
    });
    return { status: res.status, json: (await res.json()) as Answer };
  }

  function post(route: string, body: unknown): Promise<{ status: number; json: Answer }> {
    return send('POST', route, body === undefined ? undefined : JSON.stringify(body));
  }

  async function refused(route: string, body: unknown, mentions: string): Promise<void> {
    const { status, json } = await post(route, body);
    assert.equal(status, 400, `${route} ${JSON.stringify(body)}: ${JSON.stringify(json)}`);
    assert.equal(json.error?.code, 'HQL_INVALID_PARAMS');
    assert.match(json.error?.message, new RegExp(mentions), JSON.stringify(json));
  }

  test('a misspelled or mistyped consistency is refused, the right ones read', async () => {
    for (const consistency of ['Linearizable', 'strong', '', 1, true, {}])
      await refused('/query', { sql: 'SELECT 1 AS n', consistency }, 'consistency must be');
    // Absent or null: the default, a local read.
    for (const consistency of ['local', 'linearizable', undefined, null]) {
      const { status, json } = await post('/query', { sql: 'SELECT 1 AS n', consistency });
      assert.equal(status, 200, JSON.stringify(json));
      assert.deepEqual(json.value, [{ n: 1 }]);
    }
  });

  test('a field a route does not take is refused, naming the ones it does', async () => {
    await refused(
      '/query',
      { sql: 'SELECT 1', consistancy: 'linearizable' },
      'unknown field "consistancy" \\(did you mean "consistency"\\?\\)',
    );
    await refused(
      '/query',
      { sql: 'SELECT ?', param: [1] },
      'unknown field "param".*sql, params, consistency',
    );
    await refused(
      '/execute',
      { sql: "INSERT INTO t (v) VALUES ('a')", retuning: true },
      'unknown field "retuning"',
    );
    await refused('/execute', { sql: 'DELETE FROM t', consistency: 'local' }, 'unknown field "consistency"');
    await refused('/txn', { statements: [['SELECT 1']], sql: 'SELECT 1' }, 'unknown field "sql"');
    await refused('/batch', { sql: 'SELECT 1', params: [] }, 'unknown field "params"');
    // Nothing of the refused writes was applied.
    assert.deepEqual(await node.query('SELECT count(*) AS n FROM t'), [{ n: 0 }]);
  });

  test('returning must be a boolean; true returns the rows', async () => {
    for (const returning of ['yes', 1, 'true', {}])
      await refused(
        '/execute',
        { sql: "INSERT INTO t (v) VALUES ('b') RETURNING id", returning },
        'returning must be',
      );
    const { status, json } = await post('/execute', {
      sql: "INSERT INTO t (v) VALUES ('c') RETURNING v",
      returning: true,
    });
    assert.equal(status, 200, JSON.stringify(json));
    assert.deepEqual((json.value as { rows: unknown }).rows, [{ v: 'c' }]);
  });

  test('a txn statement is [sql] or [sql, params], nothing more', async () => {
    await refused('/txn', { statements: [['SELECT 1'], []] }, 'statements\\[1\\] must be');
    await refused(
      '/txn',
      { statements: [['INSERT INTO t (v) VALUES (?)', ['d'], 'extra']] },
      'statements\\[0\\] must be',
    );
    const { status, json } = await post('/txn', {
      statements: [['INSERT INTO t (v) VALUES (?)', ['e']], ['SELECT 1']],
    });
    assert.equal(status, 200, JSON.stringify(json));
    assert.equal((json.value as { results: unknown[] }).results.length, 2);
  });

  test('query parameters on a JSON route, and anything in the body or query of POST /backup, are refused (they were ignored)', async () => {
    await refused(
      '/query?consistency=linearizable',
      { sql: 'SELECT 1' },
      '^/query takes no query parameters \\(got "consistency"\\)',
    );
    await refused('/execute?returning=true', { sql: 'SELECT 1' }, '^/execute takes no query parameters');
    await refused('/backup?target=s3', undefined, '^/backup takes no query parameters \\(got "target"\\)');
    await refused('/backup', { target: 's3' }, '^unknown field "target": /backup takes none$');
    await refused('/backup', [], '^the body must be a JSON object$');
    // Without either, the backup is attempted: this node has none configured, which it says.
    for (const body of [undefined, {}]) {
      const { json } = await post('/backup', body);
      assert.notEqual(json.error?.code, 'HQL_INVALID_PARAMS', JSON.stringify(json));
    }
  });

  test("a txn without statements, or with a $ref to a later statement, is the caller's error (it was HQL_MALFORMED_COMMAND)", async () => {
    await refused('/txn', { statements: [] }, '^statements: empty$');
    await refused(
      '/txn',
      { statements: [['SELECT ? AS x', [{ $ref: [1, 0, 'x'] }]], ['SELECT 1 AS x']] },
      '^statements\\[0\\]\\.params\\[0\\]: \\$ref is only valid in a later statement',
    );
    await refused(
      '/execute',
      { sql: 'SELECT ?', params: [{ $ref: [0, 0, 'x'] }] },
      '^params\\[0\\]: \\$ref is only valid in a later statement',
    );
  });

  test('POST /notify and the counter bodies refuse a field they do not take (a misspelled payload was a null notification)', async () => {
    const cases: [string, string, unknown, string][] = [
      ['POST', '/notify', { channel: 'c', paylod: { a: 1 } }, 'unknown field "paylod"'],
      // As db.notify('c') without a payload is refused (it was sent as null).
      ['POST', '/notify', { channel: 'c' }, '"payload" is missing \\(null is a payload\\)'],
      ['POST', '/counter/hits/k', { delta: 1, value: 5 }, 'unknown field "value"'],
      ['PUT', '/counter/hits/k', { value: 1, delta: 5 }, 'unknown field "delta"'],
    ];
    for (const [method, path, body, mentions] of cases) {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { 'x-api-secret': TEST_SECRETS.secretApi, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as Answer;
      assert.equal(res.status, 400, `${method} ${path}: ${JSON.stringify(json)}`);
      assert.equal(json.error?.code, 'HQL_INVALID_PARAMS');
      assert.match(json.error?.message ?? '', new RegExp(mentions));
    }
    // Nothing was counted.
    assert.equal(await node.counter('hits').get('k'), null);
  });

  test('a cache or counter read with a misspelled consistency is refused the same way', async () => {
    for (const path of ['/cache/c/k?consistency=Linearizable', '/counter/c/k?consistency=strong']) {
      const res = await fetch(`${base}${path}`, { headers: { 'x-api-secret': TEST_SECRETS.secretApi } });
      const json = (await res.json()) as { error?: { code: string; message: string } };
      assert.equal(res.status, 400, path);
      assert.equal(json.error?.code, 'HQL_INVALID_PARAMS');
      assert.match(json.error?.message ?? '', /consistency must be "local" or "linearizable"/);
    }
  });

  test('a JSON body that is not UTF-8 is refused (a Latin-1 é reached the table as U+FFFD); UTF-8 is stored as sent', async () => {
    const body = (text: string, encoding: BufferEncoding) =>
      Buffer.from(JSON.stringify({ sql: 'INSERT INTO t (v) VALUES (?)', params: [text] }), encoding);
    for (const route of ['/execute', '/notify']) {
      const latin1 =
        route === '/notify'
          ? Buffer.from('{"channel":"c","payload":"café"}', 'latin1')
          : body('café', 'latin1');
      const { status, json } = await send('POST', route, latin1);
      assert.equal(status, 400, `${route}: ${JSON.stringify(json)}`);
      assert.equal(json.error?.code, 'HQL_INVALID_PARAMS');
      assert.match(json.error?.message ?? '', /not UTF-8/);
    }
    assert.equal((await send('POST', '/execute', body('café', 'utf8'))).status, 200);
    assert.deepEqual(await node.query('SELECT v FROM t WHERE v LIKE ?', ['caf%']), [{ v: 'café' }]);
  });

  // Found from outside: 300,000 named parameters in one /query held the node's thread for
  // seconds (its leader lost its term); the binary path refused them, HTTP did not.
  test('more parameters than a statement can take are refused before they are converted, on every path', async () => {
    const named = Object.fromEntries(Array.from({ length: 40_000 }, (_, i) => [`k${i}`, 1]));
    const listed = Array.from({ length: 40_000 }, () => 1);
    for (const params of [named, listed]) {
      for (const route of ['/query', '/execute']) {
        const sql = route === '/query' ? 'SELECT 1 AS x' : 'INSERT INTO t (v) VALUES (1)';
        const { status, json } = await post(route, { sql, params });
        assert.equal(status, 400, `${route}: ${JSON.stringify(json).slice(0, 200)}`);
        assert.match(json.error?.message ?? '', /40000 parameters, more than a statement can take \(32766\)/);
      }
      await assert.rejects(node.query('SELECT 1 AS x', params), {
        code: 'HQL_INVALID_PARAMS',
        message: /40000 parameters, more than a statement can take/,
      });
    }
  });

  // Found from outside: {"sql": "SELECT 1", "sql": "SELECT 2"} ran the second.
  test('a key twice in one object of a body is refused, naming it; the same key in two objects is not', async () => {
    const twice = async (route: string, text: string, key: string) => {
      const { status, json } = await send('POST', route, text);
      assert.equal(status, 400, `${text}: ${JSON.stringify(json)}`);
      assert.equal(json.error?.code, 'HQL_INVALID_PARAMS');
      assert.match(json.error?.message ?? '', new RegExp(`the key "${key}" twice in one object`));
    };
    await twice('/query', '{"sql":"SELECT 1 AS x","sql":"SELECT 2 AS x"}', 'sql');
    await twice('/execute', '{"sql":"INSERT INTO t (v) VALUES (:v)","params":{"v":"a","v":"b"}}', 'v');
    await twice('/query', '{"sql":"SELECT 1 AS x","\\u0073ql":"SELECT 2 AS x"}', 'sql');
    await twice('/notify', '{"channel":"c","payload":{"a":{"b":1,"b":2}}}', 'b');
    const fine = await send('POST', '/notify', '{"channel":"c","payload":[{"k":1},{"k":2},{"k":{"k":3}}]}');
    assert.equal(fine.status, 200, JSON.stringify(fine.json));
  });

  // Found from outside: a blob of 4 MiB and more was HQL_INTERNAL (500), the base64 check's
  // regular expression ran out of stack.
  test('a {"$blob": base64} parameter of 5 MiB is stored as its bytes; base64 that is not is refused', async () => {
    const bytes = Buffer.alloc(5 * 1024 * 1024, 7);
    const b64 = bytes.toString('base64');
    for (const route of ['/query', '/execute']) {
      const sql = route === '/query' ? 'SELECT length(?) AS n' : 'INSERT INTO t (v) VALUES (?)';
      const { status, json } = await post(route, { sql, params: [{ $blob: b64 }] });
      assert.equal(status, 200, `${route}: ${JSON.stringify(json).slice(0, 300)}`);
    }
    assert.deepEqual(await node.query('SELECT length(v) AS n FROM t WHERE typeof(v) = ?', ['blob']), [
      { n: bytes.length },
    ]);
    for (const bad of [`${b64.slice(0, -1)}`, `${b64.slice(0, -4)}a===`, `${b64.slice(0, -4)}ab-_`, '=AAA'])
      await refused('/query', { sql: 'SELECT ?', params: [{ $blob: bad }] }, 'takes a base64 string');
  });

  // Found from outside: both were stored as other values, without a word.
  test('an integer beyond 2^53 and a lone surrogate ("\\ud800") in a SQL body are refused; the decimal string stores the exact integer', async () => {
    const raw = (route: string, text: string) => send('POST', route, text);
    await node.execute('CREATE TABLE big (n INTEGER, s TEXT)');
    const tooBig = await raw(
      '/execute',
      '{"sql":"INSERT INTO big (n) VALUES (?)","params":[9007199254740993]}',
    );
    assert.equal(tooBig.status, 400, JSON.stringify(tooBig.json));
    assert.match(tooBig.json.error?.message ?? '', /the integer 9007199254740993, beyond 2\^53/);
    for (const [route, text] of [
      ['/execute', '{"sql":"INSERT INTO big (s) VALUES (?)","params":["a\\ud800"]}'],
      ['/txn', '{"statements":[["INSERT INTO big (s) VALUES (:s)",{"s":"\\udc00"}]]}'],
      ['/execute', '{"sql":"INSERT INTO big (s) VALUES (\'\\ud800\')"}'],
      ['/query', '{"sql":"SELECT hex(?) AS h","params":["\\ud800"]}'],
    ] as const) {
      const r = await raw(route, text);
      assert.equal(r.status, 400, `${text}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.error?.message ?? '', /lone UTF-16 surrogate/);
    }
    assert.deepEqual(await node.query('SELECT count(*) AS c FROM big'), [{ c: 0 }]);
    const exact = await raw(
      '/execute',
      '{"sql":"INSERT INTO big (n) VALUES (?)","params":["9007199254740993"]}',
    );
    assert.equal(exact.status, 200, JSON.stringify(exact.json));
    assert.deepEqual(await node.query('SELECT n FROM big'), [{ n: 9007199254740993n }]);
  });

  // Found from outside: a GET answered bytes as {"$blob": base64}, but a PUT of that stored an
  // object, which then read back as what a GET shows for bytes; SQL params had no BLOB form.
  test('{"$blob": base64} is bytes both ways: cache values and payloads (at any depth) and SQL parameters', async () => {
    const json = (method: string, route: string, body?: unknown) =>
      send(method, route, body === undefined ? undefined : JSON.stringify(body));
    assert.equal((await json('PUT', '/cache/b/k', { $blob: 'AAEC' })).status, 200);
    assert.deepEqual(
      await node.cache('b').get('k', { consistency: 'linearizable' }),
      new Uint8Array([0, 1, 2]),
    );
    assert.deepEqual((await json('GET', '/cache/b/k', undefined)).json.value, { $blob: 'AAEC' });
    assert.equal((await json('PUT', '/cache/b/n', { a: [{ $blob: '/w==' }], $blob2: 'x' })).status, 200);
    assert.deepEqual(await node.cache('b').get('n', { consistency: 'linearizable' }), {
      a: [new Uint8Array([255])],
      $blob2: 'x',
    });
    // Another key beside it: an object like any other.
    assert.equal((await json('PUT', '/cache/b/o', { $blob: 'AAEC', x: 1 })).status, 200);
    assert.deepEqual(await node.cache('b').get('o', { consistency: 'linearizable' }), {
      $blob: 'AAEC',
      x: 1,
    });
    for (const bad of [{ $blob: '!!!' }, { $blob: 'AAE' }, { $blob: 5 }]) {
      const r = await json('PUT', '/cache/b/bad', { v: bad });
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.match(r.json.error?.message ?? '', /the value\.v: \{"\$blob": …\} is how JSON carries bytes/);
    }
    await node.execute('CREATE TABLE blobs (x)');
    const ins = await json('POST', '/execute', {
      sql: 'INSERT INTO blobs (x) VALUES (?)',
      params: [{ $blob: 'AAEC' }],
    });
    assert.equal(ins.status, 200, JSON.stringify(ins.json));
    assert.deepEqual(await node.query('SELECT typeof(x) AS t, x FROM blobs'), [
      { t: 'blob', x: new Uint8Array([0, 1, 2]) },
    ]);
    const q = await json('POST', '/query', {
      sql: 'SELECT x FROM blobs WHERE x = :b',
      params: { b: { $blob: 'AAEC' } },
    });
    assert.deepEqual(q.json.value, [{ x: { $blob: 'AAEC' } }]);
    const bad = await json('POST', '/execute', {
      sql: 'INSERT INTO blobs (x) VALUES (?)',
      params: [{ $blob: '*' }],
    });
    assert.equal(bad.status, 400, JSON.stringify(bad.json));
    const it = node.listen('blobs')[Symbol.asyncIterator]();
    const next = it.next();
    assert.equal(
      (await json('POST', '/notify', { channel: 'blobs', payload: { $blob: 'AAEC' } })).status,
      200,
    );
    assert.deepEqual((await next).value?.payload, new Uint8Array([0, 1, 2]));
    await it.return?.();
  });

  test('cache routes: a query parameter that is not percent-encoded UTF-8 is 400 (/listen?channel=caf%E9 listened on "caf\uFFFD"); a long key is not echoed whole', async () => {
    const h = { 'x-api-secret': TEST_SECRETS.secretApi };
    for (const path of [
      '/listen?channel=caf%E9',
      '/cache/c/k?consistency=%E9',
      '/counter/c/k?consistency=%',
    ]) {
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), 10_000);
      try {
        const r = await fetch(`${base}${path}`, { headers: h, signal: ctl.signal });
        const body = (await r.json()) as Answer;
        assert.equal(r.status, 400, path);
        assert.equal(body.error?.code, 'HQL_INVALID_PARAMS', path);
        assert.match(body.error?.message ?? '', /is not valid percent-encoded UTF-8/, path);
      } finally {
        clearTimeout(timer);
      }
    }
    // In the path: escapes whose bytes are not UTF-8 are said as such (they were "not valid
    // percent-encoding", found by an outside probe); a broken escape is.
    for (const [path, says] of [
      ['/cache/c/%FF', /the key in the path decodes to bytes that are not UTF-8/],
      ['/cache/%ED%A0%80/k', /the cache name in the path decodes to bytes that are not UTF-8/],
      ['/cache/c/%G1', /the key in the path is not valid percent-encoding/],
      ['/cache/c/k%', /the key in the path is not valid percent-encoding/],
    ] as const) {
      const res = await fetch(`${base}${path}`, { headers: h });
      const body = (await res.json()) as Answer;
      assert.equal(res.status, 400, path);
      assert.match(body.error?.message ?? '', says, path);
    }
    const r = await fetch(`${base}/cache/c/${'k'.repeat(8000)}`, { headers: h });
    const text = await r.text();
    assert.equal(r.status, 404);
    assert.ok(text.length < 500, `the answer echoes ${text.length} characters`);
  });

  test('an unknown field or query parameter with a huge name is not echoed whole', async () => {
    const name = 'x'.repeat(100_000);
    const { status, json } = await post('/query', { sql: 'SELECT 1', [name]: 1 });
    assert.equal(status, 400);
    assert.ok(
      (json.error?.message.length ?? 0) < 300,
      `a message of ${json.error?.message.length} characters`,
    );
    const r = await fetch(`${base}/cache/c/k?${'q'.repeat(10_000)}=1`, {
      headers: { 'x-api-secret': TEST_SECRETS.secretApi },
    });
    assert.equal(r.status, 400);
    assert.ok((await r.text()).length < 500);
  });
});
