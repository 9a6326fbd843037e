import type { ChannelName, ClientId, UserId } from './channel.js';
import type { ErrorCode } from './error-codes.js';

/** A position in a channel's history: the last seq and the epoch it belongs to. */
export interface StreamPosition {
  /** Last seq of the channel (0 when nothing was published in this epoch). */
  seq: number;
  /** Identifies one continuous history of the channel; a new epoch means older positions are void. */
  epoch: string;
}

/** Where a client wants to resume a channel from. */
export interface SubscribeRecovery {
  /** Replay every message with a greater seq. */
  since?: number;
  /** The epoch `since` belongs to; a different current epoch means recovery is impossible. */
  epoch?: string;
}

// ---- Client to server --------------------------------------------------------------------------

/** First frame of every connection. */
export interface ConnectFrame {
  type: 'connect';
  /** Connection token (JWT, HS256). Omitted for anonymous connections. */
  token?: string;
  /** Channels to subscribe to at once, each with an optional recovery position. */
  subs?: Record<ChannelName, SubscribeRecovery>;
  /** When true the server may put several messages in one frame, separated by `\n`. */
  batch?: boolean;
}

export interface SubscribeFrame extends SubscribeRecovery {
  type: 'subscribe';
  channel: ChannelName;
  /** Echoed in the `subscribed` or `error` answer. */
  id?: number;
}

export interface UnsubscribeFrame {
  type: 'unsubscribe';
  channel: ChannelName;
  id?: number;
}

export interface PingFrame {
  type: 'ping';
  id?: number;
}

/**
 * Acknowledges inbox messages by id (a user's connection only): each is removed from the user's inbox for all
 * of the user's devices. Ids already acknowledged (by another device) or expired are ignored.
 */
export interface AckFrame {
  type: 'ack';
  /** The ids of the inbox messages (the `inbox` member of each), 1 to MAX_ACK_IDS of them. */
  inbox: string[];
}

/**
 * Publishes a message from the client (a connection whose token's `publish` claim grants the channel). The
 * message's type is `event`: `type` is the frame's own. Answered with `published` (its seq) or an `error` with `id`.
 */
export interface PublishFrame {
  type: 'publish';
  channel: ChannelName;
  /** The message type receivers see (the envelope's `type`): `[A-Za-z0-9_\-:.]{1,100}`, not a reserved type. */
  event: string;
  payload: Payload;
  /** Echoed in the `published` or `error` answer. */
  id?: number;
  /**
   * Idempotency key (1-64 characters of `[A-Za-z0-9_\-:.]`): a publish with the key of an earlier one of the
   * same user, within the gateway's idempotency window, is answered with the first one's seq and not published
   * again, so a client may resend what a lost connection left unanswered.
   */
  key?: string;
  /** False: the message is not delivered back to this connection (other connections of the user get it). @default true */
  echo?: boolean;
}

export type ClientFrame = ConnectFrame | SubscribeFrame | UnsubscribeFrame | PingFrame | AckFrame | PublishFrame;

// ---- Server to client --------------------------------------------------------------------------

/** One member of a presence channel: a user (once, whatever its number of connections) and its token's `info`. */
export interface PresenceMember {
  user: UserId;
  /** The `info` claim of the user's token, when it has one. */
  info?: unknown;
}

/** The outcome of one subscription: the channel's position and whether missed messages follow. */
export interface SubscriptionResult extends StreamPosition {
  /** True when every message after the requested `since` follows (possibly none); false when history could not reach back. */
  recovered: boolean;
  /** Presence channels: the members now (absent when there are more than the gateway's member limit). */
  members?: PresenceMember[];
  /** Presence channels: the number of members now. */
  count?: number;
}

/**
 * The payload of a presence channel's `join` frame (`{"type":"join","channel":…,"payload":…,"seq":0}`): the
 * users whose first connection joined since the last frame (absent over the member limit), and the count after.
 */
export interface JoinPayload {
  users?: PresenceMember[];
  count: number;
}

/** The payload of a `leave` frame: the users whose last connection left (absent over the member limit), and the count. */
export interface LeavePayload {
  users?: UserId[];
  count: number;
}

export interface ConnectedFrame {
  type: 'connected';
  client: ClientId;
  user: UserId | null;
  /** The interval, in milliseconds, at which the client should send `ping`. */
  ping: number;
  /** Subscriptions established at connect (including the automatic `user:{id}`). Recovered messages follow this frame. */
  subs: Record<ChannelName, SubscriptionResult>;
}

export interface SubscribedFrame extends SubscriptionResult {
  type: 'subscribed';
  channel: ChannelName;
  id?: number;
}

export interface UnsubscribedFrame {
  type: 'unsubscribed';
  channel: ChannelName;
  reason?: string;
  id?: number;
}

export interface ErrorFrame {
  type: 'error';
  code: ErrorCode;
  message: string;
  id?: number;
  /** The channel the error is about, when there is one (for example a failed subscription in `connect`). */
  channel?: ChannelName;
}

/** The answer to an `ack`: the ids it acknowledged (all of them, whether or not they were still in the inbox). */
export interface AckedFrame {
  type: 'acked';
  inbox: string[];
}

/** The answer to a `publish`: the message's position in the channel. */
export interface PublishedFrame extends StreamPosition {
  type: 'published';
  channel: ChannelName;
  id?: number;
  /** True when the key was an earlier publish's: this one was not published again (seq is the first one's). */
  duplicate?: boolean;
}

export interface PongFrame {
  type: 'pong';
  id?: number;
}

/** JSON that may be carried as a message payload: an object or an array. */
export type Payload = { [key: string]: unknown } | unknown[];

/** An application message: the fixed envelope `{type, channel, payload, seq}`. */
export interface MessageFrame {
  /** Application type; never one of the reserved frame types. */
  type: string;
  channel: ChannelName;
  payload: Payload;
  /** Per-channel sequence number, 1, 2, 3 ... without gaps within an epoch; 0 for a message sent to one client or an inbox message (not sequenced). */
  seq: number;
  /** On an inbox message (on `user:{id}`, seq 0): its id, to acknowledge with an `ack` frame. */
  inbox?: string;
  /** On an inbox message: when it was published (ms since the epoch). */
  time?: number;
}

export type ServerControlFrame = ConnectedFrame | SubscribedFrame | UnsubscribedFrame | ErrorFrame | PongFrame | AckedFrame | PublishedFrame;
