import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { HiqliteError } from '../../src/lib/errors.js';
import { SqlReader } from '../../src/sm/sql/reader.js';
import { SqlStateMachine } from '../../src/sm/sql/state-machine.js';
import { SqlWorker } from '../../src/sm/sql/worker-client.js';
import { cmd, dumpDatabase, exec, Log, makeTempDir, NOW_MS } from './sql-test-helpers.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const COMMANDS = [
  cmd(
    exec(
      'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE, r INTEGER, at TEXT DEFAULT CURRENT_TIMESTAMP)',
    ),
  ),
  cmd(exec("INSERT INTO t (v, r) VALUES ('a', random())"), { seed: 3 }),
  cmd(exec("INSERT INTO t (v, r) VALUES ('a', 1)")),
  null,
  cmd({
    type: 'txn',
    statements: [
      { sql: "INSERT INTO t (v) VALUES ('b') RETURNING id", params: [] },
      { sql: 'UPDATE t SET r = ? WHERE id = ?', params: [5n, { $ref: [0, 0, 'id'] }] },
    ],
  }),
  cmd(exec('SELECT id, v FROM t ORDER BY id', [], true), { session: { clientId: 'c', seq: 1 } }),
  cmd(exec('SELECT id, v FROM t ORDER BY id', [], true), {
    session: { clientId: 'c', seq: 1 },
    nowMs: NOW_MS + 1,
  }),
];

describe('SqlWorker', () => {
  const { dir, cleanup } = makeTempDir();
  const closers: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const close of closers.reverse()) await close();
    cleanup();
  });

  test('applying through the worker gives the same results and database as in-process', async () => {
    const worker = await SqlWorker.start(join(dir, 'w'));
    closers.push(() => worker.close());
    const sm = SqlStateMachine.open(join(dir, 'p'));
    closers.push(() => sm.close());
    const logW = new Log();
    const logP = new Log();
    const viaWorker = [
      ...(await worker.applyBatch(logW.entries(...COMMANDS.slice(0, 3)))),
      ...(await worker.applyBatch(logW.entries(...COMMANDS.slice(3)))),
    ];
    const inProcess = sm.applyBatch(logP.entries(...COMMANDS));
    assert.deepEqual(viaWorker, inProcess);
    assert.equal(viaWorker[2]?.ok, false);
    assert.deepEqual((await worker.appliedState()).index, COMMANDS.length);
    assert.equal(worker.applied.current, COMMANDS.length);
    assert.deepEqual(dumpDatabase(join(dir, 'w', 'hiqlite.db')), dumpDatabase(sm.path));
  });

  test('results come back only where they are wanted; every entry is applied', async () => {
    const worker = await SqlWorker.start(join(dir, 'm'));
    closers.push(() => worker.close());
    const log = new Log();
    const results = await worker.applyBatch(
      log.entries(
        cmd(exec('CREATE TABLE t (a)')),
        cmd(exec('INSERT INTO t VALUES (1)')),
        cmd(exec('INSERT INTO t VALUES (2) RETURNING a', [], true)),
      ),
      [false, false, true],
    );
    assert.deepEqual(results.slice(0, 2), [undefined, undefined]);
    assert.deepEqual(results[2], {
      ok: true,
      type: 'execute',
      value: { rowsAffected: 1, lastInsertRowid: 2, rows: [{ a: 2 }] },
    });
    assert.equal(worker.appliedIndex(), 3);
    assert.deepEqual(dumpDatabase(join(dir, 'm', 'hiqlite.db')).t, [[1n], [2n]]);
  });

  test('large results (many outcomes, many rows) come back the same as in-process', async () => {
    const worker = await SqlWorker.start(join(dir, 'large'));
    closers.push(() => worker.close());
    const inProcessDir = join(dir, 'large-p');
    const sm = SqlStateMachine.open(inProcessDir);
    closers.push(() => sm.close());
    const commands = () => [
      cmd(exec('CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB, big INTEGER)')),
      cmd({
        type: 'txn',
        statements: Array.from({ length: 30 }, (_, i) => ({
          sql: 'INSERT INTO t (b, big) VALUES (?, ?) RETURNING id, b, big',
          params: [new Uint8Array([i]), 2n ** 60n + BigInt(i)],
        })),
      }),
      cmd(exec('SELECT id, b, big FROM t ORDER BY id', [], true)),
    ];
    const viaWorker = await worker.applyBatch(new Log().entries(...commands()));
    const inProcess = sm.applyBatch(new Log().entries(...commands()));
    assert.deepEqual(viaWorker, inProcess);
    const rows = (viaWorker[2] as unknown as { value: { rows: { b: Uint8Array; big: bigint }[] } }).value
      .rows;
    assert.equal(rows.length, 30);
    assert.equal(Object.getPrototypeOf(rows[3]!.b), Uint8Array.prototype);
    assert.equal(rows[3]!.big, 2n ** 60n + 3n);
  });

  test('a reader sharing worker.applied reads its own writes', async () => {
    const worker = await SqlWorker.start(join(dir, 'r'));
    closers.push(() => worker.close());
    const log = new Log();
    await worker.applyBatch(log.entries(cmd(exec('CREATE TABLE t (a)'))));
    const reader = SqlReader.open(join(dir, 'r', 'hiqlite.db'), { applied: worker.applied });
    closers.push(() => reader.close());
    const write = worker.applyBatch(log.entries(cmd(exec('INSERT INTO t VALUES (42)'))));
    await reader.waitForApplied(2, { timeoutMs: 30_000 });
    assert.deepEqual(reader.query('SELECT a FROM t'), [{ a: 42 }]);
    await write;
  });

  test('snapshot and restore run in the worker', async () => {
    const source = await SqlWorker.start(join(dir, 's1'));
    const target = await SqlWorker.start(join(dir, 's2'));
    closers.push(
      () => source.close(),
      () => target.close(),
    );
    const log = new Log(2);
    await source.applyBatch(
      log.entries(cmd(exec('CREATE TABLE t (a)')), cmd(exec('INSERT INTO t VALUES (1)'))),
    );
    const snapshotPath = join(dir, 'snap.db');
    const info = await source.snapshot(snapshotPath);
    assert.deepEqual([info.index, info.term], [2, 2]);
    const state = await target.restore(snapshotPath);
    assert.deepEqual([state.index, state.term], [2, 2]);
    assert.equal(target.applied.current, 2);
    await target.applyBatch(log.entries(cmd(exec('INSERT INTO t VALUES (2)'))));
    assert.deepEqual(dumpDatabase(join(dir, 's2', 'hiqlite.db')).t, [[1n], [2n]]);
    assert.equal(target.appliedIndex(), 3);
    assert.deepEqual(await target.reset(), { index: 0, term: 0, membership: null, clockMs: 0 });
    assert.equal(target.appliedIndex(), 0);
    assert.equal(dumpDatabase(join(dir, 's2', 'hiqlite.db')).t, undefined);
  });

  test('a state machine that cannot open makes start() fail with the reason', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    await assert.rejects(
      SqlWorker.start(file),
      (e: unknown) => e instanceof Error && /EEXIST|ENOTDIR/.test(e.message),
    );
  });

  test('after close every call fails with HQL_CLOSED', async () => {
    const worker = await SqlWorker.start(join(dir, 'c'));
    await worker.close();
    await assert.rejects(
      worker.applyBatch([]),
      (e: unknown) => e instanceof HiqliteError && e.code === 'HQL_CLOSED',
    );
    await worker.close();
  });

  test('the compiled JavaScript starts its worker without tsx', () => {
    // Transpile this module and its dependencies to .js the way the build does, then run them with plain node.
    const out = join(dir, 'dist');
    for (const sub of ['src/sm/sql', 'src/lib', 'src/protocol', 'src/raft']) {
      mkdirSync(join(out, sub), { recursive: true });
      for (const name of readdirSync(join(repoRoot, sub)).filter((n) => n.endsWith('.ts'))) {
        const source = readFileSync(join(repoRoot, sub, name), 'utf8');
        const js = ts.transpileModule(source, {
          compilerOptions: {
            module: ts.ModuleKind.ES2022,
            target: ts.ScriptTarget.ES2022,
            verbatimModuleSyntax: true,
          },
        }).outputText;
        writeFileSync(join(out, sub, name.replace(/\.ts$/, '.js')), js);
      }
    }
    writeFileSync(join(out, 'package.json'), '{"type":"module"}');
    symlinkSync(join(repoRoot, 'node_modules'), join(out, 'node_modules'), 'dir');
    // The SQLite extension, where the package keeps it (three levels above src/sm/sql).
    symlinkSync(join(repoRoot, 'native'), join(out, 'native'), 'dir');
    const script = `
      import { SqlWorker } from './src/sm/sql/worker-client.js';
      import { encodeCommand } from './src/sm/sql/command.js';
      const worker = await SqlWorker.start(process.argv[2]);
      const data = encodeCommand({ nowMs: ${NOW_MS}, seed: 1, command: { type: 'execute', sql: 'SELECT datetime() AS now', params: [], returning: true } });
      const results = await worker.applyBatch([{ index: 1, term: 1, data }]);
      await worker.close();
      console.log(JSON.stringify(results));`;
    writeFileSync(join(out, 'run.js'), script);
    const run = spawnSync(process.execPath, [join(out, 'run.js'), join(dir, 'compiled')], {
      cwd: out,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout.trim()), [
      {
        ok: true,
        type: 'execute',
        value: { rowsAffected: 0, lastInsertRowid: 0, rows: [{ now: '2024-05-06 07:08:09' }] },
      },
    ]);
  });
});
