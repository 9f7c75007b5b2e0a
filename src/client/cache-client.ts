/**
 * The cache API of a client (issue 12): `db.cache(name)`, `db.counter(name)`, `db.notify`,
 * `db.listen`, `db.lock` / `db.tryLock`, `db.clearCaches()`. Every client builds it on the four
 * primitives of `CacheOps`, so the embedded node (on its thread or on the caller's), and the
 * remote client, offer the same API by implementing only those:
 *
 * - `cacheWrite(command, options)`: replicate one command of the cache group exactly once (under
 *   a session) and return its outcome; a command's own failure is thrown as a `CacheError`.
 * - `cacheRead(read, consistency)`: a read on the node the client talks to (`local`), or after
 *   a ReadIndex round on the cache group (`linearizable`).
 * - `cacheLock(request, signal)`: `lockAcquire`, then wait on the node for the grant (FIFO);
 *   null for a busy try-lock; HQL_TIMEOUT after `waitMs`, HQL_ABORTED on the signal (the node
 *   withdraws the waiter either way).
 * - `cacheListen(channel)`: a stream of notifications in log order, ending with a `lagged` item
 *   when the listener fell too far behind.
 * - `cacheLocalEntry(cache, key)`: synchronously, the live entry of this thread's replica (the
 *   node on this thread, or the cache mirror), for `getLocal`; a client without one throws.
 *
 * Values are encoded here: any msgpack value, `Uint8Array` included (stored as msgpack binary,
 * returned as `Uint8Array`), in standard msgpack (no msgpackr records), so that other clients
 * and the HTTP routes read the same bytes.
 */
import { randomUUID } from 'node:crypto';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { abortedError, HiqliteError } from '../lib/errors.js';
import type { ListenItem } from '../node/cache-listeners.js';
import type { LockGrantInfo, LockRequest } from '../node/cache-locks.js';
import { systemClock } from '../node/system-clock.js';
import type { CacheCommand } from '../sm/cache/command.js';
import type { CacheOutcome } from '../sm/cache/result.js';
import { checkedCacheValue, cacheValuePackr as packr, ValueProblem } from '../sm/cache/value.js';
import {
  consistencyArg,
  durationArg,
  int64Arg,
  nameArg,
  noExtraArgs,
  optionsArg,
  signalArg,
  stringArg,
  TIMEOUT_MS_MAX,
} from './args.js';
import { type LocalCacheEntry, localValueOf } from './cache-local-values.js';

export type { ListenItem } from '../node/cache-listeners.js';
export type { LockGrantInfo, LockRequest } from '../node/cache-locks.js';

export interface CacheCallOptions {
  /** Cancels a call that has not been proposed yet (once proposed, a write cannot be taken back). */
  readonly signal?: AbortSignal;
  /** Bounded by the node's `proposal_timeout_ms`. */
  readonly timeoutMs?: number;
}

import type { CacheConsistency, CacheRead, CacheReadValue } from '../node/cache-group.js';

export type { CacheConsistency, CacheRead, CacheReadValue } from '../node/cache-group.js';

/** A stream of notifications (one listener). `next()` is never called twice at once. */
export interface ListenSource {
  next(): Promise<ListenItem>;
  /**
   * Stops listening; where the listener lives on another thread or process, resolves once its
   * node dropped it (its slot of `cache_listeners_max` is free), or could not be told (gone).
   */
  close(): void | Promise<void>;
}

/** What a client implements to get the whole cache API. */
export interface CacheOps {
  cacheWrite(command: CacheCommand, options?: CacheCallOptions): Promise<CacheOutcome>;
  cacheRead(read: CacheRead, consistency: CacheConsistency): Promise<CacheReadValue>;
  cacheLock(request: LockRequest, signal?: AbortSignal): Promise<LockGrantInfo | null>;
  cacheListen(channel: string | null): ListenSource;
  /** The live entry of the replica on this thread, or null; throws HQL_UNAVAILABLE without one. */
  cacheLocalEntry(cache: string, key: string): LocalCacheEntry | null;
  /**
   * How many times the cache group was founded anew (CacheGroup.refound) as this client knows:
   * an embedded node's own count, a remote client's count of the nodes' events telling it
   * (ApiEvent). A lock granted before is gone.
   */
  cacheRefounds?(): number;
  /**
   * The highest token floor of the cache group the nodes told this client (a remote client;
   * ApiEvent `cacheTokenFloor`): a lock with a lower token was granted by a group founded
   * before the one the nodes now hold, and is gone.
   */
  cacheTokenFloor?(): number;
  /**
   * Calls `hook` when the cache group is founded anew (as cacheRefounds counts it) or the token
   * floor rises: the held locks check whether they are gone.
   */
  onCacheRefound?(hook: () => void): void;
  /** Tells the ops how many locks the client holds (a remote client connects again while any). */
  watchHeldLocks?(count: () => number): void;
}

/** getLocal on a client without a replica on its thread (a remote client). */
export function noLocalReplica(): HiqliteError {
  return new HiqliteError(
    'HQL_UNAVAILABLE',
    'getLocal reads the replica of an embedded node (start()); a remote client reads with await get()',
    { retryable: false },
  );
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/** Any value cacheValueProblem accepts (src/sm/cache/value.ts); a `Uint8Array` becomes msgpack binary. */
export function encodeCacheValue(value: unknown): Uint8Array {
  // The checked copy is packed: a getter of the caller's value runs once (checkedCacheValue).
  const checked = checkedCacheValue(value);
  if (checked instanceof ValueProblem)
    throw new HiqliteError('HQL_INVALID_PARAMS', checked.reason, { retryable: false });
  let bytes: Uint8Array;
  try {
    bytes = packr.pack(checked);
  } catch (cause) {
    // A bigint beyond 64 bits: the caller's value, not a bug of ours.
    throw new HiqliteError(
      'HQL_INVALID_PARAMS',
      `a cache value must be a msgpack value: ${packFailure(cause)}`,
      { retryable: false, cause },
    );
  }
  // msgpackr returns a view of its reusable buffer: copy it.
  return new Uint8Array(bytes);
}

/** msgpackr's reason, without its advice on encoder options the caller cannot set. */
function packFailure(cause: unknown): string {
  const text = cause instanceof Error ? cause.message : String(cause);
  const bigint = /^(-?\d+) was too large to fit in MessagePack 64-bit integer format/.exec(text);
  if (bigint === null) return text;
  const digits = bigint[1]!;
  return `the bigint ${digits.length > 40 ? `${digits.slice(0, 40)}…` : digits} is outside the 64-bit range`;
}

export function decodeCacheValue(bytes: Uint8Array): unknown {
  let v: unknown;
  try {
    v = packr.unpack(bytes);
  } catch (cause) {
    throw new HiqliteError('HQL_MALFORMED_COMMAND', 'a cache value is not msgpack', {
      retryable: false,
      cause,
    });
  }
  // msgpackr decodes binary as a Node Buffer: give back the plain Uint8Array that was stored.
  if (v instanceof Uint8Array && Object.getPrototypeOf(v) !== Uint8Array.prototype)
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Handles
// ---------------------------------------------------------------------------------------------

export interface CachePutOptions {
  /** The entry expires this long after the write (in the cluster's log time); none: never. */
  readonly ttlMs?: number;
}

export interface CacheGetOptions {
  /** `local` (default): this node's replica. `linearizable`: everything committed before the call. */
  readonly consistency?: CacheConsistency;
}

/** One named cache: `db.cache(name)`. Keys are strings, values any msgpack value. */
export class CacheHandle<V = unknown> {
  /** How argument errors name this cache. */
  private readonly where: string;

  constructor(
    private readonly ops: CacheOps,
    readonly name: string,
  ) {
    this.where = `cache '${name}': `;
  }

  async put(key: string, value: V, options: CachePutOptions = {}, ...extra: []): Promise<void> {
    noExtraArgs(extra, `${this.where}put`, '(key, value, options)');
    await this.ops.cacheWrite({
      type: 'put',
      cache: this.name,
      key: stringArg(key, 'key', this.where),
      value: encodeCacheValue(value),
      ...ttl(options, 'put', this.where),
    });
  }

  /** The live value, or null when absent or expired. */
  async get(key: string, options: CacheGetOptions = {}, ...extra: []): Promise<V | null> {
    noExtraArgs(extra, `${this.where}get`, '(key, options)');
    const v = await this.ops.cacheRead(
      { type: 'get', cache: this.name, key: stringArg(key, 'key', this.where) },
      consistencyArg(optionsArg(options, GET_OPTIONS, 'get', this.where)?.consistency, 'get', this.where) ??
        'local',
    );
    return v === null ? null : (decodeCacheValue(v as Uint8Array) as V);
  }

  /**
   * The live value on the replica of this thread, synchronously (no await), or null when absent
   * or expired: what `get(key)` returns, from an embedded node (the cache mirror with the node
   * on its own thread). Each stored version is decoded once and then shared between reads, so
   * objects and arrays come back deep-frozen (writing to them throws in strict mode); a
   * `Uint8Array` value is a fresh copy per read, and a value holding binary or extension types
   * inside is decoded per read (cache-local-values.ts). With the node on its own thread the
   * mirror starts with the first local read; until it serves (and while it is rebuilt from a
   * snapshot) this reads the node's thread synchronously, bounded by `read_timeout_ms`
   * (HQL_TIMEOUT, retryable). HQL_UNAVAILABLE on a remote client and with `cacheMirror: false`
   * (`await get(key)` works in every case); HQL_INVALID_PARAMS for a key `get` refuses.
   */
  getLocal(key: string, ...extra: []): V | null {
    noExtraArgs(extra, `${this.where}getLocal`, '(key)');
    // The same key check as every other method (a non-string, a lone surrogate): HQL_INVALID_PARAMS.
    const e = this.ops.cacheLocalEntry(this.name, stringArg(key, 'key', this.where));
    return e === null ? null : (localValueOf(e) as V);
  }

  /** True when a live value was removed. */
  async delete(key: string, ...extra: []): Promise<boolean> {
    noExtraArgs(extra, `${this.where}delete`, '(key)');
    const o = await this.ops.cacheWrite({
      type: 'delete',
      cache: this.name,
      key: stringArg(key, 'key', this.where),
    });
    return (o as Extract<CacheOutcome, { type: 'delete' }>).deleted;
  }

  /** Removes every entry; resolves with how many were removed. */
  async clear(...extra: []): Promise<number> {
    noExtraArgs(extra, `${this.where}clear`, '()');
    const o = await this.ops.cacheWrite({ type: 'clear', cache: this.name });
    return (o as Extract<CacheOutcome, { type: 'clear' }>).removed;
  }

  /** Atomic take: of concurrent callers exactly one gets the value, the others null. */
  async getRemove(key: string, ...extra: []): Promise<V | null> {
    noExtraArgs(extra, `${this.where}getRemove`, '(key)');
    const o = await this.ops.cacheWrite({
      type: 'getRemove',
      cache: this.name,
      key: stringArg(key, 'key', this.where),
    });
    const v = (o as Extract<CacheOutcome, { type: 'getRemove' }>).value;
    return v === null ? null : (decodeCacheValue(v) as V);
  }

  /** Stores the value and returns the previous live one (or null). */
  async replace(key: string, value: V, options: CachePutOptions = {}, ...extra: []): Promise<V | null> {
    noExtraArgs(extra, `${this.where}replace`, '(key, value, options)');
    const o = await this.ops.cacheWrite({
      type: 'replace',
      cache: this.name,
      key: stringArg(key, 'key', this.where),
      value: encodeCacheValue(value),
      ...ttl(options, 'replace', this.where),
    });
    const v = (o as Extract<CacheOutcome, { type: 'replace' }>).previous;
    return v === null ? null : (decodeCacheValue(v) as V);
  }

  /** Stores the value only if the key has no live value; true when stored (idempotency keys). */
  async putIfAbsent(key: string, value: V, options: CachePutOptions = {}, ...extra: []): Promise<boolean> {
    noExtraArgs(extra, `${this.where}putIfAbsent`, '(key, value, options)');
    const o = await this.ops.cacheWrite({
      type: 'putIfAbsent',
      cache: this.name,
      key: stringArg(key, 'key', this.where),
      value: encodeCacheValue(value),
      ...ttl(options, 'putIfAbsent', this.where),
    });
    return (o as Extract<CacheOutcome, { type: 'putIfAbsent' }>).stored;
  }

  /** The live entries of this node's replica, in insertion order (expired ones left out). */
  async entries(...extra: []): Promise<Array<[string, V]>> {
    noExtraArgs(extra, `${this.where}entries`, '() (a local read of this replica)');
    const v = (await this.ops.cacheRead({ type: 'entries', cache: this.name }, 'local')) as Array<
      [string, Uint8Array]
    >;
    return v.map(([k, bytes]) => [k, decodeCacheValue(bytes) as V]);
  }
}

/** int64 counters of one name: `db.counter(name)`. Adds saturate at the int64 bounds. */
export class CounterHandle {
  /** How argument errors name these counters. */
  private readonly where: string;

  constructor(
    private readonly ops: CacheOps,
    readonly name: string,
  ) {
    this.where = `counter '${name}': `;
  }

  /** Adds `delta` (a missing key starts at 0); resolves with the new value. */
  async add(key: string, delta: number | bigint = 1n, ...extra: []): Promise<bigint> {
    noExtraArgs(extra, `${this.where}add`, '(key, delta)');
    const o = await this.ops.cacheWrite({
      type: 'counterAdd',
      counter: this.name,
      key: stringArg(key, 'key', this.where),
      delta: int64Arg(delta, 'delta', this.where),
    });
    return (o as Extract<CacheOutcome, { type: 'counterAdd' }>).value;
  }

  /** This node's value, or null when the key has none. */
  async get(key: string, options: CacheGetOptions = {}, ...extra: []): Promise<bigint | null> {
    noExtraArgs(extra, `${this.where}get`, '(key, options)');
    const v = await this.ops.cacheRead(
      { type: 'counterGet', counter: this.name, key: stringArg(key, 'key', this.where) },
      consistencyArg(optionsArg(options, GET_OPTIONS, 'get', this.where)?.consistency, 'get', this.where) ??
        'local',
    );
    return v as bigint | null;
  }

  async set(key: string, value: number | bigint, ...extra: []): Promise<void> {
    noExtraArgs(extra, `${this.where}set`, '(key, value)');
    await this.ops.cacheWrite({
      type: 'counterSet',
      counter: this.name,
      key: stringArg(key, 'key', this.where),
      value: int64Arg(value, 'value', this.where),
    });
  }

  async delete(key: string, ...extra: []): Promise<boolean> {
    noExtraArgs(extra, `${this.where}delete`, '(key)');
    const o = await this.ops.cacheWrite({
      type: 'counterDelete',
      counter: this.name,
      key: stringArg(key, 'key', this.where),
    });
    return (o as Extract<CacheOutcome, { type: 'counterDelete' }>).deleted;
  }
}

// ---------------------------------------------------------------------------------------------
// Listen / notify
// ---------------------------------------------------------------------------------------------

export interface ListenNotification<P = unknown> {
  readonly channel: string;
  readonly payload: P;
  /** The log index of the notify: increasing, the same on every member. */
  readonly index: number;
  /** The cluster's log time of the notify (ms since the epoch). */
  readonly time: number;
}

/** A listener fell `listener buffer` notifications behind: `missed` were dropped, and it ended. */
export class LaggedError extends HiqliteError {
  override readonly name = 'LaggedError';
  constructor(readonly missed: number) {
    super(
      'HQL_LAGGED',
      `the listener missed ${missed} notifications and ended: it fell behind its buffer (an embedded listener: the node's cache_listener_buffer_max / cache_listener_buffer_bytes_max; a remote one: also its listenBufferMax / listenBufferBytesMax), or, resuming after a reconnect or a snapshot, they were no longer held (cache_notifications_ring_max); listen again`,
      { retryable: true },
    );
  }
}

/** `db.listen(channel?)`: notifications in log order, until `return()` (or break) or HQL_LAGGED. */
export function listenIterator<P = unknown>(
  source: ListenSource,
): AsyncIterableIterator<ListenNotification<P>> & AsyncDisposable {
  let done = false;
  // Calls of next() that overlap are served one after the other, in call order (as an async
  // generator's are): each takes its own notification, none is lost or given twice.
  let previous: Promise<unknown> = Promise.resolve();
  const step = async (): Promise<IteratorResult<ListenNotification<P>>> => {
    if (done) return { done: true, value: undefined };
    let item: ListenItem;
    try {
      item = await source.next();
    } catch (e) {
      done = true;
      void source.close();
      if (e instanceof HiqliteError && e.code === 'HQL_CLOSED') return { done: true, value: undefined };
      throw e;
    }
    if (item.kind === 'lagged') {
      done = true;
      void source.close();
      throw new LaggedError(item.missed);
    }
    const n = item.notification;
    return {
      done: false,
      value: {
        channel: n.channel,
        payload: decodeCacheValue(n.payload) as P,
        index: n.index,
        time: n.time,
      },
    };
  };
  const it = {
    next(): Promise<IteratorResult<ListenNotification<P>>> {
      const result = previous.then(step, step);
      previous = result.catch(() => {});
      return result;
    },
    async return(): Promise<IteratorResult<ListenNotification<P>>> {
      done = true;
      await source.close();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return it;
    },
    async [Symbol.asyncDispose]() {
      await it.return();
    },
  };
  return it;
}

// ---------------------------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------------------------

export interface LockOptions {
  /** The lease, renewed automatically at about a third of it while the lock is held. Default 10 s. */
  readonly leaseMs?: number;
  /** How long to wait in the queue (HQL_TIMEOUT then); default: until granted or aborted. */
  readonly waitMs?: number;
  readonly signal?: AbortSignal;
}

export const LOCK_LEASE_MS_DEFAULT = 10_000;
/** The least lease a held lock has left: below it, it is lost (remainingMs() counts whole ms). */
const LOCK_REMAINING_MS_MIN = 1;
/**
 * How long `close()` waits for the releases of the locks its client holds (all at once): the
 * next waiter gets each lock at once instead of after its lease. One not released by then (no
 * leader) lapses with its lease, as when the process dies.
 */
export const LOCK_RELEASE_ON_CLOSE_MS = 2_000;

/** The longest delay a Node.js timer holds; a longer one fires after 1 ms. */
/** A held lock does not keep the process alive (its lease ends in log time when it exits). */
const UNREF = { keepAlive: false } as const;

/** `leaseMs` and `waitMs` of a lock: whole milliseconds in range, else HQL_INVALID_PARAMS. */
function lockDurations(key: string, leaseMs: unknown, waitMs: unknown): void {
  durationArg(leaseMs, `lock '${key}': leaseMs`, 1);
  if (waitMs !== undefined) durationArg(waitMs, `lock '${key}': waitMs`, 0);
}

/**
 * The cache API's call of a held lock when its node's cache group was founded anew: a symbol of
 * this module, so that it is no method a user could call (it ends the lock here, not on the node).
 */
const LOST_TO_REFOUND: unique symbol = Symbol('lostToRefound');
/** The cache API's release of a held lock at the client's close(), within LOCK_RELEASE_ON_CLOSE_MS. */
const RELEASE_ON_CLOSE: unique symbol = Symbol('releaseOnClose');
/** The cache API's release of a grant it does not hand out (its lease ran out on its way here). */
const ABANDON: unique symbol = Symbol('abandon');

/**
 * A held lock. `token` is a fencing token: strictly increasing per key across holders, leaders
 * and restarts; give it to the resource you guard so that it can refuse a holder whose lease
 * ran out (`UPDATE … SET fence = :token WHERE … AND fence < :token`).
 */
export class DistributedLock implements AsyncDisposable {
  // ES private fields: a lock logged, JSON.stringify'd or spread shows its key and token only
  // (not the client behind it, nor the holder id that alone renews or releases it).
  #timer: TimerHandle | null = null;
  #released = false;
  readonly #lostController = new AbortController();
  #renewing: Promise<void> | null = null;
  /**
   * When the lease last started on this holder's monotonic clock: the grant (less what it had
   * used up when the node answered), then each renewal that succeeded, from when it was sent.
   */
  #lastRenewedMs: number;
  readonly #ops: CacheOps;
  readonly #leaseMs: number;
  readonly #held: Set<DistributedLock>;
  readonly #clock: Clock;
  /** The holder id of the grant (renewals and the release name it), undefined from an older node. */
  readonly #holderId: string | undefined;
  /** The embedded node's refound count at the grant (CacheOps.cacheRefounds), if it has one. */
  readonly #refounds: number | undefined;

  /**
   * `remainingMs`: the lease the grant had left when the node answered (its lease counts from
   * the grant, not from when the answer arrived); the whole lease when the node did not say.
   */
  constructor(
    ops: CacheOps,
    readonly key: string,
    readonly token: number,
    leaseMs: number,
    held: Set<DistributedLock> = new Set(),
    remainingMs: number = leaseMs,
    clock: Clock = systemClock,
    holderId: string | undefined = undefined,
  ) {
    this.#ops = ops;
    this.#leaseMs = leaseMs;
    this.#held = held;
    this.#clock = clock;
    this.#holderId = holderId;
    this.#refounds = ops.cacheRefounds?.();
    held.add(this);
    const left = Math.max(0, Math.min(leaseMs, remainingMs));
    this.#lastRenewedMs = clock.monotonicMs() - (leaseMs - left);
    this.scheduleRenewal(left);
  }

  /**
   * Aborted when the lease was lost: a renewal was refused, failed for good (the node stopped
   * serving), or kept failing until the lease ran out. Reading it checks the lease on this
   * process's clock first, so `lock.lost.aborted` read right before touching what the lock
   * guards is true once the lease has run out — also after the process stood still (a long GC
   * pause, a blocked event loop) and before the renewal timer that would have noticed runs.
   */
  get lost(): AbortSignal {
    this.checkLease();
    return this.#lostController.signal;
  }

  /**
   * How much of the lease is left, in whole ms (rounded down), by this process's clock (0 once
   * lost or released): the time the holder may still count on the lock without another renewal.
   */
  remainingMs(): number {
    this.checkLease();
    if (this.#released || this.#lostController.signal.aborted) return 0;
    return Math.max(0, Math.floor(this.#lastRenewedMs + this.#leaseMs - this.#clock.monotonicMs()));
  }

  /** Lost now if the lease ran out on this process's clock since it last began. */
  private checkLease(): void {
    if (this.#released || this.#lostController.signal.aborted) return;
    if (this.grantedBeforeRefound()) {
      this[LOST_TO_REFOUND]();
      return;
    }
    // Under a whole millisecond left counts as lost: remainingMs() says 0 exactly when `lost` is set.
    if (this.#lastRenewedMs + this.#leaseMs - this.#clock.monotonicMs() < LOCK_REMAINING_MS_MIN) this.lose();
  }

  /**
   * Releases the lock (a no-op once released or lost, and after the client's close(), which
   * released it or let its lease lapse).
   */
  release(): Promise<void> {
    return this.releaseWithin({});
  }

  /** close(): the release, within LOCK_RELEASE_ON_CLOSE_MS (a module symbol: no user's method). */
  [RELEASE_ON_CLOSE](): Promise<void> {
    return this.releaseWithin({ timeoutMs: LOCK_RELEASE_ON_CLOSE_MS });
  }

  /**
   * A grant not handed out (its lease ran out on its way here, by this side's count): released at
   * once, whatever this side counts, so that the next waiter need not wait out what may be left
   * of it on the node (a stale token is ignored by the lock's state machine).
   */
  [ABANDON](): void {
    if (this.#released) return;
    this.#released = true;
    this.#held.delete(this);
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#ops
      .cacheWrite({ type: 'lockRelease', key: this.key, token: this.token, ...this.holder() }, {})
      .catch(() => {});
  }

  private async releaseWithin(options: { timeoutMs?: number }): Promise<void> {
    if (this.#released) return;
    // A lease that ran out by this process's clock is lost, whatever the release finds.
    this.checkLease();
    this.#released = true;
    this.#held.delete(this);
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    await this.#renewing;
    if (this.#lostController.signal.aborted) return;
    const o = await this.#ops.cacheWrite(
      { type: 'lockRelease', key: this.key, token: this.token, ...this.holder() },
      options,
    );
    // Not this holder's any more (its lease had ended, another may have held it meanwhile): the
    // holder learns it from `lost`, which read false before.
    if ((o as Extract<CacheOutcome, { type: 'lockRelease' }> | undefined)?.released === false) this.lose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /** The holder id renewals and the release carry, so that the token alone renews or releases nothing. */
  private holder(): { holderId?: string } {
    return this.#holderId === undefined ? {} : { holderId: this.#holderId };
  }

  private scheduleRenewal(remainingMs: number): void {
    // A lease longer than a timer can hold is renewed sooner, not every millisecond.
    const everyMs = Math.min(TIMEOUT_MS_MAX, Math.max(1, Math.floor(this.#leaseMs / 3)));
    // Monotonic (a step of the wall clock must not stretch the lease), and counted from when a
    // renewal was sent: the leader renewed it after that, so the lease runs at least this long.
    // The grant's own lease counts from the grant: what it had left when the node answered.
    const clock = this.#clock;
    const renew = async () => {
      const sentMs = clock.monotonicMs();
      try {
        const o = await this.#ops.cacheWrite({
          type: 'lockRenew',
          key: this.key,
          token: this.token,
          ...this.holder(),
        });
        if (this.#lostController.signal.aborted) return;
        if ((o as Extract<CacheOutcome, { type: 'lockRenew' }>).renewed) this.#lastRenewedMs = sentMs;
        else
          this.lose(
            new HiqliteError(
              'HQL_TIMEOUT',
              `lock '${this.key}' was lost: a renewal was refused, the lock is no longer this holder's (its lease had ended on the leader, or the cache group was founded anew)`,
              { retryable: false },
            ),
          );
      } catch (e) {
        // A refusal for good (the node stopped serving, the client closed): no renewal will
        // come; the holder learns it now rather than when the lease would have run out.
        if (e instanceof HiqliteError && !e.retryable && e.code !== 'HQL_OUTCOME_UNKNOWN') this.lose();
        // Transient (a leader change): the next round tries again while the lease may still run.
        else this.checkLease();
      }
    };
    const tick = () => {
      this.#timer = null;
      // The process stood still past the lease (a long GC pause, a blocked event loop): the lease
      // is over (reading `lost` checks it), and a renewal now would be refused.
      if (this.#released || this.lost.aborted) return;
      // A renewal may hang (its leader died: the answer comes after the next election): `lost`
      // fires at the lease's end all the same, not at that answer, when another client may
      // already hold the lock. A late success does not bring the lock back.
      const leaseEnd = clock.setTimer(
        () => this.checkLease(),
        Math.max(1, Math.ceil(this.#lastRenewedMs + this.#leaseMs - clock.monotonicMs())),
        UNREF,
      );
      this.#renewing = renew().finally(() => {
        clock.clearTimer(leaseEnd);
        this.#renewing = null;
        if (this.#released || this.lost.aborted) return;
        // After a failed renewal the next one comes no later than the lease's end, so `lost`
        // fires when the lease runs out, not up to a third of it later.
        const leftMs = this.#lastRenewedMs + this.#leaseMs - clock.monotonicMs();
        this.#timer = clock.setTimer(tick, Math.max(1, Math.min(everyMs, Math.ceil(leftMs))), UNREF);
      });
    };
    // A grant that arrived with less than a third of its lease left is renewed at half of that.
    this.#timer = clock.setTimer(tick, Math.max(1, Math.min(everyMs, Math.floor(remainingMs / 2))), UNREF);
  }

  /**
   * The embedded node's cache group was founded anew (a majority of the nodes had restarted
   * without their in-memory state): the lock is gone with the group's state, and another holder
   * may take it in the new group at once (found from outside: `lost` fired only at the next
   * renewal, a third of the lease later, while another node held the lock).
   */
  [LOST_TO_REFOUND](): void {
    if (this.#released || this.#lostController.signal.aborted) return;
    if (!this.grantedBeforeRefound()) return;
    this.lose(
      new HiqliteError(
        'HQL_UNAVAILABLE',
        `lock '${this.key}' was lost: the cache group was founded anew (a majority of its nodes restarted without their in-memory state)`,
        { retryable: true },
      ),
    );
  }

  /**
   * Whether the cache group was founded anew since the grant: the embedded node's refound count
   * moved, a node told a remote client so, or a node tells a token floor above this lock's token
   * (a node restarted into a group founded anew says it once it applied that group's state,
   * where the event of the refound reached only the clients of the nodes that dropped it).
   */
  private grantedBeforeRefound(): boolean {
    if (this.#refounds !== undefined && this.#ops.cacheRefounds?.() !== this.#refounds) return true;
    return this.token < (this.#ops.cacheTokenFloor?.() ?? 0);
  }

  private lose(
    reason: HiqliteError = new HiqliteError('HQL_TIMEOUT', `the lease of lock '${this.key}' ended`, {
      retryable: false,
    }),
  ): void {
    this.#held.delete(this);
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#lostController.abort(reason);
  }
}

// ---------------------------------------------------------------------------------------------
// The API a client mixes in
// ---------------------------------------------------------------------------------------------

/** The cache methods of a client, built on `ops`. */
export class CacheApi {
  /** The locks granted to this client and not yet released or lost. */
  private readonly held = new Set<DistributedLock>();
  /** Set when the client's close() is called (closeCalled()). */
  private closing = false;
  /** `ops` behind the close gate: what every handle, lock and listener of this client uses. */
  private readonly ops: CacheOps;
  /** Whether the held locks are ended when the embedded node's cache group is founded anew. */
  private refoundHooked = false;

  /**
   * `clock`: what a held lock times its renewals by; `newHolderId`: the id of each lock attempt
   * (random; a retry of one attempt keeps its id). Tests and the simulator give their own.
   */
  constructor(
    ops: CacheOps,
    private readonly clock: Clock = systemClock,
    private readonly newHolderId: () => string = randomUUID,
  ) {
    this.ops = closeGate(ops, () => this.closing);
  }

  /** True from the call of the client's close() on. */
  get closeCalled(): boolean {
    return this.closing;
  }

  /**
   * The client's close() was called: from now on every cache call is refused with HQL_CLOSED
   * (synchronously decided, so a call made right after close() is never carried out), except the
   * releases of the locks it holds, which this starts: all at once, each within
   * LOCK_RELEASE_ON_CLOSE_MS. Never throws.
   */
  async beginClose(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([...this.held].map((l) => l[RELEASE_ON_CLOSE]()));
  }

  cache<V = unknown>(name: string): CacheHandle<V> {
    return new CacheHandle<V>(this.ops, nameArg(name, 'a cache name'));
  }

  counter(name: string): CounterHandle {
    return new CounterHandle(this.ops, nameArg(name, 'a counter name'));
  }

  /** Removes every cache (not the counters); resolves with how many entries were removed. */
  async clearCaches(): Promise<number> {
    const o = await this.ops.cacheWrite({ type: 'clearAll', counters: false });
    return (o as Extract<CacheOutcome, { type: 'clearAll' }>).removed;
  }

  /** Sends a notification to every listener of `channel` on every member; resolves with its log index. */
  async notify(channel: string, payload: unknown): Promise<number> {
    const o = await this.ops.cacheWrite({
      type: 'notify',
      channel: nameArg(channel, 'notify: channel'),
      payload: encodeCacheValue(payload),
    });
    return (o as Extract<CacheOutcome, { type: 'notify' }>).index;
  }

  /**
   * Notifications of `channel` (or of every channel) applied from now on, in log order. A
   * listener running when close() is called ends (its loop exits); one asked for after it is
   * refused with HQL_CLOSED, like every call (it ended at once, as if nothing had been wrong).
   */
  listen<P = unknown>(channel?: string): AsyncIterableIterator<ListenNotification<P>> & AsyncDisposable {
    if (this.closing) throw clientClosed();
    return listenIterator<P>(
      this.ops.cacheListen(channel === undefined ? null : nameArg(channel, 'listen: channel')),
    );
  }

  /** Waits for the lock (first come, first served) and holds it, renewing its lease, until release(). */
  async lock(key: string, options: LockOptions = {}): Promise<DistributedLock> {
    optionsArg(options, LOCK_OPTIONS, 'lock');
    signalArg(options.signal, 'lock');
    const leaseMs = options.leaseMs === undefined ? LOCK_LEASE_MS_DEFAULT : options.leaseMs;
    stringArg(key, 'lock: key');
    lockDurations(key, leaseMs, options.waitMs);
    // Asked with a signal that already fired: refused on every client alike, nothing queued
    // (found from outside: an embedded node granted the free lock, a remote client refused it).
    if (options.signal?.aborted === true) {
      throw abortedError(`waiting for lock '${key}' was aborted`);
    }
    const sentAtMs = this.clock.monotonicMs();
    // The caller's wait is kept here, whatever holds the node's answer up (a leader change: the
    // acquire's proposal, the withdrawal): at waitMs (and LOCK_WAIT_GRACE_MS for the node's own
    // answer to arrive) the wait is aborted, the waiter withdrawn behind the call, and the call
    // ends with HQL_TIMEOUT (found from outside: waits of 2,000 ms ended after up to 3.6 s).
    const waitMs = options.waitMs;
    const deadline =
      waitMs !== undefined && waitMs + LOCK_WAIT_GRACE_MS <= TIMEOUT_MS_MAX ? new AbortController() : null;
    const timer =
      deadline === null
        ? null
        : this.clock.setTimer(() => deadline.abort(), (waitMs ?? 0) + LOCK_WAIT_GRACE_MS, {
            keepAlive: false,
          });
    const signal =
      deadline === null
        ? options.signal
        : options.signal === undefined
          ? deadline.signal
          : AbortSignal.any([options.signal, deadline.signal]);
    let grant: LockGrantInfo | null;
    try {
      grant = await this.ops.cacheLock(
        {
          key,
          holderId: this.newHolderId(),
          leaseMs,
          ...(waitMs === undefined ? {} : { waitMs }),
        },
        signal,
      );
    } catch (e) {
      if (
        deadline?.signal.aborted === true &&
        // Read again: TypeScript narrowed it from the check before the await.
        (options.signal as AbortSignal | undefined)?.aborted !== true &&
        e instanceof HiqliteError &&
        e.code === 'HQL_ABORTED'
      )
        throw notGranted(key, waitMs);
      throw e;
    } finally {
      if (timer !== null) this.clock.clearTimer(timer);
    }
    if (grant === null) {
      // A node that ended the wait without a grant: said with the caller's wait (it said "waitMs: 0"
      // for a wait of 2000 ms ended by an election).
      throw notGranted(key, waitMs);
    }
    return this.holding(key, grant, leaseMs, sentAtMs);
  }

  /** The lock if it is free now, else null (never waits in the queue). */
  async tryLock(key: string, options: { leaseMs?: number } = {}): Promise<DistributedLock | null> {
    optionsArg(options, TRY_LOCK_OPTIONS, 'tryLock');
    const leaseMs = options.leaseMs === undefined ? LOCK_LEASE_MS_DEFAULT : options.leaseMs;
    stringArg(key, 'tryLock: key');
    lockDurations(key, leaseMs, undefined);
    const sentAtMs = this.clock.monotonicMs();
    const grant = await this.ops.cacheLock({ key, holderId: this.newHolderId(), leaseMs, waitMs: 0 });
    return grant === null ? null : this.holding(key, grant, leaseMs, sentAtMs);
  }

  /**
   * The lock `grant` gave this client, renewing its lease from what the grant had left. A grant
   * that arrives after close() was called (asked before) is released at once and the caller told
   * HQL_CLOSED: the client could not renew it, and the next waiter need not wait out its lease.
   */
  private holding(key: string, grant: LockGrantInfo, leaseMs: number, sentAtMs: number): DistributedLock {
    // The lease counts from the earliest moment the node can have answered: the request's send
    // plus the time the node says it held it. What the answer spent travelling (and the request,
    // to the node) is taken off the lease, never added to it: a lease shorter than that trip
    // ended before the grant arrived, while another holder could already take the lock (found
    // from outside: a 2 ms lease handed out with `lost` false and the lock free for the next).
    const travelMs = Math.max(0, this.clock.monotonicMs() - sentAtMs - waitedOf(grant));
    const remainingMs = remainingOf(grant, leaseMs) - travelMs;
    const holderId = typeof grant.holderId === 'string' ? grant.holderId : undefined;
    const lock = new DistributedLock(
      this.ops,
      key,
      grant.token,
      leaseMs,
      this.held,
      remainingMs,
      this.clock,
      holderId,
    );
    if (this.closing) {
      lock[RELEASE_ON_CLOSE]().catch(() => {}); // not released: its lease lapses, as when the process dies
      throw clientClosed();
    }
    // Hooked at the first grant (the client's node runs by then, and a client that never locks
    // needs no hook).
    if (!this.refoundHooked && this.ops.onCacheRefound !== undefined) {
      this.refoundHooked = true;
      this.ops.onCacheRefound(() => {
        for (const l of [...this.held]) l[LOST_TO_REFOUND]();
      });
      this.ops.watchHeldLocks?.(() => this.held.size);
    }
    if (remainingMs < LOCK_REMAINING_MS_MIN) {
      lock[ABANDON]();
      throw new HiqliteError(
        'HQL_TIMEOUT',
        `lock '${key}': its lease of ${leaseMs} ms ran out before the grant reached this client (the round trip took ${Math.round(travelMs)} ms): use a longer lease`,
        { retryable: false },
      );
    }
    return lock;
  }
}

/** What every call made after the client's close() was called gets. */
export function clientClosed(): HiqliteError {
  return new HiqliteError('HQL_CLOSED', 'the client is closed (close() was called)', { retryable: false });
}

/** `ops`, refusing every call once `closed()` but the releases of held locks (close() makes them). */
function closeGate(ops: CacheOps, closed: () => boolean): CacheOps {
  return {
    cacheWrite: (command, options) =>
      closed() && command.type !== 'lockRelease'
        ? Promise.reject(clientClosed())
        : ops.cacheWrite(command, options),
    cacheRead: (read, consistency) =>
      closed() ? Promise.reject(clientClosed()) : ops.cacheRead(read, consistency),
    cacheLock: (request, signal) =>
      closed() ? Promise.reject(clientClosed()) : ops.cacheLock(request, signal),
    cacheListen: (channel) => {
      if (!closed()) return ops.cacheListen(channel);
      const error = clientClosed();
      return { next: () => Promise.reject(error), close: () => {} };
    },
    cacheLocalEntry: (cache, key) => {
      if (closed()) throw clientClosed();
      return ops.cacheLocalEntry(cache, key);
    },
    ...(ops.cacheRefounds === undefined
      ? {}
      : { cacheRefounds: () => (ops.cacheRefounds as () => number)() }),
    ...(ops.cacheTokenFloor === undefined
      ? {}
      : { cacheTokenFloor: () => (ops.cacheTokenFloor as () => number)() }),
    ...(ops.watchHeldLocks === undefined
      ? {}
      : {
          watchHeldLocks: (count: () => number) => (ops.watchHeldLocks as (c: () => number) => void)(count),
        }),
    ...(ops.onCacheRefound === undefined
      ? {}
      : { onCacheRefound: (hook: () => void) => (ops.onCacheRefound as (h: () => void) => void)(hook) }),
  };
}

/** The lease a grant had left when its node answered (the whole lease from a node that does not say). */
/** The node's waitedMs (how long it held the request), or the whole round trip from an older node. */
function waitedOf(grant: LockGrantInfo): number {
  const w = (grant as { waitedMs?: unknown }).waitedMs;
  return typeof w === 'number' && Number.isFinite(w) && w >= 0 ? w : Number.POSITIVE_INFINITY;
}

function remainingOf(grant: LockGrantInfo, leaseMs: number): number {
  const r = (grant as { remainingMs?: unknown }).remainingMs;
  return typeof r === 'number' && Number.isFinite(r) ? r : leaseMs;
}

const PUT_OPTIONS = ['ttlMs'];
const GET_OPTIONS = ['consistency'];
const LOCK_OPTIONS = ['leaseMs', 'waitMs', 'signal'];
/** How long after a lock wait's `waitMs` its client stops waiting for the node's own answer. */
const LOCK_WAIT_GRACE_MS = 100;

/** A lock wait that ended without a grant (the node's own words: cache-locks.ts). */
function notGranted(key: string, waitMs: number | undefined): HiqliteError {
  return new HiqliteError('HQL_TIMEOUT', `lock '${key}' was not granted within ${waitMs ?? 0} ms`, {
    retryable: true,
  });
}
const TRY_LOCK_OPTIONS = ['leaseMs'];

function ttl(options: CachePutOptions, what: string, where: string): { ttlMs?: number } {
  optionsArg(options, PUT_OPTIONS, what, where);
  return options.ttlMs === undefined ? {} : { ttlMs: durationArg(options.ttlMs, 'ttlMs', 1) };
}
