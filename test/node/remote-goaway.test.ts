/**
 * A node that shuts down while a remote client's writes are in flight: it answers the requests it
 * read and tells the client, in a goaway, that the others were never read. The client then never
 * reports HQL_OUTCOME_UNKNOWN for a write the node did not process (before, every write that
 * raced the close of the connection was "maybe applied" and, with no other node to ask, ended
 * HQL_OUTCOME_UNKNOWN at its deadline). A write that fails was not applied; one that succeeded
 * is there after a restart. SQL and cache writes, through the binary API.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { connect, HiqliteError, start } from '../../src/index.js';
import { oneNodeConfig, TEST_SECRETS } from '../support/one-node-config.js';

const WRITERS = 24;
/** Per writer, an upper bound: the writers stop at their first failure (the node is gone). */
const WRITES_MAX = 5_000;

describe('a node shutting down under a remote client', () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-goaway-'));
  const opened: { close(): Promise<void> }[] = [];
  after(async () => {
    for (const c of opened.reverse()) await c.close().catch(() => {});
    rmSync(root, { recursive: true, force: true });
  });

  test('writes racing the close: ok and there, or failed and absent; none left in doubt', async () => {
    const cfg = await oneNodeConfig(root);
    const node = await start(cfg, { thread: 'main' });
    opened.push(node);
    await node.execute('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    const client = await connect({
      nodes: [cfg.nodes[0]?.addrApi ?? ''],
      secretApi: TEST_SECRETS.secretApi,
      requestTimeoutMs: 2_000,
    });
    opened.push(client);
    const acked = new Set<number>();
    const ackedKeys = new Set<string>();
    const failures = new Map<string, number>();
    const failed: number[] = [];
    let running = true;
    const writer = async (w: number) => {
      for (let i = 0; i < WRITES_MAX && running; i++) {
        const id = w * WRITES_MAX + i;
        try {
          if (i % 2 === 0) {
            await client.execute('INSERT INTO t (id) VALUES ($1)', [id]);
            acked.add(id);
          } else {
            await client.cache('c').put(`k${id}`, id);
            ackedKeys.add(`k${id}`);
          }
        } catch (e) {
          const code = e instanceof HiqliteError ? e.code : String(e);
          failures.set(code, (failures.get(code) ?? 0) + 1);
          failed.push(id);
          return;
        }
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    // Let the writers get going, then close the node under them.
    while (acked.size + ackedKeys.size < 500) await new Promise((r) => setTimeout(r, 5));
    await node.close();
    await Promise.all(writers);
    running = false;
    assert.equal(failed.length, WRITERS, 'every writer ended on a failure once the node was gone');
    assert.equal(
      failures.get('HQL_OUTCOME_UNKNOWN') ?? 0,
      0,
      `outcomes of the writes in flight at the close: ${JSON.stringify(Object.fromEntries(failures))}`,
    );

    // What a restart holds is exactly what was acknowledged.
    const again = await start(cfg, { thread: 'main' });
    opened.push(again);
    const rows = await again.query<{ id: number }>('SELECT id FROM t ORDER BY id');
    assert.deepEqual(
      rows.map((r) => Number(r.id)),
      [...acked].sort((a, b) => a - b),
    );
    const keys = (await again.cache('c').entries()).map(([k]) => k).sort();
    assert.deepEqual(keys, [...ackedKeys].sort());
  });

  test('a long read in flight gets its rows; the keepalive is answered while the node drains', async () => {
    const cfg = await oneNodeConfig(join(root, 'read'));
    const node = await start(cfg, { thread: 'main' });
    opened.push(node);
    // A client that takes a node silent for 400 ms as dead: the read outlasts that many times.
    const client = await connect({
      nodes: [cfg.nodes[0]?.addrApi ?? ''],
      secretApi: TEST_SECRETS.secretApi,
      keepaliveIntervalMs: 100,
      keepaliveTimeoutMs: 400,
    });
    opened.push(client);
    const n = 4_000_000;
    const read = client.query<{ n: number }>(
      `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n}) SELECT count(*) AS n FROM c`,
    );
    const outcome = read.then(
      (rows) => Number(rows[0]?.n),
      (e: HiqliteError) => e.code,
    );
    await new Promise((r) => setTimeout(r, 200));
    await node.close();
    assert.equal(await outcome, n);
  });
});
