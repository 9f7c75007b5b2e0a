/**
 * Local listeners of the cache group's notifications. The state machine hands every applied
 * `notify` to `NotificationHub.publish` in log order; each subscription filters by channel and
 * queues what it wants in a bounded buffer. A subscriber that falls `bufferMax` behind is not
 * given more memory: its buffer is dropped, it is told how many it missed (a `lagged` item,
 * HQL_LAGGED at the API) and the subscription ends.
 *
 * A subscription follows the notification seq (1, 2, 3, … in log order, the same on every
 * member; src/sm/cache/notifications.ts): it knows the last seq it has passed (delivered or
 * filtered out) and takes the next one only. So nothing is ever skipped in silence:
 * - entries applied again (after a reset the log is applied from the start) are not delivered
 *   twice: their seqs are at or below the one passed;
 * - when the state is replaced by a snapshot (`replaced`, the node caught up by installing one),
 *   every subscription is served the notifications the new state's ring holds after its last
 *   seq, or, if the ring no longer holds some of them, a `lagged` item counting every one it will
 *   not get (those gone and those held after them) and the subscription ends;
 * - a seq that does not follow the last one (a jump nothing else explained) ends the
 *   subscription with a `lagged` item counting the seqs jumped over.
 *
 * A subscription that starts from `afterSeq` (a remote listener resuming, listen-stream.ts) is
 * caught up the same way: the ring's notifications after it first, then live ones; what the ring
 * no longer holds is reported as `lagged`.
 *
 * A catch-up is served from the ring as the reader makes room, not queued at once: the ring may
 * hold more than a listener's buffer (a resume after a long absence; found by an outside probe:
 * a listener that resumed 300 behind with a buffer of 256 ended with HQL_LAGGED although it read
 * promptly). While it catches up the subscription takes no live notifications; the ring has them
 * too, and it reads on from the ring until it has reached the newest, then takes live ones again.
 * If the ring drops some it has not reached yet (notifications faster than it reads), it lags.
 *
 * `missed` counts notifications of every channel (seqs are global): exact for a listener of all
 * channels, an upper bound for a listener of one channel.
 *
 * A new subscription (no `afterSeq`) made while the log found at start is applied again starts
 * after it: replayed notifications were applied before this process started listening, so they
 * are passed, not delivered.
 */
import { assert } from '../lib/assert.js';
import { HiqliteError } from '../lib/errors.js';
import type { Notification, NotificationsAfter } from '../sm/cache/notifications.js';
import { type ListenItem, ListenQueue } from './listen-queue.js';

export type { Notification } from '../sm/cache/notifications.js';

export type { ListenItem } from './listen-queue.js';

export interface SubscribeOptions {
  /** Only this channel; null: every channel. */
  readonly channel: string | null;
  /** Buffered notifications before the subscriber counts as lagging. */
  readonly bufferMax: number;
  /** Their bytes (notificationBytes) before it does; unbounded when not given. */
  readonly bufferBytesMax?: number;
  /** Resume: serve held notifications with a greater seq first (remote listeners). */
  readonly afterSeq?: number;
}

/** What the hub reads of the cache group's state. */
export interface NotificationSource {
  /** The seq of the last notification applied (0: none yet). */
  lastSeq(): number;
  /** The ring's notifications after `afterSeq`, in order, and how many after it it no longer holds. */
  heldAfter(afterSeq: number): NotificationsAfter;
  /**
   * While the log found at start is applied again: the end of that log (new subscriptions pass
   * notifications up to it without delivering them); 0 once it is applied.
   */
  replayingTo(): number;
}

export class NotificationHub {
  private readonly subs = new Set<Subscription>();

  /** @param subscriptionsMax bound on live subscriptions (HQL_OVERLOADED beyond) */
  constructor(
    private readonly source: NotificationSource,
    private readonly subscriptionsMax: number,
  ) {}

  get size(): number {
    return this.subs.size;
  }

  /** Notifications buffered and not yet taken, over all subscriptions (the listeners' lag). */
  /** Notifications queued here for this node's listeners, not yet taken by their readers. */
  buffered(): number {
    let n = 0;
    for (const s of this.subs) n += s.buffered;
    return n;
  }

  /**
   * Notifications this node's listeners have not read (the lag metric): queued, and held by an
   * embedded listener's reader on the application's thread (which read 0 there while thousands
   * waited unread: found from outside).
   */
  unread(): number {
    let n = 0;
    for (const s of this.subs) n += s.unread;
    return n;
  }

  subscribe(options: SubscribeOptions): Subscription {
    if (this.subs.size >= this.subscriptionsMax) {
      throw new HiqliteError(
        'HQL_OVERLOADED',
        `more than ${this.subscriptionsMax} listeners on this node (cache_listeners_max)`,
        { retryable: true },
      );
    }
    assert(Number.isSafeInteger(options.bufferMax) && options.bufferMax >= 1, 'bufferMax >= 1');
    const resume = options.afterSeq !== undefined;
    const sub = new Subscription(
      options,
      options.afterSeq ?? this.source.lastSeq(),
      // A resuming client has seen nothing past its seq: replayed notifications are news to it.
      resume ? 0 : this.source.replayingTo(),
      () => this.subs.delete(sub),
      (afterSeq) => this.source.heldAfter(afterSeq),
    );
    if (resume) sub.catchUp(this.source.heldAfter(sub.seenSeq));
    if (!sub.ended) this.subs.add(sub);
    return sub;
  }

  /** A notification was applied (called by the state machine's hook, in log order). */
  publish(n: Notification): void {
    for (const s of this.subs) s.offer(n);
  }

  /**
   * The state was replaced as a whole (a snapshot installed, or reset): every subscription takes
   * what the new state's ring holds after its last seq, or learns how many are gone.
   */
  replaced(): void {
    for (const s of [...this.subs]) s.catchUp(this.source.heldAfter(s.seenSeq));
  }

  /** Ends every subscription (shutdown): pending `next()` calls reject with `error`. */
  closeAll(error: Error): void {
    for (const s of [...this.subs]) s.fail(error);
  }
}

export class Subscription {
  /** The bounded queue with lag counting, shared with the client's and proxy's listeners. */
  private readonly q: ListenQueue;
  /** The seq of the last notification passed (delivered, filtered out, or before the start). */
  private seen: number;
  /**
   * Catching up (a resume, a replaced state): the ring's notifications after `seen` still to be
   * offered as the queue makes room (`fill`), or null when live notifications are taken.
   */
  private catching: { readonly held: readonly Notification[]; at: number } | null = null;

  /**
   * @param startSeq the seq the subscription starts after
   * @param passThroughIndex notifications at or below this log index are passed, not delivered
   */
  constructor(
    private readonly o: SubscribeOptions,
    readonly startSeq: number,
    private readonly passThroughIndex: number,
    onEnd: () => void,
    private readonly heldAfter: (afterSeq: number) => NotificationsAfter,
  ) {
    assert(Number.isSafeInteger(startSeq) && startSeq >= 0, 'a subscription starts after a seq >= 0');
    this.seen = startSeq;
    this.q = new ListenQueue(o.bufferMax, onEnd, o.bufferBytesMax);
  }

  /** No item will be added any more (lagged, failed or closed). */
  get ended(): boolean {
    return this.q.ended;
  }

  get buffered(): number {
    return this.q.buffered;
  }

  /** Queued and held downstream, not read by the listener. */
  get unread(): number {
    return this.q.unread;
  }

  /** The seq of the last notification this subscription has passed. */
  get seenSeq(): number {
    return this.seen;
  }

  /** The next item, in log order. After a `lagged` item the subscription has ended. */
  next(): Promise<ListenItem> {
    this.fill();
    const item = this.q.next();
    this.fill();
    return item;
  }

  /** See ListenQueue.holdDownstream: items taken from here that the reader has not read yet. */
  holdDownstream(count: number, bytes: number): void {
    this.q.holdDownstream(count, bytes);
    this.fill();
  }

  /** Items already buffered, without waiting (at most `max`). */
  drain(max: number): ListenItem[] {
    // Filled once: at most a buffer's worth goes out per call, and a reader that holds what it
    // took (holdDownstream) is given more only as it reads.
    this.fill();
    return this.q.drain(max);
  }

  /** Stops listening; a pending next() rejects with HQL_CLOSED. */
  close(): void {
    this.q.close();
  }

  /**
   * @internal Takes the ring's notifications after `seenSeq` (a resume, or a state replaced by a
   * snapshot). Gone ones end the subscription with `lagged`, unless they all lie before its start.
   */
  catchUp(held: NotificationsAfter): void {
    if (this.ended) return;
    if (held.missed > 0) {
      // The oldest held one is at or below the start: so are the gone ones, which were never owed.
      const oldest = held.notifications[0];
      if (oldest === undefined || oldest.index > this.passThroughIndex) {
        // The subscription ends here: the held ones after the gap are not delivered either, and
        // count as missed with the gone ones (they were left out of the count: found by an
        // outside probe, a resume told 41 missed of 51 never received).
        this.q.lagged(held.missed + held.notifications.length, { keepQueued: true });
        return;
      }
      this.seen = oldest.seq - 1;
    }
    this.catching = { held: held.notifications, at: 0 };
    this.fill();
  }

  /**
   * Catching up: offers the ring's notifications after `seen` while the queue has room; past the
   * last one held, asks the ring again for any applied since, and takes live ones once there are
   * none. Bounded by the ring's size per call.
   */
  private fill(): void {
    for (;;) {
      const c = this.catching;
      if (c === null || this.ended) return;
      if (c.at === c.held.length) {
        const more = this.heldAfter(this.seen);
        if (more.missed > 0) {
          this.catching = null;
          this.q.lagged(more.missed + more.notifications.length, { keepQueued: true });
          return;
        }
        if (more.notifications.length === 0) {
          this.catching = null;
          return;
        }
        this.catching = { held: more.notifications, at: 0 };
        continue;
      }
      const n = c.held[c.at] as Notification;
      if (n.seq > this.seen && !this.q.fits(n)) return;
      c.at++;
      this.take(n);
    }
  }

  /** @internal */
  offer(n: Notification): void {
    // Catching up: the ring holds this one too, and fill() comes to it in order.
    if (this.catching !== null) return;
    this.take(n);
  }

  private take(n: Notification): void {
    if (this.ended || n.seq <= this.seen) return;
    if (n.seq !== this.seen + 1) {
      // Never skip in silence: whatever lies between was not delivered (what is buffered was).
      this.q.lagged(n.seq - this.seen - 1, { keepQueued: true });
      return;
    }
    this.seen = n.seq;
    if (n.index <= this.passThroughIndex) return;
    if (this.o.channel !== null && n.channel !== this.o.channel) return;
    // Beyond bufferMax the buffer is dropped and counted with the one that did not fit.
    this.q.offer(n);
  }

  /** @internal */
  fail(error: Error): void {
    this.q.fail(error);
  }
}
