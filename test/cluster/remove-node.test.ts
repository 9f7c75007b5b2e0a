/**
 * Shrinking a cluster: a node gone for good is removed from the membership of both Raft groups
 * (`hiqlite remove-node`, `removeNode()`), so that its vote no longer counts. Found by an outside
 * probe: there was no way to do it, and a node taken out of every `nodes` list stayed a voter, so
 * that with it gone one more loss cost a 4-voter cluster its majority (2 of 4), for good.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type HiqliteClient, HiqliteError } from '../../src/index.js';
import { CLI_SOURCE, runTsx } from '../support/tsx-process.js';
import { SECRET_API, TestCluster } from './harness.js';

const sorted = (ids: readonly number[]) => [...ids].sort((a, b) => a - b);

describe('removing a node that is gone for good', () => {
  let c: TestCluster;
  let db: HiqliteClient;
  before(async () => {
    c = await TestCluster.create({ nodes: 4 });
    await c.waitForMembership({ voters: [1, 2, 3, 4] });
    db = await c.client([1, 2, 3]);
  });
  after(async () => {
    await db?.close();
    await c?.close();
  });

  test('hiqlite remove-node: its vote stops counting in both groups; then 2 of 3 still write', async () => {
    await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    await db.cache('c').put('k', 1);
    assert.equal(await c.stop(4), 0);
    // As an operator does it: with a node's configuration file.
    const r = await runTsx(CLI_SOURCE, ['remove-node', '4', '--config', c.node(2).configFile], {
      env: { ...process.env, HQL_LOG_LEVEL: 'warn' },
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /node 4 is not a member any more/);
    assert.match(r.stdout, /sql group: voters 1, 2, 3\n/);
    assert.match(r.stdout, /cache group: voters 1, 2, 3\n/);
    await c.waitForMembership({ voters: [1, 2, 3] });
    for (const id of [1, 2, 3]) assert.deepEqual(sorted((await c.metricsOf(id)).cache.voters), [1, 2, 3]);

    // A repeat (a retry after a lost answer) answers the same: the node is not a member.
    const again = await db.removeNode(4);
    assert.deepEqual(sorted(again.sql?.voters ?? []), [1, 2, 3]);
    assert.deepEqual(sorted(again.cache.voters), [1, 2, 3]);

    // One more loss: 2 of the 3 voters left are a majority (of 4 they were not).
    await c.kill(3);
    await db.execute('INSERT INTO t (id) VALUES (1)');
    await db.cache('c').put('k', 2);
    assert.deepEqual(await db.query('SELECT id FROM t', [], { consistency: 'linearizable' }), [{ id: 1 }]);
  });

  test('an id that is no node is refused; one that is no member is done', async () => {
    await assert.rejects(
      db.removeNode(0),
      (e: unknown) =>
        e instanceof HiqliteError && e.code === 'HQL_INVALID_PARAMS' && /nodeId/.test(e.message),
    );
    const m = await db.removeNode(99);
    assert.deepEqual(sorted(m.sql?.voters ?? []), [1, 2, 3]);
  });

  test('POST /remove-node, as an operator with curl', async () => {
    const post = (body: string, secret = SECRET_API) =>
      c.http(1, '/remove-node', { method: 'POST', headers: { 'x-api-secret': secret }, body });
    const ok = await post('{"nodeId": 4}');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const value = (ok.body as { value: { sql: { voters: number[] }; cache: { voters: number[] } } }).value;
    assert.deepEqual(sorted(value.sql.voters), [1, 2, 3]);
    assert.deepEqual(sorted(value.cache.voters), [1, 2, 3]);
    for (const bad of ['{}', '{"nodeId": "4"}', '{"nodeId": 4, "force": true}', '[4]'])
      assert.equal((await post(bad)).status, 400, bad);
    assert.equal((await post('{"nodeId": 4}', 'wrong-secret-0123456789')).status, 401);
  });
});
