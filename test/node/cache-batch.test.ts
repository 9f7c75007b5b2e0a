/**
 * The cache group's leader proposes the writes of one turn as one batch entry
 * (`cache_batch_commands_max`): every caller gets its own result, a take (getRemove) raced by
 * many callers in one batch has exactly one winner, and writes of one caller keep their order
 * across a batch and a command that is never batched (notify). With the option at 1 every
 * write has an entry of its own. On both of the embedded node's threads.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type HiqliteNode, start } from '../../src/index.js';
import { oneNodeConfig } from '../support/one-node-config.js';

const WRITES = 200;

function suite(thread: 'main' | 'worker', batchMax: number): void {
  describe(`cache batches (thread ${thread}, cache_batch_commands_max ${batchMax})`, () => {
    let root = '';
    let node: HiqliteNode;
    before(async () => {
      root = mkdtempSync(join(tmpdir(), 'hq-cache-batch-'));
      node = await start(await oneNodeConfig(root, { cacheBatchCommandsMax: batchMax }), { thread });
      await node.waitUntilHealthy({ timeoutMs: 10_000 });
    });
    after(async () => {
      await node?.close();
      rmSync(root, { recursive: true, force: true });
    });

    const lastIndex = async () => (await node.metrics()).cache?.lastLogIndex ?? 0;

    test('writes of one turn: each caller its own result', async () => {
      const cache = node.cache('b');
      const counter = node.counter('b');
      // A healthy node may not lead its cache group yet (under load its election can take
      // longer): writes before that are forwarded and retried one by one, never batched. A
      // committed write first means the node leads the group.
      await cache.put('warm-up', 0);
      const before = await lastIndex();
      // Called in one turn: puts of distinct keys, adds to one counter, replaces of one key.
      const results = await Promise.all([
        ...Array.from({ length: WRITES }, (_, i) => cache.put(`k${i}`, { i })),
        ...Array.from({ length: 10 }, () => counter.add('n', 1)),
        ...Array.from({ length: 5 }, (_, i) => cache.replace('r', i)),
      ]);
      const entries = (await lastIndex()) - before;
      if (batchMax === 1) assert.ok(entries >= WRITES + 15, `${entries} entries for ${WRITES + 15} writes`);
      else assert.ok(entries < WRITES / 2, `${entries} entries for ${WRITES + 15} writes: not batched`);
      // Counter adds in order: 1..10, each to its own caller.
      assert.deepStrictEqual(
        results.slice(WRITES, WRITES + 10).map((v) => BigInt(v as bigint)),
        Array.from({ length: 10 }, (_, i) => BigInt(i + 1)),
      );
      // Each replace returns the value the one before it stored.
      assert.deepStrictEqual(results.slice(WRITES + 10), [null, 0, 1, 2, 3]);
      for (let i = 0; i < WRITES; i += 37) assert.deepStrictEqual(await cache.get(`k${i}`), { i });
    });

    test('a take raced in one batch has exactly one winner', async () => {
      const cache = node.cache('take');
      await cache.put('t', 'token');
      const takes = await Promise.all(Array.from({ length: 50 }, () => cache.getRemove('t')));
      assert.deepStrictEqual(
        takes.filter((v) => v !== null),
        ['token'],
      );
    });

    test("one caller's writes keep their order around a command that is never batched", async () => {
      const cache = node.cache('order');
      const listen = node.listen('order');
      const it = listen[Symbol.asyncIterator]();
      const first = it.next();
      const done = Promise.all([
        cache.put('a', 1),
        node.notify('order', 'between'),
        cache.getRemove('a'),
        cache.put('a', 2),
      ]);
      const [, , taken] = await done;
      assert.equal(taken, 1);
      assert.equal(await cache.get('a'), 2);
      const n = await first;
      assert.equal(n.done, false);
      await it.return?.();
    });
  });
}

suite('main', 1024);
suite('worker', 1024);
suite('main', 1);
