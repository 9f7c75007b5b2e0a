/**
 * The S3 backup target against the fake S3: backups stored under a prefix, streamed in and out
 * (multipart), listed by backup name only, missing ones HQL_BACKUP_NOT_FOUND, a failed or aborted
 * put leaves nothing behind, retention deletes only what is old, stale uploads are aborted.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { formatBackupName } from '../../src/backup/names.js';
import { expiredBackups } from '../../src/backup/retention.js';
import { S3Client } from '../../src/backup/s3/s3-client.js';
import { S3Target } from '../../src/backup/s3/s3-target.js';
import { HiqliteError } from '../../src/lib/errors.js';
import type { ResolvedS3Config } from '../../src/node/config/config-backup.js';
import {
  type FakeS3,
  startTestS3,
  TEST_S3_KEY,
  TEST_S3_SECRET,
  testS3ClientOptions,
} from '../support/s3-server.js';
import { collect, pieces } from './helpers.js';

const KiB = 1024;
/** The node's defaults of s3_request_timeout_ms, s3_retry_deadline_ms and s3_prefix. */
const TIMING = { requestTimeoutMs: 60_000, retryDeadlineMs: 300_000, prefix: '' };

/** A node's resolved S3 settings for the fake S3 at `url`, with `over` changed. */
function s3Config(url: string, over: Partial<ResolvedS3Config> = {}): ResolvedS3Config {
  return {
    url,
    bucket: 'backups',
    region: 'eu-test-1',
    pathStyle: true,
    key: TEST_S3_KEY,
    secret: TEST_S3_SECRET,
    ...TIMING,
    ...over,
  };
}
const DAY_MS = 24 * 60 * 60 * 1000;
const T0 = Date.UTC(2025, 0, 10, 2, 30);

const name = (daysAgo: number, index = 100) =>
  formatBackupName({ createdMs: T0 - daysAgo * DAY_MS, logIndex: index, nodeId: 1 });

function bytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 37 + (i >> 8)) & 0xff;
  return b;
}

describe('S3 backup target', () => {
  let s3: FakeS3;
  let target: S3Target;
  before(async () => {
    s3 = await startTestS3();
    target = new S3Target(
      new S3Client({ ...testS3ClientOptions(s3), partSizeBytes: 64 * KiB }),
      'cluster-a/',
    );
  });
  after(() => s3.close());
  beforeEach(() => {
    s3.objects().clear();
    s3.faults.clear();
  });

  test('put streams a backup in parts under the prefix; get streams it back byte for byte', async () => {
    const data = bytes(64 * KiB * 3 + 99);
    const stored = await target.put(name(0), pieces(data, 10_000));
    assert.equal(stored.name, name(0));
    assert.equal(stored.bytes, data.length);
    assert.ok(stored.modifiedMs > 0);
    assert.ok(s3.objects().has(`cluster-a/${name(0)}`));
    assert.ok(s3.requests.filter((r) => r.operation === 'UploadPart').length >= 4);
    assert.ok((await collect(await target.get(name(0)))).equals(data));
    assert.equal(target.description, 's3 backups/cluster-a/');
  });

  test('list shows only backup names under the prefix, with their sizes', async () => {
    await target.put(name(1), pieces(bytes(10), 10));
    await target.put(name(0, 200), pieces(bytes(20), 10));
    s3.putDirect('cluster-a/notes.txt', Buffer.from('not a backup'));
    s3.putDirect(`cluster-b/${name(0)}`, Buffer.from('another cluster'));
    s3.putDirect(name(0), Buffer.from('outside the prefix'));
    const listed = (await target.list()).map((o) => `${o.name} ${o.bytes}`).sort();
    assert.deepEqual(listed, [`${name(0, 200)} 20`, `${name(1)} 10`].sort());
  });

  test('a missing backup is HQL_BACKUP_NOT_FOUND; a name that is not a backup name is refused', async () => {
    await assert.rejects(
      target.get(name(5)),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_BACKUP_NOT_FOUND',
    );
    await assert.rejects(
      target.get('../secrets'),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_BACKUP_NOT_FOUND',
    );
    await target.delete(name(5)); // already gone: no error
  });

  test('a put that fails part-way leaves no object and no multipart upload', async () => {
    s3.faults.failNext(1, { status: 403, code: 'AccessDenied', operation: 'CompleteMultipartUpload' });
    await assert.rejects(target.put(name(0), pieces(bytes(64 * KiB * 2 + 1), 8_000)), /AccessDenied/);
    assert.deepEqual(await target.list(), []);
    assert.deepEqual(s3.uploadsInProgress(), []);
  });

  test('an aborted put is HQL_ABORTED and leaves nothing behind', async () => {
    const controller = new AbortController();
    async function* slowSource(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 10; i++) {
        if (i === 4) controller.abort();
        yield bytes(64 * KiB);
      }
    }
    await assert.rejects(
      target.put(name(0), slowSource(), { signal: controller.signal }),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_ABORTED',
    );
    assert.deepEqual(await target.list(), []);
    assert.deepEqual(s3.uploadsInProgress(), []);
  });

  test('retention on S3: only backups older than keep days are deleted, never the newest', async () => {
    for (const days of [0, 1, 6, 8, 30]) await target.put(name(days), pieces(bytes(5), 5));
    const expired = expiredBackups(await target.list(), 7, T0);
    assert.deepEqual(expired.sort(), [name(8), name(30)].sort());
    for (const n of expired) await target.delete(n);
    assert.deepEqual((await target.list()).map((o) => o.name).sort(), [name(0), name(1), name(6)].sort());
  });

  test('abortStaleUploads aborts only old uploads of backup names under the prefix', async () => {
    const c = target.client;
    await c.createMultipartUpload(`cluster-a/${name(0)}`);
    await c.createMultipartUpload('cluster-a/something-else');
    await c.createMultipartUpload(`cluster-b/${name(0)}`);
    assert.equal(await target.abortStaleUploads(Date.now(), DAY_MS), 0);
    assert.equal(await target.abortStaleUploads(Date.now() + 2 * DAY_MS, DAY_MS), 1);
    assert.deepEqual(
      s3
        .uploadsInProgress()
        .map((u) => u.key)
        .sort(),
      ['cluster-a/something-else', `cluster-b/${name(0)}`],
    );
    for (const u of s3.uploadsInProgress()) await c.abortMultipartUpload(u.key, u.uploadId);
  });

  test('fromConfig maps the node settings (s3_url, s3_bucket, s3_region, s3_path_style, s3_key, s3_secret, s3_prefix)', async () => {
    // s3_prefix: this cluster's folder of the bucket (clusters can share one).
    const t = S3Target.fromConfig(s3Config(s3.endpointUrl, { prefix: 'cfg/' }));
    await t.put(name(0), pieces(bytes(100), 30));
    assert.deepEqual(
      (await t.list()).map((o) => o.name),
      [name(0)],
    );
    assert.ok(
      [...s3.objects().keys()].some((k) => k.endsWith(`cfg/${name(0)}`)),
      'stored under the prefix',
    );
    // Another cluster at the bucket's top neither lists it nor (its retention) deletes it.
    const top = S3Target.fromConfig(s3Config(s3.endpointUrl));
    assert.deepEqual(await top.list(), []);
    const wrong = S3Target.fromConfig(s3Config(s3.endpointUrl, { secret: 'wrong' }));
    await assert.rejects(
      wrong.list(),
      (e: unknown) =>
        e instanceof HiqliteError && e.code === 'HQL_S3' && /SignatureDoesNotMatch/.test(e.message),
    );
  });
  test('s3_request_timeout_ms and s3_retry_deadline_ms bound a request to an S3 that never answers', async () => {
    // They were constants (60 s a request, 300 s of retries: a backup waited 5 minutes on a hung
    // S3, found from outside); now settings, which fromConfig hands to the client.
    const hung = createServer(() => {});
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const port = (hung.address() as AddressInfo).port;
    try {
      const t = S3Target.fromConfig(
        s3Config(`http://127.0.0.1:${port}`, { requestTimeoutMs: 300, retryDeadlineMs: 0 }),
      );
      const startedMs = performance.now();
      await assert.rejects(
        t.list(),
        (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_S3' && /RequestDeadline/.test(e.message),
      );
      // One attempt of 300 ms and no retry, not a minute of one request.
      assert.ok(performance.now() - startedMs < 30_000);
    } finally {
      hung.closeAllConnections();
      await new Promise((r) => hung.close(r));
    }
  });
});
