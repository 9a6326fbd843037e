import { channelKind, USER_CHANNEL_PREFIX, type ChannelName } from '@herald/protocol';
import type { Context } from './context.js';
import { HeraldError } from './errors.js';
import type { PublishItem } from './http/validate.js';

/** What happened to one published item: the answer the HTTP API returns for it. */
export type PublishItemResult = Record<string, unknown>;

/** Where a publish came from, for the log line of a message that could not be delivered. */
export interface PublishOrigin {
  requestId?: string;
}

/**
 * Publishes validated items through the engine and builds their answers: the seq per channel, whether
 * the id was a duplicate, how many subscribers there were, `online` for user channels, and
 * `no_such_client` (thrown) for a connection that does not exist. Shared by the HTTP API and the Redis
 * ingest, so both paths behave the same.
 */
export class Publisher {
  constructor(private readonly ctx: Context) {}

  async publish(item: PublishItem, origin?: PublishOrigin): Promise<PublishItemResult> {
    const { engine, stats, hub } = this.ctx;
    const key = item.id === undefined ? {} : { idempotencyKey: item.id };
    if (item.target.kind === 'client') {
      const client = item.target.client;
      const delivered = await engine.broker.publishDirect({ client, type: item.type, payloadJson: item.payloadJson, ...key });
      if (!delivered) {
        stats.drop('no_such_client', 1, { client, requestId: origin?.requestId });
        throw new HeraldError('no_such_client', `no connection with client id ${client}`, { field: 'client' });
      }
      stats.published += 1;
      return item.id === undefined ? { client, delivered: true } : { id: item.id, client, delivered: true };
    }
    // Keyed by caller-chosen names ("__proto__" is a valid channel): no prototype to collide with.
    const results = Object.create(null) as Record<ChannelName, object>;
    for (const channel of item.target.channels) {
      if (hub.localSubscribers(channel) > 0) stats.latency.begin(channel);
      const out = await engine.broker.publish({ channel, type: item.type, payloadJson: item.payloadJson, ...key }).catch((err: unknown) => {
        stats.latency.cancel(channel);
        throw err;
      });
      if (!out.duplicate) stats.published += 1;
      else stats.latency.cancel(channel);
      const subscribers = await engine.presence.subscribers(channel);
      const r: Record<string, unknown> = { seq: out.seq, epoch: out.epoch, duplicate: out.duplicate, subscribers };
      // A push to a user nobody is connected as is not an error, but the caller must be able to see it.
      if (channelKind(channel) === 'user') {
        const user = channel.slice(USER_CHANNEL_PREFIX.length);
        const connections = (await engine.presence.online([user])).get(user) ?? 0;
        r['online'] = connections > 0;
        if (connections === 0) stats.drop('user_offline', 1, { user, channel, requestId: origin?.requestId });
      }
      results[channel] = r;
    }
    return item.id === undefined ? { results } : { id: item.id, results };
  }

  /**
   * Publishes several items in order. A missing client is reported in its own item (the others are
   * published); any other failure (engine unavailable) stops and throws, and the items before it stay
   * published: retry with the same ids to publish the rest exactly once.
   */
  async publishAll(items: readonly PublishItem[], origin?: PublishOrigin): Promise<PublishItemResult[]> {
    const out: PublishItemResult[] = [];
    for (const item of items) {
      try {
        out.push(await this.publish(item, origin));
      } catch (err) {
        if (!(err instanceof HeraldError) || err.code !== 'no_such_client') throw err;
        out.push({
          ...(item.id === undefined ? {} : { id: item.id }),
          client: item.target.kind === 'client' ? item.target.client : null,
          delivered: false,
          error: { code: err.code, message: err.message },
        });
      }
    }
    return out;
  }
}
