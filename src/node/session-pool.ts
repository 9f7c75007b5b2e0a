/**
 * Client sessions for exactly-once writes (Raft thesis §6.3). The state machine keeps, per
 * client id, the last sequence number and its result, so one client id may have only one write
 * outstanding. Concurrent writers therefore draw a *lane* (its own client id) from this pool,
 * number the write on it, and give the lane back once the write has a final outcome. A retry of
 * the same write reuses the lane and the number, so the state machine answers it with the
 * original result instead of applying it twice.
 */
import { assert } from '../lib/assert.js';
import { HiqliteError } from '../lib/errors.js';

export interface SessionLane {
  readonly clientId: string;
  seq: number;
}

export class SessionPool {
  private readonly free: SessionLane[] = [];
  private created = 0;

  /**
   * @param prefix unique per process start (a node id and a random suffix): client ids must
   *   never be reused by another process, or its writes would be taken for duplicates.
   * @param lanesMax bound on concurrent writes from this process.
   */
  constructor(
    private readonly prefix: string,
    private readonly lanesMax: number,
  ) {
    assert(lanesMax >= 1, 'lanesMax >= 1');
  }

  get inUse(): number {
    return this.created - this.free.length;
  }

  /** A lane with its next sequence number assigned; give it back with `release`. */
  acquire(): { lane: SessionLane; seq: number } {
    let lane = this.free.pop();
    if (lane === undefined) {
      if (this.created >= this.lanesMax) {
        throw new HiqliteError(
          'HQL_OVERLOADED',
          `more than ${this.lanesMax} concurrent writes from this client`,
          {
            retryable: true,
          },
        );
      }
      lane = { clientId: `${this.prefix}-${this.created++}`, seq: 0 };
    }
    lane.seq++;
    return { lane, seq: lane.seq };
  }

  release(lane: SessionLane): void {
    this.free.push(lane);
  }
}
