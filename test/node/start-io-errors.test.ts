/**
 * A start that fails on the file system under data_dir is HQL_IO naming the path and what is
 * wrong, on either thread, whichever part of the node met it (log store, SQLite writer in its own
 * thread, snapshot store, the cache group's log): it was Node's bare `EEXIST`/`EISDIR` error,
 * untyped (found by an outside probe with a read-only `logs/`, EROFS; as root a read-only mount
 * is not at hand, a file where a folder must be fails the same way).
 */
import assert from 'node:assert/strict';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { start } from '../../src/index.js';
import { oneNodeConfig } from '../support/one-node-config.js';

const root = mkdtempSync(join(tmpdir(), 'hq-start-io-'));
let n = 0;

const cases: ReadonlyArray<readonly [string, (dataDir: string) => string, RegExp]> = [
  [
    'a file where the Raft log folder goes',
    (d) => {
      writeFileSync(join(d, 'logs'), 'x');
      return join(d, 'logs');
    },
    /exists and is not a directory/,
  ],
  [
    'a folder where the database file goes',
    (d) => {
      const file = join(d, 'state_machine', 'db', 'hiqlite.db');
      mkdirSync(file, { recursive: true });
      return file;
    },
    /EISDIR.*\(a file to be written there is a directory\)/,
  ],
  [
    'a file where the snapshots folder goes',
    (d) => {
      mkdirSync(join(d, 'state_machine'), { recursive: true });
      writeFileSync(join(d, 'state_machine', 'snapshots'), 'x');
      return join(d, 'state_machine', 'snapshots');
    },
    /exists and is not a directory/,
  ],
];

describe('a start that fails on the file system', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  for (const [what, spoil, reason] of cases) {
    for (const thread of ['main', 'worker'] as const) {
      test(`${what} (thread ${thread}): HQL_IO naming the path`, async () => {
        const cfg = await oneNodeConfig(join(root, `d${n++}`));
        const dataDir = cfg.dataDir as string;
        mkdirSync(dataDir, { recursive: true });
        const path = spoil(dataDir);
        await assert.rejects(start(cfg, { thread }), (e: Error & { code?: string }) => {
          assert.equal(e.code, 'HQL_IO', e.message);
          assert.ok(e.message.startsWith('node 1 cannot start: '), e.message);
          assert.ok(e.message.includes(path), e.message);
          assert.match(e.message, reason);
          return true;
        });
      });
    }
  }

  test('a node configured alone whose Raft log is damaged in the middle: HQL_CORRUPTION with the way out', async () => {
    const cfg = await oneNodeConfig(join(root, `d${n++}`));
    const node = await start(cfg, { thread: 'main' });
    await node.execute('CREATE TABLE t (v TEXT)');
    for (let i = 0; i < 40; i++) await node.execute('INSERT INTO t (v) VALUES (?)', ['x'.repeat(100)]);
    await node.close();
    const logs = join(cfg.dataDir as string, 'logs');
    const segment = readdirSync(logs).find((f) => f.endsWith('.seg'));
    assert.ok(segment !== undefined);
    const bytes = readFileSync(join(logs, segment));
    let end = bytes.length - 1;
    while (end > 0 && bytes[end] === 0) end--;
    const fd = openSync(join(logs, segment), 'r+');
    writeSync(fd, Buffer.from([bytes[end - 1500]! ^ 0xff]), 0, 1, end - 1500);
    closeSync(fd);
    await assert.rejects(start(cfg, { thread: 'main' }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'HQL_CORRUPTION', e.message);
      assert.match(
        e.message,
        /^log store corrupted: .*\.seg at byte \d+: .*this node is the only one configured, so no leader can re-sync it; restore data_dir from a backup/,
      );
      return true;
    });
    // Nothing was moved or discarded: the log is where it was.
    assert.ok(readdirSync(logs).includes(segment));
  });

  test('a cache-only node on disk: a file where its log folder goes', async () => {
    const cfg = await oneNodeConfig(join(root, `d${n++}`), { sqlite: false, cacheStorageDisk: true });
    const dataDir = cfg.dataDir as string;
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'logs_cache'), 'x');
    await assert.rejects(start(cfg, { thread: 'main' }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'HQL_IO', e.message);
      assert.match(e.message, /logs_cache.*exists and is not a directory/);
      return true;
    });
  });
});
