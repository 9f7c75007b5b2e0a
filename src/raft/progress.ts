/**
 * The leader's view of one follower's replication (etcd's tracker.Progress).
 *
 * - probe: we do not know where the follower's log matches; send one append at a time and wait
 *   for its answer (or a heartbeat response) before sending the next.
 * - replicate: the follower matched; stream appends optimistically (next = last sent + 1),
 *   bounded by the in-flight window.
 * - snapshot: the follower needs entries we compacted; a snapshot is being streamed to it and
 *   nothing else is sent until the runtime reports the outcome.
 */
import { assert } from '../lib/assert.js';
import { Inflights } from './inflights.js';
import type { LogIndex, ProgressStatus } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match = 0 as LogIndex;
  next: LogIndex;
  state: ProgressState = 'probe';
  /** In probe state: an append was sent and not yet answered (one at a time). */
  probeSent = false;
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0 as LogIndex;
  /** The highest commit index this follower was told (to tell it again when it lags). */
  commitSent = 0 as LogIndex;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /**
   * A heartbeat answer since the leader's last periodic heartbeat already let one more append
   * out (see RaftCore.handleHeartbeatResponse): a burst of answers (a leader that stalled and
   * resumes) must not open the window once per answer.
   */
  heartbeatFreed = false;
  /** How often the follower was found to hold less than it acknowledged (see maybeDecrTo). */
  regressions = 0;
  readonly inflights: Inflights;
  /**
   * Which record this is: a number the leader never gives to another record while it leads
   * (a new one at election and whenever the follower is added again, e.g. after being wiped and
   * removed). Appends carry it and answers echo it, so an answer to an append sent under an
   * earlier record — the earlier self of a re-added node, delayed in the network — is dropped
   * instead of crediting the follower with entries it no longer holds (simulator seed 7495).
   */
  readonly epoch: number;

  constructor(next: LogIndex, epoch: number, inflightCountMax: number, inflightBytesMax: number) {
    this.next = next;
    this.epoch = epoch;
    this.inflights = new Inflights(inflightCountMax, inflightBytesMax);
  }

  becomeProbe(): void {
    // After a snapshot, the follower has at least the snapshot's entries.
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1) as LogIndex;
    } else {
      this.resetState('probe');
      this.next = (this.match + 1) as LogIndex;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = (this.match + 1) as LogIndex;
  }

  becomeSnapshot(snapshotIndex: LogIndex): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0 as LogIndex;
    this.state = state;
    this.inflights.reset();
  }

  /** An acknowledgement up to `index`. Returns false when it is stale (no news). */
  maybeUpdate(index: LogIndex): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = (index + 1) as LogIndex;
    return updated;
  }

  /** Record that entries up to `lastIndex` were sent (optimistic in replicate state). */
  sentEntries(lastIndex: LogIndex, bytes: number, entryCount: number): void {
    switch (this.state) {
      case 'replicate':
        if (entryCount > 0) {
          this.next = (lastIndex + 1) as LogIndex;
          this.inflights.add(lastIndex, bytes);
        }
        break;
      case 'probe':
        this.probeSent = true;
        break;
      case 'snapshot':
        assert(false, 'sending entries to a follower in snapshot state');
    }
  }

  /**
   * A rejection of the append whose prevIndex was `rejected`; `matchHint` is the highest index
   * that may match (fast back-off). Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: LogIndex, matchHint: LogIndex): boolean {
    if (this.state === 'replicate') {
      // A rejection at or below match must be a duplicate of an older message.
      if (rejected <= this.match) return false;
      this.next = (this.match + 1) as LogIndex;
      return true;
    }
    // In probe (and snapshot) state only the latest probe's answer counts.
    if (this.next - 1 !== rejected) return false;
    if (rejected <= this.match) {
      // A rejection at match: the follower no longer holds what it acknowledged.
      // - Its log is empty (hint 0): its state is gone (a node that keeps the group in memory
      //   and restarted; it rejoins as a new learner). There is nothing to back off to, so the
      //   probe stays paused until the next heartbeat answer (one probe per heartbeat round until
      //   the node is removed and added again), not a probe and a rejection back to back without
      //   end (the cache simulation, seed 7608: with duplicated messages, millions).
      // - Its log is shorter than it was (an operator restored an older copy of its data
      //   directory, or its log lost a tail): what we recorded as its match is not true any
      //   more. Forget it (match 0 is what a new leader starts from; commit never goes back,
      //   and a lower match only makes counting a quorum more careful) and probe from its hint.
      //   Kept, it would pause the follower behind for good: nothing is ever sent below match.
      if (matchHint === 0 || matchHint >= rejected) return false;
      this.match = 0 as LogIndex;
      this.regressions++;
    }
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1) as LogIndex;
    this.probeSent = false;
    return true;
  }

  /** Whether sending more appends must wait (probe outstanding, window full, snapshot in flight). */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  status(): ProgressStatus {
    return {
      match: this.match,
      next: this.next,
      state: this.state,
      inflightCount: this.inflights.count,
      inflightBytes: this.inflights.bytes,
      recentActive: this.recentActive,
      epoch: this.epoch,
      regressions: this.regressions,
    };
  }
}
