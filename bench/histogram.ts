/**
 * A latency histogram with fixed, logarithmic buckets (about 2% relative error), so a run of any
 * length uses the same bounded memory and histograms from several processes can be merged
 * (children send theirs to the parent as JSON).
 */

/** Buckets per power of two: 2^(1/32) ≈ 1.022, i.e. about ±1.1% around a bucket's midpoint. */
const BUCKETS_PER_OCTAVE = 32;
/** Resolution floor: latencies below 1 µs land in bucket 0. */
const MIN_US = 1;
/** 2^30 µs ≈ 18 minutes: anything longer lands in the last bucket. */
const OCTAVES = 30;
const BUCKET_COUNT = OCTAVES * BUCKETS_PER_OCTAVE + 1;

export interface HistogramJson {
  readonly counts: Record<string, number>;
  readonly count: number;
  readonly maxMs: number;
  readonly sumMs: number;
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKET_COUNT);
  private total = 0;
  private max = 0;
  private sum = 0;

  record(latencyMs: number): void {
    const us = latencyMs * 1000;
    const i =
      us <= MIN_US
        ? 0
        : Math.min(BUCKET_COUNT - 1, Math.floor(Math.log2(us / MIN_US) * BUCKETS_PER_OCTAVE) + 1);
    this.counts[i] = (this.counts[i] as number) + 1;
    this.total++;
    this.sum += latencyMs;
    if (latencyMs > this.max) this.max = latencyMs;
  }

  get count(): number {
    return this.total;
  }

  get maxMs(): number {
    return this.max;
  }

  get meanMs(): number {
    return this.total === 0 ? 0 : this.sum / this.total;
  }

  /** The latency at quantile `q` in [0, 1], in ms (the midpoint of its bucket); 0 when empty. */
  percentileMs(q: number): number {
    if (this.total === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) return Math.min(this.max, bucketMidMs(i));
    }
    return this.max;
  }

  merge(other: LatencyHistogram): void {
    for (let i = 0; i < BUCKET_COUNT; i++)
      this.counts[i] = (this.counts[i] as number) + (other.counts[i] as number);
    this.total += other.total;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
  }

  toJSON(): HistogramJson {
    const counts: Record<string, number> = {};
    for (let i = 0; i < BUCKET_COUNT; i++) {
      const c = this.counts[i] as number;
      if (c > 0) counts[String(i)] = c;
    }
    return { counts, count: this.total, maxMs: this.max, sumMs: this.sum };
  }

  static fromJSON(j: HistogramJson): LatencyHistogram {
    const h = new LatencyHistogram();
    for (const [k, v] of Object.entries(j.counts)) {
      const i = Number(k);
      if (Number.isInteger(i) && i >= 0 && i < BUCKET_COUNT) h.counts[i] = v;
    }
    h.total = j.count;
    h.max = j.maxMs;
    h.sum = j.sumMs;
    return h;
  }
}

function bucketMidMs(i: number): number {
  if (i === 0) return MIN_US / 1000;
  const lo = MIN_US * 2 ** ((i - 1) / BUCKETS_PER_OCTAVE);
  const hi = MIN_US * 2 ** (i / BUCKETS_PER_OCTAVE);
  return (lo + hi) / 2 / 1000;
}
