/**
 * Local reads right after start() see every write acknowledged before the restart. The cache
 * group's state lives in memory and is rebuilt from its snapshot and log; the entries of the last
 * run are applied again only once a leader commits an entry of its own term, so before start()
 * waited for that (a read barrier per group) a local get right after a restart answered null
 * and `entries()` nothing, for a few hundred milliseconds. Embedded nodes on either thread.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { start } from '../../src/index.js';
import { oneNodeConfig } from '../support/one-node-config.js';

for (const thread of ['worker', 'main'] as const) {
  describe(`local reads right after a restart (embedded node on thread '${thread}')`, () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-restart-reads-'));
    const opened: { close(): Promise<void> }[] = [];
    after(async () => {
      for (const c of opened.reverse()) await c.close();
      rmSync(root, { recursive: true, force: true });
    });

    test('caches, counters and rows written before the restart are there at once', async () => {
      const cfg = await oneNodeConfig(root);
      const node = await start(cfg, { thread });
      opened.push(node);
      await node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY)');
      for (let i = 0; i < 50; i++) {
        await Promise.all([
          node.cache('s').put(`k${i}`, { i }),
          node.counter('n').add('x', 2),
          node.execute('INSERT INTO t (id) VALUES ($1)', [i]),
        ]);
      }
      await node.close();

      const again = await start(cfg, { thread });
      opened.push(again);
      // Synchronously after start() resolved, and then through the promise API; all local.
      const first = again.cache('s').getLocal('k0');
      const last = again.cache('s').getLocal('k49');
      assert.deepEqual([first, last], [{ i: 0 }, { i: 49 }]);
      assert.deepEqual(await again.cache('s').get('k25'), { i: 25 });
      assert.equal((await again.cache('s').entries()).length, 50);
      assert.equal(await again.counter('n').get('x'), 100n);
      const rows = await again.query<{ n: number }>('SELECT count(*) AS n FROM t');
      assert.equal(Number(rows[0]?.n), 50);
    });
  });
}
