import { channelKind, USER_CHANNEL_PREFIX, type ChannelName } from '@herald/protocol';
import type { Engine, PublishInput, PublishOutcome } from '../engine/types.js';
import { HeraldError } from '../util/errors.js';
import type { PublishItem } from './publish-request.js';
import type { Stats } from './stats.js';

/** The inbox settings a publish with `"inbox": true` gets. */
export interface InboxSettings {
  /** Default TTL of a message, ms. */
  ttl: number;
  /** Most messages kept per user. */
  max: number;
  /** Idempotency window of publish ids, ms. */
  idempotencyTtl: number;
  now: () => number;
}

/** What happened to one published item: the answer the HTTP API returns for it. */
export type PublishItemResult = Record<string, unknown>;

/** Where a publish came from, for the log line of a message that could not be delivered. */
export interface PublishOrigin {
  requestId?: string;
}

type ChannelItem = Omit<PublishItem, 'target'> & { target: Extract<PublishItem['target'], { kind: 'channels' }> };
type ClientItem = Omit<PublishItem, 'target'> & { target: Extract<PublishItem['target'], { kind: 'client' }> };

/** What the publisher needs of this node's hub. */
export interface LocalDelivery {
  /** Whether `channel` has subscribers on this node (only then is a publish's latency sampled). */
  hasSubscribers(channel: ChannelName): boolean;
  /** Writes what publishes queued on this node's connections now, when that is cheap (see Hub.flushNow). */
  flushNow(): void;
}

const isClientItem = (item: PublishItem): item is ClientItem => item.target.kind === 'client';

/**
 * Publishes validated items through the engine and builds their answers: the seq per channel, whether
 * the id was a duplicate, how many subscribers there were, `online` for user channels, and
 * `no_such_client` (thrown) for a connection that does not exist. Shared by the HTTP API and the Redis
 * ingest, so both paths behave the same.
 *
 * Channel publishes are pipelined: every channel of an item, and every channel item of a run of them in
 * `publishAll`, is handed to the engine in order in the same tick, and the answers are awaited afterwards.
 * The engine keeps the order (the memory engine delivers at once; the Redis engine sends every script on
 * its one command connection), and the round trips overlap instead of adding up, so the messages of one
 * request reach the hub together and share one write per connection.
 */
export class Publisher {
  constructor(
    private readonly engine: Engine,
    private readonly stats: Stats,
    /** This node's hub, as the publisher sees it. */
    private readonly local: LocalDelivery,
    private readonly inbox: InboxSettings = { ttl: 604_800_000, max: 1000, idempotencyTtl: 300_000, now: Date.now },
  ) {}

  publish(item: PublishItem, origin?: PublishOrigin): Promise<PublishItemResult> {
    return isClientItem(item) ? this.publishDirect(item, origin) : this.startChannels(item as ChannelItem, origin);
  }

  private async publishDirect(item: ClientItem, origin?: PublishOrigin): Promise<PublishItemResult> {
    const { engine, stats } = this;
    const client = item.target.client;
    const key = item.id === undefined ? {} : { idempotencyKey: item.id };
    const delivered = await engine.broker.publishDirect({ client, type: item.type, payloadJson: item.payloadJson, ...key });
    if (!delivered) {
      stats.drop('no_such_client', 1, { client, requestId: origin?.requestId });
      throw new HeraldError('no_such_client', `no connection with client id ${client}`, { field: 'client' });
    }
    stats.published += 1;
    return item.id === undefined ? { client, delivered: true } : { id: item.id, client, delivered: true };
  }

  /**
   * Hands every channel of `item` to the engine now (synchronously, in order) and returns the promise of
   * its answer. The first failure is the item's error; the engine calls of its other channels still settle
   * (and are counted) on their own.
   */
  private startChannels(item: ChannelItem, origin?: PublishOrigin): Promise<PublishItemResult> {
    if (item.inbox) return this.startInbox(item, origin);
    const channels = item.target.channels;
    if (channels.length === 1) return this.publishOne(item, channels[0] as ChannelName, origin);
    const outcomes = channels.map((channel) => this.send(item, channel));
    const answers = channels.map(async (channel, i) => this.answer(channel, await (outcomes[i] as Promise<PublishOutcome>), origin));
    return settleInOrder(answers).then((list) => {
      // Keyed by caller-chosen names ("__proto__" is a valid channel): no prototype to collide with.
      const results = Object.create(null) as Record<ChannelName, object>;
      for (const [i, channel] of channels.entries()) results[channel] = list[i] as object;
      return item.id === undefined ? { results } : { id: item.id, results };
    });
  }

  /**
   * The one-channel item (a push to one user): the same steps as `startChannels`, without the lists, and
   * without an async function per step: with the counts in the engine's outcome (both engines give them), the
   * answer is built in the outcome's own callback. This is the path of every notification.
   */
  private publishOne(item: ChannelItem, channel: ChannelName, origin: PublishOrigin | undefined): Promise<PublishItemResult> {
    const wrap = (answer: Record<string, unknown>): PublishItemResult => {
      // As in startChannels: no prototype ("__proto__" is a valid channel). A dictionary, not `{ [channel]: answer }`:
      // a literal with a computed key makes a hidden class per distinct channel name, twice the time to build and
      // serialize once there are thousands of users (measured with 5000 and 100 000 names; equal with 50).
      const results = Object.create(null) as Record<ChannelName, object>;
      results[channel] = answer;
      return item.id === undefined ? { results } : { id: item.id, results };
    };
    return this.send(item, channel).then((out) => {
      const answer = this.answer(channel, out, origin);
      return answer instanceof Promise ? answer.then(wrap) : wrap(answer);
    });
  }

  /** Hands one channel of an item to the engine now, counting it once its outcome is known. */
  private send(item: ChannelItem, channel: ChannelName): Promise<PublishOutcome> {
    const { engine, stats } = this;
    if (this.local.hasSubscribers(channel)) stats.latency.begin(channel);
    // counts: the engine answers subscribers and the user's connections with the publish when it can.
    const request: PublishInput = { channel, type: item.type, payloadJson: item.payloadJson, counts: true };
    if (item.id !== undefined) request.idempotencyKey = item.id;
    if (item.exclude !== undefined) request.exclude = item.exclude;
    let pending: Promise<PublishOutcome>;
    try {
      pending = engine.broker.publish(request);
    } catch (err) {
      // An engine that throws instead of rejecting (not running): the same as a rejection.
      pending = Promise.reject(err as Error);
    }
    return pending.then(
      (out) => {
        // What this publish queued on this node's connections leaves now, ahead of its answer.
        this.local.flushNow();
        if (!out.duplicate) stats.published += 1;
        else stats.latency.cancel(channel);
        return out;
      },
      (err: unknown) => {
        stats.latency.cancel(channel);
        throw err;
      },
    );
  }

  /**
   * The answer for one published channel: seq, epoch, duplicate, subscribers, and `online` for a user channel.
   * Built at once when the outcome carries the counts; otherwise Presence is asked (a promise).
   */
  private answer(channel: ChannelName, out: PublishOutcome, origin: PublishOrigin | undefined): Record<string, unknown> | Promise<Record<string, unknown>> {
    const user = channel.startsWith(USER_CHANNEL_PREFIX) && channelKind(channel) === 'user' ? channel.slice(USER_CHANNEL_PREFIX.length) : undefined;
    if (out.subscribers !== undefined && (user === undefined || out.online !== undefined))
      return this.answerWith(channel, user, out, out.subscribers, out.online, origin);
    return this.answerAsking(channel, user, out, origin);
  }

  /** `answer` once the counts are known (`online`: the user's connections, for a user channel). */
  private answerWith(
    channel: ChannelName,
    user: string | undefined,
    out: PublishOutcome,
    subscribers: number,
    online: number | undefined,
    origin: PublishOrigin | undefined,
  ): Record<string, unknown> {
    const r: Record<string, unknown> = { seq: out.seq, epoch: out.epoch, duplicate: out.duplicate, subscribers };
    // A push to a user nobody is connected as is not an error, but the caller must be able to see it.
    if (user !== undefined) {
      const connections = online ?? 0;
      r['online'] = connections > 0;
      // Delivered now: to the connections subscribed to the user channel. A connection of the user that is not (yet)
      // has it in history only; every connection's own user channel normally is (one that cannot be is closed).
      r['live'] = subscribers > 0;
      r['stored'] = false;
      if (connections === 0) this.stats.drop('user_offline', 1, { user, channel, requestId: origin?.requestId });
      else if (subscribers === 0) this.stats.drop('user_not_subscribed', 1, { user, channel, requestId: origin?.requestId });
    }
    return r;
  }

  /** `answer` for an engine that did not count with the publish: asks Presence. */
  private async answerAsking(
    channel: ChannelName,
    user: string | undefined,
    out: PublishOutcome,
    origin: PublishOrigin | undefined,
  ): Promise<Record<string, unknown>> {
    const { engine, stats } = this;
    let subscribers: number | null = null;
    try {
      subscribers = out.subscribers ?? (await engine.presence.subscribers(channel));
      const online = user === undefined ? undefined : (out.online ?? (await engine.presence.online([user])).get(user) ?? 0);
      return this.answerWith(channel, user, out, subscribers, online, origin);
    } catch (err) {
      // The message is published; only who was there is unknown. Saying so (null) is true, failing the
      // request would not be: a 503 means nothing was accepted, and a retry would publish it again.
      stats.engineError('presence', { channel, requestId: origin?.requestId, error: err instanceof Error ? err.message : String(err) });
      const r: Record<string, unknown> = { seq: out.seq, epoch: out.epoch, duplicate: out.duplicate, subscribers };
      if (user !== undefined) r['online'] = null;
      return r;
    }
  }

  /**
   * Stores an item in the inbox of each of its users (every channel is a `user:` one: parsePublishItem checked)
   * and hands it to their connections; answers per channel with the message id, `stored`, `live`, `online`,
   * `duplicate` and how many older messages the cap dropped.
   */
  private startInbox(item: ChannelItem, origin?: PublishOrigin): Promise<PublishItemResult> {
    const { engine, stats, inbox } = this;
    const opts = item.inbox as NonNullable<PublishItem['inbox']>;
    const ttl = opts.ttl ?? inbox.ttl;
    const channels = item.target.channels;
    const answers = channels.map(async (channel) => {
      const user = channel.slice(USER_CHANNEL_PREFIX.length);
      const key = item.id === undefined ? {} : { idempotencyKey: item.id };
      const out = await engine.inbox.put(
        { user, type: item.type, payloadJson: item.payloadJson, ttl, receipt: opts.receipt, ...key },
        { max: inbox.max, idempotencyTtl: inbox.idempotencyTtl },
      );
      if (!out.duplicate) stats.published += 1;
      if (out.dropped > 0) stats.drop('inbox_full', out.dropped, { user, channel, requestId: origin?.requestId });
      const r: Record<string, unknown> = { message: out.id, stored: true, live: out.live, duplicate: out.duplicate, dropped: out.dropped, online: null };
      try {
        r['online'] = ((await engine.presence.online([user])).get(user) ?? 0) > 0;
      } catch (err) {
        stats.engineError('presence', { channel, requestId: origin?.requestId, error: err instanceof Error ? err.message : String(err) });
      }
      return r;
    });
    return settleInOrder(answers).then((list) => {
      const results = Object.create(null) as Record<ChannelName, object>;
      for (const [i, channel] of channels.entries()) results[channel] = list[i] as object;
      return item.id === undefined ? { results } : { id: item.id, results };
    });
  }

  /**
   * Publishes several items in order. Consecutive channel items are handed to the engine together (see
   * the class comment); a client item waits for every item before it, so it is still delivered after them.
   * A missing client is reported in its own item (the others are published); any other failure (engine
   * unavailable) throws the first item's error once every item handed to the engine has settled. Items
   * before it are published, and items after it may be too: retry with the same ids to publish the rest
   * exactly once.
   */
  async publishAll(items: readonly PublishItem[], origin?: PublishOrigin): Promise<PublishItemResult[]> {
    const out: PublishItemResult[] = [];
    let i = 0;
    while (i < items.length) {
      const item = items[i] as PublishItem;
      if (isClientItem(item)) {
        out.push(await this.directResult(item, origin));
        i++;
        continue;
      }
      const run: Array<Promise<PublishItemResult>> = [];
      for (; i < items.length && (items[i] as PublishItem).target.kind === 'channels'; i++) run.push(this.startChannels(items[i] as ChannelItem, origin));
      out.push(...(await settleInOrder(run)));
    }
    return out;
  }

  /** A client item's result; a missing client is its own error, not the request's. */
  private async directResult(item: ClientItem, origin?: PublishOrigin): Promise<PublishItemResult> {
    try {
      return await this.publishDirect(item, origin);
    } catch (err) {
      if (!(err instanceof HeraldError) || err.code !== 'no_such_client') throw err;
      return {
        ...(item.id === undefined ? {} : { id: item.id }),
        client: item.target.client,
        delivered: false,
        error: { code: err.code, message: err.message },
      };
    }
  }
}

/**
 * Waits for every promise (none is left to reject unobserved), then returns their values in order or
 * throws the first failure in list order.
 */
async function settleInOrder<T>(promises: ReadonlyArray<Promise<T>>): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const values: T[] = [];
  for (const s of settled) {
    if (s.status === 'rejected') throw s.reason;
    values.push(s.value);
  }
  return values;
}
