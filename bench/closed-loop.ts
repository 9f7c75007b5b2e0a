/**
 * Closed-loop load: `concurrency` callers, each awaiting its operation before issuing the next,
 * for a warm-up and then a measured window. Only operations that complete inside the window
 * count (throughput) and have their latency recorded; operations still in flight at the end
 * are awaited (bounded by the operation's own timeout) but not counted.
 */
import { type HistogramJson, LatencyHistogram } from './histogram.js';

export interface LoadOptions {
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

/** What one run measured; plain JSON so a child process can send it to the parent. */
export interface LoadResult {
  readonly concurrency: number;
  /** Operations completed successfully inside the measured window. */
  readonly ops: number;
  /** Operations that failed inside the measured window (or during warm-up: `warmupErrors`). */
  readonly errors: number;
  readonly warmupErrors: number;
  /** Every operation that completed, warm-up and the tail after the window included (CPU per op). */
  readonly completedOps: number;
  /** Up to `ERROR_SAMPLES_MAX` distinct error messages, for the report. */
  readonly errorSamples: readonly string[];
  readonly elapsedMs: number;
  readonly histogram: HistogramJson;
  /** `process.hrtime` of the measured window, in µs (the clock of V8's CPU profiles). */
  readonly windowUs: readonly [startUs: number, endUs: number];
}

const ERROR_SAMPLES_MAX = 5;
/** Longest run of back-to-back operations without giving the event loop a turn. */
const YIELD_EVERY_MS = 2;

/** `op(worker)` performs one operation; `worker` is the caller's index in [0, concurrency). */
export async function runClosedLoop(
  o: LoadOptions,
  op: (worker: number) => Promise<unknown>,
): Promise<LoadResult> {
  const hist = new LatencyHistogram();
  const errorSamples = new Set<string>();
  let ops = 0;
  let errors = 0;
  let warmupErrors = 0;
  let completedOps = 0;
  const t0 = performance.now();
  const measureStart = t0 + o.warmupMs;
  const deadline = measureStart + o.durationMs;
  let windowStartUs = 0;
  let windowEndUs = 0;
  // The window's start in the profiler's clock, taken by whichever caller crosses it first.
  const markStart = () => {
    if (windowStartUs === 0) windowStartUs = hrtimeUs();
  };

  const caller = async (worker: number): Promise<void> => {
    let lastYieldMs = performance.now();
    // Bounded by the deadline: every iteration takes time on performance.now().
    while (performance.now() < deadline) {
      // An operation that resolves on a microtask (a local read) would otherwise starve the
      // event loop: no timers, no heartbeats. A server yields between requests; so do we.
      if (performance.now() - lastYieldMs > YIELD_EVERY_MS) {
        await new Promise<void>((r) => setImmediate(r));
        lastYieldMs = performance.now();
      }
      const start = performance.now();
      let failed: unknown = null;
      try {
        await op(worker);
      } catch (e) {
        failed = e;
      }
      const end = performance.now();
      if (failed === null) completedOps++;
      if (end < measureStart) {
        if (failed !== null) warmupErrors++;
        continue;
      }
      markStart();
      if (end > deadline) break;
      if (failed === null) {
        ops++;
        hist.record(end - start);
      } else {
        errors++;
        if (errorSamples.size < ERROR_SAMPLES_MAX) errorSamples.add(describe(failed));
      }
    }
    if (windowEndUs === 0) windowEndUs = hrtimeUs();
  };
  await Promise.all(Array.from({ length: o.concurrency }, (_, i) => caller(i)));
  return {
    concurrency: o.concurrency,
    ops,
    errors,
    warmupErrors,
    completedOps,
    errorSamples: [...errorSamples],
    elapsedMs: o.durationMs,
    histogram: hist.toJSON(),
    windowUs: [windowStartUs, windowEndUs],
  };
}

function hrtimeUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return `${typeof code === 'string' ? `${code}: ` : ''}${e.message}`.slice(0, 200);
  }
  return String(e).slice(0, 200);
}
