/**
 * The one bounded body reader of every HTTP surface (API JSON routes, cache routes, dashboard),
 * against careless and hostile clients, over real sockets: a node:http server on 127.0.0.1 that
 * answers what readJsonObject says, and raw TCP clients that send what a browser never would.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  HttpBodyError,
  jsonInexactInteger,
  jsonShapeOver,
  LARGE_BODY_BYTES,
  largeBodyTurn,
  parseJsonBody,
  readBody,
  readJsonObject,
  sendBodyError,
  sendError,
  sendJson,
  toJson,
} from '../../src/http/http-body.js';

const HOST = '127.0.0.1';
const BYTES_MAX = 1024;
/** Short enough for a test, long enough that a loaded machine still delivers a 20-byte body. */
const TIMEOUT_MS = 1500;

let server: Server;
let port: number;
/** How the server's reads ended, in order: 'ok' or the error's code. */
const outcomes: string[] = [];
const sockets = new Set<Socket>();

before(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    // A route that answers without reading the body (as a wrong secret or an unknown route is).
    if (req.url === '/refuse')
      return sendError(res, 401, 'HQL_UNAUTHORIZED', 'missing or wrong X-API-SECRET');
    readJsonObject(req, { bytesMax: BYTES_MAX, timeoutMs: TIMEOUT_MS, bytesMaxKey: 'entry_bytes_max' }).then(
      (body) => {
        outcomes.push('ok');
        sendJson(res, 200, { ok: true, value: body });
      },
      (e: unknown) => {
        assert.ok(e instanceof HttpBodyError, `a typed error, not ${String(e)}`);
        outcomes.push(e.code);
        sendBodyError(res, e);
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const a = server.address();
  assert.ok(typeof a === 'object' && a !== null);
  port = a.port;
});

after(async () => {
  for (const s of sockets) s.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

interface RawAnswer {
  readonly status: number;
  readonly head: string;
  readonly body: { ok: boolean; error?: { code: string; message: string; retryable: boolean } };
  /** The server closed the connection after its answer. */
  readonly closed: Promise<void>;
}

/**
 * Writes `head` then each of `parts` on a raw socket (one write each, in order, without waiting
 * for the answer: a hostile client does not), and resolves with the first answer.
 */
function raw(
  head: string,
  parts: readonly (string | Buffer)[] = [],
  deadlineMs = 20_000,
): Promise<RawAnswer> {
  const socket = connect({ host: HOST, port });
  sockets.add(socket);
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return new Promise<RawAnswer>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error(`no answer within ${deadlineMs} ms`)), deadlineMs);
    let got = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      const headText = got.subarray(0, end).toString('latin1');
      const length = Number(/content-length: (\d+)/i.exec(headText)?.[1]);
      const body = got.subarray(end + 4);
      if (!(body.length >= length)) return;
      clearTimeout(deadline);
      resolve({
        status: Number(headText.split(' ')[1]),
        head: headText,
        body: JSON.parse(body.subarray(0, length).toString('utf8')),
        closed,
      });
    });
    socket.write(head);
    for (const p of parts) socket.write(p);
  });
}

/** Resolves when `closed` does; fails after `ms` (a deadline: a socket left open hangs the client). */
async function closedWithin(closed: Promise<void>, ms: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    closed,
    new Promise<never>((_r, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what}: the connection was not closed within ${ms} ms`)),
        ms,
      );
    }),
  ]);
  clearTimeout(timer);
}

const chunk = (data: string | Buffer) =>
  Buffer.concat([
    Buffer.from(`${Buffer.byteLength(data).toString(16)}\r\n`),
    Buffer.from(data),
    Buffer.from('\r\n'),
  ]);

describe('readJsonObject over a real socket', () => {
  test('a JSON object within the bound is read', async () => {
    const body = JSON.stringify({ sql: 'SELECT 1', n: 2 });
    const r = await raw(
      `POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
      [body],
    );
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ok: true, value: { sql: 'SELECT 1', n: 2 } });
  });

  test('an announced Content-Length over the bound is 413 before any body is sent, and the connection closes', async () => {
    // The client announces 1 GiB and sends none of it: the answer must not wait for it.
    const r = await raw(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${2 ** 30}\r\n\r\n`);
    assert.equal(r.status, 413);
    assert.equal(r.body.error?.code, 'HQL_REQUEST_TOO_LARGE');
    assert.match(r.body.error?.message ?? '', /1024 bytes \(entry_bytes_max\)/);
    assert.equal(r.body.error?.retryable, false);
    assert.match(r.head, /connection: close/i);
    await closedWithin(r.closed, 10_000, 'announced too large');
  });

  test('a chunked body that passes the bound is 413 while the client is still sending, and the connection closes', async () => {
    // 64 chunks of 512 bytes (32 KiB, 32 times the bound) and no terminating chunk: the server
    // must answer once 1 KiB has passed, not wait for an end that never comes.
    const parts = Array.from({ length: 64 }, () => chunk('x'.repeat(512)));
    const r = await raw('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', parts);
    assert.equal(r.status, 413);
    assert.equal(r.body.error?.code, 'HQL_REQUEST_TOO_LARGE');
    assert.match(r.head, /connection: close/i);
    await closedWithin(r.closed, 10_000, 'chunked too large');
  });

  test('malformed JSON is 400 HQL_INVALID_PARAMS saying it is not JSON; the connection stays usable', async () => {
    const body = '{"sql": "SELECT 1",';
    const r = await raw(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`, [body]);
    assert.equal(r.status, 400);
    assert.equal(r.body.error?.code, 'HQL_INVALID_PARAMS');
    assert.match(r.body.error?.message ?? '', /^the body is not JSON: /);
    assert.doesNotMatch(r.head, /connection: close/i);
    // JSON that is not an object is refused the same way.
    const arr = '[1, 2]';
    const r2 = await raw(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${arr.length}\r\n\r\n`, [arr]);
    assert.equal(r2.status, 400);
    assert.equal(r2.body.error?.message, 'the body must be a JSON object');
  });

  test('an empty body is 400 HQL_INVALID_PARAMS saying it is empty', async () => {
    const r = await raw('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n');
    assert.equal(r.status, 400);
    assert.equal(r.body.error?.code, 'HQL_INVALID_PARAMS');
    assert.equal(r.body.error?.message, 'the body is empty: it must be JSON');
  });

  test('a body that never ends is 408 HQL_TIMEOUT at the body deadline, and the connection closes', async () => {
    // Announces 100 bytes, sends 10, then nothing.
    const before = outcomes.length;
    const r = await raw('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n', ['{"sql": "S']);
    assert.equal(r.status, 408);
    assert.equal(r.body.error?.code, 'HQL_TIMEOUT');
    assert.match(r.body.error?.message ?? '', new RegExp(`within ${TIMEOUT_MS} ms`));
    assert.match(r.head, /connection: close/i);
    await closedWithin(r.closed, 10_000, 'body never ends');
    assert.deepEqual(outcomes.slice(before), ['HQL_TIMEOUT']);
  });

  test('a chunked body that stops mid-way is 408 too', async () => {
    const r = await raw('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', [chunk('{"a":')]);
    assert.equal(r.status, 408);
    assert.equal(r.body.error?.code, 'HQL_TIMEOUT');
    await closedWithin(r.closed, 10_000, 'chunked never ends');
  });
});

describe('an answer given before the body was read', () => {
  test('closes the connection: an announced body is not read and discarded for as long as the client sends it', async () => {
    const r = await raw('POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n', [
      Buffer.alloc(64 * 1024, 97),
    ]);
    assert.equal(r.status, 401);
    assert.match(r.head, /\r\nconnection: close/i);
    await closedWithin(r.closed, 5000, 'a 401 with 100 MB announced');
    const chunked = await raw('POST /refuse HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', [
      chunk('a'.repeat(1000)),
    ]);
    assert.equal(chunked.status, 401);
    await closedWithin(chunked.closed, 5000, 'a 401 with a chunked body under way');
  });

  test('a request without a body keeps its connection', async () => {
    const r = await raw('GET /refuse HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(r.status, 401);
    assert.doesNotMatch(r.head, /connection: close/i);
  });
});

describe('readBody and parseJsonBody', () => {
  test('a client that hangs up mid-body is HQL_CLOSED (not a hang)', async () => {
    const seen = new Promise<unknown>((resolve) => {
      const s = createServer((req) => {
        readBody(req, { bytesMax: BYTES_MAX, timeoutMs: 60_000 }).then(resolve, resolve);
      });
      s.listen(0, HOST, () => {
        const a = s.address();
        assert.ok(typeof a === 'object' && a !== null);
        const c = connect({ host: HOST, port: a.port }, () => {
          c.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a":');
          // Once the server has the request, hang up.
          setImmediate(() => c.destroy());
        });
        c.on('error', () => {});
      });
      after(() => {
        s.closeAllConnections();
        s.close();
      });
    });
    const e = await seen;
    assert.ok(e instanceof Error && (e as { code?: string }).code === 'HQL_CLOSED', String(e));
  });

  test('parseJsonBody takes any JSON value and refuses what is not JSON, typed', () => {
    assert.equal(parseJsonBody(Buffer.from('42')), 42);
    assert.deepEqual(parseJsonBody(Buffer.from('[1]')), [1]);
    assert.throws(
      () => parseJsonBody(Buffer.from('nope')),
      (e: unknown) => e instanceof HttpBodyError && e.code === 'HQL_INVALID_PARAMS' && e.status === 400,
    );
    assert.throws(
      () => parseJsonBody(Buffer.alloc(0)),
      (e: unknown) => e instanceof HttpBodyError && /empty/.test(e.message),
    );
  });

  test('parseJsonBody refuses nesting past its depth before parsing; brackets in strings do not count', () => {
    const nested = (d: number) => Buffer.from(`${'['.repeat(d)}${']'.repeat(d)}`);
    assert.equal(jsonShapeOver(nested(128), 128), null);
    assert.equal(jsonShapeOver(nested(129), 128), 'depth');
    assert.deepEqual(parseJsonBody(nested(3), 3), [[[]]]);
    const deep = (e: unknown) =>
      e instanceof HttpBodyError &&
      e.code === 'HQL_INVALID_PARAMS' &&
      e.status === 400 &&
      /more than 3 deep \(http_json_depth_max\)/.test(e.message);
    assert.throws(() => parseJsonBody(nested(4), 3), deep);
    assert.throws(() => parseJsonBody(Buffer.from('{"a":{"b":[{"c":1}]}}'), 3), deep);
    // Brackets in strings, escaped quotes and backslashes included, are text.
    const text = Buffer.from(JSON.stringify({ s: '[[[[{{{{ \\" [[[[', t: ['"]]]]\\'] }));
    assert.equal(jsonShapeOver(text, 2), null);
    assert.deepEqual(parseJsonBody(text, 2), JSON.parse(text.toString()));
    // The default: 128 (http_json_depth_max); 8 MB of brackets is refused in one pass.
    assert.throws(() => parseJsonBody(nested(129)), /more than 128 deep/);
    assert.throws(() => parseJsonBody(nested(4_000_000)), /more than 128 deep/);
  });

  // Found over HTTP: {"params": [9007199254740993]} stored 9007199254740992.
  test('parseJsonBody refuses an integer literal beyond 2^53 (JSON.parse would round it); a REAL, a string or 2^53 pass', () => {
    const bad = (text: string, literal: string) =>
      assert.throws(
        () => parseJsonBody(Buffer.from(text)),
        (e: unknown) =>
          e instanceof HttpBodyError &&
          e.code === 'HQL_INVALID_PARAMS' &&
          e.status === 400 &&
          e.message.includes(`the integer ${literal}, beyond 2^53`),
        text,
      );
    bad('{"params":[9007199254740993]}', '9007199254740993');
    bad('[-9007199254740993]', '-9007199254740993');
    bad('{"a":[1,{"b":123456789012345678901}]}', '123456789012345678901');
    // A number beyond a double's range arrived as ±Infinity, which no answer can carry back.
    for (const [text, literal] of [
      ['{"params":[1e400]}', '1e400'],
      ['[-1.5E999]', '-1.5E999'],
    ] as const)
      assert.throws(
        () => parseJsonBody(Buffer.from(text)),
        (e: unknown) =>
          e instanceof HttpBodyError &&
          e.code === 'HQL_INVALID_PARAMS' &&
          e.message.includes(`the number ${literal}, beyond the range of a double`),
        text,
      );
    // Answers: a value that is not finite (a REAL of infinity, from SQLite) is said as a string,
    // not as null (which read as NULL).
    assert.equal(
      toJson({ a: Infinity, b: -Infinity, c: Number.NaN, d: 1.5 }),
      '{"a":"Infinity","b":"-Infinity","c":"NaN","d":1.5}',
    );
    for (const ok of [
      '[9007199254740992, -9007199254740992, 9007199254740991]',
      '[1e20, 9007199254740993.0, 1.5E300, -2e-5, 0, -0]',
      '["9007199254740993", "a 123456789012345678901 b", "\\" 99999999999999999"]',
    ]) {
      assert.equal(jsonInexactInteger(Buffer.from(ok)), null, ok);
      assert.deepEqual(parseJsonBody(Buffer.from(ok)), JSON.parse(ok));
    }
  });

  test('parseJsonBody refuses more values than its bound before parsing; commas in strings do not count', () => {
    assert.equal(jsonShapeOver(Buffer.from('[1,2,3]'), 128, 4), null);
    assert.equal(jsonShapeOver(Buffer.from('[1,2,3,4]'), 128, 4), 'values');
    assert.equal(jsonShapeOver(Buffer.from('[[],{},[]]'), 128, 4), 'values');
    assert.equal(jsonShapeOver(Buffer.from('["a,b,c,d,e"]'), 128, 3), null);
    assert.throws(
      () => parseJsonBody(Buffer.from(`[${'[],'.repeat(10)}[]]`), 128, 10),
      (e: unknown) =>
        e instanceof HttpBodyError &&
        e.code === 'HQL_INVALID_PARAMS' &&
        /more than 10 values \(http_json_values_max\)/.test(e.message),
    );
    // The default: a million.
    assert.throws(
      () => parseJsonBody(Buffer.from(`[${'[],'.repeat(1_000_000)}[]]`)),
      /more than 1000000 values/,
    );
    assert.equal((parseJsonBody(Buffer.from(`[${'1,'.repeat(999_998)}1]`)) as number[]).length, 999_999);
  });

  test('large bodies are parsed one per turn of the event loop: a timer due meanwhile runs between them', async () => {
    const order: string[] = [];
    const busy = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end) {}
    };
    // Three large bodies that arrived together; each parse holds the thread for 5 ms, and a
    // heartbeat-like timer falls due during each of the first two.
    const parses = ['a', 'b', 'c'].map((name, i) =>
      largeBodyTurn(LARGE_BODY_BYTES).then(() => {
        order.push(name);
        if (i < 2) setTimeout(() => order.push(`timer-${name}`), 1);
        busy(5);
      }),
    );
    const small = largeBodyTurn(LARGE_BODY_BYTES - 1).then(() => order.push('small'));
    await small;
    assert.deepEqual(order, ['small'], 'a small body does not wait for a turn');
    await Promise.all(parses);
    assert.deepEqual(order, ['small', 'a', 'timer-a', 'b', 'timer-b', 'c']);
  });
});
