/**
 * The N items with the largest score seen so far, in O(N) memory: a min-heap whose root is the
 * smallest kept score, so most candidates are rejected with one comparison.
 */
export class TopN<T> {
  private readonly heap: Array<{ score: number; item: T }> = [];

  constructor(private readonly capacity: number) {}

  /** Offers an item; `make` builds it only when it is kept (no allocation for rejects). */
  offer(score: number, make: () => T): void {
    if (this.capacity <= 0) return;
    const h = this.heap;
    if (h.length < this.capacity) {
      h.push({ score, item: make() });
      this.up(h.length - 1);
    } else if (score > h[0]!.score) {
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
