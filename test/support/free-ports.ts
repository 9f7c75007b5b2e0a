/**
 * Ports for node processes that bind them later. A port found by binding port 0 lies in the
 * kernel's ephemeral range, where any outgoing connection may take it as its local port before
 * the node binds it (EADDRINUSE). So ports come from below that range (Linux: 32768-60999), at a
 * random offset per call, each checked free by binding it, and never handed out twice by this
 * process.
 */
import { createServer } from 'node:net';

const LOW = 20_000;
const HIGH_EXCLUSIVE = 32_768;
const ATTEMPTS_MAX = 2_000;
const handedOut = new Set<number>();

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let attempt = 0; out.length < n; attempt++) {
    if (attempt >= ATTEMPTS_MAX) throw new Error(`no ${n} free ports found in [${LOW}, ${HIGH_EXCLUSIVE})`);
    const port = LOW + Math.floor(Math.random() * (HIGH_EXCLUSIVE - LOW));
    if (handedOut.has(port)) continue;
    if (!(await canBind(port))) continue;
    handedOut.add(port);
    out.push(port);
  }
  return out;
}
