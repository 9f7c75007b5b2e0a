/**
 * Reads and writes that never end (issue 9, items 5 and 6), on a one-node cluster in this
 * process: a remote read is interrupted at query_timeout_ms off the event loop, an embedded read
 * at its timeoutMs; with apply wedged by a long write, /health says so, a linearizable read
 * fails at its deadline and shutdown completes; a write whose cost has no bound is refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, type HiqliteClient, HiqliteError, start } from '../../src/index.js';
import type { NodeConfig } from '../../src/node/config/config.js';
import { interruptExtensionPath } from '../../src/sm/sql/interrupt.js';
import { freePorts } from '../support/free-ports.js';
import { nodeAndRemote } from '../support/one-node-config.js';

const SECRET_API = 'api-secret-for-tests-0123456789';
const ENDLESS_READ =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) AS n FROM c';
/** Bounded by its LIMIT (allowed with write_recursion_rows_max raised), but far longer than any test. */
const LONG_WRITE =
  'INSERT INTO t (v) SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 100000000000) SELECT x FROM c)';

function hasCode(code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof HiqliteError, `expected a HiqliteError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

/** Rejects when `p` has not settled within `ms`: a wait that is never kept fails the test. */
function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

async function health(api: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${api}/health`);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function oneNode(extra: Partial<NodeConfig>) {
  const root = mkdtempSync(join(tmpdir(), 'hq-runaway-'));
  const [raft, api] = (await freePorts(2)) as [number, number];
  const node = await start({
    nodeId: 1,
    nodes: [{ id: 1, addrRaft: `127.0.0.1:${raft}`, addrApi: `127.0.0.1:${api}` }],
    dataDir: join(root, 'data'),
    secretRaft: 'raft-secret-for-tests-0123456789',
    secretApi: SECRET_API,
    ...extra,
  });
  await node.waitUntilHealthy({ timeoutMs: 10_000 });
  return { node, api, root };
}

test('the interrupt extension is built (npm install runs scripts/build-native.mjs)', () => {
  assert.notEqual(interruptExtensionPath(), null);
});

describe('reads that never end', () => {
  let n: Awaited<ReturnType<typeof oneNode>>;
  let remote: HiqliteClient;
  before(async () => {
    // One read thread: a later read can only be served if the endless one was stopped. It starts
    // with the node (readThreadIdleMs 0), so that its start does not take the reads' 500 ms.
    n = await oneNode({ queryTimeoutMs: 500, readThreads: 1, readThreadIdleMs: 0 });
    remote = await connect({ nodes: [`127.0.0.1:${n.api}`], secretApi: SECRET_API });
    await n.node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)');
    await n.node.execute('INSERT INTO t (v) VALUES (1)');
  });
  after(async () => {
    await remote?.close();
    await n?.node.close();
    if (n !== undefined) rmSync(n.root, { recursive: true, force: true });
  });

  test('a remote read of an endless recursive CTE fails with HQL_TIMEOUT while the node keeps serving', async () => {
    const endless = remote.query(ENDLESS_READ);
    // The event loop is free meanwhile: /health answers, and so do embedded reads.
    const h = await health(n.api);
    assert.equal(h.status, 200);
    assert.deepEqual(await n.node.query('SELECT v FROM t'), [{ v: 1 }]);
    await assert.rejects(bounded(endless, 10_000, 'the endless read'), hasCode('HQL_TIMEOUT'));
    // The only read thread was freed: its statement was interrupted, not abandoned.
    assert.deepEqual(await remote.query('SELECT v FROM t'), [{ v: 1 }]);
  });

  test('the HTTP /query route has the same limit', async () => {
    const r = await bounded(
      fetch(`http://127.0.0.1:${n.api}/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-secret': SECRET_API },
        body: JSON.stringify({ sql: ENDLESS_READ }),
      }),
      10_000,
      'the endless HTTP read',
    );
    const body = (await r.json()) as { ok: boolean; error?: { code: string; message: string } };
    assert.equal(body.ok, false);
    assert.equal(body.error?.code, 'HQL_TIMEOUT');
    assert.doesNotMatch(body.error?.message ?? '', /\d\.\d+ ms/, 'whole milliseconds in messages');
    assert.deepEqual(await remote.query('SELECT v FROM t'), [{ v: 1 }]);
  });

  test('an embedded query with timeoutMs is interrupted; an AbortSignal cancels one', async () => {
    await assert.rejects(
      bounded(n.node.query(ENDLESS_READ, [], { timeoutMs: 200 }), 10_000, 'the embedded read'),
      hasCode('HQL_TIMEOUT'),
    );
    const ac = new AbortController();
    const cancelled = n.node.query(ENDLESS_READ, [], { timeoutMs: 60_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(bounded(cancelled, 10_000, 'the cancelled read'), hasCode('HQL_ABORTED'));
    assert.deepEqual(await n.node.query('SELECT v FROM t', [], { timeoutMs: 5_000 }), [{ v: 1 }]);
  });
});

describe('writes that never end', () => {
  test('a write whose cost has no bound is refused; one bounded by LIMIT runs', async () => {
    const n = await oneNode({});
    try {
      await n.node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)');
      await assert.rejects(
        bounded(
          n.node.execute(
            'INSERT INTO t (v) SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c)',
          ),
          10_000,
          'the unbounded write',
        ),
        hasCode('HQL_STATEMENT_NOT_ALLOWED'),
      );
      await n.node.execute(
        'INSERT INTO t (v) SELECT x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 3) SELECT x FROM c)',
      );
      assert.deepEqual(await n.node.query('SELECT count(*) AS n FROM t'), [{ n: 3 }]);
    } finally {
      await n.node.close();
      rmSync(n.root, { recursive: true, force: true });
    }
  });

  test('with apply wedged, /health reports it, a linearizable read fails at its deadline, shutdown completes', async () => {
    // A long write (not an endless one) needs its rows allowed: 10^11 is beyond the default.
    const n = await oneNode({
      applyStallMs: 300,
      readTimeoutMs: 500,
      shutdownTimeoutMs: 500,
      writeRecursionRowsMax: 1_000_000_000_000,
    });
    let closed = false;
    try {
      await n.node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)');
      const wedged = n.node.execute(LONG_WRITE).catch((e: unknown) => e);
      let h = await health(n.api);
      for (let i = 0; i < 100 && h.status === 200; i++) {
        await new Promise((r) => setTimeout(r, 50));
        h = await health(n.api);
      }
      assert.equal(h.status, 503);
      assert.match(String(h.body.error), /stuck/);
      await assert.rejects(
        bounded(
          n.node.query('SELECT 1 AS one', [], { consistency: 'linearizable' }),
          5_000,
          'the consistent read',
        ),
        hasCode('HQL_TIMEOUT'),
      );
      await bounded(n.node.close(), 10_000, 'shutdown');
      closed = true;
      assert.ok((await wedged) instanceof HiqliteError, 'the wedged write failed when the node shut down');
    } finally {
      if (!closed) await n.node.close();
      rmSync(n.root, { recursive: true, force: true });
    }
  });
});

describe('values without bound (sql_value_bytes_max)', () => {
  // A 4 MiB bound (the default is 32 MiB): the test's values stay small.
  const f = nodeAndRemote('hq-values-', { sqlValueBytesMax: 4 * 1024 * 1024 });
  const tooBig = (e: unknown) => {
    assert.ok(e instanceof HiqliteError, `expected a HiqliteError, got ${String(e)}`);
    assert.equal(e.code, 'HQL_SQL', e.message);
    assert.match(e.message, /too big: .*sql_value_bytes_max/);
    return true;
  };

  test('a short write that would make a huge value or row fails on every path, and the node keeps serving', async () => {
    await f.node.execute('CREATE TABLE v (id INTEGER PRIMARY KEY, b BLOB)');
    const attempts = [
      'INSERT INTO v (b) VALUES (zeroblob(300000000))',
      "INSERT INTO v (b) VALUES (printf('%.*c', 300000000, 'x'))",
      "INSERT INTO v (b) SELECT x FROM (WITH RECURSIVE d(x, n) AS (SELECT 'xxxxxxxx', 0 UNION ALL SELECT x || x, n + 1 FROM d LIMIT 26) SELECT x FROM d ORDER BY n DESC LIMIT 1)",
    ];
    for (const sql of attempts) {
      await assert.rejects(bounded(f.node.execute(sql), 10_000, sql), tooBig, sql);
      await assert.rejects(bounded(f.remote.execute(sql), 10_000, sql), tooBig, sql);
    }
    // Under the bound: stored and read back, by both clients.
    await f.remote.execute('INSERT INTO v (b) VALUES (zeroblob(3000000))');
    assert.deepEqual(await f.node.query('SELECT count(*) AS n, sum(length(b)) AS bytes FROM v'), [
      { n: 1, bytes: 3_000_000 },
    ]);
    assert.deepEqual(await f.remote.query('SELECT count(*) AS n FROM v'), [{ n: 1 }]);
  });

  test('a write whose returned rows pass the bound fails, unapplied, on every path (found through the console)', async () => {
    await f.node.execute('CREATE TABLE r (id INTEGER PRIMARY KEY, b BLOB)');
    // 100 rows of 64 KiB each: 6.4 MiB of RETURNING rows against the 4 MiB bound.
    const many =
      'INSERT INTO r (b) SELECT zeroblob(65536) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100) SELECT x FROM c) RETURNING b';
    const tooLarge = (e: unknown) => {
      assert.ok(e instanceof HiqliteError, `expected a HiqliteError, got ${String(e)}`);
      assert.equal(e.code, 'HQL_RESULT_TOO_LARGE', e.message);
      assert.equal(e.retryable, false);
      assert.match(e.message, /nothing of the command was applied/);
      return true;
    };
    await assert.rejects(bounded(f.node.executeReturning(many), 10_000, 'embedded'), tooLarge);
    await assert.rejects(bounded(f.remote.executeReturning(many), 10_000, 'remote'), tooLarge);
    const http = await fetch(`http://${f.cfg.nodes[0]!.addrApi}/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-secret': SECRET_API },
      body: JSON.stringify({ sql: many, returning: true }),
    });
    const body = (await http.json()) as { error?: { code?: string } };
    assert.equal(body.error?.code, 'HQL_RESULT_TOO_LARGE', JSON.stringify(body).slice(0, 300));
    assert.deepEqual(await f.node.query('SELECT count(*) AS n FROM r'), [{ n: 0 }]);
    // Not asked for, the rows are not kept: the write is applied.
    assert.equal((await f.remote.execute(many)).rowsAffected, 100);
    assert.deepEqual(await f.remote.query('SELECT count(*) AS n FROM r'), [{ n: 100 }]);
  });

  test('a read served for another process cannot make a huge value either', async () => {
    await assert.rejects(
      bounded(f.remote.query('SELECT length(zeroblob(300000000)) AS n'), 10_000, 'the read'),
      (e: unknown) => e instanceof HiqliteError && /too big/.test(e.message),
    );
    assert.deepEqual(await f.remote.query('SELECT 1 AS one'), [{ one: 1 }]);
  });
});
