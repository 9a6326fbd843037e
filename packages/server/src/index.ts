export { createGateway, type Gateway } from './gateway.js';
export { resolveOptions, OptionsError, DEFAULTS, type GatewayOptions, type ResolvedOptions } from './options.js';
export { createMemoryEngine, type MemoryEngineOptions } from './engine/memory.js';
export type * from './engine/types.js';
export { systemClock, type Clock, type TimerHandle } from './clock.js';
export { createLogger, silentLogger, type Logger, type LogLevel } from './logger.js';
export { HeraldError, EngineUnavailableError } from './errors.js';
export type { Socket, SocketListener, UpgradeInfo } from './transport/socket.js';
export type { RouteHook } from './http/api.js';
