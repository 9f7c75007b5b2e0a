/**
 * Drives stall-app.ts (an application embedding a node that blocks its event loop on command)
 * as a child process: commands on stdin, one answer line each on stdout. Every wait is bounded;
 * kill() ends the process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

const APP = resolve(import.meta.dirname, 'stall-app.ts');

export class StallApp {
  private stdout = '';
  output = '';
  private readonly exit: Promise<number | null>;
  private exited = false;

  private constructor(private readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => {
      this.stdout += d.toString();
      this.keep(d);
    });
    child.stderr?.on('data', (d: Buffer) => this.keep(d));
    this.exit = new Promise((r) =>
      child.once('exit', (code) => {
        this.exited = true;
        r(code);
      }),
    );
  }

  /** Starts the application on `configFile` with the node on `thread`; resolves once READY. */
  static async start(
    configFile: string,
    thread: 'worker' | 'main',
    env: Record<string, string> = {},
    timeoutMs = 60_000,
  ): Promise<StallApp> {
    const child = spawn(process.execPath, ['--import', 'tsx', APP, configFile, thread], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    const app = new StallApp(child);
    try {
      await app.nextLine('READY', timeoutMs);
    } catch (e) {
      await app.kill();
      throw e;
    }
    return app;
  }

  /** Sends `command` and resolves with its answer (the line that starts with `answerPrefix`). */
  async send(command: string, answerPrefix: string, timeoutMs = 60_000): Promise<string> {
    this.child.stdin?.write(`${command}\n`);
    return this.nextLine(answerPrefix, timeoutMs);
  }

  async kill(): Promise<void> {
    if (!this.exited) this.child.kill('SIGKILL');
    await this.exit;
  }

  private keep(d: Buffer): void {
    this.output += d.toString();
    if (this.output.length > 1 << 20) this.output = this.output.slice(-(1 << 19));
  }

  /** The next stdout line starting with `prefix` (or ERROR), consumed with every line before it. */
  private async nextLine(prefix: string, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.stdout.split('\n');
      for (let i = 0; i < lines.length - 1; i++) {
        const line = lines[i] as string;
        if (line.startsWith(prefix) || line.startsWith('ERROR')) {
          this.stdout = lines.slice(i + 1).join('\n');
          if (line.startsWith('ERROR')) throw new Error(`the application answered ${line}`);
          return line;
        }
      }
      if (this.exited)
        throw new Error(`the application exited before ${prefix}:\n${this.output.slice(-4000)}`);
      if (Date.now() > deadline)
        throw new Error(
          `no ${prefix} from the application within ${timeoutMs} ms:\n${this.output.slice(-4000)}`,
        );
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
