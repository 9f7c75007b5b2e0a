/**
 * The notifications a listener received and its reader has not taken yet: at most `bufferMax`.
 * One more and the queue is dropped, the reader gets a `lagged` item with the number missed, and
 * the listener ends (as the node's own listeners, cache-listeners.ts). Used where pushes from a
 * node arrive: a remote client's listener and a proxy's relay.
 */
import { assert } from '../lib/assert.js';
import { HiqliteError } from '../lib/errors.js';
import type { ListenItem, Notification } from '../node/cache-listeners.js';

export class ListenQueue {
  private queue: ListenItem[] = [];
  private head = 0;
  private waiter: { resolve: (i: ListenItem) => void; reject: (e: Error) => void } | null = null;
  private error: Error | null = null;
  private endedFlag = false;

  constructor(private readonly bufferMax: number) {
    assert(Number.isSafeInteger(bufferMax) && bufferMax >= 1, 'bufferMax >= 1');
  }

  /** No item will be added any more (lagged, failed or closed). */
  get ended(): boolean {
    return this.endedFlag;
  }

  /** Adds a notification; false when this made the listener lag (it has ended). */
  offer(n: Notification): boolean {
    if (this.endedFlag) return false;
    const buffered = this.queue.length - this.head;
    if (buffered >= this.bufferMax) {
      this.lagged(buffered + 1);
      return false;
    }
    this.push({ kind: 'notification', notification: n });
    return true;
  }

  /** `missed` notifications are lost: the queue is dropped and the reader told so. */
  lagged(missed: number): void {
    if (this.endedFlag) return;
    this.queue = [];
    this.head = 0;
    this.push({ kind: 'lagged', missed });
    this.endedFlag = true;
  }

  /** Ends the listener: once the items already queued are taken, next() rejects with `error`. */
  fail(error: Error): void {
    if (this.error !== null) return;
    this.endedFlag = true;
    this.error = error;
    const w = this.waiter;
    this.waiter = null;
    if (w !== null) w.reject(error);
  }

  close(): void {
    this.fail(new HiqliteError('HQL_CLOSED', 'the listener was closed', { retryable: false }));
  }

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

  drain(max: number): ListenItem[] {
    const out: ListenItem[] = [];
    for (let item = out.length < max ? this.take() : undefined; item !== undefined; ) {
      out.push(item);
      item = out.length < max ? this.take() : undefined;
    }
    return out;
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
}
