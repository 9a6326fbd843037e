/**
 * Remembers results by idempotency key for a fixed window. Keys are inserted in time order with one TTL,
 * so the oldest entry is always first in the map and expiry is a walk from the front.
 */
export class IdempotencyCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();

  constructor(
    private readonly ttl: number,
    private readonly maxEntries: number,
    private readonly now: () => number,
  ) {}

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  set(key: string, value: V): void {
    const now = this.now();
    this.entries.delete(key);
    this.entries.set(key, { value, expires: now + this.ttl });
    for (const [k, e] of this.entries) {
      if (e.expires > now && this.entries.size <= this.maxEntries) break;
      this.entries.delete(k);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
