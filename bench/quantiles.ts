// Cost of the exact quantiles (issue 13 item 1): a poll's distribution of N values through the
// same code the poller uses (Buckets: observe() per socket, result() selects the order statistics).
// Prints figures; asserts nothing. Usage: tsx bench/quantiles.ts [N ...] (default 30000 930000).

import { Buckets, BYTES_BOUNDS } from '../src/aggregate/buckets.ts';

const sizes = process.argv.slice(2).map(Number);
const shapes: Record<string, (i: number, n: number) => number> = {
  'random bytes': () => Math.floor(Math.random() * 4_000_000),
  'all alike (one lab)': () => 94_209,
  'few levels (backoff)': (i) => i % 16,
  'ascending (ages in arrival order)': (i) => i,
};

for (const n of sizes.length > 0 ? sizes : [30_000, 930_000]) {
  for (const [shape, value] of Object.entries(shapes)) {
    const times: number[] = [];
    let observeMs = 0;
    for (let rep = 0; rep < 5; rep++) {
      const b = new Buckets(BYTES_BOUNDS);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) b.observe(value(i, n));
      const t1 = performance.now();
      b.result();
      times.push(performance.now() - t1);
      observeMs = t1 - t0;
    }
    times.sort((a, b) => a - b);
    const heapMiB = process.memoryUsage().arrayBuffers / 2 ** 20;
    console.log(
      `${String(n).padStart(7)} values, ${shape.padEnd(34)} quantiles: median ${times[2]!.toFixed(1)} ms (min ${times[0]!.toFixed(1)}, max ${times[4]!.toFixed(1)}); ` +
        `observe() all: ${observeMs.toFixed(1)} ms; values kept: ${((n * 8) / 2 ** 20).toFixed(1)} MiB (array buffers now ${heapMiB.toFixed(1)} MiB)`,
    );
  }
}
