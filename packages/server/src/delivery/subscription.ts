import type { ChannelName, SubscriptionResult } from '@herald/protocol';
import type { EngineMessage } from '../engine/types.js';

/** A subscription being set up: what the protocol answers with, and what history returned. */
export interface PreparedSubscription {
  channel: ChannelName;
  result: SubscriptionResult;
  /** Recovered messages, oldest first. */
  messages: EngineMessage[];
}
