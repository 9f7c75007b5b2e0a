/**
 * The workload of the crash tests (test/storage/file-log-store.test.ts and
 * scripts/crash-loop-log.ts): a child process appends deterministic entries and prints every
 * index whose append has resolved; the parent kills it with SIGKILL and checks that every
 * printed index is on disk with the right content.
 */
import type { Entry, LogIndex, Term } from '../../src/raft/types.js';
import { openFileLogStore } from '../../src/storage/file-log-store.js';

/** Small segments so crashes also land in roll-overs and spare preparation. */
export const CRASH_SEGMENT_BYTES = 64 * 1024;
/** How many appends the child keeps in flight (group commit). */
const IN_FLIGHT = 8;
/** The child stops by itself after this many entries (the parent normally kills it first). */
const CHILD_ENTRIES_MAX = 200_000;

/** The entry the workload writes at `index`: content derived from the index alone. */
export function crashEntry(index: number): Entry {
  const term = (1 + Math.floor(index / 500)) as Term;
  if (index % 97 === 0) return { kind: 'noop', index: index as LogIndex, term };
  const data = new Uint8Array((index * 37) % 600);
  for (let i = 0; i < data.length; i++) data[i] = (index * 31 + i) & 0xff;
  return { kind: 'command', index: index as LogIndex, term, data };
}

/** Child main: continue the log in `dir`, print `ready`, then `<index>` per durable append. */
export async function runCrashChild(dir: string): Promise<void> {
  const { store } = await openFileLogStore(dir, {
    segmentBytesMax: CRASH_SEGMENT_BYTES,
    cacheBytesMax: 64 * 1024,
    // The mark written as often as it can be, so that crashes land in its writes too.
    syncedMarkIntervalMs: 1,
  });
  process.stdout.write('ready\n');
  let next = store.lastIndex() + 1;
  const stop = next + CHILD_ENTRIES_MAX;
  const inFlight = new Set<Promise<void>>();
  // Bounded by CHILD_ENTRIES_MAX.
  while (next < stop) {
    const index = next++;
    const p: Promise<void> = store.append([crashEntry(index)]).then(() => {
      process.stdout.write(`${index}\n`);
      inFlight.delete(p);
    });
    inFlight.add(p);
    if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
    // Purge now and then, so crashes also hit meta-file replacement and segment deletion.
    if (index % 1000 === 0) await store.purgeTo((index - 300) as LogIndex, crashEntry(index - 300).term);
  }
  await Promise.all(inFlight);
  await store.close();
}

export interface CrashCycleResult {
  /** Indices the child reported durable before it was killed. */
  readonly printedCount: number;
  readonly printedMax: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly tornBytes: number;
}

const CHILD_START_TIMEOUT_MS = 20_000;

/**
 * One cycle: start the child on `dir`, let it append for `killAfterMs` after it is ready, kill
 * it with SIGKILL, reopen the log and check every printed index (throws on a violation).
 */
export async function crashCycle(dir: string, killAfterMs: number): Promise<CrashCycleResult> {
  const printed = await runAndKill(dir, killAfterMs);
  const { store, report } = await openFileLogStore(dir, { segmentBytesMax: CRASH_SEGMENT_BYTES });
  try {
    const first = store.firstIndex();
    const last = store.lastIndex();
    // The synced mark says only what was durable: a crash never leaves it above the log's end
    // (which the node would take for lost synced records).
    if (report.syncedMark > Math.max(last, first - 1))
      throw new Error(`after a crash the synced mark ${report.syncedMark} is above the log's end ${last}`);
    let printedMax = 0;
    for (const index of printed) {
      printedMax = Math.max(printedMax, index);
      if (index > last) throw new Error(`index ${index} was acknowledged but the log ends at ${last}`);
    }
    // Every entry present (acknowledged or not) must be exactly what was appended.
    for (let lo = first; lo <= last; ) {
      const batch = store.entries(lo, (last + 1) as LogIndex, 1024 * 1024);
      for (const e of batch) {
        const want = crashEntry(e.index);
        if (JSON.stringify(entryJson(e)) !== JSON.stringify(entryJson(want))) {
          throw new Error(`entry ${e.index} differs from what was appended`);
        }
      }
      lo = (lo + batch.length) as LogIndex;
    }
    return {
      printedCount: printed.length,
      printedMax,
      firstIndex: first,
      lastIndex: last,
      tornBytes: report.tornTail?.bytes ?? 0,
    };
  } finally {
    await store.close();
  }
}

function entryJson(e: Entry): unknown {
  return e.kind === 'command' ? { ...e, data: Buffer.from(e.data).toString('base64') } : e;
}

async function runAndKill(dir: string, killAfterMs: number): Promise<number[]> {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const childPath = fileURLToPath(new URL('./crash-child.ts', import.meta.url));
  const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', childPath, dir], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const printed: number[] = [];
  let stderr = '';
  let partial = '';
  let killTimer: NodeJS.Timeout | undefined;
  const exited = new Promise<void>((resolve, reject) => {
    const startTimer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`crash child did not start within ${CHILD_START_TIMEOUT_MS} ms: ${stderr}`));
    }, CHILD_START_TIMEOUT_MS);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line === 'ready') {
          clearTimeout(startTimer);
          killTimer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        } else if (line !== '') {
          printed.push(Number(line));
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(startTimer);
      if (killTimer !== undefined) clearTimeout(killTimer);
      if (signal === 'SIGKILL') resolve();
      else reject(new Error(`crash child exited by itself (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
  await exited;
  // A line cut short by the kill was never fully reported: ignore it.
  return printed;
}
