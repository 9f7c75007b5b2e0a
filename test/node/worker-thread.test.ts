/**
 * `start()` runs the node on a worker thread of its own (issue 11, part 2); the application's
 * side keeps the client API as it was: typed errors keep their class across the thread boundary,
 * local reads see the node's writes (minIndex waits on the shared applied index), the node's log
 * records go through the application's logger, start can be cancelled and its listen errors are
 * explained, and a node thread that dies fails every call in flight with a typed error.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { nodeThreadOf } from '../../src/client/worker-node.js';
import { ConfigError, HiqliteError, type HiqliteNode, SqlError, start } from '../../src/index.js';
import type { NodeConfig } from '../../src/node/config/config.js';
import { loopbackMembers } from '../support/free-ports.js';
import { within } from '../support/within.js';

const SECRETS = {
  secretRaft: 'raft-secret-for-tests-0123456789',
  secretApi: 'api-secret-for-tests-0123456789',
};

function hasCode(code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof HiqliteError, `expected a HiqliteError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

async function config(root: string, nodes = 1, extra: Partial<NodeConfig> = {}): Promise<NodeConfig> {
  return {
    nodeId: 1,
    nodes: await loopbackMembers(nodes),
    dataDir: join(root, 'data'),
    ...SECRETS,
    ...extra,
  };
}

describe('a node on its own thread', () => {
  let root: string;
  let node: HiqliteNode;
  const records: Array<Record<string, unknown>> = [];
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'hq-worker-'));
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n'))
          if (line !== '') records.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    node = await start(await config(root, 1, { readTimeoutMs: 1_000 }), {
      logger: pino({ level: 'info' }, sink),
    });
    assert.notEqual(nodeThreadOf(node), null, 'the default is a worker thread');
    await node.waitUntilHealthy({ timeoutMs: 10_000 });
    await node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB)');
  });
  after(async () => {
    await node?.close();
    rmSync(root, { recursive: true, force: true });
  });

  test("the node's log records are written through the application's logger, at its level", () => {
    const started = records.find((r) => r.msg === 'node started');
    assert.ok(started !== undefined, JSON.stringify(records.slice(0, 5)));
    assert.equal(started.node, 1);
    assert.equal(started.level, 30);
    assert.ok(records.every((r) => typeof r.level === 'number' && r.level >= 30));
  });

  test('a local read sees the write it follows, with its values as written', async () => {
    const bytes = new Uint8Array([0, 1, 254, 255]);
    const w = await node.execute('INSERT INTO t (id, v, b) VALUES (?, ?, ?)', [1, 'one', bytes]);
    assert.deepEqual(await node.query('SELECT id, v, b FROM t WHERE id = 1', [], { minIndex: w.logIndex }), [
      { id: 1, v: 'one', b: bytes },
    ]);
    assert.deepEqual(await node.queryConsistent('SELECT v FROM t WHERE id = 1'), [{ v: 'one' }]);
    assert.deepEqual(await node.query('SELECT v FROM t WHERE id = 1', [], { timeoutMs: 5_000 }), [
      { v: 'one' },
    ]);
    assert.equal(node.isLeader(), true);
    const m = await node.metrics();
    assert.ok(m.appliedIndex >= w.logIndex);
  });

  test("a read waiting for an index beyond the cluster's log is refused", async () => {
    const m = await node.metrics();
    await assert.rejects(
      node.query('SELECT 1', [], { minIndex: m.appliedIndex + 1_000_000 }),
      hasCode('HQL_INVALID_PARAMS'),
    );
  });

  test('errors keep their class, code, retryable and info across the thread boundary', async () => {
    await node.execute('INSERT INTO t (id, v) VALUES (2, ?)', ['two']);
    const err = await node.execute('INSERT INTO t (id, v) VALUES (2, ?)', ['again']).catch((e: unknown) => e);
    assert.ok(err instanceof SqlError, String(err));
    assert.equal(err.code, 'HQL_CONSTRAINT');
    assert.equal(err.retryable, false);
    assert.equal(err.info.sqliteCode, 'SQLITE_CONSTRAINT_PRIMARYKEY');
    // Thrown on the node's thread (its read pool), rebuilt here.
    const timeout = await node
      .query('SELECT count(*) FROM t', [], { timeoutMs: Number.NaN })
      .catch((e: unknown) => e);
    assert.ok(timeout instanceof HiqliteError && timeout.code === 'HQL_INVALID_PARAMS', String(timeout));
    const batch = await node.batch(
      "INSERT INTO t (id, v) VALUES (3, 'x'); INSERT INTO t (id, v) VALUES (3, 'y');",
    );
    assert.ok(batch[1] instanceof SqlError);
  });

  test('calls made in one turn of the event loop all complete', async () => {
    const writes = Array.from({ length: 200 }, (_, i) =>
      node.execute('INSERT INTO t (id, v) VALUES (?, ?)', [100 + i, `v${i}`]),
    );
    const results = await Promise.all(writes);
    const last = Math.max(...results.map((r) => r.logIndex));
    const rows = await node.query('SELECT count(*) AS n FROM t WHERE id >= 100', [], { minIndex: last });
    assert.deepEqual(rows, [{ n: 200 }]);
  });
});

test('a config problem is a ConfigError, thrown before any thread starts', async () => {
  await assert.rejects(
    start({ nodeId: 1, nodes: [], dataDir: 'x', ...SECRETS }),
    (e: unknown) => e instanceof ConfigError,
  );
});

test("a port that is taken is explained, as on the caller's thread", async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-worker-'));
  const cfg = await config(root);
  const [raft] = (cfg.nodes[0] as { addrRaft: string }).addrRaft.split(':').slice(1);
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(Number(raft), '127.0.0.1', r));
  try {
    const e = await start(cfg).catch((err: unknown) => err);
    assert.ok(e instanceof HiqliteError, String(e));
    assert.equal(e.code, 'HQL_IO');
    assert.match(e.message, /cannot listen on 127\.0\.0\.1:\d+, its Raft address/);
    // Not "another process" only: it may be a node this very process started (found from outside).
    assert.match(e.message, /the port is in use \(by another process, or by a node this process started/);
  } finally {
    await new Promise((r) => blocker.close(r));
    rmSync(root, { recursive: true, force: true });
  }
});

test('StartOptions.signal cancels a start that waits for the other nodes; the data directory is unlocked', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-worker-'));
  try {
    // Node 1 of 3 with the others down waits for proof that no cluster exists.
    const cfg = await config(root, 3);
    const ac = new AbortController();
    const starting = start(cfg, { signal: ac.signal, joinTimeoutMs: 60_000 });
    setTimeout(() => ac.abort(), 300);
    await assert.rejects(starting, hasCode('HQL_ABORTED'));
    const alone = await start({ ...cfg, nodes: cfg.nodes.slice(0, 1) });
    await alone.close();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a node thread that dies fails the calls in flight with typed errors, calls onFatal and reports unhealthy', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-worker-'));
  let fatal: Error | null = null;
  const node = await start(await config(root), {
    onFatal: (e) => {
      fatal = e;
    },
  });
  try {
    await node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    const thread = nodeThreadOf(node);
    assert.ok(thread !== null);
    const inFlight = Array.from({ length: 20 }, (_, i) => node.execute('INSERT INTO t (id) VALUES (?)', [i]));
    const settled = Promise.allSettled(inFlight);
    await thread.terminate();
    for (const r of await settled) {
      if (r.status === 'fulfilled') continue; // answered before the thread ended
      assert.ok(r.reason instanceof HiqliteError);
      assert.equal(r.reason.code, 'HQL_OUTCOME_UNKNOWN');
    }
    await assert.rejects(node.execute('INSERT INTO t (id) VALUES (100)'), hasCode('HQL_UNAVAILABLE'));
    await assert.rejects(node.query('SELECT 1'), hasCode('HQL_UNAVAILABLE'));
    await assert.rejects(node.waitUntilHealthy({ timeoutMs: 1_000 }), hasCode('HQL_UNAVAILABLE'));
    assert.equal(node.isLeader(), false);
    // The node stopped serving: onFatal is called (on this thread), as for a disk failure.
    assert.ok(fatal !== null && (fatal as HiqliteError).code === 'HQL_UNAVAILABLE', String(fatal));
  } finally {
    await node.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('a call holding what cannot cross threads fails alone with HQL_INVALID_PARAMS; the others of its turn complete', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-worker-'));
  const node = await start(await config(root));
  try {
    await node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v)');
    // One turn: good calls around bad ones (a symbol, a function, an object holding a function).
    const calls = [
      node.execute('INSERT INTO t (id, v) VALUES (1, ?)', ['a']),
      node.execute('INSERT INTO t (id, v) VALUES (2, ?)', [Symbol('x') as unknown as string]),
      node.query('SELECT ?', [(() => 1) as unknown as string]),
      node.execute('INSERT INTO t (id, v) VALUES (3, ?)', ['c']),
      node.query('SELECT ?', [{ f: () => 1 } as unknown as string]),
    ];
    const [a, sym, fn, c, nested] = await Promise.allSettled(calls);
    assert.equal(a?.status, 'fulfilled');
    assert.equal(c?.status, 'fulfilled');
    for (const r of [sym, fn, nested]) {
      assert.equal(r?.status, 'rejected');
      const e = (r as PromiseRejectedResult).reason;
      assert.ok(e instanceof HiqliteError, String(e));
      assert.equal(e.code, 'HQL_INVALID_PARAMS', e.message);
    }
    assert.deepEqual(await node.query('SELECT id FROM t ORDER BY id'), [{ id: 1 }, { id: 3 }]);
  } finally {
    await node.close();
    rmSync(root, { recursive: true, force: true });
  }
});

for (const thread of ['worker', 'main'] as const) {
  test(`a call writes and reads what was passed at the call, not what its arguments became (thread '${thread}')`, async () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-worker-'));
    const node = await start(await config(root), { thread });
    try {
      await node.execute('CREATE TABLE b (v BLOB, s TEXT)');
      // The caller reuses its Buffer and its parameter array right after the calls, before they
      // settle (they leave for the node's thread only at the end of the turn).
      const buf = Buffer.from('aaaa');
      const params: Array<Uint8Array | string> = [Buffer.from('cccc'), 'y'];
      const first = node.execute('INSERT INTO b VALUES (?, ?)', [buf, 'x']);
      const second = node.execute('INSERT INTO b VALUES (?, ?)', params);
      const txn = node.txn([['INSERT INTO b VALUES (?, ?)', params]]);
      const read = node.query('SELECT count(*) AS n FROM b WHERE s = ?', params.slice(1), {
        timeoutMs: 5_000,
      });
      const readParams = ['y'];
      const read2 = node.query('SELECT ? AS p', readParams, { timeoutMs: 5_000 });
      buf.fill(0x62);
      params[1] = 'mutated';
      readParams[0] = 'mutated';
      await Promise.all([first, second, txn, read]);
      assert.deepEqual((await read2)[0], { p: 'y' });
      const rows = await node.query<{ v: Uint8Array; s: string }>('SELECT v, s FROM b ORDER BY rowid');
      assert.deepEqual(
        rows.map((r) => `${Buffer.from(r.v).toString()} ${r.s}`),
        ['aaaa x', 'cccc y', 'cccc y'],
      );
    } finally {
      await node.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
}

test("one turn's packed writes keep their order with the other calls, and their TTL", async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-worker-'));
  const node = await start(await config(root));
  try {
    const c = node.cache<string>('order');
    // One turn: small writes cross flat, a delete and a counter as objects, in between; the node
    // applies them in the order they were called.
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < 20; i++) {
      calls.push(c.put(`k${i}`, `first ${i}`));
      if (i % 2 === 0) calls.push(c.delete(`k${i}`));
      calls.push(node.counter('order').add('n', 1n));
      if (i % 3 === 0) calls.push(c.put(`k${i}`, `second ${i}`, { ttlMs: 3_600_000 }));
      calls.push(c.put(`t${i}`, 'short-lived', { ttlMs: 1 }));
    }
    await Promise.all(calls);
    for (let i = 0; i < 20; i++) {
      const expected = i % 3 === 0 ? `second ${i}` : i % 2 === 0 ? null : `first ${i}`;
      assert.equal(await c.get(`k${i}`, { consistency: 'linearizable' }), expected, `k${i}`);
    }
    assert.equal(await node.counter('order').get('n'), 20n);
    // What each kind of write answers, sent together in one turn (packed, keyed and as objects).
    const n = node.counter('answers');
    const [stored, notStored, previous, removed, absent, deleted, notDeleted, set, added, counterDeleted] =
      await Promise.all([
        c.putIfAbsent('fresh', 'one'),
        c.putIfAbsent('fresh', 'two'),
        c.replace('fresh', 'three'),
        c.getRemove('fresh'),
        c.getRemove('fresh'),
        c.delete('k1'),
        c.delete('never'),
        n.set('x', 40n),
        n.add('x', 2n),
        n.delete('x'),
      ]);
    assert.deepEqual(
      { stored, notStored, previous, removed, absent, deleted, notDeleted, set, added, counterDeleted },
      {
        stored: true,
        notStored: false,
        previous: 'one',
        removed: 'three',
        absent: null,
        deleted: true,
        notDeleted: false,
        set: undefined,
        added: 42n,
        counterDeleted: true,
      },
    );
    assert.equal(await n.get('x'), null);
    // A TTL of 1 ms ends in log time: gone once the log moved on (the next writes).
    await new Promise((r) => setTimeout(r, 20));
    await c.put('later', 'x');
    for (let i = 0; i < 20; i++) assert.equal(await c.get(`t${i}`), null, `t${i} expired`);
  } finally {
    await node.close();
    rmSync(root, { recursive: true, force: true });
  }
});

/** One turn of SQL writes of every shape, answered as the caller sees them (values or errors). */
async function sqlWritesOfOneTurn(node: HiqliteNode): Promise<unknown[]> {
  await node.execute('CREATE TABLE w (id INTEGER PRIMARY KEY, v, u TEXT UNIQUE)');
  const big = 2n ** 62n;
  const calls: Array<Promise<unknown>> = [
    node.execute('INSERT INTO w (v) VALUES (?)', ['a']),
    node.execute('INSERT INTO w (id, v) VALUES (?, ?)', [big, 'bigint rowid']),
    node.execute('INSERT INTO w (v) VALUES (:v)', { v: 'named' }),
    node.execute('INSERT INTO w (v, u) VALUES (?, ?)', [new Uint8Array([1, 2, 3]), 'same']),
    node.execute('INSERT INTO w (v, u) VALUES (?, ?)', [true, 'same']),
    node.executeReturning('INSERT INTO w (v) VALUES (?) RETURNING id, v', [1.5]),
    node.execute('INSERT INTO w (v) VALUES (?)', [new Date(Date.UTC(2026, 0, 2))]),
    node.execute('INSERT INTO w (v) VALUES (?)', [undefined as unknown as string]),
    node.execute('INSERT INTO w (v) VALUES (?)', [null, 'one too many']),
    node.execute('UPDATE w SET v = ? WHERE id < ?', ['updated', 3]),
    node.execute('DELETE FROM w WHERE id = -1', []),
    node.txn([['INSERT INTO w (v) VALUES (?)', ['txn']]]),
    node.execute('INSERT INTO nowhere VALUES (1)'),
  ];
  const settled = await Promise.allSettled(calls);
  const answers: unknown[] = settled.map((r) =>
    r.status === 'fulfilled'
      ? { value: r.value }
      : { code: (r.reason as HiqliteError).code, retryable: (r.reason as HiqliteError).retryable },
  );
  answers.push({ rows: await node.query('SELECT id, v, u FROM w ORDER BY id') });
  return answers;
}

test("one turn's SQL writes, positional ones crossing flat, answer as on the application's thread", async () => {
  const answersOf = async (thread: 'worker' | 'main') => {
    const root = mkdtempSync(join(tmpdir(), 'hq-worker-'));
    const node = await start(await config(root), { thread });
    try {
      return await sqlWritesOfOneTurn(node);
    } finally {
      await node.close();
      rmSync(root, { recursive: true, force: true });
    }
  };
  const [worker, main] = [await answersOf('worker'), await answersOf('main')];
  // The log indexes are the same on both: one node, the same writes from an empty log.
  assert.deepEqual(worker, main);
  // And the answers are the ones expected, not the same mistake twice (in call order: the named
  // and the byte array inserts took the rowids after 2^62, the RETURNING one the next).
  assert.deepEqual(worker[1], { value: { rowsAffected: 1, lastInsertRowid: 2n ** 62n, logIndex: 4 } });
  assert.equal((worker[4] as { code: string }).code, 'HQL_CONSTRAINT');
  assert.deepEqual((worker[5] as { value: unknown }).value, [{ id: 2n ** 62n + 3n, v: 1.5 }]);
  assert.equal((worker[12] as { code: string }).code, 'HQL_SQL');
});

test("one turn's cache values cross in one buffer: each arrives whole, beside large ones and a refused call", async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-worker-'));
  const node = await start(await config(root));
  try {
    const c = node.cache<Uint8Array | { n: number; s: string }>('packed');
    const bytes = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 31 + seed) % 256);
    // Sizes around the packing limit (4 KiB) and far beyond it, objects and byte arrays, the
    // three commands that carry a value; all in one turn of this thread.
    const sizes = [0, 1, 63, 64, 65, 4095, 4096, 4097, 70_000, 300_000];
    const writes: Array<Promise<unknown>> = [];
    sizes.forEach((n, i) => {
      writes.push(c.put(`b${i}`, bytes(n, i)));
      writes.push(c.put(`o${i}`, { n, s: 'x'.repeat(n) }));
      writes.push(c.putIfAbsent(`p${i}`, bytes(n, i + 100)));
    });
    const bad = assert.rejects(
      node.query('SELECT ?', [{ f: () => 1 } as unknown as string]),
      hasCode('HQL_INVALID_PARAMS'),
    );
    const results = await Promise.allSettled(writes);
    for (const r of results) assert.equal(r.status, 'fulfilled', String((r as PromiseRejectedResult).reason));
    await bad;
    const replaced = await Promise.all(sizes.map((n, i) => c.replace(`b${i}`, bytes(n, i + 200))));
    for (const [i, n] of sizes.entries()) {
      assert.deepEqual(replaced[i], bytes(n, i), `replace returned b${i}`);
      assert.deepEqual(await c.get(`b${i}`), bytes(n, i + 200), `b${i}`);
      assert.deepEqual(await c.get(`o${i}`), { n, s: 'x'.repeat(n) }, `o${i}`);
      assert.deepEqual(await c.get(`p${i}`), bytes(n, i + 100), `p${i}`);
      assert.deepEqual(c.getLocal(`p${i}`), bytes(n, i + 100), `p${i} locally`);
    }
  } finally {
    await node.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test("a cache write the node's thread refuses, in one turn with good ones, rejects alone with its typed code", async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-worker-'));
  const node = await start(await config(root, 1, { cacheEntriesPerCacheMax: 8 }));
  try {
    const full = node.cache<number>('full');
    const other = node.cache<number>('other');
    for (let i = 0; i < 8; i++) await full.put(`k${i}`, i);
    // One turn of this thread: writes that fit (other cache, an existing key of the full one,
    // a counter) around a put of a fifth key, which the state machine refuses.
    const good: Array<Promise<unknown>> = [];
    for (let i = 0; i < 3; i++) good.push(other.put(`a${i}`, i));
    good.push(full.put('k0', 100));
    const refused = full.put('k8', 8);
    for (let i = 3; i < 6; i++) good.push(other.put(`a${i}`, i));
    good.push(full.replace('k1', 101));
    good.push(node.counter('c').add('n', 7));
    const [settled, rejected] = await Promise.all([
      Promise.allSettled(good),
      refused.then(
        () => null,
        (e: unknown) => e,
      ),
    ]);
    for (const r of settled) assert.equal(r.status, 'fulfilled', String((r as PromiseRejectedResult).reason));
    assert.ok(rejected instanceof HiqliteError, String(rejected));
    assert.equal(rejected.code, 'HQL_CACHE_FULL');
    assert.equal(rejected.retryable, true);
    assert.equal(
      (rejected as HiqliteError & { info?: { limit?: string } }).info?.limit,
      'entriesPerCacheMax',
    );
    assert.match(rejected.message, /entries/);
    // What was written is there; the refused key is not; the node keeps serving.
    for (let i = 0; i < 6; i++) assert.equal(await other.get(`a${i}`), i);
    assert.equal(await full.get('k0'), 100);
    assert.equal(await full.get('k1'), 101);
    assert.equal(await full.get('k8'), null);
    assert.equal(full.getLocal('k8'), null);
    assert.equal(await node.counter('c').get('n'), 7n);
    await full.delete('k3');
    await full.put('k8', 8);
    assert.equal(await full.get('k8'), 8);
  } finally {
    await node.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('the node thread keeps within threadOldGenerationMaxMb: past it the node stops (onFatal), typed, and the application lives on', async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-worker-'));
  let fatal: unknown = null;
  const node = await start(await config(root, 1, { threadOldGenerationMaxMb: 64 }), {
    onFatal: (e) => {
      fatal = e;
    },
  });
  try {
    // Values and log entries are byte arrays outside the V8 heap; keys are strings inside it:
    // 4,000-byte keys, 64 writes at a time, until the thread's 64 MB are gone (at most 60,000).
    const cache = node.cache('big');
    const pad = 'k'.repeat(3_990);
    let written = 0;
    for (let round = 0; round < 60_000 / 64 && fatal === null; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 64 }, (_, i) => cache.put(`${pad}${round * 64 + i}`, 1)),
      );
      for (const r of results) {
        if (r.status === 'fulfilled') {
          written++;
          continue;
        }
        assert.ok(r.reason instanceof HiqliteError, String(r.reason));
        assert.ok(['HQL_OUTCOME_UNKNOWN', 'HQL_UNAVAILABLE'].includes(r.reason.code), r.reason.message);
      }
    }
    assert.ok(written > 1_000, `${written} writes before the thread ran out of heap`);
    await within(
      (async () => {
        while (fatal === null) await new Promise((r) => setTimeout(r, 20));
      })(),
      10_000,
      'onFatal after the thread ran out of heap',
    );
    assert.ok(fatal instanceof HiqliteError, String(fatal));
    assert.equal(fatal.code, 'HQL_UNAVAILABLE');
    assert.match(fatal.message, /out of memory|ERR_WORKER_OUT_OF_MEMORY/i);
    await assert.rejects(cache.put('after', 1), hasCode('HQL_UNAVAILABLE'));
    // This thread was not touched: it still runs and allocates.
    assert.equal(new Uint8Array(1024).length, 1024);
  } finally {
    await node.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('process.exit() ends an application whose node is in the middle of an endless apply', async () => {
  const app = resolve(import.meta.dirname, 'wedged-exit-app.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', app, 'worker'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  // Bounded: a process that hangs is killed and fails the test.
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  try {
    const code = await exited;
    assert.match(output, /EXITING/);
    assert.equal(code, 0, output);
  } finally {
    clearTimeout(timer);
  }
});

test("thread: 'main' runs the node on the caller's thread, with the same API", async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-worker-'));
  const node = await start(await config(root), { thread: 'main' });
  try {
    assert.equal(nodeThreadOf(node), null);
    const w = await node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    assert.deepEqual(await node.query('SELECT count(*) AS n FROM t', [], { minIndex: w.logIndex }), [
      { n: 0 },
    ]);
  } finally {
    await node.close();
    rmSync(root, { recursive: true, force: true });
  }
});

for (const thread of ['worker', 'main'] as const) {
  test(`writes of the application in flight are bounded by writesInflightMax, SQL and cache each (thread '${thread}')`, async () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-worker-'));
    const node = await start(await config(root, 1, { writesInflightMax: 8 }), { thread });
    try {
      await node.execute('CREATE TABLE w (id INTEGER PRIMARY KEY)');
      const sql = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => node.execute('INSERT INTO w (id) VALUES (?)', [i])),
      );
      const cache = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => node.cache('c').put(`k${i}`, i)),
      );
      for (const outcomes of [sql, cache]) {
        const refused = outcomes.filter((r) => r.status === 'rejected');
        assert.equal(outcomes.length - refused.length, 8);
        for (const r of refused) {
          const e = (r as PromiseRejectedResult).reason as HiqliteError;
          assert.equal(e.code, 'HQL_OVERLOADED', e.message);
          assert.equal(e.retryable, true);
          assert.match(e.message, /more than 8 concurrent writes from this client/);
        }
      }
      assert.deepEqual(await node.query('SELECT count(*) AS n FROM w'), [{ n: 8 }]);
    } finally {
      await node.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
}

test("the node thread's young generation is nodeThreadYoungGenerationMb (16 MB unless set), not the writer's 4 MB", async () => {
  for (const [extra, expected] of [
    [{}, 16],
    [{ nodeThreadYoungGenerationMb: 8, threadYoungGenerationMb: 2 }, 8],
  ] as const) {
    const root = mkdtempSync(join(tmpdir(), 'hq-worker-'));
    const node = await start(await config(root, 1, extra));
    try {
      const thread = nodeThreadOf(node);
      assert.ok(thread !== null, 'start() runs the node on its own thread by default');
      assert.equal(thread.resourceLimits?.maxYoungGenerationSizeMb, expected, JSON.stringify(extra));
    } finally {
      await node.close();
      rmSync(root, { recursive: true, force: true });
    }
  }
});
