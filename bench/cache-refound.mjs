/**
 * How long a cache group kept in memory (`cache_storage_disk = false`) is out of service after a
 * majority of its nodes is lost: three `hiqlite serve` processes (compiled, default timings), a
 * remote client; each round kills two of them with SIGKILL, starts them again at once, and
 * measures until a cache put through the client succeeds again and until every node's /ready
 * says 200. The pair killed turns round (2+3, 1+2, 1+3: node 1, which founds the group anew, is
 * among the lost ones in two of three rounds).
 *
 *   npm run build && npm run bench:refound -- [--rounds 6] [--base-port 47300] [--build DIR]...
 *
 * `--build DIR` (repeatable) measures the compiled build of another checkout as well, in the same
 * run (say a commit before a change: `git worktree add DIR <commit>`, link node_modules, then
 * `npm run build` and `node scripts/build-native.mjs` there).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '6' },
    'base-port': { type: 'string', default: '47300' },
    build: { type: 'string', multiple: true },
  },
});
const rounds = Number(values.rounds);
const basePort = Number(values['base-port']);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) throw new Error('--rounds: 1 to 100');
if (!Number.isInteger(basePort) || basePort < 1024 || basePort > 65000)
  throw new Error('--base-port: 1024 to 65000');
const builds = [resolve(import.meta.dirname, '..'), ...(values.build ?? []).map((d) => resolve(d))];

const ROUND_DEADLINE_MS = 120_000;
const START_DEADLINE_MS = 60_000;
const SECRET_API = 'bench-refound-api-secret';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const procs = new Set();
process.on('exit', () => {
  for (const p of procs) p.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

console.log(
  `machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ')}`,
);
console.log(
  'cluster: 3 `hiqlite serve` processes on 127.0.0.1, default timings, cache_storage_disk = false, SQL on disk; each round kills two nodes (SIGKILL) and starts them again at once',
);

async function measure(repo) {
  const dir = mkdtempSync(join(tmpdir(), 'hql-refound-'));
  const api = (i) => basePort + 10 + i;
  const nodes = [1, 2, 3].map((i) => `"${i} 127.0.0.1:${basePort + i} 127.0.0.1:${api(i)}"`);
  for (const i of [1, 2, 3]) {
    writeFileSync(
      join(dir, `n${i}.toml`),
      `[hiqlite]\nnode_id = ${i}\nnodes = [${nodes.join(', ')}]\ndata_dir = "${join(dir, `d${i}`)}"\nsecret_raft = "bench-refound-raft-secret"\nsecret_api = "${SECRET_API}"\ncache_storage_disk = false\n`,
    );
  }
  const running = new Map();
  const startNode = (i) => {
    const p = spawn(
      process.execPath,
      [join(repo, 'dist/server/cli.js'), 'serve', '--config', join(dir, `n${i}.toml`)],
      {
        stdio: ['ignore', 'ignore', 'ignore'],
      },
    );
    procs.add(p);
    p.once('exit', () => procs.delete(p));
    running.set(i, p);
  };
  const ready = async (i) => {
    try {
      return (
        (await fetch(`http://127.0.0.1:${api(i)}/ready`, { signal: AbortSignal.timeout(1000) })).status ===
        200
      );
    } catch {
      return false;
    }
  };
  const allReady = async () => (await Promise.all([1, 2, 3].map(ready))).every(Boolean);
  const { connect } = await import(join(repo, 'dist/index.js'));
  const results = [];
  let client = null;
  try {
    for (const i of [1, 2, 3]) startNode(i);
    const t = Date.now();
    while (!(await allReady())) {
      if (Date.now() - t > START_DEADLINE_MS) throw new Error(`${repo}: the cluster did not start`);
      await sleep(200);
    }
    client = await connect({
      nodes: [1, 2, 3].map((i) => `127.0.0.1:${api(i)}`),
      secretApi: SECRET_API,
      requestTimeoutMs: 2000,
    });
    const cache = client.cache('bench');
    await cache.put('k', 0);
    const pairs = [
      [2, 3],
      [1, 2],
      [1, 3],
    ];
    for (let r = 0; r < rounds; r++) {
      const pair = pairs[r % pairs.length];
      await sleep(3000);
      const t0 = Date.now();
      for (const i of pair) running.get(i).kill('SIGKILL');
      await Promise.all(
        pair.map(
          (i) =>
            new Promise((res) =>
              running.get(i).exitCode !== null ? res() : running.get(i).once('exit', res),
            ),
        ),
      );
      for (const i of pair) startNode(i);
      let putMs = null;
      let readyMs = null;
      while ((putMs === null || readyMs === null) && Date.now() - t0 < ROUND_DEADLINE_MS) {
        if (putMs === null) {
          try {
            await cache.put('k', r);
            putMs = Date.now() - t0;
          } catch {
            // not yet
          }
        }
        if (readyMs === null && (await allReady())) readyMs = Date.now() - t0;
        await sleep(100);
      }
      results.push({ killed: pair.join('+'), putMs, readyMs });
      console.log(
        `  round ${r + 1}: killed ${pair.join(' and ')}: put again after ${putMs ?? 'never'} ms, every node ready after ${readyMs ?? 'never'} ms`,
      );
    }
  } finally {
    await client?.close().catch(() => {});
    for (const p of running.values()) p.kill('SIGKILL');
    await sleep(300);
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

const stats = (xs) => {
  const s = xs.filter((x) => x !== null).sort((a, b) => a - b);
  if (s.length === 0) return 'none';
  return `min ${s[0]} / median ${s[Math.floor(s.length / 2)]} / max ${s.at(-1)} ms${s.length < xs.length ? ` (${xs.length - s.length} never)` : ''}`;
};
for (const repo of builds) {
  console.log(`build: ${repo}`);
  const res = await measure(repo);
  console.log(`  put again after the kill: ${stats(res.map((x) => x.putMs))}`);
  console.log(`  every node ready:         ${stats(res.map((x) => x.readyMs))}`);
}
