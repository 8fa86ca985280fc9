/**
 * A mergeable latency histogram: log-spaced buckets 2% wide, so quantiles
 * are within 2% from 1 µs to minutes, whatever the sample count. Workers
 * send their counts to the coordinator, which adds them up.
 */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = 1200; // 1.02^1200 µs ≈ 2.0e10 µs: far past any run

export interface HistogramData {
  counts: number[];
  count: number;
  sumUs: number;
  maxUs: number;
}

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS);
  count = 0;
  sumUs = 0;
  maxUs = 0;

  record(us: number): void {
    const v = us > 1 ? us : 1;
    const i = Math.min(BUCKETS - 1, Math.ceil(Math.log(v) / LOG_GROWTH));
    this.counts[i]++;
    this.count++;
    this.sumUs += v;
    if (v > this.maxUs) this.maxUs = v;
  }

  add(other: HistogramData): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += other.counts[i] ?? 0;
    this.count += other.count;
    this.sumUs += other.sumUs;
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs;
  }

  /** The upper bound of the bucket holding quantile q, in µs (exact for the maximum). */
  quantileUs(q: number): number {
    if (this.count === 0) return NaN;
    if (q >= 1) return this.maxUs;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(GROWTH ** i, this.maxUs);
    }
    return this.maxUs;
  }

  toJSON(): HistogramData {
    return { counts: Array.from(this.counts), count: this.count, sumUs: this.sumUs, maxUs: this.maxUs };
  }
}
