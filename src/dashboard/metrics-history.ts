/**
 * The last minutes of a node's activity for the dashboard's charts: writes and reads per second,
 * apply lag, and write latency (p50, p99), one sample per second in fixed-size rings, so memory is
 * bounded whatever the load (`capacity` samples × 5 series).
 *
 * Latencies of one second go into a histogram of logarithmic buckets (4 per power of two, from
 * 10 µs to about 10 s: at most 19 % above the true value), not a list: a second with a million
 * writes costs no more than a second with one. Time comes from the injected clock.
 */
import { assert } from '../lib/assert.js';
import type { Clock, TimerHandle } from '../lib/clock.js';
import type { MetricsSeries } from './api-types.js';

export const METRICS_INTERVAL_MS = 1000;
/** Ten minutes of one-second samples. */
export const METRICS_CAPACITY_DEFAULT = 600;

const BUCKETS = 80;
const BUCKET_BASE_MS = 0.01;
const BUCKETS_PER_DOUBLING = 4;

export class MetricsHistory {
  private readonly writes: Float64Array;
  private readonly reads: Float64Array;
  private readonly lag: Float64Array;
  private readonly p50: Float64Array;
  private readonly p99: Float64Array;
  /** Samples taken, ever; the ring holds the last `capacity`. */
  private count = 0;
  private endWallMs = 0;
  private writesNow = 0;
  private readsNow = 0;
  private readonly histogram = new Uint32Array(BUCKETS);
  private timer: TimerHandle | null = null;

  constructor(readonly capacity = METRICS_CAPACITY_DEFAULT) {
    assert(Number.isInteger(capacity) && capacity >= 2 && capacity <= 86_400, 'metrics capacity');
    this.writes = new Float64Array(capacity);
    this.reads = new Float64Array(capacity);
    this.lag = new Float64Array(capacity);
    this.p50 = new Float64Array(capacity);
    this.p99 = new Float64Array(capacity);
  }

  recordWrite(latencyMs: number): void {
    this.writesNow++;
    const i = Math.floor(
      Math.log2(Math.max(latencyMs, BUCKET_BASE_MS) / BUCKET_BASE_MS) * BUCKETS_PER_DOUBLING,
    );
    this.histogram[Math.min(BUCKETS - 1, Math.max(0, i))]! += 1;
  }

  recordRead(): void {
    this.readsNow++;
  }

  /** Closes the current second: what was recorded since the last sample, and the lag now. */
  sample(wallMs: number, applyLag: number): void {
    const at = this.count % this.capacity;
    this.writes[at] = this.writesNow;
    this.reads[at] = this.readsNow;
    this.lag[at] = Math.max(0, applyLag);
    this.p50[at] = this.percentile(0.5);
    this.p99[at] = this.percentile(0.99);
    this.count++;
    this.endWallMs = wallMs;
    this.writesNow = 0;
    this.readsNow = 0;
    this.histogram.fill(0);
  }

  /** Samples every second until stop(); the timer does not keep the process alive. */
  start(clock: Clock, applyLag: () => number): void {
    assert(this.timer === null, 'metrics sampling started twice');
    const tick = () => {
      this.sample(clock.wallMs(), applyLag());
      this.timer = clock.setTimer(tick, METRICS_INTERVAL_MS, { keepAlive: false });
    };
    this.timer = clock.setTimer(tick, METRICS_INTERVAL_MS, { keepAlive: false });
  }

  stop(clock: Clock): void {
    if (this.timer !== null) clock.clearTimer(this.timer);
    this.timer = null;
  }

  series(): MetricsSeries {
    const n = Math.min(this.count, this.capacity);
    const first = this.count - n;
    const pick = (ring: Float64Array) =>
      Array.from({ length: n }, (_, k) => ring[(first + k) % this.capacity] ?? 0);
    const orNull = (v: number) => (v < 0 ? null : round3(v));
    return {
      intervalMs: METRICS_INTERVAL_MS,
      endWallMs: this.endWallMs,
      writesPerSec: pick(this.writes),
      readsPerSec: pick(this.reads),
      applyLag: pick(this.lag),
      latencyP50Ms: pick(this.p50).map(orNull),
      latencyP99Ms: pick(this.p99).map(orNull),
    };
  }

  /** The upper bound of the bucket holding quantile `q` of this second's writes; -1 when none. */
  private percentile(q: number): number {
    const total = this.writesNow;
    if (total === 0) return -1;
    const rank = Math.ceil(q * total);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.histogram[i] ?? 0;
      if (seen >= rank) return BUCKET_BASE_MS * 2 ** ((i + 1) / BUCKETS_PER_DOUBLING);
    }
    return BUCKET_BASE_MS * 2 ** (BUCKETS / BUCKETS_PER_DOUBLING);
  }
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
