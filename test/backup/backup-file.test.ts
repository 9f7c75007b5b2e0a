/**
 * A backup file end to end on real SQLite files: a consistent copy (VACUUM INTO on its own
 * thread), compressed and encrypted into the local target, read back into a checked database;
 * a damaged stored file changes nothing at the destination.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { restoreBackupFile } from '../../src/backup/backup-file.js';
import { startCopy } from '../../src/backup/db-copy.js';
import { LocalBackupTarget } from '../../src/backup/local-target.js';
import { formatBackupName, parseBackupName } from '../../src/backup/names.js';
import { HiqliteError } from '../../src/lib/errors.js';
import { makeTempDir } from '../sm/sql-test-helpers.js';
import { backupStreamOf } from '../support/backup-stream.js';
import { backupOf, collect, makeDatabase, pieces, ring } from './helpers.js';

describe('backup file', () => {
  const tmp = makeTempDir('hq-backup-');
  const keys = ring('k1');
  let name = '';
  let target: LocalBackupTarget;
  let db: { path: string; index: number };
  let stored: Buffer;

  before(async () => {
    db = makeDatabase(join(tmp.dir, 'db'), 5000);
    target = await LocalBackupTarget.open(join(tmp.dir, 'backups'));
    const b = await backupOf(db.path, {
      workDir: tmp.dir,
      keys: keys.ring,
      createdMs: Date.UTC(2025, 0, 2, 2, 30),
      chunkBytes: 16 * 1024,
    });
    assert.equal(b.info.logIndex, db.index);
    name = b.name;
    const body = b.body;
    await target.put(name, body);
    stored = readFileSync(join(target.dir, name));
  });
  after(() => tmp.cleanup());

  test('names carry time, index and node and round-trip; other names are not backups', () => {
    assert.deepEqual(parseBackupName(name), {
      createdMs: Date.UTC(2025, 0, 2, 2, 30),
      logIndex: db.index,
      nodeId: 1,
    });
    assert.match(name, /^backup_20250102T023000\.000Z_i\d+_n1\.hqbak$/);
    assert.equal(parseBackupName('backup_20251302T023000.000Z_i1_n1.hqbak'), null);
    assert.equal(parseBackupName('../x'), null);
  });

  test('the local target lists it; the stored bytes are compressed and reveal no row', async () => {
    const list = await target.list();
    assert.deepEqual(
      list.map((o) => [o.name, o.bytes]),
      [[name, stored.length]],
    );
    assert.ok(stored.length < readFileSync(db.path).length, 'smaller than the database');
    const plainRow = (
      new Database(db.path, { readonly: true }).prepare('SELECT v FROM t LIMIT 1').pluck().get() as string
    ).slice(0, 32);
    assert.equal(stored.includes(Buffer.from(plainRow)), false);
  });

  test('backup_gzip_level 0 stores the pages uncompressed: a larger file that restores the same', async () => {
    const work = join(tmp.dir, 'level0');
    mkdirSync(work);
    const b = await backupOf(db.path, { workDir: work, keys: keys.ring, createdMs: 0, gzipLevel: 0 });
    const file = await collect(b.body);
    assert.ok(file.length > b.info.bytes, `${file.length} bytes stored of a ${b.info.bytes}-byte database`);
    assert.ok(file.length > stored.length * 1.5, 'much larger than the level 1 backup');
    const out = join(work, 'restored.db');
    await restoreBackupFile(pieces(file, 64 * 1024), { keys: keys.ring, label: b.name, outPath: out });
    const r = new Database(out, { readonly: true });
    try {
      assert.equal(r.prepare('SELECT count(*) FROM t').pluck().get(), 5000);
    } finally {
      r.close();
    }
  });

  // Found from outside: the plaintext copy of the whole database was -rw-r--r-- (umask 022).
  test('the plaintext copy is owner-only whatever the umask', async () => {
    const work = join(tmp.dir, 'copy-mode');
    mkdirSync(work);
    const before = process.umask(0o022);
    try {
      const copy = await startCopy({
        dbPath: db.path,
        outPath: join(work, 'copy.sqlite'),
        busyTimeoutMs: 1000,
      });
      await copy.checked;
      assert.equal(statSync(join(work, 'copy.sqlite')).mode & 0o777, 0o600);
    } finally {
      process.umask(before);
    }
  });

  test('the copy is checked while it streams: a failed check fails the backup, no file is kept', async () => {
    const work = join(tmp.dir, 'check-fails');
    mkdirSync(work);
    const copy = await startCopy({
      dbPath: db.path,
      outPath: join(work, 'copy.sqlite'),
      busyTimeoutMs: 1000,
    });
    assert.equal(copy.info.logIndex, db.index, 'the copy is prepared before its check ends');
    assert.ok((await copy.checked).checkMs >= 0, 'a sound copy passes');
    const failing = Promise.reject(
      new HiqliteError('HQL_BACKUP_CORRUPT', 'check failed', { retryable: false }),
    );
    const { name: failedName, body } = backupStreamOf(join(work, 'copy.sqlite'), copy.info, {
      createdMs: 0,
      keys: keys.ring,
      checked: failing,
    });
    const local = await LocalBackupTarget.open(join(work, 'backups'));
    await assert.rejects(local.put(failedName, body), /check failed/);
    assert.deepEqual(await local.list(), []);
    assert.equal(existsSync(join(local.dir, `${failedName}.partial`)), false);
  });

  test('restores to a checked database with every row, at the header index', async () => {
    const out = join(tmp.dir, 'restored.db');
    const { header } = await restoreBackupFile(await target.get(name), {
      keys: keys.ring,
      label: name,
      outPath: out,
    });
    assert.equal(header.logIndex, db.index);
    const r = new Database(out, { readonly: true });
    try {
      assert.equal(r.prepare('SELECT count(*) FROM t').pluck().get(), 5000);
      assert.equal(r.prepare('SELECT applied_index FROM _hq_meta').pluck().get(), db.index);
    } finally {
      r.close();
    }
  });

  test("stored under another backup's name: refused, naming what the name and the header say", async () => {
    // Found from outside: a backup renamed in the bucket (no key needed) was listed and restored
    // as the newer one its new name described.
    const parsed = parseBackupName(name);
    assert.ok(parsed !== null);
    const renamed = formatBackupName({ ...parsed, logIndex: parsed.logIndex + 999_999 });
    const out = join(tmp.dir, 'renamed.db');
    await assert.rejects(
      restoreBackupFile(pieces(stored, 65536), {
        keys: keys.ring,
        label: renamed,
        name: renamed,
        outPath: out,
      }),
      (e: unknown) =>
        e instanceof HiqliteError &&
        e.code === 'HQL_BACKUP_CORRUPT' &&
        new RegExp(
          `its name says log index ${parsed.logIndex + 999_999}.*its authenticated header log index ${parsed.logIndex}\\b.*renamed`,
        ).test(e.message),
    );
    assert.equal(existsSync(out), false);
    // Under its own name, or a name that is no backup's (a file the operator named), it restores.
    for (const ok of [name, 'my-copy.hqbak'])
      await restoreBackupFile(pieces(stored, 65536), {
        keys: keys.ring,
        label: ok,
        name: ok,
        outPath: join(tmp.dir, `ok-${ok}.db`),
      });
  });

  test('a damaged stored file is refused and leaves nothing at the destination', async () => {
    const bad = Buffer.from(stored);
    const at = Math.floor(bad.length / 2);
    bad[at] = (bad[at] as number) ^ 0x40;
    const out = join(tmp.dir, 'never.db');
    await assert.rejects(
      restoreBackupFile(pieces(bad, 65536), { keys: keys.ring, label: name, outPath: out }),
      (e: unknown) =>
        e instanceof HiqliteError &&
        e.code === 'HQL_BACKUP_CORRUPT' &&
        /does not authenticate/.test(e.message),
    );
    assert.equal(existsSync(out), false);
    assert.equal(existsSync(`${out}.partial`), false);
  });

  test('an existing destination is kept when the backup is refused', async () => {
    const out = join(tmp.dir, 'kept.db');
    writeFileSync(out, 'old content');
    await assert.rejects(
      restoreBackupFile(pieces(stored.subarray(0, stored.length - 100), 65536), {
        keys: keys.ring,
        label: name,
        outPath: out,
      }),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_BACKUP_CORRUPT',
    );
    assert.equal(readFileSync(out, 'utf8'), 'old content');
  });

  test('a missing backup is HQL_BACKUP_NOT_FOUND', async () => {
    await assert.rejects(
      target.get(formatBackupName({ createdMs: 0, logIndex: 1, nodeId: 1 })),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_BACKUP_NOT_FOUND',
    );
  });
});
