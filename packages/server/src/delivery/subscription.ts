import type { ChannelName, SubscriptionResult } from '@herald/protocol';
import type { EngineMessage } from '../engine/types.js';
import type { Connection } from './connection.js';

/**
 * One connection's subscription to one channel, owned by the hub. While it is being set up (history is
 * read), live messages of the channel are held in `held`; `finish` (see Hub) merges both without a gap or a
 * duplicate, then the subscription is live (`held` null).
 */
export class Subscription {
  /** The epoch the client was told for this channel ('' until the subscription answer was queued). */
  epoch = '';
  /** Live messages held back while the subscription is set up; null once live. */
  held: EngineMessage[] | null = [];

  constructor(
    readonly conn: Connection,
    readonly channel: ChannelName,
  ) {}
}

/** A subscription being set up: what the protocol answers with, and what history returned. */
export interface PreparedSubscription {
  channel: ChannelName;
  result: SubscriptionResult;
  /** Recovered messages, oldest first. */
  messages: EngineMessage[];
}
