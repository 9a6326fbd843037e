import { isValidCoreChannel, type ChannelName } from '@herald/protocol';
import { sleep } from '../../util/clock.js';
import { EngineUnavailableError, HeraldError } from '../../util/errors.js';
import type { Logger } from '../../util/logger.js';
import { broadcastMessage, clientChannel, directMessage, encodeMessage } from '../message.js';
import { newEpoch } from '../../util/random-id.js';
import { isCluster, onSubscriberBack, toHeraldError, unstickShardedSubscribers, type LuaScript, type RedisClient, type RedisContext } from './client.js';
import { TurnSubscriber } from './turns.js';
import type { RedisHistory } from './history.js';
import { PublishBatch } from './publish-batch.js';
import type { RedisKeys } from './keys.js';
import type { RedisPresence } from './presence.js';
import type { BroadcastInput, Broker, DirectInput, DisconnectTarget, EngineHandlers, EngineMessage, NodeId, PublishInput, PublishOutcome } from '../types.js';

/** What the broker needs from the engine. */
export interface RedisBrokerDeps {
  ctx: RedisContext;
  /** The subscriber connection (pub/sub only). */
  sub: RedisClient;
  keys: RedisKeys;
  node: NodeId;
  sharded: boolean;
  history: RedisHistory;
  presence: RedisPresence;
  publishScript: LuaScript;
  idempotencyTtl: number;
  /** Most ms to wait for the command connection before reading a gap from history. */
  commandTimeout: number;
  handlers: () => EngineHandlers | undefined;
  logger: Logger;
}

/** This node's subscription to one channel. */
interface Subscription {
  channel: ChannelName;
  pub: string;
  /** Settles when Redis confirmed the subscription. */
  ready: Promise<void>;
  /** Position of the last message handed to the node: drops duplicates, detects gaps. */
  epoch: string | undefined;
  seq: number;
  /** Messages held back while the gap before them is filled from history; undefined when live. */
  held: EngineMessage[] | undefined;
}

/** A disconnect command on the control channel. */
interface ControlMessage extends DisconnectTarget {
  from: NodeId;
}

const COLON = 0x3a;
/** Connection ids an exclusion may name (the publish script checks the same). */
const EXCLUDE_RE = /^[A-Za-z0-9_.-]{1,100}$/;
/** How long to wait before resubscribing again after a failed attempt while the connection is up. */
const RESYNC_RETRY_MS = 500;
/** Failed resubscriptions in a row after which the cluster's shard subscribers are started anew. */
const UNSTICK_AFTER = 6;
/** Tries to read a gap from history before delivering what came after it anyway. */
const CATCH_UP_ATTEMPTS = 3;

const BANG = 0x21;

/**
 * Splits a channel message (see lua/publish.lua): `<seq>:<epoch>:<frame>`, or `0::<frame>` for an unsequenced
 * broadcast, either one optionally led by `!<exclude>:` (a connection that must not receive it). Undefined when
 * it is not one.
 */
export function parseChannelMessage(channel: ChannelName, raw: Buffer): EngineMessage | undefined {
  let start = 0;
  let exclude: string | undefined;
  if (raw[0] === BANG) {
    const end = raw.indexOf(COLON);
    if (end < 2) return undefined;
    exclude = raw.toString('latin1', 1, end);
    start = end + 1;
  }
  const a = raw.indexOf(COLON, start);
  const b = a < 0 ? -1 : raw.indexOf(COLON, a + 1);
  if (b < 0) return undefined;
  const seq = Number(raw.toString('latin1', start, a));
  if (!Number.isSafeInteger(seq) || seq < 0 || a === start) return undefined;
  const epoch = raw.toString('latin1', a + 1, b);
  if ((seq === 0) !== (epoch === '')) return undefined;
  // A copy: the reply buffer is a slice of a socket chunk that a queued frame would keep alive whole.
  const msg: EngineMessage = { channel, seq, epoch, frame: Buffer.from(raw.subarray(b + 1)) };
  if (exclude !== undefined) msg.exclude = exclude;
  return msg;
}

/** The pub/sub form of an unsequenced broadcast (see parseChannelMessage). */
function broadcastWire(frame: Buffer, exclude: string | undefined): Buffer {
  return Buffer.concat([Buffer.from(exclude === undefined ? '0::' : `!${exclude}:0::`), frame]);
}

/** The target of a control message (its `from` is for debugging only); undefined when it is not one. */
function parseControl(raw: Buffer): DisconnectTarget | undefined {
  try {
    const v = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    if (typeof v['code'] !== 'number' || typeof v['reason'] !== 'string') return undefined;
    const out: DisconnectTarget = { code: v['code'], reason: v['reason'] };
    if (typeof v['user'] === 'string') out.user = v['user'];
    if (typeof v['client'] === 'string') out.client = v['client'];
    return out.user === undefined && out.client === undefined ? undefined : out;
  } catch {
    return undefined;
  }
}

/**
 * Fan-out over Redis pub/sub. A publish runs `lua/publish.lua` (seq, history, PUBLISH in one atomic step);
 * every node subscribed to the channel, this one included, gets the message back on its subscriber
 * connection and hands it to the hub: one delivery path however many nodes there are.
 *
 * Pub/sub is fire-and-forget, so the broker keeps each channel's last seq: a message that skips ahead
 * (the subscriber connection dropped and came back) is held while the missing ones are read from
 * history, then everything goes out in order; duplicates are dropped. Nodes listen on their own channel
 * for direct messages and on a shared control channel for disconnects.
 */
export class RedisBroker implements Broker {
  private readonly subs = new Map<ChannelName, Subscription>();
  private readonly byPub = new Map<string, Subscription>();
  /** Pub/sub channels Redis may still deliver although nobody wants them (an unsubscribe failed). */
  private readonly stale = new Set<string>();
  private readonly nodeChannel: string;
  /** True once the subscriber connection is subscribed to everything it should be. */
  private synced = false;
  /** Whether a retry of resync() is scheduled, and how many attempts failed in a row. */
  private resyncTimer = false;
  private resyncFailures = 0;
  private readonly syncListeners = new Set<() => void>();
  /** Whether an UNSUBSCRIBE of the stale channels is scheduled or under way. */
  private dropping = false;
  /** The turn's publishes as one script call (single Redis; on a Redis Cluster each goes out on its own). */
  private readonly batch: PublishBatch | undefined;

  constructor(private readonly d: RedisBrokerDeps) {
    this.nodeChannel = d.keys.node(d.node);
    this.batch = isCluster(d.ctx.redis) ? undefined : new PublishBatch(d.ctx, d.publishScript);
    const onMessage = (channel: Buffer, message: Buffer): void => this.receive(channel.toString('latin1'), message);
    d.sub.on(d.sharded ? 'smessageBuffer' : 'messageBuffer', onMessage);
    onSubscriberBack(d.sub, () => void this.resync());
    d.sub.on('close', () => {
      this.synced = false;
    });
    if (d.sub.status === 'ready') void this.resync();
  }

  /** Whether this node receives everything it subscribed to (for `check()`). */
  get ready(): boolean {
    return this.synced && this.d.sub.status === 'ready';
  }

  /** Calls `fn` after every successful (re)subscription; returns a function that stops it. */
  onSync(fn: () => void): () => void {
    this.syncListeners.add(fn);
    return () => this.syncListeners.delete(fn);
  }

  /** Channels this node is subscribed to. */
  channels(): IterableIterator<ChannelName> {
    return this.subs.keys();
  }

  private alive(): EngineHandlers {
    const h = this.d.handlers();
    if (!h || this.d.ctx.isClosed) throw new EngineUnavailableError('the Redis engine is not running');
    return h;
  }

  async publish(input: PublishInput): Promise<PublishOutcome> {
    this.alive();
    const { keys, history, publishScript, sharded, idempotencyTtl, presence } = this.d;
    const k = [keys.meta(input.channel), keys.stream(input.channel)];
    if (input.idempotencyKey !== undefined) k.push(keys.idempotency(input.channel, input.idempotencyKey));
    const { size, ttl, metaTtl, maxBytes } = history.limits;
    const args: Array<string | number> = [
      input.channel,
      input.type,
      input.payloadJson,
      newEpoch(),
      size,
      ttl,
      metaTtl,
      idempotencyTtl,
      sharded ? '1' : '0',
      maxBytes,
      input.exclude ?? '',
    ];
    // counts: the script counts the channel's subscribers (and a user channel's user) after the publish.
    const spec = input.counts ? presence.countSpec(input.channel) : undefined;
    if (spec) {
      k.push(...spec.keys);
      args.push(spec.from, spec.keys.length);
    }
    // On a Redis Cluster the user's connections are on another slot: counted on their own, in the same turn.
    const user = spec && spec.keys.length === 1 ? presence.userOf(input.channel) : undefined;
    const online =
      user === undefined
        ? undefined
        : presence.online([user]).then(
            (m) => m.get(user) ?? 0,
            () => undefined,
          );
    const r = await (this.batch ? this.batch.run(k, args) : this.d.ctx.call('publish', (redis) => publishScript.run(redis, k, args)));
    if (!Array.isArray(r) || typeof r[0] !== 'number' || typeof r[1] !== 'string')
      throw toHeraldError(new Error('unexpected reply from the publish script'), 'publish');
    const reply = r as [number, string, ...unknown[]];
    const out: PublishOutcome = { seq: reply[0], epoch: reply[1], duplicate: reply[2] === 1 };
    if (spec && typeof reply[3] === 'number') {
      out.subscribers = reply[3];
      if (typeof reply[4] === 'number') out.online = reply[4];
      else if (user !== undefined) {
        const n = await online;
        if (n !== undefined) out.online = n;
      }
    }
    return out;
  }

  async broadcast(input: BroadcastInput): Promise<void> {
    this.alive();
    const { keys, ctx } = this.d;
    if (!isValidCoreChannel(input.channel)) throw new HeraldError('invalid_channel', 'invalid channel name', { field: 'channel' });
    if (input.exclude !== undefined && !EXCLUDE_RE.test(input.exclude))
      throw new HeraldError('invalid_field', 'exclude must be a connection id', { field: 'exclude' });
    const frame = broadcastMessage(input).frame;
    // The command connection also runs every publish script: a broadcast keeps its place among them.
    this.batch?.flush();
    await ctx.call('broadcast', (r) => this.send(r, keys.pub(input.channel), broadcastWire(frame, input.exclude)));
  }

  async publishDirect(input: DirectInput): Promise<boolean> {
    const h = this.alive();
    const { ctx, keys } = this.d;
    const idem = input.idempotencyKey === undefined ? undefined : keys.clientIdempotency(input.client, input.idempotencyKey);
    // Only deliveries are remembered (as in the memory engine): a retry after "no such client" tries again.
    if (idem !== undefined && (await ctx.call('direct', (r) => r.set(idem, '1', 'PX', this.d.idempotencyTtl, 'NX'))) === null) return true;
    const frame = encodeMessage(input.type, clientChannel(input.client), input.payloadJson, 0);
    try {
      // A connection of this node gets it through this node's channel too, not handed over at once: another node may
      // have sent it a message a moment ago (answered, still on its way), and a later one must not overtake it. Redis
      // runs the PUBLISHes in the order they came, and the node reads them in that order.
      const local = this.d.presence.has(input.client);
      let ok = false;
      let node: NodeId | null = this.d.node;
      if (!local) {
        // Not registered here: a handler that knows the client (an engine used on its own), or another node.
        ok = h.direct(input.client, directMessage(input.client, frame));
        if (!ok) node = await this.d.presence.nodeOf(input.client);
      }
      if (!ok && node !== null && (local || node !== this.d.node)) {
        const head = Buffer.from(`${Buffer.byteLength(input.client)}:${input.client}`);
        const receivers = await ctx.call('direct', (r) => this.send(r, keys.node(node), Buffer.concat([head, frame])));
        ok = receivers > 0;
      }
      if (!ok && idem !== undefined) await ctx.call('direct', (r) => r.del(idem));
      return ok;
    } catch (err) {
      if (idem !== undefined) await ctx.call('direct', (r) => r.del(idem)).catch(() => undefined);
      throw err;
    }
  }

  async disconnect(target: DisconnectTarget): Promise<number> {
    this.alive();
    const { presence, ctx, keys } = this.d;
    let count = 0;
    if (target.client !== undefined) count = presence.has(target.client) || (await presence.nodeOf(target.client)) !== null ? 1 : 0;
    else if (target.user !== undefined) count = await presence.userConnections(target.user);
    this.batch?.flush();
    const msg: ControlMessage = { from: this.d.node, code: target.code, reason: target.reason };
    if (target.user !== undefined) msg.user = target.user;
    if (target.client !== undefined) msg.client = target.client;
    // Every node applies it when it arrives, this one too: one path, wherever the connections are.
    await ctx.call('disconnect', (r) => this.send(r, keys.control, JSON.stringify(msg)));
    return count;
  }

  subscribe(channel: ChannelName): Promise<void> {
    this.alive();
    const existing = this.subs.get(channel);
    if (existing) return existing.ready;
    const pub = this.d.keys.pub(channel);
    const s: Subscription = { channel, pub, ready: Promise.resolve(), epoch: undefined, seq: 0, held: undefined };
    this.subs.set(channel, s);
    this.byPub.set(pub, s);
    this.stale.delete(pub);
    s.ready = this.command('subscribe', [pub]).catch((err: unknown) => {
      if (this.subs.get(channel) === s) {
        this.subs.delete(channel);
        this.byPub.delete(pub);
      }
      // The command may have reached Redis before the connection failed, or reach it once a stalled Redis moves
      // again (it timed out, the connection stayed): then this node would get the channel's messages for good.
      this.stale.add(pub);
      this.dropStaleSoon();
      throw toHeraldError(err, 'subscribe');
    });
    // Ready once Redis confirmed it; the position is read meanwhile, in the same turn as the hub's own read of
    // it, so that both share one script call (RedisHistory.position).
    s.ready = s.ready.then(() => void this.baseline(s));
    return s.ready;
  }

  /**
   * Learns the channel's position once the subscription is active, so that a gap is noticed even before
   * the first message (the subscriber connection may drop right away). A message at or below it may be
   * dropped as already seen; that is safe: the subscription is new, and the subscribers the hub adds
   * read their own position at the same time (the same read) or after this one.
   */
  private async baseline(s: Subscription): Promise<void> {
    try {
      const p = await this.d.history.position(s.channel);
      if (s.epoch === undefined) {
        s.epoch = p.epoch;
        s.seq = p.seq;
      }
    } catch (err) {
      // Only gap detection before the first message is lost; the subscription itself is fine.
      this.d.logger.debug({ err, channel: s.channel }, 'redis engine: reading the position of a new subscription failed');
    }
  }

  async unsubscribe(channel: ChannelName): Promise<void> {
    const s = this.subs.get(channel);
    if (!s) return;
    this.subs.delete(channel);
    this.byPub.delete(s.pub);
    try {
      await this.command('unsubscribe', [s.pub]);
    } catch (err) {
      this.stale.add(s.pub);
      this.dropStaleSoon();
      throw toHeraldError(err, 'unsubscribe');
    }
  }

  /**
   * Unsubscribes, in a moment, from the stale channels nobody wants (a SUBSCRIBE or UNSUBSCRIBE failed while the
   * subscriber connection stayed up: a stalled Redis). Again until it succeeds; a connection that drops meanwhile
   * leaves them to resync(). One at a time: a stalled Redis does not get a queue of them.
   */
  private dropStaleSoon(): void {
    if (this.dropping || this.d.ctx.isClosed) return;
    this.dropping = true;
    this.d.ctx.clock.setTimeout(() => void this.dropStale(), RESYNC_RETRY_MS);
  }

  private async dropStale(): Promise<void> {
    const unwanted = [...this.stale].filter((p) => !this.byPub.has(p));
    if (unwanted.length === 0 || this.d.ctx.isClosed || this.d.sub.status !== 'ready') {
      this.dropping = false;
      return;
    }
    try {
      await this.command('unsubscribe', unwanted);
      // Subscribed again meanwhile: its SUBSCRIBE went out after this UNSUBSCRIBE, and it is wanted.
      for (const p of unwanted) if (!this.byPub.has(p)) this.stale.delete(p);
      this.dropping = false;
    } catch (err) {
      this.d.logger.debug({ err, channels: unwanted.length }, 'redis engine: unsubscribing stale channels failed; retrying');
      this.dropping = false;
      this.dropStaleSoon();
    }
  }

  /** SUBSCRIBE or UNSUBSCRIBE (their sharded forms when configured) on the subscriber connection. */
  private async command(kind: 'subscribe' | 'unsubscribe', pubs: string[]): Promise<void> {
    if (pubs.length === 0) return;
    const { sub, sharded } = this.d;
    if (!sharded) {
      await TurnSubscriber.of(sub, this.d.ctx.clock).run(kind, pubs);
      return;
    }
    // In a cluster every shard channel may live on another slot: one command each.
    await Promise.all(pubs.map((p) => (kind === 'subscribe' ? sub.ssubscribe(p) : sub.sunsubscribe(p))));
  }

  private async send(redis: RedisClient, channel: string, message: string | Buffer): Promise<number> {
    const receivers = this.d.sharded ? await redis.spublish(channel, message) : await redis.publish(channel, message);
    return Number(receivers);
  }

  /**
   * After every (re)connection of the subscriber: subscribe to this node's channels and every wanted
   * channel, drop what nobody wants any more, then read from history whatever was published while the
   * connection was down. The history read starts only once Redis confirmed the subscriptions, so no
   * message falls between the two.
   */
  private async resync(): Promise<void> {
    const wanted = [this.nodeChannel, this.d.keys.control, ...this.byPub.keys()];
    try {
      await this.command('subscribe', wanted);
      // What nobody wants is read now, not before the SUBSCRIBE: a stale channel subscribed again meanwhile has its
      // SUBSCRIBE queued already, and an UNSUBSCRIBE of it sent after that would leave its subscribers deaf.
      const unwanted = [...this.stale].filter((p) => !this.byPub.has(p));
      await this.command('unsubscribe', unwanted);
      for (const p of unwanted) if (!this.byPub.has(p)) this.stale.delete(p);
      this.synced = true;
      this.resyncFailures = 0;
      for (const fn of [...this.syncListeners]) fn();
    } catch (err) {
      // The connection went away again (its next 'ready' starts over), or, on a Redis Cluster, a shard's
      // subscriber is not back yet while the cluster is: try again shortly.
      this.d.logger.warn({ err }, 'redis engine: resubscribing failed');
      this.retryResync();
      return;
    }
    for (const s of this.subs.values()) {
      if (s.epoch !== undefined && s.held === undefined) {
        s.held = [];
        void this.catchUp(s);
      }
    }
  }

  /** Runs resync() again in a moment while the subscriber connection is up and not synced (one timer at a time). */
  private retryResync(): void {
    if (this.resyncTimer || this.d.ctx.isClosed) return;
    this.resyncTimer = true;
    this.resyncFailures++;
    this.d.ctx.clock.setTimeout(() => {
      this.resyncTimer = false;
      if (this.synced || this.d.sub.status !== 'ready' || this.d.ctx.isClosed) return;
      // Still failing after a few seconds on a Redis Cluster: the shard subscribers may be stuck (see there).
      if (isCluster(this.d.sub) && this.resyncFailures % UNSTICK_AFTER === 0) unstickShardedSubscribers(this.d.sub);
      void this.resync();
    }, RESYNC_RETRY_MS);
  }

  private receive(channel: string, raw: Buffer): void {
    try {
      if (channel === this.nodeChannel) this.receiveDirect(raw);
      else if (channel === this.d.keys.control) this.receiveControl(raw);
      else {
        const s = this.byPub.get(channel);
        const msg = s && parseChannelMessage(s.channel, raw);
        if (s && msg) this.accept(s, msg, false);
      }
    } catch (err) {
      // Never let a handler's exception reach the Redis client's parser.
      this.d.logger.error({ err, channel }, 'redis engine: handling a message failed');
    }
  }

  private receiveDirect(raw: Buffer): void {
    const colon = raw.indexOf(COLON);
    const length = Number(raw.toString('latin1', 0, colon));
    if (colon < 0 || !Number.isSafeInteger(length)) return;
    const client = raw.toString('utf8', colon + 1, colon + 1 + length);
    this.d.handlers()?.direct(client, directMessage(client, Buffer.from(raw.subarray(colon + 1 + length))));
  }

  private receiveControl(raw: Buffer): void {
    const target = parseControl(raw);
    if (target) this.d.handlers()?.disconnect(target);
  }

  /** Hands `m` to the node in order: drops duplicates, holds it back behind a gap being filled. */
  private accept(s: Subscription, m: EngineMessage, force: boolean): void {
    if (m.seq === 0) {
      // Unsequenced: nothing to order it against or to fill from history; it goes out as it comes.
      if (this.subs.get(s.channel) === s) this.handOver(m);
      return;
    }
    if (s.held) {
      s.held.push(m);
      return;
    }
    if (s.epoch === m.epoch) {
      if (m.seq <= s.seq) return;
      if (m.seq > s.seq + 1 && !force) {
        s.held = [m];
        void this.catchUp(s);
        return;
      }
    }
    this.deliver(s, m);
  }

  private deliver(s: Subscription, m: EngineMessage): void {
    s.epoch = m.epoch;
    s.seq = m.seq;
    if (this.subs.get(s.channel) !== s) return;
    this.handOver(m);
  }

  private handOver(m: EngineMessage): void {
    try {
      this.d.handlers()?.message(m);
    } catch (err) {
      this.d.logger.error({ err, channel: m.channel }, 'redis engine: the message handler threw');
    }
  }

  /**
   * Delivers what history has between the last delivered message and the held ones, then the held ones.
   * After an outage the subscriber may be back before the command connection: wait for it (a few times,
   * each bounded by the command timeout) rather than give up on messages that are in history.
   */
  private async catchUp(s: Subscription): Promise<void> {
    const { ctx, history, logger, commandTimeout } = this.d;
    try {
      for (let attempt = 1; s.epoch !== undefined && this.subs.get(s.channel) === s; attempt++) {
        try {
          await ctx.whenReady(commandTimeout);
          const page = await history.read(s.channel, { since: s.seq, epoch: s.epoch, limit: history.limits.size });
          if (!page.complete) {
            logger.warn({ channel: s.channel, since: s.seq }, 'redis engine: messages missed while disconnected are no longer in history');
          } else {
            for (const m of page.messages) if (m.seq === s.seq + 1) this.deliver(s, m);
          }
          break;
        } catch (err) {
          if (attempt >= CATCH_UP_ATTEMPTS || ctx.isClosed) {
            logger.warn({ err, channel: s.channel }, 'redis engine: filling a gap from history failed');
            break;
          }
          await sleep(ctx.clock, 100 * attempt);
        }
      }
    } finally {
      const held = s.held ?? [];
      s.held = undefined;
      for (const m of held) this.accept(s, m, true);
    }
  }
}
