// Exact order statistics (src/aggregate/order.ts): the nearest-rank definition on hand-made tables,
// and against a full sort on random data of every shape.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { QUANTILES, Values, nearestRank, orderStatistics } from '../../src/aggregate/order.ts';

const of = (values: number[], qs: readonly number[] = QUANTILES) => orderStatistics(Float64Array.from(values), qs);

describe('nearest-rank order statistics', () => {
  const table: Array<[string, number[], number[]]> = [
    ['one value: every quantile is it', [7], [7, 7, 7, 7, 7]],
    ['two values: the median is the lower one (rank ceil(0.5 × 2) = 1)', [9, 3], [3, 3, 9, 9, 9]],
    ['ten values 1..10: p90 is the 9th, p99 the 10th', [10, 9, 8, 7, 6, 5, 4, 3, 2, 1], [1, 5, 9, 10, 10]],
    ['all equal (the lab: every socket holds the same Send-Q)', new Array<number>(30_000).fill(94_209), [94_209, 94_209, 94_209, 94_209, 94_209]],
    ['one outlier among 100: only p100 sees it (p99 is rank 99)', [...new Array<number>(99).fill(1), 1000], [1, 1, 1, 1, 1000]],
    ['one outlier among 101: p99 is rank 100', [...new Array<number>(100).fill(1), 1000], [1, 1, 1, 1, 1000]],
    ['two outliers among 101: p99 is rank 100', [...new Array<number>(99).fill(1), 500, 1000], [1, 1, 1, 500, 1000]],
  ];
  for (const [name, values, want] of table) it(name, () => assert.deepEqual(of(values), want));

  it('no value: no quantile', () => assert.deepEqual(of([]), []));

  it('ranks: ceil(q × n), at least 1, at most n', () => {
    assert.equal(nearestRank(0, 5), 1);
    assert.equal(nearestRank(0.5, 5), 3);
    assert.equal(nearestRank(0.5, 4), 2);
    assert.equal(nearestRank(0.99, 100), 99);
    assert.equal(nearestRank(0.99, 1000), 990);
    assert.equal(nearestRank(1, 5), 5);
  });

  it('refuses quantiles out of order or out of [0, 1]', () => {
    assert.throws(() => of([1, 2], [0.5, 0.1]), /ascending/);
    assert.throws(() => of([1, 2], [1.5]), /ascending/);
  });

  // (x + 0 turns -0 into 0: both compare equal, so which one a rank returns is arbitrary; sockets never have -0.)
  it('equals the sorted array at the nearest rank, for any values and any ascending quantiles', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 10 }), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e9, max: 1e9 }).map((x) => x + 0)), { minLength: 1, maxLength: 3000 }),
        fc.uniqueArray(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
        (values, qs) => {
          const sorted = [...values].sort((a, b) => a - b);
          const quantiles = [...QUANTILES, ...qs].sort((a, b) => a - b);
          const want = quantiles.map((q) => sorted[nearestRank(q, values.length) - 1]);
          assert.deepEqual(of(values, quantiles), want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('Values grows past its first capacity and keeps every value', () => {
    const v = new Values(2);
    for (let i = 1000; i >= 1; i--) v.push(i);
    assert.equal(v.count, 1000);
    assert.deepEqual(v.quantiles(), [1, 500, 900, 990, 1000]);
  });
});
