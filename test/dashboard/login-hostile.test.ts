/**
 * The dashboard's login at careless or hostile requests: a body far over the login's bound, sent
 * with its length or chunked, is 413 HQL_REQUEST_TOO_LARGE as on every other route (not 400
 * "the body must be …"), and the connection is closed; a body that is not the login's object is
 * 400; a session cookie that is malformed, repeated or huge is simply no session.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { login, type Served, serveDashboard } from './helpers.js';

const MANY_LOGINS = {
  perAddressBurst: 100,
  perAddressRefillMs: 1,
  globalBurst: 100,
  globalRefillMs: 1,
  addressesMax: 10,
};

interface Answer {
  readonly status: number;
  readonly code: string | undefined;
  readonly connection: string | undefined;
}

/** One POST with `body` (chunked when `chunked`), its status, error code and Connection header. */
function post(s: Served, path: string, body: Buffer, o: { chunked?: boolean; cookie?: string } = {}) {
  return new Promise<Answer>((ok, fail) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (o.chunked !== true) headers['content-length'] = String(body.length);
    if (o.cookie !== undefined) headers.cookie = o.cookie;
    const req = request(`${s.url}${path}`, { method: 'POST', headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
      });
      res.on('end', () => {
        let code: string | undefined;
        try {
          code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
        } catch {
          code = undefined;
        }
        ok({ status: res.statusCode ?? 0, code, connection: res.headers.connection });
      });
    });
    // The server may answer and close before the whole body is sent.
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET') fail(e);
    });
    if (o.chunked === true) {
      for (let off = 0; off < body.length; off += 64 * 1024) req.write(body.subarray(off, off + 64 * 1024));
      req.end();
    } else req.end(body);
  });
}

describe('dashboard login, hostile requests', () => {
  let s: Served;
  before(async () => {
    s = await serveDashboard({ limits: { login: MANY_LOGINS } });
  });
  after(() => s.close());

  test('a body over the bound is 413 HQL_REQUEST_TOO_LARGE and closes, with a length or chunked', async () => {
    const huge = Buffer.from(JSON.stringify({ password: 'x'.repeat(1024 * 1024) }));
    for (const chunked of [false, true]) {
      const a = await post(s, '/dashboard/api/login', huge, { chunked });
      assert.equal(a.status, 413, `chunked ${chunked}`);
      assert.equal(a.code, 'HQL_REQUEST_TOO_LARGE', `chunked ${chunked}`);
      assert.equal(a.connection, 'close', `chunked ${chunked}`);
    }
  });

  test('a body that is not {"password": string} is 400 HQL_INVALID_PARAMS', async () => {
    for (const body of ['[1]', '{"password":', '{"password": 5}', '"x"', '']) {
      const a = await post(s, '/dashboard/api/login', Buffer.from(body));
      assert.equal(a.status, 400, body);
      assert.equal(a.code, 'HQL_INVALID_PARAMS', body);
    }
  });

  test('a password just over its byte bound inside a body within the bound: 401, not an error', async () => {
    const a = await post(
      s,
      '/dashboard/api/login',
      Buffer.from(JSON.stringify({ password: 'é'.repeat(800) })),
    );
    assert.equal(a.status, 401);
    assert.equal(a.code, 'HQL_UNAUTHORIZED');
  });

  test('malformed, repeated or huge session cookies are no session: 401 on a route that needs one', async () => {
    for (const cookie of [
      '__Host-hiqlite-session',
      '__Host-hiqlite-session=',
      '__Host-hiqlite-session=%%%; ;;=;',
      '__Host-hiqlite-session=a; __Host-hiqlite-session=b',
      `__Host-hiqlite-session=${'a'.repeat(8000)}`,
    ]) {
      const a = await post(s, '/dashboard/api/query', Buffer.from('{"sql":"SELECT 1"}'), { cookie });
      assert.equal(a.status, 401, cookie.slice(0, 60));
      assert.equal(a.code, 'HQL_UNAUTHORIZED', cookie.slice(0, 60));
    }
  });

  test('a query parameter that is not percent-encoded UTF-8 is 400, not read as another name (U+FFFD)', async () => {
    const { cookie } = await login(s);
    for (const path of [
      '/dashboard/api/rows?name=caf%E9',
      '/dashboard/api/rows?name=t%',
      '/dashboard/api/cache-keys?name=%FF',
    ]) {
      const r = await fetch(`${s.url}${path}`, { headers: { cookie } });
      const body = (await r.json()) as { error?: { code: string; message: string } };
      assert.equal(r.status, 400, path);
      assert.equal(body.error?.code, 'HQL_INVALID_PARAMS', path);
      assert.match(body.error?.message ?? '', /"name" is not valid percent-encoded UTF-8/, path);
    }
    const ok = await fetch(`${s.url}/dashboard/api/rows?name=caf%C3%A9`, { headers: { cookie } });
    assert.notEqual(ok.status, 400, 'UTF-8 percent-encoding is taken');
  });
});
