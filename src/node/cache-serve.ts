/**
 * The node's side of the cache ops of the API port: `cacheRead` and `cacheLock` of the binary
 * protocol, `listen` streams (binary pushes and SSE), and the HTTP cache routes, all served by
 * this node's cache group (cache-group.ts). Cache writes of clients are `propose` with group
 * `cache` (HiqliteNode.handleApi), their session inside the bytes.
 */
import { raceAbort, whenAborted } from '../lib/abort.js';
import { abortedError, HiqliteError } from '../lib/errors.js';
import type { CacheApiRequest } from '../protocol/api-codec.js';
import type { CacheGroup } from './cache-group.js';
import type { CacheHttpOps } from './cache-http.js';
import { cacheListenStream, type ListenStream } from './listen-stream.js';

/** The cache group when it runs; HQL_UNAVAILABLE (retryable) while the node starts. */
export type CacheGroupOf = () => CacheGroup;

export function runningCacheGroup(get: () => CacheGroup | undefined, nodeId: number): CacheGroupOf {
  return () => {
    const g = get();
    if (g === undefined || !g.running)
      throw new HiqliteError('HQL_UNAVAILABLE', `node ${nodeId} has no running cache group yet`, {
        retryable: true,
      });
    return g;
  };
}

/**
 * `cacheRead` / `cacheLock` of a client. A lock wait without `waitMs` (or a longer one) ends
 * before the request's deadline so that its answer (HQL_TIMEOUT: ask again) reaches the client
 * in time; the waiter is withdrawn first (lockCancel). A `cancel` of the request, or the
 * connection's close, withdraws it as well (`signal`).
 */
export async function serveCacheRequest(
  groupOf: CacheGroupOf,
  req: Extract<CacheApiRequest, { op: 'cacheRead' | 'cacheLock' }>,
  signal: AbortSignal,
  clock: ClusterClockWait = NO_CLOCK_WAIT,
): Promise<unknown> {
  if (req.op === 'cacheLock' && req.waitMs === 0 && req.timeoutMs !== undefined)
    return tryLockWithin(groupOf, req, req.timeoutMs, signal, clock);
  // The cluster's clock first (a node cut off for a while asks its peers again), within what the
  // request's deadline leaves: HQL_TIMEOUT, retryable, rather than an answer after the client
  // gave up on it.
  // What is left for the wait after the acquire and (on a timeout) the cancel proposals.
  let budgetMs = req.timeoutMs === undefined ? undefined : answerBudgetMs(req.timeoutMs);
  const ready = clock.ready();
  if (ready !== null) {
    if (budgetMs === undefined) await ready;
    else budgetMs = await clock.waitReady(budgetMs);
  }
  const group = groupOf();
  if (req.op === 'cacheRead') return group.read(req.read, req.consistency, budgetMs);
  let waitMs = req.waitMs;
  if (budgetMs !== undefined) waitMs = Math.min(waitMs ?? budgetMs, Math.floor(budgetMs));
  return group.lock(
    {
      key: req.key,
      holderId: req.holderId,
      leaseMs: req.leaseMs,
      ...(waitMs === undefined ? {} : { waitMs }),
    },
    signal,
  );
}

/**
 * A client's try-lock (`waitMs: 0`), answered before the request's deadline: when its acquire
 * cannot commit in time (no leader), HQL_UNAVAILABLE, retryable — whether the lock is free is not
 * known — and the acquire, should it commit later, is withdrawn then (LockWaiters). It ran to the
 * node's own write timeout, past the client's deadline, which then reported HQL_OUTCOME_UNKNOWN
 * "the connection failed", not retryable (found from outside, right after a cache group was
 * founded anew, while the client retried a lost lock as HQL_UNAVAILABLE invites).
 */
async function tryLockWithin(
  groupOf: CacheGroupOf,
  req: Extract<CacheApiRequest, { op: 'cacheLock' }>,
  timeoutMs: number,
  signal: AbortSignal,
  clock: ClusterClockWait,
): Promise<unknown> {
  const budgetMs = answerBudgetMs(timeoutMs);
  const stop = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stop.abort();
  }, budgetMs);
  timer.unref();
  const stopForwarding = whenAborted(signal, () => stop.abort());
  try {
    const ready = clock.ready();
    if (ready !== null) await raceAbort(ready, stop.signal, () => abortedError('the try-lock was stopped'));
    return await groupOf().lock(
      { key: req.key, holderId: req.holderId, leaseMs: req.leaseMs, waitMs: 0 },
      stop.signal,
    );
  } catch (e) {
    if (timedOut && !signal.aborted && e instanceof HiqliteError && e.code === 'HQL_ABORTED') {
      throw new HiqliteError(
        'HQL_UNAVAILABLE',
        `tryLock '${req.key}': the cache group could not answer within ${budgetMs} ms (no leader, or the cluster's clock not known: a majority of the nodes must answer), so whether the lock is free is not known: try again`,
        { retryable: true },
      );
    }
    throw e;
  } finally {
    clearTimeout(timer);
    stopForwarding();
  }
}

/** When the cluster's clock can be told (PeerClocks): a node's cache writes and reads wait for it. */
export interface ClusterClockWait {
  ready(): Promise<void> | null;
  waitReady(timeoutMs: number): Promise<number>;
}

const NO_CLOCK_WAIT: ClusterClockWait = { ready: () => null, waitReady: async (t) => t };

/** What a request's deadline leaves for the node's own answer to reach the client: a tenth, at most 2 s. */
function answerBudgetMs(timeoutMs: number): number {
  return Math.max(1, timeoutMs - Math.min(2000, Math.ceil(timeoutMs / 10)));
}

/**
 * A listen stream of this node (binary `listen`, SSE). A resume point past the last notification
 * this node applied is either one it has not applied yet (the client listened on a node ahead of
 * it: after a ReadIndex round it has) or one this cluster never sent (a made-up Last-Event-ID,
 * one from another cluster, or from before a full restart of in-memory caches). The latter is
 * refused: the subscription would pass every notification up to that seq in silence.
 */
export async function nodeListen(
  groupOf: CacheGroupOf,
  channel: string | null,
  afterSeq: number | undefined,
): Promise<ListenStream> {
  if (afterSeq !== undefined && afterSeq > (await groupOf().lastNotificationSeq('local'))) {
    const last = await groupOf().lastNotificationSeq('linearizable');
    if (afterSeq > last)
      throw new HiqliteError(
        'HQL_INVALID_PARAMS',
        `cannot resume after notification ${afterSeq}: the cluster has sent ${last} (the seq comes from elsewhere, another cluster or caches lost in a full restart): listen again without it`,
        { retryable: false },
      );
  }
  return cacheListenStream(groupOf(), { channel, ...(afterSeq === undefined ? {} : { afterSeq }) });
}

/** The HTTP cache routes on this node: writes under the node's own session. */
export function nodeCacheHttpOps(groupOf: CacheGroupOf): CacheHttpOps {
  return {
    write: (command, signal) => groupOf().writeOk(command, { signal }),
    read: async (read, consistency) => groupOf().read(read, consistency),
    listen: (channel, afterSeq) => nodeListen(groupOf, channel, afterSeq),
  };
}
