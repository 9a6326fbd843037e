import { RateBudget } from '../util/rate-budget.js';

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

/**
 * Limits how fast subscriptions create channels on this node (a channel with no local subscriber yet: an
 * engine subscription, a hub entry, presence keys): per connection and per address, so that a client cannot
 * churn through millions of names. Subscribing to channels that already have local subscribers costs nothing.
 * `take(conn, ip, now)` charges one new channel.
 */
export class ChannelBudget extends RateBudget {
  constructor(limits: ChannelBudgetLimits) {
    super({ perOwner: limits.perConnection / 60, ownerBurst: limits.perConnectionBurst, perKey: limits.perIp / 60, keyBurst: limits.perIpBurst });
  }
}
