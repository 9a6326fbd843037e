import type { Subscriptions } from '../../delivery/hub.js';
import type { Stats } from '../../delivery/stats.js';
import type { Engine } from '../../engine/types.js';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import type { PusherApps } from './apps.js';
import type { PusherCodec } from './codec.js';
import type { PusherWebhooks } from './webhooks.js';

/** What the Pusher protocol's connections share. */
export interface PusherDeps {
  apps: PusherApps;
  subscriptions: Subscriptions;
  engine: Pick<Engine, 'broker' | 'members' | 'history'>;
  /** Queues the apps' webhooks. */
  webhooks: PusherWebhooks;
  stats: Stats;
  clock: Clock;
  logger: Logger;
  codec: PusherCodec;
  /** Most subscriptions one connection may hold. */
  maxSubscriptions: number;
  /** Malformed frames tolerated before close 4300. */
  maxInvalidFrames: number;
  /** Connections per app on this node (the quota of `maxConnections`). */
  counts: Map<string, number>;
  /** Work that must finish before the engine closes (members leaving, their broadcasts). */
  track(work: Promise<unknown>): void;
}
