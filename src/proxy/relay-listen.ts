/**
 * A listener of the proxy's client (binary `listen` or `GET /listen`), relayed from a listener
 * the proxy opens on one node of the cluster. The proxy keeps no position of its own: when its
 * way to the node breaks, the relayed stream ends with a retryable error, and the client resumes
 * (through this or another proxy) after the last seq it saw, which any node can serve from its
 * notification ring. At most `bufferMax` notifications, `bufferBytesMax` bytes, wait here for a
 * client that reads slowly (`cache_listener_buffer_max`, `cache_listener_buffer_bytes_max`);
 * beyond, the client gets HQL_LAGGED.
 */
import type { ClusterLink } from '../client/cluster-link.js';
import { HiqliteError } from '../lib/errors.js';
import { ListenQueue } from '../node/listen-queue.js';
import type { ListenStream } from '../node/listen-stream.js';

export async function relayListen(
  link: ClusterLink,
  o: {
    readonly channel: string | null;
    readonly afterSeq?: number;
    readonly bufferMax: number;
    readonly bufferBytesMax: number;
    readonly timeoutMs: number;
    readonly signal: AbortSignal;
  },
): Promise<ListenStream> {
  const queue = new ListenQueue(o.bufferMax, undefined, o.bufferBytesMax);
  let stop = () => {};
  const h = await link.listen(
    { channel: o.channel, ...(o.afterSeq === undefined ? {} : { afterSeq: o.afterSeq }) },
    (p) => {
      if (queue.ended) return;
      if ('items' in p) {
        for (const n of p.items) if (!queue.offer(n)) return stop();
      } else if ('lagged' in p) {
        queue.lagged(p.lagged);
        stop();
      } else {
        queue.fail(new HiqliteError(p.end.code, p.end.message, { retryable: p.end.retryable }));
      }
    },
    (e) => queue.fail(e),
    { timeoutMs: o.timeoutMs, signal: o.signal },
  );
  stop = () => void h.stop();
  if (queue.ended) void h.stop();
  return {
    afterSeq: h.afterSeq,
    next: () => queue.next(),
    drain: (max) => queue.drain(max),
    close: () => {
      void h.stop();
      queue.close();
    },
  };
}
