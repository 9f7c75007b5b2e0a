/**
 * What the two suites (`npm run bench`, bench/run.ts, and `npm run bench:cache`,
 * bench/cache-run.ts) share: the run header, the measured window from the options, waiting for
 * a quiet machine, the command-line options both take, metrics of every node, leader changes during a run, latency percentiles of a
 * histogram, and the per-thread profile summaries of a `--profile` run.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Metrics } from '../src/index.js';
import { type BenchCluster, COMPILED, sleep } from './cluster.js';
import {
  type ClusterConfigInfo,
  clusterConfigInfo,
  currentLoad,
  type MachineInfo,
  machineInfo,
} from './machine.js';
import { formatSummary, type ProfileSummary, summarizeProfile } from './profile-summary.js';
import { formatMachine } from './report.js';

export function log(s = ''): void {
  process.stdout.write(`${s}\n`);
}

/** The header every run prints first: machine, cluster configuration, compiled or tsx. */
export function formatHeader(machine: MachineInfo, config: ClusterConfigInfo): string {
  const code = COMPILED ? 'compiled JavaScript (tsc build)' : 'TypeScript through tsx (esbuild, keepNames)';
  return `${formatMachine(machine, config)}\ncode: ${code}`;
}

/** The options both suites take; each adds its own (`--profile` differs between them). */
export const SUITE_OPTIONS = {
  quick: { type: 'boolean', default: false },
  json: { type: 'string' },
  seconds: { type: 'string' },
  only: { type: 'string' },
  list: { type: 'boolean', default: false },
  'wait-load': { type: 'string' },
  'wait-max-s': { type: 'string', default: '600' },
  'profile-dir': { type: 'string' },
  'main-first': { type: 'boolean', default: false },
} as const;

/**
 * The order of the two clusters (node 1's node on its own thread, then on the application's):
 * `--main-first` turns it around, so that alternating runs can tell the cost of the thread from
 * what running first or second costs (the build just before, a warmer machine after).
 */
export function threadOrder(values: { 'main-first'?: boolean }): readonly ('worker' | 'main')[] {
  return values['main-first'] === true ? ['main', 'worker'] : ['worker', 'main'];
}

/**
 * The start of a run: waits for a quiet machine if `--wait-load` asks (a note if it never came),
 * then prints the header. Returns the machine and configuration for the report.
 */
export async function startRun(
  values: { 'wait-load'?: string; 'wait-max-s'?: string },
  notes: string[],
): Promise<{ machine: MachineInfo; config: ClusterConfigInfo }> {
  if (values['wait-load'] !== undefined)
    await waitForLoad(Number(values['wait-load']), Number(values['wait-max-s']), notes);
  const machine = machineInfo();
  const config = clusterConfigInfo();
  log(formatHeader(machine, config));
  return { machine, config };
}

/** The warm-up and measured window of each workload from `--quick` and `--seconds`. */
export function runWindow(values: { quick?: boolean; seconds?: string }): {
  quick: boolean;
  durationMs: number;
  warmupMs: number;
} {
  const quick = values.quick === true;
  const durationMs = values.seconds !== undefined ? Number(values.seconds) * 1000 : quick ? 2000 : 8000;
  if (!Number.isFinite(durationMs) || durationMs <= 0) throw new Error('--seconds must be a positive number');
  return { quick, durationMs, warmupMs: quick ? 300 : 1000 };
}

/** Waits (at most `maxWaitS`) for a 1-minute load average below `maxLoad`; a note if it never came. */
export async function waitForLoad(maxLoad: number, maxWaitS: number, notes: string[]): Promise<void> {
  const deadline = Date.now() + maxWaitS * 1000;
  // Bounded by the deadline.
  for (;;) {
    const l = currentLoad();
    if (l < maxLoad) {
      log(`load average ${l} < ${maxLoad}: starting`);
      return;
    }
    if (Date.now() > deadline) {
      log(`load average still ${l} after ${maxWaitS} s: running anyway`);
      notes.push(`started with a 1-minute load average of ${l} (waited ${maxWaitS} s for < ${maxLoad})`);
      return;
    }
    log(`load average ${l} >= ${maxLoad}: waiting`);
    await sleep(15_000);
  }
}

/** Metrics of every node that answers. */
export async function allMetrics(
  cluster: BenchCluster,
  ids: readonly number[],
): Promise<Map<number, Metrics>> {
  const out = new Map<number, Metrics>();
  for (const id of ids) {
    const m = await cluster.metrics(id).catch(() => null);
    if (m !== null) out.set(id, m);
  }
  return out;
}

/**
 * Elections of either group during a run: each election raises its group's term, so the largest
 * term increase over the nodes counts them (at least); a different leader at the same term
 * cannot happen. Null when a node did not answer.
 */
export function leaderChanges(
  before: ReadonlyMap<number, Metrics>,
  after: ReadonlyMap<number, Metrics>,
  ids: readonly number[],
): number | null {
  let changes = 0;
  for (const id of ids) {
    const b = before.get(id);
    const a = after.get(id);
    if (b === undefined || a === undefined) return null;
    changes = Math.max(
      changes,
      a.term - b.term,
      a.leaderId !== b.leaderId ? 1 : 0,
      a.cache.term - b.cache.term,
      a.cache.leaderId !== b.cache.leaderId ? 1 : 0,
    );
  }
  return changes;
}

/**
 * Summarizes the `.cpuprofile` files in `dir` (one per thread of every node's process; `pids`
 * maps a process id to its node) and prints them, node 1 first.
 */
export function printProfiles(
  dir: string,
  pids: ReadonlyMap<number, number>,
  windowUs: readonly [number, number],
  leaderLabel: string,
): Array<ProfileSummary & { nodeId: number | null }> {
  const summaries = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort()
    .map((file) => {
      const s = summarizeProfile(join(dir, file), { windowUs, top: 30 });
      return { ...s, nodeId: s.pid === null ? null : (pids.get(s.pid) ?? null) };
    });
  summaries.sort((a, b) => (a.nodeId ?? 99) - (b.nodeId ?? 99) || (a.threadId ?? 0) - (b.threadId ?? 0));
  for (const s of summaries) {
    if (s.totalMs === 0) continue;
    const who = `node ${s.nodeId ?? '?'}${s.nodeId === 1 ? ` (${leaderLabel})` : ''}, ${s.threadId === 0 ? 'main thread' : `worker thread ${s.threadId}`}`;
    log('');
    log(formatSummary(s, who));
  }
  return summaries;
}

/**
 * Waits (30 s at most) until node 1 leads as `leads` says: the embedded runs need the leader in
 * node 1's application. If it never does, `note` is kept and the runs go on (forwarded).
 */
export async function waitForNode1ToLead(
  cluster: BenchCluster,
  leads: (m: Metrics) => boolean,
  notes: string[],
  note: string,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  // Bounded by the deadline.
  while (!leads(await cluster.metrics(1))) {
    if (Date.now() > deadline) {
      notes.push(note);
      return;
    }
    await sleep(200);
  }
}
