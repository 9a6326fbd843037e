import type { ChannelName, ClientId, UserId } from '@herald/protocol';
import type { NodeId } from '../types.js';

/**
 * Every Redis key and pub/sub channel the Redis engine uses, in one place (docs/redis.md lists them).
 * Keys of one channel share the hash tag `{<channel>}` so a publish touches a single Redis Cluster slot;
 * channel names cannot contain braces, so the tag is always the whole name.
 */
export class RedisKeys {
  /** `<prefix>:control`: disconnect commands, every node listens. */
  readonly control: string;
  /** `<prefix>:ingest`: the durable ingest stream (XADD), read by every gateway through one consumer group. */
  readonly ingest: string;
  /** `<prefix>:ingest:dead`: ingested messages that could not be published, with the reason. */
  readonly ingestDead: string;
  /** `<prefix>:ingest:leader`: the lock held by the node that takes the pub/sub ingest. */
  readonly ingestLeader: string;
  /** `<prefix>:publish`: the pub/sub ingest channel (PUBLISH). */
  readonly ingestChannel: string;

  constructor(readonly prefix: string) {
    this.control = `${prefix}:control`;
    this.ingest = `${prefix}:ingest`;
    this.ingestDead = `${prefix}:ingest:dead`;
    this.ingestLeader = `${prefix}:ingest:leader`;
    this.ingestChannel = `${prefix}:publish`;
  }

  /** `<prefix>:{<channel>}`: what every key of a channel starts with. */
  private base(channel: ChannelName): string {
    return `${this.prefix}:{${channel}}`;
  }

  /** Hash `seq`, `epoch` of a channel. */
  meta(channel: ChannelName): string {
    return `${this.base(channel)}:meta`;
  }

  /** Stream of a channel's history, entry ids `<seq>-0`. */
  stream(channel: ChannelName): string {
    return `${this.base(channel)}:stream`;
  }

  /** String `<seq>:<epoch>`: an idempotency key seen on a channel. */
  idempotency(channel: ChannelName, id: string): string {
    return `${this.base(channel)}:idem:${id}`;
  }

  /** Pub/sub channel a channel's messages are published on. */
  pub(channel: ChannelName): string {
    return `${this.base(channel)}:pub`;
  }

  /** ZSET client -> expiry (ms): connections subscribed to a channel. */
  members(channel: ChannelName): string {
    return `${this.base(channel)}:members`;
  }

  /** A SCAN pattern of the `members` keys of channels starting with `prefix`, and how to read a key's channel. */
  membersPattern(prefix: string): { pattern: string; channelOf: (key: string) => ChannelName | undefined } {
    const head = `${this.prefix}:{`;
    const tail = '}:members';
    // Glob characters in a (valid) channel name: escape them so they match themselves.
    const escaped = glob(prefix);
    return {
      pattern: `${glob(head)}${escaped}*${tail}`,
      channelOf: (key) => (key.startsWith(head) && key.endsWith(tail) ? key.slice(head.length, -tail.length) : undefined),
    };
  }

  /**
   * ZSET channel -> the expiry (ms) of its latest member join or refresh: the channels with members, so that a sweep
   * finds those no live node renews (a dead node's only). One key for the cluster (one slot).
   */
  get membersIndex(): string {
    return `${this.prefix}:pm:index`;
  }

  /** The four keys of a channel's members (lua/members.lua): connections, their users, user counts, user infos. */
  memberKeys(channel: ChannelName): [string, string, string, string] {
    const b = `${this.base(channel)}:pm`;
    return [`${b}:conns`, `${b}:owner`, `${b}:users`, `${b}:info`];
  }

  /** ZSET client -> expiry (ms): connections of a user. */
  user(user: UserId): string {
    return `${this.prefix}:user:{${user}}`;
  }

  /** String: the node a connection is on. */
  client(client: ClientId): string {
    return `${this.prefix}:client:{${client}}`;
  }

  /** String: an idempotency key seen for a direct message. */
  clientIdempotency(client: ClientId, id: string): string {
    return `${this.prefix}:client:{${client}}:idem:${id}`;
  }

  /** The keys of a user's inbox, in the order lua/inbox.lua takes them (hash tag of the `user:<id>` channel). */
  inbox(user: UserId): [inbox: string, exp: string, msg: string, counter: string, pub: string] {
    const b = `${this.base(`user:${user}`)}:inbox`;
    return [b, `${b}:exp`, `${b}:msg`, `${b}:n`, `${b}:pub`];
  }

  /** String: the message id stored under an idempotency key of a user's inbox. */
  inboxIdempotency(user: UserId, key: string): string {
    return `${this.base(`user:${user}`)}:inbox:idem:${key}`;
  }

  /** Hash: the delivery receipt of an inbox message (its own hash tag: looked up by message id alone). */
  receipt(id: string): string {
    return `${this.prefix}:receipt:{${id}}`;
  }

  /** The jobs of a webhook endpoint deferred while its circuit was open (lua/outbox.lua `defer`, `release`). */
  deferredJobs(endpoint: string): string {
    return `${this.prefix}:{webhooks}:deferred:${endpoint}`;
  }

  /** The webhook outbox's keys, under one hash tag (lua/outbox.lua, lua/lifecycle.lua). */
  get hooks(): {
    events: string;
    held: string;
    heldEvents: string;
    due: string;
    jobs: string;
    age: string;
    dead: string;
    conns: string;
    counts: string;
    seq: string;
  } {
    const b = `${this.prefix}:{webhooks}`;
    return {
      events: `${b}:events`,
      held: `${b}:held`,
      heldEvents: `${b}:held:events`,
      due: `${b}:due`,
      jobs: `${b}:jobs`,
      age: `${b}:age`,
      dead: `${b}:dead`,
      conns: `${b}:conns`,
      counts: `${b}:counts`,
      seq: `${b}:seq`,
    };
  }

  /** Pub/sub channel of one node: direct messages for its connections. */
  node(node: NodeId): string {
    return `${this.prefix}:node:${node}`;
  }
}

/** Escapes Redis glob characters. */
function glob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
