/**
 * Drives cache-app.ts (an application embedding a node, using its cache API) as a child process:
 * JSON requests on stdin, answers matched by id, notifications collected per listener. Every
 * wait is bounded; kill() ends the process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

const APP = resolve(import.meta.dirname, 'cache-app.ts');

/** Starts an application for each of `ids` on the cluster's config files (all at once). */
export async function startApps(
  cluster: { node(id: number): { configFile: string } },
  ids: readonly number[],
): Promise<Map<number, CacheApp>> {
  const settled = await Promise.allSettled(ids.map((id) => CacheApp.start(cluster.node(id).configFile)));
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed !== undefined) {
    // None is left running when one could not start.
    await Promise.all(settled.map((r) => (r.status === 'fulfilled' ? r.value.kill() : undefined)));
    throw failed.reason;
  }
  return new Map(ids.map((id, i) => [id, (settled[i] as PromiseFulfilledResult<CacheApp>).value]));
}

export interface Received {
  readonly listener: string;
  readonly channel: string;
  readonly payload: unknown;
  readonly index: number;
  readonly time: number;
}

export class CacheAppError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export class CacheApp {
  output = '';
  readonly received: Received[] = [];
  readonly listenerErrors: Array<{ listener: string; code: string; missed?: number }> = [];
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly exit: Promise<number | null>;
  private exited = false;
  private ready = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly configFile: string,
  ) {
    child.stdout?.on('data', (d: Buffer) => {
      this.keep(d);
      this.buffer += d.toString();
      const lines = this.buffer.split('\n');
      this.buffer = lines.pop() ?? '';
      for (const line of lines) this.onLine(line);
    });
    child.stderr?.on('data', (d: Buffer) => this.keep(d));
    this.exit = new Promise((r) =>
      child.once('exit', (code) => {
        this.exited = true;
        for (const p of this.pending.values()) p.reject(new Error('the application exited'));
        this.pending.clear();
        r(code);
      }),
    );
  }

  /** Starts the application on `configFile`; resolves once READY (the node is a member). */
  static async start(
    configFile: string,
    thread: 'worker' | 'main' = 'worker',
    timeoutMs = 60_000,
  ): Promise<CacheApp> {
    const child = spawn(process.execPath, ['--import', 'tsx', APP, configFile, thread], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, HQL_LOG_LEVEL: process.env.HQL_TEST_CLUSTER_LOG_LEVEL ?? 'warn' },
    });
    const app = new CacheApp(child, configFile);
    const deadline = Date.now() + timeoutMs;
    while (!app.ready) {
      if (app.exited || Date.now() > deadline) {
        await app.kill();
        throw new Error(`the application did not get READY:\n${app.output.slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return app;
  }

  /** Sends one request; resolves with its value, rejects with a CacheAppError for an error answer. */
  request<T = unknown>(op: string, fields: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer to ${op} within ${timeoutMs} ms:\n${this.output.slice(-2000)}`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.stdin?.write(`${JSON.stringify({ id, op, ...fields })}\n`);
    });
  }

  /** Notifications received by `listener`, in the order they arrived. */
  of(listener: string): Received[] {
    return this.received.filter((n) => n.listener === listener);
  }

  /** Stops the whole process (node thread included) until resume(): it falls behind the others. */
  pause(): void {
    if (!this.exited) this.child.kill('SIGSTOP');
  }

  resume(): void {
    if (!this.exited) this.child.kill('SIGCONT');
  }

  async kill(): Promise<void> {
    this.resume();
    if (!this.exited) this.child.kill('SIGKILL');
    await this.exit;
  }

  /** Closes the node gracefully (bounded), then the process. */
  async stop(): Promise<void> {
    if (this.exited) return;
    await this.request('exit', {}, 30_000).catch(() => {});
    await Promise.race([this.exit, new Promise((r) => setTimeout(r, 5_000))]);
    await this.kill();
  }

  private onLine(line: string): void {
    if (line.startsWith('READY')) this.ready = true;
    else if (line.startsWith('N ')) this.received.push(JSON.parse(line.slice(2)) as Received);
    else if (line.startsWith('L ')) this.listenerErrors.push(JSON.parse(line.slice(2)));
    else if (line.startsWith('R ')) {
      const r = JSON.parse(line.slice(2)) as {
        id: number;
        ok: boolean;
        value?: unknown;
        error?: { code: string; message: string };
      };
      const p = this.pending.get(r.id);
      if (p === undefined) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else p.reject(new CacheAppError(r.error?.code ?? 'ERROR', r.error?.message ?? ''));
    }
  }

  private keep(d: Buffer): void {
    this.output += d.toString();
    if (this.output.length > 1 << 20) this.output = this.output.slice(-(1 << 19));
  }
}
