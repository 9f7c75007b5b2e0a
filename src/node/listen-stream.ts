/**
 * A listener served to another process (a remote client over the API protocol, an HTTP client
 * over Server-Sent Events, a proxy relaying either): the notifications of one channel filter in
 * log order, starting after a notification seq.
 *
 * On a node (`cacheListenStream`) it is a live subscription of the cache group plus, when the
 * client resumes (`afterSeq`), the notifications the group's ring still holds after it: both are
 * taken in the same synchronous step, so the held ones (seq up to the ring's last) and the live
 * ones (seq after it) follow each other with no gap and no overlap. A resume that asks for
 * notifications the ring no longer holds starts, and ends, with a `lagged` item: `missed` counts
 * the notifications of every channel after `afterSeq` that are gone (seqs are global), so for a
 * one-channel listener it is an upper bound.
 *
 * Seqs are the same on every member, so a client may resume on any node; one that saw more on
 * its last node than this node has applied gets nothing twice (items at or below the seq it saw
 * are skipped).
 */
import { HiqliteError } from '../lib/errors.js';
import type { ListenItem, Notification, Subscription } from './cache-listeners.js';

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
  /** True while the log found at start is applied again (its notifications are not published). */
  readonly replaying?: boolean;
  subscribe(o: { channel: string | null; bufferMax?: number }): Subscription;
  readonly sm: {
    lastNotificationSeq(): number;
    notificationsAfter(afterSeq: number): { notifications: readonly Notification[]; missed: number };
  };
}

export function cacheListenStream(
  group: ListenSourceGroup,
  o: { readonly channel: string | null; readonly afterSeq?: number; readonly bufferMax?: number },
): ListenStream {
  if (group.replaying === true) {
    // Notifications between the applied index and the end of the log found at start reach
    // neither the ring nor live listeners yet: a resume here could skip some. Ask again.
    throw new HiqliteError('HQL_UNAVAILABLE', 'the cache group is replaying its log: listen again shortly', {
      retryable: true,
    });
  }
  const sub = group.subscribe({
    channel: o.channel,
    ...(o.bufferMax === undefined ? {} : { bufferMax: o.bufferMax }),
  });
  const lastApplied = group.sm.lastNotificationSeq();
  let held: ListenItem[] = [];
  if (o.afterSeq !== undefined && o.afterSeq < lastApplied) {
    const h = group.sm.notificationsAfter(o.afterSeq);
    held =
      h.missed > 0
        ? [{ kind: 'lagged', missed: h.missed }]
        : h.notifications
            .filter((n) => o.channel === null || n.channel === o.channel)
            .map((n) => ({ kind: 'notification', notification: n }));
  }
  return new NodeListenStream(sub, held, o.afterSeq ?? lastApplied);
}

class NodeListenStream implements ListenStream {
  private heldAt = 0;
  private seen: number;
  private ended = false;

  constructor(
    private readonly sub: Subscription,
    private readonly held: ListenItem[],
    readonly afterSeq: number,
  ) {
    this.seen = afterSeq;
    if (held[0]?.kind === 'lagged') sub.close();
  }

  async next(): Promise<ListenItem> {
    for (;;) {
      const h = this.takeHeld();
      if (h !== undefined) return h;
      const item = await this.sub.next();
      if (this.keep(item)) return item;
    }
  }

  drain(max: number): ListenItem[] {
    const out: ListenItem[] = [];
    // Bounded: each round takes an item or ends.
    while (out.length < max && !this.ended) {
      const h = this.takeHeld();
      if (h !== undefined) {
        out.push(h);
        continue;
      }
      const [item] = this.sub.drain(1);
      if (item === undefined) break;
      if (this.keep(item)) out.push(item);
    }
    return out;
  }

  close(): void {
    this.ended = true;
    this.sub.close();
  }

  private takeHeld(): ListenItem | undefined {
    if (this.heldAt >= this.held.length) return undefined;
    const item = this.held[this.heldAt++] as ListenItem;
    if (item.kind === 'lagged') this.ended = true;
    else this.seen = item.notification.seq;
    return item;
  }

  /** False for a live notification this stream already passed (a resume on a node behind). */
  private keep(item: ListenItem): boolean {
    if (item.kind === 'lagged') {
      this.ended = true;
      return true;
    }
    if (item.notification.seq <= this.seen) return false;
    this.seen = item.notification.seq;
    return true;
  }
}
