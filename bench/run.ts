/**
 * `npm run bench`: hiqlite on a 3-node cluster of separate processes on loopback, against raw
 * better-sqlite3 on the same machine in the same run. Prints the machine, the configuration,
 * a table of ops/s, p50, p99 and errors per workload with the ratio to its baseline, the
 * cluster's health during each run (leader changes, longest event-loop stall and peak RSS per
 * node) and where each target stands. Numbers, never pass/fail: the exit code is 0 whenever the
 * suite ran.
 *
 *   node --import tsx bench/run.ts [--quick] [--json FILE] [--seconds S] [--only ID,PREFIX…]
 *                                  [--wait-load L [--wait-max-s S]] [--main-first] [--profile [--profile-dir DIR]]
 *
 * The embedded workloads run with node 1's node on its own thread (`start()`'s default);
 * `*-thread-main` runs repeat some of them on a second cluster with the node on the application's
 * thread, for the cost of the thread; `stall-thread-*` block the embedded leader's event loop
 * (5 s busy loop, 3 s local query) while node 2's clients write. A focused run of these:
 *   npm run bench -- --only insert-embedded-c1,insert-embedded-c64,stall
 *
 * --quick      2 s per workload (smoke run, about a minute in all)
 * --json FILE  also write the whole report as JSON
 * --only       run only the workloads whose id starts with one of these (ids: see --list)
 * --wait-load  wait (at most --wait-max-s, default 600) until the 1-minute load average is below L
 * --main-first the cluster with the node on the application's thread first (alternate it with the
 *              default order to tell the thread's cost from the order's)
 * --profile    instead of the suite: the embedded c=64 INSERT run (or the embedded workload
 *              --only names, exactly or by prefix; a `-thread-main` one runs the node on the
 *              application's thread) under `--cpu-prof` on every node, then the self time per
 *              function and per area of each node's threads
 */

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect, type HiqliteClient } from '../src/index.js';
import { parseCliArgs } from '../test/support/cli-args.js';
import { BASELINE_KINDS, BASELINE_LABELS, type BaselineKind, runBaseline } from './baseline.js';
import type { LoadResult } from './closed-loop.js';
import { BenchCluster, COMPILED, INDEX_URL, LOADER_ARGS, SECRET_API, sleep } from './cluster.js';
import { LatencyHistogram } from './histogram.js';
import { LoopMonitor, type LoopStats } from './loop-monitor.js';
import { type ClusterConfigInfo, currentLoad, type MachineInfo, round } from './machine.js';
import {
  type BaselineRecord,
  type BenchReport,
  evaluateTargets,
  figures,
  formatBaselines,
  formatCpu,
  formatHealth,
  formatMachine,
  formatMemory,
  formatRuns,
  formatTargets,
  loopOf,
  type NodeRunStats,
  num,
  type RunRecord,
  usPerOp,
  type Where,
} from './report.js';
import {
  allMetrics,
  leaderChanges,
  log,
  printProfiles,
  runWindow,
  SUITE_OPTIONS,
  startRun,
  threadOrder,
  waitForNode1ToLead,
} from './suite-common.js';
import { runWorkload, TXN_ROWS, type WorkloadKind } from './workloads.js';

interface Spec {
  readonly id: string;
  readonly label: string;
  readonly kind: WorkloadKind;
  readonly where: Where;
  readonly concurrency: number;
  readonly baseline: BaselineKind | null;
  readonly writes: boolean;
  readonly rowsPerOp: number;
  /** Node 1's node on the application's thread (`start({ thread: 'main' })`): a second cluster. */
  readonly thread?: 'main';
}

const CONCURRENCIES = [1, 16, 64, 256] as const;
/** Remote runs spread their callers over this many connections (fewer when c is smaller). */
const REMOTE_CONNECTIONS_MAX = 4;

/** INSERT of one row at concurrency `c`, compared with better-sqlite3's full-sync INSERT. */
const insert = (c: number, where: 'embedded leader' | 'remote → leader', thread?: 'main'): Spec => ({
  id: `insert-${where === 'embedded leader' ? 'embedded' : 'remote'}-c${c}${thread === undefined ? '' : '-thread-main'}`,
  label: `INSERT 1 row${thread === undefined ? '' : ", node on app's thread"}`,
  kind: 'insert',
  where,
  concurrency: c,
  baseline: 'insertFull',
  writes: true,
  rowsPerOp: 1,
  ...(thread === undefined ? {} : { thread }),
});

const SPECS: readonly Spec[] = [
  ...CONCURRENCIES.map((c) => insert(c, 'embedded leader')),
  ...CONCURRENCIES.map((c) => insert(c, 'remote → leader')),
  {
    id: 'txn-embedded-c1',
    label: `txn ${TXN_ROWS.toLocaleString('en-US')} rows`,
    kind: 'txn',
    where: 'embedded leader',
    concurrency: 1,
    baseline: 'txnFull',
    writes: true,
    rowsPerOp: TXN_ROWS,
  },
  {
    id: 'query-embedded-c1',
    label: 'point query()',
    kind: 'query',
    where: 'embedded leader',
    concurrency: 1,
    baseline: 'select',
    writes: false,
    rowsPerOp: 0,
  },
  ...[1, 16].map(
    (c): Spec => ({
      id: `consistent-follower-c${c}`,
      label: 'queryConsistent()',
      kind: 'queryConsistent',
      where: 'remote → follower',
      concurrency: c,
      baseline: 'select',
      writes: false,
      rowsPerOp: 0,
    }),
  ),
  // The cost of the node's own thread: the same runs with the node on the application's thread
  // (`thread: 'main'`, the shape before issue 11), on a second cluster in the same run.
  ...[1, 64].map((c) => insert(c, 'embedded leader', 'main')),
  {
    id: 'mixed-embedded-c64',
    label: '90% query / 10% INSERT',
    kind: 'mixed',
    where: 'embedded leader',
    concurrency: 64,
    baseline: 'mixedFull',
    writes: true,
    rowsPerOp: 0.1,
  },
];

/**
 * The embedded leader's application blocks its event loop (a 5 s busy loop, then a 3 s local
 * query) while a client of node 2 writes (c=4): with the node on its own thread (the default) and
 * on the application's thread.
 */
const STALLS = [
  { id: 'stall-thread-worker', thread: 'worker' },
  { id: 'stall-thread-main', thread: 'main' },
] as const;
const STALL_BUSY_MS = 5000;
const STALL_QUERY_MS = 3000;
const STALL_WRITERS = 4;

interface StallRecord {
  readonly id: string;
  readonly thread: 'worker' | 'main';
  /** How long the application's event loop was blocked, as it measured it. */
  readonly busyMs: number;
  readonly queryMs: number;
  readonly leaderChanges: number | null;
  readonly writesOk: number;
  readonly writesFailed: number;
  readonly writeP99Ms: number;
  readonly writeMaxMs: number;
  readonly errorSamples: readonly string[];
}

const { values } = parseCliArgs(
  {
    ...SUITE_OPTIONS,
    profile: { type: 'boolean', default: false },
  },
  'npm run bench -- [--list] [--only ID,…] [--seconds S] [--quick] [--json FILE] [--wait-load L] [--wait-max-s S] [--main-first] [--profile] [--profile-dir DIR]',
);

const { quick, durationMs, warmupMs } = runWindow(values);
const baselineTiming = quick ? { warmupMs: 200, durationMs: 1000 } : { warmupMs: 300, durationMs: 3000 };
const clientMonitor = new LoopMonitor();
const notes: string[] = [];

async function main(): Promise<void> {
  if (values.list === true) {
    for (const s of SPECS) log(`${s.id.padEnd(32)} ${s.label} (${s.where}, c=${s.concurrency})`);
    for (const s of STALLS)
      log(
        `${s.id.padEnd(32)} app blocks its loop ${STALL_BUSY_MS} + ${STALL_QUERY_MS} ms (thread: ${s.thread})`,
      );
    return;
  }
  const { machine, config } = await startRun(values, notes);
  log('');
  if (values.profile === true) {
    await profileRun(machine, config);
    return;
  }
  const only = values.only?.split(',').filter((s) => s !== '') ?? [];
  const selected = only.length === 0 ? SPECS : SPECS.filter((s) => only.some((p) => s.id.startsWith(p)));
  const specs = selected.filter((s) => s.thread === undefined);
  const mainSpecs = selected.filter((s) => s.thread === 'main');
  const stalls = only.length === 0 ? STALLS : STALLS.filter((s) => only.some((p) => s.id.startsWith(p)));
  log(
    `${selected.length} workloads, ${warmupMs} ms warm-up + ${durationMs} ms measured each` +
      `${quick ? ' (--quick)' : ''}; baselines ${baselineTiming.durationMs} ms each`,
  );

  const needed = new Set(selected.map((s) => s.baseline).filter((b): b is BaselineKind => b !== null));
  const baselines: BaselineRecord[] = [];
  for (const kind of BASELINE_KINDS) {
    if (!needed.has(kind) && kind !== 'insertNormal' && kind !== 'fdatasync') continue;
    const f = figures(runBaseline(kind, baselineTiming));
    baselines.push({ kind, label: BASELINE_LABELS[kind], ...f });
  }
  log(formatBaselines(baselines));
  log('');

  const idleModulesRssMb = idleModulesRss();
  const runs: RunRecord[] = [];
  const stallRecords: StallRecord[] = [];
  for (const thread of threadOrder(values)) {
    const todo = thread === 'worker' ? specs : mainSpecs;
    const stall = stalls.find((s) => s.thread === thread);
    if (todo.length === 0 && stall === undefined) continue;
    if (thread === 'main')
      log("a second cluster: node 1's node on the application's thread (thread: 'main')");
    const cluster = await BenchCluster.start({ thread });
    try {
      await prepare(cluster);
      await warmUp(cluster);
      if (!(await runSpecs(cluster, todo, baselines, runs))) break;
      // Last: it may cost an election.
      if (stall !== undefined) {
        const r = await runStall(cluster, stall.id, thread);
        stallRecords.push(r);
        log(`  ${formatStall(r)}`);
      }
    } finally {
      await cluster.close();
    }
  }

  const targets = evaluateTargets(runs);
  const l = loadavg();
  const report: BenchReport = {
    machine,
    config,
    mode: quick ? 'quick' : 'default',
    code: COMPILED ? 'compiled' : 'tsx',
    durationMsPerWorkload: durationMs,
    warmupMsPerWorkload: warmupMs,
    baselines,
    runs,
    targets,
    stalls: stallRecords,
    idleModulesRssMb,
    loadAvgEnd: [round(l[0] ?? 0, 2), round(l[1] ?? 0, 2), round(l[2] ?? 0, 2)],
    notes,
  };
  log('');
  log(formatMachine(machine, config));
  log(`code: ${report.code}; load average at end: ${report.loadAvgEnd.join(' / ')}`);
  log('');
  log(formatBaselines(baselines));
  log('');
  log(formatRuns(runs));
  log('');
  log('Cluster health during each run (stall = longest event-loop delay; RSS = peak during the run):');
  log(formatHealth(runs));
  log(formatMemory(runs));
  log('');
  log("CPU per completed operation, per process (all threads), and each process's CPU use during the run:");
  log(formatCpu(runs));
  log('');
  log(formatTargets(targets));
  if (stallRecords.length > 0) {
    log('');
    log(
      `The embedded leader's application blocks its event loop (${STALL_BUSY_MS} ms busy loop, then a ${STALL_QUERY_MS} ms local query) while ${STALL_WRITERS} callers write through node 2:`,
    );
    for (const r of stallRecords) log(`  ${formatStall(r)}`);
  }
  if (idleModulesRssMb !== null) {
    log('');
    log(
      `RSS of an idle process that only loaded ${COMPILED ? '' : 'tsx and '}hiqlite's modules: ${idleModulesRssMb} MB`,
    );
  }
  for (const n of notes) log(`note: ${n}`);
  if (values.json !== undefined) writeJson(values.json, report);
}

// ---------------------------------------------------------------------------------------------
// One workload
// ---------------------------------------------------------------------------------------------

/** Runs `specs` in order into `runs`; false when one failed (the cluster is then not trusted). */
async function runSpecs(
  cluster: BenchCluster,
  specs: readonly Spec[],
  baselines: readonly BaselineRecord[],
  runs: RunRecord[],
): Promise<boolean> {
  for (const spec of specs) {
    let record: RunRecord;
    try {
      record = await runSpec(cluster, spec, baselines);
    } catch (e) {
      // A broken cluster invalidates the remaining runs; report what was measured.
      notes.push(`${spec.id} failed, the suite stopped there: ${e instanceof Error ? e.message : String(e)}`);
      log(`  ${spec.id} FAILED: ${e instanceof Error ? e.message : String(e)}`);
      return false;
    }
    runs.push(record);
    log(
      `  ${spec.id.padEnd(32)} ${Math.round(record.opsPerSec).toLocaleString('en-US').padStart(9)} ops/s` +
        `  p50 ${record.p50Ms} ms  p99 ${record.p99Ms} ms  errors ${record.errors}` +
        `  leader changes ${record.leaderChanges ?? '?'}  load ${record.loadAvgAfter}`,
    );
    for (const e of record.errorSamples) log(`      error: ${e}`);
  }
  return true;
}

/** The stall scenario (STALLS): node 1 leads; its application blocks while node 2's client writes. */
async function runStall(cluster: BenchCluster, id: string, thread: 'worker' | 'main'): Promise<StallRecord> {
  cluster.checkAlive();
  const ids = cluster.ids();
  const before = await allMetrics(cluster, ids);
  const clients: HiqliteClient[] = [];
  try {
    for (let i = 0; i < STALL_WRITERS; i++) {
      clients.push(
        await connect({
          nodes: [cluster.apiAddrs.get(2) ?? ''],
          secretApi: SECRET_API,
          requestTimeoutMs: 30_000,
        }),
      );
    }
    // The writers run through the stall and a little past it (its query is calibrated first).
    const writing = runWorkload(clients, 'insert', {
      concurrency: STALL_WRITERS,
      warmupMs: 0,
      durationMs: STALL_BUSY_MS + 3 * STALL_QUERY_MS + 3000,
    });
    await sleep(1000);
    const stalled = (await cluster.call({
      cmd: 'stall',
      busyMs: STALL_BUSY_MS,
      queryMs: STALL_QUERY_MS,
    })) as {
      busyMs: number;
      queryMs: number;
    };
    const result = await writing;
    const after = await allMetrics(cluster, ids);
    const f = figures(result);
    return {
      id,
      thread,
      busyMs: stalled.busyMs,
      queryMs: stalled.queryMs,
      leaderChanges: leaderChanges(before, after, ids),
      writesOk: result.ops,
      writesFailed: result.errors + result.warmupErrors,
      writeP99Ms: f.p99Ms,
      writeMaxMs: round(LatencyHistogram.fromJSON(result.histogram).maxMs, 1),
      errorSamples: result.errorSamples,
    };
  } finally {
    for (const c of clients) await c.close().catch(() => {});
  }
}

function formatStall(r: StallRecord): string {
  return (
    `${r.id.padEnd(22)} blocked ${r.busyMs} ms + query ${r.queryMs} ms: leader changes ${r.leaderChanges ?? '?'}, ` +
    `writes ok ${r.writesOk}, failed ${r.writesFailed}, write p99 ${r.writeP99Ms} ms, max ${r.writeMaxMs} ms` +
    r.errorSamples.map((e) => `\n      error: ${e}`).join('')
  );
}

async function prepare(cluster: BenchCluster): Promise<void> {
  // Node 1 bootstraps the cluster, so it normally leads.
  await waitForNode1ToLead(
    cluster,
    (m) => m.role === 'leader',
    notes,
    'node 1 (the embedded writer) was not the leader: "embedded leader" runs were forwarded',
  );
  await cluster.call({ cmd: 'prepare' });
}

/**
 * Fresh processes run cold code (tsx-compiled, not yet optimized by V8): whichever workload
 * came first would pay for it. Unmeasured writes on both paths first.
 */
async function warmUp(cluster: BenchCluster): Promise<void> {
  const ms = quick ? 1000 : 3000;
  log(`warming up the cluster (${ms} ms embedded + ${ms} ms remote INSERTs, c=16, not measured)`);
  await cluster.call({ cmd: 'run', kind: 'insert', concurrency: 16, warmupMs: 0, durationMs: ms });
  const leader = (await cluster.metrics(1)).leaderId ?? 1;
  const client = await connect({ nodes: [cluster.apiAddrs.get(leader) ?? ''], secretApi: SECRET_API });
  try {
    await runWorkload([client], 'insert', { concurrency: 16, warmupMs: 0, durationMs: ms });
  } finally {
    await client.close();
  }
}

async function runSpec(
  cluster: BenchCluster,
  spec: Spec,
  baselines: readonly BaselineRecord[],
): Promise<RunRecord> {
  cluster.checkAlive();
  const ids = cluster.ids();
  const before = await allMetrics(cluster, ids);
  let peakReset = true;
  for (const id of ids) {
    await cluster.loopStats(id, true);
    peakReset = cluster.resetPeakRss(id) && peakReset;
  }
  clientMonitor.read(true);
  const cpuBefore = new Map(ids.map((id) => [id, cluster.cpuMs(id)]));
  const clientCpuBefore = process.cpuUsage();
  const wallStart = performance.now();
  const load = { concurrency: spec.concurrency, warmupMs, durationMs };
  let connections = 1;
  let result: LoadResult;
  if (spec.where === 'embedded leader') {
    result = (await cluster.call({ cmd: 'run', kind: spec.kind, ...load })) as LoadResult;
  } else {
    const leader = before.get(1)?.leaderId ?? 1;
    const target = spec.where === 'remote → leader' ? leader : (ids.find((id) => id !== leader) ?? leader);
    connections = Math.min(REMOTE_CONNECTIONS_MAX, spec.concurrency);
    const clients: HiqliteClient[] = [];
    try {
      for (let i = 0; i < connections; i++) {
        clients.push(
          await connect({
            nodes: [cluster.apiAddrs.get(target) ?? ''],
            secretApi: SECRET_API,
            requestTimeoutMs: 30_000,
          }),
        );
      }
      result = await runWorkload(clients, spec.kind, load);
    } finally {
      for (const c of clients) await c.close().catch(() => {});
    }
  }
  const wallMs = performance.now() - wallStart;
  const cpuAfter = new Map(ids.map((id) => [id, cluster.cpuMs(id)]));
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const clientLoop = spec.where === 'embedded leader' ? null : clientMonitor.read(true);
  const perOp = (cpuMs: number) => usPerOp(cpuMs, result.completedOps);
  const after = await allMetrics(cluster, ids);
  const nodes: NodeRunStats[] = [];
  for (const id of ids) {
    const loop: LoopStats | null = await cluster.loopStats(id, true).catch(() => null);
    const a = cpuAfter.get(id);
    const b = cpuBefore.get(id);
    const cpuMs =
      a === undefined || b === undefined ? 0 : round(a.userMs + a.systemMs - b.userMs - b.systemMs, 1);
    const cpuSystemMs = a === undefined || b === undefined ? 0 : round(a.systemMs - b.systemMs, 1);
    nodes.push({
      nodeId: id,
      role: after.get(id)?.role ?? 'unknown',
      cpuMs,
      cpuSystemMs,
      cpuUsPerOp: perOp(cpuMs),
      ...loopOf(loop),
      peakRssMb: round(cluster.memory(id).peakKb / 1024, 1),
    });
  }
  const f = figures(result);
  const base = baselines.find((b) => b.kind === spec.baseline);
  return {
    id: spec.id,
    label: spec.label,
    kind: spec.kind,
    where: spec.where,
    concurrency: spec.concurrency,
    connections,
    rowsPerOp: spec.rowsPerOp,
    ...f,
    baseline: spec.baseline,
    ratio: base === undefined || base.opsPerSec === 0 ? null : round(f.opsPerSec / base.opsPerSec, 3),
    writes: spec.writes,
    leaderChanges: leaderChanges(before, after, ids),
    leaderBefore: before.get(1)?.leaderId ?? null,
    leaderAfter: after.get(1)?.leaderId ?? null,
    nodes,
    clientLoopMaxMs: clientLoop === null ? null : round(clientLoop.maxMs, 1),
    clientCpuUsPerOp:
      spec.where === 'embedded leader' ? null : perOp((clientCpu.user + clientCpu.system) / 1000),
    wallMs: round(wallMs, 1),
    peakRssSinceStart: !peakReset,
    loadAvgAfter: currentLoad(),
  };
}

// ---------------------------------------------------------------------------------------------
// Profile
// ---------------------------------------------------------------------------------------------

async function profileRun(machine: MachineInfo, config: ClusterConfigInfo): Promise<void> {
  const dir =
    values['profile-dir'] === undefined
      ? mkdtempSync(join(tmpdir(), 'hql-bench-prof-'))
      : resolve(values['profile-dir']);
  mkdirSync(dir, { recursive: true });
  const wanted = values.only?.split(',')[0] ?? 'insert-embedded-c64';
  // An exact id first (insert-embedded-c64-thread-main), else the first that starts with it.
  const embedded = SPECS.filter((s) => s.where === 'embedded leader');
  const spec = embedded.find((s) => s.id === wanted) ?? embedded.find((s) => s.id.startsWith(wanted));
  if (spec === undefined) throw new Error(`--profile needs an embedded workload; ${wanted} is none`);
  log(`profiling ${spec.id} (${durationMs} ms) with --cpu-prof on every node; profiles in ${dir}`);
  const cluster = await BenchCluster.start({ cpuProfDir: dir, thread: spec.thread ?? 'worker' });
  let result: LoadResult;
  const pids = new Map<number, number>();
  try {
    for (const id of cluster.ids()) pids.set(cluster.pid(id), id);
    await prepare(cluster);
    const load = { concurrency: spec.concurrency, warmupMs, durationMs };
    result = (await cluster.call({ cmd: 'run', kind: spec.kind, ...load })) as LoadResult;
  } finally {
    // A graceful exit: each process writes its profiles as it ends.
    await cluster.close();
  }
  const f = figures(result);
  log(
    `${spec.id} under the profiler: ${num(f.opsPerSec)} ops/s, p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms, ` +
      `errors ${f.errors}; load average now ${currentLoad()}`,
  );
  const summaries = printProfiles(dir, pids, result.windowUs, 'embedded leader');
  if (values.json !== undefined) {
    writeJson(values.json, {
      machine,
      config,
      mode: 'profile',
      run: f,
      window: result.windowUs,
      profiles: summaries,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/**
 * What the loader (tsx, unless compiled) and hiqlite's modules cost in RSS before any work:
 * context for the RSS column.
 */
function idleModulesRss(): number | null {
  const code = `await import(${JSON.stringify(INDEX_URL)}); const s = (await import('node:fs')).readFileSync('/proc/self/status', 'utf8'); console.log(/VmHWM:\\s+(\\d+)/.exec(s)[1]);`;
  const r = spawnSync(process.execPath, [...LOADER_ARGS, '--input-type=module', '-e', code], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const kb = Number(r.stdout.trim());
  return Number.isFinite(kb) && kb > 0 ? round(kb / 1024, 1) : null;
}

function writeJson(file: string, data: unknown): void {
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  log(`wrote ${file}`);
}

main().then(
  // Remote clients may leave timers behind; the suite is done.
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
