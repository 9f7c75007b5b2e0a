/**
 * The cache suite's operations (`npm run bench:cache`), shared by the embedded node-child and the
 * remote client (the parent process), so both paths run the same calls: cache puts, counter adds,
 * distributed locks, local gets timed against a plain `Map`, and notify-to-delivery latency.
 */
import { cacheMirrorOf } from '../src/client/worker-node.js';
import type { HiqliteClient, HiqliteNode } from '../src/index.js';
import { type LoadOptions, type LoadResult, runClosedLoop } from './closed-loop.js';
import { type HistogramJson, LatencyHistogram } from './histogram.js';

export const CACHE_NAME = 'bench';
export const COUNTER_NAME = 'bench';
export const NOTIFY_CHANNEL = 'bench';
/** Puts and counter adds pick a key from this many (bounded memory, realistic overwrites). */
export const CACHE_KEYS = 10_000;
/** A small session-like value, as most cache entries are (about 64 bytes as msgpack). */
export function cacheValue(i: number): { id: number; user: string; roles: string[]; v: string } {
  return { id: i, user: `user-${i}`, roles: ['a', 'b'], v: 'v'.repeat(24) };
}
/** Long enough that a held lock is never renewed during one hand-over. */
const LOCK_LEASE_MS = 10_000;

/**
 * - `put`: `cache(…).put(key, value)` of a random key.
 * - `counterAdd`: `counter(…).add(key, 1)` of a random key.
 * - `lockUncontended`: each caller locks and releases a key of its own (the latency is lock + release).
 * - `lockContended`: every caller locks and releases one shared key (ops/s = hand-overs/s).
 */
export type CacheWorkloadKind = 'put' | 'counterAdd' | 'lockUncontended' | 'lockContended';

function randomKey(): string {
  return `k${Math.floor(Math.random() * CACHE_KEYS)}`;
}

/** The operation of workload `kind` for caller `worker` on `client`. */
export function cacheOperation(
  client: HiqliteClient,
  kind: CacheWorkloadKind,
  keyPrefix: string,
): (worker: number) => Promise<unknown> {
  switch (kind) {
    case 'put': {
      const cache = client.cache(CACHE_NAME);
      return () => {
        const i = Math.floor(Math.random() * CACHE_KEYS);
        return cache.put(`k${i}`, cacheValue(i));
      };
    }
    case 'counterAdd': {
      const counter = client.counter(COUNTER_NAME);
      return () => counter.add(randomKey(), 1);
    }
    case 'lockUncontended':
      return async (worker) => {
        const lock = await client.lock(`${keyPrefix}u-${worker}`, { leaseMs: LOCK_LEASE_MS });
        await lock.release();
      };
    case 'lockContended':
      return async () => {
        const lock = await client.lock(`${keyPrefix}shared`, { leaseMs: LOCK_LEASE_MS });
        await lock.release();
      };
    default:
      return assertNever(kind);
  }
}

/**
 * Runs workload `kind` with `o.concurrency` callers spread round-robin over `clients`.
 * `keyPrefix` keeps lock keys of different processes apart (uncontended) or together (contended:
 * pass the same prefix everywhere).
 */
export function runCacheWorkload(
  clients: readonly HiqliteClient[],
  kind: CacheWorkloadKind,
  o: LoadOptions,
  keyPrefix = 'lock-',
): Promise<LoadResult> {
  const ops = clients.map((c) => cacheOperation(c, kind, keyPrefix));
  return runClosedLoop(o, (worker) =>
    (ops[worker % ops.length] as (worker: number) => Promise<unknown>)(worker),
  );
}

/** Fills the cache (every key of `CACHE_KEYS`) so that gets hit and puts overwrite. */
export async function fillCache(client: HiqliteClient): Promise<void> {
  const cache = client.cache(CACHE_NAME);
  const batch = 64;
  for (let first = 0; first < CACHE_KEYS; first += batch) {
    const puts: Array<Promise<void>> = [];
    for (let i = first; i < first + batch && i < CACHE_KEYS; i++)
      puts.push(cache.put(`k${i}`, cacheValue(i)));
    await Promise.all(puts);
  }
}

// ---------------------------------------------------------------------------------------------
// Local get against a plain Map
// ---------------------------------------------------------------------------------------------

export interface GetTiming {
  /** Nanoseconds per read: the best (lowest) of the rounds, and their median. */
  readonly bestNs: number;
  readonly medianNs: number;
  /** CPU time of the process (every thread) per read, ns: the median of the rounds. */
  readonly cpuMedianNs: number;
}

export interface LocalGetResult {
  readonly reads: number;
  readonly rounds: number;
  /** `map.get(key)` with the key string built per read, as in the cache loop. */
  readonly map: GetTiming;
  /** `await get(key)` of an async function around the same Map: the cache API's shape. */
  readonly asyncMap: GetTiming;
  /** `await cache.get(key)` on this node (`consistency: 'local'`, the default). */
  readonly cache: GetTiming;
  /** `cache.getLocal(key)`: synchronous, against `map` (sync against sync). */
  readonly getLocal: GetTiming;
}

/**
 * Sequential local gets of the filled cache and of a `Map` holding the same decoded values, in
 * the same process, alternating in `rounds` rounds of `reads` reads (so that a burst of load on
 * the shared machine hits both alike). Reads run back to back without yielding: a round of
 * 200,000 cache reads takes well under a second.
 */
/**
 * The cache mirror of an embedded node on its own thread starts with the application's first
 * local read: read once, then wait until the mirror serves, so that local reads are timed in
 * their steady state (before, a read crosses to the node's thread). Bounded: 30 s.
 */
export async function mirrorServing(node: HiqliteNode, cacheName: string): Promise<void> {
  // A local get (not getLocal, which throws with `cacheMirror: false`).
  await node.cache(cacheName).get('any');
  const deadline = Date.now() + 30_000;
  // Bounded by the deadline.
  for (;;) {
    const r = await cacheMirrorOf(node);
    if (r === null || r.status.mode === 'live') return;
    if (Date.now() > deadline) throw new Error('the cache mirror did not start serving within 30 s');
    await new Promise((res) => setTimeout(res, 10));
  }
}

export async function timeLocalGets(
  client: HiqliteNode,
  reads: number,
  rounds: number,
): Promise<LocalGetResult> {
  await mirrorServing(client, CACHE_NAME);
  const cache = client.cache<ReturnType<typeof cacheValue>>(CACHE_NAME);
  const map = new Map<string, ReturnType<typeof cacheValue>>();
  for (let i = 0; i < CACHE_KEYS; i++) map.set(`k${i}`, cacheValue(i));
  const asyncGet = async (k: string) => map.get(k) ?? null;
  let sink = 0;
  const timeMap = (): number => {
    const t0 = performance.now();
    for (let i = 0; i < reads; i++) sink += map.get(`k${i % CACHE_KEYS}`)?.id ?? 0;
    return performance.now() - t0;
  };
  const timeAsync = async (): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < reads; i++) sink += (await asyncGet(`k${i % CACHE_KEYS}`))?.id ?? 0;
    return performance.now() - t0;
  };
  let misses = 0;
  const timeGetLocal = (): number => {
    const t0 = performance.now();
    for (let i = 0; i < reads; i++) {
      const v = cache.getLocal(`k${i % CACHE_KEYS}`);
      if (v === null) misses++;
      else sink += v.id;
    }
    return performance.now() - t0;
  };
  const timeCache = async (): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < reads; i++) {
      const v = await cache.get(`k${i % CACHE_KEYS}`);
      if (v === null) misses++;
      else sink += v.id;
    }
    return performance.now() - t0;
  };
  // Warm-up: every path optimized before the first timed round.
  timeMap();
  await timeAsync();
  await timeCache();
  timeGetLocal();
  const ms = {
    map: [] as number[],
    asyncMap: [] as number[],
    cache: [] as number[],
    getLocal: [] as number[],
  };
  const cpu = {
    map: [] as number[],
    asyncMap: [] as number[],
    cache: [] as number[],
    getLocal: [] as number[],
  };
  const cpuMsOf = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
  for (let r = 0; r < rounds; r++) {
    let c0 = process.cpuUsage();
    ms.map.push(timeMap());
    cpu.map.push(cpuMsOf(process.cpuUsage(c0)));
    c0 = process.cpuUsage();
    ms.getLocal.push(timeGetLocal());
    cpu.getLocal.push(cpuMsOf(process.cpuUsage(c0)));
    c0 = process.cpuUsage();
    ms.asyncMap.push(await timeAsync());
    cpu.asyncMap.push(cpuMsOf(process.cpuUsage(c0)));
    c0 = process.cpuUsage();
    ms.cache.push(await timeCache());
    cpu.cache.push(cpuMsOf(process.cpuUsage(c0)));
    // A turn of the event loop between rounds (timers, the node's messages).
    await new Promise<void>((done) => setImmediate(done));
  }
  if (misses > 0) throw new Error(`${misses} cache reads missed: the cache was not filled`);
  if (sink < 0) throw new Error('unreachable');
  const perRead = (xs: number[]) => xs.map((x) => (x * 1e6) / reads).sort((a, b) => a - b);
  const timing = (k: keyof typeof ms): GetTiming => {
    const ns = perRead(ms[k]);
    const cpuNs = perRead(cpu[k]);
    return {
      bestNs: ns[0] ?? 0,
      medianNs: ns[Math.floor(ns.length / 2)] ?? 0,
      cpuMedianNs: cpuNs[Math.floor(cpuNs.length / 2)] ?? 0,
    };
  };
  return {
    reads,
    rounds,
    map: timing('map'),
    asyncMap: timing('asyncMap'),
    cache: timing('cache'),
    getLocal: timing('getLocal'),
  };
}

// ---------------------------------------------------------------------------------------------
// Notify → delivery
// ---------------------------------------------------------------------------------------------

/** The payload of a measured notification: when it was sent, in ms since the epoch (sub-ms). */
export interface NotifyPayload {
  readonly sentMs: number;
  /** Sent inside the measured window (warm-up notifications are not recorded). */
  readonly measured: boolean;
}

/**
 * Every process on the machine reads the same clock: `timeOrigin + now()` is epoch time with
 * sub-millisecond resolution, comparable between processes and threads.
 */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface ListenResult {
  readonly received: number;
  readonly measured: number;
  /** Notification indexes that did not increase (must be 0: log order). */
  readonly outOfOrder: number;
  readonly error: string | null;
  readonly histogram: HistogramJson;
}

/** A listener that records, for every measured notification, its delay since it was sent. */
export class LatencyListener {
  private readonly hist = new LatencyHistogram();
  private received = 0;
  private measured = 0;
  private outOfOrder = 0;
  private lastIndex = 0;
  private error: string | null = null;
  private readonly iterator: AsyncIterableIterator<{ payload: NotifyPayload; index: number }> &
    AsyncDisposable;
  private readonly done: Promise<void>;

  constructor(client: HiqliteClient) {
    this.iterator = client.listen<NotifyPayload>(NOTIFY_CHANNEL);
    this.done = this.consume();
  }

  private async consume(): Promise<void> {
    try {
      for await (const n of this.iterator) {
        const now = epochMs();
        this.received++;
        if (n.index <= this.lastIndex) this.outOfOrder++;
        this.lastIndex = n.index;
        if (n.payload.measured) {
          this.measured++;
          this.hist.record(now - n.payload.sentMs);
        }
      }
    } catch (e) {
      this.error =
        e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e);
    }
  }

  async stop(): Promise<ListenResult> {
    await this.iterator.return?.();
    await this.done;
    return {
      received: this.received,
      measured: this.measured,
      outOfOrder: this.outOfOrder,
      error: this.error,
      histogram: this.hist.toJSON(),
    };
  }
}

export interface NotifyRunResult {
  readonly sent: number;
  readonly measuredSent: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  /** notify() call to its resolution (the notifier's own latency). */
  readonly histogram: HistogramJson;
}

/**
 * Paced notifications, one every `1000 / ratePerSec` ms (awaited one at a time, so a slow notify
 * delays the next rather than piling up): a warm-up, then a measured window.
 */
export async function runNotifies(
  client: HiqliteClient,
  o: { readonly ratePerSec: number; readonly warmupMs: number; readonly durationMs: number },
): Promise<NotifyRunResult> {
  const hist = new LatencyHistogram();
  const intervalMs = 1000 / o.ratePerSec;
  const t0 = performance.now();
  const measureStart = t0 + o.warmupMs;
  const end = measureStart + o.durationMs;
  let sent = 0;
  let measuredSent = 0;
  let errors = 0;
  const errorSamples = new Set<string>();
  // Bounded by `end`: every iteration waits for the next slot or a notify.
  for (let next = t0; performance.now() < end; next += intervalMs) {
    const wait = next - performance.now();
    if (wait > 0) await new Promise<void>((r) => setTimeout(r, wait));
    const start = performance.now();
    const measured = start >= measureStart;
    try {
      await client.notify(NOTIFY_CHANNEL, { sentMs: epochMs(), measured } satisfies NotifyPayload);
      sent++;
      if (measured) {
        measuredSent++;
        hist.record(performance.now() - start);
      }
    } catch (e) {
      errors++;
      if (errorSamples.size < 5) errorSamples.add(e instanceof Error ? e.message : String(e));
    }
    // Late: skip the slots already missed rather than bursting to catch up.
    if (performance.now() - next > intervalMs) next = performance.now() - intervalMs;
  }
  return { sent, measuredSent, errors, errorSamples: [...errorSamples], histogram: hist.toJSON() };
}

function assertNever(x: never): never {
  throw new Error(`unexpected cache workload ${String(x)}`);
}
