/**
 * Local listeners of the cache group's notifications. The state machine hands every applied
 * `notify` to `NotificationHub.publish` in log order; each subscription filters by channel and
 * queues what it wants in a bounded buffer. A subscriber that falls `bufferMax` behind is not
 * given more memory: its buffer is dropped, it is told how many it missed (a `lagged` item,
 * HQL_LAGGED at the API) and the subscription ends.
 *
 * Exactly once per member while it listens: a subscription skips any index at or below the last
 * one it saw or the point it started from, so entries applied again (after a restart the log is
 * replayed from the snapshot) are not delivered twice.
 *
 * A subscription that starts from `afterSeq` (a remote listener resuming) is first served the
 * ring's held notifications after it, then live ones; what the ring no longer holds is reported
 * as `lagged`.
 */
import { assert } from '../lib/assert.js';
import { HiqliteError } from '../lib/errors.js';
import type { Notification, NotificationsAfter } from '../sm/cache/notifications.js';

export type { Notification } from '../sm/cache/notifications.js';

export type ListenItem =
  | { readonly kind: 'notification'; readonly notification: Notification }
  /** `missed` notifications of this channel filter (or of all channels) were dropped. */
  | { readonly kind: 'lagged'; readonly missed: number };

export interface SubscribeOptions {
  /** Only this channel; null: every channel. */
  readonly channel: string | null;
  /** Buffered notifications before the subscriber counts as lagging. */
  readonly bufferMax: number;
  /** Resume: serve held notifications with a greater seq first (remote listeners). */
  readonly afterSeq?: number;
}

export class NotificationHub {
  private readonly subs = new Set<Subscription>();

  /**
   * @param startIndex the index a new subscription starts after (the applied index, or the end
   *   of the log found at start while it is being replayed)
   * @param heldAfter the ring's notifications after a seq (for `afterSeq`)
   * @param subscriptionsMax bound on live subscriptions (HQL_OVERLOADED beyond)
   */
  constructor(
    private readonly startIndex: () => number,
    private readonly heldAfter: (afterSeq: number, max: number) => NotificationsAfter,
    private readonly subscriptionsMax: number,
  ) {}

  get size(): number {
    return this.subs.size;
  }

  /** Notifications buffered and not yet taken, over all subscriptions (the listeners' lag). */
  buffered(): number {
    let n = 0;
    for (const s of this.subs) n += s.buffered;
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
    const sub = new Subscription(options, this.startIndex(), () => this.subs.delete(sub));
    if (options.afterSeq !== undefined) {
      const held = this.heldAfter(options.afterSeq, options.bufferMax + 1);
      sub.resume(held);
    }
    if (!sub.ended) this.subs.add(sub);
    return sub;
  }

  /** A notification was applied (called by the state machine's hook, in log order). */
  publish(n: Notification): void {
    for (const s of this.subs) s.offer(n);
  }

  /** Ends every subscription (shutdown): pending `next()` calls reject with `error`. */
  closeAll(error: Error): void {
    for (const s of [...this.subs]) s.fail(error);
  }
}

export class Subscription {
  private queue: ListenItem[] = [];
  private head = 0;
  private waiter: { resolve: (i: ListenItem) => void; reject: (e: Error) => void } | null = null;
  private lastIndex: number;
  private lastSeq: number;
  private error: Error | null = null;
  ended = false;

  constructor(
    private readonly o: SubscribeOptions,
    startIndex: number,
    private readonly onEnd: () => void,
  ) {
    this.lastIndex = startIndex;
    this.lastSeq = o.afterSeq ?? 0;
  }

  get buffered(): number {
    return this.queue.length - this.head;
  }

  /** The next item, in log order. After a `lagged` item the subscription has ended. */
  next(): Promise<ListenItem> {
    const item = this.take();
    if (item !== undefined) return Promise.resolve(item);
    if (this.error !== null) return Promise.reject(this.error);
    if (this.ended) return Promise.reject(closedError());
    assert(this.waiter === null, 'one next() at a time');
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Items already buffered, without waiting (at most `max`). */
  drain(max: number): ListenItem[] {
    const out: ListenItem[] = [];
    for (let item = this.take(); item !== undefined; item = out.length < max ? this.take() : undefined)
      out.push(item);
    return out;
  }

  /** Stops listening; a pending next() rejects with HQL_CLOSED. */
  close(): void {
    this.fail(closedError());
  }

  /** @internal */
  resume(held: NotificationsAfter): void {
    if (held.missed > 0) {
      this.lag(held.missed);
      return;
    }
    for (const n of held.notifications) this.offer(n);
  }

  /** @internal */
  offer(n: Notification): void {
    if (this.ended || n.index <= this.lastIndex || n.seq <= this.lastSeq) return;
    this.lastIndex = n.index;
    this.lastSeq = n.seq;
    if (this.o.channel !== null && n.channel !== this.o.channel) return;
    if (this.buffered >= this.o.bufferMax) {
      this.lag(this.buffered + 1);
      return;
    }
    this.push({ kind: 'notification', notification: n });
  }

  /** @internal */
  fail(error: Error): void {
    if (this.error !== null) return;
    this.error = error;
    this.end();
    const w = this.waiter;
    this.waiter = null;
    if (w !== null && this.buffered === 0) w.reject(error);
  }

  private lag(missed: number): void {
    this.queue = [];
    this.head = 0;
    this.push({ kind: 'lagged', missed });
    this.end();
  }

  private push(item: ListenItem): void {
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      w.resolve(item);
      return;
    }
    this.queue.push(item);
  }

  private take(): ListenItem | undefined {
    if (this.head >= this.queue.length) return undefined;
    const item = this.queue[this.head] as ListenItem;
    this.queue[this.head++] = undefined as unknown as ListenItem;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
  }
}

function closedError(): HiqliteError {
  return new HiqliteError('HQL_CLOSED', 'the listener was closed', { retryable: false });
}
