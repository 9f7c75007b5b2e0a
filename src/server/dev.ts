/**
 * `hiqlite dev`: a local cluster of separate `hiqlite serve` processes on 127.0.0.1, for trying
 * hiqlite out. Prints the API addresses and copy-pasteable examples; Ctrl-C stops every node
 * gracefully. The cluster starts and stops as a whole: if one node fails to start, the others are
 * stopped too (none keeps holding its ports), and a temporary folder it made (it holds the
 * secrets) is removed on every way out.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CLI_STOP_SIGNALS, releaseStopSignals } from '../client/signals.js';
import { generateConfig, writeGeneratedConfig } from '../node/config/config.js';
import { type LogLevel, logLevelFromEnv } from '../node/log-level.js';
import { cliError } from './cli-error.js';

/** A node that is not READY by then has failed to start (`serve` gives up joining after 120 s). */
const READY_TIMEOUT_MS = 150_000;
/** How often the nodes still starting are named while waiting for them. */
const READY_PROGRESS_INTERVAL_MS = 5000;
/** Graceful shutdown of every node (each takes at most 10 s), then SIGKILL. */
const STOP_GRACE_MS = 15_000;
/** After SIGKILL, how long to wait for the processes to be gone. */
const KILL_WAIT_MS = 5000;

interface DevNode {
  readonly id: number;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  ready: boolean;
  /** Whether its stderr said that a port was taken. */
  portInUse: boolean;
}

export async function runDev(o: {
  nodes: number;
  dir?: string;
  basePort: number;
  exitAfter?: number;
}): Promise<void> {
  // Checked before anything is made: the nodes would each fail on it.
  const logLevel = logLevelFromEnv('warn');
  const ownDir = o.dir === undefined;
  const dir = o.dir === undefined ? mkdtempSync(join(tmpdir(), 'hiqlite-dev-')) : resolve(o.dir);
  const nodes: DevNode[] = [];
  let stopping = false;
  const stop = async (message: string, exitCode: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      process.stdout.write(`hiqlite dev: ${message}\n`);
      await stopAll(nodes);
      if (ownDir) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      process.stdout.write(`hiqlite dev: stopped${ownDir ? ` (removed ${dir})` : ''}\n`);
      process.exit(exitCode);
    }
    return new Promise<never>(() => {}); // the first stop() exits the process
  };
  const onSignal = (signal: NodeJS.Signals) => void stop(`received ${signal}: stopping the cluster`, 0);
  // `on`, not `once`: a second Ctrl-C must not end this process before it stopped its nodes.
  for (const s of CLI_STOP_SIGNALS) process.on(s, onSignal);
  releaseStopSignals();

  try {
    const generated = generateConfig({
      nodes: o.nodes,
      dir,
      basePortRaft: o.basePort,
      basePortApi: o.basePort + 100,
    });
    writeGeneratedConfig(generated, { overwrite: true });
    for (const [i, f] of generated.files.entries()) nodes.push(spawnNode(i + 1, f.path, logLevel));
    await waitUntilReady(nodes, () => stopping);
    if (stopping) return;
    const apis = generated.files.map((_, i) => `127.0.0.1:${o.basePort + 100 + i}`);
    process.stdout.write(banner(o.nodes, dir, ownDir, apis, generated.secretApi));
  } catch (e) {
    const portInUse = nodes.some((n) => n.portInUse);
    const hint = portInUse
      ? `\n  (a port is taken; is another \`hiqlite dev\` running? --base-port ${o.basePort + 1000} picks others)`
      : '';
    await stop(`${e instanceof Error ? e.message : String(e)}; stopping the cluster${hint}`, 1);
  }

  // Running: a node stopped by hand (to try fail-over) is reported; the others keep running.
  for (const n of nodes) {
    void n.exited.then((code) => {
      if (stopping) return;
      if (nodes.every((m) => m.child.exitCode !== null || m.child.signalCode !== null))
        void stop('every node has exited', 1);
      else process.stdout.write(`hiqlite dev: node ${n.id} exited (code ${code}); the others keep running\n`);
    });
  }
  if (o.exitAfter !== undefined)
    setTimeout(() => void stop(`--exit-after ${o.exitAfter}: stopping the cluster`, 0), o.exitAfter * 1000);
}

function spawnNode(id: number, configPath: string, logLevel: LogLevel): DevNode {
  const cli = process.argv[1] as string;
  const child = spawn(process.execPath, [...process.execArgv, cli, 'serve', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HQL_LOG_LEVEL: logLevel },
  });
  const node: DevNode = {
    id,
    child,
    exited: new Promise((r) => child.once('exit', (code) => r(code))),
    ready: false,
    portInUse: false,
  };
  child.stderr?.on('data', (d: Buffer) => {
    const text = d.toString();
    if (text.includes('EADDRINUSE')) node.portInUse = true;
    process.stderr.write(text);
  });
  // A node prints READY once it is a member. Its log (pino, on stdout, warnings and up unless
  // HQL_LOG_LEVEL says otherwise) is read but not shown: it would bury the instructions below.
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    if (node.ready) return;
    out = (out + d.toString()).slice(-4096);
    if (out.includes('READY')) node.ready = true;
  });
  return node;
}

/** Resolves when every node is READY; rejects when one exits first or the deadline passes. */
async function waitUntilReady(nodes: readonly DevNode[], stopping: () => boolean): Promise<void> {
  const startedMs = performance.now();
  let progressAtMs = READY_PROGRESS_INTERVAL_MS;
  for (;;) {
    if (stopping() || nodes.every((n) => n.ready)) return;
    const dead = nodes.find((n) => !n.ready && (n.child.exitCode !== null || n.child.signalCode !== null));
    if (dead !== undefined)
      throw cliError(
        'HQL_UNAVAILABLE',
        `node ${dead.id} exited with ${dead.child.exitCode === null ? dead.child.signalCode : `code ${dead.child.exitCode}`} before it was ready`,
      );
    const waitedMs = performance.now() - startedMs;
    if (waitedMs >= READY_TIMEOUT_MS)
      throw cliError('HQL_TIMEOUT', `not every node was ready within ${READY_TIMEOUT_MS / 1000} s`);
    if (waitedMs >= progressAtMs) {
      progressAtMs += READY_PROGRESS_INTERVAL_MS;
      const waiting = nodes.filter((n) => !n.ready).map((n) => `node ${n.id}`);
      process.stdout.write(
        `hiqlite dev: waiting for ${waiting.join(', ')} to start (${Math.round(waitedMs / 1000)} s)\n`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM to every node still running; SIGKILL to those not gone within the grace period. */
async function stopAll(nodes: readonly DevNode[]): Promise<void> {
  const running = () => nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
  for (const n of running()) n.child.kill('SIGTERM');
  if (await allExited(running(), STOP_GRACE_MS)) return;
  for (const n of running()) {
    process.stdout.write(
      `hiqlite dev: node ${n.id} did not stop within ${STOP_GRACE_MS / 1000} s: killing it\n`,
    );
    n.child.kill('SIGKILL');
  }
  await allExited(running(), KILL_WAIT_MS);
}

async function allExited(nodes: readonly DevNode[], timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), timeoutMs);
  });
  const done = Promise.all(nodes.map((n) => n.exited)).then(() => true as const);
  try {
    return await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `import 'hiqlite'` works in the current folder (an app with hiqlite installed, or a
 * built clone of hiqlite itself, which imports itself by name through package.json "exports"). */
function importableHere(): boolean {
  try {
    createRequire(join(process.cwd(), 'index.js')).resolve('hiqlite');
    return true;
  } catch {
    return false;
  }
}

function banner(
  count: number,
  dir: string,
  ownDir: boolean,
  apis: readonly string[],
  secret: string,
): string {
  const nodeExample = [
    `  node --input-type=module -e "`,
    `    import { connect } from 'hiqlite';`,
    `    const db = await connect({ nodes: [${apis.map((a) => `'${a}'`).join(', ')}], secretApi: '${secret}' });`,
    `    await db.execute('CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)');`,
    `    await db.execute('INSERT INTO notes (body) VALUES (?)', ['from Node.js']);`,
    `    console.log(await db.query('SELECT * FROM notes', [], { consistency: 'linearizable' }));`,
    `    await db.close();`,
    `  "`,
  ];
  return [
    `hiqlite dev: ${count} nodes running (configuration and data in ${dir}${ownDir ? ', removed on stop' : ''})`,
    ...apis.map((a, i) => `  node ${i + 1}: API http://${a}`),
    '',
    'try it:',
    `  curl -s -H 'X-API-SECRET: ${secret}' -d '{"sql":"CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)"}' http://${apis[0]}/execute`,
    `  curl -s -H 'X-API-SECRET: ${secret}' -d '{"sql":"INSERT INTO notes (body) VALUES (?)","params":["hello"]}' http://${apis[1 % apis.length]}/execute`,
    `  curl -s -H 'X-API-SECRET: ${secret}' -d '{"sql":"SELECT * FROM notes","consistency":"linearizable"}' http://${apis[2 % apis.length]}/query`,
    '',
    importableHere()
      ? '  # from Node.js, in this folder (another terminal):'
      : '  # from Node.js, in a folder where hiqlite is installed (in a clone of hiqlite: after npm run build):',
    ...nodeExample,
    '',
    'Ctrl-C stops the cluster.',
    '',
  ].join('\n');
}
