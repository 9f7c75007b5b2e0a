/**
 * `npm run bench:crossing [-- --seconds S]`: the cost of the node's own thread, alone. One node
 * (no followers, no network), 64 loops of `execute(INSERT)` for S seconds (default 5) after a 2 s
 * warm-up, CPU per write from process.cpuUsage(), the node on its own thread and on the
 * application's thread alternating, three runs each. Compiled (bench/compiled.mjs), as users run
 * it. docs/BENCHMARKS.md, "The crossing alone, one node".
 */
import { parseArgs } from 'node:util';
import { currentLoad, machineInfo } from './machine.js';
import { startOneNode } from './one-node.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' } } });
const seconds = Number(values.seconds);
if (!(seconds > 0)) throw new Error(`--seconds must be a positive number, got ${values.seconds}`);

async function measure(thread: 'worker' | 'main'): Promise<{ perSec: number; cpuUs: number }> {
  const { db, close } = await startOneNode('hq-bench-crossing-', { thread });
  try {
    await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    const run = async (ms: number): Promise<number> => {
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
    return { perSec: n / ((performance.now() - t0) / 1000), cpuUs: (cpu.user + cpu.system) / n };
  } finally {
    await close();
  }
}

const m = machineInfo();
console.log(
  `machine: ${m.cores} cores, ${m.cpuModel}, ${m.memoryGiB} GiB RAM, Node ${m.node}, ${m.platform}, load average at start ${m.loadAvgStart.join(' / ')} (1/5/15 min)`,
);
console.log(`hiqlite ${m.hiqliteVersion}${m.commit === null ? '' : ` (${m.commit})`}, compiled`);
console.log(
  `one node, c=64 INSERTs of 100 bytes, ${seconds} s each after 2 s of warm-up, durability: fsync before the acknowledgement`,
);
for (let round = 1; round <= 3; round++) {
  for (const thread of ['worker', 'main'] as const) {
    const { perSec, cpuUs } = await measure(thread);
    console.log(
      `round ${round}  thread ${thread.padEnd(6)}  ${Math.round(perSec).toLocaleString('en-US')} writes/s  CPU ${cpuUs.toFixed(1)} µs per write (process, all threads)  load ${currentLoad().toFixed(2)}`,
    );
  }
}
