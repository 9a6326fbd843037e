import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { CloseCode } from '@herald/protocol';
import { ApiKeyChecker } from './auth/api-key.js';
import { TokenVerifier } from './auth/jwt.js';
import { systemClock, type TimerHandle } from './clock.js';
import { newClientId } from './random-id.js';
import { Connection } from './connection.js';
import type { Context } from './context.js';
import { createMemoryEngine } from './engine/memory.js';
import type { Engine } from './engine/types.js';
import { sweep } from './heartbeat.js';
import { AdminTokenVerifier } from './http/admin.js';
import { createHttpHandler, type RouteHook } from './http/api.js';
import { createDemoRoute } from './http/demo.js';
import { Hub } from './hub.js';
import { createLogger } from './logger.js';
import { createOperations } from './metrics/operations.js';
import type { Metrics } from './metrics/registry.js';
import type { NodeSnapshot } from './metrics/snapshot.js';
import { resolveOptions, type GatewayOptions, type ResolvedOptions } from './options.js';
import { Publisher } from './publisher.js';
import { Stats } from './stats.js';
import type { OnSocket } from './transport/socket.js';
import { attachUwsTransport, type ListeningTransport } from './transport/uws-transport.js';
import { attachWsTransport, type Transport } from './transport/ws-transport.js';

/** A running gateway. */
export interface Gateway {
  /** The HTTP server (WebSocket upgrades and the HTTP API share it). */
  readonly server: Server;
  /** The resolved options. */
  readonly options: ResolvedOptions;
  readonly engine: Engine;
  readonly stats: Stats;
  /** This node's id: the Redis engine's `nodeId`, or the host name with the memory engine (the `node` label of every metric). */
  readonly nodeId: string;
  /** The Prometheus registry behind `GET /metrics`. */
  readonly metrics: Metrics;
  /** This node's stats now (what `GET /api/stats` answers and the admin channel carries). */
  snapshot(): NodeSnapshot;
  /** Publishes validated items exactly as `POST /api/publish` does (used by the Redis ingest). */
  readonly publisher: Publisher;
  /** Where it listens. */
  address(): AddressInfo;
  /** Number of open connections. */
  readonly connectionCount: number;
  /** Number of channels with at least one local subscriber. */
  readonly channelCount: number;
  /** Runs one heartbeat sweep now (the interval timer does this every `sweepInterval`). */
  sweep(): void;
  /** Adds an HTTP route hook (demo page, admin) tried after the built-in routes. */
  addRoute(hook: RouteHook): void;
  /**
   * Graceful shutdown: stop accepting, close every client with 1012 (after flushing what is queued),
   * wait up to `shutdownTimeout` for them to go, drop the rest, close the engine. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Creates and starts a gateway: one `http.Server` carrying the WebSocket transport and the HTTP API,
 * the hub, the engine (memory by default), and one sweep timer for all connections.
 */
export async function createGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  const options = resolveOptions(opts);
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger();
  const engine =
    opts.engine ?? createMemoryEngine({ historySize: options.historySize, historyTtl: options.historyTtl, idempotencyTtl: options.idempotencyTtl, clock });
  const stats = new Stats();
  const hub = new Hub(engine, logger, stats);
  // With the dashboard on, tokens marked as admin tokens are verified with keys derived from the API keys.
  const tokens = options.admin ? new AdminTokenVerifier(options.jwtSecrets, options.apiKeys) : new TokenVerifier(options.jwtSecrets);
  const ctx: Context = { options, clock, logger, engine, hub, tokens, stats };
  const extraRoutes: RouteHook[] = [];
  let shuttingDown = false;
  const nodeId = 'nodeId' in engine && typeof engine.nodeId === 'string' ? engine.nodeId : hostname();
  const ops = createOperations({ ctx, node: nodeId, isShuttingDown: () => shuttingDown });

  const http = createHttpHandler({
    ctx,
    apiKeys: new ApiKeyChecker(options.apiKeys),
    isShuttingDown: () => shuttingDown,
    extraRoutes,
    apiRoutes: ops.apiRoutes,
    metrics: ops.serveMetrics,
    readiness: ops.readiness,
    node: nodeId,
  });
  const server = createServer(http);
  server.on('clientError', (err, socket) => {
    logger.debug({ err: err.message }, 'http client error');
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  const onSocket: OnSocket = (socket) => {
    const conn = new Connection(newClientId(), socket, ctx);
    hub.add(conn);
    stats.connectionsOpened += 1;
    return conn;
  };
  const transportOptions = { paths: options.wsPaths, maxPayload: options.maxFrameSize, allowedOrigins: options.allowedOrigins, logger };
  // uWebSockets.js owns the public port and relays plain HTTP to `server`, which then listens on loopback.
  const uws: ListeningTransport | undefined =
    options.transport === 'uws' ? await attachUwsTransport(server, { ...transportOptions, sendBufferLimit: options.sendBufferLimit }, onSocket) : undefined;
  const transport: Transport = uws ?? attachWsTransport(server, transportOptions, onSocket);

  await engine.start(ops.handlers(hub));
  if (uws) {
    await uws.listen(options.port, options.host);
  } else {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  extraRoutes.push(...ops.routes);
  ops.start();
  if (options.demo) {
    extraRoutes.push(createDemoRoute({ wsPath: options.wsPaths[0] ?? '/ws', apiKey: options.demoApiKey, logger }));
  }

  const runSweep = (): void => sweep(hub.connections.values(), clock.now(), options);
  const timer: TimerHandle = clock.setInterval(runSweep, options.sweepInterval);
  let closing: Promise<void> | undefined;

  const shutdown = async (): Promise<void> => {
    shuttingDown = true;
    transport.stop();
    clock.clearInterval(timer);
    ops.stop();
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    for (const conn of [...hub.connections.values()]) conn.close(CloseCode.ServiceRestart, 'server restarting');
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, options.shutdownTimeout).unref());
    // In-flight HTTP requests finish (new publishes answer 503 shutting_down); clients close with 1012.
    await Promise.race([Promise.all([transport.drained(), http.idle()]), deadline]);
    transport.terminateAll();
    server.closeAllConnections();
    await serverClosed;
    await engine.close();
    // Again: writes the "N similar log lines suppressed" summaries of the closes above.
    ops.stop();
    logger.info('gateway stopped');
  };

  return {
    server,
    options,
    engine,
    stats,
    nodeId,
    metrics: ops.metrics,
    snapshot: ops.snapshot,
    publisher: new Publisher(ctx),
    address: () => uws?.address() ?? (server.address() as AddressInfo),
    get connectionCount() {
      return hub.connections.size;
    },
    get channelCount() {
      return hub.channelCount;
    },
    sweep: runSweep,
    addRoute: (hook) => extraRoutes.push(hook),
    close: () => (closing ??= shutdown()),
  };
}
