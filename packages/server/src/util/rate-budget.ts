import { TokenBucket } from './token-bucket.js';

/** The two rates of a {@link RateBudget}, per second, and the bursts they allow. */
export interface RateBudgetLimits {
  /** Per owner (a connection), sustained, per second. */
  perOwner: number;
  /** Most one owner may take at once. */
  ownerBurst: number;
  /** Per key (an address, a user), sustained, per second. */
  perKey: number;
  /** Most one key may take at once. */
  keyBurst: number;
}

/** Most keys tracked at once; past it the fullest (idlest) are forgotten first at the next sweep. */
const MAX_KEYS = 50_000;
/** Full key buckets are forgotten this often (ms). */
const SWEEP_EVERY = 1000;

/**
 * A rate limit at two levels at once: per owner object (a connection: its bucket lives as long as it does) and
 * per key shared by many owners (the connections of one address, or of one user). An owner's bucket is made on
 * its first take; key buckets live in a bounded map swept at most once a second as it is used (full buckets are
 * forgotten: they carry no information).
 */
export class RateBudget {
  private readonly owners = new WeakMap<object, TokenBucket>();
  private readonly keys = new Map<string, TokenBucket>();
  private lastSweep = -Infinity;

  constructor(private readonly limits: RateBudgetLimits) {}

  /** Charges one to `owner` and `key`; false (nothing charged) when either is over its limit. */
  take(owner: object, key: string, now: number): boolean {
    const l = this.limits;
    let o = this.owners.get(owner);
    if (!o) this.owners.set(owner, (o = new TokenBucket(l.perOwner, l.ownerBurst, now)));
    // Swept as it is used, at most once a second, so an owner needs no timer for it.
    if (now - this.lastSweep >= SWEEP_EVERY) this.sweep(now);
    let k = this.keys.get(key);
    if (!k) {
      if (this.keys.size >= MAX_KEYS) this.sweep(now);
      // Still full of active keys: forget the longest known (Map order), a bounded loss of precision.
      if (this.keys.size >= MAX_KEYS) this.keys.delete(this.keys.keys().next().value as string);
      this.keys.set(key, (k = new TokenBucket(l.perKey, l.keyBurst, now)));
    }
    if (o.wait(now) > 0 || k.wait(now) > 0) return false;
    o.take(now);
    k.take(now);
    return true;
  }

  /** Forgets keys whose bucket is full again. */
  sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, bucket] of this.keys) if (bucket.full(now)) this.keys.delete(key);
  }

  /** Keys tracked (for tests). */
  get size(): number {
    return this.keys.size;
  }
}
