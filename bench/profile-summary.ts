/**
 * Where the CPU time goes, from V8 `.cpuprofile` files (`node --cpu-prof`): self time per
 * function and per area of the code base (SQLite apply, encoding, msgpack, Raft, transport,
 * Node internals, GC, idle), optionally restricted to a time window (a benchmark run).
 *
 *   node --import tsx bench/profile-summary.ts FILE.cpuprofile… [--top 25]
 */
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface FunctionTime {
  readonly name: string;
  readonly location: string;
  readonly category: string;
  /** For a function without a script (a native binding): the nearest caller that has one. */
  readonly caller: string | null;
  readonly selfMs: number;
  readonly selfPct: number;
}

export interface CategoryTime {
  readonly category: string;
  readonly selfMs: number;
  readonly selfPct: number;
}

export interface ProfileSummary {
  readonly file: string;
  /** From the file name `CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile`. */
  readonly pid: number | null;
  /** 0 is the main thread; workers count from 1. */
  readonly threadId: number | null;
  /** Sampled time inside the window, in ms. */
  readonly totalMs: number;
  /** Busy = total minus (idle). */
  readonly busyMs: number;
  readonly top: readonly FunctionTime[];
  readonly categories: readonly CategoryTime[];
}

const REPO = resolve(import.meta.dirname, '..');

/**
 * Self time per function in `[windowUs[0], windowUs[1])` (profile clock, µs; the same monotonic
 * clock as `process.hrtime`), or over the whole profile without a window.
 */
export function summarizeProfile(
  file: string,
  options: { readonly windowUs?: readonly [number, number]; readonly top?: number } = {},
): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const [lo, hi] = options.windowUs ?? [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY];
  const selfUs = new Map<
    string,
    { name: string; location: string; category: string; us: number; callers: Map<string, number> }
  >();
  let totalUs = 0;
  let idleUs = 0;
  let t = profile.startTime;
  const n = profile.samples.length;
  for (let i = 0; i < n; i++) {
    t += profile.timeDeltas[i] ?? 0;
    if (t < lo || t >= hi) continue;
    // A sample stands for the interval until the next one.
    const dt = i + 1 < n ? (profile.timeDeltas[i + 1] ?? 0) : 0;
    const node = byId.get(profile.samples[i] as number);
    if (node === undefined || dt <= 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName === '' ? '(anonymous)' : functionName;
    const location = url === '' ? '' : locationOf(url, lineNumber);
    const key = `${name}@${location}`;
    const cur = selfUs.get(key) ?? {
      name,
      location,
      category: categorize(name, url),
      us: 0,
      callers: new Map<string, number>(),
    };
    cur.us += dt;
    if (url === '' && !name.startsWith('(')) {
      const caller = scriptedCaller(node.id, byId, parentOf);
      if (caller !== null) cur.callers.set(caller, (cur.callers.get(caller) ?? 0) + dt);
    }
    selfUs.set(key, cur);
    totalUs += dt;
    if (name === '(idle)') idleUs += dt;
  }
  const pct = (us: number) => (totalUs === 0 ? 0 : Math.round((1000 * us) / totalUs) / 10);
  const top = [...selfUs.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, options.top ?? 25)
    .map((f) => ({
      name: f.name,
      location: f.location,
      category: f.category,
      caller: [...f.callers.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null,
      selfMs: Math.round(f.us / 100) / 10,
      selfPct: pct(f.us),
    }));
  const cats = new Map<string, number>();
  for (const f of selfUs.values()) cats.set(f.category, (cats.get(f.category) ?? 0) + f.us);
  const categories = [...cats.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([category, us]) => ({ category, selfMs: Math.round(us / 100) / 10, selfPct: pct(us) }));
  const m = /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(basename(file));
  return {
    file: basename(file),
    pid: m === null ? null : Number(m[1]),
    threadId: m === null ? null : Number(m[2]),
    totalMs: Math.round(totalUs / 1000),
    busyMs: Math.round((totalUs - idleUs) / 1000),
    top,
    categories,
  };
}

/** The area of the code a function belongs to, from its script URL. */
export function categorize(name: string, url: string): string {
  if (name === '(idle)') return 'idle (waiting: fsync, network, timers)';
  if (name === '(garbage collector)') return 'garbage collector';
  if (name === '(program)') return 'V8/native, unattributed';
  if (name === '(root)') return 'V8/native, unattributed';
  const rules: ReadonlyArray<readonly [RegExp, string]> = [
    [
      /\/src\/sm\/sql\/(tokenizer|determinism|statement-guard|params)\.ts/,
      'SQL preparation (src/sm/sql parse/rewrite)',
    ],
    [/\/src\/sm\/cache\//, 'cache state machine (src/sm/cache)'],
    [/\/src\/sm\//, 'SQL state machine (src/sm)'],
    [/better-sqlite3/, 'better-sqlite3 (SQLite)'],
    [/\/src\/storage\//, 'Raft log store (src/storage)'],
    [/\/src\/raft\//, 'Raft core (src/raft)'],
    [/\/src\/protocol\//, 'encoding (src/protocol)'],
    [/msgpackr/, 'msgpack (msgpackr)'],
    [/\/src\/transport\//, 'transport (src/transport)'],
    [/\/src\/node\//, 'node runtime (src/node)'],
    [/\/src\/client\//, 'client API (src/client)'],
    [/\/src\/lib\//, 'lib (src/lib)'],
    [/pino|sonic-boom|thread-stream/, 'logging (pino)'],
    [/prom-client/, 'metrics (prom-client)'],
    [/\/bench\//, 'benchmark harness (bench/)'],
    [/tsx|esbuild|get-tsconfig/, 'TypeScript loader (tsx)'],
    [
      /^node:internal\/(fs|streams\/|stream_base|net|dgram)|^node:(net|stream|fs)/,
      'Node I/O (net, streams, fs)',
    ],
    [/^node:internal\/(timers|process\/task_queues|async_hooks)|^node:timers/, 'Node timers and microtasks'],
    [
      /^node:internal\/worker|^node:worker_threads|^node:internal\/(per_context\/)?messageport/,
      'Node worker messaging',
    ],
    [/^node:/, 'Node internals (other)'],
  ];
  for (const [re, cat] of rules) if (re.test(url)) return cat;
  if (url === '') return 'native (builtins, no script)';
  return 'other';
}

/** Bounded by the depth of the call tree. */
function scriptedCaller(
  id: number,
  byId: ReadonlyMap<number, ProfileNode>,
  parentOf: ReadonlyMap<number, number>,
): string | null {
  for (let p = parentOf.get(id); p !== undefined; p = parentOf.get(p)) {
    const f = byId.get(p)?.callFrame;
    if (f !== undefined && f.url !== '')
      return `${f.functionName || '(anonymous)'} ${locationOf(f.url, f.lineNumber)}`;
  }
  return null;
}

/**
 * `file:line` for plain JavaScript; just the file for TypeScript run through tsx, whose line
 * numbers are those of the transformed code, not of the source.
 */
function locationOf(url: string, lineNumber: number): string {
  const short = shortUrl(url);
  return short.endsWith('.ts') ? short : `${short}:${lineNumber + 1}`;
}

function shortUrl(url: string): string {
  const path = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  if (path.startsWith(`${REPO}/`)) return path.slice(REPO.length + 1);
  const nm = path.lastIndexOf('/node_modules/');
  return nm >= 0 ? path.slice(nm + 1) : path;
}

export function formatSummary(s: ProfileSummary, title: string): string {
  const lines = [
    `${title}: ${s.totalMs} ms sampled, ${s.busyMs} ms busy (${s.totalMs === 0 ? 0 : Math.round((100 * s.busyMs) / s.totalMs)}%)`,
    '  by area (self time):',
    ...s.categories.map(
      (c) => `    ${c.selfPct.toFixed(1).padStart(5)}%  ${String(c.selfMs).padStart(8)} ms  ${c.category}`,
    ),
    '  top functions (self time):',
    ...s.top.map(
      (f) =>
        `    ${f.selfPct.toFixed(1).padStart(5)}%  ${String(f.selfMs).padStart(8)} ms  ${f.name}  ${f.location}` +
        (f.caller === null ? '' : `  (from ${f.caller})`),
    ),
  ];
  return lines.join('\n');
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' } },
  });
  for (const file of positionals) {
    console.log(formatSummary(summarizeProfile(file, { top: Number(values.top) }), basename(file)));
    console.log('');
  }
}
