/**
 * The benchmark cluster: three node processes on loopback. Node 1 is `bench/node-child.ts`
 * (an application that embeds the node with `start()` and runs the embedded workloads); nodes
 * 2 and 3 are plain `hiqlite serve` processes with `bench/serve-hook.ts` preloaded so they
 * report their event-loop stalls over IPC. Production defaults for every timing and limit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { connect, type HiqliteClient, type Metrics, type NodeConfig } from '../src/index.js';
import { freePorts } from '../test/support/free-ports.js';
import type { LoopReply, LoopStats } from './loop-monitor.js';
import type { ChildCommand, ChildReply } from './node-child.js';

/**
 * The suite runs from the TypeScript sources through tsx (`npm run bench`) or from a tsc build
 * of `src/` and `bench/` side by side (compiled JavaScript, no loader: what users run).
 */
export const COMPILED = import.meta.filename.endsWith('.js');
const EXT = COMPILED ? '.js' : '.ts';
export const LOADER_ARGS: readonly string[] = COMPILED ? [] : ['--import', 'tsx'];
export const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, `src/server/cli${EXT}`);
const NODE_CHILD = join(ROOT, `bench/node-child${EXT}`);
const SERVE_HOOK = pathToFileURL(join(ROOT, `bench/serve-hook${EXT}`)).href;
/** `src/index` of the same tree, for the idle-RSS probe. */
export const INDEX_URL = pathToFileURL(join(ROOT, `src/index${EXT}`)).href;
export const SECRET_RAFT = 'bench-raft-secret-0123456789abcdef';
export const SECRET_API = 'bench-api-secret-0123456789abcdef';
const NODE_COUNT = 3;
const OUTPUT_KEPT_CHARS = 64 * 1024;
const READY_TIMEOUT_MS = 120_000;
const RPC_TIMEOUT_MS = 10 * 60_000;
const EXIT_TIMEOUT_MS = 20_000;
/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat, 100 on every Linux configuration in use. */
const CLOCK_TICKS_PER_S = 100;

export interface BenchClusterOptions {
  /** Start every node with `--cpu-prof --cpu-prof-dir <dir>` (profiles written at exit). */
  readonly cpuProfDir?: string;
  /** Where node 1's application runs its node (`start({ thread })`). Default 'worker'. */
  readonly thread?: 'worker' | 'main';
  /**
   * 'first' (default): node 1 is `bench/node-child.ts`, nodes 2 and 3 `hiqlite serve`. 'all':
   * every node is a `node-child` application (the cache suite: listeners on every member);
   * `thread` then applies to node 1 only, the others run the default ('worker').
   */
  readonly embedded?: 'first' | 'all';
  /** Extra config keys for every node (embedded nodes only), e.g. `cacheStorageDisk: false`. */
  readonly nodeConfig?: Partial<NodeConfig>;
}

export interface MemoryKb {
  /** Peak resident set since start or since the last `resetPeakRss` (VmHWM). */
  readonly peakKb: number;
  readonly currentKb: number;
}

interface Proc {
  readonly id: number;
  readonly apiAddr: string;
  readonly child: ChildProcess;
  output: string;
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined;
}

type Pending = { ok: (v: unknown) => void; fail: (e: Error) => void };

export class BenchCluster {
  private readonly procs = new Map<number, Proc>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private metricsClients = new Map<number, HiqliteClient>();
  /** Nodes run by a `node-child` application (driven over stdin/stdout). */
  private readonly embeddedIds = new Set<number>();

  private constructor(
    readonly dir: string,
    readonly apiAddrs: ReadonlyMap<number, string>,
  ) {}

  static async start(options: BenchClusterOptions = {}): Promise<BenchCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'hql-bench-'));
    const ports = await freePorts(2 * NODE_COUNT);
    const nodes = Array.from({ length: NODE_COUNT }, (_, i) => ({
      id: i + 1,
      addrRaft: `127.0.0.1:${ports[2 * i]}`,
      addrApi: `127.0.0.1:${ports[2 * i + 1]}`,
    }));
    const c = new BenchCluster(dir, new Map(nodes.map((n) => [n.id, n.addrApi])));
    const prof = options.cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir];
    try {
      const all = options.embedded === 'all';
      for (const n of all ? nodes : nodes.slice(0, 1)) {
        const config: NodeConfig = {
          ...options.nodeConfig,
          nodeId: n.id,
          nodes,
          dataDir: join(dir, `node-${n.id}`),
          secretRaft: SECRET_RAFT,
          secretApi: SECRET_API,
        };
        c.embeddedIds.add(n.id);
        c.spawn(n.id, [...prof, ...LOADER_ARGS, NODE_CHILD], ['pipe', 'pipe', 'pipe'], {
          HQL_BENCH_NODE_CONFIG: JSON.stringify(config),
          HQL_BENCH_THREAD: n.id === 1 ? (options.thread ?? 'worker') : 'worker',
        });
      }
      for (const n of all ? [] : nodes.slice(1)) {
        const file = join(dir, `node-${n.id}.toml`);
        writeFileSync(
          file,
          [
            '[hiqlite]',
            `node_id = ${n.id}`,
            `nodes = [${nodes.map((m) => `"${m.id} ${m.addrRaft} ${m.addrApi}"`).join(', ')}]`,
            `data_dir = ${JSON.stringify(join(dir, `node-${n.id}`))}`,
            `secret_raft = "${SECRET_RAFT}"`,
            `secret_api = "${SECRET_API}"`,
            '',
          ].join('\n'),
        );
        c.spawn(
          n.id,
          [...prof, ...LOADER_ARGS, '--import', SERVE_HOOK, CLI, 'serve', '--config', file],
          ['ignore', 'pipe', 'pipe', 'ipc'],
          { HQL_BENCH_LOOP_MONITOR: '1' },
        );
      }
      await Promise.all(nodes.map((n) => c.waitReady(n.id)));
      for (const n of nodes.filter((m) => !c.embeddedIds.has(m.id))) {
        c.metricsClients.set(n.id, await connect({ nodes: [n.addrApi], secretApi: SECRET_API }));
      }
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  pid(id: number): number {
    const pid = this.proc(id).child.pid;
    if (pid === undefined) throw new Error(`node ${id} has no pid`);
    return pid;
  }

  ids(): number[] {
    return [...this.procs.keys()];
  }

  /** A request to the embedded leader child (node 1), or to node `nodeId`'s child ('all'). */
  call(req: ChildCommand, nodeId = 1): Promise<unknown> {
    if (!this.embeddedIds.has(nodeId)) throw new Error(`node ${nodeId} is not an embedded node-child`);
    const p = this.proc(nodeId);
    const id = this.nextId++;
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        fail(new Error(`node-child did not answer ${req.cmd} within ${RPC_TIMEOUT_MS} ms`));
      }, RPC_TIMEOUT_MS);
      this.pending.set(id, {
        ok: (v) => {
          clearTimeout(timer);
          ok(v);
        },
        fail: (e) => {
          clearTimeout(timer);
          fail(e);
        },
      });
      p.child.stdin?.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  async metrics(id: number): Promise<Metrics> {
    if (this.embeddedIds.has(id)) return (await this.call({ cmd: 'metrics' }, id)) as Metrics;
    const c = this.metricsClients.get(id);
    if (c === undefined) throw new Error(`no metrics client for node ${id}`);
    return c.metrics();
  }

  /** Event-loop stall figures of node `id` since the last reset (and reset them if asked). */
  async loopStats(id: number, reset: boolean): Promise<LoopStats> {
    if (this.embeddedIds.has(id)) return (await this.call({ cmd: 'loop', reset }, id)) as LoopStats;
    const { child } = this.proc(id);
    const seq = this.nextId++;
    return new Promise((ok, fail) => {
      const onMessage = (m: unknown) => {
        const r = m as LoopReply;
        if (r?.type !== 'bench-loop' || r.seq !== seq) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        ok(r.stats);
      };
      const timer = setTimeout(() => {
        child.off('message', onMessage);
        fail(new Error(`node ${id} did not report its event loop within 5 s`));
      }, 5000);
      child.on('message', onMessage);
      child.send({ type: 'bench-loop', seq, reset });
    });
  }

  /** Starts a new peak-RSS interval (Linux `clear_refs` 5); false where the kernel refuses. */
  resetPeakRss(id: number): boolean {
    try {
      writeFileSync(`/proc/${this.pid(id)}/clear_refs`, '5');
      return true;
    } catch {
      return false;
    }
  }

  memory(id: number): MemoryKb {
    const status = readFileSync(`/proc/${this.pid(id)}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1] ?? 0);
    return { peakKb: kb('VmHWM'), currentKb: kb('VmRSS') };
  }

  /** CPU time (every thread) the process of node `id` has used, in ms: user and system (kernel). */
  cpuMs(id: number): { readonly userMs: number; readonly systemMs: number } {
    const stat = readFileSync(`/proc/${this.pid(id)}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces), from field 3 on: utime, stime
    // are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      userMs: (Number(fields[11]) * 1000) / CLOCK_TICKS_PER_S,
      systemMs: (Number(fields[12]) * 1000) / CLOCK_TICKS_PER_S,
    };
  }

  /** Fails if a node process has exited (the run cannot be trusted then). */
  checkAlive(): void {
    for (const p of this.procs.values()) {
      if (p.exitCode !== undefined) {
        throw new Error(`node ${p.id} exited (code ${p.exitCode}):\n${p.output.slice(-4000)}`);
      }
    }
  }

  outputOf(id: number): string {
    return this.proc(id).output;
  }

  /** Graceful: the child and the serve processes exit by themselves (profiles get written). */
  async close(): Promise<void> {
    for (const c of this.metricsClients.values()) await c.close().catch(() => {});
    this.metricsClients.clear();
    // Followers first, so that the leader's shutdown does not start an election among them.
    for (const id of [...this.embeddedIds].sort((a, b) => b - a)) {
      const p = this.procs.get(id);
      if (p === undefined || p.exitCode !== undefined) continue;
      await Promise.race([this.call({ cmd: 'exit' }, id).catch(() => null), sleep(EXIT_TIMEOUT_MS)]);
    }
    for (const p of this.procs.values())
      if (!this.embeddedIds.has(p.id) && p.exitCode === undefined) p.child.kill('SIGTERM');
    for (const p of this.procs.values()) {
      const done = await Promise.race([p.exited.then(() => true), sleep(EXIT_TIMEOUT_MS).then(() => false)]);
      if (!done) {
        p.child.kill('SIGKILL');
        await p.exited;
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private proc(id: number): Proc {
    const p = this.procs.get(id);
    if (p === undefined) throw new Error(`no node ${id}`);
    return p;
  }

  private spawn(
    id: number,
    args: string[],
    stdio: Array<'pipe' | 'ignore' | 'ipc'>,
    env: Record<string, string>,
  ): void {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      stdio,
      env: { ...process.env, HQL_LOG_LEVEL: 'warn', ...env },
    });
    let exitResolve: (code: number | null) => void = () => {};
    const p: Proc = {
      id,
      apiAddr: this.apiAddrs.get(id) ?? '',
      child,
      output: '',
      exited: new Promise((r) => {
        exitResolve = r;
      }),
      exitCode: undefined,
    };
    child.once('exit', (code, signal) => {
      p.exitCode = code ?? (signal === null ? null : -1);
      if (this.embeddedIds.has(id)) {
        for (const w of this.pending.values()) w.fail(new Error(`node ${id} (node-child) exited`));
        this.pending.clear();
      }
      exitResolve(p.exitCode);
    });
    const keep = (d: Buffer | string) => {
      p.output += d.toString();
      if (p.output.length > OUTPUT_KEPT_CHARS) p.output = p.output.slice(-OUTPUT_KEPT_CHARS / 2);
    };
    child.stderr?.on('data', keep);
    if (this.embeddedIds.has(id)) {
      let buf = '';
      child.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        // Bounded by the data received: each pass consumes one line.
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          this.onChildLine(p, line);
        }
      });
    } else {
      child.stdout?.on('data', keep);
    }
    this.procs.set(id, p);
  }

  private onChildLine(p: Proc, line: string): void {
    let msg: ChildReply | { event: string };
    try {
      msg = JSON.parse(line) as ChildReply | { event: string };
    } catch {
      p.output += `${line}\n`;
      return;
    }
    if ('event' in msg) {
      if (msg.event === 'ready') p.output += 'READY\n';
      return;
    }
    const w = this.pending.get(msg.id);
    if (w === undefined) return;
    this.pending.delete(msg.id);
    if (msg.ok) w.ok(msg.value);
    else w.fail(new Error(msg.error));
  }

  private async waitReady(id: number): Promise<void> {
    const p = this.proc(id);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    // Bounded by the deadline.
    while (!p.output.includes('READY')) {
      if (p.exitCode !== undefined)
        throw new Error(`node ${id} exited before READY:\n${p.output.slice(-4000)}`);
      if (Date.now() > deadline) throw new Error(`node ${id} not READY in time:\n${p.output.slice(-4000)}`);
      await sleep(50);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
