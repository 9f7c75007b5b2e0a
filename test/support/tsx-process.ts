/**
 * A hiqlite process of a test (a node, a proxy, one run of a command), started from the sources
 * through tsx, its output kept for failure messages. The one place the test harnesses choose how a product
 * process runs (the fault suite runs compiled JavaScript instead: test/faults/compiled-product.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';

/** The `hiqlite` command's source. */
export const CLI_SOURCE = resolve(import.meta.dirname, '../../src/server/cli.ts');

/** Where the output goes: its last half MiB to 1 MiB is kept. */
export interface OutputSink {
  output: string;
}

const OUTPUT_BYTES_MAX = 1 << 20;

/**
 * `node --import tsx <script> ...args` with stdout and stderr into `sink.output` (reset here).
 * `exit` resolves with the exit code, -1 for a signal, once `onExit` has run.
 */
export function spawnTsx(
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  sink: OutputSink,
  onExit: () => void,
): { child: ChildProcess; exit: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  sink.output = '';
  const exit = new Promise<number | null>((r) =>
    child.once('exit', (code, signal) => {
      onExit();
      r(code ?? (signal === null ? null : -1));
    }),
  );
  const onData = (d: Buffer) => {
    sink.output += d.toString();
    if (sink.output.length > OUTPUT_BYTES_MAX) sink.output = sink.output.slice(-(OUTPUT_BYTES_MAX >> 1));
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  return { child, exit };
}

/**
 * One run of `node --import tsx <script> ...args` to its end: `stdin` written to it (else none),
 * its output collected, killed (SIGKILL) after `timeoutMs`. Resolves once its output is closed.
 */
export function runTsx(
  script: string,
  args: readonly string[],
  o: { env?: NodeJS.ProcessEnv; stdin?: string; timeoutMs: number },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      stdio: [o.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: o.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    child.once('error', fail);
    child.once('close', (code) => {
      clearTimeout(timer);
      ok({ code, stdout, stderr });
    });
    if (o.stdin !== undefined) child.stdin?.end(o.stdin);
  });
}
