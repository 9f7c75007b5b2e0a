/**
 * Log time: the time a node stamps on the entries it proposes to a Raft group, and judges expiry
 * by when it reads. The state machines advance their clock to the largest stamp applied and never
 * back (src/sm/cache/state.ts, src/sm/sql/state-machine.ts), so every replica decides TTLs, lock
 * leases and `datetime('now')` alike.
 *
 * Stamping the wall clock alone had a hole: once a node whose clock ran ahead had stamped an
 * entry, the stamps of the others lay behind the log's clock and changed nothing, so log time
 * stood still until their clocks caught up — an hour ahead meant no TTL and no lease ended for
 * an hour (a dead holder's lock with it). A LogClock runs on from the log's time instead:
 *
 *     now = max(wall, applied, anchor + elapsed)
 *
 * where `wall` is the cluster's clock on a node (the median of the nodes' clocks:
 * src/node/peer-clocks.ts), `applied` the group's applied log time, and `anchor` the last value
 * this clock gave, carried forward by the monotonic clock's `elapsed` since. Log time therefore advances at
 * real-time rate on this node whatever its wall clock says, takes every jump of another node's
 * stamps, and never goes back. While log time is ahead of the wall clock, `elapsed` counts at
 * `1 - LOG_CLOCK_SLEW` (durations run that much longer) so that log time drifts back to the
 * clocks instead of staying ahead forever; it never drops below the wall clock.
 *
 * What it cannot undo: a wall clock that runs ahead (a majority of the nodes' clocks, or one
 * node's before the others answered) still pushes log time ahead when it stamps, and TTLs and
 * leases running at that moment end early by the jump (the cache group reports log time ahead of
 * the cluster's clock as `hiqlite_cache_log_clock_ahead_ms`). Time sync on every node stays an
 * operating requirement, as for S3 (which refuses requests 15 minutes off).
 */

/** The fraction of elapsed time taken off while log time is ahead of the wall clock. */
export const LOG_CLOCK_SLEW = 0.01;

/** The two clock readings a LogClock needs (a subset of `Clock`). */
export interface LogClockSource {
  monotonicMs(): number;
  wallMs(): number;
}

export class LogClock {
  /** The last value given (not floored), at `anchorMono` on the monotonic clock. */
  private anchorMs = Number.NEGATIVE_INFINITY;
  private anchorMono = 0;

  /** `appliedMs`: the group's log time as applied on this node (its state machine's clock). */
  constructor(
    private readonly clock: LogClockSource,
    private readonly appliedMs: () => number,
  ) {}

  /** Log time now, in whole milliseconds: never less than any value given before. */
  nowMs(): number {
    const mono = this.clock.monotonicMs();
    const wall = this.clock.wallMs();
    const elapsed = Math.max(0, mono - this.anchorMono);
    let t = this.anchorMs + elapsed;
    if (t > wall) t = Math.max(wall, this.anchorMs + elapsed * (1 - LOG_CLOCK_SLEW));
    t = Math.max(t, wall, this.appliedMs());
    this.anchorMs = t;
    this.anchorMono = mono;
    return Math.floor(t);
  }
}
