/**
 * `npm run bench:cache`: the cache group (issue 12) on a 3-node cluster of separate processes on
 * loopback, every node an application that embeds hiqlite with `start()` (bench/node-child.ts),
 * node 1 leading both groups. The parent process is the remote client (`connect()`) and the
 * orchestrator. Prints the machine, the configuration and durability mode, per workload ops/s,
 * p50/p99, errors, leader changes, CPU per operation and the load average, local gets against
 * a plain `Map` measured in the same process in the same run, notify-to-delivery latency on
 * every member, and where each target stands. Numbers, never pass/fail.
 *
 *   node bench/compiled.mjs --suite cache [--quick] [--seconds S] [--only ID,PREFIX…] [--json FILE]
 *        [--storage disk|memory] [--wait-load L [--wait-max-s S]] [--main-first] [--profile ID]
 *
 * --storage memory  every node with `cacheStorageDisk: false` (the cache log in memory, no fsync)
 * --notify-rate N   notifications per second in the notify workload (default 100); the run also
 *                   prints the machine's wake-up floor (bench/wake-floor.ts) next to it
 * --profile ID      instead of the suite: that embedded workload (default put-embedded-c64; a
 *                   -thread-main one runs node 1 on the application's thread) under
 *                   `--cpu-prof` on every node, then the self time per area and function
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect, type HiqliteClient } from '../src/index.js';
import { parseCliArgs } from '../test/support/cli-args.js';
import {
  type CacheWorkloadKind,
  type GetTiming,
  type ListenResult,
  type LocalGetResult,
  type NotifyRunResult,
  runCacheWorkload,
} from './cache-workloads.js';
import type { LoadResult } from './closed-loop.js';
import { BenchCluster, COMPILED, SECRET_API, sleep } from './cluster.js';
import { LatencyHistogram } from './histogram.js';
import { currentLoad, round } from './machine.js';
import {
  type Figures,
  figures,
  formatMachine,
  formatTargets,
  latencyFigures,
  ms,
  num,
  opt,
  type TargetVerdict,
  table,
  usPerOp,
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
import { formatWakeFloor, measureWakeFloor, type WakeFloor } from './wake-floor.js';

type CacheWhere = 'embedded leader' | 'remote → leader' | 'every member';

interface CacheSpec {
  readonly id: string;
  readonly label: string;
  readonly kind: CacheWorkloadKind;
  readonly where: CacheWhere;
  /** Callers in all (split evenly over the members for 'every member'). */
  readonly concurrency: number;
  /** Node 1's node on the application's thread: the second cluster. */
  readonly thread?: 'main';
}

const REMOTE_CONNECTIONS_MAX = 4;
const GET_READS = 200_000;
const GET_ROUNDS = 7;
const CONTENDED = 8;

const put = (c: number, where: 'embedded leader' | 'remote → leader', thread?: 'main'): CacheSpec => ({
  id: `put-${where === 'embedded leader' ? 'embedded' : 'remote'}-c${c}${thread === undefined ? '' : '-thread-main'}`,
  label: `cache put${thread === undefined ? '' : ", node on app's thread"}`,
  kind: 'put',
  where,
  concurrency: c,
  ...(thread === undefined ? {} : { thread }),
});

const SPECS: readonly CacheSpec[] = [
  ...[1, 16, 64].map((c) => put(c, 'embedded leader')),
  ...[1, 16, 64].map((c) => put(c, 'remote → leader')),
  {
    id: 'counter-add-embedded-c64',
    label: 'counter add',
    kind: 'counterAdd',
    where: 'embedded leader',
    concurrency: 64,
  },
  {
    id: 'counter-add-remote-c64',
    label: 'counter add',
    kind: 'counterAdd',
    where: 'remote → leader',
    concurrency: 64,
  },
  {
    id: 'lock-uncontended-embedded-c1',
    label: 'lock + release, own key',
    kind: 'lockUncontended',
    where: 'embedded leader',
    concurrency: 1,
  },
  {
    id: 'lock-uncontended-remote-c1',
    label: 'lock + release, own key',
    kind: 'lockUncontended',
    where: 'remote → leader',
    concurrency: 1,
  },
  {
    id: `lock-contended-embedded-c${CONTENDED}`,
    label: 'lock + release, one key',
    kind: 'lockContended',
    where: 'embedded leader',
    concurrency: CONTENDED,
  },
  {
    id: `lock-contended-members-c${3 * 3}`,
    label: 'lock + release, one key',
    kind: 'lockContended',
    where: 'every member',
    concurrency: 3 * 3,
  },
  put(64, 'embedded leader', 'main'),
];

const { values } = parseCliArgs(
  {
    ...SUITE_OPTIONS,
    storage: { type: 'string', default: 'disk' },
    profile: { type: 'string' },
    'notify-rate': { type: 'string', default: '100' },
  },
  'npm run bench:cache -- [--list] [--only ID,…] [--seconds S] [--quick] [--json FILE] [--wait-load L] [--wait-max-s S] [--main-first] [--storage disk|memory] [--profile ID] [--profile-dir DIR] [--notify-rate N]',
);
/** Notifications per second in the notify workload (awaited one at a time: a rate above what one caller reaches is a closed loop). */
const NOTIFY_RATE_PER_S = Number(values['notify-rate']);
if (!(NOTIFY_RATE_PER_S > 0 && NOTIFY_RATE_PER_S <= 100_000))
  throw new Error(
    `--notify-rate must be a number of notifications per second in 1..100000, got ${values['notify-rate']}`,
  );

const { quick, durationMs, warmupMs } = runWindow(values);
const storageDisk = values.storage !== 'memory';
const notes: string[] = [];

interface CacheRunRecord extends Figures {
  readonly id: string;
  readonly label: string;
  readonly where: CacheWhere;
  readonly concurrency: number;
  readonly leaderChanges: number | null;
  /** CPU per completed operation of each node's process (all threads), µs. */
  readonly cpuUsPerOp: Readonly<Record<number, number | null>>;
  readonly clientCpuUsPerOp: number | null;
  /** Longest event-loop stall of each node's application thread during the run. */
  readonly loopMaxMs: Readonly<Record<number, number | null>>;
  readonly loadAvgAfter: number;
}

interface GetRecord extends LocalGetResult {
  readonly thread: 'worker' | 'main';
  readonly loadAvgAfter: number;
}

interface NotifyRecord {
  readonly notifier: NotifyRunResult & { readonly p50Ms: number; readonly p99Ms: number };
  readonly members: ReadonlyArray<
    Omit<ListenResult, 'histogram'> & {
      readonly nodeId: number;
      readonly p50Ms: number;
      readonly p99Ms: number;
      readonly maxMs: number;
    }
  >;
  readonly loadAvgAfter: number;
  readonly ratePerSec: number;
  /** Measured before the clusters started, on the quiet machine. */
  readonly wakeFloor: WakeFloor;
}

async function main(): Promise<void> {
  if (values.list === true) {
    for (const s of SPECS) log(`${s.id.padEnd(32)} ${s.label} (${s.where}, c=${s.concurrency})`);
    log(
      `${'get-local'.padEnd(32)} sequential getLocal against Map.get, await get against an awaited Map.get (worker + mirror, thread main)`,
    );
    log(`${'notify'.padEnd(32)} notify → delivery on every member, ${NOTIFY_RATE_PER_S}/s`);
    return;
  }
  if (values.storage !== 'disk' && values.storage !== 'memory')
    throw new Error('--storage is disk or memory');
  const { machine, config } = await startRun(values, notes);
  log(`cache group: ${cacheDurability()}; every node an embedding application (start()), node 1 leads`);
  log('');
  if (values.profile !== undefined) {
    await profileRun(values.profile === '' ? 'put-embedded-c64' : values.profile);
    return;
  }
  const only = values.only?.split(',').filter((s) => s !== '') ?? [];
  const wanted = (id: string) => only.length === 0 || only.some((p) => id.startsWith(p));
  const runs: CacheRunRecord[] = [];
  const gets: GetRecord[] = [];
  let notify: NotifyRecord | null = null;
  log(`${warmupMs} ms warm-up + ${durationMs} ms measured per workload${quick ? ' (--quick)' : ''}`);
  let wakeFloor: WakeFloor | null = null;
  if (wanted('notify')) {
    const dir = mkdtempSync(join(tmpdir(), 'hql-bench-wake-'));
    try {
      wakeFloor = await measureWakeFloor(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    log(formatWakeFloor(wakeFloor));
  }
  for (const thread of threadOrder(values)) {
    const specs = SPECS.filter((s) => wanted(s.id) && (s.thread ?? 'worker') === thread);
    const doGet = wanted(`get-local-thread-${thread}`);
    const doNotify = thread === 'worker' && wanted('notify');
    if (specs.length === 0 && !doGet && !doNotify) continue;
    log(
      thread === 'worker'
        ? "cluster 1: node 1's node on its own thread (start()'s default, the cache mirror on the application's thread)"
        : "cluster 2: node 1's node on the application's thread (thread: 'main')",
    );
    const cluster = await BenchCluster.start({
      thread,
      embedded: 'all',
      nodeConfig: storageDisk ? {} : { cacheStorageDisk: false },
    });
    try {
      await prepare(cluster);
      if (doGet) {
        const g = (await cluster.call({
          cmd: 'cacheGet',
          reads: GET_READS,
          rounds: GET_ROUNDS,
        })) as LocalGetResult;
        gets.push({ ...g, thread, loadAvgAfter: currentLoad() });
        log(`  ${formatGetLine(gets[gets.length - 1] as GetRecord)}`);
      }
      if (specs.length > 0) await warmUp(cluster);
      for (const spec of specs) {
        const r = await runSpec(cluster, spec);
        runs.push(r);
        log(
          `  ${spec.id.padEnd(30)} ${num(r.opsPerSec).padStart(8)} ops/s  p50 ${ms(r.p50Ms)} ms  p99 ${ms(r.p99Ms)} ms` +
            `  errors ${r.errors}  leader changes ${r.leaderChanges ?? '?'}  load ${r.loadAvgAfter}`,
        );
        for (const e of r.errorSamples) log(`      error: ${e}`);
      }
      if (doNotify) {
        notify = await runNotify(cluster, wakeFloor as WakeFloor);
        log(
          `  notify: ${notify.members.map((m) => `node ${m.nodeId} p50 ${ms(m.p50Ms)} ms`).join(', ')}  load ${notify.loadAvgAfter}`,
        );
      }
    } catch (e) {
      notes.push(
        `cluster (${thread}) failed, its remaining runs were skipped: ${e instanceof Error ? e.message : String(e)}`,
      );
      log(`  FAILED: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      await cluster.close();
    }
  }

  const targets = evaluateCacheTargets(runs, gets, notify);
  const l = loadavg();
  const loadAvgEnd = [round(l[0] ?? 0, 2), round(l[1] ?? 0, 2), round(l[2] ?? 0, 2)];
  log('');
  log(formatMachine(machine, config));
  log(`cache group: ${cacheDurability()}`);
  log(`code: ${COMPILED ? 'compiled' : 'tsx'}; load average at end: ${loadAvgEnd.join(' / ')}`);
  log('');
  if (runs.length > 0) {
    log(formatCacheRuns(runs));
    log('');
    log(
      "CPU per completed operation, per process (all threads, µs), and each node's longest event-loop stall (ms):",
    );
    log(formatCacheCpu(runs));
    log('');
  }
  if (gets.length > 0) {
    log(
      `Sequential local gets, ${GET_READS.toLocaleString('en-US')} reads × ${GET_ROUNDS} rounds, Map in the same process (ns per read: best / median of the rounds / median CPU of the process; the ratios compare the CPU medians):`,
    );
    log(formatGets(gets));
    log('');
  }
  if (notify !== null) {
    log(
      `notify → delivery to a listener on each member (${NOTIFY_RATE_PER_S} notifications/s from node 1; sent ${notify.notifier.measuredSent} in the window, notify() itself p50 ${ms(notify.notifier.p50Ms)} ms, p99 ${ms(notify.notifier.p99Ms)} ms, errors ${notify.notifier.errors}):`,
    );
    log(formatNotify(notify));
    log('');
  }
  log(formatTargets(targets));
  for (const n of notes) log(`note: ${n}`);
  if (values.json !== undefined) {
    writeFileSync(
      values.json,
      `${JSON.stringify({ machine, config, cache: cacheDurability(), code: COMPILED ? 'compiled' : 'tsx', durationMs, warmupMs, runs, gets, notify, targets, loadAvgEnd, notes }, null, 2)}\n`,
    );
    log(`wrote ${values.json}`);
  }
}

function cacheDurability(): string {
  return storageDisk
    ? 'log and snapshots on disk (cache_storage_disk = true, the default), fsync on quorum before ack'
    : 'log and snapshots in memory (cache_storage_disk = false): acknowledged once a quorum holds it in memory, no fsync';
}

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

async function prepare(cluster: BenchCluster): Promise<void> {
  // Node 1 bootstraps both groups and normally leads the cache group.
  await waitForNode1ToLead(
    cluster,
    (m) => m.cache.role === 'leader',
    notes,
    'node 1 did not lead the cache group: its "embedded leader" runs were forwarded',
  );
  await cluster.call({ cmd: 'cacheFill' });
}

async function warmUp(cluster: BenchCluster): Promise<void> {
  const wms = quick ? 1000 : 3000;
  log(`  warming up (${wms} ms embedded + ${wms} ms remote puts, c=16, not measured)`);
  await cluster.call({
    cmd: 'cacheRun',
    kind: 'put',
    concurrency: 16,
    warmupMs: 0,
    durationMs: wms,
    keyPrefix: 'w-',
  });
  const clients = await remoteClients(cluster, 1, 1);
  try {
    await runCacheWorkload(clients, 'put', { concurrency: 16, warmupMs: 0, durationMs: wms });
  } finally {
    for (const c of clients) await c.close().catch(() => {});
  }
}

async function remoteClients(cluster: BenchCluster, nodeId: number, n: number): Promise<HiqliteClient[]> {
  const out: HiqliteClient[] = [];
  for (let i = 0; i < n; i++)
    out.push(
      await connect({
        nodes: [cluster.apiAddrs.get(nodeId) ?? ''],
        secretApi: SECRET_API,
        requestTimeoutMs: 30_000,
      }),
    );
  return out;
}

async function runSpec(cluster: BenchCluster, spec: CacheSpec): Promise<CacheRunRecord> {
  cluster.checkAlive();
  const ids = cluster.ids();
  const before = await allMetrics(cluster, ids);
  for (const id of ids) await cluster.loopStats(id, true);
  const cpuBefore = new Map(ids.map((id) => [id, cluster.cpuMs(id)]));
  const clientCpuBefore = process.cpuUsage();
  const load = { concurrency: spec.concurrency, warmupMs, durationMs };
  let result: LoadResult;
  if (spec.where === 'embedded leader') {
    result = (await cluster.call({
      cmd: 'cacheRun',
      kind: spec.kind,
      ...load,
      keyPrefix: 'n1-',
    })) as LoadResult;
  } else if (spec.where === 'every member') {
    // The same shared key from every member's application; callers split evenly.
    const per = Math.ceil(spec.concurrency / ids.length);
    const parts = (await Promise.all(
      ids.map((id) =>
        cluster.call({ cmd: 'cacheRun', kind: spec.kind, ...load, concurrency: per, keyPrefix: 'all-' }, id),
      ),
    )) as LoadResult[];
    result = mergeResults(parts);
  } else {
    const leader = before.get(1)?.cache.leaderId ?? 1;
    const clients = await remoteClients(cluster, leader, Math.min(REMOTE_CONNECTIONS_MAX, spec.concurrency));
    try {
      result = await runCacheWorkload(clients, spec.kind, load, 'remote-');
    } finally {
      for (const c of clients) await c.close().catch(() => {});
    }
  }
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const after = await allMetrics(cluster, ids);
  const perOp = (cpuMs: number) => usPerOp(cpuMs, result.completedOps);
  const cpuUsPerOp: Record<number, number | null> = {};
  const loopMaxMs: Record<number, number | null> = {};
  for (const id of ids) {
    const a = cluster.cpuMs(id);
    const b = cpuBefore.get(id);
    cpuUsPerOp[id] = b === undefined ? null : perOp(a.userMs + a.systemMs - b.userMs - b.systemMs);
    loopMaxMs[id] = await cluster
      .loopStats(id, true)
      .then((s) => round(s.maxMs, 1))
      .catch(() => null);
  }
  return {
    id: spec.id,
    label: spec.label,
    where: spec.where,
    concurrency: spec.concurrency,
    ...figures(result),
    leaderChanges: leaderChanges(before, after, ids),
    cpuUsPerOp,
    clientCpuUsPerOp:
      spec.where === 'remote → leader' ? perOp((clientCpu.user + clientCpu.system) / 1000) : null,
    loopMaxMs,
    loadAvgAfter: currentLoad(),
  };
}

function mergeResults(parts: readonly LoadResult[]): LoadResult {
  const h = new LatencyHistogram();
  for (const p of parts) h.merge(LatencyHistogram.fromJSON(p.histogram));
  const first = parts[0];
  if (first === undefined) throw new Error('no results to merge');
  return {
    concurrency: parts.reduce((s, p) => s + p.concurrency, 0),
    ops: parts.reduce((s, p) => s + p.ops, 0),
    errors: parts.reduce((s, p) => s + p.errors, 0),
    warmupErrors: parts.reduce((s, p) => s + p.warmupErrors, 0),
    completedOps: parts.reduce((s, p) => s + p.completedOps, 0),
    errorSamples: [...new Set(parts.flatMap((p) => p.errorSamples))].slice(0, 5),
    elapsedMs: first.elapsedMs,
    histogram: h.toJSON(),
    windowUs: first.windowUs,
  };
}

/** Listeners on every member, paced notifies from node 1, then each member's delays. */
async function runNotify(cluster: BenchCluster, wakeFloor: WakeFloor): Promise<NotifyRecord> {
  const ids = cluster.ids();
  for (const id of ids) await cluster.call({ cmd: 'listenStart' }, id);
  const sent = (await cluster.call({
    cmd: 'notifyRun',
    ratePerSec: NOTIFY_RATE_PER_S,
    warmupMs: Math.max(warmupMs, 1000),
    durationMs,
  })) as NotifyRunResult;
  // The last notifications reach the followers a moment after node 1's notify() resolved.
  await sleep(500);
  const members: Array<NotifyRecord['members'][number]> = [];
  for (const id of ids) {
    const r = (await cluster.call({ cmd: 'listenStop' }, id)) as ListenResult;
    const { histogram, ...rest } = r;
    members.push({ ...rest, nodeId: id, ...latencyFigures(LatencyHistogram.fromJSON(histogram)) });
  }
  const { p50Ms, p99Ms } = latencyFigures(LatencyHistogram.fromJSON(sent.histogram));
  return {
    notifier: { ...sent, p50Ms, p99Ms },
    members,
    loadAvgAfter: currentLoad(),
    ratePerSec: NOTIFY_RATE_PER_S,
    wakeFloor,
  };
}

// ---------------------------------------------------------------------------------------------
// Tables and targets
// ---------------------------------------------------------------------------------------------

function formatCacheRuns(runs: readonly CacheRunRecord[]): string {
  return table(
    ['workload', 'where', 'c', 'ops/s', 'p50 ms', 'p99 ms', 'errors', 'leader changes', 'load after'],
    runs.map((r) => [
      r.label,
      r.where,
      String(r.concurrency),
      num(r.opsPerSec),
      ms(r.p50Ms),
      ms(r.p99Ms),
      String(r.errors),
      r.leaderChanges === null ? '?' : String(r.leaderChanges),
      String(r.loadAvgAfter),
    ]),
    [1],
  );
}

function formatCacheCpu(runs: readonly CacheRunRecord[]): string {
  const ids = [...new Set(runs.flatMap((r) => Object.keys(r.cpuUsPerOp).map(Number)))].sort((a, b) => a - b);
  return table(
    [
      'workload',
      'c',
      ...ids.map((id) => `CPU µs/op n${id}`),
      'CPU µs/op client',
      ...ids.map((id) => `stall n${id} ms`),
    ],
    runs.map((r) => [
      `${r.label} (${r.where})`,
      String(r.concurrency),
      ...ids.map((id) => opt(r.cpuUsPerOp[id])),
      opt(r.clientCpuUsPerOp),
      ...ids.map((id) => opt(r.loopMaxMs[id])),
    ]),
  );
}

/**
 * Speed of `of` relative to `base` (1 = as fast), by the median CPU time per read of the rounds:
 * on a shared machine the wall clock of a round includes time the thread was not running.
 */
function speedRatio(base: GetTiming, of: GetTiming): number {
  return of.cpuMedianNs === 0 ? 0 : base.cpuMedianNs / of.cpuMedianNs;
}

/** The target's comparison: getLocal against Map.get, synchronous both. */
function getRatio(g: LocalGetResult): number {
  return speedRatio(g.map, g.getLocal);
}

const pct = (r: number) => `${Math.round(100 * r)}%`;

function formatGetLine(g: GetRecord): string {
  return (
    `get-local-thread-${g.thread} (CPU per read): getLocal ${g.getLocal.cpuMedianNs.toFixed(0)} ns vs Map.get ${g.map.cpuMedianNs.toFixed(0)} ns (${pct(getRatio(g))}); ` +
    `await get ${g.cache.cpuMedianNs.toFixed(0)} ns vs await async Map.get ${g.asyncMap.cpuMedianNs.toFixed(0)} ns (${pct(speedRatio(g.asyncMap, g.cache))})  load ${g.loadAvgAfter}`
  );
}

function formatGets(gets: readonly GetRecord[]): string {
  const ns = (t: GetTiming) =>
    `${t.bestNs.toFixed(0)} / ${t.medianNs.toFixed(0)} / ${t.cpuMedianNs.toFixed(0)}`;
  return table(
    [
      'node 1',
      'Map.get',
      'getLocal',
      'getLocal vs Map.get',
      'await async Map.get',
      'await get',
      'await get vs async Map',
      'load after',
    ],
    gets.map((g) => [
      g.thread === 'worker' ? 'own thread + mirror' : "app's thread",
      ns(g.map),
      ns(g.getLocal),
      pct(getRatio(g)),
      ns(g.asyncMap),
      ns(g.cache),
      pct(speedRatio(g.asyncMap, g.cache)),
      String(g.loadAvgAfter),
    ]),
    [0],
  );
}

function formatNotify(n: NotifyRecord): string {
  return table(
    ['member', 'received', 'measured', 'p50 ms', 'p99 ms', 'max ms', 'out of order', 'error'],
    n.members.map((m) => [
      `node ${m.nodeId}${m.nodeId === 1 ? ' (leader, notifier)' : ''}`,
      String(m.received),
      String(m.measured),
      ms(m.p50Ms),
      ms(m.p99Ms),
      ms(m.maxMs),
      String(m.outOfOrder),
      m.error ?? '',
    ]),
    [7],
  );
}

function evaluateCacheTargets(
  runs: readonly CacheRunRecord[],
  gets: readonly GetRecord[],
  notify: NotifyRecord | null,
): TargetVerdict[] {
  const out: TargetVerdict[] = [];
  const p = runs.find((r) => r.id === 'put-embedded-c64');
  out.push({
    target: 'embedded put, c=64',
    goal: '>= 25,000 ops/s',
    measured: p === undefined ? 'not run' : `${num(p.opsPerSec)} ops/s`,
    met: p === undefined ? null : p.opsPerSec >= 25_000,
  });
  for (const g of gets) {
    out.push({
      target: `local get (${g.thread === 'worker' ? 'own thread + mirror' : "thread 'main'"})`,
      goal: '>= 50% of a Map lookup',
      measured: `getLocal ${pct(getRatio(g))} (CPU ${g.getLocal.cpuMedianNs.toFixed(0)} vs ${g.map.cpuMedianNs.toFixed(0)} ns)`,
      met: getRatio(g) >= 0.5,
    });
  }
  const l = runs.find((r) => r.id === 'lock-uncontended-embedded-c1');
  out.push({
    target: 'lock + release (embedded, uncontended)',
    goal: 'p50 <= 3 ms',
    measured: l === undefined ? 'not run' : `p50 ${ms(l.p50Ms)} ms, p99 ${ms(l.p99Ms)} ms`,
    met: l === undefined ? null : l.p50Ms <= 3,
  });
  const worst = notify === null ? null : Math.max(...notify.members.map((m) => m.p50Ms));
  out.push({
    target: 'notify → delivery, every member',
    goal: 'p50 <= 2 ms',
    measured:
      notify === null
        ? 'not run'
        : `${notify.members.map((m) => `n${m.nodeId} ${ms(m.p50Ms)}`).join(', ')} ms at ${notify.ratePerSec}/s`,
    met: worst === null || notify === null ? null : worst <= 2 && notify.members.every((m) => m.measured > 0),
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Profile
// ---------------------------------------------------------------------------------------------

async function profileRun(id: string): Promise<void> {
  // An exact id first (put-embedded-c64-thread-main), else the first that starts with it.
  const embedded = SPECS.filter((s) => s.where === 'embedded leader');
  const spec = embedded.find((s) => s.id === id) ?? embedded.find((s) => s.id.startsWith(id));
  if (spec === undefined) throw new Error(`--profile needs an embedded workload; ${id} is none`);
  const dir =
    values['profile-dir'] === undefined
      ? mkdtempSync(join(tmpdir(), 'hql-bench-prof-'))
      : resolve(values['profile-dir']);
  mkdirSync(dir, { recursive: true });
  log(`profiling ${spec.id} (${durationMs} ms) with --cpu-prof on every node; profiles in ${dir}`);
  const cluster = await BenchCluster.start({
    cpuProfDir: dir,
    thread: spec.thread ?? 'worker',
    embedded: 'all',
    nodeConfig: storageDisk ? {} : { cacheStorageDisk: false },
  });
  const pids = new Map<number, number>();
  let result: LoadResult;
  try {
    for (const n of cluster.ids()) pids.set(cluster.pid(n), n);
    await prepare(cluster);
    const load = { concurrency: spec.concurrency, warmupMs, durationMs };
    result = (await cluster.call({
      cmd: 'cacheRun',
      kind: spec.kind,
      ...load,
      keyPrefix: 'p-',
    })) as LoadResult;
  } finally {
    await cluster.close();
  }
  const f = figures(result);
  log(
    `${spec.id} under the profiler: ${num(f.opsPerSec)} ops/s, p50 ${ms(f.p50Ms)} ms, p99 ${ms(f.p99Ms)} ms, errors ${f.errors}; load ${currentLoad()}`,
  );
  printProfiles(dir, pids, result.windowUs, 'leader');
}

main().then(
  // Remote clients may leave timers behind; the suite is done.
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench:cache: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
