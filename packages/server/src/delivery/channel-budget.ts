import { TokenBucket } from '../util/token-bucket.js';

/** How fast connections and addresses may bring new channels to a node. */
export interface ChannelBudgetLimits {
  /** New channels per minute per connection, sustained. */
  perConnection: number;
  /** New channels one connection may bring at once (a connect with many subscriptions). */
  perConnectionBurst: number;
  /** New channels per minute per client address, sustained. */
  perIp: number;
  /** New channels one address may bring at once. */
  perIpBurst: number;
}

/** Most addresses tracked at once; past it the fullest (idlest) are forgotten first at the next sweep. */
const MAX_ADDRESSES = 50_000;

/**
 * Limits how fast subscriptions create channels on this node (a channel with no local subscriber yet: an
 * engine subscription, a hub entry, presence keys): per connection and per address, so that a client cannot
 * churn through millions of names. Subscribing to channels that already have local subscribers costs nothing.
 * A connection's bucket is made on its first new channel; address buckets live in a bounded map swept once a
 * second (full buckets are forgotten: they carry no information).
 */
export class ChannelBudget {
  private readonly connections = new WeakMap<object, TokenBucket>();
  private readonly addresses = new Map<string, TokenBucket>();

  constructor(private readonly limits: ChannelBudgetLimits) {}

  /** Charges one new channel to `conn` and `ip`; false (nothing charged) when either is over its limit. */
  take(conn: object, ip: string, now: number): boolean {
    const l = this.limits;
    let c = this.connections.get(conn);
    if (!c) this.connections.set(conn, (c = new TokenBucket(l.perConnection / 60, l.perConnectionBurst, now)));
    let a = this.addresses.get(ip);
    if (!a) {
      if (this.addresses.size >= MAX_ADDRESSES) this.sweep(now);
      // Still full of active addresses: forget the longest known (Map order), a bounded loss of precision.
      if (this.addresses.size >= MAX_ADDRESSES) this.addresses.delete(this.addresses.keys().next().value as string);
      this.addresses.set(ip, (a = new TokenBucket(l.perIp / 60, l.perIpBurst, now)));
    }
    if (c.wait(now) > 0 || a.wait(now) > 0) return false;
    c.take(now);
    a.take(now);
    return true;
  }

  /** Forgets addresses whose bucket is full again. */
  sweep(now: number): void {
    for (const [ip, bucket] of this.addresses) if (bucket.full(now)) this.addresses.delete(ip);
  }

  /** Addresses tracked (for tests). */
  get size(): number {
    return this.addresses.size;
  }
}
