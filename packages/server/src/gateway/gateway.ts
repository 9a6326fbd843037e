import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { JwtAuth } from '../auth/jwt-auth.js';
import type { Auth } from '../auth/types.js';
import { ChannelBudget } from '../delivery/channel-budget.js';
import { Connection } from '../delivery/connection.js';
import { SlicedPass, sweep, sweepOne } from '../delivery/heartbeat.js';
import { Hub } from '../delivery/hub.js';
import { NO_NAMESPACES, type ChannelNamespaces } from '../delivery/publish-request.js';
import { Publisher } from '../delivery/publisher.js';
import { InboxDelivery } from '../delivery/inbox.js';
import { WebhookDispatcher } from '../webhooks/dispatcher.js';
import { defaultFormats } from '../webhooks/config.js';
import { WebhookStats } from '../webhooks/stats.js';
import { HttpPublishHook, type PublishHook } from '../webhooks/publish-hook.js';
import { Stats } from '../delivery/stats.js';
import { createMemoryEngine } from '../engine/memory/engine.js';
import { memoryEngineOptions } from './engine-options.js';
import type { Engine } from '../engine/types.js';
import { createAdminHttp } from '../http/admin.js';
import { createApiRoutes } from '../http/api-routes.js';
import { inboxRoutes } from '../http/inbox-routes.js';
import { createDemoRoute } from '../http/demo.js';
import { createHttpHandler, type RouteHook } from '../http/handler.js';
import type { MachineView } from '../observability/aggregate.js';
import type { Metrics } from '../observability/metrics.js';
import { createOperations } from '../observability/operations.js';
import type { NodeSnapshot } from '../observability/snapshot.js';
import { createNativeProtocol } from '../protocols/native/protocol.js';
import { createPusherProtocol, pusherWebhookPlugin } from '../protocols/pusher/protocol.js';
import type { Protocol } from '../protocols/types.js';
import { createAdmission } from '../transport/admission.js';
import { ConnectionLimits } from '../transport/limits.js';
import { TRANSPORTS } from '../transport/registry.js';
import type { OnSocket } from '../transport/types.js';
import { sleep, systemClock, type Clock } from '../util/clock.js';
import { addressSet, isLoopbackHost } from '../util/ip.js';
import { createLogger, type Logger } from '../util/logger.js';
import { newClientId } from '../util/random-id.js';
import { resolveOptions, webhookEndpoints, type GatewayOptions, type ResolvedOptions } from './options.js';

/** Ticks per heartbeat sweep pass: each visits a tenth of the connections (see SlicedPass). */
const SWEEP_SLICES = 10;
/** Frames a Pusher connection may send in a burst beyond `maxSubscriptions` (see `frameByFrameDeps`). */
const SUBSCRIBE_BURST_HEADROOM = 10;

/** A running gateway. */
export interface Gateway {
  /** Node's HTTP server: WebSocket upgrades and the HTTP API on the `ws` transport (the uWS transport serves both itself). */
  readonly server: Server;
  /** HTTP requests being answered now (on either transport). */
  readonly httpRequests: number;
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
  /** A worker of `--workers N`: `/metrics` and `/api/stats` answer for the whole machine through `view`. */
  useMachine(view: MachineView): void;
  /** Other protocols' channel namespaces (Pusher apps), for publishes with an `app` field. */
  readonly namespaces: ChannelNamespaces;
  /** Publishes validated items exactly as `POST /api/publish` does (used by the Redis ingest). */
  readonly publisher: Publisher;
  /**
   * The webhook dispatcher of every protocol (native Standard Webhooks endpoints and the Pusher apps' URLs): one
   * outbox, one queue, one set of metrics. Idle without endpoints.
   */
  readonly webhooks: WebhookDispatcher;
  /** Where it listens. */
  address(): AddressInfo;
  /** Number of open connections. */
  readonly connectionCount: number;
  /** Number of channels with at least one local subscriber. */
  readonly channelCount: number;
  /** Runs one heartbeat sweep now (the interval timer does this every `sweepInterval`). */
  sweep(): void;
  /** Adds an HTTP route hook tried after the built-in routes. */
  addRoute(hook: RouteHook): void;
  /**
   * Graceful shutdown: stop accepting, close every client with its protocol's restart code (native 1012, Pusher 4200)
   * after flushing what is queued, wait up to `shutdownTimeout` for them to go, drop the rest, close the
   * engine. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Creates and starts a gateway: the delivery core (hub, publisher, engine: memory by default), the wire
 * protocols over it, one transport carrying the WebSocket upgrades and the HTTP API, and one sweep timer for
 * all connections. docs/architecture.md walks through it.
 */
export async function createGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  const options = resolveOptions(opts);
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger();
  const engine = opts.engine ?? createMemoryEngine({ ...memoryEngineOptions(options), clock });
  const nodeId = 'nodeId' in engine && typeof engine.nodeId === 'string' ? engine.nodeId : hostname();
  let shuttingDown = false;
  const isShuttingDown = (): boolean => shuttingDown;

  // ---- the delivery core ----
  const stats = new Stats();
  const budget = new ChannelBudget({
    perConnection: options.channelRate,
    perConnectionBurst: options.channelRate,
    perIp: options.channelRatePerIp,
    perIpBurst: options.channelRatePerIp,
  });
  const inbox = new InboxDelivery(engine, stats, logger, () => clock.now());
  const hub = new Hub(engine, logger, stats, { budget, now: () => clock.now(), inbox });
  const publisher = new Publisher(engine, stats, hub, {
    ttl: options.inboxTtl,
    max: options.inboxMaxMessages,
    idempotencyTtl: options.idempotencyTtl,
    now: () => clock.now(),
  });
  // ---- the webhooks: one dispatcher, a format per protocol ----
  const webhookStats = new WebhookStats();
  const pusherHooks = pusherWebhookPlugin(options.pusherApps);
  const webhooks = new WebhookDispatcher({
    outbox: engine.outbox,
    endpoints: [...webhookEndpoints(options), ...pusherHooks.endpoints],
    formats: new Map([...defaultFormats(), [pusherHooks.format.name, pusherHooks.format]]),
    stats: webhookStats,
    clock,
    logger,
    timeout: options.webhookTimeout,
  });
  inbox.listener = webhooks;
  if (options.jwksUrl !== undefined) {
    const jwks = new URL(options.jwksUrl);
    if (jwks.protocol === 'http:' && !isLoopbackHost(jwks.hostname.replace(/^\[|\]$/g, ''))) {
      // Whoever can answer that fetch in the provider's place can sign any user's token.
      logger.warn({ jwksUrl: jwks.origin }, 'auth: the JWKS URL is plain http: anyone on the path to it can forge connection tokens; use https');
    }
  }
  const auth: Auth = new JwtAuth({
    secrets: options.jwtSecrets,
    publicKeys: options.jwtPublicKeys,
    jwksUrl: options.jwksUrl,
    audiences: options.jwtAudiences,
    issuers: options.jwtIssuers,
    logger,
    apiKeys: options.apiKeys,
    metricsTokens: options.metricsTokens,
    admin: options.admin,
  });
  const limits = {
    connectTimeout: options.connectTimeout,
    clientRate: options.clientRate,
    clientBurst: options.clientBurst,
    sendBufferLimit: options.sendBufferLimit,
  };

  // ---- the wire protocols ----
  const protocols: Protocol[] = [
    createNativeProtocol({
      paths: options.wsPaths,
      subscriptions: hub,
      inbox,
      auth,
      stats,
      clock,
      logger,
      allowAnonymous: options.allowAnonymous,
      maxSubscriptions: options.maxSubscriptions,
      maxInvalidFrames: options.maxInvalidFrames,
      liveness: { pingInterval: options.pingInterval, idleTimeout: options.idleTimeout },
      members: engine.members,
      broker: engine.broker,
      presenceMaxMembers: options.presenceMaxMembers,
      publisher,
      clientPublish: {
        rate: options.clientPublishRate,
        userRate: options.clientPublishUserRate,
        maxPayloadBytes: options.clientPublishMaxBytes,
        hook: publishHook(options, stats, clock, logger),
        hookFailure: options.publishHookFailure,
      },
      onClientPublish: webhooks.wantsType('client.publish') ? (p) => webhooks.clientPublished(p, clock.now()) : undefined,
    }),
  ];
  // Pusher: only with apps configured (without, /app/... and /apps/... answer 404 as any unknown path).
  let namespaces: ChannelNamespaces = NO_NAMESPACES;
  if (options.pusherApps.length > 0) {
    const pusher = createPusherProtocol({
      apps: options.pusherApps,
      subscriptions: hub,
      engine,
      publisher,
      stats,
      clock,
      logger,
      maxSubscriptions: options.maxSubscriptions,
      maxInvalidFrames: options.maxInvalidFrames,
      maxBodySize: options.maxBodySize,
      isShuttingDown,
      webhookSink: webhooks,
    });
    protocols.push(pusher);
    namespaces = pusher.namespaces;
  }
  const protocolFor = (path: string): Protocol | undefined => protocols.find((p) => p.accepts(path));
  const isEndpoint = (path: string): boolean => protocolFor(path) !== undefined;

  // ---- operations and the HTTP API ----
  const ops = createOperations({ hub, engine, stats, webhooks: webhookStats, clock, logger, node: nodeId, admin: options.admin, isShuttingDown });
  const apiRoutes = createApiRoutes({
    engine,
    hub,
    publisher,
    ops,
    maxBodySize: options.maxBodySize,
    maxPublishChannels: options.maxPublishChannels,
    node: nodeId,
    isShuttingDown,
    namespaces,
  });
  for (const [name, route] of inboxRoutes({ engine, webhooks, maxBodySize: options.maxBodySize, now: () => clock.now() })) apiRoutes.set(name, route);
  const extraRoutes: RouteHook[] = protocols.flatMap((p) => p.routes ?? []);
  if (options.admin) {
    const admin = createAdminHttp({ apiKey: options.apiKeys[0] as string, wsPath: options.wsPaths[0] ?? '/ws', node: nodeId, clock, logger });
    apiRoutes.set('admin', admin.apiRoute);
    extraRoutes.push(admin.page);
  }
  if (options.demo) {
    extraRoutes.push(createDemoRoute({ wsPath: options.wsPaths[0] ?? '/ws', apiKey: options.demoApiKey, tokenSecret: options.demoTokenSecret, clock, logger }));
  }
  const http = createHttpHandler({ auth, stats, logger, apiRoutes, ops, isEndpoint, extraRoutes });
  // A missing Host is refused by the handler, in the JSON error shape (Node's own 400 has no body).
  const server = createServer({ requireHostHeader: false });

  // ---- the transport ----
  // One object for every connection (not one each: it is per idle connection memory).
  const connectionDeps = { host: hub, limits, stats, clock };
  // A protocol whose clients subscribe frame by frame (pusher-js): a burst that takes maxSubscriptions frames (the
  // subscription limit answers the ones past it), or such a client is closed and reconnects for ever.
  const frameByFrameDeps = {
    ...connectionDeps,
    limits: { ...limits, clientBurst: Math.max(options.clientBurst, options.maxSubscriptions + SUBSCRIBE_BURST_HEADROOM) },
  };
  const onSocket: OnSocket = (socket, info) => {
    // Admission accepted the path, so a protocol serves it.
    const protocol = protocolFor(info.path) as Protocol;
    const deps = protocol.subscribesFrameByFrame === true ? frameByFrameDeps : connectionDeps;
    const conn = new Connection(protocol.clientId?.() ?? newClientId(), info.ip, socket, deps);
    conn.protocol = protocol.name;
    conn.handler = protocol.open(conn, info);
    hub.add(conn);
    stats.connectionsOpened += 1;
    return conn;
  };
  // ---- admission and connection limits ----
  const trustedProxies = addressSet(options.trustedProxies);
  const connectionLimits = new ConnectionLimits({
    maxConnections: options.maxConnections,
    maxConnectionsPerIp: options.maxConnectionsPerIp,
    connectRate: options.connectRate,
    connectBurst: options.connectBurst,
  });
  const admission = createAdmission({
    shuttingDown: isShuttingDown,
    isEndpoint,
    endpoints: protocols.flatMap((p) => p.endpoints),
    allowedOrigins: options.allowedOrigins,
    trustedProxies,
    forwardedHeader: options.forwardedHeader,
    limits: connectionLimits,
    clock,
    refused: (reason) => stats.refuse(reason),
  });
  const transport = await TRANSPORTS[options.transport]({
    server,
    http,
    maxRequestBody: options.maxBodySize,
    admission,
    guard: {
      requestTimeout: options.requestTimeout,
      maxPending: options.maxPendingConnections,
      maxPendingPerIp: options.maxConnectionsPerIp,
      isTrustedProxy: (ip) => trustedProxies.matches(ip),
      dropped: (reason) => stats.socketDropped(reason),
    },
    onSocket,
    maxPayload: options.maxFrameSize,
    sendBufferLimit: options.sendBufferLimit,
    clock,
    logger,
  });

  await engine.start(hub);
  // Webhook events wait in the engine; this node sends its share of them (each once for the cluster).
  webhooks.start();
  try {
    await transport.listen(options.port, options.host);
  } catch (err) {
    // Nothing is served (a port in use): what started for it stops, so a caller that handles the error is left
    // with no timer, no Redis connection and no uWebSockets.js app.
    transport.stop();
    transport.terminateAll();
    await webhooks.stop();
    await Promise.all(protocols.map((p) => p.close?.()));
    await engine.close();
    throw err;
  }
  ops.start();

  const sweepLimits = (now: number): void => {
    budget.sweep(now);
    connectionLimits.sweep(now);
  };
  const runSweep = (): void => {
    const now = clock.now();
    sweep(hub.connections.values(), now);
    sweepLimits(now);
  };
  // The timer spreads each pass over SWEEP_SLICES ticks (see SlicedPass); `sweep()` still runs a whole one.
  const pass = new SlicedPass(hub.connections, SWEEP_SLICES, sweepOne, sweepLimits);
  const timer = clock.setInterval(() => pass.tick(clock.now()), Math.max(1, Math.floor(options.sweepInterval / SWEEP_SLICES)));
  let closing: Promise<void> | undefined;

  const shutdown = async (): Promise<void> => {
    shuttingDown = true;
    transport.stop();
    clock.clearInterval(timer);
    ops.stop();
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    for (const conn of [...hub.connections.values()]) conn.closeFor('shutdown', 'server restarting');
    // In-flight HTTP requests finish (new publishes answer 503 shutting_down); clients close with 1012.
    await Promise.race([Promise.all([transport.drained(), http.idle()]), sleep(clock, options.shutdownTimeout)]);
    // The last answers were handed over in this turn: let the transport write them (uWebSockets.js sends a
    // corked answer when its callback returns) before everything is closed.
    await new Promise<void>((resolve) => setImmediate(resolve));
    transport.terminateAll();
    server.closeAllConnections();
    await serverClosed;
    // Protocols finish what their closed connections left (Pusher: members leaving) while the engine still runs.
    await Promise.all(protocols.map((p) => p.close?.()));
    await webhooks.stop();
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
    useMachine: ops.useMachine,
    publisher,
    namespaces,
    webhooks,
    address: () => transport.address(),
    get connectionCount() {
      return hub.connections.size;
    },
    get channelCount() {
      return hub.channelCount;
    },
    get httpRequests() {
      return http.inFlight;
    },
    sweep: runSweep,
    addRoute: (hook) => extraRoutes.push(hook),
    close: () => (closing ??= shutdown()),
  };
}

/** The publish hook of the options, if one is configured (its secret was checked by resolveOptions). */
function publishHook(o: ResolvedOptions, stats: Stats, clock: Clock, logger: Logger): PublishHook | undefined {
  if (o.publishHookUrl === undefined) return undefined;
  return new HttpPublishHook({
    url: o.publishHookUrl,
    secret: (o.publishHookSecret ?? o.webhookSecret) as string,
    timeout: o.publishHookTimeout,
    maxPayloadBytes: o.clientPublishMaxBytes,
    maxInFlight: o.publishHookMaxInFlight,
    clock,
    logger,
    counts: stats.publishHook,
  });
}
