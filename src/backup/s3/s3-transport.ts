/**
 * One S3 request: address, sign (aws4fetch's SigV4 signer), send with a deadline, classify the
 * answer, and retry what may be retried. Operations (s3-client.ts) describe requests; this file
 * is the only one that touches the network.
 *
 * We sign with `AwsV4Signer` rather than `AwsClient.fetch`: its retry loop has no deadline and no
 * injected clock, and building a `Request` would copy every part body once more.
 */

import { createHash } from 'node:crypto';
import { AwsV4Signer } from 'aws4fetch';
import { whenAborted } from '../../lib/abort.js';
import { assert } from '../../lib/assert.js';
import { type RetryListener, s3Aborted, withRetries } from './retry.js';
import { S3Error } from './s3-errors.js';
import type { ResolvedS3Options } from './s3-options.js';
import { parseErrorBody } from './s3-xml.js';

export type S3Method = 'GET' | 'PUT' | 'POST' | 'DELETE' | 'HEAD';

export interface S3RequestSpec {
  /** S3's name of the operation, for messages: `PutObject`, `UploadPart`, … */
  operation: string;
  method: S3Method;
  /** The object key, or null for a request on the bucket. */
  key: string | null;
  query?: ReadonlyArray<readonly [string, string]>;
  headers?: Readonly<Record<string, string>>;
  body?: Uint8Array | string;
  /** Statuses other than 2xx that are answers, not failures (404 of HeadObject). */
  acceptStatuses?: readonly number[];
  signal?: AbortSignal | undefined;
}

export interface S3TextAnswer {
  status: number;
  headers: Headers;
  text: string;
}

export interface S3StreamAnswer {
  status: number;
  headers: Headers;
  /** The body; every chunk must arrive within `requestTimeoutMs` of the previous one. */
  body: AsyncIterable<Uint8Array>;
}

const RETRYABLE_S3_CODES = new Set([
  'RequestTimeout',
  'SlowDown',
  'InternalError',
  'ServiceUnavailable',
  'PriorRequestNotComplete',
]);

const EMPTY_SHA256 = createHash('sha256').digest('hex');

/** Bodies from this size on are sent as a stream over their bytes (part buffers). */
const STREAMED_BODY_BYTES_MIN = 64 * 1024;
const STREAM_CHUNK_BYTES = 256 * 1024;

/** A stream of views into `bytes`, read on demand; the bytes must not change until it is sent. */
function bodyStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const end = Math.min(at + STREAM_CHUNK_BYTES, bytes.byteLength);
      controller.enqueue(bytes.subarray(at, end));
      at = end;
      if (at === bytes.byteLength) controller.close();
    },
  });
}

export class S3Transport {
  private readonly signingKeyCache = new Map<string, ArrayBuffer>();

  constructor(
    readonly options: ResolvedS3Options,
    private readonly onRetry?: RetryListener,
  ) {}

  /** Sends with retries and reads the whole (small) answer body within the deadline. */
  requestText(spec: S3RequestSpec): Promise<S3TextAnswer> {
    const prepared = this.prepare(spec);
    return withRetries(this.options, spec.signal, this.onRetry, (n) => this.attemptText(spec, prepared, n));
  }

  /** Sends with retries until the answer's headers arrive; the body streams to the caller. */
  requestStream(spec: S3RequestSpec): Promise<S3StreamAnswer> {
    const prepared = this.prepare(spec);
    return withRetries(this.options, spec.signal, this.onRetry, (n) => this.attemptStream(spec, prepared, n));
  }

  /** The URL of an object (or of the bucket when `key` is null), addressed as configured. */
  url(key: string | null, query: ReadonlyArray<readonly [string, string]> = []): URL {
    const o = this.options;
    const base = o.endpoint.pathname.replace(/\/+$/, '');
    const objectPath = key === null ? '' : `/${encodeKey(key)}`;
    const url = new URL(o.endpoint.href);
    if (o.pathStyle) {
      url.pathname = `${base}/${o.bucket}${objectPath}`;
    } else {
      url.hostname = `${o.bucket}.${o.endpoint.hostname}`;
      // URL ignores a host it cannot take (an IP address's subdomain): refused when the options
      // are resolved; asserted here, since a request without its bucket reaches another resource.
      assert(url.hostname === `${o.bucket}.${o.endpoint.hostname}`, 'the bucket is in the host name');
      url.pathname = `${base}${objectPath}` || '/';
    }
    url.search = query.map(([k, v]) => `${encodeRfc3986(k)}=${encodeRfc3986(v)}`).join('&');
    return url;
  }

  private prepare(spec: S3RequestSpec): { url: URL; body: Uint8Array | undefined; sha256: string } {
    if (spec.key !== null) checkKey(spec.operation, spec.key);
    const body = typeof spec.body === 'string' ? Buffer.from(spec.body, 'utf8') : spec.body;
    const sha256 = body === undefined ? EMPTY_SHA256 : createHash('sha256').update(body).digest('hex');
    return { url: this.url(spec.key, spec.query), body, sha256 };
  }

  private async attemptText(
    spec: S3RequestSpec,
    prepared: { url: URL; body: Uint8Array | undefined; sha256: string },
    attempt: number,
  ): Promise<S3TextAnswer> {
    const call = this.startCall(spec);
    try {
      const res = await this.send(spec, prepared, call);
      const text = spec.method === 'HEAD' ? '' : await res.text();
      if (isAccepted(spec, res.status)) {
        // CompleteMultipartUpload may answer 200 and fail later in the body (AWS documents this).
        const error =
          res.status === 200 && /^\s*(<\?xml[^>]*\?>\s*)?<Error>/.test(text) ? parseErrorBody(text) : null;
        if (error === null) return { status: res.status, headers: res.headers, text };
        throw this.answerError(spec, res.status, error.code, error.message, attempt);
      }
      throw this.statusError(spec, res.status, text, attempt);
    } catch (e) {
      throw this.failure(spec, call, e, attempt);
    } finally {
      call.done();
    }
  }

  private async attemptStream(
    spec: S3RequestSpec,
    prepared: { url: URL; body: Uint8Array | undefined; sha256: string },
    attempt: number,
  ): Promise<S3StreamAnswer> {
    const call = this.startCall(spec);
    let res: Response;
    try {
      res = await this.send(spec, prepared, call);
      if (!isAccepted(spec, res.status)) throw this.statusError(spec, res.status, await res.text(), attempt);
    } catch (e) {
      call.done();
      throw this.failure(spec, call, e, attempt);
    }
    call.pauseDeadline();
    return { status: res.status, headers: res.headers, body: this.streamBody(spec, res, call, attempt) };
  }

  private async *streamBody(
    spec: S3RequestSpec,
    res: Response,
    call: Call,
    attempt: number,
  ): AsyncGenerator<Uint8Array> {
    if (res.body === null) {
      call.done();
      return;
    }
    const reader = res.body.getReader();
    try {
      for (;;) {
        call.restartDeadline();
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (e) {
          throw this.failure(spec, call, e, attempt);
        }
        call.pauseDeadline();
        if (chunk.done) return;
        yield chunk.value;
      }
    } finally {
      call.done();
      // Ends the connection when the consumer stops early; harmless after the end.
      reader.cancel().catch(() => {});
    }
  }

  private async send(
    spec: S3RequestSpec,
    prepared: { url: URL; body: Uint8Array | undefined; sha256: string },
    call: Call,
  ): Promise<Response> {
    const o = this.options;
    const signer = new AwsV4Signer({
      method: spec.method,
      url: prepared.url.href,
      headers: { ...spec.headers, 'x-amz-content-sha256': prepared.sha256 },
      accessKeyId: o.accessKeyId,
      secretAccessKey: o.secretAccessKey,
      service: 's3',
      region: o.region,
      cache: this.signingKeyCache,
      datetime: new Date(o.clock.wallMs()).toISOString().replace(/[:-]|\.\d{3}/g, ''),
    });
    const signed = await signer.sign();
    if (call.signal.aborted) throw call.signal.reason;
    const body = prepared.body;
    if (body !== undefined && body.byteLength >= STREAMED_BODY_BYTES_MIN) {
      // fetch copies a byte body once per request; a stream over the part buffer does not.
      signed.headers.set('content-length', String(body.byteLength));
      return o.fetch(signed.url, {
        method: spec.method,
        headers: signed.headers,
        body: bodyStream(body),
        duplex: 'half',
        signal: call.signal,
        redirect: 'manual',
      } as RequestInit);
    }
    return o.fetch(signed.url, {
      method: spec.method,
      headers: signed.headers,
      ...(body === undefined ? {} : { body }),
      signal: call.signal,
      redirect: 'manual',
    });
  }

  private startCall(spec: S3RequestSpec): Call {
    return new Call(this.options, spec.signal);
  }

  /** Turns whatever an attempt threw into the error to report (or retry). */
  private failure(spec: S3RequestSpec, call: Call, e: unknown, attempt: number): unknown {
    if (e instanceof S3Error) return e;
    if (spec.signal?.aborted) return s3Aborted(spec.signal);
    if (call.timedOut) {
      return new S3Error({
        operation: spec.operation,
        key: spec.key,
        s3Code: 'RequestDeadline',
        httpStatus: null,
        detail: `no answer within requestTimeoutMs (${this.options.requestTimeoutMs} ms)`,
        retryable: true,
        attempts: attempt,
        cause: e,
      });
    }
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause : e;
    return new S3Error({
      operation: spec.operation,
      key: spec.key,
      s3Code: 'NetworkError',
      httpStatus: null,
      detail: `${describe(cause)} (${this.options.endpoint.host})`,
      retryable: true,
      attempts: attempt,
      cause: e,
    });
  }

  private statusError(spec: S3RequestSpec, status: number, text: string, attempt: number): S3Error {
    const body = parseErrorBody(text);
    return this.answerError(spec, status, body?.code ?? codeOfStatus(status), body?.message ?? '', attempt);
  }

  private answerError(
    spec: S3RequestSpec,
    status: number,
    code: string,
    message: string,
    attempt: number,
  ): S3Error {
    return new S3Error({
      operation: spec.operation,
      key: spec.key,
      s3Code: code,
      httpStatus: status,
      detail: message === '' ? 'no message' : message,
      retryable: status >= 500 || status === 429 || RETRYABLE_S3_CODES.has(code),
      attempts: attempt,
    });
  }
}

/**
 * The deadline and cancellation of one attempt: aborted by the caller's signal, or by the timer
 * when no answer (or no next body chunk) comes within `requestTimeoutMs`.
 */
class Call {
  private readonly controller = new AbortController();
  private timer: ReturnType<ResolvedS3Options['clock']['setTimer']> | null = null;
  private finished = false;
  timedOut = false;
  private readonly onCallerAbort = () => this.controller.abort();
  private readonly stopListening: () => void;

  constructor(
    private readonly options: ResolvedS3Options,
    callerSignal: AbortSignal | undefined,
  ) {
    this.stopListening = whenAborted(callerSignal, this.onCallerAbort);
    this.restartDeadline();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  restartDeadline(): void {
    if (this.finished) return;
    this.pauseDeadline();
    this.timer = this.options.clock.setTimer(() => {
      this.timedOut = true;
      this.controller.abort();
    }, this.options.requestTimeoutMs);
  }

  pauseDeadline(): void {
    if (this.timer !== null) this.options.clock.clearTimer(this.timer);
    this.timer = null;
  }

  done(): void {
    this.pauseDeadline();
    this.finished = true;
    this.stopListening();
  }
}

function isAccepted(spec: S3RequestSpec, status: number): boolean {
  return (status >= 200 && status < 300) || (spec.acceptStatuses?.includes(status) ?? false);
}

/** For answers without an XML body (HEAD). */
function codeOfStatus(status: number): string {
  const names: Record<number, string> = {
    301: 'PermanentRedirect',
    307: 'TemporaryRedirect',
    400: 'BadRequest',
    403: 'Forbidden',
    404: 'NotFound',
    412: 'PreconditionFailed',
    416: 'InvalidRange',
    429: 'TooManyRequests',
    500: 'InternalError',
    503: 'ServiceUnavailable',
  };
  return names[status] ?? `HTTP${status}`;
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}

/** RFC 3986 unreserved characters stay, everything else is %-encoded (SigV4's rule). */
export function encodeRfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Each path segment encoded; `/` separates segments as S3 keys use it. */
export function encodeKey(key: string): string {
  return key.split('/').map(encodeRfc3986).join('/');
}

const KEY_BYTES_MAX = 1024;

/** URL parsing would rewrite `.` and `..` segments, so such keys could address another object. */
export function checkKey(operation: string, key: string): void {
  const bytes = Buffer.byteLength(key, 'utf8');
  const bad =
    key === '' ||
    bytes > KEY_BYTES_MAX ||
    key.split('/').some((s) => s === '.' || s === '..') ||
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
    /[\u0000-\u001f\u007f]/.test(key);
  if (!bad) return;
  throw new S3Error({
    operation,
    key,
    s3Code: 'InvalidObjectKey',
    httpStatus: null,
    detail: `a key must be 1 to ${KEY_BYTES_MAX} bytes of UTF-8 without control characters or '.'/'..' segments`,
    retryable: false,
    attempts: 0,
  });
}
