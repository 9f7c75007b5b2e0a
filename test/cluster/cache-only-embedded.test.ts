/**
 * Cache-only nodes embedded with `start()`: configurations with `sqlite = false`,
 * `cache_storage_disk = false` and no `data_dir` at all, on the node's own thread (the default)
 * and with `thread: 'main'`. The cache API works across them, SQL calls are refused with
 * HQL_SQLITE_DISABLED on both threads, no file is written, and a node killed with -9 rejoins.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CacheApp, CacheAppError } from './cache-app-process.js';
import { eventually, freePorts, SECRET_API, SECRET_RAFT } from './harness.js';

const THREADS: Record<number, 'worker' | 'main'> = { 1: 'worker', 2: 'main', 3: 'worker' };

/** Writes one TOML file per node into `dir`, none with a data_dir; returns their paths. */
async function writeConfigs(dir: string): Promise<Map<number, string>> {
  const ports = await freePorts(6);
  const nodes = [1, 2, 3].map(
    (id) => `"${id} 127.0.0.1:${ports[2 * id - 2]} 127.0.0.1:${ports[2 * id - 1]}"`,
  );
  const files = new Map<number, string>();
  for (const id of [1, 2, 3]) {
    const file = join(dir, `node-${id}.toml`);
    writeFileSync(
      file,
      [
        '[hiqlite]',
        `node_id = ${id}`,
        `nodes = [${nodes.join(', ')}]`,
        `secret_raft = "${SECRET_RAFT}"`,
        `secret_api = "${SECRET_API}"`,
        'sqlite = false',
        'cache_storage_disk = false',
        'tick_interval_ms = 50',
        'heartbeat_interval_ms = 100',
        'election_timeout_ms = 1000',
        '',
      ].join('\n'),
    );
    files.set(id, file);
  }
  return files;
}

function refusedWith(code: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof CacheAppError, String(e));
    assert.equal(e.code, code, e.message);
    return true;
  };
}

describe('cache-only nodes embedded with start(), without a data directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hql-cache-only-'));
  let configs: Map<number, string>;
  const apps = new Map<number, CacheApp>();
  const app = (id: number) => apps.get(id) as CacheApp;

  before(async () => {
    configs = await writeConfigs(dir);
    const started = await Promise.allSettled(
      [1, 2, 3].map((id) => CacheApp.start(configs.get(id) as string, THREADS[id])),
    );
    started.forEach((r, i) => {
      if (r.status === 'fulfilled') apps.set(i + 1, r.value);
    });
    const failed = started.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  });

  after(async () => {
    await Promise.all([...apps.values()].map((a) => a.kill()));
    rmSync(dir, { recursive: true, force: true });
  });

  test('caches, counters, locks and notify across worker-thread and main-thread nodes', async () => {
    for (const id of [1, 2, 3]) await app(id).request('listen', { listener: 'l', channel: 'ch' });
    await app(1).request('put', { cache: 'c', key: 'k', value: { v: 1 } });
    await app(2).request('counterAdd', { counter: 'n', key: 'k', delta: '3' });
    for (const id of [1, 2, 3]) {
      assert.deepEqual(await app(id).request('get', { cache: 'c', key: 'k', consistency: 'linearizable' }), {
        v: 1,
      });
      assert.equal(await app(id).request('counterGet', { counter: 'n', key: 'k' }), '3');
    }
    const t1 = await app(2).request<number>('lock', { key: 'job' });
    assert.equal(await app(3).request('tryLock', { key: 'job' }), null);
    await app(2).request('release', { token: t1 });
    const t2 = await app(3).request<number>('lock', { key: 'job' });
    assert.ok(t2 > t1, `fencing token ${t2} after ${t1}`);
    await app(3).request('release', { token: t2 });
    await app(3).request('notify', { channel: 'ch', payload: 'hello' });
    await eventually('the notification on every node', async () =>
      [1, 2, 3].every((id) => app(id).of('l').length === 1),
    );
    for (const id of [1, 2, 3]) assert.equal(app(id).of('l')[0]?.payload, 'hello');
    const m = await app(2).request<{ sqlite: boolean; voters: number[]; cache: { voters: number[] } }>(
      'metrics',
    );
    assert.equal(m.sqlite, false);
    assert.deepEqual([...m.cache.voters].sort(), [1, 2, 3]);
  });

  test('SQL calls are refused with HQL_SQLITE_DISABLED on both threads', async () => {
    for (const id of [1, 2]) {
      await assert.rejects(
        app(id).request('execute', { sql: 'CREATE TABLE t (x)' }),
        refusedWith('HQL_SQLITE_DISABLED'),
      );
      // A local read (synchronous on the application's thread) and one with a limit (node thread).
      await assert.rejects(app(id).request('query', { sql: 'SELECT 1' }), refusedWith('HQL_SQLITE_DISABLED'));
      await assert.rejects(
        app(id).request('query', { sql: 'SELECT 1', timeoutMs: 1000 }),
        refusedWith('HQL_SQLITE_DISABLED'),
      );
    }
  });

  test('a node killed with -9 restarts with nothing and rejoins; no file was written', async () => {
    const m = await app(1).request<{ cache: { leaderId: number } }>('metrics');
    const follower = [1, 2, 3].find((id) => id !== m.cache.leaderId) as number;
    await app(follower).kill();
    apps.delete(follower);
    const up = [1, 2, 3].find((id) => id !== follower && apps.has(id)) as number;
    await app(up).request('put', { cache: 'c', key: 'while-down', value: 2 });
    apps.set(follower, await CacheApp.start(configs.get(follower) as string, THREADS[follower]));
    const back = await app(follower).request<{ cache: { voters: number[] } }>('metrics');
    assert.deepEqual([...back.cache.voters].sort(), [1, 2, 3]);
    await eventually('the restarted node to hold what was written while it was down', async () => {
      return (await app(follower).request('get', { cache: 'c', key: 'while-down' })) === 2;
    });
    assert.deepEqual(readdirSync(dir).sort(), ['node-1.toml', 'node-2.toml', 'node-3.toml']);
  });
});
