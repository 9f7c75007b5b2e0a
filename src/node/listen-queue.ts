/**
 * The bounded queue of one listener, with lag counting: the notifications it was given and its
 * reader has not taken yet, at most `bufferMax` of them and `bytesMax` of their bytes (payload,
 * channel and overhead, as the ring counts them; one notification is always taken, however
 * large). One more and the queue is dropped (memory stays bounded: a count alone let a reader
 * that never reads hold 10,000 notifications of up to 8 MiB each), the reader gets a `lagged` item
 * counting what it missed (HQL_LAGGED at the API), and the queue ends: nothing is ever skipped in
 * silence.
 *
 * One class for every place a listener buffers: the node's own subscriptions
 * (cache-listeners.ts), a remote client's listener and a proxy's relay (which receive pushes from
 * a node). Here because the client and proxy layers may import the node's, not the other way.
 */
import { assert } from '../lib/assert.js';
import { HiqliteError } from '../lib/errors.js';
import { IndexDeque } from '../lib/index-deque.js';
import { type Notification, notificationBytes } from '../sm/cache/notifications.js';

export type ListenItem =
  | { readonly kind: 'notification'; readonly notification: Notification }
  /**
   * `missed` notifications of this channel filter (or of all channels) were dropped.
   * `unreadDropped`: the listener overflowed, and what it had not read was dropped with it (the
   * count includes it): a queue downstream that holds some of those (the application's side of a
   * listener on the node's thread) drops them as well and adds them to `missed`.
   */
  | { readonly kind: 'lagged'; readonly missed: number; readonly unreadDropped?: true };

export class ListenQueue {
  private readonly queue = new IndexDeque<ListenItem>();
  private waiter: { resolve: (i: ListenItem) => void; reject: (e: Error) => void } | null = null;
  private error: Error | null = null;
  private endedFlag = false;
  /** Bytes of the notifications queued and not taken. */
  private bytes = 0;
  /**
   * Taken from here but not yet read by the listener (held downstream: `holdDownstream`): they
   * count against the bounds, so that the listener as a whole holds at most `bufferMax`.
   */
  private downstream = 0;
  private downstreamBytes = 0;

  /**
   * @param onEnd called once, when the queue ends (lagged, failed or closed)
   * @param bytesMax bound on the bytes queued (notificationBytes); unbounded when not given
   */
  constructor(
    private readonly bufferMax: number,
    private readonly onEnd: () => void = () => {},
    private readonly bytesMax: number = Number.POSITIVE_INFINITY,
  ) {
    assert(Number.isSafeInteger(bufferMax) && bufferMax >= 1, 'bufferMax >= 1');
    assert(bytesMax >= 1, 'bytesMax >= 1');
  }

  /** Bytes of the notifications queued and not yet taken. */
  get bufferedBytes(): number {
    return this.bytes;
  }

  /** No item will be added any more (lagged, failed or closed). */
  get ended(): boolean {
    return this.endedFlag;
  }

  /** Items queued and not yet taken (a `lagged` item included). */
  get buffered(): number {
    return this.queue.length;
  }

  /**
   * Notifications the listener has not read: queued here and held downstream (an embedded
   * listener on the application's thread holds what the node's thread sent it).
   */
  get unread(): number {
    return this.queue.length + this.downstream;
  }

  /** Adds a notification; false when this made the listener lag (it has ended) or it had ended. */
  offer(n: Notification): boolean {
    if (this.endedFlag) return false;
    if (!this.fits(n)) {
      this.lagged(this.buffered + 1, { overflow: true });
      return false;
    }
    this.push({ kind: 'notification', notification: n }, notificationBytes(n));
    return true;
  }

  /** Whether `n` can be offered now without the listener lagging (and it has not ended). */
  fits(n: Notification): boolean {
    if (this.endedFlag) return false;
    const unread = this.buffered + this.downstream;
    if (unread >= this.bufferMax) return false;
    return unread === 0 || this.bytes + this.downstreamBytes + notificationBytes(n) <= this.bytesMax;
  }

  /**
   * `missed` notifications are lost and the listener ends. By default what is queued is dropped
   * too (it overflowed, or the sender said so); `keepQueued` delivers it first (the lost ones lie
   * after it, e.g. a gap in seqs). `overflow`: the listener held too many unread; what it holds
   * downstream is dropped too (the item says so: `unreadDropped`).
   */
  lagged(missed: number, o: { readonly keepQueued?: boolean; readonly overflow?: boolean } = {}): void {
    if (this.endedFlag) return;
    assert(missed > 0, 'a lag misses at least one notification');
    if (o.keepQueued !== true) {
      this.queue.clear();
      this.bytes = 0;
    }
    this.push(
      o.overflow === true ? { kind: 'lagged', missed, unreadDropped: true } : { kind: 'lagged', missed },
    );
    this.end();
  }

  /**
   * The listener's reader holds `count` items taken from here and not read yet, of `bytes`
   * (notificationBytes): they count against bufferMax and bytesMax, as if still queued here.
   */
  holdDownstream(count: number, bytes: number): void {
    this.downstream = count;
    this.downstreamBytes = bytes;
  }

  /** Ends the listener: once the items already queued are taken, next() rejects with `error`. */
  fail(error: Error): void {
    if (this.error !== null) return;
    this.error = error;
    this.end();
    const w = this.waiter;
    this.waiter = null;
    if (w !== null) w.reject(error);
  }

  /** Stops listening; a pending next() rejects with HQL_CLOSED. */
  close(): void {
    this.fail(new HiqliteError('HQL_CLOSED', 'the listener was closed', { retryable: false }));
  }

  /** The next item, in order. After a `lagged` item the queue has ended and next() rejects. */
  next(): Promise<ListenItem> {
    const item = this.take();
    if (item !== undefined) return Promise.resolve(item);
    if (this.error !== null) return Promise.reject(this.error);
    if (this.endedFlag)
      return Promise.reject(new HiqliteError('HQL_CLOSED', 'the listener ended', { retryable: false }));
    assert(this.waiter === null, 'one next() at a time');
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Items queued now, without waiting (at most `max`). */
  drain(max: number): ListenItem[] {
    const out: ListenItem[] = [];
    while (out.length < max) {
      const item = this.take();
      if (item === undefined) break;
      out.push(item);
    }
    return out;
  }

  private end(): void {
    if (this.endedFlag) return;
    this.endedFlag = true;
    this.onEnd();
  }

  private push(item: ListenItem, size = 0): void {
    const w = this.waiter;
    if (w !== null) {
      this.waiter = null;
      w.resolve(item);
      return;
    }
    this.queue.push(item);
    this.bytes += size;
  }

  private take(): ListenItem | undefined {
    const item = this.queue.shift();
    if (item?.kind === 'notification') this.bytes -= notificationBytes(item.notification);
    return item;
  }
}
