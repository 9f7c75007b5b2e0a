/**
 * A node's disk fills up. Three `hiqlite serve` processes, each under an LD_PRELOAD shim that
 * makes every write, sync and allocation under its data_dir fail with ENOSPC while a flag file
 * exists (test/support/enospc.ts): the Raft logs of both groups, SQLite and the snapshots see a
 * full disk, nothing else does.
 *
 * What a user relies on: the node whose disk is full stops (HQL_IO naming ENOSPC, exit code 1,
 * so a supervisor restarts it) instead of going on with state it could not write; the others
 * keep taking writes; no acknowledged write is lost; a restart while the disk is still full is
 * refused with the same clear error; once there is space it restarts, catches up, and every
 * replica holds the same rows.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HiqliteClient } from '../../src/index.js';
import { enospcEnv, fillDisk, freeDisk } from '../support/enospc.js';
import { runTsx } from '../support/tsx-process.js';
import { eventually, sleep, TestCluster } from './harness.js';

const APP = resolve(import.meta.dirname, 'disk-full-app.ts');

/** Writes rows `${tag}-${n}` with `concurrency` callers until `stop()`; keeps what was acknowledged. */
function writer(db: HiqliteClient, tag: string, concurrency = 4) {
  const acked: string[] = [];
  const errors = new Map<string, number>();
  let lastIndex = 0;
  let n = 0;
  let stopped = false;
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopped) {
      const v = `${tag}-${n++}`;
      try {
        const r = await db.execute('INSERT INTO t (v) VALUES (?)', [v]);
        acked.push(v);
        lastIndex = Math.max(lastIndex, r.logIndex);
      } catch (e) {
        const code = (e as { code?: string }).code ?? String(e);
        errors.set(code, (errors.get(code) ?? 0) + 1);
        await sleep(20);
      }
    }
  });
  return {
    acked,
    errors,
    get lastIndex() {
      return lastIndex;
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** Every acknowledged row is on every node, and the replicas are identical. */
async function checkReplicasOf(c: TestCluster, acked: readonly string[], minIndex: number): Promise<void> {
  const rows = await c.rowsOn<{ v: string }>('SELECT v FROM t ORDER BY id', { ids: [1, 2, 3], minIndex });
  const first = rows.get(1)!;
  for (const id of [2, 3]) assert.deepEqual(rows.get(id), first, `node ${id} holds the rows node 1 holds`);
  const held = new Set(first.map((r) => r.v));
  const lost = acked.filter((v) => !held.has(v));
  assert.deepEqual(lost.slice(0, 10), [], `${lost.length} acknowledged writes lost`);
}

describe('a node’s disk fills up (ENOSPC under its data_dir)', () => {
  let c: TestCluster;
  const flag = (id: number) => join(c.dir, `disk-full-${id}`);
  const env = (id: number) => enospcEnv(c.node(id).dataDir, flag(id));

  before(async () => {
    c = await TestCluster.create({ nodes: 3, startNodes: [] });
    await Promise.all([1, 2, 3].map((id) => c.start(id, { env: env(id) })));
    const db = await c.client();
    await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)');
  });
  after(async () => {
    for (const id of [1, 2, 3]) freeDisk(flag(id));
    await c?.close();
  });

  const checkReplicas = (acked: readonly string[], minIndex: number) => checkReplicasOf(c, acked, minIndex);

  async function nodeStopsForTheDisk(id: number): Promise<void> {
    const n = c.node(id);
    const code = await Promise.race([n.exit, sleep(30_000).then(() => 'still running' as const)]);
    assert.equal(code, 1, `node ${id} exits with 1 once its disk is full (got ${String(code)})`);
    // The log's append (ENOSPC) or SQLite's (SQLITE_FULL), whichever wrote first; both say why.
    assert.match(
      n.output,
      /hiqlite: the node stopped serving \(HQL_IO: .*(ENOSPC: no space left on device|SQLITE_FULL: .*no space left on the disk of data_dir).*\); exiting/,
    );
  }

  async function restartRefusedWhileFull(id: number): Promise<void> {
    await assert.rejects(c.startAndWatch(id, 30_000, { env: env(id) }), (e: Error) => {
      assert.match(e.message, /exited before READY/);
      assert.match(e.message, /HQL_IO: .*(ENOSPC: no space left on device|SQLITE_FULL)/);
      return true;
    });
  }

  test('a follower: it stops with HQL_IO, the others go on, and with space again it catches up', async () => {
    const leader = await c.leader();
    const follower = [1, 2, 3].find((id) => id !== leader)!;
    const db = await c.client();
    const cache = db.cache('full');
    await cache.put('before', 1);
    const w = writer(db, 'follower');
    await eventually('writes before the disk fills', async () => w.acked.length >= 50);

    fillDisk(flag(follower));
    await nodeStopsForTheDisk(follower);
    const atStop = w.acked.length;
    await eventually(
      'writes acknowledged by the two other nodes',
      async () => w.acked.length >= atStop + 200,
    );
    await cache.put('during', 2);

    await restartRefusedWhileFull(follower);
    freeDisk(flag(follower));
    await c.start(follower, { env: env(follower) });
    await w.stop();
    assert.deepEqual([...w.errors], [], 'no write failed: two of three nodes hold a majority');
    await checkReplicas(w.acked, w.lastIndex);
    const reader = await c.client([follower]);
    assert.equal(await reader.cache('full').get('during', { consistency: 'linearizable' }), 2);
  });

  test('the leader, under load: another node leads and no acknowledged write is lost', async () => {
    const leader = await c.leader();
    const db = await c.client();
    const w = writer(db, 'leader', 8);
    await eventually('writes before the disk fills', async () => w.acked.length >= 50);

    fillDisk(flag(leader));
    await nodeStopsForTheDisk(leader);
    const atStop = w.acked.length;
    await eventually('writes through the new leader', async () => w.acked.length >= atStop + 200);
    assert.notEqual(await c.leader(), leader);

    freeDisk(flag(leader));
    await c.start(leader, { env: env(leader) });
    await w.stop();
    await checkReplicas(w.acked, w.lastIndex);
    // A write in flight when the leader stopped is retried under its session (applied once) or
    // reported; none may fail otherwise.
    for (const code of w.errors.keys())
      assert.ok(['HQL_OUTCOME_UNKNOWN', 'HQL_TIMEOUT'].includes(code), code);
  });
});

describe('snapshots that do not fit on the disk (ENOSPC under every node’s snapshot folders)', () => {
  let c: TestCluster;
  const flag = () => join(c.dir, 'snapshots-full');
  const env = (id: number) =>
    enospcEnv(
      ['snapshots', 'cache_snapshots'].map((d) => join(c.node(id).dataDir, 'state_machine', d)),
      flag(),
    );

  before(async () => {
    // A snapshot after every KiB of commands: every node tries one within the first writes.
    c = await TestCluster.create({ nodes: 3, startNodes: [], toml: 'log_bytes_until_snapshot = 1024' });
    fillDisk(flag());
    await Promise.all([1, 2, 3].map((id) => c.start(id, { env: env(id) })));
  });
  after(async () => {
    freeDisk(flag());
    await c?.close();
  });

  async function snapshotFailures(id: number): Promise<number> {
    const { body } = await c.http(id, '/metrics');
    const m = /^hiqlite_snapshot_failures\{group="sql"\} (\d+)$/m.exec(String(body));
    assert.ok(m !== null, `hiqlite_snapshot_failures on node ${id}`);
    return Number(m[1]);
  }

  test('every node keeps serving with its log uncompacted, and snapshots again once there is space', async () => {
    const db = await c.client();
    await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)');
    const w = writer(db, 'snap');
    await eventually('every node to have failed a snapshot', async () => {
      for (const id of [1, 2, 3]) if ((await snapshotFailures(id)) === 0) return false;
      return true;
    });
    const atFailures = w.acked.length;
    await eventually('writes after the failed snapshots', async () => w.acked.length >= atFailures + 200);
    assert.deepEqual(c.runningIds(), [1, 2, 3], 'no node stopped');
    await db.cache('kept').put('k', 'v');

    freeDisk(flag());
    // The retry backs off to at most a minute; within the first minute it is a few seconds.
    await eventually(
      'a snapshot on every node once there is space',
      async () => {
        for (const id of [1, 2, 3]) if ((await snapshotFailures(id)) !== 0) return false;
        return true;
      },
      90_000,
    );
    await w.stop();
    assert.deepEqual([...w.errors], [], 'no write failed');
    await checkReplicasOf(c, w.acked, w.lastIndex);
  });
});

describe('an embedded node whose disk fills up (its application keeps running)', () => {
  test('the write in flight is HQL_OUTCOME_UNKNOWN at once, later writes HQL_IO, reads go on, onFatal is called', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hql-disk-full-app-'));
    try {
      const flag = join(dir, 'full');
      const dataDir = join(dir, 'data');
      const r = await runTsx(APP, [flag, dataDir], {
        env: { ...process.env, ...enospcEnv(dataDir, flag) },
        timeoutMs: 90_000,
      });
      const line = r.stdout
        .split('\n')
        .find((l) => l.startsWith('REPORT '))
        ?.slice('REPORT '.length);
      assert.ok(line !== undefined, `the app's report:\n${r.stdout}\n${r.stderr.slice(-3000)}`);
      const out = JSON.parse(line) as Record<
        string,
        { ok: boolean; code?: string; message?: string; ms: number }
      > & {
        fatal: string | null;
      };
      // The proposal timeout is 10 s: "at once" is well before it.
      assert.equal(out.write?.code, 'HQL_OUTCOME_UNKNOWN', JSON.stringify(out.write));
      assert.match(out.write?.message ?? '', /ENOSPC|SQLITE_FULL/);
      assert.ok((out.write?.ms ?? Infinity) < 5_000, `answered when the node stopped (${out.write?.ms} ms)`);
      assert.equal(out.writeAfter?.code, 'HQL_IO', JSON.stringify(out.writeAfter));
      assert.ok((out.writeAfter?.ms ?? Infinity) < 5_000);
      // The cache group's first write fails its own log append: in flight when it stopped.
      assert.equal(out.cachePut?.code, 'HQL_OUTCOME_UNKNOWN', JSON.stringify(out.cachePut));
      assert.ok(
        (out.cachePut?.ms ?? Infinity) < 5_000,
        `cache write answered at once (${out.cachePut?.ms} ms)`,
      );
      assert.equal(out.read?.ok, true, JSON.stringify(out.read));
      assert.match(out.fatal ?? '', /ENOSPC|SQLITE_FULL/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
