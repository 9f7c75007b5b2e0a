/**
 * The cache mirror on real processes: node 3's whole process is stopped (SIGSTOP) while the
 * others write far past its log, so the leader compacts its log behind node 3 and must send it a
 * snapshot. When node 3 resumes, its node thread installs that snapshot; its application thread's
 * mirror then starts a new epoch from the node's new state: both replicas end byte for byte
 * equal (digests of their snapshot bytes), and the mirror serves what the others wrote.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type CacheApp, startApps } from './cache-app-process.js';
import { eventually, TestCluster } from './harness.js';

interface MirrorReport {
  status: { mode: string; epoch: number; appliedIndex: number; snapshots: number; gaps: number };
  mirror: { index: number; sha256: string };
  node: { index: number; sha256: string };
}

describe('cache mirror across a snapshot install', () => {
  let cluster: TestCluster;
  const apps = new Map<number, CacheApp>();
  const app = (id: number) => apps.get(id) as CacheApp;

  before(async () => {
    cluster = await TestCluster.create({
      nodes: 3,
      startNodes: [],
      toml: 'logs_until_snapshot = 20\ncache_storage_disk = false',
    });
    for (const [id, a] of await startApps(cluster, [1, 2, 3])) apps.set(id, a);
  });

  after(async () => {
    await Promise.all([...apps.values()].map((a) => a.kill()));
    await cluster?.close();
  });

  test("after the node installs a snapshot, the mirror's state equals the node's", async () => {
    await app(1).request('put', { cache: 'c', key: 'first', value: 'a' });
    await eventually('node 3 to read the first write', async () => {
      return (await app(3).request('get', { cache: 'c', key: 'first' })) === 'a';
    });
    // The mirror started with that first local read; it serves once it has the node's state.
    let before = await app(3).request<MirrorReport>('mirror');
    await eventually("node 3's mirror to serve", async () => {
      before = await app(3).request<MirrorReport>('mirror');
      return before.status.mode === 'live';
    });
    const writer = 1;
    app(3).pause();
    try {
      const big = 'x'.repeat(2000);
      for (let i = 0; i < 300; i++)
        await app(writer).request('put', { cache: 'c', key: `k${i % 40}`, value: `${i}${big}` });
      await app(writer).request('put', { cache: 'c', key: 'last', value: 'z' });
    } finally {
      app(3).resume();
    }
    await eventually('node 3 to catch up', async () => {
      return (await app(3).request('get', { cache: 'c', key: 'last' })) === 'z';
    });
    const m = await app(3).request<{ cache: { appliedIndex: number } }>('metrics');
    assert.ok(m.cache.appliedIndex > 300);
    // Compare both replicas at one index (an expire or a lock renewal could land between them).
    let report: MirrorReport | null = null;
    await eventually('the mirror and the node to stand at the same index', async () => {
      report = await app(3).request<MirrorReport>('mirror');
      return report.mirror.index === report.node.index && report.status.mode === 'live';
    });
    const r = report as unknown as MirrorReport;
    assert.equal(r.mirror.sha256, r.node.sha256, `replicas differ at ${r.node.index}`);
    assert.ok(
      r.status.snapshots > before.status.snapshots,
      `the node installed a snapshot, so the mirror began a new epoch (${JSON.stringify(r.status)})`,
    );
    assert.equal(r.status.gaps, 0);
    assert.equal(await app(3).request('get', { cache: 'c', key: 'k7' }), `287${'x'.repeat(2000)}`);
    // And it follows by entries again.
    await app(1).request('put', { cache: 'c', key: 'after', value: 1 });
    await eventually('node 3 to read a write after the install', async () => {
      return (await app(3).request('get', { cache: 'c', key: 'after' })) === 1;
    });
  });
});
