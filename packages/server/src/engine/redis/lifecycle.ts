import type { ChannelName, ClientId, UserId } from '@herald/protocol';
import type { Logger } from '../../util/logger.js';
import { tracksChannel, type LifecycleOptions } from '../outbox.js';
import { LuaScript, type RedisContext } from './client.js';
import type { RedisKeys } from './keys.js';

/** Triples per script call of a refresh: bounds one call, not the number of calls. */
const BATCH = 500;

/**
 * Cluster-wide first and last connection of each user and subscriber of each channel, for the webhooks
 * (lua/lifecycle.lua): presence tells it about this node's connections and subscriptions, it keeps them in a
 * sorted set scored by expiry (refreshed with presence), and the script queues `user.online`,
 * `channel.occupied` and `channel.vacated` on the outbox stream and holds `user.offline` back in the outbox (a
 * return cancels it) in the same atomic step. `sweep` (every node, every second) removes what a dead node left.
 */
export class RedisLifecycle {
  private readonly script = LuaScript.load('lifecycle');

  constructor(
    private readonly ctx: RedisContext,
    private readonly keys: RedisKeys,
    private readonly o: LifecycleOptions,
    private readonly ttl: number,
    private readonly now: () => number,
    private readonly logger: Logger,
  ) {}

  /** The triples of a connection: its user, if tracked. */
  userTriples(client: ClientId, user: UserId | null): string[] {
    return this.o.users && user !== null ? ['u', user, client] : [];
  }

  /** The triples of a subscription, if tracked. */
  channelTriples(channel: ChannelName, client: ClientId): string[] {
    return tracksChannel(this.o, channel) ? ['c', channel, client] : [];
  }

  async run(mode: 'add' | 'remove' | 'refresh' | 'sweep', triples: readonly string[] = []): Promise<void> {
    if (mode !== 'sweep' && triples.length === 0) return;
    const h = this.keys.hooks;
    for (let i = 0; i < Math.max(1, triples.length); i += BATCH * 3) {
      const args = [mode, this.now(), this.ttl, this.o.offlineDelay, ...triples.slice(i, i + BATCH * 3)];
      await this.ctx.script(`lifecycle ${mode}`, this.script, [h.conns, h.counts, h.held, h.heldEvents, h.events, h.seq], args);
    }
  }

  /** Runs a mode, logging (not throwing) a failure: presence goes on without it. */
  fire(mode: 'add' | 'remove' | 'refresh' | 'sweep', triples: readonly string[] = []): Promise<void> {
    return this.run(mode, triples).catch((err: unknown) => this.logger.warn({ err, mode }, 'redis engine: lifecycle tracking failed'));
  }
}
