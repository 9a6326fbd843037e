import type { ChannelName, ClientId, StreamPosition, UserId } from '@herald/protocol';
import type { Inbox, InboxMessage } from './inbox.js';
import type { Outbox } from './outbox.js';

/** Identifies one gateway process in a cluster. */
export type NodeId = string;

/**
 * A sequenced message as the engine hands it to a node: the envelope is serialized once, here. A message to
 * one connection has the pseudo-channel `client:<id>`, seq 0 and no epoch.
 */
export interface EngineMessage {
  channel: ChannelName;
  seq: number;
  epoch: string;
  /**
   * The UTF-8 bytes of `{"type","channel","payload","seq"}`: the canonical form of the message, which native
   * clients receive as is and other protocols turn into their own frame once per message.
   */
  frame: Buffer;
  /**
   * A connection this message is not delivered to (the sender's own, e.g. a Pusher `socket_id` or a client
   * event's sender); undefined for everyone.
   */
  exclude?: ClientId;
}

/**
 * Whether a message is unsequenced (a broadcast: seq 0, no epoch, not in history). Subscribers get it live
 * only; it never moves a channel's position.
 */
export function isUnsequenced(msg: EngineMessage): boolean {
  return msg.seq === 0;
}

/** A message to publish. The payload is already serialized JSON (an object or an array). */
export interface PublishInput {
  channel: ChannelName;
  type: string;
  payloadJson: string;
  /** Idempotency key: a second publish with the same key (per channel) within the window publishes nothing. */
  idempotencyKey?: string;
  /** A connection that must not receive it live (it is still in history). */
  exclude?: ClientId;
  /**
   * Also count, at publish time, the channel's subscribers and (for a `user:` channel) the user's connections,
   * when the engine can do it in the publish's own round trip (the Redis engine sends the counts with the
   * script). An engine may ignore it; the caller then asks `Presence`.
   */
  counts?: boolean;
}

/**
 * An unsequenced message to the current subscribers of a channel on every node: no seq, not kept in history,
 * no idempotency (client events, presence member events). Delivered in order with the channel's other
 * messages published from the same node.
 */
export interface BroadcastInput {
  channel: ChannelName;
  type: string;
  /** Serialized JSON object or array. */
  payloadJson: string;
  /** A connection that must not receive it (the sender). */
  exclude?: ClientId;
  /** The user the message comes from (written as `"user"` after `"seq":0` in the envelope). */
  user?: UserId;
}

/** What a publish did. */
export interface PublishOutcome extends StreamPosition {
  /** True when the idempotency key was seen before: nothing was published, `seq`/`epoch` are the original ones. */
  duplicate: boolean;
  /** With `counts`: the channel's subscribers (as `Presence.subscribers`); absent when not counted. */
  subscribers?: number;
  /** With `counts`, on a `user:` channel: the user's live connections (as `Presence.online`); absent when not counted. */
  online?: number;
}

/** A message to one connection (not sequenced, not kept in history). */
export interface DirectInput {
  client: ClientId;
  type: string;
  payloadJson: string;
  idempotencyKey?: string;
}

/** Who to disconnect, and how. */
export interface DisconnectTarget {
  user?: UserId;
  client?: ClientId;
  code: number;
  reason: string;
}

/** The result of a recovery attempt: all messages after `since`, or none and `recovered: false`. Never partial. */
export interface Recovery {
  position: StreamPosition;
  recovered: boolean;
  /** Messages with seq > since, oldest first (empty when not recovered). */
  messages: EngineMessage[];
}

/** A page of history. */
export interface HistoryPage {
  position: StreamPosition;
  /** False when `since` was given and the history no longer reaches back to it (or the epoch differs). */
  complete: boolean;
  messages: EngineMessage[];
}

/**
 * What a node does with what the engine hands back. Every publish, local or from another node, reaches
 * the node through `message`; one delivery path whether there is one node or twenty.
 */
export interface EngineHandlers {
  /** A sequenced message for a channel this node subscribed to. */
  message(msg: EngineMessage): void;
  /** A message for one connection; returns whether this node has it. */
  direct(client: ClientId, msg: EngineMessage): boolean;
  /** Disconnect matching local connections; returns how many were closed on this node. */
  disconnect(target: DisconnectTarget): number;
  /** A new inbox message of a user this node watches (see Inbox.watch). */
  inbox(msg: InboxMessage): void;
}

/** Fan-out. */
export interface Broker {
  /** Assigns the next seq, appends to history and hands the message to every subscribed node. */
  publish(input: PublishInput): Promise<PublishOutcome>;
  /** Hands an unsequenced message to every node subscribed to its channel (see BroadcastInput). */
  broadcast(input: BroadcastInput): Promise<void>;
  /** Delivers to one connection wherever it is; resolves false when no node has it. */
  publishDirect(input: DirectInput): Promise<boolean>;
  /** This node wants messages of `channel` (called on its first local subscriber). */
  subscribe(channel: ChannelName): Promise<void>;
  /** This node no longer wants messages of `channel` (called when its last local subscriber leaves). */
  unsubscribe(channel: ChannelName): Promise<void>;
  /** Disconnects matching connections on every node; resolves the number closed (best effort count). */
  disconnect(target: DisconnectTarget): Promise<number>;
}

/** Per-channel sequenced history. */
export interface History {
  /** The current position (seq 0 and a fresh epoch for a channel never published to). */
  position(channel: ChannelName): Promise<StreamPosition>;
  /** Everything after `since` in `epoch`, or `recovered: false`. */
  recover(channel: ChannelName, since: number, epoch?: string): Promise<Recovery>;
  /** Up to `limit` messages after `since` (or the newest `limit` when `since` is omitted), oldest first. */
  read(channel: ChannelName, opts: { since?: number; epoch?: string; limit: number }): Promise<HistoryPage>;
}

/** One connection as presence knows it. */
export interface PresenceConnection {
  client: ClientId;
  user: UserId | null;
}

/** Who is online. */
export interface Presence {
  add(conn: PresenceConnection): Promise<void>;
  remove(conn: PresenceConnection): Promise<void>;
  join(channel: ChannelName, conn: PresenceConnection): Promise<void>;
  leave(channel: ChannelName, conn: PresenceConnection): Promise<void>;
  /** Connection count per user (0 when offline), cluster-wide. */
  online(users: readonly UserId[]): Promise<Map<UserId, number>>;
  /** Number of connections subscribed to `channel`, cluster-wide. */
  subscribers(channel: ChannelName): Promise<number>;
  /**
   * Channels starting with `prefix` that have at least one subscriber, cluster-wide, at most `limit` of them.
   * For occasional API calls: the Redis engine scans its keys.
   */
  channels(prefix: string, limit: number): Promise<ChannelName[]>;
}

/** A member of a channel as a caller joins it: a user id and what the others may know of it. */
export interface MemberInput {
  user: UserId;
  /** Serialized JSON (any value; `null` for none). */
  infoJson: string;
}

/** One member of a channel, once per user whatever its number of connections. */
export interface ChannelMember {
  user: UserId;
  /** Serialized JSON, as the user's latest connection joined with it. */
  infoJson: string;
}

/** Called when a user's last connection in a channel went away without leaving (a dead node, a shutdown). */
export type MemberGoneListener = (channel: ChannelName, user: UserId) => void | Promise<void>;

/**
 * Called when this node's refresh put back a user that had been reported gone (its entries expired while the node
 * could not renew them: a Redis outage, a stalled process), with the info it joined with: announce it again.
 */
export type MemberBackListener = (channel: ChannelName, user: UserId, infoJson: string) => void | Promise<void>;

/**
 * Channel members with user info, cluster-wide: the first connection and the last disconnection of a user in a
 * channel are detected atomically, whichever nodes the connections are on (Pusher presence channels use it;
 * native presence channels will too). Connections of a node that died disappear within the engine's presence
 * TTL; the node that notices reports each user gone once, through `onGone`.
 */
export interface Members {
  /** Adds `client` as `member.user`. `first`: no other live connection of that user was in the channel. */
  join(channel: ChannelName, client: ClientId, member: MemberInput): Promise<{ first: boolean }>;
  /** Removes `client`. `last`: it was the user's last live connection in the channel; null when it was not a member. */
  leave(channel: ChannelName, client: ClientId): Promise<{ user: UserId; last: boolean } | null>;
  /** The live members, one per user (in no particular order). */
  list(channel: ChannelName): Promise<ChannelMember[]>;
  /** Number of distinct live users. */
  count(channel: ChannelName): Promise<number>;
  /** Registers a listener for users gone without leaving; returns a function that removes it. */
  onGone(fn: MemberGoneListener): () => void;
  /** Registers a listener for users put back after they were reported gone; returns a function that removes it. */
  onBack(fn: MemberBackListener): () => void;
}

/** What an engine holds in this process (the memory engine; the Redis engine's state is in Redis). */
export interface EngineUsage {
  /** Channels with history state (seq, epoch, messages). */
  channels: number;
  /** Bytes of message frames kept in history. */
  historyBytes: number;
  /** Bytes of the buffers holding those frames: the memory history takes (up to a few times historyBytes per channel). */
  historyBufferBytes: number;
  /** Publish ids remembered for the idempotency window. */
  idempotencyKeys: number;
  /** Publish ids forgotten before their window ended, since start (the bound was reached). */
  idempotencyEarlyEvictions: number;
  /** Inbox messages kept (every user's, not yet acknowledged, removed or expired). */
  inboxMessages: number;
  /** Delivery receipts kept (each until its message's expiry, acknowledged or not, or until the bound pushes it out). */
  inboxReceipts: number;
  /** Delivery receipts dropped before their message's expiry, since start (the bound was reached). */
  inboxReceiptEvictions: number;
  /** What the kept inbox messages count towards inboxTotalBytes (frame plus per-message overhead). */
  inboxBytes: number;
  /** Inbox puts refused since start because inboxTotalBytes was reached. */
  inboxRejected: number;
}

/** What an engine check found when the engine answers: all well (nothing), or part of it down (`degraded`: what). */
export type EngineCheck = undefined | { degraded: string };

/** The pluggable backend: memory for one process, Redis for many. Both pass one contract test suite. */
export interface Engine {
  readonly name: string;
  readonly broker: Broker;
  readonly history: History;
  readonly presence: Presence;
  /** Per-user inboxes and delivery receipts. */
  readonly inbox: Inbox;
  /** The durable queue of the webhooks (every protocol's). */
  readonly outbox: Outbox;
  readonly members: Members;
  /** Connects and starts handing messages to `handlers`. */
  start(handlers: EngineHandlers): Promise<void>;
  /**
   * Rejects when the engine cannot serve requests (used by `/readyz`); resolves `{ degraded }` when it serves only
   * part of them (a Redis Cluster with one master down: its channels fail, the others work).
   */
  check(): Promise<EngineCheck>;
  /** What it holds in this process, for metrics; absent when its state lives elsewhere. */
  usage?(): EngineUsage;
  close(): Promise<void>;
}
