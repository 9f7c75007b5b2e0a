/**
 * Our small S3 client (issue 13): the operations a backup needs and nothing else. Requests are
 * signed with SigV4 (aws4fetch), sent with Node's global fetch, bounded by a deadline each, and
 * retried with backoff when S3 or the network may succeed on a second try (s3-transport.ts).
 * Multipart upload from a stream lives in multipart-upload.ts.
 */
import { type RetryListener, retryDelayMs, sleep } from './retry.js';
import { S3Error } from './s3-errors.js';
import { type ResolvedS3Options, resolveS3Options, type S3ClientOptions } from './s3-options.js';
import { type S3RequestSpec, type S3StreamAnswer, S3Transport } from './s3-transport.js';
import { type CompletedPart, completeMultipartXml, xmlBlocks, xmlRoot, xmlTag } from './s3-xml.js';

export interface S3ObjectInfo {
  key: string;
  sizeBytes: number;
  /** As S3 sends it, quotes included. */
  etag: string;
  /** From `Last-Modified` / `LastModified`, or null when the server sent none. */
  lastModifiedMs: number | null;
}

export interface S3Download {
  info: S3ObjectInfo;
  /**
   * The object's bytes. A connection dropped mid-body is resumed from the next byte (a `Range`
   * request with `If-Match` on the ETag, so a replaced object fails instead of mixing), at most
   * `retriesMax` times per download.
   */
  body: AsyncIterable<Uint8Array>;
}

export interface S3MultipartUploadInfo {
  key: string;
  uploadId: string;
  /** When the upload was created, or null when the server did not say. */
  initiatedMs: number | null;
}

export interface S3CallOptions {
  signal?: AbortSignal;
}

export interface S3ClientHooks {
  /** Before each retry of a request. */
  onRetry?: RetryListener;
  /** A failed multipart upload could not be aborted (its parts stay billed until a lifecycle rule). */
  onAbortFailed?: (key: string, uploadId: string, error: unknown) => void;
}

export class S3Client {
  readonly options: ResolvedS3Options;
  readonly hooks: S3ClientHooks;
  private readonly transport: S3Transport;

  constructor(options: S3ClientOptions, hooks: S3ClientHooks = {}) {
    this.options = resolveS3Options(options);
    this.hooks = hooks;
    this.transport = new S3Transport(this.options, hooks.onRetry);
  }

  /** The URL an object is addressed by (path-style or virtual-hosted), for messages and tests. */
  objectUrl(key: string): string {
    return this.transport.url(key).href;
  }

  /** One PUT of a body held in memory (for bodies up to `partSizeBytes`; larger: `uploadStream`). */
  async putObject(key: string, body: Uint8Array | string, o: S3CallOptions = {}): Promise<{ etag: string }> {
    const a = await this.transport.requestText({
      ...this.base('PutObject', 'PUT', key, o),
      headers: { 'content-type': 'application/octet-stream' },
      body,
    });
    return { etag: a.headers.get('etag') ?? '' };
  }

  /** The object's size and ETag, or null when there is no such object. */
  async headObject(key: string, o: S3CallOptions = {}): Promise<S3ObjectInfo | null> {
    const a = await this.transport.requestText({
      ...this.base('HeadObject', 'HEAD', key, o),
      acceptStatuses: [404],
    });
    if (a.status === 404) return null;
    return infoFromHeaders(key, a.headers, 'HeadObject');
  }

  /** Streams an object; a missing one is `S3Error` with `s3Code` `NoSuchKey`. */
  async getObject(key: string, o: S3CallOptions = {}): Promise<S3Download> {
    const first = await this.transport.requestStream(this.base('GetObject', 'GET', key, o));
    const info = infoFromHeaders(key, first.headers, 'GetObject');
    return { info, body: this.resumingBody(info, first, o.signal) };
  }

  /** Deletes an object; deleting a missing one succeeds (as in S3). */
  async deleteObject(key: string, o: S3CallOptions = {}): Promise<void> {
    await this.transport.requestText({
      ...this.base('DeleteObject', 'DELETE', key, o),
      acceptStatuses: [404],
    });
  }

  /** Every object under `prefix`, page by page (ListObjectsV2, `listPageKeysMax` per page). */
  async *listObjects(prefix: string, o: S3CallOptions = {}): AsyncGenerator<S3ObjectInfo> {
    let token: string | null = null;
    for (;;) {
      const page = await this.listObjectsPage(prefix, token, o);
      yield* page.objects;
      if (page.nextContinuationToken === null) return;
      if (page.nextContinuationToken === token)
        throw invalid('ListObjectsV2', null, 'the same continuation token twice');
      token = page.nextContinuationToken;
    }
  }

  async listObjectsPage(
    prefix: string,
    continuationToken: string | null,
    o: S3CallOptions = {},
  ): Promise<{ objects: S3ObjectInfo[]; nextContinuationToken: string | null }> {
    const query: Array<[string, string]> = [
      ['list-type', '2'],
      ['max-keys', String(this.options.listPageKeysMax)],
      ['prefix', prefix],
    ];
    if (continuationToken !== null) query.push(['continuation-token', continuationToken]);
    const a = await this.transport.requestText({ ...this.base('ListObjectsV2', 'GET', null, o), query });
    expectRoot('ListObjectsV2', null, a.text, 'ListBucketResult');
    const objects = xmlBlocks(a.text, 'Contents').map((block) => {
      const key = xmlTag(block, 'Key');
      const size = Number(xmlTag(block, 'Size'));
      if (key === null || !Number.isSafeInteger(size) || size < 0) {
        throw invalid('ListObjectsV2', null, 'an entry without Key or Size');
      }
      const modified = Date.parse(xmlTag(block, 'LastModified') ?? '');
      return {
        key,
        sizeBytes: size,
        etag: xmlTag(block, 'ETag') ?? '',
        lastModifiedMs: Number.isNaN(modified) ? null : modified,
      };
    });
    if (xmlTag(a.text, 'IsTruncated') !== 'true') return { objects, nextContinuationToken: null };
    const next = xmlTag(a.text, 'NextContinuationToken');
    if (next === null || next === '')
      throw invalid('ListObjectsV2', null, 'IsTruncated without NextContinuationToken');
    return { objects, nextContinuationToken: next };
  }

  async createMultipartUpload(key: string, o: S3CallOptions = {}): Promise<string> {
    const a = await this.transport.requestText({
      ...this.base('CreateMultipartUpload', 'POST', key, o),
      query: [['uploads', '']],
      headers: { 'content-type': 'application/octet-stream' },
    });
    expectRoot('CreateMultipartUpload', key, a.text, 'InitiateMultipartUploadResult');
    const uploadId = xmlTag(a.text, 'UploadId');
    if (uploadId === null || uploadId === '') throw invalid('CreateMultipartUpload', key, 'no UploadId');
    return uploadId;
  }

  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Uint8Array,
    o: S3CallOptions = {},
  ): Promise<CompletedPart> {
    const a = await this.transport.requestText({
      ...this.base('UploadPart', 'PUT', key, o),
      query: [
        ['partNumber', String(partNumber)],
        ['uploadId', uploadId],
      ],
      body,
    });
    const etag = a.headers.get('etag');
    if (etag === null || etag === '') throw invalid('UploadPart', key, `no ETag for part ${partNumber}`);
    return { partNumber, etag };
  }

  /**
   * Completes an upload. When an earlier attempt succeeded but its answer was lost, the retry
   * finds no upload (`NoSuchUpload`); the object is then accepted if it has as many parts and the
   * expected size.
   */
  async completeMultipartUpload(
    key: string,
    uploadId: string,
    parts: readonly CompletedPart[],
    sizeBytes: number,
    o: S3CallOptions = {},
  ): Promise<{ etag: string }> {
    try {
      const a = await this.transport.requestText({
        ...this.base('CompleteMultipartUpload', 'POST', key, o),
        query: [['uploadId', uploadId]],
        headers: { 'content-type': 'application/xml' },
        body: completeMultipartXml(parts),
      });
      expectRoot('CompleteMultipartUpload', key, a.text, 'CompleteMultipartUploadResult');
      return { etag: xmlTag(a.text, 'ETag') ?? '' };
    } catch (e) {
      if (!(e instanceof S3Error && e.s3Code === 'NoSuchUpload' && e.attempts > 1)) throw e;
      const info = await this.headObject(key, o);
      if (info === null || info.sizeBytes !== sizeBytes || !info.etag.endsWith(`-${parts.length}"`)) throw e;
      return { etag: info.etag };
    }
  }

  async abortMultipartUpload(key: string, uploadId: string, o: S3CallOptions = {}): Promise<void> {
    await this.transport.requestText({
      ...this.base('AbortMultipartUpload', 'DELETE', key, o),
      query: [['uploadId', uploadId]],
      acceptStatuses: [404],
    });
  }

  /** Unfinished multipart uploads under `prefix` (for cleanup and tests). */
  async *listMultipartUploads(prefix: string, o: S3CallOptions = {}): AsyncGenerator<S3MultipartUploadInfo> {
    let keyMarker: string | null = null;
    let uploadIdMarker: string | null = null;
    for (;;) {
      const query: Array<[string, string]> = [
        ['uploads', ''],
        ['prefix', prefix],
        ['max-uploads', String(this.options.listPageKeysMax)],
      ];
      if (keyMarker !== null) query.push(['key-marker', keyMarker]);
      if (uploadIdMarker !== null) query.push(['upload-id-marker', uploadIdMarker]);
      const a = await this.transport.requestText({
        ...this.base('ListMultipartUploads', 'GET', null, o),
        query,
      });
      expectRoot('ListMultipartUploads', null, a.text, 'ListMultipartUploadsResult');
      for (const block of xmlBlocks(a.text, 'Upload')) {
        const key = xmlTag(block, 'Key');
        const uploadId = xmlTag(block, 'UploadId');
        if (key === null || uploadId === null)
          throw invalid('ListMultipartUploads', null, 'an Upload without Key');
        const initiated = Date.parse(xmlTag(block, 'Initiated') ?? '');
        yield { key, uploadId, initiatedMs: Number.isNaN(initiated) ? null : initiated };
      }
      if (xmlTag(a.text, 'IsTruncated') !== 'true') return;
      const nextKey = xmlTag(a.text, 'NextKeyMarker');
      const nextId = xmlTag(a.text, 'NextUploadIdMarker');
      if (nextKey === null || (nextKey === keyMarker && nextId === uploadIdMarker)) {
        throw invalid('ListMultipartUploads', null, 'IsTruncated without a new NextKeyMarker');
      }
      keyMarker = nextKey;
      uploadIdMarker = nextId;
    }
  }

  private base(operation: string, method: S3RequestSpec['method'], key: string | null, o: S3CallOptions) {
    return { operation, method, key, signal: o.signal };
  }

  private async *resumingBody(
    info: S3ObjectInfo,
    first: S3StreamAnswer,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<Uint8Array> {
    let answer = first;
    let receivedBytes = 0;
    for (let resumes = 0; ; resumes++) {
      try {
        for await (const chunk of answer.body) {
          receivedBytes += chunk.byteLength;
          if (receivedBytes > info.sizeBytes)
            throw invalid('GetObject', info.key, 'more bytes than Content-Length');
          yield chunk;
        }
        if (receivedBytes === info.sizeBytes) return;
        throw new S3Error({
          operation: 'GetObject',
          key: info.key,
          s3Code: 'NetworkError',
          httpStatus: null,
          detail: `the body ended after ${receivedBytes} of ${info.sizeBytes} bytes`,
          retryable: true,
          attempts: 1,
        });
      } catch (e) {
        if (!(e instanceof S3Error)) throw e;
        // Counted over the resumes: the first request and each resumed one (it said "1 attempt").
        const attempts = resumes + Math.max(1, e.attempts);
        if (!e.retryable || resumes >= this.options.retriesMax) throw e.afterAttempts(attempts);
        // With backoff, as every other retry (a dropped download was resumed in a tight loop).
        const delayMs = retryDelayMs(resumes, this.options);
        this.hooks.onRetry?.(e, delayMs);
        await sleep(this.options.clock, delayMs, signal);
      }
      answer = await this.transport.requestStream({
        ...this.base('GetObject', 'GET', info.key, signal === undefined ? {} : { signal }),
        headers: { range: `bytes=${receivedBytes}-`, 'if-match': info.etag },
      });
      const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(answer.headers.get('content-range') ?? '');
      if (answer.status !== 206 || range === null || Number(range[1]) !== receivedBytes) {
        throw invalid('GetObject', info.key, `a resumed download did not continue at byte ${receivedBytes}`);
      }
    }
  }
}

function infoFromHeaders(key: string, headers: Headers, operation: string): S3ObjectInfo {
  const size = Number(headers.get('content-length'));
  if (headers.get('content-length') === null || !Number.isSafeInteger(size) || size < 0) {
    throw invalid(operation, key, 'no Content-Length');
  }
  const modified = Date.parse(headers.get('last-modified') ?? '');
  return {
    key,
    sizeBytes: size,
    etag: headers.get('etag') ?? '',
    lastModifiedMs: Number.isNaN(modified) ? null : modified,
  };
}

/**
 * A 200 answer must be the operation's document: a listing that is no `<ListBucketResult>` (an
 * HTML page, `hello`, another operation's answer: an endpoint that is no S3, a proxy's error page)
 * read as an empty bucket, and `backup list` said "0 backups" (found by an outside probe).
 */
function expectRoot(operation: string, key: string | null, text: string, root: string): void {
  const got = xmlRoot(text);
  if (got === root) return;
  const start = text.slice(0, 60).replace(/\s+/g, ' ');
  throw invalid(
    operation,
    key,
    got === null
      ? `the answer is no XML document (it begins ${JSON.stringify(start)}): is s3_url an S3 endpoint?`
      : `the answer is a <${got}>, not a <${root}>: is s3_url an S3 endpoint?`,
  );
}

function invalid(operation: string, key: string | null, detail: string): S3Error {
  return new S3Error({
    operation,
    key,
    s3Code: 'InvalidResponse',
    httpStatus: null,
    detail,
    retryable: false,
    attempts: 1,
  });
}
