/**
 * HTTP request bodies and JSON answers, one implementation for every HTTP surface of a node (the
 * API port's JSON routes, its cache routes, the dashboard) and of a proxy. It is its own layer,
 * `http` (imports `lib` only), because the dashboard may import neither the node nor the
 * transport (docs/ARCHITECTURE.md, layers).
 *
 * A body is bounded twice, against careless or hostile clients:
 * - in size (`bytesMax`): an announced `Content-Length` above it is refused before a byte is
 *   read; a chunked body is refused as soon as what arrived passes it, and nothing beyond it is
 *   kept (the rest flows by unread until the answer closes the connection);
 * - in time (`timeoutMs`): a body that has not ended by then is refused (a client that sends
 *   its headers and then trickles or stops would otherwise hold the request and its buffers).
 *
 * Refusals are typed (`HttpBodyError`, a HiqliteError with its HTTP status): HQL_REQUEST_TOO_LARGE
 * (413), HQL_TIMEOUT (408) and HQL_INVALID_PARAMS (400, a body that is not the JSON asked for).
 * After a 413 or a 408 the connection is closed (`closeConnection`): the rest of that body is
 * not kept; on a connection that proved the secret it is read and dropped, within bounds, before
 * the close (allowLinger), so the client reads the answer rather than a reset.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { isPaddedBase64 } from '../lib/base64.js';
import { type ErrorCode, HiqliteError } from '../lib/errors.js';
import { decodeUtf8 } from '../lib/utf8.js';

/** How long a request body may take to arrive, unless the caller says otherwise (`http_body_timeout_ms`). */
export const HTTP_BODY_TIMEOUT_MS_DEFAULT = 30_000;

/**
 * How deep arrays and objects may nest in a JSON body, unless the caller says otherwise
 * (`http_json_depth_max`). `JSON.parse` of 8 MB of `[[[…]]]` held the event loop for 3–5 s (the
 * node's Raft with it: one request cost an election) and then failed anyway: nothing stores it.
 */
export const HTTP_JSON_DEPTH_MAX_DEFAULT = 128;

/**
 * How many values (arrays, objects and items, counted by their brackets and commas) a JSON body
 * may hold, unless the caller says otherwise (`http_json_values_max`). `JSON.parse` of 2.7
 * million empty arrays (8 MB) took 1.2 s of the node's thread; a million, 0.15–0.4 s.
 */
export const HTTP_JSON_VALUES_MAX_DEFAULT = 1_000_000;

export interface BodyLimits {
  /** Largest body, in bytes; larger is HQL_REQUEST_TOO_LARGE (413). */
  readonly bytesMax: number;
  /** From the call to the body's end; later is HQL_TIMEOUT (408). Default HTTP_BODY_TIMEOUT_MS_DEFAULT. */
  readonly timeoutMs?: number;
  /** The setting that bounds the size, named in the error's message (e.g. `entry_bytes_max`). */
  readonly bytesMaxKey?: string;
  /** How deep a JSON body may nest; deeper is HQL_INVALID_PARAMS (400). Default HTTP_JSON_DEPTH_MAX_DEFAULT. */
  readonly jsonDepthMax?: number;
  /** How many values a JSON body may hold; more is HQL_INVALID_PARAMS (400). Default HTTP_JSON_VALUES_MAX_DEFAULT. */
  readonly jsonValuesMax?: number;
}

/** A request body refused: its code, the HTTP status to answer, and whether to close the connection. */
export class HttpBodyError extends HiqliteError {
  override readonly name: string = 'HttpBodyError';
  constructor(
    code: ErrorCode,
    message: string,
    readonly status: number,
    readonly closeConnection: boolean,
  ) {
    super(code, message, { retryable: false });
  }
}

/**
 * The whole body of `req`, within `limits`. Rejects with an HttpBodyError when it is too large
 * (announced or received) or late, and with HQL_CLOSED when the client went away before its end.
 */
/** Requests whose body readBody is still receiving (bodyArriving). */
const arriving = new WeakSet<IncomingMessage>();

/**
 * True while readBody waits for the rest of `req`'s body: the request has not been processed
 * (a server shutting down answers it "not processed" instead of waiting for a slow upload).
 */
export function bodyArriving(req: IncomingMessage): boolean {
  return arriving.has(req);
}

export function readBody(req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const { bytesMax } = limits;
  const timeoutMs = limits.timeoutMs ?? HTTP_BODY_TIMEOUT_MS_DEFAULT;
  const tooLarge = () =>
    new HttpBodyError(
      'HQL_REQUEST_TOO_LARGE',
      `the body exceeds ${bytesMax} bytes${limits.bytesMaxKey === undefined ? '' : ` (${limits.bytesMaxKey})`}`,
      413,
      true,
    );
  const announced = Number(req.headers['content-length']);
  if (Number.isFinite(announced) && announced > bytesMax) {
    // Nothing of it is read: the answer closes the connection (the server discards what comes).
    return Promise.reject(tooLarge());
  }
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const settle = (error: Error | null) => {
      arriving.delete(req);
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
      if (error === null) {
        resolve(Buffer.concat(chunks, total));
        return;
      }
      chunks.length = 0;
      // Keep the stream flowing so the answer can be written; what still comes is dropped.
      req.resume();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total > bytesMax) settle(tooLarge());
      else chunks.push(chunk);
    };
    const onEnd = () => settle(null);
    const onError = (e: Error) =>
      settle(
        new HiqliteError('HQL_CLOSED', `the request failed before its body arrived: ${e.message}`, {
          retryable: false,
          cause: e,
        }),
      );
    const onClose = () =>
      settle(
        new HiqliteError('HQL_CLOSED', 'the request was closed before its body arrived', {
          retryable: false,
        }),
      );
    const timer = setTimeout(
      () =>
        settle(
          new HttpBodyError(
            'HQL_TIMEOUT',
            `the request body did not arrive within ${timeoutMs} ms`,
            408,
            true,
          ),
        ),
      timeoutMs,
    );
    arriving.add(req);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}

/**
 * `body` as JSON (any JSON value); HQL_INVALID_PARAMS (400) when it is not (an empty body is not),
 * nests deeper than `depthMax` or holds more than `valuesMax` values (both checked before
 * parsing, by one pass over the bytes).
 */
export function parseJsonBody(
  body: Buffer,
  depthMax = HTTP_JSON_DEPTH_MAX_DEFAULT,
  valuesMax = HTTP_JSON_VALUES_MAX_DEFAULT,
): unknown {
  const text = decodeUtf8(body);
  if (text === null)
    throw new HttpBodyError(
      'HQL_INVALID_PARAMS',
      'the body is not UTF-8: JSON must be (a byte that is not would reach the database as U+FFFD)',
      400,
      false,
    );
  const over = jsonShapeOver(body, depthMax, valuesMax);
  if (over !== null)
    throw new HttpBodyError(
      'HQL_INVALID_PARAMS',
      over === 'depth'
        ? `the body's JSON nests arrays and objects more than ${depthMax} deep (http_json_depth_max)`
        : `the body's JSON holds more than ${valuesMax} values (http_json_values_max)`,
      400,
      false,
    );
  const inexact = jsonInexactInteger(body);
  if (inexact !== null) {
    const shown = inexact.length > 40 ? `${inexact.slice(0, 40)}…` : inexact;
    throw new HttpBodyError(
      'HQL_INVALID_PARAMS',
      Number.isFinite(Number(inexact))
        ? `the body's JSON holds the integer ${shown}, beyond 2^53: a JSON number cannot carry it exactly (it would arrive as ${Number(inexact)}); send it as a decimal string (an INTEGER column stores "9007199254740993" as the integer), or as a number with an exponent if a REAL is meant`
        : `the body's JSON holds the number ${shown}, beyond the range of a double (it would arrive as ${Number(inexact)}, which JSON cannot answer)`,
      400,
      false,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new HttpBodyError(
      'HQL_INVALID_PARAMS',
      text.trim().length === 0
        ? 'the body is empty: it must be JSON'
        : `the body is not JSON: ${e instanceof Error ? e.message : String(e)}`,
      400,
      false,
    );
  }
  const twice = jsonDuplicateKey(body);
  if (twice !== null) {
    const shown = twice.length > 40 ? `${twice.slice(0, 40)}…` : twice;
    throw new HttpBodyError(
      'HQL_INVALID_PARAMS',
      `the body's JSON has the key ${JSON.stringify(shown)} twice in one object: JSON.parse keeps the last, so the first would be ignored`,
      400,
      false,
    );
  }
  return value;
}

/**
 * The first key that appears twice in one object of JSON text (UTF-8 bytes, JSON that parses),
 * or null. JSON.parse keeps the last (`{"sql": "SELECT 1", "sql": "SELECT 2"}` ran the second):
 * the routes refuse what they would ignore. One pass; keys with escapes are compared decoded.
 */
export function jsonDuplicateKey(bytes: Uint8Array): string | null {
  // One entry per open array (null) or object (its keys so far, and whether a key comes next).
  const open: ({ keys: Set<string>; keyNext: boolean } | null)[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;
    if (c === 0x22 /* " */) {
      const start = i + 1;
      let escaped = false;
      for (i = start; i < bytes.length; i++) {
        const d = bytes[i] as number;
        if (d === 0x5c /* backslash */) {
          escaped = true;
          i++;
        } else if (d === 0x22) break;
      }
      const top = open[open.length - 1];
      if (top !== null && top !== undefined && top.keyNext) {
        top.keyNext = false;
        const raw = Buffer.from(bytes.buffer, bytes.byteOffset + start, i - start).toString('utf8');
        const key = escaped ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (top.keys.has(key)) return key;
        top.keys.add(key);
      }
    } else if (c === 0x7b /* { */) open.push({ keys: new Set(), keyNext: true });
    else if (c === 0x5b /* [ */) open.push(null);
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) open.pop();
    else if (c === 0x2c /* , */) {
      const top = open[open.length - 1];
      if (top !== null && top !== undefined) top.keyNext = true;
    }
  }
  return null;
}

/**
 * Whether JSON text (UTF-8 bytes) nests arrays and objects more than `depthMax` deep ('depth'),
 * or holds more than `valuesMax` values ('values': arrays, objects and items, counted by opening
 * brackets and commas), or null: one pass, brackets and commas inside strings do not count.
 * Malformed text is left to the parser, which says what is wrong.
 */
export function jsonShapeOver(
  bytes: Uint8Array,
  depthMax: number,
  valuesMax = Number.POSITIVE_INFINITY,
): 'depth' | 'values' | null {
  let depth = 0;
  let values = 1;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;
    if (inString) {
      if (c === 0x5c /* backslash: the next byte is escaped */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > depthMax) return 'depth';
      if (++values > valuesMax) return 'values';
    } else if (c === 0x2c /* , */) {
      if (++values > valuesMax) return 'values';
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return null;
}

/** 2^53: every integer up to it is exact as a JSON number (a double); 2^53 + 1 is not. */
const EXACT_INTEGER_MAX = '9007199254740992';

/**
 * The first integer literal of JSON text (UTF-8 bytes) beyond ±2^53, outside strings, or null:
 * JSON.parse gives such a literal as the nearest double, another integer (`9007199254740993`
 * arrived as 9007199254740992, and a SQL write stored that). A literal with a fraction or an
 * exponent says a REAL is meant: left alone. One pass; malformed text is left to the parser.
 */
export function jsonInexactInteger(bytes: Uint8Array): string | null {
  return firstJsonNumber(bytes, (literal, real) => {
    // A REAL beyond a double's range arrives as ±Infinity (`1e400`), which JSON cannot answer.
    if (real) return !Number.isFinite(Number(literal));
    const digits = literal.startsWith('-') ? literal.slice(1) : literal;
    return (
      digits.length > EXACT_INTEGER_MAX.length ||
      (digits.length === EXACT_INTEGER_MAX.length && digits > EXACT_INTEGER_MAX)
    );
  });
}

/**
 * The first number literal of JSON text with a fraction or an exponent (`1.0`, `1e2`), outside
 * strings, or null: where only integers are taken, such a literal is refused rather than read
 * as the double it parses to (`1.0000000000000001` is 1; found from outside: a counter took it).
 */
export function jsonRealLiteral(bytes: Uint8Array): string | null {
  return firstJsonNumber(bytes, (_literal, real) => real);
}

/**
 * The first number token of JSON text (UTF-8 bytes), outside strings, that `pick` takes (with
 * whether it has a fraction or an exponent), or null. One pass; malformed text is left to the parser.
 */
function firstJsonNumber(
  bytes: Uint8Array,
  pick: (literal: string, real: boolean) => boolean,
): string | null {
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] as number;
    if (inString) {
      if (c === 0x5c /* backslash */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) {
      inString = true;
      continue;
    }
    if (c !== 0x2d /* - */ && (c < 0x30 || c > 0x39)) continue;
    // A number token: its digits, and whether it has a fraction or an exponent.
    const start = i;
    let real = false;
    let j = i;
    for (; j < bytes.length; j++) {
      const d = bytes[j] as number;
      if (d === 0x2e || d === 0x65 || d === 0x45) real = true;
      else if (!((d >= 0x30 && d <= 0x39) || d === 0x2d || d === 0x2b)) break;
    }
    i = j - 1;
    const literal = Buffer.from(bytes.buffer, bytes.byteOffset + start, j - start).toString('latin1');
    if (pick(literal, real)) return literal;
  }
  return null;
}

/** Bodies from this size on are parsed one per turn of the event loop (largeBodyTurn). */
export const LARGE_BODY_BYTES = 1024 * 1024;

let largeBodies: Promise<void> = Promise.resolve();

/**
 * Resolves when a body of `bytes` may be parsed: at once below LARGE_BODY_BYTES; a larger one
 * waits for the large body before it and one more turn of the event loop. Parsing 8 MB of JSON
 * takes 0.3–1.2 s of the thread that also runs the node's Raft (heartbeats are timers); bodies
 * that arrived together were parsed back to back, and three of them cost the leader its term.
 * One per turn lets the timers run between them.
 */
export function largeBodyTurn(bytes: number): Promise<void> {
  if (bytes < LARGE_BODY_BYTES) return Promise.resolve();
  const turn = largeBodies.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
  largeBodies = turn;
  return turn;
}

/** `body` as JSON under `limits` (parseJsonBody), a large one in its turn (largeBodyTurn). */
export async function parseJsonInTurn(body: Buffer, limits: BodyLimits): Promise<unknown> {
  await largeBodyTurn(body.byteLength);
  return parseJsonBody(body, limits.jsonDepthMax, limits.jsonValuesMax);
}

/** The body as JSON (parseJsonInTurn). */
export async function readJsonBody(req: IncomingMessage, limits: BodyLimits): Promise<unknown> {
  return parseJsonInTurn(await readBody(req, limits), limits);
}

/** The body as a JSON object; HQL_INVALID_PARAMS (400) for any other JSON or no JSON. */
export async function readJsonObject(
  req: IncomingMessage,
  limits: BodyLimits,
): Promise<Record<string, unknown>> {
  return readJsonObjectOf(await readBody(req, limits), limits);
}

/** A body read already, as a JSON object (readJsonObject). */
export async function readJsonObjectOf(body: Buffer, limits: BodyLimits): Promise<Record<string, unknown>> {
  const v = await parseJsonInTurn(body, limits);
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new HttpBodyError('HQL_INVALID_PARAMS', 'the body must be a JSON object', 400, false);
  return v as Record<string, unknown>;
}

/**
 * Bytes as JSON carries them (`toJson`): an object whose only key is `$blob`, a base64 string.
 * Null for any other value; HQL_INVALID_PARAMS (400) for `{"$blob": …}` that is not base64
 * (stored as a plain object, it read back as what a GET shows for bytes).
 */
export function blobFromJson(v: unknown, where: string): Uint8Array | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const keys = Object.keys(v);
  if (keys.length !== 1 || keys[0] !== '$blob') return null;
  const text = (v as { $blob: unknown }).$blob;
  if (typeof text !== 'string' || !isPaddedBase64(text))
    throw new HttpBodyError(
      'HQL_INVALID_PARAMS',
      `${where}: {"$blob": …} is how JSON carries bytes, and takes a base64 string (standard alphabet, padded)`,
      400,
      false,
    );
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** A JSON value with every `{"$blob": base64}` in it as bytes (blobFromJson), at any depth. */
export function blobsFromJson(v: unknown, where = 'the value'): unknown {
  if (typeof v !== 'object' || v === null) return v;
  const bytes = blobFromJson(v, where);
  if (bytes !== null) return bytes;
  if (Array.isArray(v)) return v.map((x, i) => blobsFromJson(x, `${where}[${i}]`));
  // Null prototype: a key "__proto__" (JSON.parse makes it an own key) stays a key, for the
  // value's own checks to see.
  const out: Record<string, unknown> = Object.create(null);
  for (const [k, x] of Object.entries(v)) out[k] = blobsFromJson(x, `${where}.${k}`);
  return out;
}

/**
 * JSON cannot carry bigint, bytes or a number that is not finite: bigint becomes a decimal
 * string, bytes `{ "$blob": base64 }`, ±Infinity and NaN the strings "Infinity", "-Infinity",
 * "NaN" (JSON.stringify made them null: a REAL of 1e400 read as NULL).
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
    if (v instanceof Uint8Array) return { $blob: Buffer.from(v).toString('base64') };
    if (
      typeof v === 'object' &&
      v !== null &&
      (v as { type?: unknown }).type === 'Buffer' &&
      Array.isArray((v as { data?: unknown }).data)
    ) {
      return { $blob: Buffer.from((v as { data: number[] }).data).toString('base64') };
    }
    return v;
  });
}

/**
 * A JSON answer (`toJson`), with its length; `headers` are added (and win). An answer given
 * before the request's body was read (a wrong secret, an unknown route, a method a route does not
 * have) closes the connection: the server would otherwise read and discard the rest of a body
 * the client announced, as long as the client sends it, to keep the connection.
 */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string | string[]> = {},
): void {
  const text = toJson(body);
  closeIfBodyUnread(res);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/**
 * Before an answer's head: when the request announced a body (a length above 0, or chunks) that
 * has not all been read, the answer says `Connection: close` and the connection ends with it,
 * instead of the server reading and discarding the rest for as long as the client sends it.
 * Every JSON answer goes through here (sendJson), and the API port's routes that write their own
 * head (metrics, raw bytes, Server-Sent Events) call it; the dashboard's files always close.
 */
export function closeIfBodyUnread(res: ServerResponse): void {
  const req = res.req as IncomingMessage | undefined;
  if (req === undefined || req.complete) return;
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
    res.shouldKeepAlive = false;
    lingerBeforeClose(req);
  }
}

/** How much of an unread body an authenticated connection's close still reads (allowLinger). */
export interface LingerLimits {
  /** Bytes of the rest read and dropped at most; beyond, the connection is cut. */
  readonly bytesMax: number;
  /** How long at most; then the connection is cut. */
  readonly timeoutMs: number;
}

/** `http_linger_bytes_max` unless the server says otherwise. */
export const HTTP_LINGER_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;

/** How often a lingering connection's bytes are looked at besides each chunk of the body. */
const LINGER_CHECK_MS = 50;

/** Connections whose answers before the end of a body linger (allowLinger), with their bounds. */
const lingerAllowed = new WeakMap<Socket, LingerLimits>();

/**
 * Lets the answers on `socket` that close the connection before the request's body was read (a
 * 413, a refusal before the body) read and drop the rest of that body, within `limits`, before
 * the connection closes. Closed at once, the client still sending got a reset: `fetch` failed
 * with EPIPE and never showed the 413 (found from outside: a put of 20 MiB), Node's http client
 * reported EPIPE beside it. Only for a connection that proved the secret: a stranger's body is
 * not read on its behalf (the node's thread parses what is read).
 */
export function allowLinger(socket: Socket, limits: LingerLimits): void {
  lingerAllowed.set(socket, limits);
}

/**
 * Node closes a connection whose answer said `Connection: close` once the answer is written
 * (`socket.destroySoon`): with the request's body still arriving, that close is a reset. On a
 * connection allowed to linger, the close waits for the body's end, reading and dropping it, up
 * to the connection's bounds (then it is cut as before).
 */
function lingerBeforeClose(req: IncomingMessage): void {
  const socket = req.socket as Socket & { destroySoon?: () => void };
  const limits = lingerAllowed.get(socket);
  if (limits === undefined || typeof socket.destroySoon !== 'function') return;
  lingerAllowed.delete(socket); // once: the connection ends with this answer
  const close = socket.destroySoon.bind(socket);
  socket.destroySoon = () => {
    if (req.complete || socket.destroyed) {
      close();
      return;
    }
    // Counted by the socket's bytes read, looked at on each chunk of the body and every
    // LINGER_CHECK_MS: a 'data' listener on the socket stopped its reading (the HTTP parser reads
    // the socket's handle itself), and the rest of the body sat in the kernel's queue until the
    // deadline, holding the connection (found from outside: `fetch` of 20 MiB, 30 s each).
    const startBytes = socket.bytesRead;
    const check = () => {
      if (socket.bytesRead - startBytes > limits.bytesMax) stop(true);
    };
    const stop = (cut: boolean) => {
      clearTimeout(timer);
      clearInterval(poll);
      req.off('data', check);
      req.off('end', onEnd);
      if (cut) socket.destroy();
      else close();
    };
    const onEnd = () => stop(false);
    const timer = setTimeout(() => stop(true), limits.timeoutMs);
    timer.unref();
    const poll = setInterval(check, LINGER_CHECK_MS);
    poll.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      clearInterval(poll);
    });
    req.on('data', check);
    req.once('end', onEnd);
    // What Node's answer did not make flow (a body never read) flows now, dropped.
    req.resume();
  };
}

/**
 * An error answer, `{ ok: false, error: { code, message, retryable } }`: retryable for 429 and
 * 503 (the same call may succeed later), unless said otherwise.
 */
export function sendError(
  res: ServerResponse,
  status: number,
  code: ErrorCode,
  message: string,
  o: { readonly headers?: Record<string, string | string[]>; readonly retryable?: boolean } = {},
): void {
  const retryable = o.retryable ?? (status === 429 || status === 503);
  sendJson(res, status, { ok: false, error: { code, message, retryable } }, o.headers ?? {});
}

/** Why a known route refuses `method` (a 405 answer's message; `allow` as in its Allow header). */
export function methodNotAllowedMessage(method: string, route: string, allow: string): string {
  return `${method} is not a method of ${route} (it takes ${allow})`;
}

/** 405, with the `Allow` header HTTP asks for (the methods `route` has). */
export function sendMethodNotAllowed(
  res: ServerResponse,
  method: string,
  route: string,
  allow: string,
): void {
  sendError(res, 405, 'HQL_INVALID_PARAMS', methodNotAllowedMessage(method, route, allow), {
    headers: { allow },
  });
}

/** The answer to a refused body: its status and code, and `Connection: close` when it asks for it. */
export function sendBodyError(
  res: ServerResponse,
  e: HttpBodyError,
  headers: Record<string, string | string[]> = {},
): void {
  sendError(res, e.status, e.code, e.message, {
    headers: e.closeConnection ? { ...headers, connection: 'close' } : headers,
    retryable: false,
  });
}
