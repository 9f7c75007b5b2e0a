/**
 * The largest string, blob or row a write may make (`sql_value_bytes_max`): the proposer stamps
 * it into the entry and every replica's writer applies it, so a 60-byte statement cannot make a
 * row of hundreds of MB (`zeroblob`, a `x || x` doubling, `printf` widths) on every node, and
 * every replica decides alike. Entries without the stamp (written before it existed) apply as
 * they did, under SQLite's own bound.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { HiqliteError } from '../../src/lib/errors.js';
import { adoptClientCommand, CLIENT_SESSION_PREFIX } from '../../src/sm/sql/client-proposal.js';
import {
  decodeCommand,
  encodeCommand,
  SQLITE_LENGTH_MAX,
  VALUE_BYTES_MAX_MIN,
} from '../../src/sm/sql/command.js';
import { prepareForProposal } from '../../src/sm/sql/determinism.js';
import { SqlError } from '../../src/sm/sql/errors.js';
import { SqlReader } from '../../src/sm/sql/reader.js';
import type { CommandResult } from '../../src/sm/sql/result.js';
import { SqlStateMachine } from '../../src/sm/sql/state-machine.js';
import { cmd, dumpDatabase, exec, Log, makeTempDir, replicaPair } from './sql-test-helpers.js';

const LIMIT = VALUE_BYTES_MAX_MIN; // 2 MiB
const OVER = LIMIT + 1024;

function tooBig(r: CommandResult | undefined): boolean {
  return r !== undefined && !r.ok && r.error.code === 'HQL_SQL' && r.error.sqliteCode === 'SQLITE_TOOBIG';
}

/** The writes of the tests: each alone in the log, so each one's result is its own. */
const ATTEMPTS = {
  zeroblob: `INSERT INTO t (b) VALUES (zeroblob(${OVER}))`,
  randomblob: `INSERT INTO t (b) VALUES (randomblob(${OVER}))`,
  doubling: `INSERT INTO t (b) SELECT x FROM (WITH RECURSIVE d(x, n) AS (SELECT 'xxxxxxxx', 0 UNION ALL SELECT x || x, n + 1 FROM d LIMIT 30) SELECT x FROM d ORDER BY n DESC LIMIT 1)`,
  printf: `INSERT INTO t (b) VALUES (printf('%.*c', ${OVER}, 'x'))`,
  row: `INSERT INTO t (b, c) VALUES (zeroblob(${LIMIT / 2 + 1024}), zeroblob(${LIMIT / 2 + 1024}))`,
} as const;

describe('sql_value_bytes_max at apply', () => {
  const { a, b, log, apply } = replicaPair();
  apply(cmd(exec('CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB, c BLOB)')));

  test('every way of making a value or a row over the stamp fails with SQLITE_TOOBIG, on every replica', () => {
    for (const [what, sql] of Object.entries(ATTEMPTS)) {
      const r = apply(cmd(exec(sql), { valueBytesMax: LIMIT }));
      assert.ok(tooBig(r), `${what}: ${JSON.stringify(r)}`);
      assert.match(!r.ok ? r.error.message : '', /sql_value_bytes_max/);
    }
    assert.equal(a.appliedIndex(), b.appliedIndex());
    assert.deepEqual(dumpDatabase(a.path), dumpDatabase(b.path));
    const rows = apply(cmd(exec('SELECT count(*) AS n FROM t', [], true), { valueBytesMax: LIMIT }));
    assert.ok(rows.ok && rows.type === 'execute', JSON.stringify(rows));
    assert.deepEqual(rows.value.rows, [{ n: 0 }], 'nothing was stored');
  });

  test('a bound parameter over the stamp fails alike', () => {
    const r = apply(
      cmd(exec('INSERT INTO t (b) VALUES (?)', [new Uint8Array(OVER)]), { valueBytesMax: LIMIT }),
    );
    // better-sqlite3 refuses the binding before SQLite runs anything: a parameter error.
    assert.ok(!r.ok && r.error.code === 'HQL_INVALID_PARAMS', JSON.stringify(r));
    assert.match(!r.ok ? r.error.message : '', /too big: .*sql_value_bytes_max/);
  });

  test('values under the stamp are stored; an entry without a stamp (an older one) runs under SQLite’s bound', () => {
    assert.ok(
      apply(cmd(exec(`INSERT INTO t (b) VALUES (zeroblob(${LIMIT - 1024}))`), { valueBytesMax: LIMIT })).ok,
    );
    // Changing stamps from one entry to the next: the writer follows each entry's own.
    assert.ok(apply(cmd(exec(ATTEMPTS.zeroblob))).ok, 'no stamp: SQLite’s own bound');
    assert.ok(apply(cmd(exec(ATTEMPTS.zeroblob), { valueBytesMax: LIMIT * 2 })).ok);
    assert.ok(tooBig(apply(cmd(exec(ATTEMPTS.zeroblob), { valueBytesMax: LIMIT }))));
    assert.ok(apply(cmd(exec(ATTEMPTS.zeroblob), { valueBytesMax: SQLITE_LENGTH_MAX })).ok);
    // A write that rewrites a row over its own stamp fails too (the row is read and made again).
    assert.ok(tooBig(apply(cmd(exec('UPDATE t SET c = 1'), { valueBytesMax: LIMIT }))));
    assert.deepEqual(dumpDatabase(a.path), dumpDatabase(b.path));
  });

  test('an entry without a stamp runs under the bound the connection opened with, after any stamp, and after a restart', () => {
    // zeroblob(n) is not allocated until stored: length() of one tests the bound without memory.
    const justOver = (n: number) => cmd(exec(`INSERT INTO t (c) VALUES (length(zeroblob(${n})))`));
    const OPEN_BOUND = 536_870_888; // what better-sqlite3 sets: V8's longest string
    assert.ok(tooBig(apply(justOver(OPEN_BOUND + 1))), 'unstamped: the connection’s bound');
    assert.ok(apply(justOver(OPEN_BOUND)).ok);
    assert.ok(
      apply(cmd(exec(`SELECT length(zeroblob(${OPEN_BOUND + 1}))`), { valueBytesMax: SQLITE_LENGTH_MAX })).ok,
    );
    // After a larger stamp, an unstamped entry is back under the connection's own bound, as on a
    // replica that restarted in between.
    assert.ok(tooBig(apply(justOver(OPEN_BOUND + 1))));
  });

  test('several commands of one batch, each with its own stamp', () => {
    const entries = log.entries(
      cmd(exec(ATTEMPTS.zeroblob), { valueBytesMax: LIMIT }),
      cmd(exec(ATTEMPTS.zeroblob)),
      cmd(exec(ATTEMPTS.zeroblob), { valueBytesMax: LIMIT }),
    );
    const ra = a.applyBatch(entries);
    const rb = b.applyBatch(entries);
    assert.deepEqual(ra, rb);
    assert.deepEqual(
      ra.map((r) => r.ok),
      [false, true, false],
    );
    assert.ok(tooBig(ra[0]) && tooBig(ra[2]));
  });

  test('a replica restarted in between applies the next entries alike (the limit is per command, not per connection)', () => {
    const path = a.path;
    a.close();
    const again = SqlStateMachine.open(path.slice(0, path.lastIndexOf('/')));
    try {
      const [entry] = log.entries(cmd(exec(ATTEMPTS.zeroblob), { valueBytesMax: LIMIT }));
      assert.ok(tooBig(again.applyBatch([entry!])[0]));
      assert.ok(tooBig(b.applyBatch([entry!])[0]));
    } finally {
      again.close();
    }
  });
});

test('a state machine that cannot set the limit stops applying (fatal) rather than apply what the others refuse', () => {
  const { dir, cleanup } = makeTempDir();
  const sm = SqlStateMachine.open(dir, { interruptible: false });
  try {
    const log = new Log();
    sm.applyBatch(log.entries(cmd(exec('CREATE TABLE t (b BLOB)'))));
    assert.throws(
      () => sm.applyBatch(log.entries(cmd(exec(ATTEMPTS.zeroblob), { valueBytesMax: LIMIT }))),
      /sql_value_bytes_max/,
    );
    assert.equal(sm.appliedIndex(), 1, 'the entry was not applied');
  } finally {
    sm.close();
    cleanup();
  }
});

describe('the stamp in the entry', () => {
  const command = exec('INSERT INTO t VALUES (1)');

  test('the proposer stamps its setting; a client’s stamp is replaced by the node’s', () => {
    const data = prepareForProposal(command, { nowMs: 1, seed: 1, valueBytesMax: LIMIT });
    assert.equal(decodeCommand(data).valueBytesMax, LIMIT);
    const client = encodeCommand({
      command,
      nowMs: 1,
      seed: 1,
      session: { clientId: `${CLIENT_SESSION_PREFIX}x-0`, seq: 1 },
      valueBytesMax: SQLITE_LENGTH_MAX,
    });
    const adopted = adoptClientCommand(client, { nowMs: 2, valueBytesMax: LIMIT * 4 });
    assert.equal(decodeCommand(adopted.data).valueBytesMax, LIMIT * 4);
    const none = adoptClientCommand(client, { nowMs: 2 });
    assert.equal(decodeCommand(none.data).valueBytesMax, undefined);
  });

  test('an entry without a stamp decodes (older entries); a stamp out of range is a malformed command', () => {
    assert.equal(decodeCommand(encodeCommand({ command, nowMs: 1, seed: 1 })).valueBytesMax, undefined);
    for (const bad of [0, LIMIT - 1, SQLITE_LENGTH_MAX + 1, 1.5, -1]) {
      assert.throws(
        () => encodeCommand({ command, nowMs: 1, seed: 1, valueBytesMax: bad }),
        (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_INVALID_PARAMS',
        String(bad),
      );
    }
  });
});

describe('a read thread’s reader with valueBytesMax', () => {
  const { dir, cleanup } = makeTempDir();
  const sm = SqlStateMachine.open(dir);
  const log = new Log();
  sm.applyBatch(log.entries(cmd(exec('CREATE TABLE t (b BLOB)')), cmd(exec(ATTEMPTS.zeroblob))));
  const reader = SqlReader.open(sm.path, { applied: sm.applied, interruptible: true, valueBytesMax: LIMIT });
  after(() => {
    reader.close();
    sm.close();
    cleanup();
  });

  test('refuses to make or read a value over it, and keeps serving', () => {
    for (const sql of [
      `SELECT zeroblob(${OVER}) AS z`,
      `SELECT printf('%.*c', ${OVER}, 'x') AS z`,
      'SELECT b FROM t',
    ]) {
      assert.throws(
        () => reader.query(sql),
        (e: unknown) =>
          e instanceof SqlError && e.sqliteCode === 'SQLITE_TOOBIG' && /sql_value_bytes_max/.test(e.message),
        sql,
      );
    }
    assert.deepEqual(reader.query('SELECT length(b) AS n FROM t'), [{ n: OVER }]);
  });

  test('needs the extension: a reader that cannot set it refuses to open', () => {
    assert.throws(
      () => SqlReader.open(sm.path, { applied: sm.applied, valueBytesMax: LIMIT }),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_INVALID_CONFIG',
    );
  });
});
