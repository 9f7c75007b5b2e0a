/**
 * migrate('<folder>') on real files: each file is applied as written or refused naming it. Before,
 * a Latin-1 file ran with U+FFFD in place of its accents (a different migration than the file,
 * silently), a `.sql` folder or an unreadable file gave Node's raw EISDIR/EACCES, a FIFO named
 * `.sql` waited for a writer forever, `1_a.sql` and `01_b.sql` reached the cluster as one id
 * twice, and a byte order mark changed the checksum of the same SQL.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readMigrationsFolder } from '../../src/client/migrations-folder.js';
import { start } from '../../src/index.js';
import { HiqliteError } from '../../src/lib/errors.js';
import { oneNodeConfig } from '../support/one-node-config.js';
import { within } from '../support/within.js';

const root = mkdtempSync(join(tmpdir(), 'hq-migrations-folder-'));
after(() => rmSync(root, { recursive: true, force: true }));

let seq = 0;
function folder(files: Record<string, string | Buffer>): string {
  const dir = join(root, `m${++seq}`);
  mkdirSync(dir);
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
  return dir;
}

async function refused(dir: string, code: string, message: RegExp): Promise<void> {
  await assert.rejects(within(readMigrationsFolder(dir), 10_000, 'readMigrationsFolder'), (e: unknown) => {
    assert.ok(e instanceof HiqliteError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

describe('migrate from a folder', () => {
  test('a file that is not UTF-8 is refused naming it; UTF-8 with or without a BOM reads the same', async () => {
    const latin1 = Buffer.from("INSERT INTO t VALUES ('café');", 'latin1');
    await refused(
      folder({ '1_init.sql': 'CREATE TABLE t (v TEXT);', '2_data.sql': latin1 }),
      'HQL_INVALID_PARAMS',
      /2_data\.sql is not UTF-8/,
    );
    const sql = "INSERT INTO t VALUES ('café');";
    const plain = await readMigrationsFolder(folder({ '1_data.sql': sql }));
    const bom = await readMigrationsFolder(
      folder({ '1_data.sql': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(sql)]) }),
    );
    assert.deepEqual(bom, plain);
    assert.equal(plain[0]?.sql, sql);
  });

  test('a .sql that is a folder or a FIFO, or cannot be read: HQL_INVALID_PARAMS naming the file, never a wait', async () => {
    const withDir = folder({ '1_init.sql': 'SELECT 1;' });
    mkdirSync(join(withDir, '2_more.sql'));
    await refused(withDir, 'HQL_INVALID_PARAMS', /2_more\.sql is not a regular file/);
    const withFifo = folder({ '1_init.sql': 'SELECT 1;' });
    execFileSync('mkfifo', [join(withFifo, '2_pipe.sql')]);
    await refused(withFifo, 'HQL_INVALID_PARAMS', /2_pipe\.sql is not a regular file/);
    if (process.getuid?.() !== 0) {
      const locked = folder({ '1_init.sql': 'SELECT 1;' });
      writeFileSync(join(locked, '2_secret.sql'), 'SELECT 2;', { mode: 0o000 });
      await refused(locked, 'HQL_INVALID_PARAMS', /2_secret\.sql cannot be read \(EACCES\)/);
    }
  });

  test('ids: 1 and 01 are the same id, refused naming both files; an id beyond 2^53 is refused', async () => {
    await refused(
      folder({ '1_a.sql': 'SELECT 1;', '01_b.sql': 'SELECT 2;' }),
      'HQL_MIGRATION_ORDER',
      /files 01_b\.sql and 1_a\.sql have the same id 1|files 1_a\.sql and 01_b\.sql have the same id 1/,
    );
    await refused(
      folder({ '99999999999999999999_x.sql': 'SELECT 1;' }),
      'HQL_MIGRATION_ORDER',
      /id 99999999999999999999 is not a whole number/,
    );
    const ok = await readMigrationsFolder(
      folder({ '10_c.sql': 'SELECT 3;', '2_b.sql': 'SELECT 2;', 'notes.txt': 'x' }),
    );
    assert.deepEqual(
      ok.map((m) => [m.id, m.name]),
      [
        [2, 'b'],
        [10, 'c'],
      ],
      'numeric order; other files ignored',
    );
  });

  test('through a node: the folder is applied as written (accents included)', async () => {
    const cfg = await oneNodeConfig(join(root, 'node'));
    const node = await start(cfg, { thread: 'main' });
    try {
      await node.waitUntilHealthy({ timeoutMs: 20_000 });
      const dir = folder({
        '1_init.sql': 'CREATE TABLE t (v TEXT);',
        '2_data.sql': Buffer.concat([
          Buffer.from([0xef, 0xbb, 0xbf]),
          Buffer.from("INSERT INTO t VALUES ('café');"),
        ]),
      });
      await node.migrate(dir);
      assert.deepEqual(await node.query('SELECT v FROM t'), [{ v: 'café' }]);
      await node.migrate(dir); // idempotent
      writeFileSync(join(dir, '3_bad.sql'), Buffer.from("INSERT INTO t VALUES ('naïve');", 'latin1'));
      await assert.rejects(node.migrate(dir), /3_bad\.sql is not UTF-8/);
      assert.deepEqual(
        await node.query('SELECT v FROM t'),
        [{ v: 'café' }],
        'nothing of a refused folder ran',
      );
    } finally {
      await node.close();
    }
  });
});
