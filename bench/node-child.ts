/**
 * The embedded leader of the benchmark cluster: a process that calls `start()` (node 1, which
 * bootstraps the cluster and leads it) and runs the embedded workloads itself, as an
 * application embedding hiqlite would. The parent drives it over stdin/stdout, one JSON object
 * per line: requests `{ id, cmd, … }`, replies `{ id, ok, value | error }`, and one
 * `{ event: 'ready' }` once the node is a member. The node's log goes to stderr.
 *
 *   HQL_BENCH_NODE_CONFIG='<NodeConfig as JSON>' node --import tsx bench/node-child.ts
 */
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { type HiqliteNode, type NodeConfig, start } from '../src/index.js';
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
  | { readonly cmd: 'loop'; readonly reset: boolean }
  | { readonly cmd: 'exit' };

export type ChildRequest = ChildCommand & { readonly id: number };

export type ChildReply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string };

const monitor = new LoopMonitor();

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

async function main(): Promise<void> {
  const raw = process.env.HQL_BENCH_NODE_CONFIG;
  if (raw === undefined) throw new Error('HQL_BENCH_NODE_CONFIG is not set');
  const config = JSON.parse(raw) as NodeConfig;
  const logger = pino({ level: process.env.HQL_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  const node = await start(config, { logger });
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
