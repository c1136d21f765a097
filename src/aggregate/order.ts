// Exact order statistics of the values one poll observed: every value is kept (8 bytes each, in a
// typed array that doubles as it fills) and the quantiles are selected, not estimated.
//
// Definition (README "Exact quantiles"): the q-quantile of n values is the nearest-rank order
// statistic, the value of rank ceil(q × n) in ascending order (rank 1 for q = 0): the smallest
// value such that at least q × n of the values are at most it. q = 0 is the minimum, q = 1 the
// maximum, and every quantile is one of the observed values, never an interpolation.
//
// Cost: selection (Floyd-Rivest, the quickselect package) is linear in n on average; the ranks
// are selected in ascending order, each in the part of the array right of the previous one.
// Measured at 930 000 values: docs/performance.md "Exact quantiles".

import quickselect from 'quickselect';

/** The quantiles exported for every snapshot distribution (the `quantile` label). */
export const QUANTILES: readonly number[] = [0, 0.5, 0.9, 0.99, 1];

/** The 1-based nearest rank of the q-quantile among n values (n ≥ 1). */
export function nearestRank(q: number, n: number): number {
  return Math.min(n, Math.max(1, Math.ceil(q * n)));
}

/** Values of one poll, appended one by one, kept in a growing Float64Array. */
export class Values {
  private buf: Float64Array;
  private n = 0;

  constructor(initialCapacity = 64) {
    this.buf = new Float64Array(initialCapacity);
  }

  get count(): number {
    return this.n;
  }

  push(v: number): void {
    if (this.n === this.buf.length) {
      const bigger = new Float64Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.n++] = v;
  }

  /**
   * The nearest-rank order statistics at `quantiles` (ascending), or an empty list when no value
   * was observed. Reorders the values it holds (they are a multiset: their order means nothing).
   */
  quantiles(quantiles: readonly number[] = QUANTILES): number[] {
    return orderStatistics(this.buf.subarray(0, this.n), quantiles);
  }
}

/**
 * The nearest-rank order statistics of `values` at `quantiles` (ascending q), selected in place:
 * `values` is partially reordered. Empty when there is no value.
 */
export function orderStatistics(values: Float64Array, quantiles: readonly number[]): number[] {
  const n = values.length;
  if (n === 0) return [];
  // quickselect is typed for arrays; it only indexes and swaps, which a Float64Array does the same.
  const arr = values as unknown as number[];
  const out: number[] = [];
  let left = 0;
  let previousQ = -Infinity;
  for (const q of quantiles) {
    if (!(q >= 0 && q <= 1) || q < previousQ) throw new Error(`quantiles must be ascending within [0, 1]: ${quantiles.join(', ')}`);
    previousQ = q;
    const k = nearestRank(q, n) - 1;
    // Everything left of the previous rank is already no larger than it: select in what remains.
    if (k > left || left === 0) quickselect(arr, k, left, n - 1, compare);
    out.push(values[k]!);
    left = k;
  }
  return out;
}

const compare = (a: number, b: number) => (a < b ? -1 : a > b ? 1 : 0);
