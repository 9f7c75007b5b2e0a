/**
 * Ports for node processes that bind them later. A port found by binding port 0 lies in the
 * kernel's ephemeral range, where any outgoing connection may take it as its local port before
 * the node binds it (EADDRINUSE). So ports come from below that range (Linux: 32768-60999), at a
 * random offset per call, each checked free by binding it, and never handed out twice.
 *
 * "Never twice" holds across the test processes that run at once (`--test-concurrency`): each
 * port handed out is claimed by a file created exclusively in a directory they share, removed
 * when the process that claimed it exits. Without it a port whose node was down for a moment
 * (killed and restarted by a test) could be found free and handed to a test in another process,
 * and the node's restart failed with EADDRINUSE (the fault suite's operator nemesis, once in CI).
 */
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOW = 20_000;
const HIGH_EXCLUSIVE = 32_768;
const ATTEMPTS_MAX = 2_000;
/** A claim older than this is left over from a run that did not clean up: ignored and replaced. */
const CLAIM_STALE_MS = 6 * 60 * 60 * 1000;
const CLAIMS_DIR = join(tmpdir(), `hiqlite-test-ports-${process.getuid?.() ?? 'user'}`);
const handedOut = new Set<number>();

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

let cleanupInstalled = false;

/** Claims `port` for this process; false when another live claim holds it. */
function claim(port: number): boolean {
  mkdirSync(CLAIMS_DIR, { recursive: true });
  const file = join(CLAIMS_DIR, String(port));
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' });
  } catch {
    try {
      if (Date.now() - statSync(file).mtimeMs < CLAIM_STALE_MS) return false;
      writeFileSync(file, String(process.pid));
    } catch {
      return false;
    }
  }
  if (!cleanupInstalled) {
    cleanupInstalled = true;
    process.once('exit', () => {
      for (const p of handedOut) rmSync(join(CLAIMS_DIR, String(p)), { force: true });
    });
  }
  return true;
}

export async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let attempt = 0; out.length < n; attempt++) {
    if (attempt >= ATTEMPTS_MAX) throw new Error(`no ${n} free ports found in [${LOW}, ${HIGH_EXCLUSIVE})`);
    const port = LOW + Math.floor(Math.random() * (HIGH_EXCLUSIVE - LOW));
    if (handedOut.has(port)) continue;
    if (!(await canBind(port))) continue;
    if (!claim(port)) continue;
    handedOut.add(port);
    out.push(port);
  }
  return out;
}

/** `n` cluster members on 127.0.0.1 (ids 1..n), each with a free Raft and API port. */
export async function loopbackMembers(
  n: number,
): Promise<Array<{ id: number; addrRaft: string; addrApi: string }>> {
  const ports = await freePorts(2 * n);
  return Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    addrRaft: `127.0.0.1:${ports[2 * i]}`,
    addrApi: `127.0.0.1:${ports[2 * i + 1]}`,
  }));
}
