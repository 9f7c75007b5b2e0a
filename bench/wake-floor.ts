/**
 * What this machine charges for waking a sleeping thread: the floor under any latency measured
 * at a low, paced rate (the notify workload sends 100 notifications per second, so every one of
 * them finds every thread of the cluster asleep). Three hops a write takes, each timed back to
 * back and after 10 ms of idleness, medians in µs:
 *
 * - a round trip over loopback TCP to another process (an append to a follower and its answer),
 * - a round trip to a worker thread by postMessage (the application and the node's own thread),
 * - a 200-byte write to a file opened with O_DSYNC (a log append).
 *
 * A virtual machine whose guest does not poll before halting an idle vCPU pays a host wake-up on
 * every hop after idleness (docs/BENCHMARKS.md, "Notify at a paced rate: the machine's wake-up
 * floor"). Bounded: a fixed number of samples, each with a deadline.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, constants, openSync, rmSync, write } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

export interface HopFloor {
  /** Median µs, back to back. */
  readonly busyUs: number;
  /** Median µs, after 10 ms with nothing to do. */
  readonly idleUs: number;
}

export interface WakeFloor {
  readonly tcpProcess: HopFloor;
  readonly workerThread: HopFloor;
  readonly dsyncWrite: HopFloor;
}

const SAMPLES = 120;
const IDLE_MS = 10;
const HOP_DEADLINE_MS = 5_000;

const ECHO_SERVER = `
const net = require('node:net');
const srv = net.createServer((s) => { s.setNoDelay(true); s.on('data', (d) => s.write(d)); });
srv.listen(0, '127.0.0.1', () => process.stdout.write(String(srv.address().port) + '\\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

function withDeadline<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`wake floor: ${what} took over ${HOP_DEADLINE_MS} ms`)),
      HOP_DEADLINE_MS,
    );
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

async function timeHop(hop: () => Promise<void>, what: string): Promise<HopFloor> {
  const median = async (idleMs: number): Promise<number> => {
    const us: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      if (idleMs > 0) await new Promise((r) => setTimeout(r, idleMs));
      const t0 = performance.now();
      await withDeadline(hop(), what);
      us.push((performance.now() - t0) * 1000);
    }
    us.sort((a, b) => a - b);
    return Math.round(us[us.length >> 1] as number);
  };
  await median(0); // warm-up
  return { busyUs: await median(0), idleUs: await median(IDLE_MS) };
}

async function tcpFloor(): Promise<HopFloor> {
  const child: ChildProcess = spawn(process.execPath, ['-e', ECHO_SERVER], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let socket: Socket | null = null;
  try {
    const port = await withDeadline(
      new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      }),
      'the echo process to start',
    );
    const s = connect(port, '127.0.0.1');
    socket = s;
    s.setNoDelay(true);
    await withDeadline(new Promise<void>((r) => s.once('connect', () => r())), 'the connection');
    const payload = Buffer.alloc(100, 1);
    let answered: (() => void) | null = null;
    let pending = 0;
    s.on('data', (d: Buffer) => {
      pending -= d.length;
      if (pending <= 0 && answered !== null) answered();
    });
    return await timeHop(
      () =>
        new Promise<void>((r) => {
          pending = payload.length;
          answered = r;
          s.write(payload);
        }),
      'a TCP round trip',
    );
  } finally {
    socket?.destroy();
    child.stdin?.end();
    child.kill();
  }
}

async function workerFloor(): Promise<HopFloor> {
  const w = new Worker(
    "const { parentPort } = require('node:worker_threads'); parentPort.on('message', (m) => parentPort.postMessage(m));",
    { eval: true },
  );
  try {
    let answered: (() => void) | null = null;
    w.on('message', () => answered?.());
    return await timeHop(
      () =>
        new Promise<void>((r) => {
          answered = r;
          w.postMessage([1, 'x', 2]);
        }),
      'a worker round trip',
    );
  } finally {
    await w.terminate();
  }
}

async function dsyncFloor(dir: string): Promise<HopFloor> {
  const path = join(dir, 'wake-floor-dsync');
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | (constants.O_DSYNC ?? 0));
  const bytes = Buffer.alloc(200, 1);
  let pos = 0;
  try {
    return await timeHop(
      () =>
        new Promise<void>((resolve, reject) => {
          write(fd, bytes, 0, bytes.length, pos, (e) => (e ? reject(e) : resolve()));
          pos += bytes.length;
        }),
      'an O_DSYNC write',
    );
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
}

/** Measures the three hops one after another (about 10 s), writing its file in `dir`. */
export async function measureWakeFloor(dir: string): Promise<WakeFloor> {
  return {
    tcpProcess: await tcpFloor(),
    workerThread: await workerFloor(),
    dsyncWrite: await dsyncFloor(dir),
  };
}

export function formatWakeFloor(f: WakeFloor): string {
  const hop = (h: HopFloor) => `${h.busyUs} µs back to back, ${h.idleUs} µs after ${IDLE_MS} ms idle`;
  return (
    `wake-up floor of this machine (medians): TCP round trip to another process ${hop(f.tcpProcess)}; ` +
    `worker thread round trip ${hop(f.workerThread)}; 200 B O_DSYNC write ${hop(f.dsyncWrite)}`
  );
}
