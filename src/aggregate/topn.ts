/**
 * The N items with the largest score seen so far, in O(N) memory: a min-heap whose root is the
 * smallest kept score, so most candidates are rejected with one comparison.
 */
export class TopN<T> {
  private readonly heap: Array<{ score: number; item: T }> = [];

  constructor(private readonly capacity: number) {}

  /** Whether an item with this score would be kept: check before building it. */
  accepts(score: number): boolean {
    return this.heap.length < this.capacity || (this.capacity > 0 && score > this.heap[0]!.score);
  }

  /** Offers an item; `make` builds it only when it is kept. */
  offer(score: number, make: () => T): void {
    if (!this.accepts(score)) return;
    const h = this.heap;
    if (h.length < this.capacity) {
      h.push({ score, item: make() });
      this.up(h.length - 1);
    } else {
      h[0] = { score, item: make() };
      this.down(0);
    }
  }

  /** Kept items, largest score first. */
  sorted(): T[] {
    return [...this.heap].sort((a, b) => b.score - a.score).map((e) => e.item);
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.score <= h[i]!.score) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.score < h[m]!.score) m = l;
      if (r < h.length && h[r]!.score < h[m]!.score) m = r;
      if (m === i) return;
      [h[m], h[i]] = [h[i]!, h[m]!];
      i = m;
    }
  }
}
