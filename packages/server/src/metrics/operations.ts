import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiKeyChecker } from '../auth/api-key.js';
import type { TimerHandle } from '../clock.js';
import type { Context } from '../context.js';
import type { EngineHandlers } from '../engine/types.js';
import { HeraldError } from '../errors.js';
import { ADMIN_CHANNEL, createAdmin, type Admin } from '../http/admin.js';
import type { ApiRoute, RouteHook } from '../http/api.js';
import { sendError } from '../http/respond.js';
import { probeEngine, readiness } from './health.js';
import { LogLimiter } from './log-limiter.js';
import { createLogObserver } from './observer.js';
import { createMetrics, type Metrics } from './registry.js';
import { countSubscriptions, listChannels, RateSeries, type NodeSnapshot, type SeriesPoint } from './snapshot.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Period of the operations timer: rates, suppressed-log summaries, admin snapshots. */
const TICK_MS = 1000;
/** The engine is probed every this many ticks (for `herald_engine_roundtrip_seconds` and `herald_engine_up`). */
const PROBE_EVERY = 5;
/** Channels in a snapshot. */
const TOP_CHANNELS = 20;
/** Seconds `rates` in a snapshot are averaged over. */
const RATE_WINDOW = 10;

/** What the operations layer needs from the gateway. */
export interface OperationsDeps {
  ctx: Context;
  /** This node's id (the `node` label). */
  node: string;
  isShuttingDown: () => boolean;
}

/** Metrics, health, stats, the admin dashboard and rate-limited event logs of one gateway. */
export interface Operations {
  readonly metrics: Metrics;
  /** `/api/stats`, and `/api/admin/token` when the dashboard is enabled. */
  readonly apiRoutes: ReadonlyMap<string, ApiRoute>;
  /** The dashboard page when enabled. */
  readonly routes: readonly RouteHook[];
  /** `GET /metrics`: the API key or the metrics token. */
  serveMetrics(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void>;
  /** `/readyz`. */
  readiness(): Promise<[number, string]>;
  /** This node's stats now. */
  snapshot(): NodeSnapshot;
  /** The last minutes of rates, one point per second. */
  series(): SeriesPoint[];
  /** Wraps the hub for the engine: times sampled deliveries (see LatencySampler). */
  handlers(hub: EngineHandlers): EngineHandlers;
  /** Starts the once-a-second timer. */
  start(): void;
  /** Stops it and writes what the log limiter still holds. */
  stop(): void;
}

/** Wires the operations layer into a gateway (see docs/metrics.md). */
export function createOperations(deps: OperationsDeps): Operations {
  const { ctx, node } = deps;
  const { stats, hub, engine, clock, logger, options } = ctx;
  const startedAt = clock.now();
  const limiter = new LogLimiter(logger, () => clock.now());
  stats.observer = createLogObserver(limiter);
  const metrics = createMetrics({
    stats,
    connections: () => hub.connections.values(),
    connectionCount: () => hub.connections.size,
    channelCount: () => hub.channelCount,
    engine: engine.name,
    node,
    version: VERSION,
  });
  const rates = new RateSeries(stats, () => hub.connections.size);
  const apiKeys = new ApiKeyChecker(options.apiKeys);
  const metricsTokens = new ApiKeyChecker(options.metricsTokens);

  const snapshot = (): NodeSnapshot => {
    const now = clock.now();
    const avg = rates.average(RATE_WINDOW);
    const s = stats;
    return {
      node,
      engine: engine.name,
      version: VERSION,
      time: now,
      uptime: Math.round((now - startedAt) / 100) / 10,
      connections: hub.connections.size,
      channels: hub.channelCount,
      subscriptions: countSubscriptions(hub.connections.values()),
      published: s.published,
      delivered: s.delivered,
      dropped: Object.fromEntries(s.dropped),
      droppedTotal: s.droppedTotal,
      connectionsOpened: s.connectionsOpened,
      connectionsClosed: s.connectionsClosed,
      recovered: s.recovered,
      notRecovered: s.notRecovered,
      ingested: s.ingested,
      ingestDeadLetters: s.ingestDeadLetters,
      rates: { published: round(avg.published), delivered: round(avg.delivered), dropped: round(avg.dropped) },
      rateWindow: avg.window,
      sample: rates.latest(),
      topChannels: listChannels(hub.connections.values(), { limit: TOP_CHANNELS }).channels,
    };
  };

  const admin: Admin | undefined = options.admin ? createAdmin({ ctx, node, snapshot }) : undefined;
  const apiRoutes = new Map<string, ApiRoute>([
    [
      'stats',
      {
        method: 'GET',
        handler: async (_req, url) => {
          const withSeries = ['1', 'true'].includes(url.searchParams.get('series') ?? '');
          return [200, JSON.stringify(withSeries ? { ...snapshot(), series: rates.points() } : snapshot())];
        },
      },
    ],
  ]);
  if (admin) apiRoutes.set('admin', admin.apiRoute);

  let probing = false;
  const probe = (): void => {
    if (probing) return;
    probing = true;
    void probeEngine(engine, stats, metrics).finally(() => {
      probing = false;
    });
  };

  let ticks = 0;
  let timer: TimerHandle | undefined;
  const tick = (): void => {
    ticks += 1;
    rates.tick(clock.now());
    stats.latency.sweep();
    limiter.flush();
    if (ticks % PROBE_EVERY === 0) probe();
    admin?.tick();
  };

  return {
    metrics,
    apiRoutes,
    routes: admin ? [admin.page] : [],
    async serveMetrics(req, res, requestId) {
      const auth = req.headers.authorization;
      if (!apiKeys.check(auth) && !metricsTokens.check(auth)) {
        stats.authFailure('metrics', { requestId, header: auth === undefined ? 'missing' : 'invalid' });
        sendError(res, new HeraldError('unauthorized', 'missing or invalid credentials (Authorization: Bearer <API key or metrics token>)'), {
          'www-authenticate': 'Bearer',
          'x-request-id': requestId,
        });
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendError(res, new HeraldError('method_not_allowed', '/metrics accepts GET'), { allow: 'GET', 'x-request-id': requestId });
        return;
      }
      const body = await metrics.render();
      res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    },
    readiness: () => readiness({ engine, node, shuttingDown: deps.isShuttingDown(), stats, metrics }),
    snapshot,
    series: () => rates.points(),
    handlers(h) {
      const latency = stats.latency;
      return {
        message(msg) {
          if (msg.channel === ADMIN_CHANNEL) {
            // The dashboards' own snapshots are not application traffic: they must not show up as
            // deliveries (the dashboard would chart itself). Delivery is synchronous, so nothing sees the count in between.
            const delivered = stats.delivered;
            h.message(msg);
            stats.delivered = delivered;
            return;
          }
          h.message(msg);
          if (latency.size > 0) latency.delivered(msg.channel);
        },
        direct: (client, frame) => h.direct(client, frame),
        disconnect: (target) => h.disconnect(target),
      };
    },
    start() {
      if (timer !== undefined) return;
      rates.tick(clock.now());
      probe();
      timer = clock.setInterval(tick, TICK_MS);
    },
    stop() {
      if (timer !== undefined) clock.clearInterval(timer);
      timer = undefined;
      limiter.flush();
    },
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
