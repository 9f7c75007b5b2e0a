/**
 * The node's side of the cache ops of the API port: `cacheRead` and `cacheLock` of the binary
 * protocol, `listen` streams (binary pushes and SSE), and the HTTP cache routes, all served by
 * this node's cache group (cache-group.ts). Cache writes of clients are `propose` with group
 * `cache` (HiqliteNode.handleApi), their session inside the bytes.
 */
import { HiqliteError } from '../lib/errors.js';
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
): Promise<unknown> {
  const group = groupOf();
  if (req.op === 'cacheRead') return group.read(req.read, req.consistency);
  let waitMs = req.waitMs;
  if (req.timeoutMs !== undefined && waitMs !== 0) {
    // What is left after the acquire and (on a timeout) the cancel proposals: a tenth, at most 2 s.
    const budget = Math.max(0, req.timeoutMs - Math.min(2000, Math.ceil(req.timeoutMs / 10)));
    waitMs = Math.min(waitMs ?? budget, budget);
  }
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
