/**
 * Every operation of our S3 client against the fake S3 with signatures checked: objects, listing
 * across pages, multipart from a stream, path-style and virtual-hosted addressing, keys that
 * need encoding, and option validation.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { uploadStream } from '../../src/backup/s3/multipart-upload.js';
import { S3Client } from '../../src/backup/s3/s3-client.js';
import { S3Error } from '../../src/backup/s3/s3-errors.js';
import { HiqliteError } from '../../src/lib/errors.js';
import { loopbackFetch } from '../support/loopback-fetch.js';
import { type FakeS3, startTestS3, testS3ClientOptions } from '../support/s3-server.js';

const KiB = 1024;

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/** `total` deterministic bytes in chunks of `chunk` bytes (odd sizes cross part boundaries). */
async function* pattern(total: number, chunk: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < total; at += chunk) {
    const n = Math.min(chunk, total - at);
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = ((at + i) * 31 + ((at + i) >> 11)) & 0xff;
    yield b;
  }
}

describe('S3 client against the fake S3', () => {
  let s3: FakeS3;
  let client: S3Client;
  before(async () => {
    s3 = await startTestS3();
    client = new S3Client({ ...testS3ClientOptions(s3), partSizeBytes: 64 * KiB, listPageKeysMax: 7 });
  });
  after(() => s3.close());
  beforeEach(() => {
    s3.objects().clear();
    s3.faults.clear();
  });

  test('put, head, get and delete an object', async () => {
    const { etag } = await client.putObject('one', Buffer.from('hello S3'));
    assert.equal(etag, `"${createHash('md5').update('hello S3').digest('hex')}"`);
    const info = await client.headObject('one');
    assert.equal(info?.sizeBytes, 8);
    assert.equal(info?.etag, etag);
    assert.ok(info?.lastModifiedMs !== null);
    const got = await client.getObject('one');
    assert.equal(got.info.sizeBytes, 8);
    assert.equal((await readAll(got.body)).toString(), 'hello S3');
    await client.deleteObject('one');
    assert.equal(await client.headObject('one'), null);
    await client.deleteObject('one'); // deleting a missing object succeeds
  });

  test('a missing object: head is null, get is S3Error NoSuchKey (404), not retried', async () => {
    assert.equal(await client.headObject('nothing'), null);
    const before = s3.requests.length;
    await assert.rejects(client.getObject('nothing'), (e: unknown) => {
      assert.ok(e instanceof S3Error);
      assert.equal(e.code, 'HQL_S3');
      assert.equal(e.s3Code, 'NoSuchKey');
      assert.equal(e.httpStatus, 404);
      assert.equal(e.retryable, false);
      assert.match(e.message, /GetObject 'nothing' failed: NoSuchKey \(HTTP 404\)/);
      return true;
    });
    assert.equal(s3.requests.length - before, 1);
  });

  test('keys that need encoding round-trip: spaces, plus, unicode, reserved characters', async () => {
    const keys = [
      'dir/with space',
      'a+b=c&d',
      'ünï/cødé ✓',
      "quote'(paren)*star!",
      'semi;colon,comma:at@',
      'tilde~dash-dot.x',
    ];
    for (const k of keys) await client.putObject(k, Buffer.from(k));
    for (const k of keys) assert.equal((await readAll((await client.getObject(k)).body)).toString(), k);
    const listed: string[] = [];
    for await (const o of client.listObjects('')) listed.push(o.key);
    assert.deepEqual(listed, [...keys].sort());
  });

  test('keys that would change meaning in a URL are refused before sending', async () => {
    for (const k of ['', 'a/../b', './x', 'ctl\u0001char', 'x'.repeat(1025)]) {
      await assert.rejects(
        client.putObject(k, 'x'),
        (e: unknown) => e instanceof S3Error && e.s3Code === 'InvalidObjectKey',
      );
    }
  });

  test('ListObjectsV2 pages through more objects than one page holds, under a prefix', async () => {
    for (let i = 0; i < 23; i++) await client.putObject(`p/${String(i).padStart(3, '0')}`, Buffer.from([i]));
    await client.putObject('q/other', 'x');
    const before = s3.requests.length;
    const listed: Array<{ key: string; sizeBytes: number }> = [];
    for await (const o of client.listObjects('p/')) listed.push({ key: o.key, sizeBytes: o.sizeBytes });
    assert.equal(listed.length, 23);
    assert.deepEqual(
      listed.map((o) => o.key),
      Array.from({ length: 23 }, (_, i) => `p/${String(i).padStart(3, '0')}`),
    );
    assert.ok(listed.every((o) => o.sizeBytes === 1));
    // 23 keys at 7 per page: 4 pages.
    const pages = s3.requests.slice(before).filter((r) => r.operation === 'ListObjectsV2');
    assert.equal(pages.length, 4);
  });

  test('a server that answers smaller pages than asked is followed to the end', async () => {
    const small = await startTestS3({ listKeysMax: 2 });
    try {
      const c = new S3Client({ ...testS3ClientOptions(small), listPageKeysMax: 1000 });
      for (let i = 0; i < 5; i++) await c.putObject(`k${i}`, 'x');
      const keys: string[] = [];
      for await (const o of c.listObjects('')) keys.push(o.key);
      assert.deepEqual(keys, ['k0', 'k1', 'k2', 'k3', 'k4']);
    } finally {
      await small.close();
    }
  });

  test('uploadStream: a stream of several parts is a multipart upload with every byte in place', async () => {
    const total = 64 * KiB * 3 + 12_345; // 4 parts, the last one short
    const expected = await readAll(pattern(total, 10_007));
    const r = await uploadStream(client, 'big/object', pattern(total, 10_007));
    assert.equal(r.sizeBytes, total);
    assert.equal(r.partCount, 4);
    assert.match(r.etag, /-4"$/);
    const ops = s3.requests.map((x) => x.operation);
    assert.equal(ops.filter((o) => o === 'UploadPart').length, 4);
    assert.ok(ops.includes('CreateMultipartUpload') && ops.includes('CompleteMultipartUpload'));
    const got = await client.getObject('big/object');
    assert.equal(got.info.sizeBytes, total);
    assert.ok((await readAll(got.body)).equals(expected));
    assert.deepEqual(s3.uploadsInProgress(), []);
  });

  test('uploadStream: exactly one part, or less, is a single PUT; an empty stream an empty object', async () => {
    const before = s3.requests.length;
    const one = await uploadStream(client, 'exactly-one-part', pattern(64 * KiB, 5000));
    assert.equal(one.partCount, 0);
    const empty = await uploadStream(client, 'empty', pattern(0, 1));
    assert.equal(empty.sizeBytes, 0);
    assert.deepEqual(
      s3.requests.slice(before).map((x) => x.operation),
      ['PutObject', 'PutObject'],
    );
    assert.equal(s3.objects().get('exactly-one-part')?.sizeBytes, 64 * KiB);
    assert.equal(s3.objects().get('empty')?.sizeBytes, 0);
  });

  test('uploadStream with two parts in flight stores the same bytes', async () => {
    const c2 = new S3Client({ ...testS3ClientOptions(s3), partSizeBytes: 64 * KiB, partsInFlightMax: 2 });
    const total = 64 * KiB * 5 + 1;
    const r = await uploadStream(c2, 'two-in-flight', pattern(total, 7_919));
    assert.equal(r.partCount, 6);
    assert.ok(
      (await readAll((await c2.getObject('two-in-flight')).body)).equals(
        await readAll(pattern(total, 7_919)),
      ),
    );
  });

  test('the multipart calls on their own: create, parts, list uploads, complete, abort', async () => {
    const id = await client.createMultipartUpload('manual');
    const id2 = await client.createMultipartUpload('manual-2');
    const listed: string[] = [];
    for await (const u of client.listMultipartUploads('manual')) listed.push(`${u.key} ${u.uploadId}`);
    assert.deepEqual(listed.sort(), [`manual ${id}`, `manual-2 ${id2}`].sort());
    const p1 = await client.uploadPart('manual', id, 1, Buffer.alloc(70 * KiB, 1));
    const p2 = await client.uploadPart('manual', id, 2, Buffer.alloc(10, 2));
    await client.completeMultipartUpload('manual', id, [p1, p2], 70 * KiB + 10);
    assert.equal(s3.objects().get('manual')?.sizeBytes, 70 * KiB + 10);
    await client.abortMultipartUpload('manual-2', id2);
    await client.abortMultipartUpload('manual-2', id2); // gone already: no error
    assert.deepEqual(s3.uploadsInProgress(), []);
  });

  test('ListMultipartUploads pages with key and upload id markers', async () => {
    const small = await startTestS3({ listKeysMax: 2 });
    try {
      const c = new S3Client(testS3ClientOptions(small));
      const ids = new Set<string>();
      for (let i = 0; i < 5; i++) ids.add(await c.createMultipartUpload(i < 3 ? 'same' : `k${i}`));
      const seen = new Set<string>();
      for await (const u of c.listMultipartUploads('')) seen.add(u.uploadId);
      assert.deepEqual([...seen].sort(), [...ids].sort());
    } finally {
      await small.close();
    }
  });

  test('virtual-hosted addressing: bucket in the host name, signature still verified', async () => {
    const port = Number(new URL(s3.endpointUrl).port);
    const c = new S3Client({
      ...testS3ClientOptions(s3),
      endpointUrl: `http://s3.test:${port}`,
      pathStyle: false,
      fetch: loopbackFetch(port),
      partSizeBytes: 64 * KiB,
    });
    assert.equal(c.objectUrl('a b/c'), `http://backups.s3.test:${port}/a%20b/c`);
    await c.putObject('vh/one', 'virtual');
    await uploadStream(c, 'vh/multi', pattern(64 * KiB * 2 + 3, 9_999));
    assert.equal((await readAll((await c.getObject('vh/one')).body)).toString(), 'virtual');
    const keys: string[] = [];
    for await (const o of c.listObjects('vh/')) keys.push(o.key);
    assert.deepEqual(keys, ['vh/multi', 'vh/one']);
    const last = s3.requests[s3.requests.length - 1];
    assert.equal(last?.bucket, 'backups');
    assert.equal(last?.status, 200);
  });

  test('path-style addressing under an endpoint with a path prefix keeps the prefix', () => {
    const c = new S3Client({ ...testS3ClientOptions(s3), endpointUrl: 'https://gw.example/s3/' });
    assert.equal(c.objectUrl('x/y'), 'https://gw.example/s3/backups/x/y');
  });

  test('a bucket name the configuration takes, the client takes (one rule: config-backup.ts)', () => {
    // Found from outside: `My_Backups` (path-style) passed the configuration, then the client's
    // stricter rule stopped the node from starting.
    for (const bucket of ['My_Backups', 'backups_2024', 'a'.repeat(100)])
      assert.doesNotThrow(
        () => new S3Client({ ...testS3ClientOptions(s3), bucket, pathStyle: true }),
        bucket,
      );
    assert.throws(
      () =>
        new S3Client({
          ...testS3ClientOptions(s3),
          endpointUrl: 'https://s3.example',
          bucket: 'My_Backups',
          pathStyle: false,
        }),
      /bucket 'My_Backups' is not a bucket name that can be part of a host name/,
    );
    assert.throws(
      () => new S3Client({ ...testS3ClientOptions(s3), endpointUrl: 'http://127.0.0.1:9', pathStyle: false }),
      /pathStyle false cannot be used with an IP address/,
    );
  });

  test("a 200 answer that is not the operation's document is InvalidResponse, not an empty listing", async () => {
    // Found from outside: a listing answered with `hello` or an HTML page (an s3_url that is no
    // S3 endpoint) read as an empty bucket: "0 backups", retention skipped in silence.
    for (const body of [
      'hello',
      '<html><body>gateway</body></html>',
      '<?xml version="1.0"?><ListAllMyBucketsResult/>',
    ]) {
      const server = createServer((_req, res) => res.end(body));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      try {
        const c = new S3Client({
          ...testS3ClientOptions(s3),
          endpointUrl: `http://127.0.0.1:${port}`,
          retriesMax: 0,
        });
        await assert.rejects(
          async () => {
            for await (const _ of c.listObjects('')) assert.fail('an object listed from garbage');
          },
          (e: unknown) =>
            e instanceof S3Error &&
            e.s3Code === 'InvalidResponse' &&
            /is s3_url an S3 endpoint/.test(e.message),
          body,
        );
      } finally {
        await new Promise((r) => server.close(r));
      }
    }
  });

  test('options are validated and every problem named', () => {
    assert.throws(
      () =>
        new S3Client({
          ...testS3ClientOptions(s3),
          endpointUrl: 'ftp://x',
          bucket: 'bad/bucket',
          partSizeBytes: 10,
          partsInFlightMax: 9,
          retriesMax: -1,
        }),
      (e: unknown) => {
        assert.ok(e instanceof HiqliteError);
        assert.equal(e.code, 'HQL_INVALID_CONFIG');
        for (const word of ['endpointUrl', 'bucket', 'partSizeBytes', 'partsInFlightMax', 'retriesMax']) {
          assert.match(e.message, new RegExp(word));
        }
        return true;
      },
    );
  });
});
