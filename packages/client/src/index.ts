/**
 * @herald/client: the browser and Node SDK of Herald.
 * @packageDocumentation
 */
export { HeraldClient, createClient } from './client.js';
export { Subscription } from './subscription.js';
export { HeraldError, ClientErrorCode, type HeraldErrorDetails } from './errors.js';
export type { HeraldClientOptions } from './options.js';
export { fullJitterBackoff, type BackoffOptions } from './backoff.js';
export { browserEnvironment } from './environment.js';
export { systemClock } from './clock.js';
export type { Listener } from './emitter.js';
export type {
  BroadcastChannelConstructor,
  BroadcastChannelLike,
  ClientEvents,
  ClientState,
  Clock,
  Environment,
  LockManagerLike,
  Logger,
  Message,
  PublishOptions,
  PublishResult,
  ResetReason,
  StateChange,
  SubscribeOptions,
  SubscriptionEvents,
  SubscriptionState,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';
// The protocol constants apps compare against; bundled, so the client keeps zero runtime dependencies.
export { CloseCode, ErrorCode, shouldReconnect } from '@herald/protocol';
export type { ChannelName, ClientId, Payload, StreamPosition, UserId } from '@herald/protocol';
