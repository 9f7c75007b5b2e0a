/**
 * close() with writes in flight: from the call of close() on the handle refuses every call
 * (HQL_CLOSED) but the releases of the locks it holds; the node then lets the writes already under
 * way finish before its groups close, so their
 * callers get their outcomes, not HQL_OUTCOME_UNKNOWN; what they were told is what a restart from
 * the same data directory holds. (Before, the cache group closed first and answered every cache write still in
 * flight HQL_OUTCOME_UNKNOWN, while the SQL writes beside them happened to finish; and on its own
 * thread, a cache write completing after the shutdown began ended the node's thread.) Embedded
 * nodes on either thread.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { HiqliteError, start } from '../../src/index.js';
import { oneNodeConfig } from '../support/one-node-config.js';

const WRITES = 400;

function outcome(r: PromiseSettledResult<unknown>): string {
  if (r.status === 'fulfilled') return 'ok';
  return r.reason instanceof HiqliteError ? r.reason.code : String(r.reason);
}

for (const thread of ['worker', 'main'] as const) {
  describe(`close() with writes in flight (embedded node on thread '${thread}')`, () => {
    const root = mkdtempSync(join(tmpdir(), 'hq-close-inflight-'));
    const opened: { close(): Promise<void> }[] = [];
    after(async () => {
      for (const c of opened.reverse()) await c.close();
      rmSync(root, { recursive: true, force: true });
    });

    test('writes under way complete; new ones get HQL_CLOSED; a restart holds what was acknowledged', async () => {
      const cfg = await oneNodeConfig(root);
      const node = await start(cfg, { thread });
      opened.push(node);
      await node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY)');
      const writes: Array<Promise<unknown>> = [];
      for (let i = 0; i < WRITES; i++) {
        if (i % 3 === 0) writes.push(node.execute('INSERT INTO t (id) VALUES ($1)', [i]));
        else if (i % 3 === 1) writes.push(node.cache('c').put(`k${i}`, i));
        else writes.push(node.counter('n').add('x', 1));
      }
      // Held across close(): its release is the one call close() still makes.
      const held = await node.lock('job', { leaseMs: 60_000 });
      const under = Promise.allSettled(writes);
      const closed = node.close();
      // Asked after close() was called (while it releases the held lock, before the node itself
      // closes): refused with HQL_CLOSED, none carried out, whichever kind of call.
      const late = await Promise.allSettled([
        node.cache('c').put('late', 1),
        node.counter('n').add('x', 1000),
        node.execute('INSERT INTO t (id) VALUES (100000)'),
        node.txn([['INSERT INTO t (id) VALUES (100001)']]),
        node.query('SELECT 1'),
        node.cache('c').get('k1'),
        node.cache('c').get('k1', { consistency: 'linearizable' }),
        node.notify('ch', 1),
        node.lock('other'),
        node.tryLock('other'),
        node.backup(),
        node.waitUntilHealthy({ timeoutMs: 1_000 }),
        node.migrate([{ id: 1, name: 'm', sql: 'CREATE TABLE m (x)' }]),
        (async () => node.cache('c').getLocal('k1'))(),
      ]);
      assert.deepEqual(
        late.map(outcome),
        late.map(() => 'HQL_CLOSED'),
        'every call made after close() was called is refused',
      );
      // A listener asked for after close() is refused too (it ended at once, as if all was well:
      // a `for await` loop just exited).
      assert.throws(
        () => node.listen('ch'),
        (e: HiqliteError) => e.code === 'HQL_CLOSED',
      );
      await held.release(); // released by close() already: a no-op
      const settled = await under;
      await closed;
      const tally: Record<string, number> = {};
      for (const r of settled) tally[outcome(r)] = (tally[outcome(r)] ?? 0) + 1;
      assert.deepEqual(
        tally,
        { ok: WRITES },
        `outcomes of the writes under way at close(): ${JSON.stringify(tally)}`,
      );
      // And once closed, every call is refused.
      await assert.rejects(node.cache('c').put('after', 1), (e: HiqliteError) => e.code === 'HQL_CLOSED');
      await assert.rejects(
        node.execute('INSERT INTO t (id) VALUES (200000)'),
        (e: HiqliteError) => e.code === 'HQL_CLOSED',
      );

      // A restart holds exactly what was acknowledged (the cache group's state once it has
      // replayed its log: read through a linearizable read first).
      const again = await start(cfg, { thread });
      opened.push(again);
      await again.cache('c').get('late', { consistency: 'linearizable' });
      const rows = await again.query<{ n: number }>('SELECT count(*) AS n FROM t');
      assert.equal(Number(rows[0]?.n), Math.ceil(WRITES / 3));
      assert.equal((await again.cache('c').entries()).length, Math.floor((WRITES + 1) / 3));
      assert.equal(await again.cache('c').get('late'), null);
      assert.equal(await again.counter('n').get('x'), BigInt(Math.floor(WRITES / 3)));
      assert.deepEqual(await again.query("SELECT name FROM sqlite_master WHERE name = 'm'"), []);
      // close() released the lock it held (not left to its 60 s lease).
      const free = await again.tryLock('job');
      assert.ok(free !== null, 'the lock held at close() was released');
      assert.ok(free.token > held.token);
      await free.release();
    });
  });
}
