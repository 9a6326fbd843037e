import type { NodeSettings } from './config.js';
import { createMemoryEngine } from './engine/memory.js';
import { createRedisEngine } from './engine/redis.js';
import type { Engine } from './engine/types.js';
import { createGateway, type Gateway } from './gateway.js';
import { startRedisIngest, type RedisIngest } from './ingest/redis-ingest.js';
import type { Logger } from './logger.js';
import { resolveOptions, type GatewayOptions } from './options.js';

/** One running node: a gateway, its engine and, with Redis, the ingest. */
export interface HeraldNode {
  readonly gateway: Gateway;
  readonly ingest: RedisIngest | undefined;
  /** Stops the ingest first (nothing new is taken), then the gateway (graceful). */
  close(): Promise<void>;
}

/** Builds the engine the settings select: Redis when a URL is given, memory otherwise. */
export function createEngine(options: GatewayOptions, node: NodeSettings, logger: Logger): Engine {
  const o = resolveOptions(options);
  if (node.redisUrl === undefined) {
    return createMemoryEngine({ historySize: o.historySize, historyTtl: o.historyTtl, idempotencyTtl: o.idempotencyTtl });
  }
  return createRedisEngine({
    url: node.redisUrl,
    prefix: node.redisPrefix,
    sharded: node.redisSharded,
    presenceTtl: node.presenceTtl,
    historySize: o.historySize,
    historyTtl: o.historyTtl,
    idempotencyTtl: o.idempotencyTtl,
    logger,
    ...(node.nodeId === undefined ? {} : { nodeId: node.nodeId }),
  });
}

/** Starts a node from the configuration (what `herald serve` runs in each process). */
export async function startNode(options: GatewayOptions, node: NodeSettings, logger: Logger): Promise<HeraldNode> {
  const engine = createEngine(options, node, logger);
  const gateway = await createGateway({ ...options, engine, logger });
  let ingest: RedisIngest | undefined;
  if (node.redisUrl !== undefined && node.ingest && 'nodeId' in engine) {
    ingest = await startRedisIngest({
      url: node.redisUrl,
      prefix: node.redisPrefix,
      nodeId: String(engine.nodeId),
      publisher: gateway.publisher,
      maxItems: gateway.options.maxPublishChannels,
      stats: gateway.stats,
      logger,
    });
  }
  return {
    gateway,
    ingest,
    async close() {
      await ingest?.close();
      await gateway.close();
    },
  };
}
