// Fixed-bucket counting for point-in-time distributions: O(buckets) memory whatever the number
// of sockets observed. Exposed as a Prometheus histogram rebuilt every poll.

export interface Distribution {
  /** Upper bounds, ascending; +Inf is implicit. */
  readonly bounds: readonly number[];
  /** Cumulative counts per bound (observations <= bound), then the +Inf count. */
  readonly cumulative: readonly number[];
  readonly sum: number;
  readonly count: number;
}

export class Buckets {
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

  result(): Distribution {
    const cumulative: number[] = [];
    let acc = 0;
    for (const c of this.counts) cumulative.push((acc += c));
    return Object.freeze({ bounds: this.bounds, cumulative: Object.freeze(cumulative), sum: this.sum, count: this.count });
  }
}

/** Persist timer waits follow the backoff doublings from 200 ms up to the 120 s cap. */
export const PERSIST_BOUNDS: readonly number[] = [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 120];
/** Backoff exponents (ss -i backoff:N); the kernel caps them at tcp_retries2 (15). */
export const BACKOFF_BOUNDS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 15];
/** Bytes per socket: 1 KiB … 64 MiB in powers of 4. */
export const BYTES_BOUNDS: readonly number[] = [1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864];
/** Time in a state: seconds, from one poll to an hour. */
export const AGE_BOUNDS: readonly number[] = [5, 15, 30, 60, 120, 300, 600, 1800, 3600];
