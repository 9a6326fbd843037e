import { userChannel, type ChannelName, type UserId } from '@herald/protocol';
import type { Presence, PresenceConnection } from '../types.js';
import { sizeOf, withoutValue, withValue } from '../../util/one-or-set.js';
import type { MemoryHistory } from './history.js';
import type { MemoryLifecycle } from './lifecycle.js';

/**
 * Presence for one process, kept in the channel records of the memory engine (see ChannelRecord): a channel's
 * members in its record, a user's connections in the record of the user's channel, so that a publish reads both
 * counts with the one lookup it makes for its channel anyway.
 */
export class MemoryPresence implements Presence {
  /**
   * @param records the engine's channel records
   * @param lifecycle told of every change when webhooks want lifecycle events
   */
  constructor(
    private readonly records: MemoryHistory,
    private readonly lifecycle?: MemoryLifecycle,
  ) {}

  add(conn: PresenceConnection): Promise<void> {
    if (conn.user !== null) {
      const rec = this.records.record(userChannel(conn.user));
      rec.conns = withValue(rec.conns, conn.client);
    }
    this.lifecycle?.connected(conn.client, conn.user);
    return Promise.resolve();
  }

  remove(conn: PresenceConnection): Promise<void> {
    if (conn.user !== null) {
      const channel = userChannel(conn.user);
      const rec = this.records.peek(channel);
      if (rec !== undefined) {
        rec.conns = withoutValue(rec.conns, conn.client);
        this.records.release(channel);
      }
    }
    this.lifecycle?.disconnected(conn.client, conn.user);
    return Promise.resolve();
  }

  join(channel: ChannelName, conn: PresenceConnection): Promise<void> {
    const rec = this.records.record(channel);
    rec.members = withValue(rec.members, conn.client);
    this.lifecycle?.joined(channel, conn.client);
    return Promise.resolve();
  }

  leave(channel: ChannelName, conn: PresenceConnection): Promise<void> {
    const rec = this.records.peek(channel);
    if (rec !== undefined) {
      rec.members = withoutValue(rec.members, conn.client);
      this.records.release(channel);
    }
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
    return sizeOf(this.records.peek(userChannel(user))?.conns);
  }

  /** A channel's subscribers, now (what `subscribers` answers). */
  subscriberCount(channel: ChannelName): number {
    return sizeOf(this.records.peek(channel)?.members);
  }

  channels(prefix: string, limit: number): Promise<ChannelName[]> {
    const out: ChannelName[] = [];
    for (const [ch, rec] of this.records.records()) {
      if (out.length >= limit) break;
      if (rec.members !== undefined && ch.startsWith(prefix)) out.push(ch);
    }
    return Promise.resolve(out);
  }
}
