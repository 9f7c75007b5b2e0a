/**
 * A real backup through S3: a hiqlite database copied, compressed and encrypted (backup-file.ts),
 * uploaded to the fake S3 in several parts while the connection drops and S3 answers 500,
 * downloaded with a drop in the middle, and restored into a checked database that holds every
 * row. A byte flipped in the stored object is refused at restore.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { restoreBackupFile } from '../../src/backup/backup-file.js';
import { S3Client } from '../../src/backup/s3/s3-client.js';
import { S3Target } from '../../src/backup/s3/s3-target.js';
import { HiqliteError } from '../../src/lib/errors.js';
import { makeTempDir } from '../sm/sql-test-helpers.js';
import { type FakeS3, startTestS3, testS3ClientOptions } from '../support/s3-server.js';
import { backupOf, makeDatabase, ring } from './helpers.js';

const KiB = 1024;
const ROWS = 5_000;

describe('backup round trip through S3', () => {
  const tmp = makeTempDir('hq-s3-backup-');
  const keys = ring('k1');
  let s3: FakeS3;
  let target: S3Target;
  let name = '';
  let index = 0;
  let storedBytes = 0;

  before(async () => {
    s3 = await startTestS3();
    target = new S3Target(new S3Client({ ...testS3ClientOptions(s3), partSizeBytes: 128 * KiB }), 'hq/');
    const db = makeDatabase(join(tmp.dir, 'db'), ROWS);
    const b = await backupOf(db.path, {
      workDir: tmp.dir,
      keys: keys.ring,
      createdMs: Date.UTC(2025, 0, 2, 2, 30),
      chunkBytes: 16 * KiB,
    });
    index = b.info.logIndex;
    name = b.name;
    const body = b.body;
    s3.faults.dropRequestNext(1, { operation: 'UploadPart', afterBytes: 50 * KiB });
    s3.faults.failNext(1, { operation: 'UploadPart' });
    const stored = await target.put(name, body);
    storedBytes = stored.bytes;
  });
  after(async () => {
    await s3.close();
    tmp.cleanup();
  });

  test('the upload took several parts and survived a dropped part and a 500', () => {
    const parts = s3.requests.filter((r) => r.operation === 'UploadPart').map((r) => r.status);
    assert.ok(parts.filter((s) => s === 200).length >= 3, `parts: ${parts.join(',')}`);
    assert.ok(parts.includes('dropped') && parts.includes(500));
    assert.deepEqual(s3.uploadsInProgress(), []);
    assert.equal(s3.objects().get(`hq/${name}`)?.sizeBytes, storedBytes);
  });

  test('download (dropped once mid-body) and restore give a checked database with every row', async () => {
    s3.faults.dropResponseNext(1, { operation: 'GetObject', afterBytes: 200 * KiB });
    const out = join(tmp.dir, 'restored.db');
    const r = await restoreBackupFile(await target.get(name), { keys: keys.ring, label: name, outPath: out });
    assert.equal(r.header.logIndex, index);
    const db = new Database(out, { readonly: true });
    try {
      assert.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, ROWS);
    } finally {
      db.close();
    }
    const gets = s3.requests.filter((x) => x.operation === 'GetObject').map((x) => x.status);
    assert.deepEqual(gets, ['dropped', 206]);
  });

  test('one flipped byte in the stored object: the restore refuses it and writes nothing', async () => {
    const obj = s3.objects().get(`hq/${name}`);
    assert.ok(obj?.data);
    const tampered = Buffer.from(obj.data);
    const at = Math.floor(tampered.length / 2);
    tampered[at] = (tampered[at] as number) ^ 0x01;
    s3.putDirect(`hq/${name}`, tampered);
    const out = join(tmp.dir, 'tampered.db');
    await assert.rejects(
      restoreBackupFile(await target.get(name), { keys: keys.ring, label: name, outPath: out }),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_BACKUP_CORRUPT',
    );
    assert.equal(existsSync(out), false);
  });
});
