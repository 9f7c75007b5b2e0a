/**
 * `hiqlite proxy` processes for tests: each a real process of the CLI with its own TOML file,
 * on 127.0.0.1, in front of a TestCluster. Every process started is killed by close(); every
 * wait is bounded.
 */
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts, SECRET_API, sleep } from '../cluster/harness.js';
import { CLI_SOURCE, spawnTsx } from '../support/tsx-process.js';

export interface ProxyOptions {
  /** The cluster's API addresses. */
  readonly nodes: readonly string[];
  /** Folder for the config file. */
  readonly dir: string;
  readonly name: string;
  /** Extra `key = value` TOML lines. */
  readonly toml?: readonly string[];
  readonly env?: Record<string, string>;
}

export class ProxyProcess {
  child: ChildProcess | null = null;
  output = '';
  private exit: Promise<number | null> | null = null;

  private constructor(
    readonly port: number,
    readonly configFile: string,
    private readonly env: Record<string, string>,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Writes the config file; start() runs the process. */
  static async create(o: ProxyOptions): Promise<ProxyProcess> {
    const [port] = await freePorts(1);
    const configFile = join(o.dir, `${o.name}.toml`);
    writeFileSync(
      configFile,
      [
        '[hiqlite]',
        `proxy_addr_api = "127.0.0.1:${port}"`,
        `nodes = [${o.nodes.map((n) => `"${n}"`).join(', ')}]`,
        `secret_api = "${SECRET_API}"`,
        ...(o.toml ?? []),
        '',
      ].join('\n'),
    );
    return new ProxyProcess(port as number, configFile, o.env ?? {});
  }

  /** Runs the proxy; resolves once it printed READY, rejects if it exits first or takes 20 s. */
  async start(): Promise<void> {
    this.spawn();
    const deadline = Date.now() + 20_000;
    while (!this.output.includes('READY')) {
      if (this.child === null) throw new Error(`proxy exited before READY:\n${this.output.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`proxy not READY within 20 s:\n${this.output.slice(-3000)}`);
      await sleep(50);
    }
  }

  /** Runs the proxy and waits for it to exit (bounded): its exit code and output. */
  async runToExit(timeoutMs = 20_000): Promise<{ code: number | null; output: string }> {
    this.spawn();
    const code = await exitWithin(this.exit, timeoutMs);
    if (code === 'timeout') {
      await this.kill();
      throw new Error(`proxy still running after ${timeoutMs} ms:\n${this.output.slice(-3000)}`);
    }
    return { code, output: this.output };
  }

  /** SIGKILL. */
  async kill(): Promise<void> {
    if (this.child === null) return;
    this.child.kill('SIGKILL');
    await this.exit;
  }

  /** SIGTERM (or `signal`); resolves with the exit code (SIGKILL after 15 s). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child === null) return null;
    this.child.kill(signal);
    const code = await exitWithin(this.exit, 15_000);
    if (code !== 'timeout') return code;
    await this.kill();
    throw new Error(`proxy did not exit within 15 s of ${signal}`);
  }

  private spawn(): void {
    if (this.child !== null) throw new Error('proxy is running');
    const env = {
      ...process.env,
      HQL_LOG_LEVEL: process.env.HQL_TEST_CLUSTER_LOG_LEVEL ?? 'warn',
      ...this.env,
    };
    const { child, exit } = spawnTsx(CLI_SOURCE, ['proxy', '--config', this.configFile], env, this, () => {
      this.child = null;
    });
    this.child = child;
    this.exit = exit;
  }
}

/** Proxies started through `create`, killed together. */
export class Proxies {
  private readonly all: ProxyProcess[] = [];

  constructor(
    private readonly dir: string,
    private readonly nodes: readonly string[],
  ) {}

  async create(
    name: string,
    options: { toml?: readonly string[]; env?: Record<string, string> } = {},
  ): Promise<ProxyProcess> {
    const p = await ProxyProcess.create({ dir: this.dir, nodes: this.nodes, name, ...options });
    this.all.push(p);
    return p;
  }

  async start(name: string, options: { toml?: readonly string[] } = {}): Promise<ProxyProcess> {
    const p = await this.create(name, options);
    await p.start();
    return p;
  }

  async close(): Promise<void> {
    for (const p of this.all) await p.kill();
  }
}

/** The exit code, or 'timeout' after `ms` (the timer is cleared: it does not keep the test alive). */
async function exitWithin(
  exit: Promise<number | null> | null,
  ms: number,
): Promise<number | null | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      exit ?? Promise.resolve(null),
      new Promise<'timeout'>((r) => {
        timer = setTimeout(() => r('timeout'), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
