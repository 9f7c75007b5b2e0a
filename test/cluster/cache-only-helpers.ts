/** What the cache-only tests share (cache-only*.test.ts). */
import assert from 'node:assert/strict';
import { HiqliteError } from '../../src/index.js';
import type { TestCluster } from './harness.js';

/** TOML of a cache-only node that keeps its cache in memory. */
export const CACHE_ONLY = 'sqlite = false\ncache_storage_disk = false';

export function isCode(code: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof HiqliteError, `a HiqliteError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

/** Starts node `id`, which must fail; resolves with what it printed. */
export async function refusedStart(cluster: TestCluster, id: number): Promise<string> {
  const ready = await cluster.startAndWatch(id, 30_000).catch((e: unknown) => String(e));
  assert.notEqual(ready, true, `node ${id} became a member:\n${cluster.node(id).output.slice(-3000)}`);
  await cluster.kill(id);
  return cluster.node(id).output;
}
