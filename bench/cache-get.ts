/**
 * Local `cache.get` of an embedded node, sequential (one read at a time), against a plain `Map`:
 *
 *   node --import tsx bench/cache-get.ts [--reads N] [--keys K]
 *
 * Runs a one-node cluster three times: the node on its own thread with the cache mirror (the
 * default), the same without it (`cacheMirror: false`: every read crosses to the node's thread),
 * and the node on the application's thread (`thread: 'main'`). Each reads `--reads` times in
 * sequence over `--keys` keys holding a small object. The Map baselines hold the same decoded
 * objects: `map.get(k)` in a loop, and `await` of an async function returning `map.get(k)` (the
 * shape of the cache API, whose reads return a promise). Numbers, never pass/fail.
 */
import { parseArgs } from 'node:util';
import type { HiqliteNode } from '../src/index.js';
import { mirrorServing } from './cache-workloads.js';
import { startOneNode } from './one-node.js';

const { values } = parseArgs({
  options: { reads: { type: 'string', default: '200000' }, keys: { type: 'string', default: '1000' } },
});
const READS = Number(values.reads);
const KEYS = Number(values.keys);

function value(i: number): { id: number; user: string; roles: string[] } {
  return { id: i, user: `user-${i}`, roles: ['a', 'b'] };
}

export interface GetFigures {
  readonly label: string;
  readonly nsPerRead: number;
  readonly readsPerSec: number;
}

function figures(label: string, ms: number, n: number): GetFigures {
  return { label, nsPerRead: (ms * 1e6) / n, readsPerSec: (n / ms) * 1000 };
}

/** Sequential local gets, after a warm-up of a tenth as many. */
async function timeGets(db: HiqliteNode, reads: number): Promise<number> {
  const c = db.cache<{ id: number }>('bench');
  let sink = 0;
  for (let i = 0; i < reads / 10; i++) sink += (await c.get(`k${i % KEYS}`))?.id ?? 0;
  const t0 = performance.now();
  for (let i = 0; i < reads; i++) sink += (await c.get(`k${i % KEYS}`))?.id ?? 0;
  const ms = performance.now() - t0;
  if (sink < 0) console.log(sink);
  return ms;
}

async function withNode(
  options: { thread: 'worker' | 'main'; cacheMirror?: boolean },
  reads: number,
): Promise<number> {
  const { db, close } = await startOneNode('hq-bench-get-', {
    thread: options.thread,
    ...(options.cacheMirror === undefined ? {} : { cacheMirror: options.cacheMirror }),
  });
  try {
    await db.waitUntilHealthy({ timeoutMs: 30_000 });
    const c = db.cache('bench');
    for (let i = 0; i < KEYS; i++) await c.put(`k${i}`, value(i));
    // The mirror (if any) starts with the first local read: serving, it holds every key.
    await mirrorServing(db, 'bench');
    if ((await c.get(`k${KEYS - 1}`)) === null) throw new Error('the bench data is missing');
    return await timeGets(db, reads);
  } finally {
    await close();
  }
}

export function mapBaselines(reads: number): GetFigures[] {
  const map = new Map<string, { id: number }>();
  for (let i = 0; i < KEYS; i++) map.set(`k${i}`, value(i));
  const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`);
  let sink = 0;
  // Same key construction as the cache loop (a template string per read).
  for (let i = 0; i < reads; i++) sink += map.get(`k${i % KEYS}`)?.id ?? 0;
  let t0 = performance.now();
  for (let i = 0; i < reads; i++) sink += map.get(`k${i % KEYS}`)?.id ?? 0;
  const syncMs = performance.now() - t0;
  for (let i = 0; i < reads; i++) sink += map.get(keys[i % KEYS] as string)?.id ?? 0;
  t0 = performance.now();
  for (let i = 0; i < reads; i++) sink += map.get(keys[i % KEYS] as string)?.id ?? 0;
  const prebuiltMs = performance.now() - t0;
  if (sink < 0) console.log(sink);
  return [
    figures('Map.get (key string built per read)', syncMs, reads),
    figures('Map.get (prebuilt keys)', prebuiltMs, reads),
  ];
}

export async function asyncMapBaseline(reads: number): Promise<GetFigures> {
  const map = new Map<string, { id: number }>();
  for (let i = 0; i < KEYS; i++) map.set(`k${i}`, value(i));
  const get = async (k: string) => map.get(k) ?? null;
  let sink = 0;
  for (let i = 0; i < reads / 10; i++) sink += (await get(`k${i % KEYS}`))?.id ?? 0;
  const t0 = performance.now();
  for (let i = 0; i < reads; i++) sink += (await get(`k${i % KEYS}`))?.id ?? 0;
  const ms = performance.now() - t0;
  if (sink < 0) console.log(sink);
  return figures('await async Map.get (the API shape)', ms, reads);
}

async function main(): Promise<void> {
  const rows: GetFigures[] = [...mapBaselines(READS * 10), await asyncMapBaseline(READS)];
  rows.push(
    figures(
      'cache.get, node on a worker + mirror (default)',
      await withNode({ thread: 'worker' }, READS),
      READS,
    ),
  );
  rows.push(figures("cache.get, node on the app's thread", await withNode({ thread: 'main' }, READS), READS));
  const slowReads = Math.min(READS, 20_000);
  rows.push(
    figures(
      'cache.get, node on a worker, cacheMirror: false',
      await withNode({ thread: 'worker', cacheMirror: false }, slowReads),
      slowReads,
    ),
  );
  const map = rows[0] as GetFigures;
  console.log(`sequential local reads, ${KEYS} keys, ${READS} reads per cache run`);
  for (const r of rows) {
    console.log(
      `${r.label.padEnd(50)} ${r.nsPerRead.toFixed(0).padStart(8)} ns/read ${Math.round(r.readsPerSec).toLocaleString('en-US').padStart(13)} reads/s  ${((100 * r.readsPerSec) / map.readsPerSec).toFixed(1).padStart(6)}% of Map.get`,
    );
  }
}

await main();
