/**
 * The cost of the node's own thread, alone: one node (no followers, no network), 64 loops of
 * `execute(INSERT)` for `seconds` after a 2 s warm-up, CPU per write from process.cpuUsage().
 * Runs the built package (`npm run build` first):
 *
 *   node bench/crossing.mjs worker 5     the node on its own thread (start()'s default)
 *   node bench/crossing.mjs main 5       the node on the application's thread
 *
 * docs/BENCHMARKS.md, "The crossing alone, one node".
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start } from '../dist/index.js';

const thread = process.argv[2] ?? 'worker';
const seconds = Number(process.argv[3] ?? 5);
if (thread !== 'worker' && thread !== 'main')
  throw new Error('usage: node bench/crossing.mjs worker|main [seconds]');

/** A port nothing listens on now (127.0.0.1). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const root = mkdtempSync(join(tmpdir(), 'hiqlite-crossing-'));
const [raft, api] = [await freePort(), await freePort()];
const db = await start(
  {
    nodeId: 1,
    nodes: [{ id: 1, addrRaft: `127.0.0.1:${raft}`, addrApi: `127.0.0.1:${api}` }],
    dataDir: join(root, 'data'),
    secretRaft: 'raft-secret-for-the-bench-0123456789',
    secretApi: 'api-secret-for-the-bench-0123456789',
  },
  { thread },
);
try {
  await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const run = async (ms) => {
    let n = 0;
    const end = performance.now() + ms;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (performance.now() < end) {
          await db.execute('INSERT INTO t (v) VALUES (?)', ['x'.repeat(100)]);
          n++;
        }
      }),
    );
    return n;
  };
  await run(2000);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const n = await run(seconds * 1000);
  const cpu = process.cpuUsage(cpu0);
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `thread ${thread}: ${Math.round(n / secs)} writes/s, CPU ${((cpu.user + cpu.system) / n).toFixed(1)} µs per write (process, all threads), c=64, durability: fsync before the acknowledgement`,
  );
} finally {
  await db.close();
  rmSync(root, { recursive: true, force: true });
}
