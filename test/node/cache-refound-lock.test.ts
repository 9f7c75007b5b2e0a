/**
 * A lock held through an embedded node on the application's thread (`thread: 'main'`) whose
 * cache group kept in memory is founded anew (HiqliteNode's cache watchdog; here its last step
 * called directly on a one-node cluster): `lost` fires at once, HQL_UNAVAILABLE, instead of at
 * the next renewal a third of the lease later, while another node could take the lock in the new
 * group (found from outside). The worker-thread form: test/cluster/cache-memory.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type HiqliteError, start } from '../../src/index.js';
import { oneNodeConfig } from '../support/one-node-config.js';

test("thread 'main': a held lock is lost as soon as the node's cache group kept in memory is founded anew", async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-refound-lock-'));
  const db = await start(await oneNodeConfig(root, { cacheStorageDisk: false }), { thread: 'main' });
  try {
    await db.cache('c').put('k', 1);
    const lock = await db.lock('job', { leaseMs: 300_000 });
    let fired: unknown = null;
    lock.lost.addEventListener('abort', () => {
      fired = lock.lost.reason;
    });
    const runtime = (db as unknown as { node: { refoundCacheGroupHere(): Promise<void> } }).node;
    await runtime.refoundCacheGroupHere();
    assert.equal(lock.lost.aborted, true);
    assert.ok(fired !== null, "'abort' fired without reading lost");
    assert.equal((fired as HiqliteError).code, 'HQL_UNAVAILABLE');
    assert.match((fired as HiqliteError).message, /founded anew/);
    assert.equal(await db.cache('c').get('k'), null, 'the group starts empty');
    const next = await db.lock('job', { leaseMs: 10_000 });
    assert.ok(next.token > lock.token, `token ${next.token} after ${lock.token}`);
    assert.equal(next.lost.aborted, false);
    await next.release();
    await lock.release(); // a no-op: it was lost
  } finally {
    await db.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test("a cache-only node's leader watchers follow the cache group founded anew (its Raft group is replaced)", async () => {
  const root = mkdtempSync(join(tmpdir(), 'hq-refound-leader-'));
  const cfg = await oneNodeConfig(root, { cacheStorageDisk: false, sqlite: false });
  const db = await start(cfg, { thread: 'main' });
  try {
    const runtime = (
      db as unknown as {
        node: {
          refoundCacheGroupHere(): Promise<void>;
          onLeaderChange(fn: (s: { role: string; leaderId: number | null }) => void): () => void;
          isLeader(): boolean;
        };
      }
    ).node;
    const seen: string[] = [];
    runtime.onLeaderChange((s) => seen.push(s.role));
    await runtime.refoundCacheGroupHere();
    // It dropped its state (no leader) and, node 1, founded the group anew and leads it: its
    // watchers heard both (the embedded worker's isLeader() flag is such a watcher).
    const deadline = Date.now() + 10_000;
    while (!seen.includes('leader') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(seen.includes('leader'), `roles seen after the refound: ${seen.join(', ')}`);
    assert.equal(runtime.isLeader(), true);
    await db.cache('c').put('k', 1);
  } finally {
    await db.close();
    rmSync(root, { recursive: true, force: true });
  }
});
