import { channelKind, USER_CHANNEL_PREFIX, type ChannelName, type ClientId, type UserId } from '@herald/protocol';
import type { ChainableCommander } from 'ioredis';
import { inSlices, isCluster, LuaScript, type RedisContext } from './client.js';
import type { RedisKeys } from './keys.js';
import type { RedisLifecycle } from './lifecycle.js';
import type { NodeId, Presence, PresenceConnection } from '../types.js';

/** A connection of this node, as presence remembers it for the refresh. */
interface LocalConnection {
  user: UserId | null;
  channels: Set<ChannelName>;
}

/**
 * Connections per round trip of a refresh (about 7 commands each with a user and a channel): a slice takes a few
 * ms to build and answer, and publishes go out between slices. Sent at once, 10 000 connections are about 70 000
 * commands every third of the TTL, and every publish of those moments waits behind them (hundreds of ms).
 */
export const REFRESH_CONNECTIONS = 100;

/**
 * Presence in Redis. A user's connections and a channel's members are ZSETs scored by expiry time (ms);
 * each node re-adds its own connections every `ttl / 3`, and readers count only members whose expiry is
 * still ahead. A node that dies without cleaning up (kill -9, a lost machine) stops refreshing, so its
 * connections stop counting at most `ttl` after its last refresh; the next refresh of a live node trims
 * them, and keys nobody refreshes expire by their own TTL.
 *
 * Expiry times come from the nodes' clocks, so presence assumes those clocks agree (NTP): a skew adds to
 * the bound. The node also remembers its own connections, which is what the refresh re-adds and what makes
 * presence whole again after Redis lost its data.
 */
export class RedisPresence implements Presence {
  private readonly refreshScript = LuaScript.load('refresh');
  private readonly local = new Map<ClientId, LocalConnection>();
  private refreshing = false;

  constructor(
    private readonly ctx: RedisContext,
    private readonly keys: RedisKeys,
    private readonly node: NodeId,
    /** How long an entry lives without a refresh (ms). */
    readonly ttl: number,
    private readonly now: () => number,
    /** Told of every change when webhooks want lifecycle events. */
    private readonly lifecycle?: RedisLifecycle,
  ) {}

  private entry(conn: PresenceConnection): LocalConnection {
    let e = this.local.get(conn.client);
    if (!e) this.local.set(conn.client, (e = { user: conn.user, channels: new Set() }));
    // A connection added again once it knows its user (a Pusher sign-in): the refresh renews that user.
    e.user = conn.user;
    return e;
  }

  add(conn: PresenceConnection): Promise<void> {
    this.entry(conn);
    void this.lifecycle?.fire('add', this.lifecycle.userTriples(conn.client, conn.user));
    const userKey = conn.user === null ? undefined : this.keys.user(conn.user);
    if (!isCluster(this.ctx.redis)) return this.renew('presence add', conn.client, this.keys.client(conn.client), userKey);
    const expires = this.now() + this.ttl;
    return this.send('presence add', (p) => {
      p.set(this.keys.client(conn.client), this.node, 'PX', this.ttl);
      if (userKey !== undefined) {
        p.zadd(userKey, expires, conn.client);
        p.pexpire(userKey, this.ttl);
      }
    });
  }

  remove(conn: PresenceConnection): Promise<void> {
    const e = this.local.get(conn.client);
    this.local.delete(conn.client);
    if (this.lifecycle) {
      const l = this.lifecycle;
      void l.fire('remove', [...l.userTriples(conn.client, conn.user), ...[...(e?.channels ?? [])].flatMap((c) => l.channelTriples(c, conn.client))]);
    }
    return this.send('presence remove', (p) => {
      p.del(this.keys.client(conn.client));
      if (conn.user !== null) p.zrem(this.keys.user(conn.user), conn.client);
      // Channels it never left (normally the hub leaves them first) must not count it until they expire.
      for (const channel of e?.channels ?? []) p.zrem(this.keys.members(channel), conn.client);
    });
  }

  join(channel: ChannelName, conn: PresenceConnection): Promise<void> {
    this.entry(conn).channels.add(channel);
    void this.lifecycle?.fire('add', this.lifecycle.channelTriples(channel, conn.client));
    const key = this.keys.members(channel);
    if (!isCluster(this.ctx.redis)) return this.renew('presence join', conn.client, '', key);
    const expires = this.now() + this.ttl;
    return this.send('presence join', (p) => {
      p.zadd(key, expires, conn.client);
      p.pexpire(key, this.ttl);
    });
  }

  /**
   * On a single Redis, a connect's and a subscribe's presence writes are a refresh of that one connection
   * (`lua/refresh.lua`): the client key (unless empty) and the ZSET, with the ZSET's TTL and its expired entries
   * trimmed. One script operation of the turn instead of two or three commands: less to build and send for the
   * gateway, less to run for Redis.
   */
  private async renew(operation: string, client: ClientId, clientKey: string, zset: string | undefined): Promise<void> {
    const now = this.now();
    const args: Array<string | number> = [now, now + this.ttl, this.ttl, this.node, client, clientKey, zset === undefined ? 0 : 1];
    if (zset !== undefined) args.push(zset);
    await this.ctx.script(operation, this.refreshScript, [], args);
  }

  leave(channel: ChannelName, conn: PresenceConnection): Promise<void> {
    this.local.get(conn.client)?.channels.delete(channel);
    void this.lifecycle?.fire('remove', this.lifecycle.channelTriples(channel, conn.client));
    return this.send('presence leave', (p) => {
      p.zrem(this.keys.members(channel), conn.client);
    });
  }

  async online(users: readonly UserId[]): Promise<Map<UserId, number>> {
    const unique = [...new Set(users)];
    if (unique.length === 0) return new Map();
    const min = this.now();
    // One round trip whatever the number of users: the HTTP API asks for up to 1000 at once.
    const counts = await this.ctx.pipeline('presence online', (p) => {
      for (const u of unique) p.zcount(this.keys.user(u), min, '+inf');
    });
    const out = new Map<UserId, number>();
    unique.forEach((u, i) => out.set(u, Number(counts[i] ?? 0)));
    return out;
  }

  /**
   * What the publish script counts with the publish (its ARGV[12], ARGV[13] and last KEYS): the channel's
   * subscribers and, for a `user:` channel, the user's connections, as `subscribers` and `online` count them, in
   * the script instead of one ZCOUNT each. On a Redis Cluster the user's key is on another slot than the
   * channel's: the script counts the subscribers only, and `online` asks for the rest (`userOf`).
   */
  countSpec(channel: ChannelName): { from: number; keys: string[] } {
    const keys = [this.keys.members(channel)];
    const user = this.userOf(channel);
    if (user !== undefined && !isCluster(this.ctx.redis)) keys.push(this.keys.user(user));
    return { from: this.now(), keys };
  }

  /** The user of a `user:` channel; undefined for any other channel. */
  userOf(channel: ChannelName): UserId | undefined {
    return channelKind(channel) === 'user' ? channel.slice(USER_CHANNEL_PREFIX.length) : undefined;
  }

  async subscribers(channel: ChannelName): Promise<number> {
    const [count] = await this.ctx.pipeline('presence subscribers', (p) => {
      p.zcount(this.keys.members(channel), this.now(), '+inf');
    });
    return Number(count ?? 0);
  }

  async channels(prefix: string, limit: number): Promise<ChannelName[]> {
    const { pattern, channelOf } = this.keys.membersPattern(prefix);
    const keys: string[] = [];
    await this.ctx.call('presence channels', async (redis) => {
      // On a Redis Cluster every master holds some of the keys: scan each.
      for (const node of isCluster(redis) ? redis.nodes('master') : [redis]) {
        let cursor = '0';
        do {
          const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = next;
          keys.push(...batch);
        } while (cursor !== '0');
      }
    });
    const now = this.now();
    const counts = keys.length === 0 ? [] : await this.ctx.pipeline('presence channels', (p) => keys.forEach((k) => p.zcount(k, now, '+inf')));
    const out: ChannelName[] = [];
    keys.forEach((k, i) => {
      const ch = channelOf(k);
      if (Number(counts[i] ?? 0) > 0 && ch !== undefined && out.length < limit) out.push(ch);
    });
    return out.sort();
  }

  /** Counts a user's live connections (for a best-effort disconnect count). */
  async userConnections(user: UserId): Promise<number> {
    return (await this.online([user])).get(user) ?? 0;
  }

  /** The node a connection is on, or null when no live node has it. */
  async nodeOf(client: ClientId): Promise<NodeId | null> {
    return this.ctx.call('presence lookup', (redis) => redis.get(this.keys.client(client)));
  }

  /** Whether this node registered `client`. */
  has(client: ClientId): boolean {
    return this.local.has(client);
  }

  /** Number of connections this node keeps alive in presence. */
  get size(): number {
    return this.local.size;
  }

  /**
   * Re-adds every connection of this node with a fresh expiry, extends the keys' TTLs and trims members
   * that expired (a dead node's), a slice of connections per round trip (see REFRESH_CONNECTIONS). Each slice is
   * built when the one before it was answered, from the connections as they are then: a connection removed, or a
   * channel left, before its slice is not re-added, and a `remove` made after it is applied after it by Redis.
   */
  async refresh(): Promise<void> {
    if (this.refreshing || this.local.size === 0) return;
    this.refreshing = true;
    try {
      const now = this.now();
      const expires = now + this.ttl;
      const cluster = isCluster(this.ctx.redis);
      await inSlices([...this.local.keys()], REFRESH_CONNECTIONS, (clients) => {
        // The lifecycle's entries (webhooks) of the same connections, with the slice: not all in one turn.
        this.refreshLifecycle(clients);
        return cluster ? this.refreshCommands(clients, now, expires) : this.refreshSlice(clients, now, expires);
      });
    } finally {
      this.refreshing = false;
    }
  }

  /** Renews the lifecycle tracking (webhooks) of `clients`, when webhooks want lifecycle events. */
  private refreshLifecycle(clients: readonly ClientId[]): void {
    const l = this.lifecycle;
    if (!l) return;
    const triples: string[] = [];
    for (const client of clients) {
      const e = this.local.get(client);
      if (!e) continue;
      triples.push(...l.userTriples(client, e.user));
      for (const channel of e.channels) triples.push(...l.channelTriples(channel, client));
    }
    void l.fire('refresh', triples);
  }

  /**
   * One slice of a refresh on a single Redis: one call of `lua/refresh.lua` with the connections and their keys
   * (per connection 5 µs of gateway CPU and 14 µs of Redis, against 65 and 32 for its commands in a pipeline).
   */
  private refreshSlice(clients: readonly ClientId[], now: number, expires: number): Promise<unknown> {
    const args: Array<string | number> = [now, expires, this.ttl, this.node];
    for (const client of clients) {
      const e = this.local.get(client);
      if (!e) continue;
      const at = args.length;
      args.push(client, this.keys.client(client), 0);
      if (e.user !== null) args.push(this.keys.user(e.user));
      for (const channel of e.channels) args.push(this.keys.members(channel));
      args[at + 2] = args.length - at - 3;
    }
    return this.ctx.script('presence refresh', this.refreshScript, [], args);
  }

  /** One slice of a refresh on a Redis Cluster, whose keys are on many slots: the commands of `lua/refresh.lua`. */
  private refreshCommands(clients: readonly ClientId[], now: number, expires: number): Promise<unknown> {
    return this.ctx.pipeline('presence refresh', (p) => {
      const zsets = new Map<string, Array<string | number>>();
      const member = (key: string, client: ClientId): void => {
        let args = zsets.get(key);
        if (!args) zsets.set(key, (args = []));
        args.push(expires, client);
      };
      for (const client of clients) {
        const e = this.local.get(client);
        if (!e) continue;
        p.set(this.keys.client(client), this.node, 'PX', this.ttl);
        if (e.user !== null) member(this.keys.user(e.user), client);
        for (const channel of e.channels) member(this.keys.members(channel), client);
      }
      for (const [key, args] of zsets) {
        p.zadd(key, ...args);
        p.pexpire(key, this.ttl);
        p.zremrangebyscore(key, '-inf', `(${now}`);
      }
    });
  }

  /** Removes every connection of this node from Redis (a graceful shutdown); forgets them locally. */
  async clear(): Promise<void> {
    const all = [...this.local];
    this.local.clear();
    if (all.length === 0) return;
    const l = this.lifecycle;
    if (l)
      await l.fire(
        'remove',
        all.flatMap(([client, e]) => [...l.userTriples(client, e.user), ...[...e.channels].flatMap((c) => l.channelTriples(c, client))]),
      );
    await this.send('presence clear', (p) => {
      for (const [client, e] of all) {
        p.del(this.keys.client(client));
        if (e.user !== null) p.zrem(this.keys.user(e.user), client);
        for (const channel of e.channels) p.zrem(this.keys.members(channel), client);
      }
    });
  }

  private async send(operation: string, build: (p: ChainableCommander) => void): Promise<void> {
    await this.ctx.pipeline(operation, build);
  }
}
