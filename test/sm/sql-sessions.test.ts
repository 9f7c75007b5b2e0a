import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
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
    const { apply, count, path } = setup({ sessionTtlMs: 1000 });
    apply(bump('c1', 1, NOW_MS));
    apply(bump('c2', 1, NOW_MS + 500));
    // Another client's command at a later entry time sweeps c1 but not c2.
    apply(cmd(exec('SELECT 1'), { nowMs: NOW_MS + 1200 }));
    const clients = () => (dumpDatabase(path())._hq_sessions as unknown[][]).map((r) => r[0]);
    assert.deepEqual(clients(), ['c2']);
    // c1's retry is now a new command: exactly-once holds only within the TTL.
    apply(bump('c1', 1, NOW_MS + 1300));
    assert.equal(count(), 3n);
  });

  test('at sessionsMax the least recently seen session is evicted', () => {
    const { apply, path } = setup({ sessionsMax: 2 });
    apply(bump('a', 1, NOW_MS), bump('b', 1, NOW_MS + 1), bump('a', 2, NOW_MS + 2), bump('c', 1, NOW_MS + 3));
    const clients = (dumpDatabase(path())._hq_sessions as unknown[][]).map((r) => r[0]);
    assert.deepEqual(clients, ['a', 'c']);
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
});
