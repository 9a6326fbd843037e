import type { ChannelName, ClientId, StreamPosition, SubscribedFrame, SubscribeRecovery, SubscriptionResult, UserId } from '@herald/protocol';
import type { Connection } from './connection.js';
import { FlushPacer, type PacerTimers } from './flush-pacer.js';
import type { DisconnectTarget, Engine, EngineHandlers, EngineMessage } from './engine/types.js';
import type { Logger } from './logger.js';
import type { Stats } from './stats.js';

interface ChannelEntry {
  conns: Set<Connection>;
  /**
   * The epoch every subscriber of this node knows, or null when unknown or mixed (a new channel, or a
   * subscriber that learned another epoch): the next message then checks each subscriber.
   */
  epoch: string | null;
  /** Settles when this node's engine subscription is active; every subscriber awaits it before reading history. */
  ready: Promise<void>;
}

/** A subscription being set up: live messages are buffered in the connection until `finish`. */
export interface PreparedSubscription {
  channel: ChannelName;
  result: SubscriptionResult;
  messages: EngineMessage[];
}

/**
 * Channels to local connections. The hub subscribes this node to a channel in the engine on its first
 * local subscriber and unsubscribes on the last, delivers what the engine hands back, and coalesces
 * everything queued for one connection within one event-loop turn into one write.
 */
export class Hub implements EngineHandlers {
  private readonly channels = new Map<ChannelName, ChannelEntry>();
  readonly connections = new Map<ClientId, Connection>();
  private readonly users = new Map<UserId, Set<Connection>>();
  private dirty: Connection[] = [];
  private readonly pacer: FlushPacer;

  constructor(
    private readonly engine: Engine,
    private readonly logger: Logger,
    private readonly stats: Stats,
    timers?: PacerTimers,
  ) {
    this.pacer = new FlushPacer(this.flush, timers);
  }

  // ---- engine handlers (hot path) -------------------------------------------------------------

  message(msg: EngineMessage): void {
    const entry = this.channels.get(msg.channel);
    if (!entry) return;
    if (msg.epoch !== entry.epoch) {
      this.epochChanged(entry, msg);
      return;
    }
    for (const conn of entry.conns) {
      const buffered = conn.buffered(msg.channel);
      if (buffered) buffered.push(msg);
      else conn.enqueue(msg.frame);
    }
    this.stats.delivered += entry.conns.size;
  }

  /**
   * A message of an epoch some subscribers do not know: the channel's history was lost (a Redis that came
   * back empty, say) and seq restarted. Each such subscriber first gets a fresh `subscribed` with the new
   * epoch and `recovered: false`, so it resets its position instead of dropping seq 1, 2, 3 as duplicates.
   */
  private epochChanged(entry: ChannelEntry, msg: EngineMessage): void {
    entry.epoch = msg.epoch;
    for (const conn of entry.conns) {
      const buffered = conn.buffered(msg.channel);
      if (buffered) {
        buffered.push(msg);
        continue;
      }
      if (conn.subs.get(msg.channel) !== msg.epoch) {
        conn.subs.set(msg.channel, msg.epoch);
        conn.enqueue(resetFrame(msg));
      }
      conn.enqueue(msg.frame);
    }
    this.stats.delivered += entry.conns.size;
  }

  direct(client: ClientId, frame: Buffer): boolean {
    const conn = this.connections.get(client);
    if (!conn || conn.state !== 'open') return false;
    conn.enqueue(frame);
    this.stats.delivered += 1;
    return true;
  }

  disconnect(target: DisconnectTarget): number {
    const victims: Connection[] = [];
    if (target.client !== undefined) {
      const c = this.connections.get(target.client);
      if (c) victims.push(c);
    } else if (target.user !== undefined) {
      victims.push(...(this.users.get(target.user) ?? []));
    }
    for (const c of victims) c.close(target.code, target.reason);
    return victims.length;
  }

  // ---- write coalescing -------------------------------------------------------------------------

  /** Called by a connection the first time something is queued in this turn. */
  markDirty(conn: Connection): void {
    this.dirty.push(conn);
    this.pacer.request();
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

  /** Registers an authenticated connection under its user and in presence. */
  async register(conn: Connection): Promise<void> {
    const user = conn.principal.user;
    if (user !== null) {
      let set = this.users.get(user);
      if (!set) this.users.set(user, (set = new Set()));
      set.add(conn);
    }
    await this.engine.presence.add(conn.presence).catch((err: unknown) => this.logger.warn({ err, client: conn.id }, 'presence add failed'));
  }

  /** Forgets a closed connection: channels, user index, presence. Idempotent. */
  remove(conn: Connection): void {
    if (!this.connections.delete(conn.id)) return;
    for (const channel of conn.subs.keys()) this.leave(conn, channel);
    conn.subs.clear();
    conn.releaseAll();
    const user = conn.principal.user;
    if (user !== null && conn.registered) {
      const set = this.users.get(user);
      set?.delete(conn);
      if (set?.size === 0) this.users.delete(user);
      void this.engine.presence.remove(conn.presence).catch((err: unknown) => this.logger.warn({ err, client: conn.id }, 'presence remove failed'));
    }
  }

  // ---- subscriptions ----------------------------------------------------------------------------

  /**
   * First half of a subscription: join the channel (buffering live messages for this connection), make
   * sure this node is subscribed in the engine, then read the position or recover from history. Live
   * messages stay buffered until `finish`, so the caller can send `subscribed` (or `connected`) first.
   */
  async prepare(conn: Connection, channel: ChannelName, rec: SubscribeRecovery): Promise<PreparedSubscription> {
    const isNew = !conn.subs.has(channel);
    conn.holdBack(channel);
    let entry = this.channels.get(channel);
    if (isNew) {
      conn.subs.set(channel, '');
      if (!entry) {
        entry = { conns: new Set(), epoch: null, ready: this.engine.broker.subscribe(channel) };
        // A failed engine subscribe must not poison the channel forever: the next subscriber retries.
        entry.ready.catch(() => {
          if (this.channels.get(channel) === entry) this.channels.delete(channel);
        });
        this.channels.set(channel, entry);
      }
      entry.conns.add(conn);
    }
    try {
      await (entry as ChannelEntry).ready;
      if (isNew) await this.engine.presence.join(channel, conn.presence).catch((err: unknown) => this.logger.warn({ err, channel }, 'presence join failed'));
      // Recovery needs the epoch the position belongs to: a `since` alone could match a newer history.
      if (rec.since !== undefined && rec.epoch !== undefined) {
        const r = await this.engine.history.recover(channel, rec.since, rec.epoch);
        if (r.recovered) this.stats.recovered += 1;
        else this.stats.notRecovered += 1;
        return { channel, result: { ...pos(r.position), recovered: r.recovered }, messages: r.messages };
      }
      const p = await this.engine.history.position(channel);
      if (rec.since !== undefined) this.stats.notRecovered += 1;
      return { channel, result: { ...pos(p), recovered: false }, messages: [] };
    } catch (err) {
      conn.release(channel);
      if (isNew) {
        conn.subs.delete(channel);
        this.leave(conn, channel);
      }
      throw err;
    }
  }

  /**
   * Second half, synchronous: returns the frames that follow the subscription answer (the recovered
   * messages, then the live messages buffered meanwhile, without duplicates: anything at or below the last
   * recovered seq was already covered) and switches the channel to live delivery for this connection.
   */
  finish(conn: Connection, prepared: PreparedSubscription): Buffer[] {
    const { channel, result } = prepared;
    const buffered = conn.release(channel);
    if (!conn.subs.has(channel)) return [];
    const out = prepared.messages.map((m) => m.frame);
    let epoch = result.epoch;
    let last = Math.max(result.seq, prepared.messages[prepared.messages.length - 1]?.seq ?? 0);
    for (const m of buffered) {
      if (m.epoch !== epoch) {
        // History was lost while this subscription was being set up.
        out.push(resetFrame(m));
        epoch = m.epoch;
        last = m.seq - 1;
      }
      if (m.seq <= last) continue;
      out.push(m.frame);
      last = m.seq;
    }
    conn.subs.set(channel, epoch);
    const entry = this.channels.get(channel);
    if (entry && entry.epoch !== epoch) entry.epoch = null;
    return out;
  }

  /** Removes `conn` from `channel`. */
  unsubscribe(conn: Connection, channel: ChannelName): void {
    if (!conn.subs.delete(channel)) return;
    conn.release(channel);
    this.leave(conn, channel);
  }

  private leave(conn: Connection, channel: ChannelName): void {
    const entry = this.channels.get(channel);
    if (entry?.conns.delete(conn)) {
      void this.engine.presence.leave(channel, conn.presence).catch((err: unknown) => this.logger.warn({ err, channel }, 'presence leave failed'));
      if (entry.conns.size === 0) {
        this.channels.delete(channel);
        void this.engine.broker.unsubscribe(channel).catch((err: unknown) => this.logger.warn({ err, channel }, 'engine unsubscribe failed'));
      }
    }
  }

  /** Number of channels with at least one local subscriber. */
  get channelCount(): number {
    return this.channels.size;
  }

  /** Local subscriber count of a channel. */
  localSubscribers(channel: ChannelName): number {
    return this.channels.get(channel)?.conns.size ?? 0;
  }
}

/** The `subscribed` frame that tells a subscriber its channel starts over in a new epoch at `msg`. */
function resetFrame(msg: EngineMessage): Buffer {
  const frame: SubscribedFrame = { type: 'subscribed', channel: msg.channel, seq: msg.seq - 1, epoch: msg.epoch, recovered: false };
  return Buffer.from(JSON.stringify(frame));
}

function pos(p: StreamPosition): { seq: number; epoch: string } {
  return { seq: p.seq, epoch: p.epoch };
}
