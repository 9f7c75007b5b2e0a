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
import { enospcEnv, fillDisk, freeDisk } from '../support/enospc.js';
import { runTsx } from '../support/tsx-process.js';
import { checkReplicasOf, notifications, writer } from './client-load.js';
import { eventually, SECRET_API, sleep, TestCluster } from './harness.js';

const APP = resolve(import.meta.dirname, 'disk-full-app.ts');
const MEMBER_APP = resolve(import.meta.dirname, 'embedded-member-app.ts');

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
    assert.deepEqual([...w.errors], [], `no write failed: two of three nodes hold a majority: ${w.failures}`);
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
    assert.deepEqual([...w.errors], [], `no write failed: ${w.failures}`);
    await checkReplicasOf(c, w.acked, w.lastIndex);
  });
});

describe('an embedded node whose disk fills up (its application keeps running)', () => {
  test('the write in flight is HQL_OUTCOME_UNKNOWN at once, later writes and cache writes HQL_IO, listeners end, a held lock is lost, reads go on, onFatal is called', async () => {
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
      // The node serves both groups or neither: the cache group stopped with the SQL group.
      assert.equal(out.cachePut?.code, 'HQL_IO', JSON.stringify(out.cachePut));
      assert.match(out.cachePut?.message ?? '', /node 1 stopped serving: .*(ENOSPC|SQLITE_FULL)/);
      assert.ok(
        (out.cachePut?.ms ?? Infinity) < 5_000,
        `cache write answered at once (${out.cachePut?.ms} ms)`,
      );
      // The application's listener ends, saying why, instead of waiting for good.
      assert.equal(out.listen?.code, 'HQL_IO', JSON.stringify(out.listen));
      assert.match(out.listen?.message ?? '', /node 1 stopped serving: .*(ENOSPC|SQLITE_FULL)/);
      assert.equal(out.read?.ok, true, JSON.stringify(out.read));
      // A held lock cannot be renewed any more: its holder is told at its next renewal (every
      // third of the 30 s lease, so within 10 s), not once the lease ran out (20 to 30 s).
      const lock = out.lock as unknown as { lostAfterMs: number | null; reason: string };
      assert.ok(lock.lostAfterMs !== null && lock.lostAfterMs < 15_000, JSON.stringify(lock));
      // The one node led; stopped, it leads nothing.
      assert.deepEqual(out.isLeader, { before: true, after: false });
      assert.match(out.fatal ?? '', /ENOSPC|SQLITE_FULL/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

for (const role of ['leader', 'follower'] as const)
  describe(`a member embedded in an application whose disk fills up, as the ${role} (its API port stays up)`, () => {
    let c: TestCluster;
    const flag = () => join(c.dir, 'disk-full-1');
    const env = () => enospcEnv(c.node(1).dataDir, flag());

    before(async () => {
      // The nodes meant to lead time out first: a leader paused below is followed by one of them.
      const slow = 'election_timeout_ms = 5000';
      c = await TestCluster.create({
        nodes: 3,
        startNodes: [],
        toml: (id) => ((id === 1) === (role === 'leader') ? '' : slow),
      });
      await Promise.all([c.start(1, { env: env(), app: MEMBER_APP }), c.start(2), c.start(3)]);
      const leader = await c.leader();
      if ((leader === 1) !== (role === 'leader')) {
        c.pause(leader);
        const leads = (id: number | null) => id !== null && (id === 1) === (role === 'leader');
        const other = leader === 1 ? 2 : 1;
        await eventually(`a ${role} elected in node 1's place`, async () =>
          leads(((await c.http(other, '/health')).body as { leaderId?: number | null }).leaderId ?? null),
        );
        c.resume(leader);
      }
      assert.equal((await c.leader()) === 1, role === 'leader', `node 1 is the ${role}`);
      const db = await c.client();
      await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)');
    });
    after(async () => {
      freeDisk(flag());
      await c?.close();
    });

    test('remote clients whose node stopped serving go on through the others: no write fails, no notification is missed', async () => {
      // Node 1 first: the node the remote clients talk to.
      const db = await c.client([1, 2, 3]);
      const listener = await c.client([1, 2, 3]);
      const notifier = await c.client([2, 3]);
      const ticks = await notifications(listener, notifier, 'ticks');
      const w = writer(db, 'member', 8);
      await eventually('writes before the disk fills', async () => w.acked.length >= 50);

      fillDisk(flag());
      await eventually('node 1 to stop serving', async () => c.node(1).output.includes('FATAL '), 30_000);
      assert.match(c.node(1).output, /FATAL .*(ENOSPC|SQLITE_FULL)/);
      assert.notEqual(c.node(1).child, null, 'the application goes on');
      const atStop = w.acked.length;
      await eventually('writes through the two other nodes', async () => w.acked.length >= atStop + 200);

      // What node 1 says of itself: not healthy, naming why; it serves nothing, and says so.
      const health = await c.http(1, '/health');
      assert.equal(health.status, 503, JSON.stringify(health.body));
      const h = health.body as { error?: string; role?: string; leaderId?: number | null };
      assert.match(String(h.error), /ENOSPC|SQLITE_FULL/);
      // It leads nothing and knows no leader, whatever its frozen view last saw (as the leader).
      assert.notEqual(h.role, 'leader');
      assert.equal(h.leaderId, null);
      const exec = await c.http(1, '/execute', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-secret': SECRET_API },
        body: JSON.stringify({ sql: 'SELECT 1' }),
      });
      assert.equal(exec.status, 503, JSON.stringify(exec.body));
      const { error } = exec.body as { error: { code: string; message: string; retryable: boolean } };
      assert.equal(error.code, 'HQL_UNAVAILABLE');
      assert.equal(error.retryable, true);
      assert.match(error.message, /node 1 stopped serving \(.*(ENOSPC|SQLITE_FULL).*\): ask another node/);
      // A client of node 1 alone has nowhere else to go: it retries until its deadline, then
      // says why.
      const only1 = await c.client([1], { requestTimeoutMs: 1000 });
      await assert.rejects(only1.cache('c').get('k'), (e: { code?: string; message?: string }) => {
        assert.equal(e.code, 'HQL_UNAVAILABLE');
        assert.match(e.message ?? '', /node 1 stopped serving .*ask another node/);
        return true;
      });
      await c.dropClient(only1);

      await ticks.stop();
      await w.stop();
      assert.deepEqual([...w.errors], [], `no write failed: ${w.failures}`);
      await checkReplicasOf(c, w.acked, w.lastIndex, [2, 3]);

      // The application shuts its stopped node down; with space again it restarts and catches up.
      assert.equal(await c.stop(1), 0);
      freeDisk(flag());
      await c.start(1, { env: env(), app: MEMBER_APP });
      await checkReplicasOf(c, w.acked, w.lastIndex);
    });
  });
