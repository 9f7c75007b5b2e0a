import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Prng } from '../../src/lib/prng.js';
import type { CommandResult } from '../../src/sm/sql/result.js';
import { SqlStateMachine, type SqlStateMachineOptions } from '../../src/sm/sql/state-machine.js';
import { cmd, dumpDatabase, exec, Log, makeTempDir, NOW_MS } from './sql-test-helpers.js';

function setup(options: SqlStateMachineOptions = {}) {
  const { dir, cleanup } = makeTempDir();
  let sm = SqlStateMachine.open(dir, options);
  const log = new Log();
  after(() => {
    sm.close();
    cleanup();
  });
  const apply = (...d: Uint8Array[]): CommandResult[] => sm.applyBatch(log.entries(...d));
  apply(cmd(exec('CREATE TABLE counter (n INTEGER)')), cmd(exec('INSERT INTO counter VALUES (0)')));
  const count = () => (dumpDatabase(sm.path).counter as bigint[][])[0]?.[0];
  const reopen = () => {
    sm.close();
    sm = SqlStateMachine.open(dir, options);
  };
  return { apply, count, reopen, path: () => sm.path };
}

const bump = (clientId: string, seq: number, nowMs = NOW_MS) =>
  cmd(exec("UPDATE counter SET n = n + 1 RETURNING n, x'00ff' AS b, 9007199254740993 AS big", [], true), {
    session: { clientId, seq },
    nowMs,
  });

/** bump() stamped with a protection window (the proposer's session_protect_ms). */
const bumpProtected = (clientId: string, seq: number, nowMs: number, protectMs = 1000) =>
  cmd(exec("UPDATE counter SET n = n + 1 RETURNING n, x'00ff' AS b, 9007199254740993 AS big", [], true), {
    session: { clientId, seq, protectMs },
    nowMs,
  });

describe('sessions', () => {
  test('a retried command is applied once and answered with the original result', () => {
    const { apply, count, reopen } = setup();
    const [first] = apply(bump('c1', 1));
    const [again] = apply(bump('c1', 1));
    assert.equal(count(), 1n);
    assert.deepEqual(again, first);
    assert.ok(first?.ok && first.type === 'execute');
    assert.deepEqual(first.value.rows, [{ n: 1, b: new Uint8Array([0, 255]), big: 9007199254740993n }]);
    // Also after a restart, in a later batch.
    reopen();
    assert.deepEqual(apply(bump('c1', 1))[0], first);
    assert.equal(count(), 1n);
    apply(bump('c1', 2));
    assert.equal(count(), 2n);
  });

  test('duplicates inside one batch are deduplicated too', () => {
    const { apply, count } = setup();
    const [a, b] = apply(bump('c1', 1), bump('c1', 1));
    assert.deepEqual(a, b);
    assert.equal(count(), 1n);
  });

  test('a failed command is remembered as failed', () => {
    const { apply, path } = setup();
    apply(cmd(exec('CREATE TABLE u (v UNIQUE)')), cmd(exec('INSERT INTO u VALUES (1)')));
    const insert = cmd(exec('INSERT INTO u VALUES (1)'), { session: { clientId: 'c', seq: 5 } });
    const [first] = apply(insert);
    assert.equal(first?.ok, false);
    apply(cmd(exec('DELETE FROM u')));
    // Would succeed now, but it is the same write: the caller gets the original outcome.
    assert.deepEqual(apply(insert)[0], first);
    assert.deepEqual(dumpDatabase(path()).u, []);
  });

  test('an older seq than the last applied is HQL_SESSION_STALE and not applied', () => {
    const { apply, count } = setup();
    apply(bump('c1', 5));
    const [stale] = apply(bump('c1', 4));
    assert.equal(stale?.ok === false && stale.error.code, 'HQL_SESSION_STALE');
    assert.equal(count(), 1n);
  });

  test('sessions idle longer than the TTL (in entry time) expire', () => {
    const { apply, count } = setup({ sessionTtlMs: 1000 });
    apply(bump('c1', 1, NOW_MS));
    apply(bump('c2', 1, NOW_MS + 500));
    // Within the TTL a retry is a duplicate …
    apply(bump('c1', 1, NOW_MS + 900));
    assert.equal(count(), 2n);
    // … (which counted as activity: c1 was last seen at +900) …
    apply(bump('c2', 2, NOW_MS + 1800));
    apply(bump('c1', 1, NOW_MS + 1850));
    assert.equal(count(), 3n);
    // … and after it the retry is a new command: exactly-once holds only within the TTL.
    apply(bump('c1', 1, NOW_MS + 1850 + 1001));
    assert.equal(count(), 4n);
  });

  test('session time never goes back: a proposer with a late clock does not revive a session', () => {
    const { apply, count, reopen } = setup({ sessionTtlMs: 1000 });
    apply(bump('c1', 1, NOW_MS));
    apply(bump('c2', 1, NOW_MS + 5000));
    // A new leader whose clock is 4.5 s behind: c1 expired at +5000 and stays expired.
    apply(bump('c1', 1, NOW_MS + 500));
    assert.equal(count(), 3n);
    // The session time survives a restart (it is the newest last_seen_ms in the table).
    apply(bump('c3', 1, NOW_MS + 9000));
    reopen();
    apply(bump('c2', 1, NOW_MS + 5000));
    assert.equal(count(), 5n, 'c2 expired at +9000, before the restart');
  });

  test('expired sessions do not count towards sessionsMax', () => {
    const { apply, count, path } = setup({ sessionTtlMs: 1000, sessionsMax: 2 });
    apply(bump('a', 1, NOW_MS), bump('b', 1, NOW_MS + 10));
    // a and b have expired: c and d take their places, nobody live is evicted.
    apply(bump('c', 1, NOW_MS + 5000), bump('d', 1, NOW_MS + 5001));
    const clients = (dumpDatabase(path())._hq_sessions as unknown[][]).map((r) => r[0]);
    assert.deepEqual(clients, ['c', 'd']);
    apply(bump('c', 1, NOW_MS + 5002));
    assert.equal(count(), 4n, "c's retry is a duplicate");
  });

  test('at sessionsMax the least recently seen session is evicted', () => {
    const { apply, path } = setup({ sessionsMax: 2 });
    apply(bump('a', 1, NOW_MS), bump('b', 1, NOW_MS + 1), bump('a', 2, NOW_MS + 2), bump('c', 1, NOW_MS + 3));
    const clients = (dumpDatabase(path())._hq_sessions as unknown[][]).map((r) => r[0]);
    assert.deepEqual(clients, ['a', 'c']);
  });

  test('a full table evicts the least recently seen tenth of the bound at once', () => {
    const { apply, path } = setup({ sessionsMax: 20 });
    const names = Array.from({ length: 21 }, (_, i) => `s${String(i).padStart(2, '0')}`);
    apply(...names.map((n, i) => bump(n, 1, NOW_MS + i)));
    const clients = (dumpDatabase(path())._hq_sessions as unknown[][]).map((r) => r[0]);
    // s20 arrived at 20 sessions: 1 + 20/10 = 3 evicted, the three least recently seen.
    assert.deepEqual(clients, names.slice(3));
  });

  test('a session within its protection window is never evicted: a new session is refused, not applied', () => {
    // Found from outside: with the table full, a write retried after a leader change found its
    // session evicted for newer ones and was applied a second time.
    const { apply, count, path } = setup({ sessionsMax: 2 });
    const [first] = apply(bumpProtected('a', 1, NOW_MS), bumpProtected('b', 1, NOW_MS + 10));
    const [refused] = apply(bumpProtected('c', 1, NOW_MS + 500));
    assert.equal(refused?.ok === false && refused.error.code, 'HQL_SESSIONS_FULL');
    assert.ok(refused?.ok === false && /not started and its write not applied/.test(refused.error.message));
    assert.equal(count(), 2n, 'the refused command was not applied');
    // Even many new sessions later, a's retry is a duplicate.
    for (let i = 0; i < 5; i++) apply(bumpProtected(`n${i}`, 1, NOW_MS + 550 + i));
    assert.deepEqual(apply(bumpProtected('a', 1, NOW_MS + 600))[0], first);
    assert.equal(count(), 2n);
    // Past b's window b makes room; a (seen at +600) stays.
    assert.equal(apply(bumpProtected('c', 1, NOW_MS + 1200))[0]?.ok, true);
    const clients = (dumpDatabase(path())._hq_sessions as unknown[][]).map((r) => r[0]);
    assert.deepEqual(clients, ['a', 'c']);
    // A refused command's retry, once there is room, is applied (it never was).
    assert.equal(apply(bumpProtected('n0', 1, NOW_MS + 2700))[0]?.ok, true);
    assert.equal(count(), 4n);
  });

  test("each session is protected for its own write's retries: a short one goes before an older long one", () => {
    const { apply, count, path } = setup({ sessionsMax: 2 });
    apply(bumpProtected('long', 1, NOW_MS, 10_000), bumpProtected('short', 1, NOW_MS + 100, 1000));
    assert.equal(apply(bumpProtected('new', 1, NOW_MS + 1200))[0]?.ok, true);
    const clients = (dumpDatabase(path())._hq_sessions as unknown[][]).map((r) => r[0]);
    assert.deepEqual(clients, ['long', 'new']);
    apply(bumpProtected('long', 1, NOW_MS + 1300));
    assert.equal(count(), 3n, "long's retry was a duplicate");
  });

  test('a database made before sessions kept their protection gets the column at open, its sessions unprotected', () => {
    const { dir, cleanup } = makeTempDir();
    after(cleanup);
    let sm = SqlStateMachine.open(dir);
    const path = sm.path;
    sm.close();
    const db = new Database(path);
    db.exec('ALTER TABLE _hq_sessions DROP COLUMN protect_ms');
    db.exec("INSERT INTO _hq_sessions (client_id, seq, result, last_seen_ms) VALUES ('old', 1, NULL, 0)");
    db.close();
    sm = SqlStateMachine.open(dir, { sessionsMax: 1 });
    after(() => sm.close());
    const log = new Log();
    const [r] = sm.applyBatch(log.entries(bumpProtected('c', 1, NOW_MS)));
    assert.equal(r?.ok === false && r.error.code, 'HQL_SQL', 'no counter table here: the command ran');
    const rows = dumpDatabase(path)._hq_sessions as unknown[][];
    assert.deepEqual(
      rows.map((row) => [row[0], row[4]]),
      [['c', 1000n]],
      'the old session had no protection: it made room',
    );
  });

  test('without the stamp (entries written before it) a full table evicts as it did', () => {
    const { apply, count } = setup({ sessionsMax: 2 });
    apply(bump('a', 1, NOW_MS), bump('b', 1, NOW_MS + 10), bump('c', 1, NOW_MS + 20));
    apply(bump('a', 1, NOW_MS + 30));
    assert.equal(count(), 4n, 'a was evicted for c, so its retry applied again');
  });

  test('a batch rolled back by a statement keeps sessions exact', () => {
    const commands = () => {
      const rollback = cmd(exec('INSERT OR ROLLBACK INTO counter (rowid, n) VALUES (1, 0)'), {
        session: { clientId: 'r', seq: 1 },
        nowMs: NOW_MS + 2,
      });
      return [
        bump('a', 1, NOW_MS),
        bump('b', 1, NOW_MS + 1),
        rollback,
        bump('a', 1, NOW_MS + 3),
        bump('r', 1),
      ];
    };
    const batched = setup();
    const single = setup();
    const rb = batched.apply(...commands());
    const rs = commands().flatMap((c) => single.apply(c));
    assert.deepEqual(rb, rs);
    assert.equal(rs[2]?.ok === false && rs[2].error.code, 'HQL_CONSTRAINT');
    assert.deepEqual(rs[4], rs[2], "r's retry gets the recorded failure");
    assert.deepEqual(rs[3], rs[0], "a's retry is a duplicate");
    assert.deepEqual(dumpDatabase(batched.path()), dumpDatabase(single.path()));
  });

  test('a result too large to keep makes a duplicate HQL_SESSION_RESULT_UNAVAILABLE', () => {
    const { apply, count } = setup({ sessionResultBytesMax: 16 });
    assert.equal(apply(bump('c1', 1))[0]?.ok, true);
    const [again] = apply(bump('c1', 1));
    assert.equal(again?.ok === false && again.error.code, 'HQL_SESSION_RESULT_UNAVAILABLE');
    assert.equal(count(), 1n);
  });

  test('session state is identical whatever the batch boundaries', () => {
    const commands = [
      bump('a', 1),
      bump('b', 1, NOW_MS + 10),
      bump('a', 1),
      bump('a', 2, NOW_MS + 20),
      bump('b', 0),
    ];
    const x = setup();
    const y = setup();
    const rx = x.apply(...commands);
    const ry = commands.flatMap((c) => y.apply(c));
    assert.deepEqual(rx, ry);
    assert.deepEqual(dumpDatabase(x.path()), dumpDatabase(y.path()));
  });

  test('with expiry, eviction and a clock that jumps back, any batching gives the same results and tables', () => {
    const prng = new Prng(7);
    const random = () => prng.next();
    const commands: Uint8Array[] = [];
    const seqs = new Map<string, number>();
    let now = NOW_MS;
    for (let i = 0; i < 300; i++) {
      now += Math.floor(random() * 400) - 100; // mostly forward, sometimes back
      const client = `c${Math.floor(random() * 6)}`;
      const last = seqs.get(client) ?? 0;
      const r = random();
      const seq = r < 0.2 ? last : r < 0.3 ? Math.max(0, last - 1) : last + 1;
      seqs.set(client, Math.max(last, seq));
      // Most with a protection, shorter or longer than the TTL (a full table then refuses).
      const p = random();
      commands.push(
        p < 0.3 ? bump(client, seq, now) : bumpProtected(client, seq, now, p < 0.8 ? 1000 : 2500),
      );
    }
    const options = { sessionTtlMs: 1500, sessionsMax: 4 };
    const whole = setup(options);
    const single = setup(options);
    const chunked = setup(options);
    // Reopened every few commands: what it keeps in memory (the sessions, the bound below which
    // a full table has no room) is rebuilt from the table, and must decide as the others.
    const reopened = setup(options);
    const rReopened: CommandResult[] = [];
    commands.forEach((c, i) => {
      if (i % 7 === 6) reopened.reopen();
      rReopened.push(...reopened.apply(c));
    });
    const rWhole = whole.apply(...commands);
    const rSingle = commands.flatMap((c) => single.apply(c));
    const rChunked: CommandResult[] = [];
    for (let i = 0; i < commands.length; ) {
      const n = 1 + Math.floor(random() * 20);
      rChunked.push(...chunked.apply(...commands.slice(i, i + n)));
      i += n;
    }
    assert.deepEqual(rSingle, rWhole);
    assert.deepEqual(rChunked, rWhole);
    assert.deepEqual(rReopened, rWhole);
    assert.deepEqual(dumpDatabase(reopened.path()), dumpDatabase(whole.path()));
    assert.deepEqual(dumpDatabase(single.path()), dumpDatabase(whole.path()));
    assert.deepEqual(dumpDatabase(chunked.path()), dumpDatabase(whole.path()));
    // The run exercised what it is about.
    const codes = rWhole.map((r) => (r.ok ? 'ok' : r.error.code));
    assert.ok(codes.includes('HQL_SESSION_STALE'));
    assert.ok(codes.includes('HQL_SESSIONS_FULL'));
    assert.ok((dumpDatabase(whole.path())._hq_sessions as unknown[]).length <= 4);
  });
});
