/**
 * A fake S3 service on node:http, in memory, for tests: objects (PUT, GET with Range and
 * If-Match, HEAD, DELETE), ListObjectsV2, the multipart upload calls and ListMultipartUploads,
 * with real SigV4 verification (sigv4-verify.ts: a wrong secret is 403 SignatureDoesNotMatch, an
 * unknown key id 403 InvalidAccessKeyId, a body that does not match x-amz-content-sha256 is
 * refused) and fault switches: answer an error for the next N requests, drop the connection in
 * the middle of a request body or of an answer body, answer slowly.
 *
 * Buckets are addressed path-style (`/bucket/key`) or virtual-hosted (`Host: bucket.<anything>`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySigV4 } from './sigv4-verify.js';

export interface FakeS3Options {
  /** Access key id → secret. */
  credentials: Record<string, string>;
  region?: string;
  buckets?: string[];
  /** Refuse every part but the last under this size at CompleteMultipartUpload (S3: 5 MiB). */
  partSizeMinBytes?: number;
  /** The most keys or uploads one list page holds, whatever the client asks (S3: 1,000). */
  listKeysMax?: number;
  /** Keep only sizes and hashes of bodies, not the bytes (for memory measurements). */
  discardBodies?: boolean;
  /** The server's clock for the X-Amz-Date skew check. */
  nowMs?: () => number;
}

export interface StoredObject {
  data: Buffer | null;
  sizeBytes: number;
  etag: string;
  lastModified: Date;
}

interface Part {
  data: Buffer | null;
  sizeBytes: number;
  md5: Buffer;
  etag: string;
}

interface Upload {
  bucket: string;
  key: string;
  uploadId: string;
  initiated: Date;
  parts: Map<number, Part>;
}

/** One request as the server saw it, for assertions on attempts. */
export interface LoggedRequest {
  operation: string;
  method: string;
  bucket: string;
  key: string;
  status: number | 'dropped';
}

interface Fault {
  remaining: number;
  operation: string | undefined;
}

export interface FailFault extends Fault {
  status: number;
  code: string;
}
export interface DropFault extends Fault {
  afterBytes: number;
}
export interface SlowFault extends Fault {
  delayMs: number;
}

/** Fault switches; each applies to the next `count` requests (of `operation` when given). */
export class FakeS3Faults {
  readonly fail: FailFault[] = [];
  readonly dropRequest: DropFault[] = [];
  readonly dropResponse: DropFault[] = [];
  readonly slow: SlowFault[] = [];

  /** Answer `status` with S3 error `code` (default 500 InternalError), after reading the body. */
  failNext(count: number, o: { status?: number; code?: string; operation?: string } = {}): void {
    this.fail.push({
      remaining: count,
      operation: o.operation,
      status: o.status ?? 500,
      code: o.code ?? 'InternalError',
    });
  }

  /** Destroy the connection once `afterBytes` of the request body arrived (mid-part). */
  dropRequestNext(count: number, o: { afterBytes?: number; operation?: string } = {}): void {
    this.dropRequest.push({ remaining: count, operation: o.operation, afterBytes: o.afterBytes ?? 0 });
  }

  /** Send the answer's headers and `afterBytes` of its body, then destroy the connection. */
  dropResponseNext(count: number, o: { afterBytes?: number; operation?: string } = {}): void {
    this.dropResponse.push({ remaining: count, operation: o.operation, afterBytes: o.afterBytes ?? 0 });
  }

  /** Hold the answer for `delayMs` before sending it. */
  slowNext(count: number, o: { delayMs: number; operation?: string }): void {
    this.slow.push({ remaining: count, operation: o.operation, delayMs: o.delayMs });
  }

  clear(): void {
    this.fail.length = 0;
    this.dropRequest.length = 0;
    this.dropResponse.length = 0;
    this.slow.length = 0;
  }

  /** Takes one use of the first fault of `list` that applies to `operation`. */
  take<F extends Fault>(list: F[], operation: string): F | null {
    const i = list.findIndex(
      (f) => f.remaining > 0 && (f.operation === undefined || f.operation === operation),
    );
    if (i < 0) return null;
    const f = list[i] as F;
    f.remaining--;
    if (f.remaining === 0) list.splice(i, 1);
    return f;
  }
}

const REQUEST_LOG_MAX = 10_000;

export class FakeS3 {
  readonly faults = new FakeS3Faults();
  readonly requests: LoggedRequest[] = [];
  private readonly buckets = new Map<string, Map<string, StoredObject>>();
  private readonly uploads = new Map<string, Upload>();
  private readonly region: string;
  private readonly timers = new Set<NodeJS.Timeout>();
  private server: Server | null = null;
  private port = 0;

  constructor(private readonly o: FakeS3Options) {
    this.region = o.region ?? 'us-east-1';
    for (const b of o.buckets ?? ['backups']) this.buckets.set(b, new Map());
  }

  get endpointUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) this.sendError(res, 500, 'InternalError', String(e));
        else res.destroy();
      });
    });
    server.keepAliveTimeout = 1_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const server = this.server;
    if (server === null) return;
    this.server = null;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The objects of a bucket, for assertions. */
  objects(bucket = 'backups'): Map<string, StoredObject> {
    return this.bucket(bucket);
  }

  /** Unfinished multipart uploads, for assertions. */
  uploadsInProgress(): Array<{ bucket: string; key: string; uploadId: string; partCount: number }> {
    return [...this.uploads.values()].map((u) => ({
      bucket: u.bucket,
      key: u.key,
      uploadId: u.uploadId,
      partCount: u.parts.size,
    }));
  }

  /** Puts an object directly (test setup that should not count as a request). */
  putDirect(key: string, data: Buffer, bucket = 'backups', lastModified = new Date()): void {
    this.bucket(bucket).set(key, {
      data,
      sizeBytes: data.length,
      etag: `"${createHash('md5').update(data).digest('hex')}"`,
      lastModified,
    });
  }

  private bucket(name: string): Map<string, StoredObject> {
    const b = this.buckets.get(name);
    if (b === undefined) throw new Error(`no bucket ${name}`);
    return b;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const rawPath = q < 0 ? target : target.slice(0, q);
    const query = parseQuery(q < 0 ? '' : target.slice(q + 1));
    const method = req.method ?? 'GET';
    const { bucket, key } = this.address(req.headers.host ?? '', rawPath);
    const operation = operationOf(method, key, query);
    const log: LoggedRequest = { operation, method, bucket, key, status: 'dropped' };
    this.requests.push(log);
    if (this.requests.length > REQUEST_LOG_MAX) this.requests.shift();

    const drop = this.faults.take(this.faults.dropRequest, operation);
    const keepBody =
      this.o.discardBodies !== true || (operation !== 'PutObject' && operation !== 'UploadPart');
    const body = await this.readBody(req, drop?.afterBytes ?? null, keepBody);
    if (body === null) return; // dropped mid-request

    const slow = this.faults.take(this.faults.slow, operation);
    if (slow !== null) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.timers.delete(t);
          resolve();
        }, slow.delayMs);
        this.timers.add(t);
      });
      if (req.socket.destroyed) return;
    }
    const reply = (status: number) => {
      log.status = status;
    };
    const fail = this.faults.take(this.faults.fail, operation);
    if (fail !== null) {
      reply(fail.status);
      this.sendError(res, fail.status, fail.code, 'injected fault');
      return;
    }
    const verdict = verifySigV4(
      {
        method,
        rawTarget: target,
        headers: req.headersDistinct as Record<string, string[]>,
        bodySha256Hex: body.sha256,
      },
      {
        region: this.region,
        secretOf: (id) => this.o.credentials[id],
        nowMs: this.o.nowMs?.() ?? Date.now(),
      },
    );
    if (!verdict.ok) {
      reply(verdict.status);
      this.sendError(res, verdict.status, verdict.code, verdict.message);
      return;
    }
    const objects = this.buckets.get(bucket);
    if (objects === undefined) {
      reply(404);
      this.sendError(res, 404, 'NoSuchBucket', 'The specified bucket does not exist');
      return;
    }
    const answer = this.dispatch(operation, bucket, key, query, req, body, objects);
    reply(answer.status);
    const dropAnswer = this.faults.take(this.faults.dropResponse, operation);
    res.writeHead(answer.status, answer.headers);
    if (dropAnswer !== null) {
      const partial = answer.body.subarray(0, dropAnswer.afterBytes);
      log.status = 'dropped';
      res.write(partial, () => res.destroy());
      return;
    }
    res.end(method === 'HEAD' ? undefined : answer.body);
  }

  private address(host: string, rawPath: string): { bucket: string; key: string } {
    const hostname = host.replace(/:\d+$/, '');
    const dot = hostname.indexOf('.');
    const first = dot < 0 ? '' : hostname.slice(0, dot);
    const segments = rawPath.split('/').map((s) => decodeURIComponent(s));
    if (this.buckets.has(first) && !/^\d+$/.test(first)) {
      return { bucket: first, key: segments.slice(1).join('/') };
    }
    return { bucket: segments[1] ?? '', key: segments.slice(2).join('/') };
  }

  /** Reads and hashes the body; destroys the connection after `dropAfterBytes` (then null). */
  private readBody(
    req: IncomingMessage,
    dropAfterBytes: number | null,
    keep: boolean,
  ): Promise<{ data: Buffer | null; sizeBytes: number; sha256: string; md5: Buffer } | null> {
    return new Promise((resolve, reject) => {
      const sha = createHash('sha256');
      const md5 = createHash('md5');
      const chunks: Buffer[] = [];
      let size = 0;
      let dropped = false;
      req.on('data', (chunk: Buffer) => {
        if (dropped) return;
        if (dropAfterBytes !== null && size + chunk.length >= dropAfterBytes) {
          dropped = true;
          req.socket.destroy();
          resolve(null);
          return;
        }
        size += chunk.length;
        sha.update(chunk);
        md5.update(chunk);
        if (keep) chunks.push(chunk);
      });
      req.on('end', () => {
        if (dropped) return;
        if (dropAfterBytes !== null) {
          // A body shorter than the drop point: drop at its end instead.
          req.socket.destroy();
          resolve(null);
          return;
        }
        resolve({
          data: keep ? Buffer.concat(chunks) : null,
          sizeBytes: size,
          sha256: sha.digest('hex'),
          md5: md5.digest(),
        });
      });
      req.on('error', (e) => (dropped ? undefined : reject(e)));
    });
  }

  private dispatch(
    operation: string,
    bucket: string,
    key: string,
    query: Map<string, string>,
    req: IncomingMessage,
    body: { data: Buffer | null; sizeBytes: number; md5: Buffer },
    objects: Map<string, StoredObject>,
  ): Answer {
    switch (operation) {
      case 'ListObjectsV2':
        return this.listObjects(objects, query);
      case 'ListMultipartUploads':
        return this.listUploads(bucket, query);
      case 'PutObject': {
        const etag = `"${body.md5.toString('hex')}"`;
        objects.set(key, { data: body.data, sizeBytes: body.sizeBytes, etag, lastModified: new Date() });
        return { status: 200, headers: { etag }, body: Buffer.alloc(0) };
      }
      case 'GetObject':
      case 'HeadObject':
        return getObject(objects.get(key), req, operation === 'HeadObject');
      case 'DeleteObject':
        objects.delete(key);
        return { status: 204, headers: {}, body: Buffer.alloc(0) };
      case 'CreateMultipartUpload': {
        const uploadId = randomBytes(12).toString('base64url');
        this.uploads.set(uploadId, { bucket, key, uploadId, initiated: new Date(), parts: new Map() });
        return xml(
          200,
          `<InitiateMultipartUploadResult><Bucket>${esc(bucket)}</Bucket><Key>${esc(key)}</Key><UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`,
        );
      }
      case 'UploadPart': {
        const upload = this.upload(bucket, key, query);
        if (upload === null) return errorAnswer(404, 'NoSuchUpload', 'The specified upload does not exist.');
        const n = Number(query.get('partNumber'));
        if (!Number.isInteger(n) || n < 1 || n > 10_000)
          return errorAnswer(400, 'InvalidArgument', 'partNumber');
        const etag = `"${body.md5.toString('hex')}"`;
        upload.parts.set(n, { data: body.data, sizeBytes: body.sizeBytes, md5: body.md5, etag });
        return { status: 200, headers: { etag }, body: Buffer.alloc(0) };
      }
      case 'CompleteMultipartUpload':
        return this.complete(bucket, key, query, body.data, objects);
      case 'AbortMultipartUpload': {
        const upload = this.upload(bucket, key, query);
        if (upload === null) return errorAnswer(404, 'NoSuchUpload', 'The specified upload does not exist.');
        this.uploads.delete(upload.uploadId);
        return { status: 204, headers: {}, body: Buffer.alloc(0) };
      }
      default:
        return errorAnswer(501, 'NotImplemented', `${operation} is not implemented by the fake S3`);
    }
  }

  private upload(bucket: string, key: string, query: Map<string, string>): Upload | null {
    const u = this.uploads.get(query.get('uploadId') ?? '');
    return u !== undefined && u.bucket === bucket && u.key === key ? u : null;
  }

  private complete(
    bucket: string,
    key: string,
    query: Map<string, string>,
    requestBody: Buffer | null,
    objects: Map<string, StoredObject>,
  ): Answer {
    const upload = this.upload(bucket, key, query);
    if (upload === null) return errorAnswer(404, 'NoSuchUpload', 'The specified upload does not exist.');
    const text = requestBody?.toString('utf8') ?? '';
    const listed = [...text.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({
      n: Number(/<PartNumber>(\d+)<\/PartNumber>/.exec(m[1] as string)?.[1]),
      etag: unesc(/<ETag>([\s\S]*?)<\/ETag>/.exec(m[1] as string)?.[1] ?? ''),
    }));
    if (listed.length === 0) return errorAnswer(400, 'MalformedXML', 'no parts');
    const parts: Part[] = [];
    for (let i = 0; i < listed.length; i++) {
      const { n, etag } = listed[i] as { n: number; etag: string };
      if (i > 0 && n <= (listed[i - 1] as { n: number }).n) {
        return errorAnswer(400, 'InvalidPartOrder', 'The list of parts was not in ascending order.');
      }
      const part = upload.parts.get(n);
      if (part === undefined || part.etag !== etag) {
        return errorAnswer(400, 'InvalidPart', `part ${n} was not uploaded or its ETag differs`);
      }
      if (i < listed.length - 1 && part.sizeBytes < (this.o.partSizeMinBytes ?? 0)) {
        return errorAnswer(400, 'EntityTooSmall', `part ${n} is smaller than the minimum allowed size`);
      }
      parts.push(part);
    }
    const md5s = Buffer.concat(parts.map((p) => p.md5));
    const etag = `"${createHash('md5').update(md5s).digest('hex')}-${parts.length}"`;
    const data = this.o.discardBodies === true ? null : Buffer.concat(parts.map((p) => p.data as Buffer));
    const sizeBytes = parts.reduce((s, p) => s + p.sizeBytes, 0);
    objects.set(key, { data, sizeBytes, etag, lastModified: new Date() });
    this.uploads.delete(upload.uploadId);
    return xml(
      200,
      `<CompleteMultipartUploadResult><Bucket>${esc(bucket)}</Bucket><Key>${esc(key)}</Key><ETag>${esc(etag)}</ETag></CompleteMultipartUploadResult>`,
    );
  }

  private listObjects(objects: Map<string, StoredObject>, query: Map<string, string>): Answer {
    const prefix = query.get('prefix') ?? '';
    const max = Math.min(Number(query.get('max-keys') ?? 1000), this.o.listKeysMax ?? 1000);
    const token = query.get('continuation-token');
    const after =
      token === undefined ? (query.get('start-after') ?? '') : Buffer.from(token, 'base64url').toString();
    const keys = [...objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort();
    const page = keys.slice(0, max);
    const truncated = keys.length > page.length;
    const contents = page
      .map((k) => {
        const o = objects.get(k) as StoredObject;
        return `<Contents><Key>${esc(k)}</Key><LastModified>${o.lastModified.toISOString()}</LastModified><ETag>${esc(o.etag)}</ETag><Size>${o.sizeBytes}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
      })
      .join('');
    const next = truncated
      ? `<NextContinuationToken>${Buffer.from(page[page.length - 1] as string).toString('base64url')}</NextContinuationToken>`
      : '';
    return xml(
      200,
      `<ListBucketResult><Prefix>${esc(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${contents}${next}</ListBucketResult>`,
    );
  }

  private listUploads(bucket: string, query: Map<string, string>): Answer {
    const prefix = query.get('prefix') ?? '';
    const max = Math.min(Number(query.get('max-uploads') ?? 1000), this.o.listKeysMax ?? 1000);
    const keyMarker = query.get('key-marker') ?? '';
    const idMarker = query.get('upload-id-marker') ?? '';
    const all = [...this.uploads.values()]
      .filter((u) => u.bucket === bucket && u.key.startsWith(prefix))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.uploadId < b.uploadId ? -1 : 1))
      .filter((u) => u.key > keyMarker || (u.key === keyMarker && idMarker !== '' && u.uploadId > idMarker));
    const page = all.slice(0, max);
    const truncated = all.length > page.length;
    const last = page[page.length - 1];
    const items = page
      .map(
        (u) =>
          `<Upload><Key>${esc(u.key)}</Key><UploadId>${u.uploadId}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`,
      )
      .join('');
    const markers =
      truncated && last !== undefined
        ? `<NextKeyMarker>${esc(last.key)}</NextKeyMarker><NextUploadIdMarker>${last.uploadId}</NextUploadIdMarker>`
        : '';
    return xml(
      200,
      `<ListMultipartUploadsResult><Bucket>${esc(bucket)}</Bucket><Prefix>${esc(prefix)}</Prefix><MaxUploads>${max}</MaxUploads><IsTruncated>${truncated}</IsTruncated>${markers}${items}</ListMultipartUploadsResult>`,
    );
  }

  private sendError(res: ServerResponse, status: number, code: string, message: string): void {
    const a = errorAnswer(status, code, message);
    res.writeHead(a.status, a.headers);
    res.end(a.body);
  }
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

function getObject(o: StoredObject | undefined, req: IncomingMessage, head: boolean): Answer {
  if (o === undefined) {
    return head
      ? { status: 404, headers: {}, body: Buffer.alloc(0) }
      : errorAnswer(404, 'NoSuchKey', 'The specified key does not exist.');
  }
  const ifMatch = req.headers['if-match'];
  if (ifMatch !== undefined && ifMatch !== o.etag) {
    return errorAnswer(
      412,
      'PreconditionFailed',
      'At least one of the pre-conditions you specified did not hold',
    );
  }
  const headers: Record<string, string> = {
    etag: o.etag,
    'last-modified': o.lastModified.toUTCString(),
    'content-type': 'application/octet-stream',
    'accept-ranges': 'bytes',
  };
  const data = o.data ?? Buffer.alloc(0);
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (range !== null && !head) {
    const start = Number(range[1]);
    const end = range[2] === '' ? o.sizeBytes - 1 : Math.min(Number(range[2]), o.sizeBytes - 1);
    if (start >= o.sizeBytes || end < start)
      return errorAnswer(416, 'InvalidRange', 'The requested range is not satisfiable');
    headers['content-range'] = `bytes ${start}-${end}/${o.sizeBytes}`;
    headers['content-length'] = String(end - start + 1);
    return { status: 206, headers, body: data.subarray(start, end + 1) };
  }
  headers['content-length'] = String(o.sizeBytes);
  return { status: 200, headers, body: head ? Buffer.alloc(0) : data };
}

function operationOf(method: string, key: string, query: Map<string, string>): string {
  if (key === '') {
    if (method === 'GET' && query.has('uploads')) return 'ListMultipartUploads';
    if (method === 'GET' && query.get('list-type') === '2') return 'ListObjectsV2';
    return `${method}Bucket`;
  }
  switch (method) {
    case 'PUT':
      return query.has('uploadId') ? 'UploadPart' : 'PutObject';
    case 'POST':
      if (query.has('uploads')) return 'CreateMultipartUpload';
      return query.has('uploadId') ? 'CompleteMultipartUpload' : 'PostObject';
    case 'DELETE':
      return query.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
    case 'GET':
      return 'GetObject';
    case 'HEAD':
      return 'HeadObject';
    default:
      return `${method}Object`;
  }
}

function parseQuery(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of raw.split('&')) {
    if (p === '') continue;
    const eq = p.indexOf('=');
    out.set(
      decodeURIComponent(eq < 0 ? p : p.slice(0, eq)),
      decodeURIComponent(eq < 0 ? '' : p.slice(eq + 1)),
    );
  }
  return out;
}

function xml(status: number, inner: string): Answer {
  return {
    status,
    headers: { 'content-type': 'application/xml' },
    body: Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${inner}`),
  };
}

function errorAnswer(status: number, code: string, message: string): Answer {
  return xml(
    status,
    `<Error><Code>${esc(code)}</Code><Message>${esc(message)}</Message><RequestId>fake</RequestId></Error>`,
  );
}

function esc(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]};`,
  );
}

function unesc(s: string): string {
  return s.replace(
    /&(amp|lt|gt|quot|apos);/g,
    (_, n: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" })[n] ?? '',
  );
}

export async function startFakeS3(o: FakeS3Options): Promise<FakeS3> {
  return new FakeS3(o).start();
}

export const TEST_S3_KEY = 'AKIDTESTBACKUPS';
export const TEST_S3_SECRET = 'test-secret/with+odd=chars';

/** A fake S3 with the test credentials and bucket `backups`. */
export function startTestS3(o: Partial<FakeS3Options> = {}): Promise<FakeS3> {
  return startFakeS3({ credentials: { [TEST_S3_KEY]: TEST_S3_SECRET }, region: 'eu-test-1', ...o });
}

/** A node's `s3_*` configuration lines (TOML) for `startTestS3`'s server and bucket. */
export function testS3Toml(s3: FakeS3): string[] {
  return [
    `s3_url = "${s3.endpointUrl}"`,
    's3_bucket = "backups"',
    's3_region = "eu-test-1"',
    's3_path_style = true',
    `s3_key = "${TEST_S3_KEY}"`,
    `s3_secret = "${TEST_S3_SECRET}"`,
  ];
}

/** The same settings as `start()`'s config keys (camelCase). */
export function testS3NodeConfig(s3: FakeS3) {
  return {
    s3Url: s3.endpointUrl,
    s3Bucket: 'backups',
    s3Region: 'eu-test-1',
    s3PathStyle: true,
    s3Key: TEST_S3_KEY,
    s3Secret: TEST_S3_SECRET,
  };
}

/** Client options for `startTestS3`'s server: path-style, short delays so retries run fast. */
export function testS3ClientOptions(s3: FakeS3) {
  return {
    endpointUrl: s3.endpointUrl,
    bucket: 'backups',
    region: 'eu-test-1',
    pathStyle: true,
    accessKeyId: TEST_S3_KEY,
    secretAccessKey: TEST_S3_SECRET,
    retryDelayMinMs: 5,
    retryDelayMaxMs: 50,
    requestTimeoutMs: 5_000,
  };
}
