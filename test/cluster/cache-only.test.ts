/**
 * Cache-only nodes (`sqlite = false`) as `hiqlite serve` processes: the cache group runs alone,
 * with its storage in memory no file is written, SQL calls are refused with HQL_SQLITE_DISABLED,
 * a node killed with -9 comes back with nothing and rejoins as a new learner, and a node with
 * SQLite is refused (the other way round: cache-only-mismatch.test.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { CACHE_ONLY, isCode, refusedStart } from './cache-only-helpers.js';
import { eventually, SECRET_API, TestCluster } from './harness.js';

describe('cache-only nodes in memory (hiqlite serve)', () => {
  let cluster: TestCluster;

  before(async () => {
    // Node 1 founds the cluster once every configured node answers, so node 4 starts as a
    // cache-only learner with the others; it is stopped (memory storage: it keeps nothing) and
    // comes back with sqlite = true in the last test, where the cluster must refuse it.
    cluster = await TestCluster.create({
      nodes: 4,
      toml: (id) => (id === 4 ? `${CACHE_ONLY}\nlearner_only = true` : CACHE_ONLY),
    });
    await cluster.waitForMembership({ voters: [1, 2, 3], learners: [4] });
    await cluster.kill(4);
  });

  after(async () => {
    await cluster?.close();
  });

  test('the cache group runs alone and no data directory is created', async () => {
    const all = await cluster.waitForMembership({ voters: [1, 2, 3], learners: [4] });
    for (const [id, m] of all) {
      assert.equal(m.sqlite, false, `node ${id}`);
      assert.deepEqual([...m.cache.voters].sort(), [1, 2, 3]);
      assert.equal(m.leaderId, m.cache.leaderId, 'the node reports the cache group as its group');
      assert.equal(
        existsSync(cluster.node(id).dataDir),
        false,
        `node ${id} created ${cluster.node(id).dataDir}`,
      );
    }
    const health = await cluster.http(1, '/health');
    assert.equal(health.status, 200, JSON.stringify(health.body));
  });

  test('caches, counters, locks and notify work through every node', async () => {
    const c = await cluster.client();
    const listener = c.listen<{ n: number }>('events');
    const first = listener.next();
    await c.cache('sessions').put('s1', { user: 7 }, { ttlMs: 60_000 });
    assert.equal(await c.counter('hits').add('k', 5), 5n);
    for (const id of [1, 2, 3]) {
      const on = await cluster.client([id]);
      assert.deepEqual(await on.cache('sessions').get('s1', { consistency: 'linearizable' }), { user: 7 });
      assert.equal(await on.counter('hits').get('k', { consistency: 'linearizable' }), 5n);
      await cluster.dropClient(on);
    }
    const lock = await c.lock('job', { leaseMs: 5_000 });
    const other = await cluster.client([2]);
    assert.equal(await other.tryLock('job'), null);
    await lock.release();
    const next = await other.lock('job', { leaseMs: 5_000 });
    assert.ok(next.token > lock.token, `fencing token ${next.token} after ${lock.token}`);
    await next.release();
    await other.notify('events', { n: 1 });
    const got = await first;
    assert.equal(got.done, false);
    assert.deepEqual(got.value?.payload, { n: 1 });
    await listener.return?.();
  });

  test('SQL calls are refused with HQL_SQLITE_DISABLED, over the API and over HTTP', async () => {
    const c = await cluster.client();
    await assert.rejects(c.execute('CREATE TABLE t (x)'), isCode('HQL_SQLITE_DISABLED'));
    await assert.rejects(c.query('SELECT 1'), isCode('HQL_SQLITE_DISABLED'));
    await assert.rejects(
      c.query('SELECT 1', [], { consistency: 'linearizable' }),
      isCode('HQL_SQLITE_DISABLED'),
    );
    await assert.rejects(c.txn([['INSERT INTO t VALUES (1)']]), isCode('HQL_SQLITE_DISABLED'));
    await assert.rejects(c.backup(), isCode('HQL_SQLITE_DISABLED'));
    for (const route of ['/execute', '/query']) {
      const r = await cluster.http(2, route, {
        method: 'POST',
        headers: { 'X-API-SECRET': SECRET_API, 'content-type': 'application/json' },
        body: JSON.stringify({ sql: 'SELECT 1' }),
      });
      assert.equal(r.status, 501, JSON.stringify(r.body));
      const body = r.body as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'HQL_SQLITE_DISABLED');
      assert.match(body.error.message, /sqlite = false/);
    }
  });

  test('a follower killed with -9 comes back with nothing and rejoins as a new learner, then voter', async () => {
    const leader = await cluster.leader();
    const follower = [1, 2, 3].find((id) => id !== leader) as number;
    const c = await cluster.client([leader]);
    await c.cache('c').put('before', 1);
    await cluster.kill(follower);
    await c.cache('c').put('while-down', 2);
    await cluster.start(follower); // READY: a member again
    await cluster.waitForMembership({ voters: [1, 2, 3], learners: [4] });
    assert.equal(existsSync(cluster.node(follower).dataDir), false);
    const back = await cluster.client([follower]);
    await eventually('the restarted node to hold what was written before and while it was down', async () => {
      const before = await back.cache('c').get('before');
      const during = await back.cache('c').get('while-down');
      return before === 1 && during === 2;
    });
    await back.cache('c').put('after', 3);
    assert.equal(await c.cache('c').get('after', { consistency: 'linearizable' }), 3);
  });

  test('a node with sqlite = true is refused by the cache-only cluster, naming the setting', async () => {
    const file = cluster.node(4).configFile;
    writeFileSync(file, readFileSync(file, 'utf8').replace('sqlite = false', 'sqlite = true'));
    const output = await refusedStart(cluster, 4);
    assert.match(output, /HQL_CLUSTER_MISMATCH|same sqlite setting/);
    assert.match(output, /sqlite = false \(cache-only\)/);
    await cluster.waitForMembership({ voters: [1, 2, 3], learners: [4] });
  });
});
