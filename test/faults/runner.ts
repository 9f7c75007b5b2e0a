/**
 * A fault run: a proxied multi-process cluster, a client workload, a nemesis alternating quiet
 * periods and fault episodes (every decision from a seeded PRNG), then healing and the checks
 * (checks.ts). A session holds one cluster and runs one or more phases on it (each with its own
 * keys, seed and nemesis); `runOnce` is one session with one phase.
 *
 * Timing is real, so a seed reproduces the sequence of decisions (which fault, which nodes, how
 * long), not the exact interleaving. A failing run keeps its history, node logs, configs, data
 * directories and event log in `.fault-runs/<timestamp>-<seed>-<nemesis>/`.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { HiqliteClient } from '../../src/index.js';
import { Prng, type Random } from '../../src/lib/prng.js';
import {
  checkCacheErrors,
  checkCacheRegisters,
  checkGetRemove,
  checkLocks,
  checkNotify,
  checkTtls,
  roundsNeedingFinalRead,
} from './cache-checks.js';
import { CacheHistory } from './cache-history.js';
import { lockHandoverProbe } from './cache-probe.js';
import { CACHE_NAME, CacheWorkload, TTL_MARGIN_MS } from './cache-workload.js';
import {
  type CheckOutcome,
  checkAppends,
  checkCrashes,
  checkErrors,
  checkHistory,
  checkReplicas,
  type ReplicaContent,
} from './checks.js';
import { FaultCluster } from './cluster.js';
import { inject, type NemesisName } from './nemesis.js';
import { History, type OpCounts, SCHEMA, sleep, Workload } from './workload.js';

const REPO = resolve(import.meta.dirname, '../..');
export const FAILURE_ROOT_DEFAULT = join(REPO, '.fault-runs');

export interface SessionOptions {
  readonly nodes: number;
  /** One line per event (nemesis actions, node starts and exits); default: kept for the event log only. */
  readonly log?: (line: string) => void;
  /** Where failing sessions leave their files. */
  readonly failureRoot?: string;
  /** Nodes under libfaketime, so the clock nemesis can step their clocks (cluster.ts). */
  readonly clocks?: boolean;
  /** Nodes under the ENOSPC shim, so the disk-full nemesis can fill their disks (cluster.ts). */
  readonly disks?: boolean;
  /** The cache group kept in memory (`cache_storage_disk = false`; CACHE_MEMORY_NEMESES only). */
  readonly cacheMemory?: boolean;
  /** With cacheMemory: kills may take a majority's cache state (FaultClusterOptions.cacheLoss). */
  readonly cacheLoss?: boolean;
}

/**
 * The cache checks of what the caches held, left out when a majority's in-memory cache state may
 * be lost (`cacheLoss`): the group founded anew starts empty, by design.
 */
const CACHE_CONTENT_CHECKS: ReadonlySet<string> = new Set([
  'cache-linearizable',
  'getRemove',
  'locks',
  'notify',
  'ttl',
]);

/**
 * What a node logs when it drops its in-memory cache state for a group that lost its majority
 * (the cache watchdog), or when node 1 founds the group anew: under faults that never take a
 * majority's state, either is a false drop (data lost that the cluster still held).
 */
const CACHE_DROP_LOG_LINES = [
  'the cache group can elect no leader again',
  'node 1 founds it anew',
  'node 1 founds it again',
] as const;
/** How long a phase of a cluster kept in memory waits for its cache group to be whole again. */
const CACHE_WHOLE_WITHIN_MS = 60_000;

/** `sql`: the register/append workload on SQLite; `cache`: the cache group's workloads. */
export const WORKLOADS = ['sql', 'cache'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export interface PhaseOptions {
  readonly nemesis: NemesisName;
  /** Default both. Without `sql` no SQL clients run (liveness and replicas are still checked). */
  readonly workloads?: readonly WorkloadName[];
  readonly seed: number;
  readonly seconds: number;
  /** Worker clients; default nodes + 2. */
  readonly clients?: number;
  /** Register keys; default 3. */
  readonly keys?: number;
  /**
   * Per client request (the client retries inside it); an op that runs out is of unknown outcome.
   * Default: workers take turns with 1500, 5000 and 10000 ms, so some give up during a fault
   * (unknown outcomes for the checker) and some outlast it (retries under their session).
   */
  readonly requestTimeoutMs?: number;
  /** After the faults stop, a write and a linearizable read must succeed within this. Default 15000. */
  readonly liveBoundMs?: number;
  /** Quiet time between episodes, [lo, hiExclusive) ms. Default [1000, 3000). */
  readonly quietMs?: readonly [number, number];
  /** Duration of an episode, [lo, hiExclusive) ms. Default [1000, 5000). */
  readonly holdMs?: readonly [number, number];
  /** Pause between two ops of one worker, [0, thinkMsMax) ms. Default 5. */
  readonly thinkMsMax?: number;
  /** Linearizability search budget (states per key). */
  readonly statesMax?: number;
  /**
   * The cache workloads' last check kills the cache leader: restart it and wait until it is READY
   * (default), or leave it down when nothing runs on this cluster afterwards.
   */
  readonly restartAfterProbe?: boolean;
}

export interface PhaseReport {
  readonly nemesis: NemesisName;
  readonly seed: number;
  readonly nodes: number;
  readonly seconds: number;
  readonly counts: OpCounts;
  /** The cache workloads' ops (null when they did not run). */
  readonly cacheCounts: OpCounts | null;
  readonly checks: CheckOutcome[];
  readonly ok: boolean;
  readonly faults: string[];
  readonly errorCodes: Record<string, number>;
  readonly errorSamples: Record<string, string>;
  /** From the end of the faults to the first successful write + linearizable read; null: not within the bound. */
  readonly liveMs: number | null;
  readonly durationMs: number;
}

export interface RunReport extends PhaseReport {
  /** Where the failure's files are; null when the run passed. */
  readonly folder: string | null;
}

const EVENTS_KEPT_MAX = 200_000;

/** The cluster did not start; its files are in `folder`. */
export class SetupError extends Error {
  override readonly name = 'SetupError';
  constructor(
    message: string,
    readonly folder: string | null,
  ) {
    super(`${message}${folder === null ? '' : ` (files: ${folder})`}`);
  }
}
const WORKER_TIMEOUTS_MS = [1500, 5000, 10_000] as const;

export class FaultSession {
  private readonly events: string[] = [];
  private readonly phases: { report: PhaseReport; history: History }[] = [];
  /** Per phase: the cache history (JSON-ready), or null. */
  private readonly caches: Array<CacheHistory | null> = [];
  private readonly t0 = performance.now();

  private constructor(
    readonly cluster: FaultCluster,
    private readonly options: SessionOptions,
  ) {}

  /**
   * Starts a cluster of `nodes` processes behind proxies and creates the schema. On failure the
   * files are kept (label `<label>-setup`) and the error thrown is a SetupError naming the folder.
   */
  static async open(options: SessionOptions, label = 'session'): Promise<FaultSession> {
    const dir = mkdtempSync(join(tmpdir(), 'hql-faults-'));
    let session: FaultSession | null = null;
    const cluster = await FaultCluster.create({
      nodes: options.nodes,
      dir,
      clocks: options.clocks === true,
      disks: options.disks === true,
      cacheMemory: options.cacheMemory === true,
      cacheLoss: options.cacheLoss === true,
      onEvent: (line) => session?.event(line),
    });
    session = new FaultSession(cluster, options);
    try {
      await Promise.all(cluster.ids().map((id) => cluster.start(id)));
      await session.createSchema();
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      session.event(`setup failed: ${message}`);
      const folder = await session.finish({ save: true, label: `${label}-setup` }).catch(() => null);
      throw new SetupError(message, folder);
    }
    return session;
  }

  event(line: string): void {
    const stamped = `[${((performance.now() - this.t0) / 1000).toFixed(3)}s] ${line}`;
    if (this.events.length < EVENTS_KEPT_MAX) this.events.push(stamped);
    this.options.log?.(stamped);
  }

  /** One phase: workload + nemesis for `seconds`, heal, then every check. */
  async phase(p: PhaseOptions): Promise<PhaseReport> {
    const c = this.cluster;
    const started = performance.now();
    const index = this.phases.length;
    const tag = `p${index}`;
    const rng = new Prng(p.seed);
    const workloadRng = rng.fork();
    const nemesisRng = rng.fork();
    const timeoutOf = (worker: number) => p.requestTimeoutMs ?? (WORKER_TIMEOUTS_MS[worker % 3] as number);
    const ids = c.ids();
    const keys = Array.from({ length: p.keys ?? 3 }, (_, i) => `${tag}-k${i}`);
    const history = new History(index * 10_000_000 + 1);
    const crashesBefore = c.crashes.length;
    const dropsBefore = c.cacheMemory ? this.cacheDrops() : 0;
    const workloads = new Set(p.workloads ?? WORKLOADS);
    this.event(
      `phase ${tag}: nemesis ${p.nemesis}, seed ${p.seed}, ${p.seconds} s, ${ids.length} nodes, workloads ${[...workloads].join('+')}`,
    );
    c.clearDisturbed();

    const workload = new Workload(
      {
        keys,
        phase: tag,
        clients: workloads.has('sql') ? (p.clients ?? ids.length + 2) : 0,
        thinkMsMax: p.thinkMsMax ?? 5,
      },
      history,
      // Worker i prefers node i (mod n), so clients sit on every node, followers included.
      (i) => c.client(rotate(ids, i % ids.length), timeoutOf(i)),
      workloadRng,
    );
    workload.start();
    const cacheRng = rng.fork();
    const cache = workloads.has('cache')
      ? await this.startCacheWorkload(tag, index, cacheRng, timeoutOf)
      : null;

    const faults = await this.runNemesis(p, nemesisRng);

    this.healEverything(nemesisRng);
    const healedAt = performance.now();
    this.event('faults stopped: everything healed');
    const stopping = Promise.all([workload.stop(), cache?.stopWorkers()]);
    const liveBoundMs = p.liveBoundMs ?? 15_000;
    const liveMs = await this.liveness(history, tag, healedAt, liveBoundMs, nemesisRng);
    await stopping;
    const rejoin = await this.waitAllReady(90_000);
    await this.finalReads(history, keys);
    const cacheChecks = cache === null ? [] : await this.finalCacheChecks(cache, p.statesMax);
    // A write retried by a client after the faults (its session makes that safe) can still commit
    // while the replicas are being read: read again until every node answered at one index.
    let replicas = await this.replicaContents(60_000);
    for (let attempt = 0; attempt < 5; attempt++) {
      const indices = new Set(replicas.contents.map((r) => r.appliedIndex));
      if (indices.size === 1 && !indices.has(-1) && replicas.contents.length === this.cluster.ids().length)
        break;
      this.event(`replicas read at different indices (${[...indices].join(', ')}): reading again`);
      replicas = await this.replicaContents(20_000);
    }

    const checks: CheckOutcome[] = [
      checkHistory(history.checkedOps(), p.statesMax),
      replicas.appendIds === null
        ? { name: 'appends', ok: false, detail: 'no replica answered' }
        : checkAppends(history.appends, new Set(replicas.appendIds.get(tag) ?? [])),
      checkReplicas(replicas.contents, ids.length),
      {
        name: 'liveness',
        ok: liveMs !== null,
        detail: liveMs === null ? `no write + read within ${liveBoundMs} ms` : `${liveMs} ms`,
      },
      rejoin,
      checkCrashes(c.crashes.slice(crashesBefore)),
      checkErrors(history.errorCodes),
      ...(c.cacheLoss ? cacheChecks.filter((x) => !CACHE_CONTENT_CHECKS.has(x.name)) : cacheChecks),
    ];
    if (c.cacheLoss) checks.push(await this.checkCacheRecovered(dropsBefore));
    else if (c.cacheMemory) checks.push(await this.checkCacheKept(dropsBefore));
    // After every other check: it kills the cache leader (and restarts it).
    if (cache !== null) {
      const probe = await lockHandoverProbe(c, `${tag}-probe`, (line) => this.event(line), {
        restart: p.restartAfterProbe ?? true,
      });
      checks.push({ name: probe.name, ok: probe.ok, detail: probe.detail });
    }
    const report: PhaseReport = {
      nemesis: p.nemesis,
      seed: p.seed,
      nodes: ids.length,
      seconds: p.seconds,
      counts: history.counts(),
      cacheCounts: cache?.history.counts() ?? null,
      checks,
      ok: checks.every((x) => x.ok),
      faults,
      errorCodes: Object.fromEntries(history.errorCodes),
      errorSamples: Object.fromEntries(history.errorSamples),
      liveMs,
      durationMs: Math.round(performance.now() - started),
    };
    this.phases.push({ report, history });
    this.caches.push(cache?.history ?? null);
    for (const x of checks)
      this.event(`check ${x.name}: ${x.ok ? 'ok' : 'FAILED'} ${x.detail.split('\n')[0]}`);
    return report;
  }

  /**
   * Stops every process, then keeps the files of the session when `save` (history per phase,
   * reports, event log, node logs, configs, data directories) and returns that folder.
   */
  async finish(o: { save: boolean; label: string }): Promise<string | null> {
    await this.cluster.close({ removeDir: false });
    let folder: string | null = null;
    if (o.save) {
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      folder = join(this.options.failureRoot ?? FAILURE_ROOT_DEFAULT, `${stamp}-${o.label}`);
      mkdirSync(folder, { recursive: true });
      for (const id of this.cluster.ids()) {
        const n = this.cluster.node(id);
        for (const [from, name] of [
          [n.logFile, `node-${id}.log`],
          [n.configFile, `node-${id}.toml`],
        ] as const) {
          if (existsSync(from)) cpSync(from, join(folder, name));
        }
        // Preallocated spare log segments (`*.seg.tmp`) hold nothing yet: 64 MiB each, left out.
        if (existsSync(n.dataDir)) {
          cpSync(n.dataDir, join(folder, 'data', `node-${id}`), {
            recursive: true,
            filter: (src) => !src.endsWith('.seg.tmp'),
          });
        }
      }
      writeFileSync(join(folder, 'events.log'), `${this.events.join('\n')}\n`);
      this.phases.forEach(({ report, history }, i) => {
        writeFileSync(
          join(folder as string, `phase-${i}-history.json`),
          JSON.stringify({
            report,
            ops: history.ops,
            failedOpIds: [...history.failedOpIds],
            appends: history.appends,
            cache: this.caches[i] ?? null,
          }),
        );
      });
    }
    rmSync(this.cluster.dir, { recursive: true, force: true });
    return folder;
  }

  // ---------------------------------------------------------------------------------------------

  private async createSchema(): Promise<void> {
    const db = await this.cluster.client(this.cluster.ids(), 10_000);
    try {
      for (const sql of SCHEMA) await retry(() => db.execute(sql), 30_000);
    } finally {
      await this.cluster.closeClient(db);
    }
  }

  /** Quiet, fault, hold, heal, … until the phase's time is up. Returns the episodes. */
  private async runNemesis(p: PhaseOptions, rng: Random): Promise<string[]> {
    const [quietLo, quietHi] = p.quietMs ?? [1000, 3000];
    const [holdLo, holdHi] = p.holdMs ?? [1000, 5000];
    const deadline = performance.now() + p.seconds * 1000;
    const remaining = () => Math.max(0, deadline - performance.now());
    const faults: string[] = [];
    const ctx = { cluster: this.cluster, rng, log: (line: string) => this.event(line) };
    // Bounded by the deadline: every iteration sleeps at least quietLo ms (> 0).
    while (remaining() > 0) {
      await sleep(Math.min(rng.int(quietLo, quietHi), remaining()));
      if (remaining() === 0) break;
      const fault = await inject(p.nemesis, ctx);
      if (fault === null) continue;
      const at = ((p.seconds * 1000 - remaining()) / 1000).toFixed(1);
      faults.push(`t=${at}s ${fault.description}`);
      this.event(`nemesis: ${fault.description}`);
      await sleep(Math.min(rng.int(holdLo, holdHi), remaining()));
      await fault.heal();
      this.event('nemesis: healed');
    }
    return faults;
  }

  /**
   * A cache group kept in memory whose majority's state the faults may have taken: whole again
   * (every node a voter that knows the leader) within CACHE_WHOLE_WITHIN_MS, however many times
   * it was founded anew (the count is reported). With `crashes` and the probe after it: no node
   * fails on the way (found so: a node that joined a group founded anew and was sent a snapshot
   * stopped serving).
   */
  private async checkCacheRecovered(dropsBefore: number): Promise<CheckOutcome> {
    const drops = this.cacheDrops() - dropsBefore;
    const whole = await this.cacheWholeWithin(CACHE_WHOLE_WITHIN_MS);
    return {
      name: 'cache-recovered',
      ok: whole,
      detail: `${whole ? 'the group is whole' : `the cache group was not whole within ${CACHE_WHOLE_WITHIN_MS} ms`}; dropped or founded anew ${drops} times`,
    };
  }

  /** Whether the cache group is whole (cacheGroupWhole) within `ms`, asked every 500 ms. */
  private async cacheWholeWithin(ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    // Bounded by the deadline: each round waits 500 ms.
    for (;;) {
      if (await this.cluster.cacheGroupWhole()) return true;
      if (performance.now() >= deadline) return false;
      await sleep(500);
    }
  }

  private cacheDrops(): number {
    return CACHE_DROP_LOG_LINES.reduce((n, text) => n + this.cluster.countInLogs(text), 0);
  }

  /**
   * A cache group kept in memory, under faults that never took a majority's state: no node
   * dropped the group's state or founded it anew (the watchdog's false alarm would lose what
   * the cluster held), and the group is whole again (every node a voter that knows the leader)
   * within CACHE_WHOLE_WITHIN_MS, so the probe's kill that follows takes a minority only.
   */
  private async checkCacheKept(dropsBefore: number): Promise<CheckOutcome> {
    const drops = this.cacheDrops() - dropsBefore;
    const whole = await this.cacheWholeWithin(CACHE_WHOLE_WITHIN_MS);
    const problems = [
      ...(drops > 0
        ? [`${drops} times a node dropped the cache state or node 1 founded the group anew`]
        : []),
      ...(whole ? [] : [`the cache group was not whole within ${CACHE_WHOLE_WITHIN_MS} ms`]),
    ];
    return {
      name: 'cache-kept',
      ok: problems.length === 0,
      detail: problems.length === 0 ? 'no cache state dropped; the group is whole' : problems.join('; '),
    };
  }

  /** All links pass, paused processes continue, stopped ones restart (READY is awaited later). */
  private healEverything(rng: Random): void {
    const c = this.cluster;
    c.net.healAll({ resetFrozen: rng.chance(0.5) });
    if (c.clocks) for (const id of c.ids()) if (c.node(id).clockOffsetMs !== 0) c.setClockOffset(id, 0);
    if (c.disks) for (const id of c.ids()) if (c.node(id).diskFull) c.setDiskFull(id, false);
    for (const id of c.ids()) c.resume(id);
    for (const id of c.ids()) if (c.node(id).child === null) c.start(id).catch(() => {});
  }

  /** Listeners on every node, then the cache workers (clients as the SQL workers'). */
  private async startCacheWorkload(
    tag: string,
    index: number,
    rng: Random,
    timeoutOf: (worker: number) => number,
  ): Promise<CacheWorkload> {
    const c = this.cluster;
    const ids = c.ids();
    const w = new CacheWorkload(
      {
        tag,
        registerKeys: [`${tag}-r0`, `${tag}-r1`],
        lockKeys: [`${tag}-l0`, `${tag}-l1`],
        lockWorkers: 2,
        registerWorkers: 2,
        notifiers: 2,
        ttlWorkers: 2,
        nodes: ids,
      },
      new CacheHistory(index * 10_000_000 + 1_000_001),
      {
        worker: (i) => c.client(rotate(ids, i % ids.length), timeoutOf(i)),
        boundTo: (node) => c.client([node], 10_000),
      },
      rng,
    );
    await w.start();
    return w;
  }

  /**
   * After healing: a final notification every open listener must deliver, final linearizable
   * reads (registers, getRemove rounds that need one), then the cache checks.
   */
  private async finalCacheChecks(w: CacheWorkload, statesMax: number | undefined): Promise<CheckOutcome[]> {
    const c = this.cluster;
    const h = w.history;
    const db = await c.client(c.ids(), 10_000);
    let final: { seq: number; at: number } | null = null;
    try {
      // Bounded: 5 attempts, each within the request timeout.
      for (let i = 0; i < 5 && final === null; i++) {
        const seq = await w.notifyOnce(db);
        if (seq !== null) final = { seq, at: h.now() };
      }
      const late = final === null ? [] : await w.drainListeners(final.seq, final.at, 30_000);
      if (final === null) await w.drainListeners(0, 0, 0);
      const touched = c.touchedNodes();
      this.event(
        `cache: final notification seq ${final?.seq ?? '-'}; touched nodes ${[...touched].join(',') || 'none'}`,
      );
      const cacheOf = db.cache<number>(CACHE_NAME);
      for (const key of new Set(h.registers.ops.map((o) => o.op.key))) {
        const r = h.registers.invoke(999, { type: 'read', key });
        try {
          h.registers.complete(r, {
            type: 'read',
            value: await cacheOf.get(key, { consistency: 'linearizable' }),
          });
        } catch (e) {
          h.noteError(e);
        }
      }
      for (const round of roundsNeedingFinalRead(h.takes)) {
        try {
          round.final = await cacheOf.get(round.key, { consistency: 'linearizable' });
        } catch (e) {
          h.noteError(e);
        }
      }
      return [
        checkCacheRegisters(h, statesMax),
        checkGetRemove(h.takes),
        checkLocks(h.holders),
        checkNotify({ history: h, touched, final, late }),
        checkTtls(h.ttls, TTL_MARGIN_MS),
        checkCacheErrors(h),
      ];
    } finally {
      await c.closeClient(db);
    }
  }

  /** Time from `healedAt` to a successful write + linearizable read (recorded in the history). */
  private async liveness(
    history: History,
    tag: string,
    healedAt: number,
    boundMs: number,
    rng: Random,
  ): Promise<number | null> {
    const c = this.cluster;
    const key = `${tag}-live`;
    const ids = rotate(c.ids(), rng.int(0, c.ids().length));
    let db: HiqliteClient;
    try {
      db = await c.client(ids, 3000, Math.max(1, boundMs - (performance.now() - healedAt)));
    } catch (e) {
      // No node took a connection within the bound (restarting processes): not live in time.
      history.noteError(e);
      this.event(
        `liveness: no connection within ${boundMs} ms: ${e instanceof Error ? e.message : String(e)}`,
      );
      return null;
    }
    try {
      // Bounded by boundMs: each attempt is bounded by the client's request timeout.
      while (performance.now() - healedAt < boundMs) {
        const value = history.uniqueValue();
        const w = history.invoke(0, { type: 'write', key, value });
        try {
          await db.execute(
            'INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v',
            [key, value],
          );
          history.complete(w, { type: 'write' });
          const r = history.invoke(0, { type: 'read', key });
          const rows = await db.queryConsistent<{ v: number }>('SELECT v FROM kv WHERE k = ?', [key]);
          history.complete(r, { type: 'read', value: rows.length === 0 ? null : Number(rows[0]?.v) });
          const ms = Math.round(performance.now() - healedAt);
          if (ms <= boundMs) return ms;
          return null;
        } catch (e) {
          history.noteError(e);
        }
        await sleep(100);
      }
      return null;
    } finally {
      await c.closeClient(db);
    }
  }

  /** Every node READY (a member again); a node that died on its own is started once more. */
  private async waitAllReady(timeoutMs: number): Promise<CheckOutcome> {
    const c = this.cluster;
    const problems: string[] = [];
    await Promise.all(
      c.ids().map(async (id) => {
        const n = c.node(id);
        try {
          if (n.child === null) await c.start(id, timeoutMs);
          else await withTimeout(n.ready ?? Promise.resolve(), timeoutMs, `node ${id} READY`);
        } catch (e) {
          problems.push(e instanceof Error ? e.message : String(e));
        }
      }),
    );
    return {
      name: 'rejoin',
      ok: problems.length === 0,
      detail: problems.length === 0 ? 'every node is a member' : problems.join('; '),
    };
  }

  /** A linearizable read of every key after healing: acknowledged writes must be visible. */
  private async finalReads(history: History, keys: readonly string[]): Promise<void> {
    const c = this.cluster;
    const db = await c.client(c.ids(), 10_000);
    try {
      for (const key of keys) {
        const r = history.invoke(999, { type: 'read', key });
        try {
          const rows = await db.queryConsistent<{ v: number }>('SELECT v FROM kv WHERE k = ?', [key]);
          history.complete(r, { type: 'read', value: rows.length === 0 ? null : Number(rows[0]?.v) });
        } catch (e) {
          history.noteError(e);
        }
      }
    } finally {
      await c.closeClient(db);
    }
  }

  /**
   * Waits (bounded) until every node has applied the same index, equal to the commit index, then
   * reads each node's tables locally through a client bound to that node alone.
   */
  private async replicaContents(
    timeoutMs: number,
  ): Promise<{ contents: ReplicaContent[]; appendIds: Map<string, number[]> | null }> {
    const c = this.cluster;
    const ids = c.ids();
    const deadline = performance.now() + timeoutMs;
    let target = 0;
    while (performance.now() < deadline) {
      const hs = await Promise.all(ids.map((id) => c.health(id)));
      const applied = new Set(hs.map((h) => h?.appliedIndex ?? -1));
      target = Math.max(target, ...hs.map((h) => h?.commitIndex ?? 0));
      const leader = hs.find((h) => h?.role === 'leader') ?? null;
      if (
        applied.size === 1 &&
        !applied.has(-1) &&
        leader !== null &&
        leader.commitIndex === hs[0]?.appliedIndex &&
        hs.every((h) => h?.member === true)
      ) {
        break;
      }
      await sleep(200);
    }
    const contents: ReplicaContent[] = [];
    let appendIds: Map<string, number[]> | null = null;
    for (const id of ids) {
      const db = await c.client([id], 20_000);
      try {
        const opts = { minIndex: target };
        const before = await c.health(id);
        const kv = await db.query<{ k: string; v: number }>('SELECT k, v FROM kv ORDER BY k', [], opts);
        const appends = await db.query<{ id: number; client: number; phase: string }>(
          'SELECT id, client, phase FROM appends ORDER BY id',
          [],
          opts,
        );
        const h = await c.health(id);
        const text = JSON.stringify({ kv, appends });
        contents.push({
          id,
          checksum: createHash('sha256').update(text).digest('hex'),
          rows: kv.length + appends.length,
          // -1: the index moved while this node was read, so its content is of no single index.
          appliedIndex:
            h !== null && before !== null && h.appliedIndex === before.appliedIndex ? h.appliedIndex : -1,
        });
        if (appendIds === null) {
          appendIds = new Map();
          for (const a of appends) {
            const list = appendIds.get(a.phase) ?? [];
            list.push(Number(a.id));
            appendIds.set(a.phase, list);
          }
        }
      } catch (e) {
        this.event(`replica ${id} did not answer: ${e instanceof Error ? e.message : String(e)}`);
      } finally {
        await c.closeClient(db);
      }
    }
    return { contents, appendIds };
  }
}

/** One session, one phase; the folder is kept when a check fails. */
export async function runOnce(
  o: PhaseOptions & {
    readonly nodes: number;
    readonly log?: (line: string) => void;
    readonly failureRoot?: string;
    /** SessionOptions.cacheMemory. */
    readonly cacheMemory?: boolean;
    /** SessionOptions.cacheLoss. */
    readonly cacheLoss?: boolean;
  },
): Promise<RunReport> {
  const started = performance.now();
  let session: FaultSession;
  const sessionOptions: SessionOptions = {
    nodes: o.nodes,
    clocks: o.nemesis === 'clock' || o.nemesis === 'mixed',
    disks: o.nemesis === 'disk-full',
    cacheMemory: o.cacheMemory === true,
    cacheLoss: o.cacheLoss === true,
    ...(o.log === undefined ? {} : { log: o.log }),
    ...(o.failureRoot === undefined ? {} : { failureRoot: o.failureRoot }),
  };
  try {
    session = await FaultSession.open(sessionOptions, `${o.seed}-${o.nemesis}`);
  } catch (e) {
    return failedRun(o, started, 'setup', e, e instanceof SetupError ? e.folder : null);
  }
  let report: PhaseReport | null = null;
  let error: unknown = null;
  try {
    // The only phase: the node the cache probe kills need not come back.
    report = await session.phase({ restartAfterProbe: false, ...o });
  } catch (e) {
    error = e;
    session.event(`phase threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
  const failed = report === null || !report.ok;
  const folder = await session.finish({ save: failed, label: `${o.seed}-${o.nemesis}` });
  if (report === null) {
    return failedRun(o, started, 'runner', error, folder);
  }
  return { ...report, durationMs: Math.round(performance.now() - started), folder };
}

function rotate<T>(items: readonly T[], by: number): T[] {
  return [...items.slice(by), ...items.slice(0, by)];
}

async function retry<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (performance.now() > deadline) throw e;
      await sleep(200);
    }
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | null = null;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, fail) => {
        timer = setTimeout(() => fail(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

/** The report of a run that produced no phase report (set-up failed, or the phase threw). */
function failedRun(
  o: PhaseOptions & { readonly nodes: number },
  started: number,
  check: 'setup' | 'runner',
  error: unknown,
  folder: string | null,
): RunReport {
  return {
    nemesis: o.nemesis,
    seed: o.seed,
    nodes: o.nodes,
    seconds: o.seconds,
    counts: { ok: 0, failed: 0, unknown: 0 },
    cacheCounts: null,
    checks: [{ name: check, ok: false, detail: error instanceof Error ? error.message : String(error) }],
    ok: false,
    faults: [],
    errorCodes: {},
    errorSamples: {},
    liveMs: null,
    durationMs: Math.round(performance.now() - started),
    folder,
  };
}
