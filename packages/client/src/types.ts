import type { ChannelName, ClientId, MessageFrame, Payload, PresenceMember, UserId } from '@herald/protocol';
import type { HeraldError } from './errors.js';

/**
 * Connection state. `closed` is terminal: the client does not reconnect by itself (after `close()`, close
 * code 1000 or 4500-4999); `connect()` starts it again.
 */
export type ClientState = 'disconnected' | 'connecting' | 'connected' | 'closed';

/** One state transition; every transition is emitted exactly once as a `state` event. */
export interface StateChange {
  from: ClientState;
  to: ClientState;
  /** The close code that caused the transition (to `disconnected` or `closed`). */
  code?: number;
  /** Why: the close reason, or what the client detected (`no pong`, `connect timeout` ...). */
  reason?: string;
  /**
   * Retry number, 0 for the first retry after a connection was lost (reset once a connection stayed up
   * for `stableAfter`). Present on `disconnected` with a scheduled retry and on the `connecting` it leads to.
   */
  attempt?: number;
  /** On `disconnected`: milliseconds until the next attempt. */
  delay?: number;
}

/**
 * An application message, as published: `{type, channel, payload, seq}`. An inbox message (on `user:{id}`,
 * seq 0) also has its `inbox` id, its `time` and `ack()`: it is acknowledged after your handlers returned, or
 * when you call `ack()` with `inboxAck: 'manual'` (resolved once the server confirmed).
 */
export interface Message<P extends Payload = Payload> extends MessageFrame {
  payload: P;
  /** Inbox messages only: acknowledges it (removes it from the user's inbox on every device). */
  ack?: () => Promise<void>;
}

/** Events of a {@link HeraldClient}. */
export interface ClientEvents {
  /** Every state transition. */
  state: StateChange;
  /** The server accepted the connection (after the `state` event to `connected`). */
  connected: { client: ClientId; user: UserId | null };
  /** Every message delivered to the app, on any channel (including `user:{id}` and `client:{id}`), after dedup. */
  message: Message;
  /**
   * A channel's position was reset (same as the subscription's `reset` event, for every channel
   * including the automatic `user:{id}`): refetch that channel's state.
   */
  reset: SubscriptionEvents['reset'] & { channel: ChannelName };
  /** Malformed frames, server error frames, failed token refreshes and exceptions thrown by handlers. */
  error: HeraldError;
  /** The server confirmed acknowledgements of inbox messages (by this client or another tab sharing its connection). */
  acked: { inbox: string[] };
  /** Tabs share this client's connection: how many tabs now, and whether this one holds the connection. */
  sharing: { tabs: number; leader: boolean };
}

/** Options of `client.publish()`. */
export interface PublishOptions {
  /** `false`: this client's own handlers do not get the message (other tabs and clients do). @default true */
  echo?: boolean | undefined;
  /** How long to wait for the answer, in ms, reconnects included; then the promise rejects. @default the client's publishTimeout */
  timeout?: number | undefined;
}

/** What `client.publish()` resolves to: where the message is in the channel. */
export interface PublishResult {
  channel: ChannelName;
  seq: number;
  epoch: string;
  /** True when the gateway had published it already (a resend after a lost connection): published once. */
  duplicate: boolean;
}

/** State of a subscription: waiting for `subscribed` (also while recovering a gap), active, or gone. */
export type SubscriptionState = 'subscribing' | 'subscribed' | 'unsubscribed';

/** Why a subscription's position was reset: the app must refetch the channel's state. */
export type ResetReason = 'epoch_changed' | 'history_lost';

/** Events of a {@link Subscription}. */
export interface SubscriptionEvents<P extends Payload = Payload> {
  /** A message of this channel, exactly once and in seq order (seq 0 messages are not sequenced). */
  message: Message<P>;
  /** The server confirmed the subscription (on every (re)subscribe, before `recovered`/`reset`). */
  subscribed: { seq: number; epoch: string; recovered: boolean };
  /** A resubscribe resumed the stream: every message after `since` up to `seq` follows, oldest first. */
  recovered: { since: number; seq: number; epoch: string };
  /**
   * Messages were lost for good (the epoch changed or the history no longer reaches back): refetch the
   * channel's state. Live messages after `seq` follow.
   */
  reset: { reason: ResetReason; seq: number; epoch: string; previous: { seq: number; epoch?: string } };
  /** The server ended the subscription (not sent for your own `unsubscribe()`). */
  unsubscribed: { reason?: string };
  /**
   * Presence channels: users whose first connection joined and who were not members already (`users` absent over
   * the gateway's member limit); not emitted for a join the subscription already counted.
   */
  join: { users: PresenceMember[] | undefined; count: number };
  /** Presence channels: members whose last connection left (`users` absent over the gateway's member limit). */
  leave: { users: UserId[] | undefined; count: number };
  /** A server error about this subscription (`serverCode`), for example `forbidden`. */
  error: HeraldError;
}

/** Where to resume a new subscription from, for example a seq loaded with the app's initial state. */
export interface SubscribeOptions {
  /** Deliver every message after this seq. */
  since?: number | undefined;
  /** The epoch `since` belongs to. */
  epoch?: string | undefined;
}

/** Timers, injectable so that tests never sleep. */
export interface Clock {
  /** Milliseconds since some fixed point. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Where the client reports what it drops or works around. */
export interface Logger {
  debug(message: string, data?: unknown): void;
  warn(message: string, data?: unknown): void;
}

/**
 * The part of a WebSocket the client uses. The browser's `WebSocket` and the `ws` package both fit.
 * The `on*` handlers are typed `unknown` so that either library's handler types are accepted; the client
 * assigns functions taking `{ data }` (message) and `{ code, reason }` (close).
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: unknown;
  onmessage: unknown;
  onclose: unknown;
  onerror: unknown;
}

/** A WebSocket constructor: `globalThis.WebSocket`, or `WebSocket` from the `ws` package. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The part of the Web Locks API (`navigator.locks`) the client uses to elect the tab holding a shared connection. */
export interface LockManagerLike {
  /** Calls `callback` once the lock `name` is granted and holds it until the promise it returns settles. */
  request(name: string, options: { steal?: boolean; signal?: object }, callback: () => Promise<void> | undefined): Promise<unknown>;
  /** Which locks are held, and by which client. */
  query(): Promise<{ held?: Array<{ name?: string | undefined; clientId?: string | undefined }> | undefined }>;
}

/** The part of a `BroadcastChannel` the client uses to talk to the other tabs. */
export interface BroadcastChannelLike {
  postMessage(message: unknown): void;
  close(): void;
  onmessage: ((event: { data: unknown }) => void) | null;
}

/** A BroadcastChannel constructor: `globalThis.BroadcastChannel`. */
export type BroadcastChannelConstructor = new (name: string) => BroadcastChannelLike;

/**
 * Hooks into the page lifecycle, and what tabs need to share one connection. Each `on*` method returns a
 * function that removes the hook.
 */
export interface Environment {
  /** Calls `fn` when the network comes back (the browser's `online` event). */
  onOnline(fn: () => void): () => void;
  /** Calls `fn` when the page becomes visible again (`visibilitychange` to `visible`). */
  onVisible(fn: () => void): () => void;
  /** Calls `fn` when the page goes away (`pagehide`): a tab sharing a connection leaves it. */
  onLeave?(fn: () => void): () => void;
  /** `navigator.locks`; with `BroadcastChannel`, lets tabs share one connection. */
  locks?: LockManagerLike | undefined;
  /** `globalThis.BroadcastChannel`; with `locks`, lets tabs share one connection. */
  BroadcastChannel?: BroadcastChannelConstructor | undefined;
}
