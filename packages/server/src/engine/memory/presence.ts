import type { ChannelName, ClientId, UserId } from '@herald/protocol';
import type { Presence, PresenceConnection } from '../types.js';
import { addTo, removeFrom, sizeOf, type OneOrSet } from '../../util/one-or-set.js';
import type { MemoryLifecycle } from './lifecycle.js';

/** Presence for one process: users and channel members kept in maps. */
export class MemoryPresence implements Presence {
  // A user's connections and a channel's members: one client id, a Set only from the second one on.
  private readonly users = new Map<UserId, OneOrSet<ClientId>>();
  private readonly members = new Map<ChannelName, OneOrSet<ClientId>>();

  /** @param lifecycle told of every change when webhooks want lifecycle events */
  constructor(private readonly lifecycle?: MemoryLifecycle) {}

  add(conn: PresenceConnection): Promise<void> {
    if (conn.user !== null) addTo(this.users, conn.user, conn.client);
    this.lifecycle?.connected(conn.client, conn.user);
    return Promise.resolve();
  }

  remove(conn: PresenceConnection): Promise<void> {
    if (conn.user !== null) removeFrom(this.users, conn.user, conn.client);
    this.lifecycle?.disconnected(conn.client, conn.user);
    return Promise.resolve();
  }

  join(channel: ChannelName, conn: PresenceConnection): Promise<void> {
    addTo(this.members, channel, conn.client);
    this.lifecycle?.joined(channel, conn.client);
    return Promise.resolve();
  }

  leave(channel: ChannelName, conn: PresenceConnection): Promise<void> {
    removeFrom(this.members, channel, conn.client);
    this.lifecycle?.left(channel, conn.client);
    return Promise.resolve();
  }

  online(users: readonly UserId[]): Promise<Map<UserId, number>> {
    return Promise.resolve(new Map(users.map((u) => [u, this.connectionCount(u)])));
  }

  subscribers(channel: ChannelName): Promise<number> {
    return Promise.resolve(this.subscriberCount(channel));
  }

  /** A user's connections, now (what `online` answers for one user). */
  connectionCount(user: UserId): number {
    return sizeOf(this.users.get(user));
  }

  /** A channel's subscribers, now (what `subscribers` answers). */
  subscriberCount(channel: ChannelName): number {
    return sizeOf(this.members.get(channel));
  }

  channels(prefix: string, limit: number): Promise<ChannelName[]> {
    const out: ChannelName[] = [];
    for (const ch of this.members.keys()) {
      if (out.length >= limit) break;
      if (ch.startsWith(prefix)) out.push(ch);
    }
    return Promise.resolve(out);
  }
}
