/**
 * The S3 client under the fake S3's faults: 5xx, 429, dropped connections (mid-part, mid-download,
 * after a completed upload) and slow answers are retried within their bounds; 4xx such as a wrong
 * secret are not; a failed or aborted upload leaves no multipart upload behind.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { uploadStream } from '../../src/backup/s3/multipart-upload.js';
import { S3Client } from '../../src/backup/s3/s3-client.js';
import { S3Error } from '../../src/backup/s3/s3-errors.js';
import type { S3ClientOptions } from '../../src/backup/s3/s3-options.js';
import { HiqliteError } from '../../src/lib/errors.js';
import { type FakeS3, startTestS3, testS3ClientOptions } from '../support/s3-server.js';

const KiB = 1024;
const PART = 64 * KiB;

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 131 + seed * 7 + (i >> 9)) & 0xff;
  return b;
}

async function* chunksOf(b: Buffer, size = 10_000): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < b.length; at += size) yield b.subarray(at, at + size);
}

describe('S3 client faults', () => {
  let s3: FakeS3;
  const retries: string[] = [];
  const make = (o: Partial<S3ClientOptions> = {}) =>
    new S3Client(
      { ...testS3ClientOptions(s3), partSizeBytes: PART, ...o },
      { onRetry: (e) => retries.push(`${e.operation} ${e.s3Code}`) },
    );
  const statuses = (operation: string, from: number) =>
    s3.requests
      .slice(from)
      .filter((r) => r.operation === operation)
      .map((r) => r.status);

  before(async () => {
    s3 = await startTestS3();
  });
  after(() => s3.close());
  beforeEach(() => {
    s3.faults.clear();
    s3.objects().clear();
    retries.length = 0;
  });

  test('500s on parts are retried and the upload completes', async () => {
    const data = bytes(PART * 3 + 5);
    s3.faults.failNext(2, { operation: 'UploadPart' });
    const from = s3.requests.length;
    const r = await uploadStream(make(), 'retry-500', chunksOf(data));
    assert.equal(r.partCount, 4);
    assert.deepEqual(statuses('UploadPart', from), [500, 500, 200, 200, 200, 200]);
    assert.deepEqual(retries, ['UploadPart InternalError', 'UploadPart InternalError']);
    assert.ok(s3.objects().get('retry-500')?.data?.equals(data));
  });

  test('429 SlowDown and 503 are retried', async () => {
    s3.faults.failNext(1, { status: 429, code: 'SlowDown', operation: 'PutObject' });
    s3.faults.failNext(1, { status: 503, code: 'ServiceUnavailable', operation: 'PutObject' });
    const from = s3.requests.length;
    await make().putObject('slowdown', 'x');
    assert.deepEqual(statuses('PutObject', from), [429, 503, 200]);
  });

  test('a connection dropped in the middle of a part is retried and the bytes stored are exact', async () => {
    const data = bytes(PART * 3);
    s3.faults.dropRequestNext(1, { operation: 'UploadPart', afterBytes: 20 * KiB });
    s3.faults.dropRequestNext(1, { operation: 'UploadPart', afterBytes: 50 * KiB });
    const from = s3.requests.length;
    // One more byte than three parts: the fourth part is 1 byte.
    const r = await uploadStream(make(), 'dropped-part', chunksOf(Buffer.concat([data, Buffer.from([9])])));
    assert.equal(r.partCount, 4);
    assert.deepEqual(statuses('UploadPart', from), ['dropped', 'dropped', 200, 200, 200, 200]);
    assert.deepEqual(retries, ['UploadPart NetworkError', 'UploadPart NetworkError']);
    assert.ok(
      s3
        .objects()
        .get('dropped-part')
        ?.data?.equals(Buffer.concat([data, Buffer.from([9])])),
    );
  });

  test('a download dropped mid-body resumes from the next byte (Range + If-Match)', async () => {
    const data = bytes(300 * KiB, 3);
    s3.putDirect('resume', data);
    s3.faults.dropResponseNext(1, { operation: 'GetObject', afterBytes: 100 * KiB });
    const from = s3.requests.length;
    const got = await make().getObject('resume');
    assert.ok((await readAll(got.body)).equals(data));
    assert.deepEqual(statuses('GetObject', from), ['dropped', 206]);
  });

  test('a download dropped again and again resumes with backoff, then says how many attempts were made', async () => {
    s3.putDirect('drops', bytes(300 * KiB, 6));
    s3.faults.dropResponseNext(100, { operation: 'GetObject', afterBytes: 10 * KiB });
    const delays: number[] = [];
    const c = new S3Client(
      { ...testS3ClientOptions(s3), retriesMax: 3, retryDelayMinMs: 40, retryDelayMaxMs: 400 },
      { onRetry: (_e, delayMs) => delays.push(delayMs) },
    );
    const got = await c.getObject('drops');
    const startedMs = performance.now();
    await assert.rejects(readAll(got.body), (e: unknown) => {
      assert.ok(e instanceof S3Error, String(e));
      assert.equal(e.attempts, 4, e.message);
      assert.match(e.message, /\[4 attempts\]/);
      return true;
    });
    // Resumed three times, each after a growing delay (was: at once, "0", in a tight loop).
    assert.equal(delays.length, 3, JSON.stringify(delays));
    assert.ok(
      delays.every((d) => d >= 20),
      JSON.stringify(delays),
    );
    assert.ok(performance.now() - startedMs >= delays.reduce((a, b) => a + b, 0) - 5);
  });

  test('a download whose object was replaced before the resume fails instead of mixing two objects', async () => {
    s3.putDirect('replaced', bytes(300 * KiB, 4));
    s3.faults.dropResponseNext(1, { operation: 'GetObject', afterBytes: 100 * KiB });
    const c = new S3Client(
      { ...testS3ClientOptions(s3) },
      { onRetry: () => s3.putDirect('replaced', bytes(300 * KiB, 5)) },
    );
    const got = await c.getObject('replaced');
    await assert.rejects(
      readAll(got.body),
      (e: unknown) => e instanceof S3Error && e.s3Code === 'PreconditionFailed',
    );
  });

  test('a slow answer misses the request deadline and is retried', async () => {
    // The slow answer comes far past the deadline; the deadline leaves the retry (answered at
    // once) room on a loaded machine.
    s3.faults.slowNext(1, { operation: 'PutObject', delayMs: 5_000 });
    const from = s3.requests.length;
    await make({ requestTimeoutMs: 1_500 }).putObject('slow', 'x');
    assert.deepEqual(retries, ['PutObject RequestDeadline']);
    assert.equal(statuses('PutObject', from).length, 2);
    assert.equal(s3.objects().get('slow')?.data?.toString(), 'x');
  });

  test('a wrong secret is a clear 403 SignatureDoesNotMatch, sent once and not retried', async () => {
    const from = s3.requests.length;
    const c = make({ secretAccessKey: 'wrong-secret' });
    await assert.rejects(c.putObject('nope', 'x'), (e: unknown) => {
      assert.ok(e instanceof S3Error);
      assert.equal(e.code, 'HQL_S3');
      assert.equal(e.s3Code, 'SignatureDoesNotMatch');
      assert.equal(e.httpStatus, 403);
      assert.equal(e.retryable, false);
      assert.equal(e.attempts, 1);
      assert.match(e.message, /S3 PutObject 'nope' failed: SignatureDoesNotMatch \(HTTP 403\)/);
      return true;
    });
    assert.deepEqual(statuses('PutObject', from), [403]);
    assert.deepEqual(retries, []);
  });

  test('an unknown access key is 403 InvalidAccessKeyId, not retried', async () => {
    await assert.rejects(
      make({ accessKeyId: 'AKIDNOBODY' }).headObject('x'),
      (e: unknown) => e instanceof S3Error && e.httpStatus === 403 && e.attempts === 1,
    );
    // HEAD answers carry no body, so the code is the status' name.
    await assert.rejects(
      make({ accessKeyId: 'AKIDNOBODY' }).getObject('x'),
      (e: unknown) => e instanceof S3Error && e.s3Code === 'InvalidAccessKeyId',
    );
  });

  test('a 403 in the middle of a multipart upload aborts it: no upload is left behind', async () => {
    // The first two parts succeed, the third is refused.
    let parts = 0;
    const c = make();
    const original = c.uploadPart.bind(c);
    c.uploadPart = (key, id, n, body, o) => {
      if (++parts === 3)
        s3.faults.failNext(1, { status: 403, code: 'AccessDenied', operation: 'UploadPart' });
      return original(key, id, n, body, o);
    };
    await assert.rejects(
      uploadStream(c, 'refused', chunksOf(bytes(PART * 5))),
      (e: unknown) => e instanceof S3Error && e.s3Code === 'AccessDenied' && e.attempts === 1,
    );
    assert.deepEqual(s3.uploadsInProgress(), []);
    const left: unknown[] = [];
    for await (const u of c.listMultipartUploads('')) left.push(u);
    assert.deepEqual(left, []);
    assert.equal(s3.objects().has('refused'), false);
    assert.ok(s3.requests.some((r) => r.operation === 'AbortMultipartUpload' && r.status === 204));
  });

  test('a source stream that fails aborts the upload and surfaces its own error', async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield bytes(PART * 2);
      yield bytes(10);
      throw new Error('disk read failed');
    }
    await assert.rejects(uploadStream(make(), 'failing', failing()), /disk read failed/);
    assert.deepEqual(s3.uploadsInProgress(), []);
  });

  test("the caller's abort signal stops an upload (HQL_ABORTED) and aborts the multipart upload", async () => {
    const controller = new AbortController();
    async function* endless(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 1_000; i++) {
        if (i === 3) controller.abort();
        yield bytes(PART);
      }
    }
    s3.faults.slowNext(1, { operation: 'UploadPart', delayMs: 200 });
    await assert.rejects(
      uploadStream(make(), 'aborted', endless(), { signal: controller.signal }),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_ABORTED',
    );
    assert.deepEqual(s3.uploadsInProgress(), []);
    assert.equal(s3.objects().has('aborted'), false);
  });

  test('retries stop after retriesMax: the error says how many attempts were made', async () => {
    s3.faults.failNext(100, { operation: 'PutObject' });
    await assert.rejects(make({ retriesMax: 3 }).putObject('never', 'x'), (e: unknown) => {
      assert.ok(e instanceof S3Error);
      assert.equal(e.attempts, 4);
      assert.equal(e.retryable, true);
      assert.match(e.message, /\[4 attempts\]/);
      return true;
    });
  });

  test('retries stop at retryDeadlineMs even when retriesMax allows more', async () => {
    s3.faults.failNext(100, { operation: 'PutObject' });
    await assert.rejects(
      make({ retriesMax: 50, retryDeadlineMs: 0 }).putObject('never', 'x'),
      (e: unknown) => e instanceof S3Error && e.attempts === 1,
    );
  });

  test('a completed upload whose answer was lost is accepted on the retry (NoSuchUpload, then HEAD)', async () => {
    const data = bytes(PART * 2 + 1);
    s3.faults.dropResponseNext(1, { operation: 'CompleteMultipartUpload', afterBytes: 0 });
    const r = await uploadStream(make(), 'lost-answer', chunksOf(data));
    assert.match(r.etag, /-3"$/);
    assert.ok(s3.objects().get('lost-answer')?.data?.equals(data));
  });

  test('CompleteMultipartUpload answering 200 with an <Error> body is retried', async () => {
    s3.faults.failNext(1, { status: 200, code: 'InternalError', operation: 'CompleteMultipartUpload' });
    const r = await uploadStream(make(), 'error-in-200', chunksOf(bytes(PART * 2 + 1)));
    assert.equal(r.partCount, 3);
    assert.deepEqual(retries, ['CompleteMultipartUpload InternalError']);
  });
});
