import type { ChannelName } from '@herald/protocol';
import type { Connection } from '../../delivery/connection.js';
import type { PreparedSubscription } from '../../delivery/subscription.js';
import type { ChannelMember, EngineMessage } from '../../engine/types.js';
import type { PusherApp } from './apps.js';
import { authorizeChannel, type PresenceMember, type SignedInUser } from './channel-auth.js';
import { stringFrame, subscriptionError } from './frames.js';
import type { PusherDeps } from './deps.js';
import { HeraldError } from '../../util/errors.js';
import { channelKindOf, coreChannel, isPusherChannel, occupancyChannel, OCCUPANT } from './names.js';

/** `pusher_internal:member_added` / `member_removed`, as a broadcast on the channel. */
const MEMBER_ADDED = 'pusher_internal:member_added';
const MEMBER_REMOVED = 'pusher_internal:member_removed';

/** The payload of a member event: `{"user_id":..,"user_info":..}` (no `user_info` when there is none). */
function memberPayload(user: string, infoJson?: string): string {
  return infoJson === undefined || infoJson === 'null' ? `{"user_id":${JSON.stringify(user)}}` : `{"user_id":${JSON.stringify(user)},"user_info":${infoJson}}`;
}

/**
 * Which member events that arrived while a presence subscription was set up still say something after its
 * `subscription_succeeded` listed `members` (kept up to date as they pass): a `member_added` of a listed user was
 * published before the list was read (pusher-js would announce, and Laravel Echo's `joining` report, a member it
 * already has), and so was a `member_removed` of a user not listed.
 */
function memberNews(members: Set<string>): (msg: EngineMessage) => boolean {
  return (msg) => {
    const f = JSON.parse(msg.frame.toString('utf8')) as { type?: unknown; payload?: { user_id?: unknown } };
    if (f.type !== MEMBER_ADDED && f.type !== MEMBER_REMOVED) return true;
    const user = String(f.payload?.user_id);
    if (f.type === MEMBER_REMOVED) return members.delete(user);
    if (members.has(user)) return false;
    members.add(user);
    return true;
  };
}

/** `{presence:{ids, hash, count}}`, what `pusher_internal:subscription_succeeded` carries on a presence channel. */
function presenceData(members: readonly ChannelMember[]): object {
  const hash = Object.create(null) as Record<string, unknown>;
  for (const m of members) hash[m.user] = JSON.parse(m.infoJson) as unknown;
  return { presence: { ids: members.map((m) => m.user), hash, count: members.length } };
}

/** Broadcasts that a user joined or left a presence channel (also when its node died: see the protocol). */
export async function announceMember(
  engine: PusherDeps['engine'],
  channel: ChannelName,
  kind: 'added' | 'removed',
  user: string,
  opts: { infoJson?: string; exclude?: string } = {},
): Promise<void> {
  await engine.broker.broadcast({
    channel,
    type: kind === 'added' ? MEMBER_ADDED : MEMBER_REMOVED,
    payloadJson: kind === 'added' ? memberPayload(user, opts.infoJson) : memberPayload(user),
    ...(opts.exclude === undefined ? {} : { exclude: opts.exclude }),
  });
}

/**
 * Subscriptions of one Pusher connection: authorization, the presence membership (first joins and last leaves
 * are announced cluster-wide), the cache replay of cache channels, and unsubscribes. The handler runs these
 * one at a time, in arrival order.
 */
export class PusherSubscriber {
  /** Set once the handshake picked the app. */
  app!: PusherApp;
  /** Presence channels this connection is a member of, and as which user. */
  private readonly members = new Map<ChannelName, string>();
  /** Channels whose occupancy this connection counts in (apps with occupancy webhooks), by their Pusher name. */
  private readonly occupying = new Set<string>();

  constructor(
    private readonly conn: Connection,
    private readonly d: PusherDeps,
  ) {}

  /** Whether the connection is subscribed to `core` and its subscription is live (answered). */
  isSubscribed(core: ChannelName): boolean {
    const sub = this.conn.subs.get(core);
    return sub !== undefined && sub.held === null;
  }

  /** The user this connection is in a presence channel as. */
  memberOf(core: ChannelName): string | undefined {
    return this.members.get(core);
  }

  async subscribe(data: Record<string, unknown>, user: SignedInUser | undefined): Promise<void> {
    const { conn, d, app } = this;
    const name = data['channel'];
    if (!isPusherChannel(name)) {
      conn.sendJson(subscriptionError(typeof name === 'string' ? name.slice(0, 200) : '', 'InvalidChannel', 'Invalid channel name', 400));
      return;
    }
    const ch = channelKindOf(name);
    const core = coreChannel(app.id, name);
    if (!conn.subs.has(core) && conn.subs.size >= d.maxSubscriptions) {
      d.stats.limited('subscriptions', conn.ids({ channel: name }));
      conn.sendJson(subscriptionError(name, 'LimitReached', `At most ${d.maxSubscriptions} subscriptions per connection`, 400));
      return;
    }
    const auth = authorizeChannel(app, conn.id, ch, data, user);
    if (!auth.ok) {
      d.stats.authFailure('pusher_signature', conn.ids({ channel: name }));
      conn.sendJson(subscriptionError(name, 'AuthError', auth.message, auth.status));
      conn.sendJson({ event: 'pusher:error', data: { code: 4009, message: `${auth.message} (${name.slice(0, 100)})` } });
      return;
    }
    let prepared: PreparedSubscription;
    let presence: ChannelMember[] | undefined;
    try {
      if (auth.member !== undefined && !(await this.roomFor(core, auth.member))) {
        conn.sendJson(subscriptionError(name, 'LimitReached', `Presence channels have at most ${app.maxPresenceMembers} members`, 400));
        return;
      }
      // After each wait: a connection closed meanwhile has left everything it held (leaveAll); what it would
      // join now would stay for good (a subscriber, an occupant that never vacates).
      if (conn.isClosed()) return;
      prepared = await d.subscriptions.prepare(conn, core, {});
      if (conn.isClosed()) return;
      if (auth.member !== undefined) presence = await this.join(core, auth.member);
      if (conn.isClosed()) return;
      await this.occupy(name);
      if (ch.cache) prepared = await this.withCached(prepared);
    } catch (err) {
      if (err instanceof HeraldError && err.code === 'too_many_channels') {
        // The new-channel budget (channelRate), counted by the hub as herald_limited_total: not an engine error.
        if (!conn.isClosed()) conn.sendJson(subscriptionError(name, 'LimitReached', `${err.message} (${err.code})`, 429));
        return;
      }
      d.stats.engineError('subscribe', conn.ids({ channel: name, error: err instanceof Error ? err.message : String(err) }));
      if (!conn.isClosed()) conn.sendJson(subscriptionError(name, 'EngineUnavailable', 'The subscription failed, retry later', 503));
      return;
    }
    if (conn.isClosed()) return;
    conn.sendJson(stringFrame('pusher_internal:subscription_succeeded', presence === undefined ? {} : presenceData(presence), name));
    const admit = presence === undefined ? undefined : memberNews(new Set(presence.map((m) => m.user)));
    for (const f of d.subscriptions.finish(conn, prepared, admit)) conn.enqueue(f);
    if (ch.cache && prepared.messages.length === 0) conn.sendJson({ event: 'pusher:cache_miss', channel: name });
  }

  async unsubscribe(data: Record<string, unknown>): Promise<void> {
    const name = data['channel'];
    if (!isPusherChannel(name)) return;
    const core = coreChannel(this.app.id, name);
    this.d.subscriptions.unsubscribe(this.conn, core);
    await Promise.all([this.leave(core), this.vacate(name)]);
  }

  /** The connection closed: leave every presence channel (announcing users that left with it). */
  async leaveAll(): Promise<void> {
    await Promise.all([...[...this.members.keys()].map((core) => this.leave(core)), ...[...this.occupying].map((name) => this.vacate(name))]);
  }

  /** Counts this connection in a channel's occupancy when the app has occupancy webhooks; the first is occupied. */
  private async occupy(name: string): Promise<void> {
    const { webhooks, engine } = this.d;
    if (this.occupying.has(name) || !(webhooks.wants(this.app, 'channel_occupied') || webhooks.wants(this.app, 'channel_vacated'))) return;
    this.occupying.add(name);
    const { first } = await engine.members.join(occupancyChannel(this.app.id, name), this.conn.id, { user: OCCUPANT, infoJson: 'null' });
    if (first) await webhooks.occupied(this.app, coreChannel(this.app.id, name));
  }

  private async vacate(name: string): Promise<void> {
    if (!this.occupying.delete(name)) return;
    const left = await this.d.engine.members.leave(occupancyChannel(this.app.id, name), this.conn.id);
    if (left?.last) await this.d.webhooks.vacated(this.app, coreChannel(this.app.id, name));
  }

  /** Whether a presence channel has room for `member` (a user already in it always has). */
  private async roomFor(core: ChannelName, member: PresenceMember): Promise<boolean> {
    if (this.members.get(core) === member.user) return true;
    const count = await this.d.engine.members.count(core);
    if (count < this.app.maxPresenceMembers) return true;
    return (await this.d.engine.members.list(core)).some((m) => m.user === member.user);
  }

  /** Joins a presence channel; a user's first connection is announced to the others. Returns the members. */
  private async join(core: ChannelName, member: PresenceMember): Promise<ChannelMember[]> {
    const { engine } = this.d;
    const previous = this.members.get(core);
    if (previous !== undefined && previous !== member.user) await this.leave(core);
    this.members.set(core, member.user);
    const { first } = await engine.members.join(core, this.conn.id, { user: member.user, infoJson: member.infoJson });
    if (first) {
      await announceMember(engine, core, 'added', member.user, { infoJson: member.infoJson, exclude: this.conn.id });
      await this.d.webhooks.memberAdded(this.app, core, member.user);
    }
    return engine.members.list(core);
  }

  private async leave(core: ChannelName): Promise<void> {
    if (!this.members.delete(core)) return;
    const left = await this.d.engine.members.leave(core, this.conn.id);
    if (!left?.last) return;
    await announceMember(this.d.engine, core, 'removed', left.user);
    await this.d.webhooks.memberRemoved(this.app, core, left.user);
  }

  /**
   * A cache channel replays its last event right after `subscription_succeeded`: the message at the position
   * the subscription was set up at, so the held live messages that follow it are neither lost nor repeated.
   */
  private async withCached(prepared: PreparedSubscription): Promise<PreparedSubscription> {
    const { seq, epoch } = prepared.result;
    if (seq === 0) return prepared;
    const page = await this.d.engine.history.read(prepared.channel, { since: seq - 1, epoch, limit: 1 });
    const last: EngineMessage | undefined = page.complete ? page.messages.find((m) => m.seq === seq) : undefined;
    return last === undefined ? prepared : { ...prepared, messages: [last] };
  }
}
