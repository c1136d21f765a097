// Point-in-time distributions of one poll: fixed-bucket counts (for heatmaps) and every value, for
// the exact order statistics exported as summaries (./order.ts). Rebuilt every poll.

import { QUANTILES, Values } from './order.ts';

/** Bucket counts as a Prometheus histogram shows them. */
export interface HistogramView {
  /** Upper bounds, ascending; +Inf is implicit. */
  readonly bounds: readonly number[];
  /** Cumulative counts per bound (observations <= bound), then the +Inf count. */
  readonly cumulative: readonly number[];
  readonly sum: number;
  readonly count: number;
}

export interface Distribution extends HistogramView {
  /** Exact nearest-rank order statistics at QUANTILES (./order.ts); empty when count is 0. */
  readonly quantiles: readonly number[];
}

export { QUANTILES };

/**
 * Fixed-bucket counts, their sum and count. As itself, a real (cumulative) histogram: observations
 * add up for the exporter's lifetime, so rate() works. Buckets (below) adds the values of one poll.
 */
export class CumulativeHistogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(v: number): void {
    // Bounds lists are short (≤ 16): a linear scan beats a binary search here.
    let i = 0;
    while (i < this.bounds.length && v > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }

  view(): HistogramView {
    const cumulative: number[] = [];
    let acc = 0;
    for (const c of this.counts) cumulative.push((acc += c));
    return Object.freeze({ bounds: this.bounds, cumulative: Object.freeze(cumulative), sum: this.sum, count: this.count });
  }
}

/** One poll's distribution (a new one every poll): the bucket counts and every value, for exact quantiles. */
export class Buckets extends CumulativeHistogram {
  private readonly values = new Values();

  override observe(v: number): void {
    super.observe(v);
    this.values.push(v);
  }

  result(): Distribution {
    return Object.freeze({ ...this.view(), quantiles: Object.freeze(this.values.quantiles(QUANTILES)) });
  }
}

/**
 * Persist timer waits follow the kernel's own steps: the wait doubles from the RTO (at least
 * TCP_RTO_MIN, 200 ms) at each backoff level, up to the 120 s cap (TCP_RTO_MAX). With a larger
 * RTO (loopback: ~208 ms) the real waits sit a little above each bound.
 */
export const PERSIST_BOUNDS: readonly number[] = [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 120];
/** Backoff exponents (ss -i backoff:N); the kernel caps them at tcp_retries2 (15). */
export const BACKOFF_BOUNDS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15];
/** Bytes per socket: 1 KiB … 64 MiB in powers of 4. */
export const BYTES_BOUNDS: readonly number[] = [1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
/**
 * Time in FIN-WAIT-1, on the kernel's zero-window schedule: with the minimum RTO (200 ms) the k-th
 * probe goes out 0.2 × (2^k − 1) s after the window closed (1.4 s … 204.6 s: the 120 s cap is
 * reached at the 10th), then every 120 s (324.6, 444.6 s); an orphan is aborted on that schedule,
 * ~325 s with the defaults (docs/kernel-and-ss.md). Then 10 min, 30 min, an hour.
 */
export const AGE_BOUNDS: readonly number[] = [1.4, 3, 6.2, 12.6, 25.4, 51, 102.2, 204.6, 324.6, 444.6, 600, 1800, 3600];
