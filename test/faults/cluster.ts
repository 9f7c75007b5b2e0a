/**
 * A cluster of real `hiqlite serve` processes whose node-to-node links all cross a ProxyNet.
 * Node m's configuration lists its own entry with its real ports and every other node n at the
 * proxy ports of the link m → n. The suite kills (-9), pauses (SIGSTOP/SIGCONT), wipes and
 * restarts processes; every exit it did not cause is recorded as a crash. Each node's output
 * goes to `<dir>/node-<id>.log`, with a marker line for every action taken on it.
 *
 * Independent of test/cluster/harness.ts on purpose: that harness has no proxies and is being
 * extended by others.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  type WriteStream,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { connect, type HiqliteClient, HiqliteError } from '../../src/index.js';
import { enospcEnv, fillDisk, freeDisk } from '../support/enospc.js';
import { freePorts } from '../support/free-ports.js';
import { faketimeEnv, writeClockOffset } from '../support/libfaketime.js';
import { type NodePorts, ProxyNet } from './network.js';

const REPO = resolve(import.meta.dirname, '../..');
const CLI = join(REPO, 'src/server/cli.ts');
export const SECRET_RAFT = 'fault-suite-raft-secret-0123456789';
export const SECRET_API = 'fault-suite-api-secret-0123456789';

/** Short Raft timings so faults resolve within seconds (as the issue asks). */
export const FAULT_TOML = [
  'tick_interval_ms = 50',
  'heartbeat_interval_ms = 100',
  'election_timeout_ms = 1000',
  'logs_until_snapshot = 200',
];

export type NodeState = 'down' | 'starting' | 'up' | 'paused';

export interface Crash {
  readonly id: number;
  readonly atMs: number;
  readonly code: number | null;
  readonly signal: string | null;
  readonly outputTail: string;
}

/** What /health answers (the node's metrics plus membership). */
export interface Health {
  readonly nodeId: number;
  readonly role: string;
  readonly term: number;
  readonly leaderId: number | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly voters: number[];
  readonly learners: number[];
  readonly member: boolean;
}

export interface FaultNode extends NodePorts {
  readonly dataDir: string;
  readonly configFile: string;
  readonly logFile: string;
  /** The libfaketime clock file (clusters made with `clocks`), else null. */
  readonly clockFile: string | null;
  /** Its wall clock's offset from the real time, ms. */
  clockOffsetMs: number;
  /** The flag file that fills its disk (clusters made with `disks`), else null. */
  readonly diskFlag: string | null;
  /** Whether its disk is full now (`setDiskFull`). */
  diskFull: boolean;
  /**
   * Its disk was full while this process ran: it may exit for it, with code 1, saying why (also
   * just after the space came back: it may have hit the full disk a moment before).
   */
  diskFullThisLife: boolean;
  child: ChildProcess | null;
  state: NodeState;
  /** Resolves when the current process printed READY; rejects when it exits first. */
  ready: Promise<void> | null;
  exited: Promise<void> | null;
  /** Set before the suite signals the process, so its exit is not a crash. */
  expectExit: boolean;
  tail: string;
  log: WriteStream;
  starts: number;
}

export interface FaultClusterOptions {
  readonly nodes: number;
  /** Working folder (configs, data, logs); created, removed by close() unless kept. */
  readonly dir: string;
  readonly extraToml?: readonly string[];
  readonly logLevel?: string;
  /**
   * Run every node under libfaketime with a clock file of its own (`setClockOffset`), for the
   * clock nemesis; the nodes ask each other's clocks every 500 ms.
   */
  readonly clocks?: boolean;
  /**
   * Run every node under the ENOSPC shim (test/support/enospc.ts) with a flag file of its own
   * (`setDiskFull`), for the disk-full nemesis.
   */
  readonly disks?: boolean;
  /**
   * The cache group kept in memory (`cache_storage_disk = false`): a killed node loses its cache
   * state and joins again; the nemeses then only ever take a minority's state (cacheGroupWhole).
   */
  readonly cacheMemory?: boolean;
  /**
   * With cacheMemory: kills may take a majority's cache state too (the group is founded anew, its
   * data lost by design); the run then checks recovery, not what the caches held.
   */
  readonly cacheLoss?: boolean;
  /** Called with one line per action and unexpected event. */
  readonly onEvent?: (line: string) => void;
}

export class FaultCluster {
  readonly nodes = new Map<number, FaultNode>();
  readonly crashes: Crash[] = [];
  /** Nodes killed, paused, wiped or damaged since the last `clearDisturbed()` (links: `net.touched`). */
  readonly disturbed = new Set<number>();
  private readonly t0 = performance.now();
  private clients: HiqliteClient[] = [];

  private constructor(
    readonly dir: string,
    readonly net: ProxyNet,
    private readonly options: FaultClusterOptions,
  ) {}

  /** Allocates ports, starts the proxies, writes one config per node. Starts no process. */
  static async create(options: FaultClusterOptions): Promise<FaultCluster> {
    const n = options.nodes;
    mkdirSync(options.dir, { recursive: true });
    const ports = await freePorts(2 * n);
    const real: NodePorts[] = [];
    for (let id = 1; id <= n; id++) {
      real.push({ id, raftPort: ports[2 * (id - 1)] as number, apiPort: ports[2 * (id - 1) + 1] as number });
    }
    const net = await ProxyNet.create(real);
    const c = new FaultCluster(options.dir, net, options);
    for (const self of real) {
      const entries = real.map((other) => {
        if (other.id === self.id) return `"${self.id} 127.0.0.1:${self.raftPort} 127.0.0.1:${self.apiPort}"`;
        const l = net.link(self.id, other.id);
        return `"${other.id} 127.0.0.1:${l.raft.port} 127.0.0.1:${l.api.port}"`;
      });
      const dataDir = join(options.dir, `node-${self.id}`);
      const configFile = join(options.dir, `node-${self.id}.toml`);
      const logFile = join(options.dir, `node-${self.id}.log`);
      const clockFile = options.clocks === true ? join(options.dir, `clock-${self.id}`) : null;
      if (clockFile !== null) writeClockOffset(clockFile, 0);
      writeFileSync(
        configFile,
        [
          '[hiqlite]',
          `node_id = ${self.id}`,
          `nodes = [${entries.join(', ')}]`,
          `data_dir = ${JSON.stringify(dataDir)}`,
          `secret_raft = "${SECRET_RAFT}"`,
          `secret_api = "${SECRET_API}"`,
          ...FAULT_TOML,
          ...(clockFile === null ? [] : ['clock_probe_interval_ms = 500']),
          ...(options.cacheMemory === true ? ['cache_storage_disk = false'] : []),
          ...(options.extraToml ?? []),
          '',
        ].join('\n'),
      );
      c.nodes.set(self.id, {
        ...self,
        dataDir,
        configFile,
        logFile,
        clockFile,
        clockOffsetMs: 0,
        diskFlag: options.disks === true ? join(options.dir, `disk-full-${self.id}`) : null,
        diskFull: false,
        diskFullThisLife: false,
        child: null,
        state: 'down',
        ready: null,
        exited: null,
        expectExit: false,
        tail: '',
        log: createWriteStream(logFile, { flags: 'a' }),
        starts: 0,
      });
    }
    return c;
  }

  /** Starts a new record of which nodes faults touched (their own process, or their links). */
  clearDisturbed(): void {
    this.disturbed.clear();
    this.net.touched.clear();
  }

  /** Nodes a fault touched since `clearDisturbed()`: their process or one of their links. */
  touchedNodes(): Set<number> {
    return new Set([...this.disturbed, ...this.net.touched]);
  }

  ids(): number[] {
    return [...this.nodes.keys()];
  }

  node(id: number): FaultNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  elapsedMs(): number {
    return Math.round(performance.now() - this.t0);
  }

  /** Writes a marker into node `id`'s log (and the event stream). */
  mark(id: number, what: string): void {
    const line = `--- fault-suite t=${(this.elapsedMs() / 1000).toFixed(3)}s node ${id}: ${what}`;
    this.node(id).log.write(`${line}\n`);
    this.options.onEvent?.(line);
  }

  /** Spawns node `id`; the returned promise resolves at READY. The state is 'starting' until then. */
  start(id: number, timeoutMs = 60_000): Promise<void> {
    const n = this.node(id);
    if (n.child !== null) throw new Error(`node ${id} is running`);
    n.starts++;
    this.mark(id, `start #${n.starts}`);
    // The long runner sets HQL_FAULTS_NODE_CLI to the compiled CLI (compiled-product.ts).
    const compiled = process.env.HQL_FAULTS_NODE_CLI;
    const cli = compiled === undefined || compiled === '' ? ['--import', 'tsx', CLI] : [compiled];
    const child = spawn(process.execPath, [...cli, 'serve', '--config', n.configFile], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        HQL_LOG_LEVEL: this.options.logLevel ?? 'info',
        ...preloads(n),
      },
    });
    n.child = child;
    n.state = 'starting';
    n.expectExit = false;
    n.diskFullThisLife = n.diskFull;
    n.tail = '';
    let readySeen = false;
    let onReady: () => void = () => {};
    let onFail: (e: Error) => void = () => {};
    const ready = new Promise<void>((ok, fail) => {
      onReady = ok;
      onFail = fail;
    });
    ready.catch(() => {}); // observed by whoever awaits it; an unobserved failure is a crash record
    const onData = (d: Buffer) => {
      n.log.write(d);
      n.tail = (n.tail + d.toString()).slice(-8000);
      if (!readySeen && n.tail.includes('READY')) {
        readySeen = true;
        if (n.state === 'starting') n.state = 'up';
        onReady();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    n.exited = new Promise<void>((r) =>
      child.once('exit', (code, signal) => {
        if (n.child === child) {
          n.child = null;
          n.state = 'down';
        }
        this.mark(id, `exited code=${code} signal=${signal}`);
        // A node whose disk is full stops, exit code 1, naming the cause: what it must do.
        const forTheDisk = n.diskFullThisLife && code === 1 && /ENOSPC|SQLITE_FULL/.test(n.tail);
        if (forTheDisk) this.mark(id, 'stopped for its full disk (expected)');
        if (!n.expectExit && !forTheDisk) {
          this.crashes.push({ id, atMs: this.elapsedMs(), code, signal, outputTail: n.tail.slice(-4000) });
          this.options.onEvent?.(`!!! node ${id} exited on its own (code ${code}, signal ${signal})`);
        }
        onFail(new Error(`node ${id} exited before READY (code ${code}, signal ${signal})`));
        r();
      }),
    );
    const timer = setTimeout(
      () => onFail(new Error(`node ${id} not READY within ${timeoutMs} ms`)),
      timeoutMs,
    );
    n.ready = ready.finally(() => clearTimeout(timer));
    n.ready.catch(() => {});
    return n.ready;
  }

  /** Whether the nodes run under libfaketime (`clocks`), so their clocks can be stepped. */
  get clocks(): boolean {
    return this.options.clocks === true;
  }

  /** Steps node `id`'s wall clock to `offsetMs` off the real time (it sees it within a second). */
  setClockOffset(id: number, offsetMs: number): void {
    const n = this.node(id);
    if (n.clockFile === null) throw new Error('the cluster was made without clocks');
    this.mark(id, `wall clock ${offsetMs >= 0 ? '+' : ''}${offsetMs} ms`);
    if (offsetMs !== 0) this.disturbed.add(id);
    writeClockOffset(n.clockFile, offsetMs);
    n.clockOffsetMs = offsetMs;
  }

  /** Whether the nodes run under the ENOSPC shim (`disks`), so their disks can be filled. */
  get disks(): boolean {
    return this.options.disks === true;
  }

  /** Fills node `id`'s disk (every write, sync and allocation under its data_dir fails) or frees it. */
  setDiskFull(id: number, full: boolean): void {
    const n = this.node(id);
    if (n.diskFlag === null) throw new Error('the cluster was made without disks');
    this.mark(id, full ? 'disk full' : 'disk space again');
    if (full) {
      this.disturbed.add(id);
      fillDisk(n.diskFlag);
      n.diskFullThisLife = true;
    } else freeDisk(n.diskFlag);
    n.diskFull = full;
  }

  /** SIGKILL (continuing a paused process first is unnecessary: SIGKILL ends it anyway). */
  async kill(id: number): Promise<void> {
    const n = this.node(id);
    const child = n.child;
    if (child === null) return;
    n.expectExit = true;
    this.mark(id, 'SIGKILL');
    this.disturbed.add(id);
    child.kill('SIGKILL');
    await n.exited;
  }

  pause(id: number): void {
    const n = this.node(id);
    if (n.child === null || n.state === 'paused') return;
    this.mark(id, 'SIGSTOP');
    this.disturbed.add(id);
    n.child.kill('SIGSTOP');
    n.state = 'paused';
  }

  resume(id: number): void {
    const n = this.node(id);
    if (n.child === null || n.state !== 'paused') return;
    this.mark(id, 'SIGCONT');
    n.child.kill('SIGCONT');
    // READY may have been printed while paused or not yet: the ready promise tells.
    n.state = 'starting';
    n.ready?.then(
      () => {
        if (n.state === 'starting') n.state = 'up';
      },
      () => {},
    );
  }

  /** Deletes a stopped node's data directory (lost volume). */
  wipe(id: number): void {
    const n = this.node(id);
    if (n.child !== null) throw new Error(`node ${id} is running`);
    this.mark(id, 'wipe data directory');
    this.disturbed.add(id);
    rmSync(n.dataDir, { recursive: true, force: true });
  }

  /**
   * What an operator loses on a stopped node: its Raft log directory, its SQLite files, its
   * snapshots, or its whole data directory.
   */
  damage(id: number, what: 'logs' | 'db' | 'snapshots' | 'all'): void {
    const n = this.node(id);
    if (n.child !== null) throw new Error(`node ${id} is running`);
    this.mark(id, `delete ${what === 'all' ? 'the data directory' : what}`);
    this.disturbed.add(id);
    const path = {
      logs: join(n.dataDir, 'logs'),
      db: join(n.dataDir, 'state_machine', 'db'),
      snapshots: join(n.dataDir, 'state_machine', 'snapshots'),
      all: n.dataDir,
    }[what];
    rmSync(path, { recursive: true, force: true });
  }

  /** /health of one node over HTTP (real API port); null when it does not answer in time. */
  async health(id: number, timeoutMs = 1500): Promise<Health | null> {
    const n = this.node(id);
    if (n.child === null || n.state === 'paused') return null;
    try {
      const res = await fetch(`http://127.0.0.1:${n.apiPort}/health`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      const body = (await res.json()) as Partial<Health>;
      return typeof body.commitIndex === 'number' ? (body as Health) : null;
    } catch {
      return null;
    }
  }

  /** How many lines of the nodes' logs (all of them, every life) contain `text`. */
  countInLogs(text: string): number {
    let n = 0;
    for (const id of this.ids()) {
      const file = this.node(id).logFile;
      if (!existsSync(file)) continue;
      for (const line of readFileSync(file, 'utf8').split('\n')) if (line.includes(text)) n++;
    }
    return n;
  }

  /** Whether the cache group is kept in memory (FaultClusterOptions.cacheMemory). */
  get cacheMemory(): boolean {
    return this.options.cacheMemory === true;
  }

  /** Whether kills may take a majority's in-memory cache state (FaultClusterOptions.cacheLoss). */
  get cacheLoss(): boolean {
    return this.cacheMemory && this.options.cacheLoss === true;
  }

  /**
   * Whether every node runs (not paused) and is a voter of the cache group that knows its
   * leader: only then may a node kept in memory lose its state (be killed) without taking the
   * group's majority with it (a restarted node is a learner until it caught up; a second loss
   * before that is a majority's).
   */
  async cacheGroupWhole(): Promise<boolean> {
    const ids = this.ids();
    if (ids.some((id) => this.node(id).child === null || this.node(id).state !== 'up')) return false;
    const hs = await Promise.all(ids.map((id) => this.health(id)));
    return hs.every((h) => {
      const cache = (h as (Health & { cache?: { voters?: number[]; leaderId?: number | null } }) | null)
        ?.cache;
      return (
        cache !== undefined &&
        cache.leaderId !== null &&
        cache.leaderId !== undefined &&
        ids.every((id) => cache.voters?.includes(id) === true)
      );
    });
  }

  /** The node that says it is the leader (the highest term wins), or null. */
  async leader(): Promise<number | null> {
    const hs = await Promise.all(this.ids().map((id) => this.health(id)));
    let best: Health | null = null;
    for (const h of hs) {
      if (h?.role === 'leader' && (best === null || h.term > best.term)) best = h;
    }
    return best?.nodeId ?? null;
  }

  /** A remote client; `ids` first in the order given (it fails over to the next). */
  async client(
    ids: readonly number[],
    requestTimeoutMs: number,
    connectWithinMs = requestTimeoutMs,
  ): Promise<HiqliteClient> {
    // connect() rejects while no node listens (nodes may still be restarting after a fault):
    // try again for up to `connectWithinMs`.
    const deadline = performance.now() + connectWithinMs;
    for (;;) {
      try {
        const c = await connect({
          nodes: ids.map((id) => `127.0.0.1:${this.node(id).apiPort}`),
          secretApi: SECRET_API,
          requestTimeoutMs,
          connectTimeoutMs: 1000,
        });
        this.clients.push(c);
        return c;
      } catch (e) {
        if (!(e instanceof HiqliteError) || e.code !== 'HQL_UNAVAILABLE' || performance.now() > deadline)
          throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  async closeClient(c: HiqliteClient): Promise<void> {
    this.clients = this.clients.filter((x) => x !== c);
    await c.close().catch(() => {});
  }

  async close(options: { removeDir: boolean }): Promise<void> {
    for (const c of this.clients) await c.close().catch(() => {});
    this.clients = [];
    for (const n of this.nodes.values()) {
      if (n.child !== null) {
        n.expectExit = true;
        n.child.kill('SIGCONT');
        n.child.kill('SIGKILL');
        await n.exited;
      }
    }
    await this.net.close();
    await Promise.all([...this.nodes.values()].map((n) => new Promise<void>((r) => n.log.end(() => r()))));
    if (options.removeDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The LD_PRELOAD environment of a node: libfaketime, the ENOSPC shim, both or neither. */
function preloads(n: FaultNode): Record<string, string> {
  const clock = n.clockFile === null ? {} : faketimeEnv(n.clockFile);
  const disk = n.diskFlag === null ? {} : enospcEnv(n.dataDir, n.diskFlag);
  const libs = [clock.LD_PRELOAD, disk.LD_PRELOAD].filter((l) => l !== undefined);
  return { ...clock, ...disk, ...(libs.length === 0 ? {} : { LD_PRELOAD: libs.join(' ') }) };
}
