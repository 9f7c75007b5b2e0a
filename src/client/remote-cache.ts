/**
 * The cache primitives (`CacheOps`, cache-client.ts) of a remote client, over its ClusterLink:
 *
 * - writes: the command under this client's own session (a `c-` client id, as its SQL writes),
 *   proposed to group `cache` like SQL writes (the node forwards them to the cache leader, or
 *   the link follows it); retried after failures and leader changes unchanged, so the state
 *   machine applies each once; HQL_OUTCOME_UNKNOWN when no attempt got a final answer after one
 *   may have reached the log;
 * - reads: on the node the client is connected to (`local`), or after its ReadIndex round;
 * - locks: the node waits for the grant (`cacheLock`); every attempt has a holder id of its own
 *   (an attempt whose connection failed is withdrawn by its node, or its lease ends unrenewed);
 * - listen: a stream pushed on the API connection, resumed after a reconnect from the last seq
 *   seen (any node holds the same recent notifications); what no node holds any more ends the
 *   listener with HQL_LAGGED and the number missed.
 */
import { randomBytes } from 'node:crypto';
import { raceAbort } from '../lib/abort.js';
import { abortedError, HiqliteError } from '../lib/errors.js';
import type { CacheConsistency, CacheRead, CacheReadValue } from '../node/cache-group.js';
import type { ListenItem } from '../node/cache-listeners.js';
import type { LockGrantInfo, LockRequest } from '../node/cache-locks.js';
import { ListenQueue } from '../node/listen-queue.js';
import { SessionPool } from '../node/session-pool.js';
import {
  API_EVENT_CACHE_REFOUNDED,
  API_EVENT_CACHE_TOKEN_FLOOR,
  type ApiPush,
} from '../protocol/api-codec.js';
import { CACHE_STRING_LENGTH_MAX } from '../protocol/cache-api-codec.js';
import { type CacheCommand, encodeCacheCommand } from '../sm/cache/command.js';
import { CacheError, cacheErrorFromInfo } from '../sm/cache/errors.js';
import { CACHE_LIMIT_BOUNDS } from '../sm/cache/options.js';
import type { CacheOutcome, CacheResult } from '../sm/cache/result.js';
import { CLIENT_SESSION_PREFIX } from '../sm/sql/client-proposal.js';
import { type CacheCallOptions, type CacheOps, type ListenSource, noLocalReplica } from './cache-client.js';
import type { LocalCacheEntry } from './cache-local-values.js';
import type { ClusterLink } from './cluster-link.js';

export interface RemoteCacheOptions {
  /** Concurrent cache writes (each holds a session lane). */
  readonly writesMax: number;
  /** Notifications one listener may have unread here before it gets HQL_LAGGED. */
  readonly listenBufferMax: number;
  /** Their bytes before it does (notificationBytes). */
  readonly listenBufferBytesMax: number;
  /** How long a listener tries to resume after its connection was lost, before it fails. */
  readonly listenResumeTimeoutMs: number;
}

/**
 * A lock wait without `waitMs` is one request without a deadline: the waiter keeps its place in
 * the queue for as long as its connection lives. It was asked for in rounds of 10 minutes, each
 * withdrawn and queued again at the back: a waiter lost its place to every later one. What
 * withdraws a waiter whose process is gone is the connection's close (a FIN or RST, or the
 * keepalive: the node closes a connection silent for `api_idle_timeout_ms`, and the client's
 * pings are what keep it open, like renewals of a lease on the wait).
 */

export class RemoteCacheOps implements CacheOps {
  private readonly sessions: SessionPool;
  /** How many times a node told this client its cache group was founded anew. */
  private refounds = 0;
  private readonly refoundHooks = new Set<() => void>();

  constructor(
    private readonly link: ClusterLink,
    private readonly o: RemoteCacheOptions,
  ) {
    this.sessions = new SessionPool(
      `${CLIENT_SESSION_PREFIX}${randomBytes(16).toString('hex')}`,
      o.writesMax,
    );
    // A node whose in-memory cache group was founded anew tells its clients (ApiEvent): every
    // lock granted before is gone, and the held ones are lost now, not at their next renewal
    // (a third of the lease later, while another holder may have the lock in the new group).
    // A node restarted into a group founded anew tells its token floor once it applied that
    // group's state (and at every connect): the held locks below it are gone too.
    link.onEvent((e) => {
      if (e.event === API_EVENT_CACHE_REFOUNDED) this.refounds++;
      // The link passes on a raise of the floor only: the held locks check themselves.
      if (e.event === API_EVENT_CACHE_REFOUNDED || e.event === API_EVENT_CACHE_TOKEN_FLOOR)
        for (const hook of this.refoundHooks) hook();
    });
  }

  /** CacheOps.watchHeldLocks: while the client holds locks, the link reconnects at once. */
  watchHeldLocks(count: () => number): void {
    this.link.keepConnectedWhile(() => count() > 0);
  }

  /** CacheOps.cacheTokenFloor: the highest token floor a node told this client. */
  cacheTokenFloor(): number {
    return this.link.cacheTokenFloor();
  }

  /** CacheOps.cacheRefounds: the events of a cache group founded anew this client was told. */
  cacheRefounds(): number {
    return this.refounds;
  }

  /** CacheOps.onCacheRefound. */
  onCacheRefound(hook: () => void): void {
    this.refoundHooks.add(hook);
  }

  async cacheWrite(command: CacheCommand, options: CacheCallOptions = {}): Promise<CacheOutcome> {
    const { index: _index, result } = await this.cacheWriteIndexed(command, options);
    if (!result.ok) throw cacheErrorFromInfo(result.error);
    return result.value;
  }

  /** A cache command, exactly once: its log index and result (a failed command is a result). */
  async cacheWriteIndexed(
    command: CacheCommand,
    options: CacheCallOptions = {},
  ): Promise<{ index: number; result: CacheResult }> {
    // Once sent, a write cannot be taken back: the signal is looked at before only.
    if (options.signal?.aborted === true) throw abortedError('the cache call was aborted');
    const { lane, seq } = this.sessions.acquire();
    try {
      const data = encodeCacheCommand({
        nowMs: Date.now(),
        session: { clientId: lane.clientId, seq },
        command,
      });
      const out = (await this.link.call(
        { op: 'propose', group: 'cache', data },
        {
          kind: 'write',
          route: 'leader',
          ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        },
      )) as { index: number; result: CacheResult };
      return { index: out.index, result: reviveResult(out.result) };
    } finally {
      this.sessions.release(lane);
    }
  }

  async cacheRead(read: CacheRead, consistency: CacheConsistency): Promise<CacheReadValue> {
    // Nothing is stored under a name or key longer than any can be (and a request could not
    // carry it): the answer an embedded node gives, without asking.
    const names =
      read.type === 'counterGet'
        ? [read.counter, read.key]
        : read.type === 'get'
          ? [read.cache, read.key]
          : [read.cache];
    if (names.some(beyondAnyKey)) return read.type === 'entries' ? [] : null;
    const v = await this.link.call({ op: 'cacheRead', read, consistency }, { kind: 'read', route: 'any' });
    // msgpack gives small int64 values back as numbers: the API promises bigint.
    if (read.type === 'counterGet') return typeof v === 'number' ? BigInt(v) : (v as bigint | null);
    return v as CacheReadValue;
  }

  async cacheLock(request: LockRequest, signal?: AbortSignal): Promise<LockGrantInfo | null> {
    if (beyondAnyKey(request.key)) throw longerThanAnyKey('lock key', request.key);
    // Earlier attempts that may still wait in the lock's queue (replicated state): their node
    // withdraws them when their connection closes, but a node that died or shut down cannot, and
    // the lock would be granted to a waiter nobody is behind, held for the lease it asked for.
    const earlier: string[] = [];
    try {
      return await this.lockAttempts(request, earlier, signal);
    } finally {
      // Not waited for: a grant's lease runs meanwhile.
      if (earlier.length > 0) void this.withdraw(request.key, earlier);
    }
  }

  /**
   * Withdraws `holderIds` from the lock's queue (lockCancel: a waiter leaves it, a holder
   * releases it), through any node that answers; those that could not be withdrawn stay in the list.
   */
  private async withdraw(key: string, holderIds: string[], timeoutMs?: number): Promise<void> {
    for (const holderId of [...holderIds]) {
      try {
        await this.cacheWrite(
          { type: 'lockCancel', key, holderId },
          timeoutMs === undefined ? {} : { timeoutMs },
        );
        // Another withdrawal of the same list may have taken it out meanwhile.
        const i = holderIds.indexOf(holderId);
        if (i >= 0) holderIds.splice(i, 1);
      } catch {
        // Kept: tried again before the next attempt, and once the wait ends.
      }
    }
  }

  private async lockAttempts(
    request: LockRequest,
    earlier: string[],
    signal?: AbortSignal,
  ): Promise<LockGrantInfo | null> {
    const startedMs = performance.now();
    for (let attempt = 0; ; attempt++) {
      const leftMs =
        // Whole ms on the wire (the node checks it is an integer), never past the caller's wait.
        request.waitMs === undefined
          ? null
          : Math.max(0, Math.ceil(request.waitMs - (performance.now() - startedMs)));
      // Each attempt its own holder id: an earlier attempt may still be withdrawn on its node.
      const holderId = attempt === 0 ? request.holderId : `${request.holderId}.${attempt}`;
      const waitMs = leftMs ?? undefined;
      const attemptSentMs = performance.now();
      try {
        const grant = (await this.link.call(
          {
            op: 'cacheLock',
            key: request.key,
            holderId,
            leaseMs: request.leaseMs,
            ...(waitMs === undefined ? {} : { waitMs }),
            // The node answers within what is left of this deadline (ClusterLink sets it: the
            // try-lock and the wait for the cluster's clock keep it too).
            ...(leftMs === null ? {} : { timeoutMs: leftMs + lockProposalsMs(leftMs) }),
          },
          {
            // Sent at most once: the node answers the wait's outcome; a lost connection is retried here.
            kind: 'once',
            route: 'any',
            // The node ends the wait before this deadline (cache-serve.ts) and answers; without
            // waitMs there is none (the connection's close ends the wait on both sides).
            timeoutMs: leftMs === null ? Number.POSITIVE_INFINITY : leftMs + lockProposalsMs(leftMs),
            ...(signal === undefined ? {} : { signal }),
          },
        )) as LockGrantInfo | null;
        // The node held this attempt for its waitedMs; the earlier attempts' time was no travel
        // of this grant either: the caller (CacheApi.holding) counts from the first send and takes
        // what is not waiting off the lease (found from outside: a wait retried after its node's
        // cache group was founded anew got a 10 s lease taken as all spent "in transit").
        return grant === null || typeof grant.waitedMs !== 'number'
          ? grant
          : { ...grant, waitedMs: attemptSentMs - startedMs + grant.waitedMs };
      } catch (e) {
        if (!(e instanceof HiqliteError)) throw e;
        // Unless its node answered (a timeout: the node withdrew it first; a refusal), the attempt
        // may wait on in the queue, its node gone (a lockCancel of an id not there changes nothing).
        const answered = e.code === 'HQL_TIMEOUT' || (!e.retryable && e.code !== 'HQL_OUTCOME_UNKNOWN');
        if (!answered) earlier.push(holderId);
        if (e.code === 'HQL_ABORTED' || signal?.aborted === true) {
          throw abortedError(`waiting for lock '${request.key}' was aborted`, e);
        }
        const waitOver = request.waitMs !== undefined && performance.now() - startedMs >= request.waitMs;
        // A connection was lost, a node was unavailable: again (a new holder id, at the back).
        // (A lease too short for any grant to reach its holder is HQL_TIMEOUT, not retryable.)
        const again =
          (e.code === 'HQL_TIMEOUT' && e.retryable && request.waitMs === undefined) ||
          e.code === 'HQL_OUTCOME_UNKNOWN' ||
          (e.retryable && e.code !== 'HQL_TIMEOUT');
        if (!again) throw e;
        if (waitOver && e.code !== 'HQL_OUTCOME_UNKNOWN') throw e;
        // The wait is over, its last attempt's connection lost: that attempt is withdrawn as the
        // call ends, so the caller holds nothing — not granted, in the node's words.
        if (waitOver)
          throw new HiqliteError(
            'HQL_TIMEOUT',
            `lock '${request.key}' was not granted within ${request.waitMs} ms (its last attempt: ${e.message})`,
            { retryable: true, cause: e },
          );
        if (attempt >= 1000) throw e;
        // Withdrawn before the next attempt queues again — within the caller's wait: its signal
        // (CacheApi.lock aborts it at waitMs) and what is left of waitMs bound the pause and the
        // withdrawal, whose ids stay listed if it does not get through (withdrawn once the call
        // ends). Found from outside: with the client's only node killed, a wait of 2,000 ms
        // ended after 10.4 s, the request timeout of the withdrawal's write.
        const pauseMs = Math.min(500, 20 * 2 ** Math.min(attempt, 5));
        const leftAfterMs =
          request.waitMs === undefined
            ? undefined
            : Math.max(1, Math.ceil(request.waitMs - (performance.now() - startedMs) - pauseMs));
        await raceAbort(
          (async () => {
            await new Promise((r) => setTimeout(r, pauseMs));
            await this.withdraw(request.key, earlier, leftAfterMs);
          })(),
          signal,
          () => abortedError(`waiting for lock '${request.key}' was aborted`, e),
        );
      }
    }
  }

  cacheLocalEntry(_cache: string, _key: string): LocalCacheEntry | null {
    throw noLocalReplica();
  }

  cacheListen(channel: string | null): ListenSource {
    return new RemoteListen(this.link, channel, this.o);
  }
}

/**
 * Longer than any cache key, name or channel can be (`keyBytesMax` is at most 64 KiB), and
 * longer than a request to a node carries (CACHE_STRING_LENGTH_MAX UTF-16 units, each at least
 * one byte in UTF-8).
 */
function beyondAnyKey(s: string | null): boolean {
  return s !== null && s.length > CACHE_STRING_LENGTH_MAX;
}

/** The state machine's refusal of such a string (HQL_CACHE_TOO_LARGE), said without asking a node. */
function longerThanAnyKey(what: string, s: string): CacheError {
  const max = CACHE_LIMIT_BOUNDS.keyBytesMax[1];
  return new CacheError({
    code: 'HQL_CACHE_TOO_LARGE',
    message: `${what} of ${Buffer.byteLength(s)} bytes is larger than any can be (keyBytesMax is at most ${max} bytes)`,
    limit: 'keyBytesMax',
  });
}

/** What a lock request needs besides its wait: its acquire and, on a timeout, its cancel proposals. */
function lockProposalsMs(waitMs: number): number {
  return Math.max(2000, Math.min(10_000, Math.ceil(waitMs / 10)));
}

/** A result that crossed the API protocol: small int64 counter values arrive as numbers. */
function reviveResult(r: CacheResult): CacheResult {
  if (!r.ok) return r;
  const v = r.value;
  if ((v.type === 'counterAdd' || v.type === 'counterGet') && typeof v.value === 'number')
    return { ok: true, value: { ...v, value: BigInt(v.value) } } as CacheResult;
  return r;
}

const NEW_LISTENER_FINAL: ReadonlySet<string> = new Set(['HQL_OVERLOADED']);

/** One remote listener: a bounded queue fed by pushes, resumed from the last seq on reconnects. */
class RemoteListen implements ListenSource {
  private readonly queue: ListenQueue;
  /** The seq of the last notification received (or where the stream started): resume after it. */
  private lastSeq: number | undefined;
  private handle: { stop(): Promise<void> } | null = null;
  /** Counts opens: pushes and losses of an earlier (stopped) open are ignored. */
  private generation = 0;
  /** The open under way (until a node answered it), which close() waits for. */
  private opening: Promise<void> | null = null;
  /** Stops the opens' retries when the listener is closed. */
  private readonly closing = new AbortController();

  constructor(
    private readonly link: ClusterLink,
    private readonly channel: string | null,
    private readonly o: RemoteCacheOptions,
  ) {
    this.queue = new ListenQueue(o.listenBufferMax, undefined, o.listenBufferBytesMax);
    if (beyondAnyKey(channel)) this.queue.fail(longerThanAnyKey('channel', channel as string));
    else this.open();
  }

  next(): Promise<ListenItem> {
    return this.queue.next();
  }

  /**
   * Resolves once the node dropped the listener (or could not be told). An open still under way
   * is stopped (no more attempts) and waited for: a node that registered it meanwhile has
   * dropped it too when this resolves (else its slot of `cache_listeners_max` was held a moment
   * after return()).
   */
  close(): Promise<void> {
    const stopped = this.stopRemote();
    const opening = this.opening;
    this.queue.close();
    this.closing.abort();
    return opening === null ? stopped : Promise.all([stopped, opening]).then(() => {});
  }

  private open(): void {
    const generation = ++this.generation;
    const afterSeq = this.lastSeq;
    const opening = this.link
      .listen(
        { channel: this.channel, ...(afterSeq === undefined ? {} : { afterSeq }) },
        (p) => {
          if (generation === this.generation) this.onPush(p);
        },
        () => {
          // The connection is gone: resume on the next node, after the last seq seen.
          if (generation !== this.generation || this.queue.ended) return;
          this.handle = null;
          this.open();
        },
        {
          timeoutMs: this.o.listenResumeTimeoutMs,
          signal: this.closing.signal,
          // A new listener the node refuses as one too many (cache_listeners_max) is told at
          // once, as on an embedded node and over HTTP: it was retried for the resume window
          // (30 s), receiving nothing. A resume keeps trying (listeners on that node may leave).
          ...(afterSeq === undefined ? { finalCodes: NEW_LISTENER_FINAL } : {}),
        },
      )
      .then(
        (h) => {
          if (generation !== this.generation || this.queue.ended) return h.stop();
          this.handle = h;
          if (this.lastSeq === undefined) this.lastSeq = h.afterSeq;
        },
        (e: unknown) => {
          if (generation !== this.generation) return;
          // A resume point the cluster never sent (its in-memory caches were lost in a full
          // restart, or the nodes now form another cluster): what was missed cannot be counted,
          // but it is a lag, not a mistake of the caller's (it ended with HQL_INVALID_PARAMS).
          if (
            afterSeq !== undefined &&
            e instanceof HiqliteError &&
            e.code === 'HQL_INVALID_PARAMS' &&
            /cannot resume after notification/.test(e.message)
          ) {
            this.queue.fail(
              new HiqliteError(
                'HQL_LAGGED',
                `the listener cannot resume after notification ${afterSeq}: the cluster no longer knows it (its in-memory caches were lost in a full restart, or the nodes now form another cluster), so how many were missed is unknown; listen again`,
                { retryable: true, cause: e },
              ),
            );
            return;
          }
          this.queue.fail(e instanceof Error ? e : new Error(String(e)));
        },
      )
      .finally(() => {
        if (this.opening === opening) this.opening = null;
      });
    this.opening = opening;
  }

  private onPush(p: ApiPush): void {
    if (this.queue.ended) return;
    if ('items' in p) {
      for (const n of p.items) {
        // A resume on a node that applied less than the last one may repeat what was seen.
        if (this.lastSeq !== undefined && n.seq <= this.lastSeq) continue;
        this.lastSeq = n.seq;
        if (!this.queue.offer(n)) {
          void this.stopRemote();
          return;
        }
      }
      return;
    }
    if ('lagged' in p) {
      this.queue.lagged(p.lagged);
      void this.stopRemote();
      return;
    }
    if (p.end.retryable) {
      // The node (or a proxy) ended the stream for a passing reason: resume.
      void this.stopRemote();
      this.open();
      return;
    }
    void this.stopRemote();
    this.queue.fail(new HiqliteError(p.end.code, p.end.message, { retryable: false }));
  }

  private stopRemote(): Promise<void> {
    this.generation++;
    const stopped = this.handle?.stop() ?? Promise.resolve();
    this.handle = null;
    return stopped;
  }
}
