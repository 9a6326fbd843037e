import { USER_CHANNEL_PREFIX, userChannel, type ChannelName, type ClientId, type StreamPosition, type SubscribeRecovery, type UserId } from '@herald/protocol';
import { isGatewayChannel } from '../auth/admin-token.js';
import type { DisconnectTarget, Engine, EngineHandlers, EngineMessage } from '../engine/types.js';
import type { Logger } from '../util/logger.js';
import { Subscription, type Connection, type ConnectionHost } from './connection.js';
import { HeraldError } from '../util/errors.js';
import type { ChannelBudget } from './channel-budget.js';
import { FlushPacer, type PacerTimers } from './flush-pacer.js';
import type { Stats } from './stats.js';
import type { PreparedSubscription } from './subscription.js';
import type { InboxDelivery } from './inbox.js';
import type { InboxMessage } from '../engine/inbox.js';
import { addTo, holds, removeFrom, sizeOf, valuesOf, withoutValue, withValue, type OneOrSet } from '../util/one-or-set.js';

/** What a channel entry's `ready` becomes once the engine subscription is active. */
const SUBSCRIBED: Promise<void> = Promise.resolve();
/**
 * The most connections an early flush writes (see Hub.flushNow): what one request's pushes to users queue. More
 * waiting connections mean a fan-out, whose writes are shared with the rest of the turn's messages instead.
 */
export const EARLY_FLUSH_CONNECTIONS = 64;

interface ChannelEntry {
  /** The local subscribers: the one subscription (most channels: a user's), a Set only from the second on. */
  subs: OneOrSet<Subscription> | undefined;
  /**
   * The epoch every subscriber of this node knows, or null when unknown or mixed (a new channel, or a
   * subscriber that learned another epoch): the next message then checks each subscriber.
   */
  epoch: string | null;
  /** Settles when this node's engine subscription is active; every subscriber awaits it before reading history. */
  ready: Promise<void>;
  /** Whether deliveries count as application traffic (false for the gateway's own channels, the admin feed). */
  counted: boolean;
}

/** A channel with subscribers on this node, and how many. */
export interface ChannelCount {
  channel: ChannelName;
  subscribers: number;
}

/** What protocols do with subscriptions (the hub implements it). */
export interface Subscriptions {
  /** Registers an authenticated connection under its user and in presence. */
  register(conn: Connection): Promise<void>;
  /** First half of a subscription (see Hub.prepare). */
  prepare(conn: Connection, channel: ChannelName, rec: SubscribeRecovery): Promise<PreparedSubscription>;
  /**
   * Second half: the frames that follow the subscription answer (see Hub.finish). `admit` may leave out unsequenced
   * broadcasts that arrived while it was set up (a presence event the answer already counted).
   */
  finish(conn: Connection, prepared: PreparedSubscription, admit?: (msg: EngineMessage) => boolean): Buffer[];
  /** Removes `conn` from `channel`. */
  unsubscribe(conn: Connection, channel: ChannelName): void;
}

/**
 * Channels to local subscriptions, and the node's connections. The hub subscribes this node to a channel in
 * the engine on its first local subscriber and unsubscribes on the last, delivers what the engine hands back
 * (each connection gets its protocol's frame of the message), and coalesces everything queued for one
 * connection within one event-loop turn into one write.
 */
export class Hub implements EngineHandlers, ConnectionHost, Subscriptions {
  private readonly channels = new Map<ChannelName, ChannelEntry>();
  readonly connections = new Map<ClientId, Connection>();
  /** A user's connections on this node: the one connection, a Set only from the second one on. */
  private readonly users = new Map<UserId, OneOrSet<Connection>>();
  private dirty: Connection[] = [];
  private readonly pacer: FlushPacer;

  private readonly budget: ChannelBudget | undefined;
  private readonly now: () => number;
  private readonly inboxes: InboxDelivery | undefined;
  /** Users whose inbox this node watches (the watch may still be under way). */
  private readonly watching = new Map<UserId, Promise<void>>();

  constructor(
    private readonly engine: Engine,
    private readonly logger: Logger,
    private readonly stats: Stats,
    opts: { timers?: PacerTimers; budget?: ChannelBudget; now?: () => number; inbox?: InboxDelivery } = {},
  ) {
    this.pacer = new FlushPacer(this.flush, opts.timers);
    this.budget = opts.budget;
    this.now = opts.now ?? Date.now;
    this.inboxes = opts.inbox;
  }

  // ---- engine handlers (hot path) -------------------------------------------------------------

  message(msg: EngineMessage): void {
    const entry = this.channels.get(msg.channel);
    if (!entry) return;
    // Unsequenced broadcasts (seq 0) carry no epoch and never move a channel's position.
    if (msg.epoch !== entry.epoch && msg.seq !== 0) {
      this.epochChanged(entry, msg);
      return;
    }
    const exclude = msg.exclude;
    for (const sub of valuesOf(entry.subs)) {
      if (exclude !== undefined && sub.conn.id === exclude) continue;
      if (sub.held !== null) sub.held.push(msg);
      else if (sub.floor === 0 || passes(sub, msg)) sub.conn.enqueue(sub.conn.handler.codec.frame(msg));
    }
    this.delivered(entry, msg);
  }

  /** Counts a fan-out, and times it when the publish was sampled (see LatencySampler). */
  private delivered(entry: ChannelEntry, msg: EngineMessage): void {
    if (!entry.counted) return;
    this.stats.delivered += sizeOf(entry.subs);
    if (this.stats.latency.size > 0) this.stats.latency.delivered(msg.channel);
  }

  /**
   * A message of an epoch some subscribers do not know: the channel's history was lost (a Redis that came
   * back empty, say) and seq restarted. Each such subscriber first gets its protocol's epoch reset (native:
   * a fresh `subscribed` with `recovered: false`), so it resets its position instead of dropping seq 1, 2, 3
   * as duplicates.
   */
  private epochChanged(entry: ChannelEntry, msg: EngineMessage): void {
    entry.epoch = msg.epoch;
    for (const sub of valuesOf(entry.subs)) {
      if (msg.exclude !== undefined && sub.conn.id === msg.exclude) continue;
      if (sub.held !== null) {
        sub.held.push(msg);
        continue;
      }
      const codec = sub.conn.handler.codec;
      if (sub.epoch !== msg.epoch) {
        sub.epoch = msg.epoch;
        sub.floor = 0;
        const reset = codec.epochReset(msg);
        if (reset) sub.conn.enqueue(reset);
      } else if (sub.floor !== 0 && !passes(sub, msg)) {
        continue;
      }
      sub.conn.enqueue(codec.frame(msg));
    }
    this.delivered(entry, msg);
  }

  direct(client: ClientId, msg: EngineMessage): boolean {
    const conn = this.connections.get(client);
    if (!conn || conn.state !== 'open') return false;
    conn.enqueue(conn.handler.codec.frame(msg));
    this.stats.delivered += 1;
    return true;
  }

  inbox(msg: InboxMessage): void {
    const conns = this.users.get(msg.user);
    if (conns) this.inboxes?.deliver(msg, valuesOf(conns));
  }

  disconnect(target: DisconnectTarget): number {
    const victims: Connection[] = [];
    if (target.client !== undefined) {
      const c = this.connections.get(target.client);
      if (c) victims.push(c);
    } else if (target.user !== undefined) {
      victims.push(...valuesOf(this.users.get(target.user)));
    }
    for (const c of victims) c.closeFor('disconnected', target.reason, undefined, target.code);
    return victims.length;
  }

  // ---- write coalescing -------------------------------------------------------------------------

  markDirty(conn: Connection): void {
    this.dirty.push(conn);
    this.pacer.request();
  }

  /**
   * Writes the queued frames now rather than at the end of the turn, when at most `EARLY_FLUSH_CONNECTIONS`
   * connections wait and the pacer holds no gap: the publisher calls it once a publish's outcome is known, so
   * that a push to a user leaves before the answer to the request that published it (and other requests read in
   * the same turn do not delay it). A larger flush (a fan-out) keeps its place at the end of the turn, where the
   * messages of every request of the turn share one write per connection.
   */
  flushNow(): void {
    const n = this.dirty.length;
    if (n > 0 && n <= EARLY_FLUSH_CONNECTIONS) this.pacer.flushNow();
  }

  /** Writes every queued frame: one write per connection per flush, when the pacer says (see FlushPacer). */
  readonly flush = (): void => {
    const dirty = this.dirty;
    this.dirty = [];
    for (const conn of dirty) conn.flush();
    this.stats.latency.flushed();
  };

  // ---- registry ---------------------------------------------------------------------------------

  add(conn: Connection): void {
    this.connections.set(conn.id, conn);
  }

  async register(conn: Connection): Promise<void> {
    conn.registered = true;
    const user = conn.identity.user;
    // Presence needs nothing of the inbox watch below: both in the same turn (one round trip, not two in a row).
    const added = this.engine.presence.add(conn.presence).catch((err: unknown) => this.logger.warn({ err, client: conn.id }, 'presence add failed'));
    if (user !== null) {
      addTo(this.users, user, conn);
      // The node takes the user's new inbox messages while it has a connection of the user. A second connection
      // waits for the first one's watch too: its inbox replay must not start before live messages can arrive.
      if (this.inboxes) {
        let watching = this.watching.get(user);
        if (!watching) {
          const started = this.engine.inbox.watch(user).catch((err: unknown) => this.logger.warn({ err, user }, 'inbox watch failed'));
          this.watching.set(user, started);
          // Settled: the shared settled promise instead (one object less per idle user).
          void started.then(() => {
            if (this.watching.get(user) === started) this.watching.set(user, SUBSCRIBED);
          });
          watching = started;
        }
        await watching;
      }
    }
    await added;
  }

  remove(conn: Connection): void {
    if (!this.connections.delete(conn.id)) return;
    for (const sub of conn.subs.values()) this.leave(sub);
    conn.subs.clear();
    const user = conn.identity.user;
    if (user !== null && conn.registered) {
      if (removeFrom(this.users, user, conn)) {
        this.users.delete(user);
        this.watching.delete(user);
        if (this.inboxes) void this.engine.inbox.unwatch(user).catch((err: unknown) => this.logger.warn({ err, user }, 'inbox unwatch failed'));
      }
    }
    if (conn.registered) {
      void this.engine.presence.remove(conn.presence).catch((err: unknown) => this.logger.warn({ err, client: conn.id }, 'presence remove failed'));
    }
  }

  // ---- subscriptions ----------------------------------------------------------------------------

  /**
   * First half of a subscription: join the channel (holding back live messages for this connection), make
   * sure this node is subscribed in the engine, then read the position or recover from history. Live
   * messages stay held until `finish`, so the caller can send its subscription answer first.
   */
  async prepare(conn: Connection, channel: ChannelName, rec: SubscribeRecovery): Promise<PreparedSubscription> {
    let sub = conn.subs.get(channel);
    const isNew = sub === undefined;
    let entry = this.channels.get(channel);
    if (sub === undefined) {
      sub = new Subscription(conn, channel);
      conn.subs.set(channel, sub);
      if (!entry) {
        // A connection's own user channel is one per connection, bounded by the connection limits: not charged.
        if (this.budget && !isOwnUserChannel(conn, channel) && !this.budget.take(conn, conn.ip, this.now())) {
          conn.subs.delete(channel);
          this.stats.limited('new_channels', conn.ids({ channel }));
          throw new HeraldError('too_many_channels', 'new channels are arriving faster than the limit; retry later');
        }
        const created: ChannelEntry = { subs: undefined, epoch: null, ready: this.engine.broker.subscribe(channel), counted: !isGatewayChannel(channel) };
        created.ready.then(
          // Settled: the shared settled promise instead (one object less per idle channel).
          () => {
            created.ready = SUBSCRIBED;
          },
          // A failed engine subscribe must not poison the channel forever: the next subscriber retries.
          () => {
            if (this.channels.get(channel) === created) this.channels.delete(channel);
          },
        );
        this.channels.set(channel, created);
        entry = created;
      }
      entry.subs = withValue(entry.subs, sub);
    } else {
      // A repeated subscribe (a new position to recover from): hold live messages back again, from none.
      sub.held = [];
    }
    try {
      await (entry as ChannelEntry).ready;
      // The join and the history read go out together (one round trip on an engine that pipelines). Not for a
      // connection closed meanwhile (remove() left its channels): its presence entry would outlive it.
      const joined =
        isNew && this.connections.get(conn.id) === conn
          ? this.engine.presence.join(channel, conn.presence).catch((err: unknown) => this.logger.warn({ err, channel }, 'presence join failed'))
          : undefined;
      // Recovery needs the epoch the position belongs to: a `since` alone could match a newer history.
      if (rec.since !== undefined && rec.epoch !== undefined) {
        const r = await this.engine.history.recover(channel, rec.since, rec.epoch);
        await joined;
        if (r.recovered) this.stats.recovered += 1;
        else this.stats.notRecovered += 1;
        return { channel, result: { ...pos(r.position), recovered: r.recovered }, messages: r.messages };
      }
      const p = await this.engine.history.position(channel);
      await joined;
      if (rec.since !== undefined) this.stats.notRecovered += 1;
      return { channel, result: { ...pos(p), recovered: false }, messages: [] };
    } catch (err) {
      if (isNew) this.unsubscribe(conn, channel);
      else sub.held = null;
      throw err;
    }
  }

  /**
   * Second half, synchronous: returns the frames that follow the subscription answer (the recovered
   * messages, then the live messages held meanwhile, without duplicates: anything at or below the last
   * recovered seq was already covered) and switches the subscription to live delivery.
   */
  finish(conn: Connection, prepared: PreparedSubscription, admit?: (msg: EngineMessage) => boolean): Buffer[] {
    const { channel, result } = prepared;
    const sub = conn.subs.get(channel);
    if (sub === undefined) return [];
    const held = sub.held ?? [];
    sub.held = null;
    const codec = conn.handler.codec;
    const out = prepared.messages.map((m) => codec.frame(m));
    let epoch = result.epoch;
    let last = Math.max(result.seq, prepared.messages[prepared.messages.length - 1]?.seq ?? 0);
    for (const m of held) {
      if (m.seq === 0) {
        // An unsequenced broadcast that arrived meanwhile: live only, in arrival order.
        if (admit === undefined || admit(m)) out.push(codec.frame(m));
        continue;
      }
      if (m.epoch !== epoch) {
        // History was lost while this subscription was being set up.
        const reset = codec.epochReset(m);
        if (reset) out.push(reset);
        epoch = m.epoch;
        last = m.seq - 1;
      }
      if (m.seq <= last) continue;
      out.push(codec.frame(m));
      last = m.seq;
    }
    sub.epoch = epoch;
    sub.floor = last;
    const entry = this.channels.get(channel);
    if (entry && entry.epoch !== epoch) entry.epoch = null;
    return out;
  }

  unsubscribe(conn: Connection, channel: ChannelName): void {
    const sub = conn.subs.get(channel);
    if (sub === undefined) return;
    conn.subs.delete(channel);
    this.leave(sub);
  }

  private leave(sub: Subscription): void {
    sub.held = null;
    const { channel, conn } = sub;
    const entry = this.channels.get(channel);
    if (entry !== undefined && holds(entry.subs, sub)) {
      entry.subs = withoutValue(entry.subs, sub);
      void this.engine.presence.leave(channel, conn.presence).catch((err: unknown) => this.logger.warn({ err, channel }, 'presence leave failed'));
      if (entry.subs === undefined) {
        this.channels.delete(channel);
        void this.engine.broker.unsubscribe(channel).catch((err: unknown) => this.logger.warn({ err, channel }, 'engine unsubscribe failed'));
      }
    }
  }

  // ---- what operators and the API read ---------------------------------------------------------

  /** Number of channels with at least one local subscriber. */
  get channelCount(): number {
    return this.channels.size;
  }

  /** Whether `channel` has subscribers on this node. */
  hasSubscribers(channel: ChannelName): boolean {
    return this.localSubscribers(channel) > 0;
  }

  /** Local subscriber count of a channel. */
  localSubscribers(channel: ChannelName): number {
    return sizeOf(this.channels.get(channel)?.subs);
  }

  /** Open connections on this node by protocol name. O(connections): for scrapes and dashboards. */
  connectionsByProtocol(): Map<string, number> {
    const out = new Map<string, number>();
    for (const conn of this.connections.values()) out.set(conn.protocol, (out.get(conn.protocol) ?? 0) + 1);
    return out;
  }

  /** Subscriptions held by open connections on this node. */
  subscriptionCount(): number {
    let n = 0;
    for (const conn of this.connections.values()) if (conn.state === 'open') n += conn.subs.size;
    return n;
  }

  /**
   * Channels with subscribers on this node and their counts, most subscribers first (then by name):
   * O(channels), run on demand (an API call, a dashboard tick), never per message.
   */
  listChannels(opts: { prefix?: string | undefined; limit: number }): { total: number; channels: ChannelCount[] } {
    const prefix = opts.prefix ?? '';
    const all: ChannelCount[] = [];
    for (const [channel, entry] of this.channels) {
      if (prefix !== '' && !channel.startsWith(prefix)) continue;
      let n = 0;
      for (const sub of valuesOf(entry.subs)) if (sub.conn.state === 'open') n += 1;
      if (n > 0) all.push({ channel, subscribers: n });
    }
    all.sort((a, b) => b.subscribers - a.subscribers || (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0));
    return { total: all.length, channels: all.slice(0, opts.limit) };
  }
}

/** Whether `channel` is the automatic `user:<id>` channel of `conn`'s user. */
function isOwnUserChannel(conn: Connection, channel: ChannelName): boolean {
  const user = conn.identity.user;
  return user !== null && channel.length === USER_CHANNEL_PREFIX.length + user.length && channel === userChannel(user);
}

function pos(p: StreamPosition): { seq: number; epoch: string } {
  return { seq: p.seq, epoch: p.epoch };
}

/**
 * Whether a live message of the subscription's epoch goes out while `sub.floor` is set: not when `finish` already
 * gave the client its seq (a late live copy of a replayed message); the first one past the floor lifts it, since
 * live messages of a channel arrive in seq order. Unsequenced ones (seq 0) always pass.
 */
function passes(sub: Subscription, msg: EngineMessage): boolean {
  if (msg.seq === 0) return true;
  if (msg.seq <= sub.floor) return false;
  sub.floor = 0;
  return true;
}
