import { createMemoryEngine } from '../engine/memory/engine.js';
import { createRedisEngine } from '../engine/redis/engine.js';
import { startRedisIngest, type RedisIngest } from '../engine/redis/ingest.js';
import type { Engine } from '../engine/types.js';
import { countDeadLetter, createIngestHandler } from '../ingest/handler.js';
import type { Logger } from '../util/logger.js';
import { engineLifecycle, memoryEngineOptions } from './engine-options.js';
import { createGateway, type Gateway } from './gateway.js';
import { resolveOptions, type GatewayOptions } from './options.js';

/** Which engine a node runs and how (the process-level settings the CLI reads). */
export interface EngineSettings {
  /** Redis URL; set, it selects the Redis engine. */
  redisUrl: string | undefined;
  redisPrefix: string;
  redisSharded: boolean;
  presenceTtl: number;
  nodeId: string | undefined;
  /** Publish what backends write to the Redis ingest. */
  ingest: boolean;
}

/** One running node: a gateway, its engine and, with Redis, the ingest. */
export interface HeraldNode {
  readonly gateway: Gateway;
  readonly ingest: RedisIngest | undefined;
  /** Stops the ingest first (nothing new is taken), then the gateway (graceful). */
  close(): Promise<void>;
}

/** Builds the engine the settings select: Redis when a URL is given, memory otherwise. */
export function createEngine(options: GatewayOptions, node: EngineSettings, logger: Logger): Engine {
  const o = resolveOptions(options);
  if (node.redisUrl === undefined) return createMemoryEngine(memoryEngineOptions(o));
  const lifecycle = engineLifecycle(o);
  return createRedisEngine({
    ...(lifecycle === undefined ? {} : { lifecycle }),
    url: node.redisUrl,
    prefix: node.redisPrefix,
    sharded: node.redisSharded,
    presenceTtl: node.presenceTtl,
    historySize: o.historySize,
    historyTtl: o.historyTtl,
    historyMaxBytes: o.historyMaxBytes,
    idempotencyTtl: o.idempotencyTtl,
    logger,
    ...(node.nodeId === undefined ? {} : { nodeId: node.nodeId }),
  });
}

/** Starts a node from the configuration (what `herald serve` runs in each process). */
export async function startNode(options: GatewayOptions, node: EngineSettings, logger: Logger): Promise<HeraldNode> {
  const engine = createEngine(options, node, logger);
  const gateway = await createGateway({ ...options, engine, logger });
  let ingest: RedisIngest | undefined;
  if (node.redisUrl !== undefined && node.ingest && 'nodeId' in engine) {
    const { publisher, stats } = gateway;
    ingest = await startRedisIngest({
      url: node.redisUrl,
      prefix: node.redisPrefix,
      nodeId: String(engine.nodeId),
      handle: createIngestHandler({ publisher, stats, maxItems: gateway.options.maxPublishChannels, namespaces: gateway.namespaces }),
      onDeadLetter: (reason) => countDeadLetter(stats, reason),
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
