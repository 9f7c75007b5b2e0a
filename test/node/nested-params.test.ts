/**
 * SQL parameters nested where a value belongs (or a function or symbol): an embedded node (on its own thread and on the
 * caller's) and a remote client refuse them with HQL_INVALID_PARAMS before they cross a thread
 * or a connection. A deeply nested one used to overflow the stack of the structured clone that
 * carries it to the node's thread or a read thread, a RangeError thrown where nothing caught it:
 * the application's process ended.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { connect, type HiqliteClient, HiqliteError, start } from '../../src/index.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';

function nested(depth: number): unknown[] {
  let v: unknown[] = [];
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

async function codeOf(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
    return 'ok';
  } catch (e) {
    return e instanceof HiqliteError ? e.code : `untyped ${String(e)}`;
  }
}

async function refusesNested(db: HiqliteClient): Promise<void> {
  const deep = nested(100_000) as never;
  const calls: [string, () => Promise<unknown>][] = [
    ['query', () => db.query('SELECT ?', [deep])],
    ['query with timeoutMs', () => db.query('SELECT ?', [deep], { timeoutMs: 5_000 })],
    ['query named', () => db.query('SELECT :a', { a: deep } as never)],
    ['queryConsistent', () => db.queryConsistent('SELECT ?', [deep])],
    ['queryOne', () => db.queryOne('SELECT ?', [deep], { timeoutMs: 5_000 })],
    ['execute', () => db.execute('SELECT ?', [deep])],
    ['executeReturning', () => db.executeReturning('SELECT ?', [deep])],
    ['txn', () => db.txn([['SELECT 1'], ['SELECT ?', [deep]]])],
    ['txn $ref nested', () => db.txn([['SELECT 1 AS n'], ['SELECT ?', [{ $ref: deep } as never]]])],
    ['a shallow array', () => db.query('SELECT ?', [[1] as never], { timeoutMs: 5_000 })],
    ['a function', () => db.query('SELECT ?', [(() => 1) as never], { timeoutMs: 5_000 })],
    ['a symbol', () => db.execute('SELECT ?', [Symbol('s') as never])],
    ['a function, named', () => db.txn([['SELECT :f', { f: (() => 1) as never }]])],
  ];
  for (const [what, call] of calls) assert.equal(await codeOf(call), 'HQL_INVALID_PARAMS', what);
  // Still serving, and what may be bound still is.
  assert.deepEqual(await db.query('SELECT ? AS a, ? AS b', [1, new Uint8Array([2])], { timeoutMs: 5_000 }), [
    { a: 1, b: new Uint8Array([2]) },
  ]);
  const [, second] = await db.txn([['SELECT 7 AS n'], ['SELECT ? AS m', [{ $ref: [0, 0, 'n'] }]]]);
  assert.ok(second !== undefined);
}

for (const thread of ['worker', 'main'] as const) {
  describe(`nested SQL parameters, embedded node on thread '${thread}' and a remote client`, () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-nested-params-'));
    const opened: { close(): Promise<void> }[] = [];
    after(async () => {
      for (const c of opened.reverse()) await c.close();
      rmSync(root, { recursive: true, force: true });
    });

    test('refused with HQL_INVALID_PARAMS, and the node keeps serving', async () => {
      const cfg = await oneNodeConfig(root);
      const node = await start(cfg, { thread });
      opened.push(node);
      await node.waitUntilHealthy({ timeoutMs: 20_000 });
      await refusesNested(node);
      const remote = await connect({
        nodes: [cfg.nodes[0]?.addrApi ?? ''],
        secretApi: TEST_SECRETS.secretApi,
      });
      opened.push(remote);
      await refusesNested(remote);
    });
  });
}
