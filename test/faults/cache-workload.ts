/**
 * The cache-group workloads of a fault run (issue 12), beside the SQL workload (workload.ts),
 * each on remote `connect()` clients and recorded in a CacheHistory (cache-history.ts):
 *
 *   registers  put / get (linearizable) / putIfAbsent on a few keys of cache `faults`
 *   getRemove  rounds: a value put on a fresh key, then three takers on different nodes at once
 *   locks      workers per key: lock (waitMs), hold with renewals, then release, or "die"
 *              (stop renewing, never release) so the lease must end in log time
 *   notify     notifiers send unique payloads; one listener per node (a client bound to that
 *              node alone) records every delivered notification with its seq, and how it ended
 *   ttls       a value put with a TTL of TTL_MS, then linearizable gets (on whichever node the
 *              worker's client reaches) at random moments of real time before the TTL ends and
 *              one after it: a TTL ends neither early nor late in real time, whatever a minority
 *              of the nodes' clocks say
 *
 * The lock and notify workers use the cache primitives (CacheOps) under the public API, to see
 * what it does not return: grant and renewal times, notification seqs.
 */
import type { CacheOps, ListenSource } from '../../src/client/cache-client.js';
import { decodeCacheValue, encodeCacheValue } from '../../src/client/cache-client.js';
import type { HiqliteClient } from '../../src/index.js';
import { HiqliteError } from '../../src/index.js';
import type { Random } from '../../src/lib/prng.js';
import type { CacheHistory, HolderRecord, ListenSegment, TakeRound, TtlRound } from './cache-history.js';
import { sleep } from './workload.js';

export const CACHE_NAME = 'faults';
export const NOTIFY_CHANNEL = 'faults';
/** Lease of the workload's locks: short, so that faults outlast leases and expiry is exercised. */
export const LOCK_LEASE_MS = 1500;
/** TTL of the ttl rounds, and the margin of real time their check allows either side of it. */
export const TTL_MS = 4000;
export const TTL_MARGIN_MS = 1000;

export interface CacheWorkloadOptions {
  readonly tag: string;
  readonly registerKeys: readonly string[];
  readonly lockKeys: readonly string[];
  /** Workers per lock key. */
  readonly lockWorkers: number;
  readonly registerWorkers: number;
  readonly notifiers: number;
  readonly ttlWorkers: number;
  readonly nodes: readonly number[];
}

/** Clients the workload asks for: preferring node i (mod n), or bound to one node (listeners). */
export interface CacheClients {
  worker(index: number): Promise<HiqliteClient>;
  boundTo(node: number): Promise<HiqliteClient>;
}

export class CacheWorkload {
  private stopping = false;
  private readonly workers: Promise<void>[] = [];
  private readonly listeners: Listener[] = [];

  constructor(
    private readonly o: CacheWorkloadOptions,
    readonly history: CacheHistory,
    private readonly clients: CacheClients,
    private readonly rng: Random,
  ) {}

  /** Opens one listener per node, then starts the workers. */
  async start(): Promise<void> {
    for (const node of this.o.nodes) {
      const l = new Listener(node, await this.clients.boundTo(node), this.history);
      this.listeners.push(l);
      l.start();
    }
    let w = 0;
    for (let i = 0; i < this.o.registerWorkers; i++) {
      const clientId = 100 + i;
      this.spawn(w++, (db, rng) => this.registerWorker(db, rng, clientId));
    }
    const takers = [w + 1, w + 2, w + 3];
    this.spawn(w, (db, rng) => this.takeRounds(db, rng, takers));
    w += 4;
    for (const key of this.o.lockKeys) {
      for (let i = 0; i < this.o.lockWorkers; i++)
        this.spawn(w++, (db, rng) => this.lockWorker(db, key, rng));
    }
    for (let i = 0; i < this.o.notifiers; i++) this.spawn(w++, (db, rng) => this.notifier(db, rng));
    for (let i = 0; i < this.o.ttlWorkers; i++) this.spawn(w++, (db, rng) => this.ttlWorker(db, rng, i));
  }

  /** Stops the workers and waits for their last ops (each bounded by its request timeout). */
  async stopWorkers(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.workers);
  }

  /**
   * Waits (bounded) until every listener's open segment delivered seq `finalSeq` (acknowledged at
   * history time `finalAt`), then closes them. A segment opened after `finalAt` owes nothing.
   * Returns the nodes whose listener did not get there.
   */
  async drainListeners(finalSeq: number, finalAt: number, timeoutMs: number): Promise<number[]> {
    const deadline = performance.now() + timeoutMs;
    const pending = () => this.listeners.filter((l) => !l.reached(finalSeq, finalAt));
    // Bounded by the deadline.
    while (pending().length > 0 && performance.now() < deadline) await sleep(100);
    const late = pending().map((l) => l.node);
    for (const l of this.listeners) l.close();
    await Promise.all(this.listeners.map((l) => l.done));
    return late;
  }

  private spawn(index: number, body: (db: HiqliteClient, rng: Random) => Promise<void>): void {
    const rng = this.rng.fork();
    this.workers.push(this.clients.worker(index).then((db) => body(db, rng)));
  }

  // ---- registers -------------------------------------------------------------------------------

  private async registerWorker(db: HiqliteClient, rng: Random, clientId: number): Promise<void> {
    const h = this.history.registers;
    const cache = db.cache<number>(CACHE_NAME);
    // Bounded by time: each op ends within the request timeout; the flag is checked between ops.
    while (!this.stopping) {
      const key = rng.pick(this.o.registerKeys);
      const dice = rng.next();
      if (dice < 0.45) {
        const value = this.history.uniqueValue();
        const o = h.invoke(clientId, { type: 'write', key, value });
        try {
          await cache.put(key, value);
          h.complete(o, { type: 'write' });
        } catch (e) {
          this.history.noteError(e);
        }
      } else if (dice < 0.55) {
        const value = this.history.uniqueValue();
        const o = h.invoke(clientId, { type: 'cas', key, expected: null, value });
        try {
          h.complete(o, { type: 'cas', ok: await cache.putIfAbsent(key, value) });
        } catch (e) {
          this.history.noteError(e);
        }
      } else {
        const o = h.invoke(clientId, { type: 'read', key });
        try {
          const v = await cache.get(key, { consistency: 'linearizable' });
          h.complete(o, { type: 'read', value: v });
        } catch (e) {
          this.history.noteError(e);
        }
      }
      await sleep(rng.int(0, 10));
    }
  }

  // ---- getRemove -------------------------------------------------------------------------------

  private async takeRounds(db: HiqliteClient, rng: Random, takerIndexes: readonly number[]): Promise<void> {
    const takers = await Promise.all(takerIndexes.map((i) => this.clients.worker(i)));
    // Bounded by time: each round's ops end within their request timeouts.
    for (let round = 0; !this.stopping; round++) {
      const r: TakeRound = {
        key: `${this.o.tag}-take-${round}`,
        value: this.history.uniqueValue(),
        put: null,
        takers: [],
      };
      this.history.takes.push(r);
      try {
        await db.cache<number>(CACHE_NAME).put(r.key, r.value);
        r.put = 'ok';
      } catch (e) {
        this.history.noteError(e);
      }
      await Promise.all(
        takers.map(async (t) => {
          const rec: TakeRound['takers'][number] = { outcome: null, value: null };
          r.takers.push(rec);
          try {
            rec.value = await t.cache<number>(CACHE_NAME).getRemove(r.key);
            rec.outcome = 'ok';
          } catch (e) {
            this.history.noteError(e);
          }
        }),
      );
      await sleep(rng.int(0, 20));
    }
  }

  // ---- TTLs in real time ------------------------------------------------------------------------

  private async ttlWorker(db: HiqliteClient, rng: Random, worker: number): Promise<void> {
    const h = this.history;
    const cache = db.cache<number>(CACHE_NAME);
    // Bounded by time: each op ends within the request timeout, each round within ~TTL_MS + 2 s
    // of sleeping; the flag is checked between ops.
    for (let round = 0; !this.stopping; round++) {
      const r: TtlRound = {
        key: `${this.o.tag}-ttl${worker}-${round}`,
        value: h.uniqueValue(),
        ttlMs: TTL_MS,
        putAt: h.now(),
        ackAt: null,
        reads: [],
      };
      h.ttls.push(r);
      try {
        await cache.put(r.key, r.value, { ttlMs: r.ttlMs });
        r.ackAt = h.now();
      } catch (e) {
        h.noteError(e);
        await sleep(rng.int(10, 100));
        continue;
      }
      const moments = [
        rng.int(0, TTL_MS - TTL_MARGIN_MS),
        rng.int(0, TTL_MS - TTL_MARGIN_MS),
        TTL_MS + TTL_MARGIN_MS + rng.int(0, 500),
      ].sort((a, b) => a - b);
      for (const m of moments) {
        if (this.stopping) break;
        await sleep(Math.max(0, r.ackAt + m - h.now()));
        const start = h.now();
        try {
          const value = await cache.get(r.key, { consistency: 'linearizable' });
          r.reads.push({ start, end: h.now(), value });
        } catch (e) {
          h.noteError(e);
        }
      }
    }
  }

  // ---- locks -----------------------------------------------------------------------------------

  private async lockWorker(db: HiqliteClient, key: string, rng: Random): Promise<void> {
    const ops = db as unknown as CacheOps;
    let attempt = 0;
    // Bounded by time: a lock wait is bounded by waitMs, a hold by its hold time.
    while (!this.stopping) {
      const holderId = `${this.o.tag}-${key}-${rng.int(0, 2 ** 30)}-${attempt++}`;
      let grant: { token: number; holderId?: string; expiresAtMs: number } | null = null;
      try {
        grant = await ops.cacheLock({ key, holderId, leaseMs: LOCK_LEASE_MS, waitMs: rng.int(500, 4000) });
      } catch (e) {
        const code = this.history.noteError(e);
        if (code === 'HQL_TIMEOUT') this.history.lockAttempts.timeout++;
        else this.history.lockAttempts.unknown++;
        await sleep(rng.int(10, 100));
        continue;
      }
      if (grant === null) {
        this.history.lockAttempts.timeout++;
        continue;
      }
      this.history.lockAttempts.granted++;
      const h: HolderRecord = {
        key,
        token: grant.token,
        holderId: grant.holderId ?? holderId,
        leaseMs: LOCK_LEASE_MS,
        grantAtMs: grant.expiresAtMs - LOCK_LEASE_MS,
        confirmedAtMs: grant.expiresAtMs - LOCK_LEASE_MS,
        leaseEndMs: grant.expiresAtMs,
        unknownRenewals: 0,
        end: null,
      };
      this.history.holders.push(h);
      await this.hold(ops, h, rng);
      await sleep(rng.int(0, 50));
    }
  }

  /** Holds `h` for a while with renewals; then releases it, or abandons it (the holder "dies"). */
  private async hold(ops: CacheOps, h: HolderRecord, rng: Random): Promise<void> {
    const until = performance.now() + rng.int(50, 1200);
    // Bounded by `until` (or a refused renewal).
    while (performance.now() < until && !this.stopping) {
      await sleep(Math.min(LOCK_LEASE_MS / 3, Math.max(1, until - performance.now())));
      if (!(await this.renew(ops, h))) return;
    }
    if (!this.stopping && rng.chance(0.2)) {
      h.end = 'abandoned';
      return;
    }
    if (!(await this.renew(ops, h))) return;
    try {
      const o = await ops.cacheWrite({
        type: 'lockRelease',
        key: h.key,
        token: h.token,
        holderId: h.holderId,
      });
      h.end = (o as { released: boolean }).released ? 'released' : 'expired';
    } catch (e) {
      this.history.noteError(e);
      h.end = 'release-unknown';
    }
  }

  /** False when the lease was found over (the tenure ended by expiry). */
  private async renew(ops: CacheOps, h: HolderRecord): Promise<boolean> {
    try {
      const o = (await ops.cacheWrite({
        type: 'lockRenew',
        key: h.key,
        token: h.token,
        holderId: h.holderId,
      })) as {
        renewed: boolean;
        expiresAtMs: number | null;
      };
      if (!o.renewed || o.expiresAtMs === null) {
        h.end = 'expired';
        return false;
      }
      h.confirmedAtMs = Math.max(h.confirmedAtMs, o.expiresAtMs - h.leaseMs);
      h.leaseEndMs = Math.max(h.leaseEndMs, o.expiresAtMs);
      return true;
    } catch (e) {
      this.history.noteError(e);
      h.unknownRenewals++;
      return true;
    }
  }

  // ---- notify ----------------------------------------------------------------------------------

  private async notifier(db: HiqliteClient, rng: Random): Promise<void> {
    // Bounded by time: each notify ends within the request timeout.
    while (!this.stopping) {
      await this.notifyOnce(db);
      await sleep(rng.int(5, 40));
    }
  }

  /** One notify; its seq when acknowledged. */
  async notifyOnce(db: HiqliteClient): Promise<number | null> {
    const value = this.history.uniqueValue();
    const rec = { value, call: this.history.now(), return: null, outcome: null, seq: null } as {
      value: number;
      call: number;
      return: number | null;
      outcome: 'ok' | 'unknown' | null;
      seq: number | null;
    };
    this.history.notifies.push(rec);
    try {
      const o = (await (db as unknown as CacheOps).cacheWrite({
        type: 'notify',
        channel: NOTIFY_CHANNEL,
        payload: encodeCacheValue(value),
      })) as { seq: number };
      rec.return = this.history.now();
      rec.outcome = 'ok';
      rec.seq = o.seq;
      return o.seq;
    } catch (e) {
      this.history.noteError(e);
      rec.outcome = 'unknown';
      return null;
    }
  }
}

/**
 * The listener of one node: a segment per listen; when one ends (lagged, or an error such as its
 * node being gone longer than the client's resume timeout) a new one is opened, until closed.
 */
class Listener {
  private closed = false;
  private source: ListenSource | null = null;
  private current: ListenSegment | null = null;
  done: Promise<void> = Promise.resolve();

  constructor(
    readonly node: number,
    private readonly db: HiqliteClient,
    private readonly history: CacheHistory,
  ) {}

  start(): void {
    this.done = this.run();
  }

  /** True when the open segment delivered `seq`, or was opened after `at` (it owes nothing). */
  reached(seq: number, at: number): boolean {
    const s = this.current;
    if (s === null || s.end !== null) return false;
    if (s.opened > at) return true;
    const last = s.items[s.items.length - 1];
    return last !== undefined && last[0] >= seq;
  }

  close(): void {
    this.closed = true;
    void this.source?.close();
  }

  private async run(): Promise<void> {
    // Bounded by `close()`: every round waits for an item or the end of a segment.
    while (!this.closed) {
      const seg: ListenSegment = { node: this.node, opened: this.history.now(), items: [], end: null };
      this.history.segments.push(seg);
      this.current = seg;
      let source: ListenSource;
      try {
        source = (this.db as unknown as CacheOps).cacheListen(null);
      } catch (e) {
        seg.end = { kind: 'error', code: this.history.noteError(e), at: this.history.now() };
        await sleep(200);
        continue;
      }
      this.source = source;
      // Bounded: ends with a lagged item, an error, or close().
      for (;;) {
        let item: Awaited<ReturnType<ListenSource['next']>>;
        try {
          item = await source.next();
        } catch (e) {
          if (!this.closed) {
            const code = e instanceof HiqliteError ? e.code : e instanceof Error ? e.name : 'non-error';
            seg.end = { kind: 'error', code, at: this.history.now() };
          }
          break;
        }
        if (item.kind === 'lagged') {
          seg.end = { kind: 'lagged', missed: item.missed, at: this.history.now() };
          void source.close();
          break;
        }
        const n = item.notification;
        seg.items.push([n.seq, decodeCacheValue(n.payload) as number]);
      }
      if (!this.closed) await sleep(100);
    }
  }
}
