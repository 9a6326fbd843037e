import { readFileSync } from 'node:fs';
import type { Hub } from '../delivery/hub.js';
import type { Stats } from '../delivery/stats.js';
import type { Engine } from '../engine/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { WebhookStats } from '../webhooks/stats.js';
import type { MachineView } from './aggregate.js';
import { createAdminFeed } from './admin-feed.js';
import { probeEngine, readiness } from './health.js';
import { LogLimiter } from '../util/log-limiter.js';
import { createMetrics, type Metrics } from './metrics.js';
import { createLogObserver } from './observer.js';
import { RateSeries, type NodeSnapshot, type SeriesPoint } from './snapshot.js';

/** The gateway's version (the `version` label, `/api/stats`). */
export const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Period of the operations timer: rates, suppressed-log summaries, admin snapshots. */
const TICK_MS = 1000;
/** The engine is probed every this many ticks (for `herald_engine_roundtrip_seconds` and `herald_engine_up`). */
const PROBE_EVERY = 5;
/** Channels in a snapshot. */
const TOP_CHANNELS = 20;
/** Seconds `rates` in a snapshot are averaged over. */
const RATE_WINDOW = 10;

/** What the operations layer reads. */
export interface OperationsDeps {
  hub: Hub;
  engine: Engine;
  stats: Stats;
  /** The webhook dispatcher's counters and queue. */
  webhooks: WebhookStats;
  clock: Clock;
  logger: Logger;
  /** This node's id (the `node` label). */
  node: string;
  /** Feed the admin dashboard (option `admin`). */
  admin: boolean;
  isShuttingDown: () => boolean;
}

/** Metrics, health, stats, the admin feed and rate-limited event logs of one gateway (no HTTP here: http/ serves them). */
export interface Operations {
  readonly metrics: Metrics;
  /** `/readyz`: `[status, JSON body]`. */
  readiness(): Promise<[number, string]>;
  /** This node's stats now. */
  snapshot(): NodeSnapshot;
  /** What `GET /api/stats` answers: this node's stats, or the machine's (every worker) after `useMachine`. */
  stats(): Promise<NodeSnapshot>;
  /** A worker of `--workers N`: `/metrics` and `/api/stats` answer for the whole machine through `view`. */
  useMachine(view: MachineView): void;
  /** The last minutes of rates, one point per second. */
  series(): SeriesPoint[];
  /** Starts the once-a-second timer. */
  start(): void;
  /** Stops it and writes what the log limiter still holds. */
  stop(): void;
}

/** Wires the operations layer into a gateway (see docs/metrics.md). */
export function createOperations(deps: OperationsDeps): Operations {
  const { stats, hub, engine, clock, logger, node } = deps;
  const startedAt = clock.now();
  const limiter = new LogLimiter(logger, () => clock.now());
  stats.observer = createLogObserver(limiter);
  const metrics = createMetrics({
    stats,
    webhooks: deps.webhooks,
    connectionCount: () => hub.connections.size,
    connectionsByProtocol: () => hub.connectionsByProtocol(),
    subscriptionCount: () => hub.subscriptionCount(),
    channelCount: () => hub.channelCount,
    engineUsage: engine.usage?.bind(engine),
    engine: engine.name,
    node,
    version: VERSION,
  });
  const rates = new RateSeries(stats, () => hub.connections.size);

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
      protocols: Object.fromEntries(hub.connectionsByProtocol()),
      channels: hub.channelCount,
      subscriptions: hub.subscriptionCount(),
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
      topChannels: hub.listChannels({ limit: TOP_CHANNELS }).channels,
      webhooks: webhookSnapshot(deps.webhooks),
    };
  };
  const feed = deps.admin ? createAdminFeed({ engine, stats, snapshot }) : undefined;

  let probing = false;
  const probe = (): void => {
    if (probing) return;
    probing = true;
    void probeEngine(engine, stats, metrics).finally(() => {
      probing = false;
    });
  };

  /**
   * Says (a warning, at most once a second per kind) when an engine count of early evictions grew: how many since
   * the last tick (`what`), and the total.
   */
  const growth = (read: () => number, kind: string, what: string, msg: string): (() => void) => {
    let seen = read();
    return () => {
      const now = read();
      if (now <= seen) return;
      limiter.log('warn', kind, { [what]: now - seen, total: now }, msg);
      seen = now;
    };
  };
  // Publish ids forgotten before their window ended; delivery receipts dropped before their message's expiry.
  const watchIdempotency = growth(
    () => engine.usage?.().idempotencyEarlyEvictions ?? 0,
    'idempotency',
    'forgotten',
    'publish ids forgotten before their idempotency window ended (raise HERALD_IDEMPOTENCY_MAX_KEYS)',
  );
  const watchReceipts = growth(
    () => engine.usage?.().inboxReceiptEvictions ?? 0,
    'receipts',
    'dropped',
    "delivery receipts dropped before their message's expiry (raise HERALD_INBOX_MAX_RECEIPTS, or use the Redis engine)",
  );

  const watchInbox = growth(
    () => engine.usage?.().inboxRejected ?? 0,
    'inbox',
    'refused',
    'inbox publishes refused: the inboxes hold inboxTotalBytes (raise HERALD_INBOX_TOTAL_BYTES, or use the Redis engine)',
  );

  let machine: MachineView | undefined;

  let ticks = 0;
  let timer: TimerHandle | undefined;
  const tick = (): void => {
    ticks += 1;
    watchIdempotency();
    watchReceipts();
    watchInbox();
    rates.tick(clock.now());
    stats.latency.sweep();
    limiter.flush();
    if (ticks % PROBE_EVERY === 0) probe();
    feed?.tick();
  };

  return {
    metrics,
    readiness: () => readiness({ engine, node, shuttingDown: deps.isShuttingDown(), stats, metrics }),
    snapshot,
    stats: () => (machine === undefined ? Promise.resolve(snapshot()) : machine.snapshot()),
    useMachine(view) {
      machine = view;
      metrics.useMachine(() => view.metrics());
    },
    series: () => rates.points(),
    start() {
      if (timer !== undefined) return;
      rates.tick(clock.now());
      metrics.start();
      probe();
      timer = clock.setInterval(tick, TICK_MS);
    },
    stop() {
      if (timer !== undefined) clock.clearInterval(timer);
      timer = undefined;
      metrics.stop();
      limiter.flush();
    },
  };
}

/** The webhook part of a snapshot: the queue as last measured, and totals over every endpoint. */
function webhookSnapshot(w: WebhookStats): NonNullable<NodeSnapshot['webhooks']> {
  const sum = (m: ReadonlyMap<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  return {
    queued: w.queued,
    held: w.held,
    dead: w.deadLetters,
    queueAge: round(w.queueAge),
    sent: sum(w.sent),
    failed: sum(w.failed),
    retried: sum(w.retried),
    deadLettered: sum(w.dead),
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
