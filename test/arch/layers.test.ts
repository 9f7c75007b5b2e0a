/**
 * The layer rules of docs/ARCHITECTURE.md: dependencies point down, and the Raft core stays pure
 * (no I/O, no clocks, no randomness of its own, no asynchrony) so the simulator can drive it.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';

const SRC = 'src';

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Strip comments and string contents so words in docs do not count as code. */
function code(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '')
    .replace(/`(?:\\.|[^`\\])*`/g, '``');
}

function imports(text: string): string[] {
  const out: string[] = [];
  const re = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(re)) out.push((m[1] ?? m[2]) as string);
  return out;
}

const layerOf = (file: string) => relative(SRC, file).split('/')[0] ?? '';

// Which layers each layer may import (itself always allowed).
const allowed: Record<string, string[]> = {
  lib: [],
  raft: ['lib'],
  protocol: ['lib', 'raft'],
  storage: ['lib', 'raft', 'protocol'],
  sm: ['lib', 'raft', 'protocol'],
  transport: ['lib', 'raft', 'protocol'],
  // The dashboard (src/dashboard) is served by the node's API port and sees the node only through
  // its DashboardBackend seam; its page (src/dashboard/ui, .tsx) is bundled apart and imports
  // only types from it.
  dashboard: ['lib', 'http'],
  // HTTP plumbing shared by the API port's routes and the dashboard: bounded request bodies,
  // JSON answers (src/http).
  http: ['lib'],
  node: ['lib', 'raft', 'protocol', 'storage', 'sm', 'transport', 'dashboard', 'http'],
  migrate: ['lib', 'raft', 'protocol', 'client', 'node'],
  // Backups are built on the node runtime; the client layer hands them to the node it starts
  // (src/node/node-features.ts), so the client may import them and they may not import it.
  backup: ['lib', 'raft', 'protocol', 'node', 'storage', 'sm'],
  client: ['lib', 'raft', 'protocol', 'node', 'transport', 'sm', 'backup'],
  // `hiqlite proxy`: the node's API server in front of the client's ClusterLink.
  proxy: ['lib', 'raft', 'protocol', 'sm', 'transport', 'node', 'client'],
  server: [
    'lib',
    'raft',
    'protocol',
    'storage',
    'sm',
    'transport',
    'node',
    'client',
    'migrate',
    'backup',
    'dashboard',
    'proxy',
  ],
};

describe('layer rules', () => {
  const all = files(SRC);

  test('every source file lives in a known layer', () => {
    for (const f of all) {
      const layer = layerOf(f);
      if (f === join(SRC, 'index.ts')) continue;
      assert.ok(layer in allowed, `${f} is in unknown layer '${layer}'`);
    }
  });

  test('imports point down the layer stack', () => {
    for (const f of all) {
      const layer = layerOf(f);
      if (!(layer in allowed)) continue;
      for (const spec of imports(code(readFileSync(f, 'utf8')))) {
        if (!spec.startsWith('.')) continue;
        const target = relative(SRC, join(f, '..', spec)).split('/')[0] ?? '';
        if (target === layer) continue;
        assert.ok(
          allowed[layer]?.includes(target),
          `${f} imports '${spec}' (layer ${target}), not allowed from ${layer}`,
        );
      }
    }
  });

  test('src/raft is pure: no node:*, no npm, no clocks, timers, randomness or async', () => {
    const forbidden: Array<[RegExp, string]> = [
      [/\bDate\b/, 'Date'],
      [/\bsetTimeout\b|\bsetInterval\b|\bsetImmediate\b|\bqueueMicrotask\b/, 'timers'],
      [/\bMath\.random\b/, 'Math.random'],
      [/\basync\b|\bawait\b/, 'async/await'],
      [/\bPromise\b/, 'Promise'],
      [/\bprocess\./, 'process'],
      [/\brequire\(/, 'require'],
      [/\bperformance\./, 'performance'],
    ];
    const raftFiles = all.filter((f) => layerOf(f) === 'raft');
    assert.ok(raftFiles.length >= 5, 'raft layer files found');
    for (const f of raftFiles) {
      const text = code(readFileSync(f, 'utf8'));
      for (const spec of imports(text)) {
        assert.ok(spec.startsWith('.'), `${f} imports '${spec}': src/raft may import only relative modules`);
        const target = relative(SRC, join(f, '..', spec)).split('/')[0];
        assert.ok(target === 'raft' || target === 'lib', `${f} imports '${spec}' outside raft/lib`);
      }
      for (const [re, what] of forbidden) assert.ok(!re.test(text), `${f} uses ${what}`);
    }
  });

  test('src/lib modules used by the core are pure too', () => {
    for (const f of all.filter((x) => layerOf(x) === 'lib')) {
      const text = code(readFileSync(f, 'utf8'));
      for (const spec of imports(text)) assert.ok(spec.startsWith('.'), `${f} imports '${spec}'`);
      assert.ok(!/\bMath\.random\b|\bDate\.now\b/.test(text), `${f} uses ambient time or randomness`);
    }
  });

  test('the wall clock is read only where a date is meant, never to time a wait', () => {
    // A deadline or an elapsed time measured on the wall clock moves when the clock is stepped
    // (NTP, a VM resumed): a lock holder's "lease still runs" check stretched by a step back, a
    // client's retry deadline gone at once after a step forward. Waits use performance.now()
    // or a Clock's monotonicMs(); these read a date on purpose:
    const wallClockReaders = new Map([
      ['src/node/system-clock.ts', 1], // the Clock every node part gets
      ['src/node/api-server.ts', 1], // ping answers the node's wall clock (peer-clocks.ts)
      ['src/client/cache-mirror.ts', 1], // the mirror's default clock, for expiry
      ['src/client/worker-node.ts', 1], // the mirror's clock: the cluster's (offset applied)
      ['src/client/remote.ts', 1], // a remote write's stamp (replaced by the node's)
      ['src/client/remote-cache.ts', 1], // a remote cache write's stamp (replaced by the node's)
    ]);
    for (const f of all) {
      const n = code(readFileSync(f, 'utf8')).match(/\bDate\.now\b/g)?.length ?? 0;
      assert.equal(n, wallClockReaders.get(f) ?? 0, `${f} reads Date.now ${n} time(s)`);
    }
  });

  test('abort signals are listened to through whenAborted, which sees an abort that already came', () => {
    // A listener added to an aborted signal never fires: added after an await, it missed the
    // abort that came meanwhile, and a lock wait went on for good (src/lib/abort.ts).
    for (const f of all) {
      if (f === 'src/lib/abort.ts') continue;
      const text = code(readFileSync(f, 'utf8'));
      assert.ok(!/EventListener\(\s*['"]abort['"]/.test(text), `${f} listens to 'abort' itself`);
      assert.ok(!/\.onabort\s*=/.test(text), `${f} sets onabort`);
    }
  });

  test('the rule checker itself bites: it flags a forbidden import', () => {
    const bad = "import { readFileSync } from 'node:fs';\nconst t = Date.now();";
    assert.deepEqual(imports(code(bad)), ['node:fs']);
    assert.ok(/\bDate\b/.test(code(bad)));
    assert.ok(!/\bDate\b/.test(code('// Date in a comment\nconst x = 1;')));
  });
});
