/**
 * The cluster's wall clock: the median of this node's clock and the other nodes' clocks, so a
 * node whose clock runs ahead (or behind) does not carry log time with it.
 *
 * Log time is the time the nodes stamp on entries (src/lib/log-clock.ts); TTLs, lock leases,
 * sessions and SQL's `'now'` run on it. Stamped from one node's own clock, a leader whose clock
 * ran an hour ahead ended every TTL and lease running at the time, at once. So every
 * `clock_probe_interval_ms` a node asks each other node's API port for its wall clock (`ping`
 * answers with it), timing the question on its monotonic clock: a peer's clock then is its answer
 * at the middle of the round trip (off by at most half of it), taken no later than that middle and no
 * farther from this node's own clock than the uncertainty allows (provenClock), and it is carried forward by the
 * monotonic clock, so a jump of this node's own clock shows at once against the peers'. The best
 * of a peer's last samples (the shortest round trip) is used while it is fresh (three
 * intervals).
 *
 * `wallMs()` is the median of this node's clock and the fresh peers' clocks, once a majority of
 * the configured nodes are among them (this one included): a minority of wrong clocks never moves
 * the others, and a majority is needed to move one. The last median is carried forward by the
 * monotonic clock, and that carried clock stands in where too few clocks are known: while fewer
 * than a majority answer (a node cut off for a while, whose own clock was stepped meanwhile, does
 * not stamp its own time when it is back), and as the judge between two clocks that disagree
 * (one node of three down: the middle value nearer the carried clock is taken). With none yet,
 * the caller breaks the tie (log-clock.ts, LogClockSource.wallMs) and the guess is not carried:
 * a log that has time takes the earlier (a clock behind cannot move log time, one ahead ends TTLs
 * early), a new group's first stamps the later (started from a clock behind, log time would jump
 * forward once the third clock is known, ending the leases granted meanwhile: found by the cache
 * simulation, seeds 498, 664, 756 and 899 of 301..1300, one node's clock seconds off). Where a
 * writer waits (`ready()`), two known clocks more than CLOCKS_AGREE_MS apart (beyond what their
 * round trips leave uncertain) do not count as known: it waits for a third, one interval at most;
 * a group's first stamp waits for it within the writer's deadline (`foundingReady()`). And a node that starts to lead while it cannot tell the time
 * (`refresh()`: cut off or restarted, its answers aged out) asks every peer at once and its
 * writers wait again, up to FRESH_INTERVALS intervals. Before
 * the first majority answered this node's own clock is all there is; `ready()` lets writers wait
 * for that first answer, up to one interval after start. A node of an earlier version answers `ping` with
 * null: it does not count.
 *
 * `offsetMs()` (this node's clock minus the cluster's) is exported as `hiqlite_clock_offset_ms`,
 * and an offset over CLOCK_OFFSET_WARN_MS is logged at most once a minute.
 */
import type { Logger } from 'pino';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { HiqliteError } from '../lib/errors.js';
import type { ClockTieBreak } from '../lib/log-clock.js';

/** An offset from the cluster's clock over this is logged (at most once a minute). */
export const CLOCK_OFFSET_WARN_MS = 1000;
const CLOCK_WARN_EVERY_MS = 60_000;
/** Samples kept per peer; the one with the shortest round trip is used. */
const SAMPLES_KEPT = 4;
/** A sample is used for this many probe intervals. */
const FRESH_INTERVALS = 3;
/**
 * Two clocks this close agree: with two of three known, their median is trusted (beyond it, the
 * third is waited for where a writer waits: see settled()).
 */
const CLOCKS_AGREE_MS = 100;
/**
 * While writers wait (ready()), a peer that could not be asked is asked again after this, not
 * at the next interval: in a cluster starting together, the nodes up first asked peers whose
 * ports were not open yet, and their start waited a whole interval for the next round (60 s
 * with a 60 s interval).
 */
const READY_RETRY_MS = 100;

export interface PeerClocksDeps {
  readonly clock: Clock;
  readonly log: Logger;
  /** How often every peer is asked (clock_probe_interval_ms); each question's deadline too. */
  readonly intervalMs: number;
  /** The other configured nodes. */
  readonly peers: readonly number[];
  /** Asks a peer's API port for its wall clock: a number, or anything else from an older node. */
  readonly askWallMs: (peer: number, timeoutMs: number) => Promise<unknown>;
}

export interface Sample {
  /** The peer's clock at `atMono` on this node's monotonic clock. */
  readonly peerWallMs: number;
  readonly atMono: number;
  readonly rttMs: number;
}

/**
 * A peer's clock at `mono` as far as its sample proves: its answer was given somewhere within the
 * round trip, so the peer's clock lies within half the round trip of the sample's middle. A busy
 * peer answers late in the round trip (a node starting up, a stalled event loop): taken at the
 * middle, its clock looked ahead by up to half of it, and two such peers moved the median — log
 * time jumped up to 0.5 s ahead on nodes whose clocks were the same one, ending TTLs and leases
 * that early (found from outside: two of three nodes restarted at once, round trips of 4.7 s). So
 * a peer's clock is taken no later than the middle, and where this node's own clock `own` lies
 * between the earliest it can be (half a round trip before the middle) and the middle, as that
 * (the two cannot be told apart): never further ahead of the truth than half the round trip, as
 * before, but no longer ahead of equal clocks. What a sample proves (a clock an hour off, with round
 * trips of milliseconds) counts as before.
 */
export function provenClock(s: Sample, mono: number, own: number): number {
  const middle = s.peerWallMs + (mono - s.atMono);
  return Math.min(Math.max(own, middle - s.rttMs / 2), middle);
}

/** A known clock: the point the median takes, and the interval the truth lies in. */
interface ClockInterval {
  readonly atMs: number;
  readonly loMs: number;
  readonly hiMs: number;
}

/**
 * The two clocks in the middle of an even number agree: their intervals come within
 * CLOCKS_AGREE_MS. Compared as points, two clocks of one host looked seconds apart on a loaded
 * machine (round trips of seconds: a peer's answer read late looks behind by half of it).
 */
function middleAgrees(clocks: ClockInterval[]): boolean {
  const sorted = [...clocks].sort((a, b) => a.atMs - b.atMs);
  const n = sorted.length;
  const lo = sorted[n / 2 - 1] as ClockInterval;
  const hi = sorted[n / 2] as ClockInterval;
  return Math.max(lo.loMs, hi.loMs) - Math.min(lo.hiMs, hi.hiMs) <= CLOCKS_AGREE_MS;
}

export class PeerClocks {
  private readonly samples = new Map<number, Sample[]>();
  private timer: TimerHandle | null = null;
  private running = false;
  private closed = false;
  private warnedAtMono = Number.NEGATIVE_INFINITY;
  private foundingWarnedAtMono = Number.NEGATIVE_INFINITY;
  /** Peers asked again soon (READY_RETRY_MS) because ready() waits and they could not be asked. */
  private readonly retries = new Map<number, TimerHandle>();
  /** The last median, at `carriedMono` on the monotonic clock (NaN: no majority known yet). */
  private carriedMs = Number.NaN;
  private carriedMono = 0;
  /** Pending while a group's first stamp waits for the cluster's clock (foundingReady()). */
  private foundingWait: { promise: Promise<void>; resolve: () => void } | null = null;
  /** Pending until a majority answered once, or for one interval at most (see ready()). */
  private readyWait: { promise: Promise<void>; resolve: () => void; timer: TimerHandle | null } | null = null;

  constructor(private readonly d: PeerClocksDeps) {
    if (d.peers.length > 0) this.armReadyWait();
  }

  /** ready() pending until the cluster's clock is settled, or for `intervals` intervals at most. */
  private armReadyWait(intervals = 1): void {
    if (this.readyWait !== null) return;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.readyWait = { promise, resolve, timer: null };
    this.readyWait.timer = this.d.clock.setTimer(() => this.endReadyWait(), intervals * this.d.intervalMs, {
      keepAlive: false,
    });
  }

  /**
   * The cluster's clock can be told at `mono`: a majority of the clocks is known and their
   * median is one of them, or the two in the middle agree (within CLOCKS_AGREE_MS), or a carried
   * clock judges between them. Two known clocks seconds apart are a guess.
   */
  private settled(mono: number): boolean {
    const clocks = this.knownIntervals(mono);
    if (clocks.length < this.majority()) return false;
    if (clocks.length % 2 === 1 || !Number.isNaN(this.carriedMs)) return true;
    return middleAgrees(clocks);
  }

  /**
   * A new group may take its first stamp at `mono` (see foundingReady()): the cluster's clock is
   * settled without a carried clock's help, or every configured node's clock is known (nothing
   * left to wait for: two nodes, or four of four, that disagree take the tie-break).
   */
  private foundable(mono: number): boolean {
    const clocks = this.knownIntervals(mono);
    if (clocks.length === this.d.peers.length + 1) return true;
    if (clocks.length < this.majority()) return false;
    return clocks.length % 2 === 1 || middleAgrees(clocks);
  }

  /**
   * This node's clock and the fresh peers' clocks now (`mono`) as intervals: a peer's clock lies
   * within half a round trip of its sample's middle (this node's own is exact), with the proven
   * clock (provenClock) as the point the median takes.
   */
  private knownIntervals(mono: number): ClockInterval[] {
    const own = this.d.clock.wallMs();
    const out: ClockInterval[] = [{ atMs: own, loMs: own, hiMs: own }];
    for (const p of this.d.peers) {
      const s = this.best(p, mono);
      if (s === null) continue;
      const middle = s.peerWallMs + (mono - s.atMono);
      out.push({ atMs: provenClock(s, mono, own), loMs: middle - s.rttMs / 2, hiMs: middle + s.rttMs / 2 });
    }
    return out;
  }

  /** This node's clock and the fresh peers' clocks now (`mono`), unsorted. */
  private knownClocks(mono: number): number[] {
    const own = this.d.clock.wallMs();
    const values = [own];
    for (const p of this.d.peers) {
      const s = this.best(p, mono);
      if (s !== null) values.push(provenClock(s, mono, own));
    }
    return values;
  }

  /**
   * This node starts to lead a group (its stamps become log time). When it cannot tell the
   * cluster's clock now (not settled(): it was cut off, or restarted while it could not reach
   * its peers, and their answers aged out), writers wait for answers again (ready(), up to
   * FRESH_INTERVALS intervals) and every peer is asked at once: else it stamped its own clock
   * until the next round, and a clock behind made log time jump forward at that round, ending
   * leases early (the cache simulation, seeds 2119 and 934).
   */
  refresh(): void {
    const { clock, peers } = this.d;
    if (this.closed || peers.length === 0) return;
    if (this.settled(clock.monotonicMs())) return;
    // As long as an answer counts (FRESH_INTERVALS): a peer stalled or cut off for a moment
    // answers within it, and a leader that cannot learn the time stamps its own after it.
    this.armReadyWait(FRESH_INTERVALS);
    if (this.running) void this.probeAll();
  }

  /** Starts asking the peers (once their API ports can be reached). */
  start(): void {
    if (this.closed || this.running || this.d.peers.length === 0) return;
    this.running = true;
    this.schedule(0);
  }

  close(): void {
    this.closed = true;
    if (this.timer !== null) this.d.clock.clearTimer(this.timer);
    this.timer = null;
    for (const t of this.retries.values()) this.d.clock.clearTimer(t);
    this.retries.clear();
    this.endReadyWait();
    this.endFoundingWait();
  }

  /**
   * Null once the cluster's clock can be told (a majority answered) or one interval after this
   * was made (the nodes that answered by then are all there is); else a promise of that moment.
   * Writers wait for it before their first stamp, so a restarted node whose clock is wrong and
   * that leads at once does not stamp its own time before its peers answered.
   */
  ready(): Promise<void> | null {
    return this.readyWait?.promise ?? null;
  }

  /**
   * Waits for ready() within `timeoutMs` and returns what is left of it; HQL_TIMEOUT (retryable)
   * when the deadline comes first, so a write's deadline is kept while it waits for the clock.
   */
  async waitReady(timeoutMs: number): Promise<number> {
    const wait = this.ready();
    if (wait === null) return timeoutMs;
    return this.waitWithin(
      wait,
      timeoutMs,
      () =>
        `the cluster's clock (the median of a majority of the nodes' clocks) was not known within ${Math.round(timeoutMs)} ms: a majority of the nodes must answer this node's clock questions (it started, or was cut off from them)`,
    );
  }

  /**
   * Null when a group that has no log time yet (a cache group founded, or founded anew after it
   * was lost) may take its first stamp now; else a promise of that moment, with no deadline of
   * its own (waitFounding keeps the writer's). A group's first stamp is where its log time and
   * its fencing tokens start, and a guess between two clocks that disagree (one node of three
   * down) stayed in them: started from a clock seconds ahead, tokens ran seconds ahead, and the
   * group founded anew after it, with the third clock known, started its tokens below those
   * granted before (the cache simulation with --cache-loss, seed 2669). So the first stamp waits
   * until the cluster's clock is settled, or until every node's clock is known (nothing left to
   * wait for: then the tie-break, LogClockSource.wallMs). The log time of a group that has it
   * never waits: the SQL group's first stamps take the tie-break, as they did.
   */
  foundingReady(): Promise<void> | null {
    if (this.closed || this.d.peers.length === 0) return null;
    if (this.foundingWait !== null) return this.foundingWait.promise;
    if (this.foundable(this.d.clock.monotonicMs())) return null;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.foundingWait = { promise, resolve };
    // Answers may have aged out: ask every peer now (those that cannot be asked, again soon).
    if (this.running) void this.probeAll();
    return promise;
  }

  /** As waitReady, for foundingReady(). */
  async waitFounding(timeoutMs: number): Promise<number> {
    const wait = this.foundingReady();
    if (wait === null) return timeoutMs;
    return this.waitWithin(wait, timeoutMs, () => {
      const offsets = [...this.peerOffsets()].map(([p, o]) => `node ${p} ${Math.round(o.offsetMs)} ms`);
      const message = `the cache group has no log time yet and takes it from the cluster's clock, which was not known within ${Math.round(timeoutMs)} ms: the clocks of the nodes that answer disagree (this node's clock against ${offsets.length === 0 ? 'none known' : offsets.join(', ')}) and no majority agrees; check time sync (NTP), or bring the other nodes back`;
      // The operator's side of it, at most once a minute: writes fail until it is mended.
      const mono = this.d.clock.monotonicMs();
      if (mono - this.foundingWarnedAtMono >= CLOCK_WARN_EVERY_MS) {
        this.foundingWarnedAtMono = mono;
        this.d.log.warn({ peers: Object.fromEntries(this.peerOffsets()) }, message);
      }
      return message;
    });
  }

  private async waitWithin(wait: Promise<void>, timeoutMs: number, message: () => string): Promise<number> {
    const { clock } = this.d;
    const started = clock.monotonicMs();
    let timer: TimerHandle | null = null;
    const inTime = await Promise.race([
      wait.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = clock.setTimer(() => resolve(false), Math.max(0, timeoutMs), { keepAlive: false });
      }),
    ]);
    if (timer !== null) clock.clearTimer(timer);
    if (!inTime) throw new HiqliteError('HQL_TIMEOUT', message(), { retryable: true });
    return Math.max(0, timeoutMs - (clock.monotonicMs() - started));
  }

  private endFoundingWait(): void {
    const w = this.foundingWait;
    if (w === null) return;
    this.foundingWait = null;
    w.resolve();
  }

  private endReadyWait(): void {
    const w = this.readyWait;
    if (w === null) return;
    this.readyWait = null;
    if (w.timer !== null) this.d.clock.clearTimer(w.timer);
    w.resolve();
  }

  /**
   * The cluster's wall clock now (see the module comment). `tieBreak`: which of two known clocks
   * that disagree to take when no carried clock judges between them (LogClockSource.wallMs).
   */
  wallMs(tieBreak: ClockTieBreak = 'earlier'): number {
    const { clock, peers } = this.d;
    const own = clock.wallMs();
    if (peers.length === 0) return own;
    const mono = clock.monotonicMs();
    const values = this.knownClocks(mono);
    const known = !Number.isNaN(this.carriedMs);
    const carried = known ? this.carriedMs + (mono - this.carriedMono) : own;
    if (values.length < this.majority()) return carried;
    values.sort((a, b) => a - b);
    const n = values.length;
    let median: number;
    if (n % 2 === 1) median = values[(n - 1) / 2] as number;
    else {
      const lo = values[n / 2 - 1] as number;
      const hi = values[n / 2] as number;
      // Without a carried clock, as the caller says: the earlier for a log that has time (a
      // clock behind cannot move log time, one ahead ends TTLs and leases early), the later for
      // one without (started behind, log time would jump forward once the clock is known). Not
      // carried: a guess must not judge later readings (a log clock carries what it stamped).
      if (!known) return tieBreak === 'later' ? hi : lo;
      median = Math.abs(lo - carried) <= Math.abs(hi - carried) ? lo : hi;
    }
    this.carriedMs = median;
    this.carriedMono = mono;
    return median;
  }

  /** This node's clock minus the cluster's, in ms (positive: ahead). */
  offsetMs(): number {
    return this.d.clock.wallMs() - this.wallMs();
  }

  /** The peers whose clock is known now, with their offset from this node's clock (metrics, tests). */
  peerOffsets(): Map<number, { offsetMs: number; rttMs: number }> {
    const mono = this.d.clock.monotonicMs();
    const own = this.d.clock.wallMs();
    const out = new Map<number, { offsetMs: number; rttMs: number }>();
    for (const p of this.d.peers) {
      const s = this.best(p, mono);
      if (s !== null) out.set(p, { offsetMs: provenClock(s, mono, own) - own, rttMs: s.rttMs });
    }
    return out;
  }

  /** Of the configured nodes (this one included). */
  private majority(): number {
    return Math.floor((this.d.peers.length + 1) / 2) + 1;
  }

  private best(peer: number, mono: number): Sample | null {
    const freshMs = FRESH_INTERVALS * this.d.intervalMs;
    let best: Sample | null = null;
    for (const s of this.samples.get(peer) ?? []) {
      if (mono - s.atMono > freshMs) continue;
      if (best === null || s.rttMs < best.rttMs) best = s;
    }
    return best;
  }

  private schedule(delayMs: number): void {
    if (this.closed) return;
    this.timer = this.d.clock.setTimer(
      () => {
        this.timer = null;
        void this.probeAll().finally(() => this.schedule(this.d.intervalMs));
      },
      delayMs,
      { keepAlive: false },
    );
  }

  /** Asks every peer once (the timer does, every interval; tests call it directly). */
  async probeAll(): Promise<void> {
    await Promise.all(this.d.peers.map((p) => this.probe(p)));
    this.warnIfOff();
  }

  private async probe(peer: number): Promise<void> {
    const { clock, intervalMs } = this.d;
    const sent = clock.monotonicMs();
    let answer: unknown;
    try {
      answer = await this.d.askWallMs(peer, intervalMs);
    } catch {
      // Down or unreachable: its samples age out. Asked again soon while writers wait.
      this.retrySoon(peer);
      return;
    }
    const received = clock.monotonicMs();
    if (this.closed || typeof answer !== 'number' || !Number.isFinite(answer)) return;
    const list = this.samples.get(peer) ?? [];
    list.push({ peerWallMs: answer, atMono: (sent + received) / 2, rttMs: received - sent });
    if (list.length > SAMPLES_KEPT) list.shift();
    this.samples.set(peer, list);
    if (this.readyWait !== null && this.settled(received)) this.endReadyWait();
    if (this.foundingWait !== null && this.foundable(received)) this.endFoundingWait();
  }

  private retrySoon(peer: number): void {
    if (this.closed || !this.running || !this.waited() || this.retries.has(peer)) return;
    const t = this.d.clock.setTimer(
      () => {
        this.retries.delete(peer);
        if (this.waited()) void this.probe(peer);
      },
      READY_RETRY_MS,
      { keepAlive: false },
    );
    this.retries.set(peer, t);
  }

  /** Writers wait for the clock (ready() or foundingReady() pending). */
  private waited(): boolean {
    return this.readyWait !== null || this.foundingWait !== null;
  }

  private warnIfOff(): void {
    const offsetMs = this.offsetMs();
    if (Math.abs(offsetMs) <= CLOCK_OFFSET_WARN_MS) return;
    const mono = this.d.clock.monotonicMs();
    if (mono - this.warnedAtMono < CLOCK_WARN_EVERY_MS) return;
    this.warnedAtMono = mono;
    this.d.log.warn(
      { offsetMs: Math.round(offsetMs), peers: Object.fromEntries(this.peerOffsets()) },
      `this node's clock is ${Math.round(Math.abs(offsetMs))} ms ${offsetMs > 0 ? 'ahead of' : 'behind'} the cluster's (the median of the nodes' clocks): it stamps entries with the cluster's time, but check time sync (NTP) on this node`,
    );
  }
}
