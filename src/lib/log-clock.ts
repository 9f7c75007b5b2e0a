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
 *     now = max(wall, log)      log = max(applied, log before + elapsed)
 *
 * where `wall` is the cluster's clock on a node (the median of the nodes' clocks:
 * src/node/peer-clocks.ts), `applied` the group's applied log time, and `log` the log's time
 * carried forward by the monotonic clock's `elapsed` since this clock last looked. Log time
 * therefore advances at real-time rate on this node whatever its wall clock says, and takes
 * every jump of another node's stamps. While it is ahead of the wall clock, `elapsed` counts at
 * `1 - LOG_CLOCK_SLEW` (durations run that much longer) so that log time drifts back to the
 * clocks instead of staying ahead forever.
 *
 * A stamp (`stampMs`) becomes log time once applied, so it is carried like log time, and this
 * node's stamps never go back. A read (`nowMs`: judging expiry) carries only log time, never the
 * wall clock: a wall clock that was wrong for a moment (a node's own clock, read before its peers
 * answered) must not stay in what this node stamps and reads after it was corrected. Carried, one
 * read of a clock an hour ahead made every later stamp of the node an hour ahead, ending every
 * TTL and lease. So a read can be less than an earlier one when the wall clock went back; it
 * never falls below the log's time.
 *
 * What it cannot undo: a wall clock that runs ahead (a majority of the nodes' clocks, or one
 * node's before the others answered) still pushes log time ahead when it stamps, and TTLs and
 * leases running at that moment end early by the jump (the cache group reports log time ahead of
 * the cluster's clock as `hiqlite_cache_log_clock_ahead_ms`). Time sync on every node stays an
 * operating requirement, as for S3 (which refuses requests 15 minutes off).
 */

/** The fraction of elapsed time taken off while log time is ahead of the wall clock. */
export const LOG_CLOCK_SLEW = 0.01;

/**
 * Which of two clocks that disagree to take when nothing else tells them apart (the cluster's
 * clock with only two of three nodes' clocks known, src/node/peer-clocks.ts).
 */
export type ClockTieBreak = 'earlier' | 'later';

/** The two clock readings a LogClock needs (a subset of `Clock`). */
export interface LogClockSource {
  monotonicMs(): number;
  /**
   * `tieBreak`, for two clocks that disagree with nothing to judge between them: a stamp in a
   * log that has time takes the earlier (a clock behind cannot move log time, one ahead would
   * end TTLs and leases early); a new group's first stamps take the later (log time started
   * from a clock behind would jump forward once the clock is known, ending the leases granted
   * until then early, while log time started ahead only runs on slower until the clocks catch
   * up, LOG_CLOCK_SLEW, which makes them longer); a read takes the later too: an entry or a lease
   * is never judged live after it may have ended (a lease's holder is told what is left by it).
   */
  wallMs(tieBreak?: ClockTieBreak): number;
}

export class LogClock {
  /** Log time as last seen, or the last stamp given (not floored), at `anchorMono` (monotonic). */
  private anchorMs = Number.NEGATIVE_INFINITY;
  private anchorMono = 0;

  /** `appliedMs`: the group's log time as applied on this node (its state machine's clock). */
  constructor(
    private readonly clock: LogClockSource,
    private readonly appliedMs: () => number,
  ) {}

  /** Log time now to judge expiry by: max(wall clock, log time carried forward), whole ms. */
  nowMs(): number {
    return this.read(false);
  }

  /** Log time to stamp on an entry: as nowMs, and never less than a stamp given before. */
  stampMs(): number {
    return this.read(true);
  }

  /**
   * Forgets the log time carried (the group's state was dropped and it joins a group founded
   * anew): carried on, the old group's time stayed in this node's reads, and where the new group
   * started lower a lease judged by them had ended before it was handed out (found from outside:
   * locks of 2 s failed for a minute after a founding anew, on a node that kept a log time 4 s
   * ahead from the group before).
   */
  reset(): void {
    this.anchorMs = Number.NEGATIVE_INFINITY;
    this.anchorMono = 0;
  }

  /**
   * The group has log time: it applied a stamped entry, or this clock stamped one. Before, the
   * first stamp starts it (LogClockSource.wallMs; a cache group's waits for a clock it can
   * trust, PeerClocks.foundingReady).
   */
  hasTime(): boolean {
    return this.appliedMs() > 0 || this.anchorMs > Number.NEGATIVE_INFINITY;
  }

  private read(stamp: boolean): number {
    const mono = this.clock.monotonicMs();
    // A stamp in a log that has time takes the earlier of two clocks that disagree (see
    // LogClockSource.wallMs); a new group's first stamps, and every read (judging whether an
    // entry or a lease is still live), the later: never live after it may have ended.
    const timeless = !this.hasTime();
    const wall = this.clock.wallMs(stamp && !timeless ? 'earlier' : 'later');
    const elapsed = Math.max(0, mono - this.anchorMono);
    let log = this.anchorMs + elapsed;
    if (log > wall) log = Math.max(wall, this.anchorMs + elapsed * (1 - LOG_CLOCK_SLEW));
    // No applied time yet: the log has none to carry (taken as 0, the monotonic clock carried
    // it forward as if it were time, and the group's first stamp no longer counted as first).
    const applied = this.appliedMs();
    if (applied > 0) log = Math.max(log, applied);
    const now = Math.max(log, wall);
    this.anchorMs = stamp ? now : log;
    this.anchorMono = mono;
    return Math.floor(now);
  }
}
