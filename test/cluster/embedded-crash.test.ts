/**
 * kill -9 of an embedding application (its node on its own thread, start()'s default) while its
 * cache writes and SQL inserts are in flight across the thread boundary: every write the
 * application saw acknowledged is on every node afterwards, nothing that was never written
 * appears, and the three replicas hold the same cache entries and rows. Each node is the victim
 * once (the first is the leader, so a leader and followers die with writes in flight), after the
 * two others: the victim's last writes cannot commit, and the others come back without it.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Prng } from '../../src/lib/prng.js';
import { CacheApp, startApps } from './cache-app-process.js';
import { sleep, TestCluster } from './harness.js';

const WRITERS = 16;
/** Acknowledged writes each cycle waits for before its kill (bounded by CYCLE_WRITE_MS). */
const ACKS_PER_CYCLE = 300;
const CYCLE_WRITE_MS = 20_000;

describe('embedded applications killed with writes in flight', () => {
  const clusters: TestCluster[] = [];
  const running: CacheApp[] = [];
  after(async () => {
    await Promise.all(running.map((a) => a.kill()));
    await Promise.all(clusters.map((c) => c.close()));
  });

  test('every acknowledged cache write and row survives, nothing else appears, replicas agree', async () => {
    const rng = new Prng(20261205);
    const cluster = await TestCluster.create({ nodes: 3, startNodes: [], toml: 'logs_until_snapshot = 400' });
    clusters.push(cluster);
    const apps = await startApps(cluster, [1, 2, 3]);
    running.push(...apps.values());
    const app = (id: number) => apps.get(id) as CacheApp;
    await app(1).request('execute', { sql: 'CREATE TABLE rows (id INTEGER PRIMARY KEY)' });
    await app(1).request('execute', { sql: 'CREATE TABLE barrier (node INTEGER)' });

    const attempted = new Set<number>();
    const ackedKeys = new Set<number>();
    const ackedRows = new Set<number>();
    let next = 1;

    for (const victim of [1, 2, 3]) {
      const target = app(victim);
      let stop = false;
      let ackedThisCycle = 0;
      // Odd numbers are cache puts (key k<n>, value n), even ones SQL rows (id n).
      const loops = Array.from({ length: WRITERS }, async () => {
        while (!stop) {
          const n = next++;
          attempted.add(n);
          try {
            if (n % 2 === 1) {
              await target.request('put', { cache: 'crash', key: `k${n}`, value: n }, 15_000);
              ackedKeys.add(n);
            } else {
              await target.request('execute', { sql: `INSERT INTO rows (id) VALUES (${n})` }, 15_000);
              ackedRows.add(n);
            }
            ackedThisCycle++;
          } catch {
            // Killed, or a write refused while the cluster recovers from the previous kill: not
            // acknowledged, so either outcome is allowed. A dead application ends its loops.
            if (stop) return;
            await sleep(10);
          }
        }
      });
      const writeDeadline = Date.now() + CYCLE_WRITE_MS;
      while (ackedThisCycle < ACKS_PER_CYCLE && Date.now() < writeDeadline) await sleep(10);
      assert.ok(ackedThisCycle >= ACKS_PER_CYCLE, `node ${victim}: ${ackedThisCycle} writes acknowledged`);
      // The other two die first: from then on the victim's writes cannot reach a quorum, so
      // none of them may be acknowledged. They come back without the victim and elect a leader
      // whose log overwrites whatever the victim wrote alone; an acknowledgement that ran ahead
      // of the commit would show as a lost write.
      const others = [1, 2, 3].filter((id) => id !== victim);
      await Promise.all(others.map((id) => app(id).kill()));
      await sleep(rng.int(150, 400));
      await target.kill();
      stop = true;
      await Promise.all(loops);
      const back = await startApps({ node: (id) => ({ configFile: app(id).configFile }) }, others);
      for (const [id, a] of back) {
        running.push(a);
        apps.set(id, a);
      }
      await app(others[0] as number).request('put', {
        cache: 'other',
        key: `after-${victim}`,
        value: victim,
      });
      const restarted = await CacheApp.start(target.configFile);
      running.push(restarted);
      apps.set(victim, restarted);
    }

    // Every node catches up: a linearizable cache read, and a row this node writes itself (a
    // local SQL read after the node's own write sees everything committed before it).
    const keysOn = new Map<number, Set<number>>();
    const rowsOn = new Map<number, Set<number>>();
    for (const id of [1, 2, 3]) {
      await app(id).request('get', { cache: 'crash', key: 'k1', consistency: 'linearizable' });
      await app(id).request('execute', { sql: `INSERT INTO barrier (node) VALUES (${id})` });
      const entries = await app(id).request<Array<[string, number]>>('entries', { cache: 'crash' });
      const keys = new Set<number>();
      for (const [key, value] of entries) {
        assert.equal(key, `k${value}`, `node ${id}: entry ${key} holds ${value}`);
        keys.add(value);
      }
      keysOn.set(id, keys);
      const rows = await app(id).request<Array<{ id: number }>>('query', {
        sql: 'SELECT id FROM rows ORDER BY id',
      });
      rowsOn.set(id, new Set(rows.map((r) => Number(r.id))));
    }

    assert.ok(ackedKeys.size > 0 && ackedRows.size > 0);
    for (const id of [1, 2, 3]) {
      const keys = keysOn.get(id) as Set<number>;
      const rows = rowsOn.get(id) as Set<number>;
      const lostKeys = [...ackedKeys].filter((n) => !keys.has(n));
      const lostRows = [...ackedRows].filter((n) => !rows.has(n));
      assert.deepEqual(lostKeys, [], `node ${id} lost acknowledged cache writes`);
      assert.deepEqual(lostRows, [], `node ${id} lost acknowledged rows`);
      const phantomKeys = [...keys].filter((n) => !attempted.has(n) || n % 2 === 0);
      const phantomRows = [...rows].filter((n) => !attempted.has(n) || n % 2 === 1);
      assert.deepEqual(phantomKeys, [], `node ${id} holds cache entries never written`);
      assert.deepEqual(phantomRows, [], `node ${id} holds rows never written`);
      // The replicas agree, including on the writes whose outcome the killed application never saw.
      assert.deepEqual(
        [...keys].sort((a, b) => a - b),
        [...(keysOn.get(1) as Set<number>)].sort((a, b) => a - b),
      );
      assert.deepEqual(
        [...rows].sort((a, b) => a - b),
        [...(rowsOn.get(1) as Set<number>)].sort((a, b) => a - b),
      );
    }
  });
});
