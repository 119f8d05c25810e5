// Latency histogram: 1 µs bins up to 10 ms, 100 µs bins up to 1 s, exact max and mean.

export interface Latency {
  count: number;
  meanMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

const FINE_US = 10_000; // 1 µs bins below 10 ms
const COARSE_STEP_US = 100;
const COARSE_BINS = 9_900; // 100 µs bins from 10 ms to 1 s

export class Histogram {
  private readonly bins = new Uint32Array(FINE_US + COARSE_BINS + 1);
  count = 0;
  private sum = 0;
  private max = 0;

  /** Records one latency in milliseconds. */
  add(ms: number): void {
    const us = ms > 0 ? ms * 1000 : 0;
    let i: number;
    if (us < FINE_US) i = Math.floor(us);
    else i = Math.min(FINE_US + Math.floor((us - FINE_US) / COARSE_STEP_US), this.bins.length - 1);
    this.bins[i] = (this.bins[i] ?? 0) + 1;
    this.count++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  /** Adds every latency `other` holds (a pool of several windows). */
  merge(other: Histogram): void {
    for (let i = 0; i < this.bins.length; i++)
      this.bins[i] = (this.bins[i] ?? 0) + (other.bins[i] ?? 0);
    this.count += other.count;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
  }

  /** The value (ms) at quantile q (0..1): the middle of the bin holding it. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.bins.length; i++) {
      seen += this.bins[i] ?? 0;
      if (seen >= rank) {
        const us =
          i < FINE_US ? i + 0.5 : FINE_US + (i - FINE_US) * COARSE_STEP_US + COARSE_STEP_US / 2;
        return Math.min(us / 1000, this.max);
      }
    }
    return this.max;
  }

  summary(): Latency {
    return {
      count: this.count,
      meanMs: round(this.count ? this.sum / this.count : 0),
      p50Ms: round(this.quantile(0.5)),
      p95Ms: round(this.quantile(0.95)),
      p99Ms: round(this.quantile(0.99)),
      maxMs: round(this.max),
    };
  }
}

/** Rounds to 3 decimals (µs precision for milliseconds). */
export const round = (x: number, digits = 3): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** The middle value (the mean of the two middle values for an even count); 0 for none. */
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};

/** Which part of a span split at `marks` (ascending) `at` falls in: 0 before marks[0], k at or after marks[k − 1]. */
export function partOf(at: number, marks: readonly number[]): number {
  let k = 0;
  while (k < marks.length && at >= (marks[k] as number)) k++;
  return k;
}
