// The public API of @herald/server: the gateway factory, the engines, and the seams (docs/architecture.md).
export { createGateway, type Gateway } from './gateway/gateway.js';
export { resolveOptions, OptionsError, DEFAULTS, type GatewayOptions, type ResolvedOptions } from './gateway/options.js';
export { startNode, createEngine, type HeraldNode, type EngineSettings } from './gateway/node.js';
export { createMemoryEngine, type MemoryEngineOptions } from './engine/memory/engine.js';
export { ENGINE_DEFAULTS } from './engine/defaults.js';
export type * from './engine/types.js';
export {
  createRedisEngine,
  EngineOptionError,
  type RedisEngine,
  type RedisEngineOptions,
  type RedisFactory,
  type RedisRole,
  type EngineRedisOptions,
} from './engine/redis/engine.js';
export { startRedisIngest, type RedisIngest, type RedisIngestOptions } from './engine/redis/ingest.js';
export { systemClock, type Clock, type TimerHandle } from './util/clock.js';
export { createLogger, silentLogger, type Logger, type LogLevel } from './util/logger.js';
export { tuneGarbageCollection } from './util/gc-tuning.js';
export { HeraldError, EngineUnavailableError } from './util/errors.js';
export type { Socket, SocketListener, UpgradeInfo, Transport, TransportDeps, TransportFactory } from './transport/types.js';
export type { Auth, Identity, Verification } from './auth/types.js';
export type { Protocol, ProtocolHandler, MessageCodec, CloseReason, Liveness } from './protocols/types.js';
export type { RouteHook } from './http/handler.js';
export type { HttpRequest, HttpResponse, HttpHeaders, HttpRequestHandler } from './transport/http.js';
export { Publisher, type PublishItemResult } from './delivery/publisher.js';
