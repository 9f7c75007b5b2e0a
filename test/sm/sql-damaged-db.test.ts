/**
 * A damaged database file found when the state machine opens it (state-machine.ts): moved aside
 * (kept for the operator), and the state machine starts empty for the runtime to rebuild from
 * snapshot and log. Without the check at start, a read of a damaged page says what is wrong and
 * what to do, not "state machine cannot apply".
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, statSync, truncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import type { HiqliteError } from '../../src/lib/errors.js';
import { SqlReader } from '../../src/sm/sql/reader.js';
import { SqlStateMachine } from '../../src/sm/sql/state-machine.js';
import { cmd, exec, Log, makeTempDir } from './sql-test-helpers.js';

const PAGE = 4096;
const dirs: Array<() => void> = [];
after(() => {
  for (const cleanup of dirs) cleanup();
});

/** A closed database with table t of 2,000 rows (many pages), applied through index 2. */
function filledDatabase(): { dir: string; file: string } {
  const { dir, cleanup } = makeTempDir('hq-damaged-');
  dirs.push(cleanup);
  const sm = SqlStateMachine.open(dir);
  const log = new Log();
  sm.applyBatch(
    log.entries(
      cmd(exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)')),
      cmd({
        type: 'txn',
        statements: Array.from({ length: 2000 }, (_, i) => ({
          sql: 'INSERT INTO t (v) VALUES (?)',
          params: [`${'x'.repeat(200)} ${i}`],
        })),
      }),
    ),
  );
  assert.equal(sm.appliedIndex(), 2);
  sm.close();
  return { dir, file: join(dir, 'hiqlite.db') };
}

function overwrite(file: string, at: number, bytes: number): void {
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, Buffer.alloc(bytes, 0xff), 0, bytes, at);
  } finally {
    closeSync(fd);
  }
}

/** The root page of table t: SQLite opens the file and reads its schema without touching it. */
function overwriteRootOfT(file: string): void {
  const db = new Database(file, { readonly: true });
  const root = db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 't'").pluck().get() as number;
  db.close();
  overwrite(file, (root - 1) * PAGE, PAGE);
}

const damages: ReadonlyArray<readonly [string, (file: string) => void, RegExp]> = [
  [
    'truncated to half',
    (f) => truncateSync(f, Math.floor(statSync(f).size / 2)),
    /SQLITE_CORRUPT|quick_check/,
  ],
  ['its header overwritten', (f) => overwrite(f, 0, 100), /SQLITE_NOTADB/],
  ['a page of a table overwritten', overwriteRootOfT, /quick_check/],
];

describe('a damaged database file at open', () => {
  for (const [what, damage, reason] of damages) {
    test(`${what}: moved aside, the state machine starts empty and applies`, () => {
      const { dir, file } = filledDatabase();
      damage(file);
      const sm = SqlStateMachine.open(dir);
      try {
        assert.ok(sm.damaged !== null, 'the damage is reported');
        assert.equal(sm.damaged.path, file);
        assert.match(sm.damaged.reason, reason);
        assert.ok(existsSync(sm.damaged.movedTo), 'the damaged file is kept');
        assert.match(sm.damaged.movedTo, /hiqlite\.db\.damaged-[0-9T-]+Z$/);
        assert.equal(sm.appliedIndex(), 0, 'nothing of the damaged file is trusted');
        const log = new Log();
        const [r] = sm.applyBatch(log.entries(cmd(exec('CREATE TABLE t (id INTEGER PRIMARY KEY)'))));
        assert.deepEqual(r, { ok: true, type: 'execute', value: { rowsAffected: 0, lastInsertRowid: 0 } });
      } finally {
        sm.close();
      }
      // Found again at the next open: no. The new file is whole.
      const again = SqlStateMachine.open(dir);
      assert.equal(again.damaged, null);
      assert.equal(again.appliedIndex(), 1);
      again.close();
      assert.equal(readdirSync(dir).filter((n) => n.includes('.damaged-')).length, 1);
    });
  }

  test('a whole file is not moved', () => {
    const { dir } = filledDatabase();
    const sm = SqlStateMachine.open(dir);
    assert.equal(sm.damaged, null);
    assert.equal(sm.appliedIndex(), 2);
    sm.close();
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.includes('.damaged-')),
      [],
    );
  });

  test('without the check a read of the damaged page is HQL_CORRUPTION naming the remedy', () => {
    const { dir, file } = filledDatabase();
    overwriteRootOfT(file);
    const sm = SqlStateMachine.open(dir, { checkAtStart: false });
    assert.equal(sm.damaged, null);
    const reader = SqlReader.open(file, { applied: sm.applied });
    try {
      assert.throws(
        () => reader.query('SELECT count(*) FROM t'),
        (e: HiqliteError) => {
          assert.equal(e.code, 'HQL_CORRUPTION');
          assert.match(
            e.message,
            /database file is damaged \(SQLITE_CORRUPT.*\) during a read: restart the node/,
          );
          return true;
        },
      );
    } finally {
      reader.close();
      sm.close();
    }
  });
});
