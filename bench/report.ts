/**
 * The benchmark's results as records, the printed tables and the verdict on each target.
 * Targets are reported as measured, never adjusted: a miss is a finding.
 */
import type { BaselineKind } from './baseline.js';
import type { LoadResult } from './closed-loop.js';
import { LatencyHistogram } from './histogram.js';
import type { LoopStats } from './loop-monitor.js';
import type { ClusterConfigInfo, MachineInfo } from './machine.js';
import { round } from './machine.js';
import type { WorkloadKind } from './workloads.js';

export interface Figures {
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly ops: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
}

export interface BaselineRecord extends Figures {
  readonly kind: BaselineKind;
  readonly label: string;
}

export type Where = 'embedded leader' | 'remote → leader' | 'remote → follower';

export interface NodeRunStats {
  readonly nodeId: number;
  readonly role: string;
  /** Longest event-loop stall during the run (monitorEventLoopDelay, 10 ms resolution). */
  readonly loopMaxMs: number | null;
  readonly loopP99Ms: number | null;
  /** Peak RSS during the run (or since start, see `peakRssSinceStart`). */
  readonly peakRssMb: number;
  /** CPU time the node's process used during the run (warm-up included), all threads. */
  readonly cpuMs: number;
  /** The kernel's part of cpuMs: syscalls, fsync, waking other threads and processes. */
  readonly cpuSystemMs: number;
  /** cpuMs per completed operation (warm-up included), in µs: what one operation costs this node. */
  readonly cpuUsPerOp: number | null;
  /** At the end of the run: the JS heap of the main thread, and memory outside it. */
  readonly heapUsedMb: number | null;
  readonly externalMb: number | null;
}

export interface RunRecord extends Figures {
  readonly id: string;
  readonly label: string;
  readonly kind: WorkloadKind;
  readonly where: Where;
  readonly concurrency: number;
  /** Client connections (remote runs) or 1 (embedded). */
  readonly connections: number;
  /** Rows written per operation (1,000 for txn, 0 for reads). */
  readonly rowsPerOp: number;
  readonly baseline: BaselineKind | null;
  /** ops/s divided by the baseline's ops/s. */
  readonly ratio: number | null;
  readonly writes: boolean;
  /** Elections during the run: the largest increase of the term over the nodes (null: unknown). */
  readonly leaderChanges: number | null;
  readonly leaderBefore: number | null;
  readonly leaderAfter: number | null;
  readonly nodes: readonly NodeRunStats[];
  /** The remote client process's own longest stall (remote runs only). */
  readonly clientLoopMaxMs: number | null;
  /** CPU per completed operation of the remote client process, in µs (remote runs only). */
  readonly clientCpuUsPerOp: number | null;
  /** Wall time of the run (warm-up included), for CPU utilisation. */
  readonly wallMs: number;
  readonly peakRssSinceStart: boolean;
  readonly loadAvgAfter: number;
}

export interface TargetVerdict {
  readonly target: string;
  readonly goal: string;
  readonly measured: string;
  readonly met: boolean | null;
}

export interface BenchReport {
  readonly machine: MachineInfo;
  readonly config: ClusterConfigInfo;
  readonly mode: 'quick' | 'default' | 'profile';
  readonly durationMsPerWorkload: number;
  readonly warmupMsPerWorkload: number;
  readonly baselines: readonly BaselineRecord[];
  readonly runs: readonly RunRecord[];
  readonly targets: readonly TargetVerdict[];
  /** TypeScript through tsx (`npm run bench`), or a tsc build run as plain JavaScript. */
  readonly code: 'tsx' | 'compiled';
  /** RSS of an idle process that only loaded hiqlite's modules (and tsx unless compiled). */
  readonly idleModulesRssMb: number | null;
  readonly loadAvgEnd: readonly [number, number, number];
  readonly notes: readonly string[];
  /** The event-loop stall scenario of bench/run.ts (STALLS), per thread mode. */
  readonly stalls?: readonly unknown[];
  readonly profile?: unknown;
}

/** p50, p99 and max of a histogram, in ms (3 decimals). */
export function latencyFigures(h: LatencyHistogram): { p50Ms: number; p99Ms: number; maxMs: number } {
  return {
    p50Ms: round(h.percentileMs(0.5), 3),
    p99Ms: round(h.percentileMs(0.99), 3),
    maxMs: round(h.maxMs, 3),
  };
}

/** CPU µs per completed operation of `cpuMs` (null when nothing completed). */
export function usPerOp(cpuMs: number, completedOps: number): number | null {
  return completedOps === 0 ? null : round((cpuMs * 1000) / completedOps, 1);
}

export function figures(r: LoadResult): Figures {
  return {
    opsPerSec: r.elapsedMs <= 0 ? 0 : round((r.ops * 1000) / r.elapsedMs, 1),
    ...latencyFigures(LatencyHistogram.fromJSON(r.histogram)),
    ops: r.ops,
    errors: r.errors,
    errorSamples: r.errorSamples,
  };
}

export function loopOf(
  s: LoopStats | null,
): Pick<NodeRunStats, 'loopMaxMs' | 'loopP99Ms' | 'heapUsedMb' | 'externalMb'> {
  return s === null
    ? { loopMaxMs: null, loopP99Ms: null, heapUsedMb: null, externalMb: null }
    : {
        loopMaxMs: round(s.maxMs, 1),
        loopP99Ms: round(s.p99Ms, 1),
        heapUsedMb: s.heapUsedMb,
        externalMb: s.externalMb,
      };
}

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

export function formatMachine(m: MachineInfo, c: ClusterConfigInfo): string {
  return [
    `machine: ${m.cores} cores, ${m.cpuModel}, ${m.memoryGiB} GiB RAM, Node ${m.node}, ${m.platform}, ` +
      `load average at start ${m.loadAvgStart.join(' / ')} (1/5/15 min)`,
    `hiqlite ${m.hiqliteVersion}${m.commit === null ? '' : ` (${m.commit})`}, started ${m.startedAt}`,
    `cluster: ${c.nodes} nodes, ${c.transport}; durability: ${c.durability}`,
    `timing: tick ${c.tickIntervalMs} ms, heartbeat ${c.heartbeatIntervalMs} ms, election timeout ` +
      `${c.electionTimeoutMs} ms (randomized up to ${2 * c.electionTimeoutMs}); snapshot every ` +
      `${c.logsUntilSnapshot} entries (once their bytes are 1/8 of the database)${c.logBytesUntilSnapshot === null ? '' : ` or ${Math.round(c.logBytesUntilSnapshot / 2 ** 20)} MiB of commands`}; ` +
      `state machine: ${c.sqliteStateMachine}`,
  ].join('\n');
}

export function formatBaselines(bs: readonly BaselineRecord[]): string {
  return table(
    ['baseline', 'ops/s', 'p50 ms', 'p99 ms'],
    bs.map((b) => [b.label, num(b.opsPerSec), ms(b.p50Ms), ms(b.p99Ms)]),
  );
}

export function formatRuns(runs: readonly RunRecord[]): string {
  return table(
    ['workload', 'where', 'c', 'ops/s', 'rows/s', 'p50 ms', 'p99 ms', 'errors', 'vs raw', 'ratio'],
    runs.map((r) => [
      r.label,
      r.where,
      String(r.concurrency),
      num(r.opsPerSec),
      r.rowsPerOp === 0 || r.rowsPerOp === 1 ? '' : num(r.opsPerSec * r.rowsPerOp),
      ms(r.p50Ms),
      ms(r.p99Ms),
      String(r.errors),
      r.baseline ?? '',
      r.ratio === null ? '' : `${r.ratio.toFixed(2)}x`,
    ]),
    [1, 8],
  );
}

export function formatHealth(runs: readonly RunRecord[]): string {
  const ids = [...new Set(runs.flatMap((r) => r.nodes.map((n) => n.nodeId)))].sort((a, b) => a - b);
  return table(
    [
      'workload',
      'c',
      'leader changes',
      ...ids.map((id) => `stall n${id} ms`),
      'stall client ms',
      ...ids.map((id) => `RSS n${id} MB`),
    ],
    runs.map((r) => {
      const byId = new Map(r.nodes.map((n) => [n.nodeId, n]));
      return [
        `${r.label} (${r.where})`,
        String(r.concurrency),
        r.leaderChanges === null ? '?' : String(r.leaderChanges),
        ...ids.map((id) => opt(byId.get(id)?.loopMaxMs)),
        opt(r.clientLoopMaxMs),
        ...ids.map((id) => opt(byId.get(id)?.peakRssMb)),
      ];
    }),
  );
}

/**
 * CPU per operation is the figure a loaded machine distorts least: throughput falls when other
 * processes take the cores, the work one write costs does not (much).
 */
export function formatCpu(runs: readonly RunRecord[]): string {
  const ids = [...new Set(runs.flatMap((r) => r.nodes.map((n) => n.nodeId)))].sort((a, b) => a - b);
  return table(
    [
      'workload',
      'c',
      ...ids.map((id) => `CPU µs/op n${id}`),
      'CPU µs/op client',
      'all µs/op',
      ...ids.map((id) => `busy n${id}`),
      'kernel share',
    ],
    runs.map((r) => {
      const byId = new Map(r.nodes.map((n) => [n.nodeId, n]));
      const all = r.nodes.reduce((s, n) => s + (n.cpuUsPerOp ?? 0), 0) + (r.clientCpuUsPerOp ?? 0);
      const cpu = r.nodes.reduce((s, n) => s + n.cpuMs, 0);
      const sys = r.nodes.reduce((s, n) => s + n.cpuSystemMs, 0);
      return [
        `${r.label} (${r.where})`,
        String(r.concurrency),
        ...ids.map((id) => opt(byId.get(id)?.cpuUsPerOp)),
        opt(r.clientCpuUsPerOp),
        opt(all),
        ...ids.map((id) => {
          const n = byId.get(id);
          return n === undefined || r.wallMs <= 0 ? '-' : `${Math.round((100 * n.cpuMs) / r.wallMs)}%`;
        }),
        cpu === 0 ? '-' : `${Math.round((100 * sys) / cpu)}%`,
      ];
    }),
  );
}

/** Where each node's memory stood at the end of the last run. */
export function formatMemory(runs: readonly RunRecord[]): string {
  const last = runs[runs.length - 1];
  if (last === undefined) return '';
  return last.nodes
    .map(
      (n) =>
        `node ${n.nodeId} (${n.role}) after the last run: peak RSS ${n.peakRssMb} MB, main-thread JS heap ` +
        `${n.heapUsedMb ?? '?'} MB, external ${n.externalMb ?? '?'} MB`,
    )
    .join('\n');
}

export function formatTargets(ts: readonly TargetVerdict[]): string {
  return table(
    ['target', 'goal', 'measured', 'met'],
    ts.map((t) => [t.target, t.goal, t.measured, t.met === null ? 'n/a' : t.met ? 'yes' : 'NO']),
    [1, 2, 3],
  );
}

// ---------------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------------

export function evaluateTargets(runs: readonly RunRecord[]): TargetVerdict[] {
  const find = (id: string) => runs.find((r) => r.id === id);
  const out: TargetVerdict[] = [];
  const rate = (id: string, target: string, goal: number) => {
    const r = find(id);
    out.push({
      target,
      goal: `>= ${num(goal)} ops/s`,
      measured: r === undefined ? 'not run' : `${num(r.opsPerSec)} ops/s`,
      met: r === undefined ? null : r.opsPerSec >= goal,
    });
  };
  rate('insert-embedded-c64', 'embedded leader writer, c=64', 20_000);
  rate('insert-remote-c64', 'remote clients, c=64', 10_000);
  const c1 = find('insert-embedded-c1');
  out.push({
    target: 'c=1 write latency (embedded)',
    goal: 'p50 <= 1.3 ms',
    measured: c1 === undefined ? 'not run' : `p50 ${ms(c1.p50Ms)} ms`,
    met: c1 === undefined ? null : c1.p50Ms <= 1.3,
  });
  const ratio = (id: string, target: string, goal: number, what: string) => {
    const r = find(id);
    out.push({
      target,
      goal: `>= ${Math.round(goal * 100)}% of ${what}`,
      measured: r?.ratio === null || r === undefined ? 'not run' : `${Math.round((r.ratio ?? 0) * 100)}%`,
      met: r?.ratio === null || r === undefined ? null : (r.ratio ?? 0) >= goal,
    });
  };
  ratio('query-embedded-c1', 'local point query()', 0.7, 'raw better-sqlite3 SELECT');
  ratio('txn-embedded-c1', `txn of 1,000 rows`, 0.5, 'raw 1,000-row transaction');
  const writes = runs.filter((r) => r.writes);
  const known = writes.filter((r) => r.leaderChanges !== null);
  const changes = known.reduce((s, r) => s + (r.leaderChanges ?? 0), 0);
  out.push({
    target: 'leader changes during write runs (incl. c=256)',
    goal: '0',
    measured:
      writes.length === 0
        ? 'not run'
        : `${changes} over ${writes.length} runs${known.length < writes.length ? ' (some unknown)' : ''}`,
    met: writes.length === 0 ? null : changes === 0 && known.length === writes.length,
  });
  const peak = Math.max(0, ...runs.flatMap((r) => r.nodes.map((n) => n.peakRssMb)));
  out.push({
    target: 'peak RSS per node',
    goal: '<= 150 MB',
    measured: runs.length === 0 ? 'not run' : `${num(peak)} MB (largest node, any run)`,
    met: runs.length === 0 ? null : peak <= 150,
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** A Markdown table; text columns (`left`, by index; the first always) align left, numbers right. */
export function table(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  left: readonly number[] = [],
): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const pad = (c: string, i: number) =>
    i === 0 || left.includes(i) ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0);
  const line = (cells: readonly string[]) => `| ${cells.map(pad).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function num(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

export function ms(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

export function opt(x: number | null | undefined): string {
  return x === null || x === undefined ? '-' : String(Math.round(x));
}
