import { createMemoryEngine } from '../engine/memory/engine.js';
import { checkRedisEngineOptions, createRedisEngine, EngineOptionError, type RedisEngineOptions } from '../engine/redis/engine.js';
import { parseClusterNodes } from '../engine/redis/client.js';
import { startRedisIngest, type RedisIngest } from '../engine/redis/ingest.js';
import type { Engine } from '../engine/types.js';
import { countDeadLetter, createIngestHandler } from '../ingest/handler.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { engineLifecycle, memoryEngineOptions } from './engine-options.js';
import { createGateway, type Gateway } from './gateway.js';
import { OptionsError, resolveOptions, type GatewayOptions, type ResolvedOptions } from './options.js';

/** Which engine a node runs and how (the process-level settings the CLI reads). */
export interface EngineSettings {
  /** Redis URL; set, it selects the Redis engine. `redis+cluster://host:port,host:port` is a Redis Cluster. */
  redisUrl: string | undefined;
  /** The nodes of a Redis Cluster (`host:port,host:port`); set, it selects the Redis engine on that cluster. */
  redisCluster?: string | undefined;
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

/** The URL scheme of a Redis Cluster: `redis+cluster://host:port,host:port`. */
const CLUSTER_SCHEME = 'redis+cluster://';

/** Where the Redis engine connects: one Redis (`url`), a Redis Cluster (`cluster`), or nothing (the memory engine). */
export function redisTarget(node: Pick<EngineSettings, 'redisUrl' | 'redisCluster'>): { url: string } | { cluster: string } | undefined {
  if (node.redisCluster !== undefined) return { cluster: node.redisCluster };
  if (node.redisUrl?.startsWith(CLUSTER_SCHEME)) return { cluster: node.redisUrl.slice(CLUSTER_SCHEME.length).replace(/\/+$/, '') };
  return node.redisUrl === undefined ? undefined : { url: node.redisUrl };
}

/** `text` without the user info of a URL or of `user:password@host` nodes: for messages. */
const withoutCredentials = (text: string): string => text.replace(/[^\s/,@]+@/g, '***@');

/**
 * The Redis settings, checked before anything connects: a bad one stops the gateway naming the setting (exit 2),
 * never showing a password. `redis://`, `rediss://` or `redis+cluster://` URLs; cluster nodes as `host:port`.
 */
export function checkRedisSettings(node: Pick<EngineSettings, 'redisUrl' | 'redisCluster'>): void {
  if (node.redisUrl !== undefined && !/^(rediss?|redis\+cluster):\/\/[^\s]+$/.test(node.redisUrl)) {
    throw new OptionsError('redisUrl', `must be a redis://, rediss:// or redis+cluster:// URL, got ${withoutCredentials(node.redisUrl).slice(0, 200)}`);
  }
  const target = redisTarget(node);
  if (target === undefined || !('cluster' in target)) return;
  try {
    parseClusterNodes(target.cluster);
  } catch (err) {
    throw new OptionsError(node.redisCluster !== undefined ? 'redisCluster' : 'redisUrl', withoutCredentials(err instanceof Error ? err.message : String(err)));
  }
}

/** The gateway setting behind each engine option an EngineOptionError can name. */
const ENGINE_SETTING: Partial<Record<keyof RedisEngineOptions, string>> = {
  prefix: 'redisPrefix',
  nodeId: 'nodeId',
  presenceTtl: 'presenceTtl',
  historyMetaTtl: 'historyMetaTtl',
  historySize: 'historySize',
  historyTtl: 'historyTtl',
  historyMaxBytes: 'historyMaxBytes',
  idempotencyTtl: 'idempotencyTtl',
};

/** Builds the engine the settings select: Redis when a URL or a cluster is given, memory otherwise. */
export function createEngine(options: GatewayOptions, node: EngineSettings, logger: Logger): Engine {
  const o = resolveOptions(options);
  const target = redisTarget(node);
  if (target === undefined) return createMemoryEngine(memoryEngineOptions(o));
  checkEngineSettings(options, node);
  return createRedisEngine(redisEngineOptions(o, node, target, logger));
}

/**
 * The engine settings, checked before anything connects (and in the primary of `--workers`, before it forks): a
 * bad one stops the gateway naming the setting as the user wrote it (exit 2), never showing a password.
 */
export function checkEngineSettings(options: GatewayOptions, node: EngineSettings): void {
  const o = resolveOptions(options);
  checkRedisSettings(node);
  const target = redisTarget(node);
  if (target === undefined) return;
  try {
    checkRedisEngineOptions(redisEngineOptions(o, node, target, silentLogger()));
  } catch (err) {
    const setting = err instanceof EngineOptionError ? ENGINE_SETTING[err.option] : undefined;
    if (setting === undefined) throw err;
    throw new OptionsError(setting, (err as Error).message.replace(/^createRedisEngine: /, ''));
  }
}

function redisEngineOptions(o: ResolvedOptions, node: EngineSettings, target: { url: string } | { cluster: string }, logger: Logger): RedisEngineOptions {
  const lifecycle = engineLifecycle(o);
  return {
    ...(lifecycle === undefined ? {} : { lifecycle }),
    ...target,
    prefix: node.redisPrefix,
    sharded: node.redisSharded || 'cluster' in target,
    presenceTtl: node.presenceTtl,
    historySize: o.historySize,
    historyTtl: o.historyTtl,
    ...(o.historyMetaTtl === undefined ? {} : { historyMetaTtl: o.historyMetaTtl }),
    historyMaxBytes: o.historyMaxBytes,
    idempotencyTtl: o.idempotencyTtl,
    logger,
    ...(node.nodeId === undefined ? {} : { nodeId: node.nodeId }),
  };
}

/** Starts a node from the configuration (what `herald serve` runs in each process). */
export async function startNode(options: GatewayOptions, node: EngineSettings, logger: Logger): Promise<HeraldNode> {
  const engine = createEngine(options, node, logger);
  const gateway = await createGateway({ ...options, engine, logger });
  let ingest: RedisIngest | undefined;
  const target = redisTarget(node);
  if (target !== undefined && node.ingest && 'nodeId' in engine) {
    const { publisher, stats } = gateway;
    ingest = await startRedisIngest({
      ...target,
      prefix: node.redisPrefix,
      nodeId: String(engine.nodeId),
      handle: createIngestHandler({
        publisher,
        stats,
        maxItems: gateway.options.maxPublishChannels,
        maxBytes: gateway.options.maxBodySize,
        namespaces: gateway.namespaces,
      }),
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
