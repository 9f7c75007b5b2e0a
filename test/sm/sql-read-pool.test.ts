import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HiqliteError } from '../../src/lib/errors.js';
import { ReadPool } from '../../src/sm/sql/read-pool.js';
import { SqlStateMachine } from '../../src/sm/sql/state-machine.js';
import { cmd, exec, Log, makeTempDir } from './sql-test-helpers.js';

/** Runs for many seconds (a count over 200 million generated rows). */
const LONG_READ =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 200000000) SELECT count(*) AS n FROM c';

/** Polls `check` every 20 ms, at most `ms`; the last answer. */
async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms && !check(); waited += 20) await sleep(20);
  return check();
}

describe('ReadPool threads start with reads and end when idle', () => {
  const { dir, cleanup } = makeTempDir();
  const sm = SqlStateMachine.open(dir);
  sm.applyBatch(
    new Log().entries(
      cmd(exec('CREATE TABLE t (id INTEGER PRIMARY KEY)')),
      cmd(exec('INSERT INTO t VALUES (1)')),
    ),
  );
  const pools: ReadPool[] = [];
  after(async () => {
    for (const p of pools) await p.close();
    sm.close();
    cleanup();
  });
  const open = async (threadIdleMs: number, threads = 2) => {
    const pool = await ReadPool.start({ dbPath: sm.path, threads, threadIdleMs });
    pools.push(pool);
    return pool;
  };
  const read = (pool: ReadPool) => pool.query('SELECT id FROM t', [], { timeoutMs: 30_000 });

  test('no thread runs before the first read; idle threads end after threadIdleMs but the last stays', async () => {
    const pool = await open(200);
    assert.equal(pool.stats().threads, 0);
    assert.deepEqual(await read(pool), [{ id: 1 }]);
    assert.equal(pool.stats().threads, 1);
    // Two reads at once while one thread is busy with the first: a second thread starts.
    const slow = pool.query(
      'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT count(*) AS n FROM c',
      [],
      { timeoutMs: 30_000 },
    );
    const more = Array.from({ length: 4 }, () => read(pool));
    assert.ok(await eventually(() => pool.stats().threads === 2, 10_000), 'a second thread started');
    await Promise.all([slow, ...more]);
    // After threadIdleMs without reads the second thread ends; the last one stays, ready.
    assert.ok(await eventually(() => pool.stats().threads === 1, 10_000), 'the idle thread ended');
    await sleep(600);
    assert.equal(pool.stats().threads, 1, 'the last thread stays');
    assert.equal(pool.stats().starting, 0);
    assert.deepEqual(await read(pool), [{ id: 1 }]);
    assert.equal(pool.stats().starting, 0, 'the read after a quiet spell did not wait for a thread to start');
  });

  test('close() while a thread is starting stops that thread too, and reads fail with HQL_CLOSED', async () => {
    const pool = await ReadPool.start({ dbPath: sm.path, threads: 2, threadIdleMs: 200 });
    const outcome = read(pool).then(
      () => null,
      (e: unknown) => e,
    );
    assert.equal(pool.stats().starting, 1);
    await pool.close();
    const e = await outcome;
    assert.ok(e instanceof HiqliteError && e.code === 'HQL_CLOSED', String(e));
    assert.equal(pool.stats().threads, 0);
    assert.equal(pool.stats().starting, 0, 'no thread is left starting');
  });

  test('concurrent reads start at most `threads` threads and all complete', async () => {
    const pool = await open(60_000, 2);
    const rows = await Promise.all(Array.from({ length: 20 }, () => read(pool)));
    for (const r of rows) assert.deepEqual(r, [{ id: 1 }]);
    // A second thread may still be starting: the first can serve every read before it is up.
    const s = pool.stats();
    assert.ok(s.threads >= 1 && s.threads + s.starting <= 2, `threads ${s.threads}, starting ${s.starting}`);
    assert.equal(s.queued, 0);
  });

  test('threadIdleMs 0: every thread starts with the pool and stays', async () => {
    const pool = await open(0, 2);
    assert.equal(pool.stats().threads, 2);
    assert.deepEqual(await read(pool), [{ id: 1 }]);
    await sleep(300);
    assert.equal(pool.stats().threads, 2);
  });

  test('when no thread can start, the waiting reads fail at once with its error', async () => {
    const pool = await ReadPool.start({ dbPath: `${dir}/missing/none.db`, threads: 2 });
    pools.push(pool);
    await assert.rejects(
      read(pool),
      (e: unknown) => e instanceof Error && !(e instanceof HiqliteError && e.code === 'HQL_TIMEOUT'),
    );
    assert.equal(pool.stats().threads, 0);
  });

  test('a read that needs more heap than its thread may use fails with HQL_RESULT_TOO_LARGE; the pool serves on', async () => {
    const pool = await ReadPool.start({
      dbPath: sm.path,
      threads: 1,
      threadIdleMs: 0,
      heap: { youngGenerationMb: 4, oldGenerationMaxMb: 64 },
    });
    pools.push(pool);
    // 300,000 rows with a 500-character string each: well over the thread's 64 MB.
    const huge = pool.query(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) SELECT x, printf('%0500d', x) AS s FROM c",
      [],
      { timeoutMs: 60_000 },
    );
    await assert.rejects(huge, (e: unknown) => {
      assert.ok(e instanceof HiqliteError, String(e));
      assert.equal(e.code, 'HQL_RESULT_TOO_LARGE', e.message);
      assert.equal(e.retryable, false);
      assert.match(e.message, /thread_old_generation_max_mb/);
      return true;
    });
    assert.deepEqual(await read(pool), [{ id: 1 }]);
  });

  test('parameters that cannot reach a read thread fail that read alone with HQL_INVALID_PARAMS', async () => {
    const pool = await open(0, 1);
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const bad = [Symbol('x'), () => 1, deep] as unknown as never[];
    const results = await Promise.allSettled([
      ...bad.map((p) => pool.query('SELECT ?', [p], { timeoutMs: 30_000 })),
      read(pool),
    ]);
    for (const r of results.slice(0, 3)) {
      assert.equal(r.status, 'rejected');
      const e = (r as PromiseRejectedResult).reason;
      assert.ok(e instanceof HiqliteError, String(e));
      assert.equal(e.code, 'HQL_INVALID_PARAMS', e.message);
    }
    assert.deepEqual((results[3] as PromiseFulfilledResult<unknown>).value, [{ id: 1 }]);
    assert.deepEqual(await read(pool), [{ id: 1 }]);
  });

  test('reads given up while queued leave the queue: a pool whose thread was busy takes new reads after (read_queue_max)', async () => {
    // Found from outside: a flood of reads whose answers were never read left a node refusing
    // every local read with "more than 1024 reads waiting", for good, while nothing waited.
    const pool = await ReadPool.start({ dbPath: sm.path, threads: 1, threadIdleMs: 0, queueMax: 3 });
    pools.push(pool);
    const busy = pool.query(LONG_READ, [], { timeoutMs: 1_500 });
    busy.catch(() => {});
    await eventually(() => pool.stats().busy === 1, 5_000);
    const queued = Array.from({ length: 3 }, () => pool.query('SELECT id FROM t', [], { timeoutMs: 50 }));
    for (const q of queued)
      await assert.rejects(q, (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_TIMEOUT');
    assert.equal(pool.stats().queued, 0, 'the given-up reads left the queue');
    // Nothing waits: a new read is queued behind the busy one, not refused, and is served.
    assert.deepEqual(await pool.query('SELECT id FROM t', [], { timeoutMs: 30_000 }), [{ id: 1 }]);
    await assert.rejects(busy, (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_TIMEOUT');
  });

  test('threadIdleMs is validated', async () => {
    await assert.rejects(
      ReadPool.start({ dbPath: sm.path, threadIdleMs: -1 }),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_INVALID_CONFIG',
    );
  });
});

describe('ReadPool close() right after a read that timed out', () => {
  test('does not abort the process (an interrupted statement and terminate() at once)', async () => {
    // The interrupted statement returns to its thread's JavaScript, which builds the error; a
    // terminate() at that moment aborted the whole process ("FATAL ERROR: v8::ToLocalChecked
    // Empty MaybeLocal", seen in CI when a node closed right after a read hit its limit; every
    // run of this loop aborted before the fix). A crash fails this file.
    const { dir, cleanup } = makeTempDir();
    const sm = SqlStateMachine.open(dir);
    try {
      for (let i = 0; i < 60; i++) {
        const pool = await ReadPool.start({ dbPath: sm.path, threads: 1, threadIdleMs: 0 });
        await assert.rejects(pool.query(LONG_READ, [], { timeoutMs: 20 + (i % 7) * 3 }), (e: unknown) => {
          assert.ok(e instanceof HiqliteError && e.code === 'HQL_TIMEOUT', String(e));
          return true;
        });
        await sleep(i % 3);
        await pool.close();
      }
    } finally {
      sm.close();
      cleanup();
    }
  });
});
