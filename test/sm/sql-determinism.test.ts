import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { decodeCommand } from '../../src/sm/sql/command.js';
import { prepareForProposal } from '../../src/sm/sql/determinism.js';
import { SqlError } from '../../src/sm/sql/errors.js';
import { SqlReader } from '../../src/sm/sql/reader.js';
import type { CommandResult } from '../../src/sm/sql/result.js';
import { SqlStateMachine } from '../../src/sm/sql/state-machine.js';
import { cmd, dumpDatabase, exec, Log, makeTempDir, NOW_MS } from './sql-test-helpers.js';

function openReplica() {
  const { dir, cleanup } = makeTempDir();
  const sm = SqlStateMachine.open(dir);
  after(() => {
    sm.close();
    cleanup();
  });
  return sm;
}

/** Replica A applies `commands` in one batch, replica B one entry per batch. */
function applyOnTwoReplicas(commands: readonly Uint8Array[]) {
  const a = openReplica();
  const b = openReplica();
  const logA = new Log();
  const logB = new Log();
  const resultsA = a.applyBatch(logA.entries(...commands));
  const resultsB = commands.flatMap((c) => b.applyBatch(logB.entries(c)));
  return { a, b, logA, resultsA, resultsB };
}

const LATER_MS = NOW_MS + 36 * 3600 * 1000 + 456; // 2024-05-07 19:08:09.579

/** Non-deterministic SQL in every form the overrides must catch. */
const COMMANDS = [
  cmd(
    exec(`CREATE TABLE ev (
      id INTEGER PRIMARY KEY,
      r INTEGER, rb BLOB,
      created TEXT DEFAULT CURRENT_TIMESTAMP,
      created2 TEXT DEFAULT (datetime('now')),
      d TEXT, jd REAL, ue INTEGER, f TEXT, lir INTEGER, ch INTEGER
    )`),
  ),
  cmd(exec('CREATE TABLE audit (ev_id INTEGER, at TEXT)')),
  cmd(
    exec(
      "CREATE TRIGGER ev_audit AFTER INSERT ON ev BEGIN INSERT INTO audit VALUES (new.id, strftime('%s', 'now')); END",
    ),
  ),
  cmd(
    exec(
      `INSERT INTO ev (r, rb, d, jd, ue, f, lir, ch)
       VALUES (random(), randomblob(8), datetime('now'), julianday('now'), unixepoch(), strftime('%Y-%m-%d %H:%M:%f', 'now'),
               last_insert_rowid(), changes())`,
    ),
    { seed: 7 },
  ),
  cmd(exec('INSERT INTO ev (r) SELECT random() FROM (VALUES (1), (2), (3))'), { seed: 8, nowMs: LATER_MS }),
  cmd(
    exec("UPDATE ev SET d = CURRENT_TIMESTAMP || '|' || CURRENT_DATE || '|' || CURRENT_TIME WHERE id = 2"),
    {
      nowMs: LATER_MS,
    },
  ),
  // 'now' arriving as a bound parameter, in upper case, and with a modifier.
  cmd(exec("UPDATE ev SET f = datetime(?, '+1 day') WHERE id = 3", ['NOW'])),
  cmd(exec('INSERT INTO ev (r, d) VALUES (abs(random()) % 1000, date())'), { seed: 9 }),
];

describe('determinism', () => {
  const a = openReplica();
  const b = openReplica();
  const logA = new Log();
  const logB = new Log();
  // Replica A applies everything in one batch, replica B one entry per batch.
  const resultsA = a.applyBatch(logA.entries(...COMMANDS));
  const resultsB: CommandResult[] = COMMANDS.flatMap((c) => b.applyBatch(logB.entries(c)));

  test('two replicas applying the same entries end with identical databases', () => {
    assert.ok(
      resultsA.every((r) => r.ok),
      JSON.stringify(resultsA.filter((r) => !r.ok)),
    );
    assert.deepEqual(resultsA, resultsB);
    assert.deepEqual(dumpDatabase(a.path), dumpDatabase(b.path));
  });

  test("time comes from the entry's nowMs, not the local clock", () => {
    const rows = dumpDatabase(a.path).ev as unknown[][];
    const first = rows[0] as unknown[];
    // id, r, rb, created, created2, d, jd, ue, f, lir, ch
    assert.equal(first[3], '2024-05-06 07:08:09');
    assert.equal(first[4], '2024-05-06 07:08:09');
    assert.equal(first[5], '2024-05-06 07:08:09');
    assert.equal(first[6], NOW_MS / 86_400_000 + 2440587.5);
    assert.equal(first[7], BigInt(Math.floor(NOW_MS / 1000)));
    assert.equal(first[8], '2024-05-06 07:08:09.123');
    assert.equal((rows[1] as unknown[])[3], '2024-05-07 19:08:09');
    assert.equal((rows[1] as unknown[])[5], '2024-05-07 19:08:09|2024-05-07|19:08:09');
    // The last two commands carry NOW_MS, older than LATER_MS already applied: the state
    // machine's clock does not go back, they run at LATER_MS.
    assert.equal((rows[2] as unknown[])[8], '2024-05-08 19:08:09');
    assert.equal((rows[4] as unknown[])[5], '2024-05-07');
    const audit = dumpDatabase(a.path).audit as unknown[][];
    assert.deepEqual(audit[0], [1n, String(Math.floor(NOW_MS / 1000))]);
  });

  // Found from outside: SQLite reads a time value of 'subsec' or 'subsecond' as the current
  // time too, and each replica read its own clock (unixepoch('subsec') differed by a few ms).
  test("a time value of 'subsec' or 'subsecond' is the entry's time, with its milliseconds", () => {
    const r = openReplica();
    const log = new Log();
    const results = r.applyBatch(
      log.entries(
        cmd(exec('CREATE TABLE s (a, b, c, d, e, f, g)')),
        cmd(
          exec(
            "INSERT INTO s VALUES (unixepoch('subsec'), unixepoch('SUBSECOND'), datetime('subsec'), time('Subsec', '+1 hour'), julianday('subsec'), strftime('%f', 'subsec'), timediff('subsec', 'now'))",
          ),
        ),
      ),
    );
    assert.ok(
      results.every((x) => x.ok),
      JSON.stringify(results),
    );
    const row = (dumpDatabase(r.path).s as unknown[][])[0];
    assert.deepEqual(row, [
      NOW_MS / 1000,
      NOW_MS / 1000,
      '2024-05-06 07:08:09.123',
      '08:08:09.123',
      NOW_MS / 86_400_000 + 2440587.5,
      '09.123',
      '+0000-00-00 00:00:00.000',
    ]);
  });

  test('last_insert_rowid() and changes() start at 0 in every command', () => {
    const first = (dumpDatabase(a.path).ev as unknown[][])[0] as unknown[];
    assert.equal(first[9], 0n);
    assert.equal(first[10], 0n);
  });

  test('random() and randomblob() follow the seed: same seed same values, rows differ', () => {
    const rows = dumpDatabase(a.path).ev as unknown[][];
    const randoms = rows.slice(1, 4).map((r) => r[1]);
    assert.equal(new Set(randoms).size, 3);
    assert.equal((rows[0] as unknown[])[2] instanceof Uint8Array, true);
    const c = openReplica();
    const d = openReplica();
    const sameSeed = [
      cmd(exec('CREATE TABLE x (v)')),
      cmd(exec('INSERT INTO x VALUES (random())'), { seed: 7 }),
    ];
    c.applyBatch(new Log().entries(...sameSeed));
    d.applyBatch(new Log().entries(sameSeed[0]!, cmd(exec('INSERT INTO x VALUES (random())'), { seed: 8 })));
    assert.notDeepEqual(dumpDatabase(c.path).x, dumpDatabase(d.path).x);
  });

  test('reads on a local connection keep the real clock', () => {
    const reader = SqlReader.open(a.path);
    try {
      const year = Number((reader.query("SELECT strftime('%Y', 'now') AS y")[0] as { y: string }).y);
      assert.equal(year, new Date().getUTCFullYear());
    } finally {
      reader.close();
    }
  });

  test('what cannot be made deterministic fails with HQL_NONDETERMINISTIC', () => {
    const sm = openReplica();
    const log = new Log();
    const results = sm.applyBatch(
      log.entries(
        cmd(exec("SELECT datetime('now', 'localtime')")),
        cmd(exec('SELECT datetime(?, ?)', ['now', 'localtime'])),
        cmd(exec("SELECT datetime('2024-01-01', ' UTC ')")),
        cmd(exec('SELECT total_changes()')),
        cmd(exec('CREATE TABLE t (a)')),
        cmd(exec('SELECT sqlite_offset(a) FROM t')),
      ),
    );
    assert.deepEqual(
      results.map((r) => (r.ok ? 'ok' : r.error.code)),
      [
        'HQL_NONDETERMINISTIC',
        'HQL_NONDETERMINISTIC',
        'HQL_NONDETERMINISTIC',
        'HQL_NONDETERMINISTIC',
        'ok',
        'HQL_NONDETERMINISTIC',
      ],
    );
  });
});

describe('the largest rowid', () => {
  const MAX = 9223372036854775807n;
  const COMMANDS_AT_MAX = [
    cmd(exec('CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT)')),
    cmd(exec('CREATE TABLE log (n INTEGER)')),
    cmd(exec('CREATE TABLE viaTrigger (x TEXT)')),
    cmd(
      exec(
        "CREATE TRIGGER r_log AFTER INSERT ON log BEGIN INSERT INTO viaTrigger (rowid, x) VALUES (?1, 'max'); INSERT INTO viaTrigger (x) VALUES ('next'); END".replace(
          '?1',
          String(MAX),
        ),
      ),
    ),
    // Reaching the largest rowid and asking SQLite for one more in the same statement; storing it.
    cmd(exec('INSERT INTO r (id, v) VALUES (?, ?), (NULL, ?)', [MAX, 'max', 'next'])),
    cmd(exec('INSERT INTO r (id, v) VALUES (?, ?)', [MAX, 'max'])),
    // An UPDATE moves a row there: every insert after it is refused, with or without a rowid.
    cmd(exec('INSERT INTO r (id, v) VALUES (?, ?)', [5, 'five'])),
    cmd(exec('UPDATE r SET id = ? WHERE id = 5', [MAX])),
    cmd(exec('INSERT INTO r (v) VALUES (?)', ['next'])),
    cmd(exec('INSERT INTO r (id, v) VALUES (?, ?)', [6, 'explicit'])),
    // Through a trigger's sub-program.
    cmd(exec('INSERT INTO log (n) VALUES (1)')),
    // The row renumbered: inserts go on.
    cmd(exec('UPDATE r SET id = 7 WHERE id = ?', [MAX])),
    cmd(exec('INSERT INTO r (v) VALUES (?)', ['after'])),
  ];

  test('an insert that would take a random rowid is refused alike on every replica, and undone', () => {
    const { a, b, resultsA, resultsB } = applyOnTwoReplicas(COMMANDS_AT_MAX);
    assert.deepEqual(
      resultsA.map((r) => (r.ok ? 'ok' : r.error.code)),
      [
        'ok',
        'ok',
        'ok',
        'ok',
        'HQL_NONDETERMINISTIC',
        'HQL_NONDETERMINISTIC',
        'ok',
        'ok',
        'HQL_NONDETERMINISTIC',
        'HQL_NONDETERMINISTIC',
        'HQL_NONDETERMINISTIC',
        'ok',
        'ok',
      ],
    );
    const refusal = resultsA[4]!;
    assert.ok(
      !refusal.ok && /'r' holds the largest rowid/.test(refusal.error.message),
      JSON.stringify(refusal),
    );
    assert.deepEqual(resultsA, resultsB);
    const dump = dumpDatabase(a.path);
    assert.deepEqual(dump, dumpDatabase(b.path));
    assert.deepEqual(dump.r, [
      [7n, 'five'],
      [8n, 'after'],
    ]);
    assert.deepEqual(dump.log, [], "the trigger's statement was undone with its insert");
    assert.deepEqual(dump.viaTrigger, []);
  });
});

describe('the largest rowid in a batch (each statement on its own)', () => {
  const MAX = 9223372036854775807n;
  const batch = (sql: string) => cmd({ type: 'batch', sql });
  const COMMANDS_BATCH = [
    cmd(exec('CREATE TABLE rb (v TEXT)')),
    cmd(exec('CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)')),
    batch(
      `INSERT INTO rb (v) VALUES ('a'); INSERT INTO rb (rowid, v) VALUES (${MAX}, 'b'); INSERT INTO rb (v) VALUES ('c')`,
    ),
    batch(
      `UPDATE rb SET rowid = ${MAX} WHERE v = 'a'; INSERT INTO rb (v) VALUES ('d'); INSERT INTO a (v) VALUES ('e')`,
    ),
    cmd(exec('INSERT INTO a (id, v) VALUES (?, ?)', [MAX, 'max'])),
    batch("INSERT INTO a (v) VALUES ('f'); INSERT INTO a (id, v) VALUES (5, 'g')"),
  ];

  test('a refused statement is undone, the others of its batch apply, alike on every replica', () => {
    const { a, b, resultsA, resultsB } = applyOnTwoReplicas(COMMANDS_BATCH);
    const codes = resultsA.map((r) =>
      r.ok && r.type === 'batch'
        ? r.value.map((x) => (x.ok ? 'ok' : x.error.code))
        : r.ok
          ? 'ok'
          : r.error.code,
    );
    assert.deepEqual(codes, [
      'ok',
      'ok',
      ['ok', 'HQL_NONDETERMINISTIC', 'ok'],
      ['ok', 'HQL_NONDETERMINISTIC', 'ok'],
      'ok',
      // SQLite rolls the whole transaction back on this SQLITE_FULL: the command fails as a whole.
      'HQL_SQL',
    ]);
    assert.deepEqual(resultsA, resultsB);
    const dump = dumpDatabase(a.path);
    assert.deepEqual(dump, dumpDatabase(b.path));
    assert.deepEqual(
      (dump.rb as unknown[][]).map((r) => r[r.length - 1]).sort(),
      ['a', 'c'],
      "'b' and 'd' were refused and are not stored",
    );
  });
});

describe('an exhausted AUTOINCREMENT', () => {
  const MAX = 9223372036854775807n;
  const COMMANDS_FULL = [
    cmd(exec('CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)')),
    cmd(exec('CREATE TABLE b (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)')),
    cmd(exec('INSERT INTO a (v) VALUES (?)', ['one'])),
    cmd(exec('UPDATE a SET id = ? WHERE id = 1', [MAX])),
    cmd(exec('INSERT INTO a (v) VALUES (?)', ['next'])),
    cmd(exec("INSERT INTO b (v) VALUES ('one')")),
    cmd(exec("UPDATE sqlite_sequence SET seq = ? WHERE name = 'b'", [MAX])),
    cmd(exec("INSERT INTO b (v) VALUES ('next')")),
    cmd(exec("INSERT INTO b (id, v) VALUES (7, 'explicit')")),
  ];

  test('is a result alike on every replica (HQL_SQL), not a full disk that stops the node', () => {
    const { a, b, logA, resultsA, resultsB } = applyOnTwoReplicas(COMMANDS_FULL);
    assert.deepEqual(
      resultsA.map((r) => (r.ok ? 'ok' : r.error.code)),
      ['ok', 'ok', 'ok', 'ok', 'HQL_SQL', 'ok', 'ok', 'HQL_SQL', 'ok'],
    );
    const refusal = resultsA[4]!;
    assert.ok(
      !refusal.ok && /AUTOINCREMENT of 'a' is exhausted/.test(refusal.error.message),
      JSON.stringify(refusal),
    );
    assert.deepEqual(resultsA, resultsB);
    assert.deepEqual(dumpDatabase(a.path), dumpDatabase(b.path));
    // The node goes on applying.
    const next = a.applyBatch(logA.entries(cmd(exec("INSERT INTO b (id, v) VALUES (8, 'later')"))));
    assert.ok(next[0]!.ok);
  });
});

describe('prepareForProposal', () => {
  test("stamps the proposer's clock and seed into the entry", () => {
    const bytes = prepareForProposal(exec('INSERT INTO t VALUES (?)', [true]), {
      nowMs: NOW_MS + 0.7,
      seed: 2 ** 32 + 5,
      session: { clientId: 'c1', seq: 3 },
    });
    assert.deepEqual(decodeCommand(bytes), {
      nowMs: NOW_MS,
      seed: 5,
      session: { clientId: 'c1', seq: 3 },
      command: { type: 'execute', sql: 'INSERT INTO t VALUES (?)', params: [1], returning: false },
    });
  });

  test('rejects statements that can never be deterministic or allowed, before a log entry is spent', () => {
    const cases: [string, string][] = [
      ["INSERT INTO t VALUES (datetime('now', 'localtime'))", 'HQL_NONDETERMINISTIC'],
      ['SELECT total_changes()', 'HQL_NONDETERMINISTIC'],
      ['BEGIN IMMEDIATE', 'HQL_STATEMENT_NOT_ALLOWED'],
      ['PRAGMA journal_mode = DELETE', 'HQL_STATEMENT_NOT_ALLOWED'],
    ];
    for (const [sql, code] of cases) {
      assert.throws(
        () => prepareForProposal(exec(sql), { nowMs: NOW_MS, seed: 1 }),
        (e: unknown) => e instanceof SqlError && e.sqlCode === code,
        sql,
      );
    }
    // A string that merely contains the word is fine.
    prepareForProposal(exec("INSERT INTO t VALUES ('localtime', 'BEGIN')"), { nowMs: NOW_MS, seed: 1 });
    assert.throws(
      () =>
        prepareForProposal(
          {
            type: 'migrate',
            migrations: [
              { id: 2, name: 'b', sql: 'SELECT 1', checksum: 'x' },
              { id: 1, name: 'a', sql: 'SELECT 1', checksum: 'y' },
            ],
          },
          { nowMs: NOW_MS, seed: 1 },
        ),
      (e: unknown) => e instanceof SqlError && e.sqlCode === 'HQL_MIGRATION_ORDER',
    );
  });
});

describe("the state machine's clock", () => {
  test('never goes back: not across entries, not across a restart, not in a snapshot', async () => {
    const { dir, cleanup } = makeTempDir();
    after(cleanup);
    const log = new Log();
    let sm = SqlStateMachine.open(dir);
    sm.applyBatch(
      log.entries(
        cmd(exec('CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT)')),
        cmd(exec("INSERT INTO t (at) VALUES (datetime('now'))"), { nowMs: LATER_MS }),
      ),
    );
    sm.close();
    sm = SqlStateMachine.open(dir);
    try {
      // Proposed by a node whose clock is 36 h behind the previous leader's.
      sm.applyBatch(log.entries(cmd(exec("INSERT INTO t (at) VALUES (datetime('now'))"), { nowMs: NOW_MS })));
      const snapshotPath = `${dir}/snap.db`;
      await sm.snapshot(snapshotPath);
      const restored = makeTempDir();
      after(restored.cleanup);
      const other = SqlStateMachine.open(restored.dir);
      try {
        await other.restore(snapshotPath);
        other.applyBatch(
          log.entries(cmd(exec("INSERT INTO t (at) VALUES (datetime('now'))"), { nowMs: NOW_MS })),
        );
        assert.deepEqual(dumpDatabase(other.path).t, [
          [1n, '2024-05-07 19:08:09'],
          [2n, '2024-05-07 19:08:09'],
          [3n, '2024-05-07 19:08:09'],
        ]);
      } finally {
        other.close();
      }
    } finally {
      sm.close();
    }
  });
});
