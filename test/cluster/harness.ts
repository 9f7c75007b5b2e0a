/**
 * Multi-process clusters for integration tests: every node is a real `hiqlite serve` process on
 * 127.0.0.1 with its own data directory, talking real TCP. Tests kill (-9), stop, pause, wipe and
 * restart nodes, and use a remote client (`connect()`) or the JSON HTTP API to drive them.
 * Every process started is killed in `close()`; every wait is bounded.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect, type HiqliteClient } from '../../src/index.js';

const CLI = resolve(import.meta.dirname, '../../src/server/cli.ts');
export const SECRET_RAFT = 'raft-secret-for-tests-0123456789';
export const SECRET_API = 'api-secret-for-tests-0123456789';

export interface ClusterOptions {
  readonly nodes?: number;
  /** Extra `key = value` TOML lines for every node, or per node id. */
  readonly toml?: string | ((id: number) => string);
  readonly env?: Record<string, string>;
  /** Start only these node ids at first (others later with start(id)). Default: all. */
  readonly startNodes?: readonly number[];
}

export interface NodeProcess {
  readonly id: number;
  readonly raftPort: number;
  readonly apiPort: number;
  readonly dataDir: string;
  readonly configFile: string;
  child: ChildProcess | null;
  output: string;
  exit: Promise<number | null> | null;
}

/** Fast timings so tests do not wait on production defaults. */
const TIMING = ['tick_interval_ms = 50', 'heartbeat_interval_ms = 100', 'election_timeout_ms = 1000'];

export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<import('node:net').Server>((ok, fail) => {
          const s = createServer();
          s.once('error', fail);
          s.listen(0, '127.0.0.1', () => ok(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export class TestCluster {
  readonly nodes = new Map<number, NodeProcess>();
  private clients: HiqliteClient[] = [];

  private constructor(
    readonly dir: string,
    private readonly env: Record<string, string>,
  ) {}

  static async create(options: ClusterOptions = {}): Promise<TestCluster> {
    const n = options.nodes ?? 3;
    const dir = mkdtempSync(join(tmpdir(), 'hql-cluster-'));
    const c = new TestCluster(dir, options.env ?? {});
    const ports = await freePorts(2 * n);
    const entries: string[] = [];
    for (let id = 1; id <= n; id++) {
      entries.push(`"${id} 127.0.0.1:${ports[2 * (id - 1)]} 127.0.0.1:${ports[2 * (id - 1) + 1]}"`);
    }
    for (let id = 1; id <= n; id++) {
      const dataDir = join(dir, `node-${id}`);
      const configFile = join(dir, `node-${id}.toml`);
      const extra = typeof options.toml === 'function' ? options.toml(id) : (options.toml ?? '');
      writeFileSync(
        configFile,
        [
          '[hiqlite]',
          `node_id = ${id}`,
          `nodes = [${entries.join(', ')}]`,
          `data_dir = "${dataDir}"`,
          `secret_raft = "${SECRET_RAFT}"`,
          `secret_api = "${SECRET_API}"`,
          ...TIMING,
          extra,
          '',
        ].join('\n'),
      );
      c.nodes.set(id, {
        id,
        raftPort: ports[2 * (id - 1)] as number,
        apiPort: ports[2 * (id - 1) + 1] as number,
        dataDir,
        configFile,
        child: null,
        output: '',
        exit: null,
      });
    }
    const first = options.startNodes ?? [...c.nodes.keys()];
    try {
      await Promise.all(first.map((id) => c.start(id)));
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  node(id: number): NodeProcess {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  apiAddresses(): string[] {
    return [...this.nodes.values()].map((n) => `127.0.0.1:${n.apiPort}`);
  }

  /** Starts (or restarts) node `id`; resolves once it printed READY (it is a member). */
  async start(id: number, timeoutMs = 60_000): Promise<void> {
    const n = this.node(id);
    if (n.child !== null) throw new Error(`node ${id} is running`);
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--config', n.configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HQL_LOG_LEVEL: 'warn', ...this.env },
    });
    n.child = child;
    n.output = '';
    n.exit = new Promise((r) =>
      child.once('exit', (code, signal) => {
        n.child = null;
        r(code ?? (signal === null ? null : -1));
      }),
    );
    const onData = (d: Buffer) => {
      n.output += d.toString();
      if (n.output.length > 1 << 20) n.output = n.output.slice(-(1 << 19));
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const deadline = Date.now() + timeoutMs;
    while (!n.output.includes('READY')) {
      if (n.child === null) throw new Error(`node ${id} exited before READY:\n${n.output.slice(-4000)}`);
      if (Date.now() > deadline)
        throw new Error(`node ${id} not READY within ${timeoutMs} ms:\n${n.output.slice(-4000)}`);
      await sleep(50);
    }
  }

  /** SIGKILL: no graceful anything. */
  async kill(id: number): Promise<void> {
    const n = this.node(id);
    if (n.child === null) return;
    n.child.kill('SIGKILL');
    await n.exit;
  }

  /** SIGTERM and wait; resolves with the exit code. */
  async stop(id: number, timeoutMs = 15_000): Promise<number | null> {
    const n = this.node(id);
    if (n.child === null) return null;
    n.child.kill('SIGTERM');
    const code = await Promise.race([n.exit, sleep(timeoutMs).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      n.child?.kill('SIGKILL');
      await n.exit;
      throw new Error(`node ${id} did not exit within ${timeoutMs} ms after SIGTERM`);
    }
    return code ?? null;
  }

  pause(id: number): void {
    this.node(id).child?.kill('SIGSTOP');
  }

  resume(id: number): void {
    this.node(id).child?.kill('SIGCONT');
  }

  /** Deletes a stopped node's whole data directory (lost volume). */
  wipe(id: number): void {
    const n = this.node(id);
    if (n.child !== null) throw new Error(`node ${id} is running`);
    rmSync(n.dataDir, { recursive: true, force: true });
  }

  async client(ids?: readonly number[]): Promise<HiqliteClient> {
    const addrs = (ids ?? [...this.nodes.keys()]).map((id) => `127.0.0.1:${this.node(id).apiPort}`);
    const c = await connect({ nodes: addrs, secretApi: SECRET_API, requestTimeoutMs: 20_000 });
    this.clients.push(c);
    return c;
  }

  /** GET an HTTP route of node `id`'s API port. */
  async http(id: number, path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`http://127.0.0.1:${this.node(id).apiPort}${path}`, {
      ...init,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON (metrics)
    }
    return { status: res.status, body };
  }

  /** Metrics of every running node, via a client bound to that node alone. */
  async metricsOf(id: number): Promise<import('../../src/index.js').Metrics> {
    const c = await this.client([id]);
    try {
      return await c.metrics();
    } finally {
      await c.close();
      this.clients = this.clients.filter((x) => x !== c);
    }
  }

  /** The leader as seen by the running nodes (waits until they agree on one). */
  async leader(timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seen = new Set<number | null>();
      for (const n of this.nodes.values()) {
        if (n.child === null) continue;
        const r = await this.http(n.id, '/health').catch(() => null);
        const leaderId = (r?.body as { leaderId?: number | null } | undefined)?.leaderId ?? null;
        seen.add(leaderId);
      }
      const [only] = [...seen];
      if (seen.size === 1 && only !== null && only !== undefined) return only;
      if (Date.now() > deadline)
        throw new Error(`no agreed leader within ${timeoutMs} ms (seen ${[...seen].join(',')})`);
      await sleep(100);
    }
  }

  async close(): Promise<void> {
    for (const c of this.clients) await c.close().catch(() => {});
    this.clients = [];
    for (const n of this.nodes.values()) {
      if (n.child !== null) {
        n.child.kill('SIGCONT');
        n.child.kill('SIGKILL');
        await n.exit;
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns a truthy value (bounded). */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last === null ? '' : `: ${String(last)}`}`);
    await sleep(100);
  }
}
