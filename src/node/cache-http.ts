/**
 * The cache group's HTTP routes of the API port (README, "The cache over HTTP"), all
 * authenticated by `X-API-SECRET` (checked by the API server before this is called):
 *
 * - `GET /cache/{name}/{key}`: `{"ok": true, "value": …}` (JSON; bytes as `{"$blob": base64}`),
 *   or the raw bytes of a bytes value with `Accept: application/octet-stream`; 404 when absent.
 *   `?consistency=linearizable` reads after a ReadIndex round.
 * - `PUT /cache/{name}/{key}`: the body is the value: JSON (`Content-Type: application/json`) or
 *   raw bytes (any other type). TTL: `?ttl_ms=N` or the header `X-TTL-MS: N`; `?if_absent=true`
 *   stores only when the key has no live value (`{"stored": bool}`).
 * - `DELETE /cache/{name}/{key}` (`{"deleted": bool}`), `DELETE /cache/{name}` (clears it,
 *   `{"removed": n}`).
 * - `GET /counter/{name}/{key}` (`{"value": "<decimal>"}`, 404 when absent; `?consistency=`),
 *   `POST` with `{"delta": "<int64>"}` (adds, saturating at the int64 bounds; answers the new
 *   value), `PUT` with `{"value": "<int64>"}`, `DELETE` (`{"deleted": bool}`), `DELETE
 *   /counter/{name}` (`{"removed": n}`). Values are decimal strings: int64 does not fit a JSON
 *   number.
 * - `POST /notify` with `{"channel": "…", "payload": any JSON}`: `{"index", "seq"}`.
 * - `GET /listen?channel=…` (no channel: every channel): Server-Sent Events. Each notification
 *   is an event `notification` whose `id` is its seq; `Last-Event-ID` (or `?last_event_id=`)
 *   resumes after it while the nodes hold it, else the stream sends `lagged` with the number
 *   missed and ends. A comment line every `SSE_HEARTBEAT_MS` keeps proxies from timing it out;
 *   a reader that does not keep up gets `lagged` once the listener buffer is full, and the
 *   connection is closed.
 *
 * A query parameter a route does not take (a misspelt `?ttl=`), or one given twice, is 400: it
 * would otherwise be ignored in silence.
 *
 * Values travel as msgpack inside the group (any msgpack value; what `db.cache()` stores), so a
 * JSON value put here is read by a client as the same value, and a client's bytes are `$blob`s
 * here, both ways: `{"$blob": base64}` put here (at any depth) is stored as bytes (blobsFromJson).
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type BodyLimits,
  blobsFromJson,
  closeIfBodyUnread,
  HttpBodyError,
  jsonRealLiteral,
  parseJsonInTurn,
  readBody,
  sendBodyError,
  sendJson,
  sendMethodNotAllowed,
  toJson,
} from '../http/http-body.js';
import { badlyEncodedQueryParam } from '../http/query-encoding.js';
import { consistencyOf, describeValue, onlyFields, onlyParams } from '../http/request-fields.js';
import type { RequestTarget } from '../http/request-target.js';
import { HiqliteError } from '../lib/errors.js';
import { isWellFormed } from '../lib/utf8.js';
import type { ApiErrorBody, CacheReadRequest, Consistency } from '../protocol/api-codec.js';
import { CACHE_DURATION_MS_MAX } from '../protocol/cache-api-codec.js';
import type { CacheCommand } from '../sm/cache/command.js';
import type { CacheOutcome } from '../sm/cache/result.js';
import { cacheValueProblem, cacheValuePackr as packr } from '../sm/cache/value.js';
import type { Timers } from '../transport/timers.js';
import type { Notification } from './cache-listeners.js';
import { type ListenSink, pumpListen, SSE_BATCH_BYTES_MAX } from './listen-pump.js';
import type { ListenStream } from './listen-stream.js';

/** Where the routes' work runs: the node's cache group, or a proxy's link to a cluster. */
export interface CacheHttpOps {
  /** Replicates one command exactly once; its own failure is thrown (a CacheError). */
  write(command: CacheCommand, signal: AbortSignal): Promise<CacheOutcome>;
  read(read: CacheReadRequest, consistency: Consistency, signal: AbortSignal): Promise<unknown>;
  listen(channel: string | null, afterSeq: number | undefined, signal: AbortSignal): Promise<ListenStream>;
}

export interface CacheHttpContext {
  readonly ops: CacheHttpOps | undefined;
  /** `entry_bytes_max` and `http_body_timeout_ms`: a larger body is 413, a later one 408. */
  readonly bodyLimits: BodyLimits;
  readonly errorBody: (e: unknown) => ApiErrorBody;
  readonly statusFor: (e: ApiErrorBody) => number;
  readonly timers: Timers;
}

/** Between two heartbeat comments of an idle SSE stream. */
export const SSE_HEARTBEAT_MS = 15_000;
/** How long a stream that ended may take to flush its last event before its socket is closed. */
export const SSE_CLOSE_GRACE_MS = 5_000;

export function isCacheRoute(pathname: string): boolean {
  return (
    pathname.startsWith('/cache/') ||
    pathname.startsWith('/counter/') ||
    pathname === '/notify' ||
    pathname === '/listen'
  );
}

export async function serveCacheHttp(
  req: IncomingMessage,
  res: ServerResponse,
  url: RequestTarget,
  cx: CacheHttpContext,
): Promise<void> {
  const fail = (e: unknown) => {
    if (res.headersSent) res.destroy();
    else if (e instanceof HttpBodyError) sendBodyError(res, e);
    else {
      const err = cx.errorBody(e);
      sendJson(res, cx.statusFor(err), { ok: false, error: err });
    }
  };
  const ops = cx.ops;
  if (ops === undefined) return fail(notFound('this server has no cache group'));
  const badParam = badlyEncodedQueryParam(url.search);
  if (badParam !== null)
    return fail(
      invalid(
        `the query parameter ${JSON.stringify(badParam)} is not valid percent-encoded UTF-8 (it would be read as another value)`,
      ),
    );
  // A client that hangs up: its linearizable read or its listener stops.
  const gone = new AbortController();
  res.once('close', () => gone.abort());
  try {
    const method = req.method ?? 'GET';
    if (url.pathname === '/notify') {
      if (method !== 'POST') return sendMethodNotAllowed(res, method, url.pathname, 'POST');
      onlyParams(url.searchParams, []);
      const v = await readObject(req, cx, '{"channel": "…", "payload": any}', ['channel', 'payload']);
      const { channel, payload } = v as { channel?: unknown; payload?: unknown };
      if (typeof channel !== 'string' || channel === '')
        throw invalid(
          '"channel" must be a non-empty string (GET /listen without a channel is every channel)',
        );
      if (!isWellFormed(channel))
        throw invalid('"channel" holds a lone UTF-16 surrogate (it would name the channel of U+FFFD)');
      // As db.notify(channel) without a payload is refused: a payload is what a notification
      // carries (found from outside: a body without one was sent as null).
      if (payload === undefined) throw invalid('"payload" is missing (null is a payload)');
      const o = await ops.write(
        {
          type: 'notify',
          channel,
          payload: encodeValue(blobsFromJson(payload, 'payload')),
        },
        gone.signal,
      );
      const n = o as Extract<CacheOutcome, { type: 'notify' }>;
      return sendJson(res, 200, { ok: true, value: { index: n.index, seq: n.seq } });
    }
    if (url.pathname === '/listen') {
      if (method !== 'GET') return sendMethodNotAllowed(res, method, url.pathname, 'GET');
      onlyParams(url.searchParams, ['channel', 'last_event_id']);
      req.resume();
      return await serveSse(req, res, url, ops, cx, gone.signal);
    }
    if (url.pathname.startsWith('/counter/'))
      return await serveCounter(req, res, url, method, ops, cx, gone.signal);
    return await serveCacheEntry(req, res, url, method, ops, cx, gone.signal);
  } catch (e) {
    fail(e);
  }
}

/** `{prefix}{name}` or `{prefix}{name}/{key}`, both parts percent-decoded; the name not empty. */
function nameAndKey(
  url: RequestTarget,
  prefix: '/cache/' | '/counter/',
  what: 'cache name' | 'counter name',
): { name: string; key: string | null } {
  const rest = url.pathname.slice(prefix.length);
  const slash = rest.indexOf('/');
  const name = decodePart(slash < 0 ? rest : rest.slice(0, slash), what);
  const key = slash < 0 ? null : decodePart(rest.slice(slash + 1), 'key');
  if (name.length === 0) throw invalid(`the path is ${prefix}{name}/{key}`);
  return { name, key };
}

async function serveCacheEntry(
  req: IncomingMessage,
  res: ServerResponse,
  url: RequestTarget,
  method: string,
  ops: CacheHttpOps,
  cx: CacheHttpContext,
  signal: AbortSignal,
): Promise<void> {
  const { name: cache, key } = nameAndKey(url, '/cache/', 'cache name');
  if (key === null) {
    if (method !== 'DELETE') return sendMethodNotAllowed(res, method, '/cache/{name}', 'DELETE');
    onlyParams(url.searchParams, []);
    req.resume();
    const o = (await ops.write({ type: 'clear', cache }, signal)) as Extract<CacheOutcome, { type: 'clear' }>;
    return sendJson(res, 200, { ok: true, value: { removed: o.removed } });
  }
  switch (method) {
    case 'GET': {
      onlyParams(url.searchParams, ['consistency']);
      req.resume();
      const consistency = consistencyOf(url.searchParams.get('consistency') ?? 'local', 'consistency');
      const bytes = (await ops.read({ type: 'get', cache, key }, consistency, signal)) as Uint8Array | null;
      if (bytes === null)
        throw notFound(`no live value for key ${describeValue(key)} in cache ${describeValue(cache)}`);
      const value = decodeValue(bytes);
      if (wantsBytes(req)) {
        if (!(value instanceof Uint8Array))
          throw invalid('the value is not bytes: ask for JSON (drop Accept: application/octet-stream)');
        closeIfBodyUnread(res);
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': value.byteLength,
        });
        res.end(value);
        return;
      }
      return sendJson(res, 200, { ok: true, value });
    }
    case 'PUT': {
      onlyParams(url.searchParams, ['ttl_ms', 'if_absent']);
      const ttlMs = ttlOf(url, req);
      const ifAbsent = url.searchParams.get('if_absent') ?? 'false';
      if (ifAbsent !== 'true' && ifAbsent !== 'false') throw invalid('if_absent must be true or false');
      const body = await readBody(req, cx.bodyLimits);
      const value = isJson(req)
        ? encodeValue(blobsFromJson(await parseJsonInTurn(body, cx.bodyLimits)))
        : encodeValue(new Uint8Array(body));
      const ttl = ttlMs === undefined ? {} : { ttlMs };
      if (ifAbsent === 'true') {
        const o = await ops.write({ type: 'putIfAbsent', cache, key, value, ...ttl }, signal);
        return sendJson(res, 200, {
          ok: true,
          value: { stored: (o as Extract<CacheOutcome, { type: 'putIfAbsent' }>).stored },
        });
      }
      await ops.write({ type: 'put', cache, key, value, ...ttl }, signal);
      return sendJson(res, 200, { ok: true, value: null });
    }
    case 'DELETE': {
      onlyParams(url.searchParams, []);
      req.resume();
      const o = (await ops.write({ type: 'delete', cache, key }, signal)) as Extract<
        CacheOutcome,
        { type: 'delete' }
      >;
      return sendJson(res, 200, { ok: true, value: { deleted: o.deleted } });
    }
    default:
      return sendMethodNotAllowed(res, method, '/cache/{name}/{key}', 'GET, PUT, DELETE');
  }
}

/** The lowest and highest value of a counter (int64). */
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

async function serveCounter(
  req: IncomingMessage,
  res: ServerResponse,
  url: RequestTarget,
  method: string,
  ops: CacheHttpOps,
  cx: CacheHttpContext,
  signal: AbortSignal,
): Promise<void> {
  const { name: counter, key } = nameAndKey(url, '/counter/', 'counter name');
  if (key === null) {
    if (method !== 'DELETE') return sendMethodNotAllowed(res, method, '/counter/{name}', 'DELETE');
    onlyParams(url.searchParams, []);
    req.resume();
    const o = await ops.write({ type: 'counterClear', counter }, signal);
    return sendJson(res, 200, {
      ok: true,
      value: { removed: (o as Extract<CacheOutcome, { type: 'counterClear' }>).removed },
    });
  }
  switch (method) {
    case 'GET': {
      onlyParams(url.searchParams, ['consistency']);
      req.resume();
      const consistency = consistencyOf(url.searchParams.get('consistency') ?? 'local', 'consistency');
      const v = await ops.read({ type: 'counterGet', counter, key }, consistency, signal);
      if (v === null || v === undefined)
        throw notFound(`no counter ${describeValue(key)} in ${describeValue(counter)}`);
      return sendJson(res, 200, { ok: true, value: counterText(v) });
    }
    case 'POST': {
      onlyParams(url.searchParams, []);
      const delta = int64Field(
        await readObject(req, cx, '{"delta": "<int64>"}', ['delta'], { integersOnly: true }),
        'delta',
      );
      const o = await ops.write({ type: 'counterAdd', counter, key, delta }, signal);
      return sendJson(res, 200, {
        ok: true,
        value: counterText((o as Extract<CacheOutcome, { type: 'counterAdd' }>).value),
      });
    }
    case 'PUT': {
      onlyParams(url.searchParams, []);
      const value = int64Field(
        await readObject(req, cx, '{"value": "<int64>"}', ['value'], { integersOnly: true }),
        'value',
      );
      await ops.write({ type: 'counterSet', counter, key, value }, signal);
      return sendJson(res, 200, { ok: true, value: null });
    }
    case 'DELETE': {
      onlyParams(url.searchParams, []);
      req.resume();
      const o = await ops.write({ type: 'counterDelete', counter, key }, signal);
      return sendJson(res, 200, {
        ok: true,
        value: { deleted: (o as Extract<CacheOutcome, { type: 'counterDelete' }>).deleted },
      });
    }
    default:
      return sendMethodNotAllowed(res, method, '/counter/{name}/{key}', 'GET, POST, PUT, DELETE');
  }
}

async function readObject(
  req: IncomingMessage,
  cx: CacheHttpContext,
  shape: string,
  fields: readonly string[],
  o: { readonly integersOnly?: boolean } = {},
): Promise<Record<string, unknown>> {
  const body = await readBody(req, cx.bodyLimits);
  // A counter's operand is whole: `1.0000000000000001` or `1e2` is refused, not read as the
  // double it parses to (1, 100).
  const real = o.integersOnly === true ? jsonRealLiteral(body) : null;
  if (real !== null)
    throw invalid(
      `the body (${shape}) holds the number ${real.length > 40 ? `${real.slice(0, 40)}…` : real}, which is not a whole number: give it as a decimal string`,
    );
  const v = await parseJsonInTurn(body, cx.bodyLimits);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`the body must be ${shape}`);
  onlyFields(v as Record<string, unknown>, fields, `the body (${shape})`);
  return v as Record<string, unknown>;
}

/**
 * A counter operand: a decimal string in the int64 range (JSON numbers lose precision beyond
 * 2^53), or a JSON number that is a safe integer.
 */
function int64Field(body: Record<string, unknown>, field: string): bigint {
  const v = body[field];
  let n: bigint | null = null;
  if (typeof v === 'string' && /^-?\d{1,19}$/.test(v)) n = BigInt(v);
  else if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
  if (n === null || n < INT64_MIN || n > INT64_MAX)
    throw invalid(
      `"${field}" must be a whole number from ${INT64_MIN} to ${INT64_MAX}, as a decimal string (or a JSON integer within 2^53)`,
    );
  return n;
}

/** A counter's value as its decimal string (a proxy relays small ones as numbers). */
function counterText(v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  throw new HiqliteError('HQL_INTERNAL', `a counter read answered ${typeof v}`, { retryable: false });
}

// ---------------------------------------------------------------------------------------------
// Server-Sent Events
// ---------------------------------------------------------------------------------------------

async function serveSse(
  req: IncomingMessage,
  res: ServerResponse,
  url: RequestTarget,
  ops: CacheHttpOps,
  cx: CacheHttpContext,
  signal: AbortSignal,
): Promise<void> {
  const channel = url.searchParams.get('channel');
  // `?channel=` names no channel (notify refuses it): every channel is asked by leaving it out.
  if (channel === '') throw invalid('"channel" must not be empty: leave it out to listen to every channel');
  const lastId = req.headers['last-event-id'] ?? url.searchParams.get('last_event_id') ?? undefined;
  let afterSeq: number | undefined;
  if (lastId !== undefined) {
    const text = Array.isArray(lastId) ? lastId[0] : lastId;
    afterSeq = Number(text);
    if (text === undefined || !/^\d{1,15}$/.test(text) || !Number.isSafeInteger(afterSeq))
      throw invalid('Last-Event-ID must be the seq of a notification (a whole number)');
  }
  const stream = await ops.listen(channel === null || channel === '' ? null : channel, afterSeq, signal);
  if (signal.aborted) {
    stream.close();
    return;
  }
  closeIfBodyUnread(res);
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  res.write(
    `retry: 1000\nid: ${stream.afterSeq}\nevent: listening\ndata: {"afterSeq":${stream.afterSeq}}\n\n`,
  );
  const { timers } = cx;
  let heartbeat: unknown = null;
  const beat = () => {
    heartbeat = null;
    if (res.destroyed || res.writableEnded) return;
    // A reader that is behind gets no heartbeat: it has data to read.
    if (!res.writableNeedDrain) res.write(': heartbeat\n\n');
    heartbeat = timers.setTimeout(beat, SSE_HEARTBEAT_MS);
  };
  heartbeat = timers.setTimeout(beat, SSE_HEARTBEAT_MS);
  const finish = (event: string) => {
    if (res.destroyed || res.writableEnded) return;
    res.end(event);
    // A reader that does not read would keep the socket (and what waits in it) forever.
    const grace = timers.setTimeout(() => res.destroy(), SSE_CLOSE_GRACE_MS);
    res.once('finish', () => timers.clearTimeout(grace));
  };
  const sink: ListenSink = {
    items: (batch: readonly Notification[]) =>
      res.write(
        batch
          .map(
            (n) =>
              `id: ${n.seq}\nevent: notification\ndata: ${toJson({
                channel: n.channel,
                payload: decodeValue(n.payload),
                index: n.index,
                time: n.time,
                seq: n.seq,
              })}\n\n`,
          )
          .join(''),
      ),
    lagged: (missed) =>
      finish(
        `event: lagged\ndata: ${toJson({ code: 'HQL_LAGGED', missed, message: `the listener missed ${missed} notifications and ended (it fell behind cache_listener_buffer_max / cache_listener_buffer_bytes_max, or, resuming, the node no longer held them: cache_notifications_ring_max)` })}\n\n`,
      ),
    failed: (e) => finish(`event: error\ndata: ${toJson(cx.errorBody(e))}\n\n`),
    drained: () =>
      new Promise<void>((resolve) => {
        if (res.destroyed) return resolve();
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.once('drain', done);
        res.once('close', done);
      }),
    get writable() {
      return !res.writableNeedDrain;
    },
    get closed() {
      return res.destroyed || res.writableEnded;
    },
  };
  const pump = pumpListen(stream, sink, SSE_BATCH_BYTES_MAX);
  const stop = () => pump.stop();
  res.once('close', stop);
  await pump.done;
  res.off('close', stop);
  if (heartbeat !== null) timers.clearTimeout(heartbeat);
  if (!res.writableEnded && !res.destroyed) res.end();
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function encodeValue(value: unknown): Uint8Array {
  // JSON's own shapes, but a key "__proto__" or a lone surrogate ("\ud800") would not read back.
  const problem = cacheValueProblem(value);
  if (problem !== null) throw invalid(problem);
  try {
    return new Uint8Array(packr.pack(value));
  } catch (e) {
    // JSON that parses can still be too deep for the encoder's recursion (`[[[…]]]`): the
    // client's input, not a bug.
    throw invalid(
      `the value cannot be stored as msgpack (nested too deeply?): ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

function decodeValue(bytes: Uint8Array): unknown {
  try {
    const v: unknown = packr.unpack(bytes);
    return v instanceof Uint8Array ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : v;
  } catch {
    // Stored by another writer in another format: hand out the bytes.
    return bytes;
  }
}

function ttlOf(url: RequestTarget, req: IncomingMessage): number | undefined {
  const header = req.headers['x-ttl-ms'];
  const query = url.searchParams.get('ttl_ms');
  // Two TTLs (the query and the header, even equal ones) are a mistake to refuse, not to pick from.
  if (query !== null && header !== undefined)
    throw invalid('the TTL is given twice: use ?ttl_ms= or the header X-TTL-MS, not both');
  const text = query ?? (Array.isArray(header) ? header[0] : header);
  if (text === undefined || text === null) return undefined;
  const n = Number(text);
  if (!/^\d{1,15}$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > CACHE_DURATION_MS_MAX)
    throw invalid(`ttl_ms must be a whole number of milliseconds from 1 to ${CACHE_DURATION_MS_MAX}`);
  return n;
}

function isJson(req: IncomingMessage): boolean {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || type.endsWith('+json');
}

function wantsBytes(req: IncomingMessage): boolean {
  return (req.headers.accept ?? '').toLowerCase().includes('application/octet-stream');
}

function decodePart(text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    // Well-formed escapes whose bytes are not UTF-8 (`%FF`, a surrogate's `%ED%A0%80`) fail
    // too: said as what they are, not as bad percent-encoding.
    throw invalid(
      wellFormedEscapes(text)
        ? `the ${what} in the path decodes to bytes that are not UTF-8 (keys and names are text)`
        : `the ${what} in the path is not valid percent-encoding`,
    );
  }
}

/** Whether every `%` of `text` starts two hex digits (checked in a loop: no regex over groups). */
function wellFormedEscapes(text: string): boolean {
  const hex = (i: number) => /[0-9A-Fa-f]/.test(text.charAt(i));
  for (let i = text.indexOf('%'); i !== -1; i = text.indexOf('%', i + 3)) {
    if (!hex(i + 1) || !hex(i + 2)) return false;
  }
  return true;
}

/**
 * The query parameters a route takes, each at most once: a misspelt one (`?ttl=60000` for
 * `ttl_ms`) would otherwise be ignored in silence, and the entry would never expire.
 */

function invalid(message: string): HiqliteError {
  return new HiqliteError('HQL_INVALID_PARAMS', message, { retryable: false });
}

function notFound(message: string): HiqliteError {
  return new HiqliteError('HQL_NOT_FOUND', message, { retryable: false });
}
