/** A binary min-heap: `push` and `pop` in O(log n), `peek` in O(1); ties come out in no particular order. */
export class MinHeap<T> {
  private items: T[] = [];

  /** `less(a, b)`: whether `a` comes out before `b`. */
  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(a[i] as T, a[parent] as T)) break;
      [a[i], a[parent]] = [a[parent] as T, a[i] as T];
      i = parent;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    a[0] = last;
    this.down(0);
    return top;
  }

  /** Moves the item at `start` down to its place. */
  private down(start: number): void {
    const a = this.items;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < a.length && this.less(a[l] as T, a[min] as T)) min = l;
      if (r < a.length && this.less(a[r] as T, a[min] as T)) min = r;
      if (min === i) break;
      [a[i], a[min]] = [a[min] as T, a[i] as T];
      i = min;
    }
  }

  /** Keeps only the items `keep` accepts, in O(n) (filtered, then heapified bottom up), e.g. to drop entries that went stale. */
  retain(keep: (item: T) => boolean): void {
    this.items = this.items.filter(keep);
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) this.down(i);
  }
}
