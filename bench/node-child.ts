/**
 * The embedded leader of the benchmark cluster: a process that calls `start()` (node 1, which
 * bootstraps the cluster and leads it) and runs the embedded workloads itself, as an
 * application embedding hiqlite would. The parent drives it over stdin/stdout, one JSON object
 * per line: requests `{ id, cmd, … }`, replies `{ id, ok, value | error }`, and one
 * `{ event: 'ready' }` once the node is a member. The node's log goes to stderr.
 *
 *   HQL_BENCH_NODE_CONFIG='<NodeConfig as JSON>' [HQL_BENCH_THREAD=main] node --import tsx bench/node-child.ts
 */
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { type HiqliteNode, type NodeConfig, start } from '../src/index.js';
import {
  type CacheWorkloadKind,
  fillCache,
  LatencyListener,
  runCacheWorkload,
  runNotifies,
  timeLocalGets,
} from './cache-workloads.js';
import { LoopMonitor } from './loop-monitor.js';
import { prepareTables, runWorkload, type WorkloadKind } from './workloads.js';

export type ChildCommand =
  | { readonly cmd: 'prepare' }
  | {
      readonly cmd: 'run';
      readonly kind: WorkloadKind;
      readonly concurrency: number;
      readonly warmupMs: number;
      readonly durationMs: number;
    }
  | { readonly cmd: 'metrics' }
  // The cache suite (bench/cache-run.ts, bench/cache-workloads.ts).
  | { readonly cmd: 'cacheFill' }
  | {
      readonly cmd: 'cacheRun';
      readonly kind: CacheWorkloadKind;
      readonly concurrency: number;
      readonly warmupMs: number;
      readonly durationMs: number;
      readonly keyPrefix: string;
    }
  | { readonly cmd: 'cacheGet'; readonly reads: number; readonly rounds: number }
  | { readonly cmd: 'listenStart' }
  | { readonly cmd: 'listenStop' }
  | {
      readonly cmd: 'notifyRun';
      readonly ratePerSec: number;
      readonly warmupMs: number;
      readonly durationMs: number;
    }
  /** The application blocks its event loop: a busy loop of `busyMs`, then a local query of `queryMs`. */
  | { readonly cmd: 'stall'; readonly busyMs: number; readonly queryMs: number }
  | { readonly cmd: 'loop'; readonly reset: boolean }
  | { readonly cmd: 'exit' };

export type ChildRequest = ChildCommand & { readonly id: number };

export type ChildReply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };

const monitor = new LoopMonitor();
let listener: LatencyListener | null = null;

function send(message: ChildReply | { readonly event: 'ready'; readonly nodeId: number }): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

async function handle(node: HiqliteNode, req: ChildRequest): Promise<unknown> {
  switch (req.cmd) {
    case 'prepare':
      await prepareTables(node);
      return null;
    case 'run':
      return runWorkload([node], req.kind, req);
    case 'metrics':
      return node.metrics();
    case 'cacheFill':
      await fillCache(node);
      return null;
    case 'cacheRun':
      return runCacheWorkload([node], req.kind, req, req.keyPrefix);
    case 'cacheGet':
      return timeLocalGets(node, req.reads, req.rounds);
    case 'listenStart':
      if (listener !== null) throw new Error('a listener is already running');
      listener = new LatencyListener(node);
      return null;
    case 'listenStop': {
      if (listener === null) throw new Error('no listener is running');
      const l = listener;
      listener = null;
      return l.stop();
    }
    case 'notifyRun':
      return runNotifies(node, req);
    case 'stall':
      return stall(node, req.busyMs, req.queryMs);
    case 'loop':
      return monitor.read(req.reset);
    case 'exit':
      // A graceful exit, so that `--cpu-prof` writes its profiles.
      await node.shutdown();
      return null;
    default:
      return assertNever(req);
  }
}

/** A recursive CTE of `rows` rows, counted: one synchronous statement on the caller's thread. */
const COUNT_SQL =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT ?) SELECT count(*) AS n FROM c';

async function timedQuery(node: HiqliteNode, rows: number): Promise<number> {
  const t0 = performance.now();
  await node.query(COUNT_SQL, [rows]);
  return performance.now() - t0;
}

/** As test/cluster/stall-app.ts: the busy loop, then one local query calibrated to `queryMs`. */
async function stall(node: HiqliteNode, busyMs: number, queryMs: number): Promise<unknown> {
  const t0 = performance.now();
  while (performance.now() - t0 < busyMs) {
    // the application's own work, on its event loop
  }
  const busyTookMs = performance.now() - t0;
  let probeRows = 100_000;
  let probeMs = await timedQuery(node, probeRows);
  for (let i = 0; i < 10 && probeMs < 300; i++) {
    probeRows *= 4;
    probeMs = await timedQuery(node, probeRows);
  }
  let rows = Math.ceil((probeRows * queryMs * 1.2) / Math.max(1, probeMs));
  let queryTookMs = await timedQuery(node, rows);
  for (let i = 0; i < 5 && queryTookMs < queryMs; i++) {
    rows = Math.ceil((rows * queryMs * 1.3) / Math.max(1, queryTookMs));
    queryTookMs = await timedQuery(node, rows);
  }
  return { busyMs: Math.round(busyTookMs), queryMs: Math.round(queryTookMs) };
}

async function main(): Promise<void> {
  const raw = process.env.HQL_BENCH_NODE_CONFIG;
  if (raw === undefined) throw new Error('HQL_BENCH_NODE_CONFIG is not set');
  const parsed = JSON.parse(raw) as NodeConfig;
  // HQL_BENCH_CACHE_BATCH_MAX=1: one log entry per cache write (what batching saves, measured).
  const batchMax = process.env.HQL_BENCH_CACHE_BATCH_MAX;
  // HQL_BENCH_CONFIG_OVERRIDES='{"inflightMessagesMax": 4}': any config key, for experiments.
  const overrides = JSON.parse(process.env.HQL_BENCH_CONFIG_OVERRIDES ?? '{}') as Partial<NodeConfig>;
  const config: NodeConfig = {
    ...parsed,
    ...(batchMax === undefined ? {} : { cacheBatchCommandsMax: Number(batchMax) }),
    ...overrides,
  };
  const logger = pino({ level: process.env.HQL_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  // HQL_BENCH_THREAD: where start() runs the node ('worker', the default, or 'main').
  const thread = process.env.HQL_BENCH_THREAD === 'main' ? 'main' : 'worker';
  // HQL_BENCH_CACHE_MIRROR=0: start({ cacheMirror: false }) (what the mirror costs, measured).
  const cacheMirror = process.env.HQL_BENCH_CACHE_MIRROR !== '0';
  const node = await start(config, { logger, thread, cacheMirror });
  send({ event: 'ready', nodeId: node.nodeId });
  // One request at a time, in order: the parent waits for each reply before the next request.
  const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    const req = JSON.parse(line) as ChildRequest;
    try {
      send({ id: req.id, ok: true, value: await handle(node, req) });
    } catch (e) {
      send({ id: req.id, ok: false, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    }
    if (req.cmd === 'exit') process.exit(0);
  }
  // stdin closed: the parent is gone.
  await node.shutdown();
  process.exit(0);
}

function assertNever(x: never): never {
  throw new Error(`unexpected request ${JSON.stringify(x)}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`node-child: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
