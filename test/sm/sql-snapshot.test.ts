import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { HiqliteError } from '../../src/lib/errors.js';
import { SqlReader } from '../../src/sm/sql/reader.js';
import { SqlStateMachine } from '../../src/sm/sql/state-machine.js';
import { cmd, dumpDatabase, exec, Log, makeTempDir } from './sql-test-helpers.js';

const { dir: root, cleanup } = makeTempDir();
after(cleanup);
let dirCounter = 0;

function open(options: Parameters<typeof SqlStateMachine.open>[1] = {}) {
  const dir = join(root, `sm${dirCounter++}`);
  const sm = SqlStateMachine.open(dir, options);
  after(() => sm.close());
  return { sm, dir };
}

/** `rows` KiB of data (2000 → ~600 pages), so copies take many steps. */
function bulk(log: Log, rows = 2000) {
  return log.entries(
    cmd(exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)')),
    cmd(
      exec(
        'WITH RECURSIVE s (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s LIMIT ?) INSERT INTO t (v) SELECT randomblob(1000) FROM s',
        [rows],
      ),
    ),
  );
}

describe('snapshot and restore', () => {
  test('round trip: a restored replica equals the source and continues from its index', async () => {
    const a = open();
    const log = new Log(4);
    assert.ok(a.sm.applyBatch(bulk(log, 100)).every((r) => r.ok));
    a.sm.applyBatch([log.entry(null, new Uint8Array([1, 2]))]);
    const snapshotPath = join(root, 'roundtrip.snap');
    const info = await a.sm.snapshot(snapshotPath);
    assert.deepEqual(
      { index: info.index, term: info.term, membership: info.membership },
      { index: 3, term: 4, membership: new Uint8Array([1, 2]) },
    );
    // A single self-contained file.
    assert.equal(existsSync(`${snapshotPath}-wal`), false);
    assert.equal(existsSync(`${snapshotPath}.partial`), false);

    const b = open();
    const other = new Log();
    b.sm.applyBatch(
      other.entries(cmd(exec('CREATE TABLE old (x)')), cmd(exec('INSERT INTO old VALUES (1)'))),
    );
    const reader = SqlReader.open(b.sm.path, { applied: b.sm.applied });
    after(() => reader.close());
    assert.equal(reader.query('SELECT count(*) AS n FROM old')[0]?.n, 1);

    const state = await b.sm.restore(snapshotPath);
    // The log clock comes with the state: the restored replica's commands never run earlier.
    assert.deepEqual(state, {
      index: 3,
      term: 4,
      membership: new Uint8Array([1, 2]),
      clockMs: a.sm.appliedState().clockMs,
    });
    assert.equal(b.sm.appliedIndex(), 3);
    assert.deepEqual(dumpDatabase(b.sm.path), dumpDatabase(a.sm.path));
    // The reader opened before the restore sees the new content.
    assert.equal(reader.query('SELECT count(*) AS n FROM t')[0]?.n, 100);
    assert.throws(() => reader.query('SELECT * FROM old'));

    const next = log.entries(cmd(exec('DELETE FROM t WHERE id > 10')));
    a.sm.applyBatch(next);
    b.sm.applyBatch(next);
    assert.deepEqual(dumpDatabase(b.sm.path), dumpDatabase(a.sm.path));
  });

  test('applies made while a snapshot copies are included, and its index says exactly which', async () => {
    const a = open({ snapshotPagesPerStep: 8 });
    const reference = open();
    const log = new Log();
    const initial = bulk(log);
    assert.ok(a.sm.applyBatch(initial).every((r) => r.ok));
    const later = Array.from({ length: 20 }, (_, i) =>
      log.entries(cmd(exec('INSERT INTO t (v) VALUES (?)', [`w${i}`]))),
    );
    const snapshotPath = join(root, 'concurrent.snap');
    const copying = a.sm.snapshot(snapshotPath);
    let appliedDuringCopy = 0;
    for (const entries of later) {
      // Let a copy step run between applies (bounded by later.length).
      await new Promise((resolve) => setImmediate(resolve));
      a.sm.applyBatch(entries);
      appliedDuringCopy++;
    }
    const info = await copying;
    assert.ok(appliedDuringCopy > 0);
    assert.ok(info.index >= initial.length && info.index <= log.last);
    // The snapshot holds exactly the entries up to info.index.
    reference.sm.applyBatch([...initial, ...later.flat()].filter((e) => e.index <= info.index));
    const restored = open();
    await restored.sm.restore(snapshotPath);
    assert.deepEqual(dumpDatabase(restored.sm.path), dumpDatabase(reference.sm.path));
  });

  test('a file that is not a snapshot is rejected and the database is unchanged', async () => {
    const a = open();
    const log = new Log();
    a.sm.applyBatch(log.entries(cmd(exec('CREATE TABLE keep (x)'))));
    const garbage = join(root, 'garbage.snap');
    writeFileSync(garbage, 'this is not a database'.repeat(400));
    const foreign = join(root, 'foreign.snap');
    const db = new Database(foreign);
    db.exec('CREATE TABLE x (a)');
    db.close();
    for (const path of [garbage, foreign, join(root, 'missing.snap')]) {
      await assert.rejects(
        a.sm.restore(path),
        (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_CORRUPTION',
      );
    }
    assert.equal(a.sm.appliedIndex(), 1);
    assert.ok('keep' in dumpDatabase(a.sm.path));
  });

  test('a crash in the middle of a restore leaves the previous database usable', async () => {
    const source = open();
    const sourceLog = new Log();
    assert.ok(source.sm.applyBatch(bulk(sourceLog)).every((r) => r.ok));
    const snapshotPath = join(root, 'crash.snap');
    await source.sm.snapshot(snapshotPath);

    const victimDir = join(root, 'victim');
    const victim = SqlStateMachine.open(victimDir);
    const log = new Log();
    victim.applyBatch(
      log.entries(cmd(exec('CREATE TABLE mine (x)')), cmd(exec('INSERT INTO mine VALUES (1), (2)'))),
    );
    const before = dumpDatabase(victim.path);
    victim.close();

    // A child process restores one page per step, says when it is half way, then hangs until killed.
    const stateMachineUrl = new URL('../../src/sm/sql/state-machine.ts', import.meta.url).href;
    const script = `
      const { SqlStateMachine } = await import(${JSON.stringify(stateMachineUrl)});
      const sm = SqlStateMachine.open(process.argv[1], {
        restorePagesPerStep: 1,
        onRestoreProgress: ({ totalPages, remainingPages }) => {
          if (remainingPages > 0 && remainingPages < totalPages / 2) {
            process.stdout.write('MID\\n');
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
          }
        },
      });
      await sm.restore(process.argv[2]);
      process.stdout.write('DONE\\n');`;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script, victimDir, snapshotPath],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child.once('exit', (code, signal) => resolve(signal ?? code)),
    );
    const said = await new Promise<string>((resolve) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('MID') || out.includes('DONE')) resolve(out);
      });
      child.once('exit', () => resolve(out));
    });
    assert.match(said, /MID/, stderr);
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');

    const reopened = SqlStateMachine.open(victimDir);
    after(() => reopened.close());
    assert.equal(reopened.appliedIndex(), 2);
    assert.deepEqual(dumpDatabase(reopened.path), before);
    const check = new Database(reopened.path, { readonly: true });
    assert.equal(check.pragma('integrity_check', { simple: true }), 'ok');
    check.close();
    // And the restore can simply be run again.
    await reopened.restore(snapshotPath);
    assert.deepEqual(dumpDatabase(reopened.path), dumpDatabase(source.sm.path));
  });
});
