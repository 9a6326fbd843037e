import { channelKind, type ChannelName, type JoinPayload, type LeavePayload, type PresenceMember, type UserId } from '@herald/protocol';
import type { Broker, ChannelMember, Members } from '../../engine/types.js';
import type { Logger } from '../../util/logger.js';

/** Changes of one channel's members since its last join/leave frames. */
interface Pending {
  /** Users whose first connection joined, with their info and that connection (none for a user put back). */
  joined: Map<UserId, { infoJson: string | undefined; client: string | undefined }>;
  /** Users whose last connection left. */
  left: Set<UserId>;
}

/** What native presence channels use. */
export interface NativePresenceDeps {
  members: Members;
  broker: Broker;
  logger: Logger;
  /** Above this many members, `subscribed` carries only the count, and join/leave frames only counts. */
  maxMembers: number;
}

/** A member as the protocol shows it (info parsed back from its JSON). */
function shown(m: ChannelMember): PresenceMember {
  const info = JSON.parse(m.infoJson) as unknown;
  return info === null ? { user: m.user } : { user: m.user, info };
}

/**
 * Native `presence:*` channels over the engine's cluster-wide Members: who is there (one entry per user, with
 * the `info` of its token) for `subscribed`, and `join`/`leave` frames when a user's first connection joins or
 * its last one leaves, on whichever node. The frames are unsequenced broadcasts (`seq` 0, not in history),
 * coalesced per channel per event-loop turn: a user who left and came back within one turn (or the reverse)
 * causes no frame, and a thousand joins in one turn are one frame.
 */
export class NativePresence {
  private readonly pending = new Map<ChannelName, Pending>();
  private scheduled = false;

  constructor(private readonly d: NativePresenceDeps) {
    // A node that died took its connections with it: whichever node notices says they left.
    d.members.onGone((channel, user) => {
      if (channelKind(channel) === 'presence') this.left(channel, user);
    });
    // A user put back after it was reported gone (its node could not renew it in time): it joins again.
    d.members.onBack((channel, user, infoJson) => {
      if (channelKind(channel) === 'presence') this.joined(channel, user, infoJson, undefined);
    });
  }

  /** Adds a connection of `user` to `channel`; resolves the members to answer `subscribed` with. */
  async join(channel: ChannelName, client: string, user: UserId, infoJson: string | undefined): Promise<{ members?: PresenceMember[]; count: number }> {
    const { first } = await this.d.members.join(channel, client, { user, infoJson: infoJson ?? 'null' });
    if (first) this.joined(channel, user, infoJson, client);
    const list = await this.d.members.list(channel);
    if (list.length > this.d.maxMembers) return { count: list.length };
    return { members: list.map(shown), count: list.length };
  }

  /** Removes a connection from `channel` (unsubscribed, or closed). */
  async leave(channel: ChannelName, client: string): Promise<void> {
    const r = await this.d.members.leave(channel, client);
    if (r?.last) this.left(channel, r.user);
  }

  private entry(channel: ChannelName): Pending {
    let p = this.pending.get(channel);
    if (!p) this.pending.set(channel, (p = { joined: new Map(), left: new Set() }));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => void this.flush());
    }
    return p;
  }

  private joined(channel: ChannelName, user: UserId, infoJson: string | undefined, client: string | undefined): void {
    const p = this.entry(channel);
    // Left and back within one turn: nothing changed for the others.
    if (!p.left.delete(user)) p.joined.set(user, { infoJson, client });
  }

  private left(channel: ChannelName, user: UserId): void {
    const p = this.entry(channel);
    if (!p.joined.delete(user)) p.left.add(user);
  }

  /** Sends one `leave` and one `join` frame per channel with changes (leaves first: a count never overshoots). */
  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = [...this.pending];
    this.pending.clear();
    await Promise.all(
      batch.map(async ([channel, p]) => {
        if (p.joined.size === 0 && p.left.size === 0) return;
        try {
          const count = await this.d.members.count(channel);
          const full = count <= this.d.maxMembers;
          if (p.left.size > 0) {
            const leave: LeavePayload = full ? { users: [...p.left], count } : { count };
            await this.d.broker.broadcast({ channel, type: 'leave', payloadJson: JSON.stringify(leave) });
          }
          if (p.joined.size > 0) {
            const joiners = [...p.joined];
            const users = joiners.map(([user, j]) => shown({ user, infoJson: j.infoJson ?? 'null' }));
            const join: JoinPayload = full ? { users, count } : { count };
            // One joiner learned the members (itself included) from its `subscribed`: it needs no join of its own.
            const only = joiners.length === 1 ? joiners[0]?.[1].client : undefined;
            await this.d.broker.broadcast({ channel, type: 'join', payloadJson: JSON.stringify(join), ...(only === undefined ? {} : { exclude: only }) });
          }
        } catch (err) {
          // Members stay right in the engine; only this notice is lost (subscribers resync on their next subscribe).
          this.d.logger.warn({ err, channel }, 'presence: join/leave frames could not be sent');
        }
      }),
    );
  }
}
