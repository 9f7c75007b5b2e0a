/**
 * Pending ReadIndex requests on a leader (thesis §6.4). Each request records the commit index at
 * the time it arrived and a context number carried by the next heartbeat round; once a majority
 * of voters has answered a heartbeat with that context (or a later one), the leader knows it was
 * still the leader when the request arrived, and the request (with every earlier one) is served.
 */
import type { LogIndex, NodeId } from './types.js';

export interface PendingRead {
  readonly context: number;
  readonly index: LogIndex;
  /** Who asked: this node (answer through readStates) or a follower (answer by message). */
  readonly from: NodeId;
  readonly requestId: number;
  readonly acks: Set<NodeId>;
}

export class ReadOnlyQueue {
  private queue: PendingRead[] = [];

  get size(): number {
    return this.queue.length;
  }

  add(read: PendingRead): void {
    this.queue.push(read);
  }

  /** A heartbeat response from `from` acknowledging `context`: it confirms every read with context <= it. */
  ack(from: NodeId, context: number): void {
    for (const r of this.queue) {
      if (r.context > context) break;
      r.acks.add(from);
    }
  }

  /** Remove and return the longest prefix of reads whose own (or a later) read has a quorum. */
  takeConfirmed(isQuorum: (acks: ReadonlySet<NodeId>) => boolean): PendingRead[] {
    let last = -1;
    for (let i = 0; i < this.queue.length; i++) {
      if (isQuorum((this.queue[i] as PendingRead).acks)) last = i;
    }
    if (last < 0) return [];
    return this.queue.splice(0, last + 1);
  }

  takeAll(): PendingRead[] {
    const all = this.queue;
    this.queue = [];
    return all;
  }
}
