import type { ClientId, UserId } from '@herald/protocol';

/**
 * A message kept in a user's inbox until a client of the user acknowledges it or it expires. `frame` is its
 * canonical bytes, serialized once when it was stored: `{"type","channel":"user:<id>","payload","seq":0,
 * "inbox":"<id>","time":<ms>}` (native clients receive it as is).
 */
export interface InboxMessage {
  /** Unique among every inbox message of the cluster (the publish answer and `ack` frames carry it). */
  id: string;
  user: UserId;
  frame: Buffer;
  /** When it was stored (ms since the epoch). */
  time: number;
  /** When it expires (ms since the epoch). */
  expires: number;
  /** Whether the publisher asked for a delivery receipt (`message.acked`, `GET /api/receipts/{id}`). */
  receipt: boolean;
}

/** A message to keep in a user's inbox (and to deliver at once to the user's connections). */
export interface InboxPutInput {
  user: UserId;
  type: string;
  /** Serialized JSON object or array. */
  payloadJson: string;
  /** How long it is kept unless acknowledged (ms). */
  ttl: number;
  receipt: boolean;
  /** A second put with the same key for the same user within the idempotency window stores nothing. */
  idempotencyKey?: string;
}

/** What a put did. */
export interface InboxPutOutcome {
  /** The message id (the original one when `duplicate`). */
  id: string;
  /** The idempotency key was seen before: nothing was stored now. */
  duplicate: boolean;
  /** Whether a node with a connection of the user took it live (Redis: a node watching the user received it). */
  live: boolean;
  /** Older messages dropped because the user's inbox was over its cap. */
  dropped: number;
}

/** What a delivery receipt says: stored, delivered to N connections, acknowledged; with times (ms). */
export interface Receipt {
  id: string;
  user: UserId;
  /** When the message was stored. */
  created: number;
  /** When the receipt is forgotten (the message's expiry). */
  expires: number;
  /** Connections the message was handed to (live or replayed at connect), every node together. */
  delivered: number;
  /** The first of those deliveries. */
  deliveredAt: number | null;
  /** The acknowledgement (the first one, whichever device), or null. */
  acked: { at: number; client: ClientId } | null;
}

/**
 * Per-user inboxes (engine/inbox.ts, docs/inbox.md): kept across gateway restarts with the Redis engine and
 * shared by every node; in order; bounded by a TTL per message and a cap per user (the oldest dropped, counted).
 * A node `watch`es the users it has connections of and gets their new messages through `EngineHandlers.inbox`.
 */
export interface Inbox {
  /**
   * Stores a message (sweeping expired ones and enforcing the cap) and hands it to every node watching the user.
   * With `receipt`, its receipt exists before any node can hand the message out (an acknowledgement never finds it
   * missing).
   */
  put(input: InboxPutInput, opts: { max: number; idempotencyTtl: number }): Promise<InboxPutOutcome>;
  /** The user's unacknowledged, unexpired messages, oldest first, at most `limit`. */
  list(user: UserId, limit: number): Promise<InboxMessage[]>;
  /** Removes messages by id (`all`: every message); resolves the ones that were there. */
  remove(user: UserId, ids: readonly string[] | 'all'): Promise<InboxMessage[]>;
  /** This node has a connection of `user` (called on its first one): hand it the user's new messages. */
  watch(user: UserId): Promise<void>;
  /** This node's last connection of `user` went away. */
  unwatch(user: UserId): Promise<void>;
  /** Counts deliveries of messages with receipts (the first one stamps `deliveredAt`). */
  delivered(ids: readonly string[], connections: number, at: number): Promise<void>;
  /** Marks receipts acknowledged; resolves the ids this call acknowledged first (whose receipt had no ack yet). */
  acked(ids: readonly string[], client: ClientId, at: number): Promise<string[]>;
  /** A receipt, or null (never asked for, or expired). */
  receipt(id: string): Promise<Receipt | null>;
}

/** The canonical frame of an inbox message (see InboxMessage); type and user are validated names. */
export function encodeInboxMessage(type: string, user: UserId, payloadJson: string, id: string, time: number): Buffer {
  return Buffer.from(
    `{"type":${JSON.stringify(type)},"channel":${JSON.stringify(`user:${user}`)},"payload":${payloadJson},"seq":0,"inbox":${JSON.stringify(id)},"time":${time}}`,
  );
}
