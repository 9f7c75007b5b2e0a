/**
 * Log store append benchmark (not a test): 200-byte command entries appended by N concurrent
 * callers, each awaiting its own append before issuing the next. Concurrent callers share
 * group commits, so entries/s grows with N while fsyncs/s stays bounded by the disk.
 *
 *   node --import tsx bench/log-store.ts [--seconds 3] [--segment-mib 64]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Entry, LogIndex, Term } from '../src/raft/types.js';
import { openFileLogStore } from '../src/storage/file-log-store.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    'segment-mib': { type: 'string', default: '64' },
  },
});
const durationMs = Number(values.seconds) * 1000;
const segmentBytesMax = Number(values['segment-mib']) * 1024 * 1024;
const ENTRY_DATA_BYTES = 200;

function entry(index: number): Entry {
  const data = new Uint8Array(ENTRY_DATA_BYTES).fill(index & 0xff);
  return { kind: 'command', index: index as LogIndex, term: 1 as Term, data };
}

async function run(concurrency: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hiqlite-bench-log-'));
  const { store } = await openFileLogStore(dir, { segmentBytesMax });
  try {
    let next = 1;
    // Warm-up: the first append waits for the first segment to be preallocated.
    await store.append([entry(next++)]);
    const syncs0 = store.stats().syncs;
    const entries0 = next;
    const start = performance.now();
    const deadline = start + durationMs;
    const latenciesMs: number[] = [];
    const caller = async (): Promise<void> => {
      // Bounded by the deadline.
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await store.append([entry(next++)]);
        latenciesMs.push(performance.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, caller));
    const seconds = (performance.now() - start) / 1000;
    const entries = next - entries0;
    const syncs = store.stats().syncs - syncs0;
    latenciesMs.sort((a, b) => a - b);
    const p = (q: number) =>
      latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(q * latenciesMs.length))] ?? 0;
    console.log(
      [
        `concurrency ${String(concurrency).padStart(3)}`,
        `${Math.round(entries / seconds)
          .toLocaleString('en-US')
          .padStart(8)} entries/s`,
        `${Math.round(syncs / seconds)
          .toLocaleString('en-US')
          .padStart(6)} fsyncs/s`,
        `${(entries / Math.max(1, syncs)).toFixed(1).padStart(5)} entries/fsync`,
        `append p50 ${p(0.5).toFixed(2)} ms, p99 ${p(0.99).toFixed(2)} ms`,
      ].join('  '),
    );
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

console.log(
  `file log store, ${ENTRY_DATA_BYTES}-byte commands, ${values.seconds} s per run, ${values['segment-mib']} MiB segments`,
);
for (const concurrency of [1, 16, 64]) await run(concurrency);
