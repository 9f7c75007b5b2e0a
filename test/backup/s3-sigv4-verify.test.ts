/**
 * The fake S3's signature check (test/support/sigv4-verify.ts) against an independent signer,
 * @smithy/signature-v4 (the AWS SDK's), and AWS's published example: requests it signs verify,
 * and any change to a signed part (method, path, query, header, body) or the wrong secret is
 * refused. So a bug in our client's signing cannot hide behind the same bug in the server.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { SignatureV4 } from '@smithy/signature-v4';
import { type FakeS3, startTestS3, TEST_S3_KEY, TEST_S3_SECRET } from '../support/s3-server.js';
import { verifySigV4 } from '../support/sigv4-verify.js';

/** SHA-256 and HMAC-SHA256 from node:crypto in the shape smithy expects. */
class NodeSha256 {
  private hash;
  constructor(private readonly secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = this.fresh();
  }
  private fresh() {
    if (this.secret === undefined) return createHash('sha256');
    const key = typeof this.secret === 'string' ? this.secret : Buffer.from(this.secret as ArrayBuffer);
    return createHmac('sha256', key as string | Buffer);
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(typeof data === 'string' ? data : Buffer.from(data as Uint8Array));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    this.hash = this.fresh();
  }
}

interface Sendable {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body?: Buffer;
}

function signer(secret = TEST_S3_SECRET, accessKeyId = TEST_S3_KEY) {
  return new SignatureV4({
    service: 's3',
    region: 'eu-test-1',
    credentials: { accessKeyId, secretAccessKey: secret },
    sha256: NodeSha256,
    // S3 signs the path as sent (already encoded once), unlike the other AWS services.
    uriEscapePath: false,
    applyChecksum: true,
  });
}

async function sign(s3: FakeS3, r: Sendable, secret?: string, accessKeyId?: string): Promise<Sendable> {
  const port = Number(new URL(s3.endpointUrl).port);
  const signed = await signer(secret, accessKeyId).sign({
    method: r.method,
    protocol: 'http:',
    hostname: '127.0.0.1',
    port,
    path: r.path,
    query: r.query,
    headers: { host: `127.0.0.1:${port}`, ...r.headers },
    ...(r.body === undefined ? {} : { body: r.body }),
  });
  return { ...r, headers: signed.headers as Record<string, string> };
}

function send(s3: FakeS3, r: Sendable): Promise<{ status: number; body: string }> {
  const port = Number(new URL(s3.endpointUrl).port);
  const qs = Object.entries(r.query)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: r.method,
        path: qs === '' ? r.path : `${r.path}?${qs}`,
        headers: r.headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end(r.body);
  });
}

const code = (body: string) => /<Code>([^<]*)<\/Code>/.exec(body)?.[1] ?? '';

describe('fake S3 SigV4 check against @smithy/signature-v4', () => {
  let s3: FakeS3;
  before(async () => {
    s3 = await startTestS3();
  });
  after(() => s3.close());

  const put = (): Sendable => ({
    method: 'PUT',
    path: '/backups/dir/a%20file%2Bplus~%C3%A9.bin',
    query: {},
    headers: { 'content-type': 'application/octet-stream', 'x-amz-meta-note': 'signed  value' },
    body: Buffer.from('the body of the object'),
  });

  test('a smithy-signed PUT with a signed payload hash is accepted and stored under the decoded key', async () => {
    const r = await send(s3, await sign(s3, put()));
    assert.equal(r.status, 200, r.body);
    assert.equal(s3.objects().get('dir/a file+plus~é.bin')?.data?.toString(), 'the body of the object');
  });

  test('a smithy-signed request with a query (UploadPart shape) and UNSIGNED-PAYLOAD is accepted', async () => {
    const create = await send(
      s3,
      await sign(s3, { method: 'POST', path: '/backups/mp', query: { uploads: '' }, headers: {} }),
    );
    assert.equal(create.status, 200, create.body);
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(create.body)?.[1] as string;
    const part = await sign(s3, {
      method: 'PUT',
      path: '/backups/mp',
      query: { partNumber: '1', uploadId },
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
      body: Buffer.from('part one'),
    });
    const r = await send(s3, part);
    assert.equal(r.status, 200, r.body);
    const abort = await send(
      s3,
      await sign(s3, { method: 'DELETE', path: '/backups/mp', query: { uploadId }, headers: {} }),
    );
    assert.equal(abort.status, 204);
  });

  test('a changed signed header is refused with 403 SignatureDoesNotMatch', async () => {
    const signed = await sign(s3, put());
    const r = await send(s3, { ...signed, headers: { ...signed.headers, 'x-amz-meta-note': 'other value' } });
    assert.equal(r.status, 403);
    assert.equal(code(r.body), 'SignatureDoesNotMatch');
  });

  test('a changed query parameter is refused', async () => {
    const signed = await sign(s3, {
      method: 'GET',
      path: '/backups',
      query: { 'list-type': '2', prefix: 'a' },
      headers: {},
    });
    assert.equal((await send(s3, signed)).status, 200);
    const r = await send(s3, { ...signed, query: { 'list-type': '2', prefix: 'b' } });
    assert.equal(r.status, 403);
    assert.equal(code(r.body), 'SignatureDoesNotMatch');
  });

  test('a changed path or method is refused', async () => {
    const signed = await sign(s3, put());
    for (const changed of [
      { ...signed, path: '/backups/dir/another' },
      { ...signed, method: 'POST' },
    ]) {
      const r = await send(s3, changed);
      assert.equal(r.status, 403);
      assert.equal(code(r.body), 'SignatureDoesNotMatch');
    }
  });

  test('a changed body is refused: its hash no longer matches the signed x-amz-content-sha256', async () => {
    const signed = await sign(s3, put());
    const r = await send(s3, { ...signed, body: Buffer.from('the body of the objecT') });
    assert.equal(r.status, 400);
    assert.equal(code(r.body), 'XAmzContentSHA256Mismatch');
    // …and fixing the header to the new body breaks the signature instead.
    const newHash = createHash('sha256').update('the body of the objecT').digest('hex');
    const r2 = await send(s3, {
      ...signed,
      body: Buffer.from('the body of the objecT'),
      headers: { ...signed.headers, 'x-amz-content-sha256': newHash },
    });
    assert.equal(r2.status, 403);
    assert.equal(code(r2.body), 'SignatureDoesNotMatch');
  });

  test('the wrong secret is 403 SignatureDoesNotMatch; an unknown key id is 403 InvalidAccessKeyId', async () => {
    const wrong = await send(s3, await sign(s3, put(), 'not-the-secret'));
    assert.equal(wrong.status, 403);
    assert.equal(code(wrong.body), 'SignatureDoesNotMatch');
    const unknown = await send(s3, await sign(s3, put(), TEST_S3_SECRET, 'AKIDUNKNOWN'));
    assert.equal(unknown.status, 403);
    assert.equal(code(unknown.body), 'InvalidAccessKeyId');
  });

  test('an unsigned request is 403 AccessDenied', async () => {
    const r = await send(s3, { method: 'GET', path: '/backups/x', query: {}, headers: {} });
    assert.equal(r.status, 403);
    assert.equal(code(r.body), 'AccessDenied');
  });
});

describe('fake S3 SigV4 check against AWS documentation example', () => {
  // "Example: GET Object" of Amazon S3's "Signature Calculations for the Authorization Header".
  const example = {
    method: 'GET',
    rawTarget: '/test.txt',
    headers: {
      host: ['examplebucket.s3.amazonaws.com'],
      range: ['bytes=0-9'],
      'x-amz-content-sha256': ['e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
      'x-amz-date': ['20130524T000000Z'],
      authorization: [
        'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
      ],
    },
    bodySha256Hex: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  };
  const options = {
    region: 'us-east-1',
    secretOf: (id: string) =>
      id === 'AKIAIOSFODNN7EXAMPLE' ? 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' : undefined,
    nowMs: Date.UTC(2013, 4, 24),
  };

  test('the published signature verifies', () => {
    assert.deepEqual(verifySigV4(example, options), { ok: true, accessKeyId: 'AKIAIOSFODNN7EXAMPLE' });
  });

  test('the same request with another range is refused', () => {
    const r = verifySigV4({ ...example, headers: { ...example.headers, range: ['bytes=0-10'] } }, options);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.code, 'SignatureDoesNotMatch');
  });

  test('a request dated more than 15 minutes from the server clock is refused', () => {
    const r = verifySigV4(example, { ...options, nowMs: Date.UTC(2013, 4, 24, 0, 16) });
    assert.equal(!r.ok && r.code, 'RequestTimeTooSkewed');
  });
});
