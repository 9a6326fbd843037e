import type { ChannelName, ClientId, UserId } from '@herald/protocol';
import type { ChannelMember, MemberBackListener, MemberGoneListener, MemberInput, Members } from '../types.js';

/** One channel's members: connection -> user, and per user its connection count and latest info. */
interface ChannelMembers {
  clients: Map<ClientId, UserId>;
  users: Map<UserId, { connections: number; infoJson: string }>;
}

/**
 * Channel members for one process. Connections leave when they close (the hub's owner calls `leave`), and a
 * process that dies takes every member with it, so nothing ever expires here: `onGone` and `onBack` listeners
 * are kept for the contract but never called.
 */
export class MemoryMembers implements Members {
  private readonly channels = new Map<ChannelName, ChannelMembers>();
  private readonly listeners = new Set<MemberGoneListener>();
  private readonly backListeners = new Set<MemberBackListener>();

  join(channel: ChannelName, client: ClientId, member: MemberInput): Promise<{ first: boolean }> {
    let ch = this.channels.get(channel);
    if (!ch) this.channels.set(channel, (ch = { clients: new Map(), users: new Map() }));
    const previous = ch.clients.get(client);
    const same = previous === member.user ? ch.users.get(member.user) : undefined;
    if (same) {
      same.infoJson = member.infoJson;
      return Promise.resolve({ first: false });
    }
    // A connection that joins again as another user first leaves its old membership.
    if (previous !== undefined) this.drop(ch, previous);
    ch.clients.set(client, member.user);
    const u = ch.users.get(member.user);
    if (u) {
      u.connections += 1;
      u.infoJson = member.infoJson;
      return Promise.resolve({ first: false });
    }
    ch.users.set(member.user, { connections: 1, infoJson: member.infoJson });
    return Promise.resolve({ first: true });
  }

  leave(channel: ChannelName, client: ClientId): Promise<{ user: UserId; last: boolean } | null> {
    const ch = this.channels.get(channel);
    const user = ch?.clients.get(client);
    if (!ch || user === undefined) return Promise.resolve(null);
    ch.clients.delete(client);
    const last = this.drop(ch, user);
    if (ch.clients.size === 0) this.channels.delete(channel);
    return Promise.resolve({ user, last });
  }

  list(channel: ChannelName): Promise<ChannelMember[]> {
    const users = this.channels.get(channel)?.users ?? new Map<UserId, { infoJson: string }>();
    return Promise.resolve([...users].map(([user, u]) => ({ user, infoJson: u.infoJson })));
  }

  count(channel: ChannelName): Promise<number> {
    return Promise.resolve(this.channels.get(channel)?.users.size ?? 0);
  }

  onGone(fn: MemberGoneListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onBack(fn: MemberBackListener): () => void {
    this.backListeners.add(fn);
    return () => this.backListeners.delete(fn);
  }

  /** One connection of `user` less; true when it was the last. */
  private drop(ch: ChannelMembers, user: UserId): boolean {
    const u = ch.users.get(user);
    if (!u) return false;
    u.connections -= 1;
    if (u.connections > 0) return false;
    ch.users.delete(user);
    return true;
  }
}
