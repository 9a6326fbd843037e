/** Herald as a user runs it: every feature on (envelope, seq, history, slow-consumer limit, rate limits). */
import {
  createGateway,
  createLogger,
  createRedisEngine,
  tuneGarbageCollection,
  type Engine,
  type Gateway,
  type GatewayOptions,
} from '../../../packages/server/src/index.js';
import { API_KEY, JWT_SECRET } from '../kinds.js';
import { PUSHER_APP } from '../pusher-kinds.js';
import type { Running } from './types.js';

export interface HeraldBenchOptions {
  engine: 'memory' | 'redis';
  transport: 'ws' | 'uws';
  /** Redis key prefix (each run its own; deleted afterwards by the harness). */
  prefix?: string;
  redisUrl?: string;
  /** Serve the bench's Pusher app too (the Pusher kinds), with no connection quota (Soketi has none either). */
  pusher?: boolean;
}

export async function startHerald(port: number, o: HeraldBenchOptions): Promise<Running> {
  // As the `herald` command does (HERALD_BENCH_NODE_ARGS=--allocation-site-pretenuring measures without it).
  tuneGarbageCollection();
  const logger = createLogger('warn');
  let engine: Engine | undefined;
  if (o.engine === 'redis') engine = createRedisEngine({ url: o.redisUrl ?? 'redis://127.0.0.1:6379', prefix: o.prefix ?? 'herald-bench', logger });
  const opts: GatewayOptions = {
    port,
    host: '127.0.0.1',
    apiKeys: [API_KEY],
    jwtSecrets: [JWT_SECRET],
    allowAnonymous: true,
    logger,
    transport: o.transport,
    ...(engine ? { engine } : {}),
    ...(o.pusher ? { pusherApps: [{ ...PUSHER_APP, maxConnections: 1_000_000 }] } : {}),
    // HERALD_BENCH_OPTS: more gateway options as JSON (e.g. '{"historySize":0}'), to take a cost apart within a run.
    ...(process.env.HERALD_BENCH_OPTS ? (JSON.parse(process.env.HERALD_BENCH_OPTS) as object) : {}),
  };
  const gateway: Gateway = await createGateway(opts);
  return { stop: () => gateway.close() };
}
