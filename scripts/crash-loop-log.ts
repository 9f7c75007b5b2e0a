/**
 * Long crash loop for the file log store: repeatedly starts a child that appends (and now and
 * then purges), kills it with SIGKILL after a random time, reopens the log and checks that
 * every acknowledged entry is there with its content. Exits non-zero on the first violation.
 *
 *   node --import tsx scripts/crash-loop-log.ts --cycles 50 [--seed 1] [--kill-max-ms 1500] [--keep]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Prng } from '../src/lib/prng.js';
import { crashCycle } from '../test/storage/crash-workload.js';

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '20' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
    'kill-max-ms': { type: 'string', default: '1500' },
    keep: { type: 'boolean', default: false },
  },
});
const cycles = Number(values.cycles);
const seed = Number(values.seed);
const killMaxMs = Number(values['kill-max-ms']);
if (!Number.isSafeInteger(cycles) || cycles < 1) throw new Error('--cycles must be a positive integer');

const prng = new Prng(seed);
const dir = await mkdtemp(join(tmpdir(), 'hiqlite-crash-loop-'));
console.log(`crash loop: ${cycles} cycles, seed ${seed}, log in ${dir}`);
let acknowledged = 0;
let tornTails = 0;
try {
  for (let cycle = 1; cycle <= cycles; cycle++) {
    const killAfterMs = prng.int(50, killMaxMs);
    const r = await crashCycle(dir, killAfterMs);
    acknowledged += r.printedCount;
    if (r.tornBytes > 0) tornTails++;
    console.log(
      `cycle ${cycle}: killed after ${killAfterMs} ms, ${r.printedCount} acknowledged (max ${r.printedMax}), ` +
        `log [${r.firstIndex}, ${r.lastIndex}], torn tail ${r.tornBytes} bytes: ok`,
    );
  }
  console.log(
    `all ${cycles} cycles ok: ${acknowledged} acknowledged entries checked, ${tornTails} torn tails cut`,
  );
} catch (err) {
  console.error(`FAILED (seed ${seed}, log kept in ${dir}):`, err);
  process.exitCode = 1;
} finally {
  if (process.exitCode !== 1 && !values.keep) await rm(dir, { recursive: true, force: true });
}
