/**
 * A listener served to another process (a remote client over the API protocol, an HTTP client
 * over Server-Sent Events, a proxy relaying either): the notifications of one channel filter in
 * log order, starting after a notification seq.
 *
 * On a node (`cacheListenStream`) it is a subscription of the cache group; a client that resumes
 * (`afterSeq`) is first served what the group's ring still holds after it, then live
 * notifications, with no gap and no overlap (the subscription follows seqs, cache-listeners.ts).
 * A resume that asks for notifications the ring no longer holds gets a `lagged` item: `missed`
 * counts the notifications of every channel after `afterSeq` that are gone (seqs are global), so
 * for a one-channel listener it is an upper bound.
 *
 * Seqs are the same on every member, so a client may resume on any node; one that saw more on
 * its last node than this node has applied gets nothing twice (items at or below the seq it saw
 * are skipped).
 */
import { HiqliteError } from '../lib/errors.js';
import type { ListenItem, Subscription } from './cache-listeners.js';

export interface ListenStream {
  /** The seq the stream starts after: where a client that saw nothing yet resumes. */
  readonly afterSeq: number;
  /** The next item, in log order; a `lagged` item is the last. Rejects when the stream failed or was closed. */
  next(): Promise<ListenItem>;
  /** Items ready now, without waiting (at most `max`). */
  drain(max: number): ListenItem[];
  close(): void;
}

/** The parts of the cache group a listen stream uses (CacheGroup has them). */
export interface ListenSourceGroup {
  /** True while the log found at start is applied again (the ring does not hold its notifications yet). */
  readonly replaying?: boolean;
  subscribe(o: { channel: string | null; afterSeq?: number; bufferMax?: number }): Subscription;
}

export function cacheListenStream(
  group: ListenSourceGroup,
  o: { readonly channel: string | null; readonly afterSeq?: number; readonly bufferMax?: number },
): ListenStream {
  if (group.replaying === true) {
    // The ring holds only what was applied so far: a client resuming from a seq this node had
    // before its restart would be told it missed them. Ask again.
    throw new HiqliteError('HQL_UNAVAILABLE', 'the cache group is replaying its log: listen again shortly', {
      retryable: true,
    });
  }
  const sub = group.subscribe({
    channel: o.channel,
    ...(o.afterSeq === undefined ? {} : { afterSeq: o.afterSeq }),
    ...(o.bufferMax === undefined ? {} : { bufferMax: o.bufferMax }),
  });
  return {
    afterSeq: sub.startSeq,
    next: () => sub.next(),
    drain: (max) => sub.drain(max),
    close: () => sub.close(),
  };
}
