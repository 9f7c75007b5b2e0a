/**
 * The notification ring: the most recent notifications, bounded by count and payload bytes, so
 * that a listener that reconnects can resume after the last one it saw while it is still held,
 * or learn how many it missed. It is replicated state (in the snapshot): every member holds the
 * same ring, so a listener may resume on any node.
 *
 * Every notification has a `seq`: 1, 2, 3, … in log order, with no gaps, so the number missed
 * after `afterSeq` is exact: `(first seq held) - afterSeq - 1`.
 */
import { IndexDeque } from '../../lib/index-deque.js';
import type { CacheLimits } from './options.js';

export interface Notification {
  readonly channel: string;
  readonly payload: Uint8Array;
  /** The log index of the notify command. */
  readonly index: number;
  /** The log clock when it was applied (ms since the epoch). */
  readonly time: number;
  /** 1-based, gap-free, in log order. */
  readonly seq: number;
}

export interface NotificationsAfter {
  /** Held notifications with seq > afterSeq, in order (at most `max`). */
  readonly notifications: readonly Notification[];
  /** Notifications after `afterSeq` that are no longer held. */
  readonly missed: number;
}

/** Accounted bytes of a held notification besides its payload and channel. */
export const NOTIFICATION_OVERHEAD_BYTES = 64;

export class NotificationRing {
  private readonly items = new IndexDeque<Notification>();
  /** The seq the next notification gets. */
  nextSeq = 1;
  bytes = 0;

  constructor(private readonly limits: CacheLimits) {}

  get size(): number {
    return this.items.length;
  }

  /** Appends a notification (the next seq) and evicts the oldest beyond the bounds. */
  push(channel: string, payload: Uint8Array, index: number, time: number): Notification {
    const n: Notification = { channel, payload, index, time, seq: this.nextSeq++ };
    this.hold(n);
    return n;
  }

  /** Held notifications, oldest first. */
  *held(): IterableIterator<Notification> {
    for (let i = 0; i < this.items.length; i++) yield this.items.get(i);
  }

  after(afterSeq: number, max: number): NotificationsAfter {
    const first = this.size === 0 ? this.nextSeq : this.items.get(0).seq;
    const missed = Math.max(0, first - afterSeq - 1);
    const from = Math.max(0, afterSeq + 1 - first);
    const to = Math.min(this.items.length, from + Math.max(0, max));
    const notifications: Notification[] = [];
    for (let i = from; i < to; i++) notifications.push(this.items.get(i));
    return { notifications, missed };
  }

  /** Inserts a notification read from a snapshot (seqs must follow each other). */
  restore(n: Notification): void {
    this.hold(n);
    this.nextSeq = n.seq + 1;
  }

  private hold(n: Notification): void {
    this.items.push(n);
    this.bytes += notificationBytes(n);
    while (
      this.size > 0 &&
      (this.size > this.limits.notificationsRingMax || this.bytes > this.limits.notificationsRingBytesMax)
    ) {
      this.bytes -= notificationBytes(this.items.shift()!);
    }
  }
}

/** The bytes a held notification is counted as (payload, channel, overhead): the ring's and every listener queue's bound. */
export function notificationBytes(n: Notification): number {
  return NOTIFICATION_OVERHEAD_BYTES + n.payload.length + n.channel.length * 2;
}
