/**
 * Multi-process clusters for integration tests: every node is a real `hiqlite serve` process on
 * 127.0.0.1 with its own data directory, talking real TCP. Tests kill (-9), stop, pause, wipe and
 * restart nodes, and use a remote client (`connect()`) or the JSON HTTP API to drive them.
 * Every process started is killed in `close()`; every wait is bounded.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ConnectOptions, connect, type HiqliteClient, type Metrics, type Row } from '../../src/index.js';
import { freePorts } from '../support/free-ports.js';
import { CLI_SOURCE, spawnTsx } from '../support/tsx-process.js';

export { freePorts };

export const SECRET_RAFT = 'raft-secret-for-tests-0123456789';
export const SECRET_API = 'api-secret-for-tests-0123456789';

export interface ClusterOptions {
  readonly nodes?: number;
  /** Extra `key = value` TOML lines for every node, or per node id. */
  readonly toml?: string | ((id: number) => string);
  readonly env?: Record<string, string>;
  /** Start only these node ids at first (others later with start(id)). Default: all. */
  readonly startNodes?: readonly number[];
  /**
   * TLS with self-signed certificates on both ports of every node (`tls_auto_certificates`);
   * client() and http() then speak TLS too.
   */
  readonly tls?: boolean;
  /** Slot `id`'s own `node_id` (default: `id`): e.g. a second process with another node's id. */
  readonly nodeIdOf?: (id: number) => number;
  /** The slots slot `id` lists in its `nodes` (default: all): nodes lists that differ. */
  readonly listed?: (id: number) => readonly number[];
}

export interface StartOptions {
  /** How long to wait for READY. Default 60 s. */
  readonly timeoutMs?: number;
  /** Extra environment for this process only (e.g. `HQL_SECRET_RAFT` to override the file). */
  readonly env?: Record<string, string>;
  /**
   * A script to run instead of `hiqlite serve`, with the node's config file as its argument: an
   * application embedding the node (embedded-member-app.ts). It must print READY as serve does.
   */
  readonly app?: string;
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

export class TestCluster {
  readonly nodes = new Map<number, NodeProcess>();
  private clients: HiqliteClient[] = [];

  private constructor(
    readonly dir: string,
    private readonly env: Record<string, string>,
    readonly tls: boolean,
  ) {}

  static async create(options: ClusterOptions = {}): Promise<TestCluster> {
    const n = options.nodes ?? 3;
    const dir = mkdtempSync(join(tmpdir(), 'hql-cluster-'));
    const c = new TestCluster(dir, options.env ?? {}, options.tls === true);
    const ports = await freePorts(2 * n);
    const nodeIdOf = options.nodeIdOf ?? ((id: number) => id);
    const entry = (id: number) =>
      `"${nodeIdOf(id)} 127.0.0.1:${ports[2 * (id - 1)]} 127.0.0.1:${ports[2 * (id - 1) + 1]}"`;
    const all = Array.from({ length: n }, (_, i) => i + 1);
    for (let id = 1; id <= n; id++) {
      const entries = (options.listed?.(id) ?? all).map(entry);
      const dataDir = join(dir, `node-${id}`);
      const configFile = join(dir, `node-${id}.toml`);
      const extra = typeof options.toml === 'function' ? options.toml(id) : (options.toml ?? '');
      writeFileSync(
        configFile,
        [
          '[hiqlite]',
          `node_id = ${nodeIdOf(id)}`,
          `nodes = [${entries.join(', ')}]`,
          `data_dir = "${dataDir}"`,
          `secret_raft = "${SECRET_RAFT}"`,
          `secret_api = "${SECRET_API}"`,
          // A timing the test's own TOML sets is left to it (TOML refuses a key given twice).
          ...TIMING.filter((line) => !new RegExp(`^${line.split(' ')[0]}\\s*=`, 'm').test(extra)),
          ...(options.tls === true ? ['tls_auto_certificates = true'] : []),
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
  async start(id: number, timeoutOrOptions: number | StartOptions = 60_000): Promise<void> {
    const o: StartOptions =
      typeof timeoutOrOptions === 'number' ? { timeoutMs: timeoutOrOptions } : timeoutOrOptions;
    const timeoutMs = o.timeoutMs ?? 60_000;
    this.spawnNode(id, o.env ?? {}, o.app);
    const n = this.node(id);
    if (!(await this.waitForReady(id, timeoutMs))) {
      throw new Error(`node ${id} not READY within ${timeoutMs} ms:\n${n.output.slice(-4000)}`);
    }
  }

  /**
   * Starts node `id` and watches it for `watchMs`: resolves with whether it printed READY (it
   * became a member) in that time. The process is left running either way (kill it, or close()).
   * For nodes that must NOT become members (wrong secret), so the test need not wait for the
   * node's own join timeout.
   */
  async startAndWatch(
    id: number,
    watchMs: number,
    options: Omit<StartOptions, 'timeoutMs'> = {},
  ): Promise<boolean> {
    this.spawnNode(id, options.env ?? {}, options.app);
    return this.waitForReady(id, watchMs);
  }

  private spawnNode(id: number, env: Record<string, string>, app?: string): void {
    const n = this.node(id);
    if (n.child !== null) throw new Error(`node ${id} is running`);
    const childEnv = {
      ...process.env,
      HQL_LOG_LEVEL: process.env.HQL_TEST_CLUSTER_LOG_LEVEL ?? 'warn',
      ...this.env,
      ...env,
    };
    const [script, args] =
      app === undefined ? [CLI_SOURCE, ['serve', '--config', n.configFile]] : [app, [n.configFile]];
    const { child, exit } = spawnTsx(script, args, childEnv, n, () => {
      n.child = null;
    });
    n.child = child;
    n.exit = exit;
  }

  /** True once the node printed READY; false after `timeoutMs`; throws if it exits first. */
  private async waitForReady(id: number, timeoutMs: number): Promise<boolean> {
    const n = this.node(id);
    const deadline = Date.now() + timeoutMs;
    while (!n.output.includes('READY')) {
      if (n.child === null) throw new Error(`node ${id} exited before READY:\n${n.output.slice(-4000)}`);
      if (Date.now() > deadline) return false;
      await sleep(50);
    }
    return true;
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

  /**
   * A remote client bound to these nodes (default: all), closed by close(). `options` override
   * the defaults (20 s request timeout; TLS when the cluster has it).
   */
  async client(ids?: readonly number[], options: Partial<ConnectOptions> = {}): Promise<HiqliteClient> {
    const addrs = (ids ?? [...this.nodes.keys()]).map((id) => `127.0.0.1:${this.node(id).apiPort}`);
    const c = await connect({
      nodes: addrs,
      secretApi: SECRET_API,
      requestTimeoutMs: 20_000,
      ...(this.tls ? { tls: true } : {}),
      ...options,
    });
    this.clients.push(c);
    return c;
  }

  /** GET an HTTP route of node `id`'s API port (HTTPS, certificate not verified, on a TLS cluster). */
  async http(id: number, path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
    const url = `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.node(id).apiPort}${path}`;
    const res = await requestOnce(url, init, this.tls);
    const text = res.text;
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON (metrics)
    }
    return { status: res.status, body };
  }

  /** Ids of the nodes whose process is running. */
  runningIds(): number[] {
    return [...this.nodes.values()].filter((n) => n.child !== null).map((n) => n.id);
  }

  /**
   * The rows of `sql` on each of `ids` (default: the running nodes), each read locally on that
   * node once it has applied `minIndex`: after a write at `minIndex`, equal rows mean equal
   * replicas up to that write.
   */
  async rowsOn<T = Row>(
    sql: string,
    options: { readonly ids?: readonly number[]; readonly minIndex?: number } = {},
  ): Promise<Map<number, T[]>> {
    const out = new Map<number, T[]>();
    for (const id of options.ids ?? this.runningIds()) {
      const c = await this.client([id]);
      try {
        out.set(
          id,
          await c.query<T>(sql, [], options.minIndex === undefined ? {} : { minIndex: options.minIndex }),
        );
      } catch (e) {
        const at = options.minIndex === undefined ? '' : ` once it applied index ${options.minIndex}`;
        throw new Error(`reading on node ${id}${at}: ${String(e)}`, { cause: e });
      } finally {
        await this.dropClient(c);
      }
    }
    return out;
  }

  /** Waits until every running node reports these voters and learners (sorted) and one leader. */
  async waitForMembership(
    expected: { readonly voters: readonly number[]; readonly learners?: readonly number[] },
    timeoutMs = 30_000,
  ): Promise<Map<number, Metrics>> {
    const voters = [...expected.voters].sort((a, b) => a - b);
    const learners = [...(expected.learners ?? [])].sort((a, b) => a - b);
    return eventually(
      `membership voters=[${voters}] learners=[${learners}] on every running node`,
      async () => {
        const all = new Map<number, Metrics>();
        for (const id of this.runningIds()) all.set(id, await this.metricsOf(id));
        const leaders = new Set([...all.values()].map((m) => m.leaderId));
        const ok =
          leaders.size === 1 &&
          !leaders.has(null) &&
          [...all.values()].every((m) => sameIds(m.voters, voters) && sameIds(m.learners, learners));
        return ok ? all : null;
      },
      timeoutMs,
    );
  }

  /**
   * Waits until every running node agrees on one leader and lists node `id` as a member (voter
   * or learner), and `id` itself knows it.
   */
  async waitForMember(id: number, timeoutMs = 30_000): Promise<Map<number, Metrics>> {
    return eventually(
      `node ${id} a member on every running node`,
      async () => {
        const all = new Map<number, Metrics>();
        for (const n of this.runningIds()) all.set(n, await this.metricsOf(n));
        const leaders = new Set([...all.values()].map((m) => m.leaderId));
        const ok =
          all.has(id) &&
          leaders.size === 1 &&
          !leaders.has(null) &&
          [...all.values()].every((m) => m.voters.includes(id) || m.learners.includes(id));
        return ok ? all : null;
      },
      timeoutMs,
    );
  }

  async dropClient(c: HiqliteClient): Promise<void> {
    await c.close();
    this.clients = this.clients.filter((x) => x !== c);
  }

  /** Metrics of every running node, via a client bound to that node alone. */
  async metricsOf(id: number): Promise<import('../../src/index.js').Metrics> {
    const c = await this.client([id]);
    try {
      return await c.metrics();
    } finally {
      await this.dropClient(c);
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

  /** The last `chars` of every node's output, for failure messages and debugging. */
  outputs(chars = 3000): string {
    return [...this.nodes.values()]
      .map((n) => `--- node ${n.id} (${n.child === null ? 'stopped' : 'running'})\n${n.output.slice(-chars)}`)
      .join('\n');
  }

  async close(): Promise<void> {
    // HQL_TEST_CLUSTER_OUTPUT=<chars> prints the end of what each node logged (to investigate a
    // failure; HQL_TEST_CLUSTER_LOG_LEVEL=info makes the nodes say more).
    const dumpChars = Number(process.env.HQL_TEST_CLUSTER_OUTPUT ?? 0);
    if (dumpChars > 0) process.stderr.write(`${this.outputs(dumpChars)}\n`);
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

function sameIds(a: readonly number[], sorted: readonly number[]): boolean {
  const s = [...a].sort((x, y) => x - y);
  return s.length === sorted.length && s.every((v, i) => v === sorted[i]);
}

/** HTTPS without certificate verification (self-signed test certificates), bounded by 10 s. */
/** The request's headers as fetch would send them: a string body's length and, unless given, its type. */
function headersOf(init: RequestInit): Record<string, string> {
  const headers: Record<string, string> = { ...((init.headers ?? {}) as Record<string, string>) };
  if (typeof init.body === 'string') {
    headers['content-length'] = String(Buffer.byteLength(init.body));
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
      headers['content-type'] = 'text/plain;charset=UTF-8';
  }
  return headers;
}

/**
 * One request on a connection of its own (`agent: false`), HTTPS without verifying the
 * certificate. Not a pooled keep-alive connection: a node closes an idle one after 5 s, and a
 * request sent on it just then failed with "other side closed" (the test saw no answer from a
 * node that was fine).
 */
function requestOnce(
  url: string,
  init: RequestInit,
  tls: boolean,
): Promise<{ status: number; text: string }> {
  return new Promise((ok, fail) => {
    const req = (tls ? httpsRequest : httpRequest)(
      url,
      {
        method: init.method ?? 'GET',
        headers: headersOf(init),
        agent: false,
        ...(tls ? { rejectUnauthorized: false } : {}),
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          ok({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', fail);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within 10000 ms`)));
    req.on('error', fail);
    if (typeof init.body === 'string') req.write(init.body);
    req.end();
  });
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
