import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CLIENT_PUBLISH_OUTCOMES, PUBLISH_HOOK_RESULTS, type Stats } from '../delivery/stats.js';
import type { EngineUsage } from '../engine/types.js';
import { LIMIT_REASONS } from '../transport/limits.js';
import { SOCKET_DROP_REASONS } from '../transport/types.js';
import type { WebhookStats } from '../webhooks/stats.js';
import { processMetrics } from './process-metrics.js';

/** What the metrics read: plain counters and live sizes, at scrape time only. */
export interface MetricsSource {
  stats: Stats;
  /** The webhook dispatcher's counters and queue. */
  webhooks: WebhookStats;
  connectionCount(): number;
  /** Open connections by protocol (native, pusher). */
  connectionsByProtocol(): ReadonlyMap<string, number>;
  subscriptionCount(): number;
  /** What the engine holds in this process (the memory engine); undefined for an engine that keeps it elsewhere. */
  engineUsage: (() => EngineUsage) | undefined;
  channelCount(): number;
  engine: string;
  node: string;
  version: string;
}

/** The Prometheus side of one gateway. */
export interface Metrics {
  readonly registry: Registry;
  /** `Content-Type` of `render()`. */
  readonly contentType: string;
  /** The text exposition format: this process's, or the machine's once `useMachine` was called. */
  render(): Promise<string>;
  /** This process's registry, whatever `useMachine` says. */
  renderLocal(): Promise<string>;
  /** A worker of `--workers N`: `render()` answers for the whole machine through `machine`. */
  useMachine(machine: () => Promise<string>): void;
  /** Records one engine check (`/readyz`, the periodic probe): its round trip, whether it passed, and whether part of the engine was down. */
  engineCheck(seconds: number, ok: boolean, degraded: boolean): void;
  /** Stops measuring the event loop (the gateway stopped); `start` measures it again. */
  stop(): void;
  start(): void;
}

/** Drop reasons exported at 0 from the start (others, such as `ingest_<code>`, appear when they happen). */
export const DROP_REASONS = [
  'no_such_client',
  'user_offline',
  'user_not_subscribed',
  'slow_consumer',
  'rate_limited',
  'invalid',
  'not_authorized',
  'engine_unavailable',
  'shutting_down',
  'inbox_full',
];
/** Auth failure reasons exported at 0 from the start. */
export const AUTH_FAILURE_REASONS = [
  'api_key',
  'metrics',
  'token_missing',
  'token_invalid',
  'token_expired',
  'token_early',
  'keys_unavailable',
  'subscribe_forbidden',
  'publish_forbidden',
];
/** Limits exported at 0 from the start. */
export const LIMITS = ['new_channels', 'client_publish', 'subscriptions'];
/** Engine operations exported at 0 from the start. */
export const ENGINE_OPERATIONS = ['check', 'api', 'subscribe', 'admin', 'presence', 'inbox', 'client_publish'];

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const ROUND_TRIP_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** `counter` set to the values of `map` (plus `known` keys at 0), labelled `label`. */
function fromMap(counter: Counter<string>, label: string, map: ReadonlyMap<string | number, number>, known: readonly string[] = []): void {
  counter.reset();
  for (const k of known) if (!map.has(k)) counter.inc({ [label]: k }, 0);
  for (const [k, v] of map) counter.inc({ [label]: String(k) }, v);
}

/**
 * Builds the gateway's registry. Counters are plain numbers in `Stats` (incremented on the hot paths
 * without labels or lookups) copied into prom-client in `collect()` callbacks at scrape time; only the
 * two histograms are observed as things happen (sampled deliveries, engine checks). Every series carries
 * the default label `node`. docs/metrics.md lists every metric (a test keeps them in step).
 */
export function createMetrics(src: MetricsSource): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ node: src.node });
  const { stats } = src;
  const registers = [registry];

  new Gauge({
    name: 'herald_info',
    help: 'Always 1; the labels say which version and engine this node runs.',
    labelNames: ['version', 'engine'],
    registers,
    collect() {
      this.set({ version: src.version, engine: src.engine }, 1);
    },
  });
  new Gauge({
    name: 'herald_protocol_connections',
    help: 'WebSocket connections open on this node, by wire protocol (native, pusher).',
    labelNames: ['protocol'],
    registers,
    collect() {
      this.reset();
      for (const [protocol, n] of src.connectionsByProtocol()) this.set({ protocol }, n);
    },
  });
  new Gauge({
    name: 'herald_connections',
    help: 'WebSocket connections open on this node (including ones still sending connect).',
    registers,
    collect() {
      this.set(src.connectionCount());
    },
  });
  new Counter({
    name: 'herald_connections_opened_total',
    help: 'WebSocket connections accepted.',
    registers,
    collect() {
      this.reset();
      this.inc(stats.connectionsOpened);
    },
  });
  new Counter({
    name: 'herald_connections_closed_total',
    help: 'WebSocket connections closed, by close code (1006: dropped without a close frame).',
    labelNames: ['code'],
    registers,
    collect() {
      fromMap(this, 'code', stats.closedByCode);
    },
  });
  new Counter({
    name: 'herald_connections_refused_total',
    help: 'WebSocket connections refused by a connection limit, by limit (HTTP 503/429 before the upgrade, or close 1013 after it).',
    labelNames: ['reason'],
    registers,
    collect() {
      fromMap(this, 'reason', stats.refused, LIMIT_REASONS);
    },
  });
  new Counter({
    name: 'herald_sockets_dropped_total',
    help: 'Sockets destroyed before they completed a request or a WebSocket upgrade, by reason (timeout, per-address or global cap, malformed request).',
    labelNames: ['reason'],
    registers,
    collect() {
      fromMap(this, 'reason', stats.socketsDropped, SOCKET_DROP_REASONS);
    },
  });
  new Gauge({
    name: 'herald_subscriptions',
    help: 'Channel subscriptions held by connections on this node.',
    registers,
    collect() {
      this.set(src.subscriptionCount());
    },
  });
  new Gauge({
    name: 'herald_channels',
    help: 'Channels with at least one subscriber on this node.',
    registers,
    collect() {
      this.set(src.channelCount());
    },
  });
  new Counter({
    name: 'herald_messages_published_total',
    help: 'Messages accepted for publishing by this node (HTTP API and Redis ingest): one per channel per publish, and one per message to a client; idempotent repeats not counted.',
    registers,
    collect() {
      this.reset();
      this.inc(stats.published);
    },
  });
  new Counter({
    name: 'herald_messages_delivered_total',
    help: 'Messages handed to connections on this node (one per message per recipient).',
    registers,
    collect() {
      this.reset();
      this.inc(stats.delivered);
    },
  });
  new Counter({
    name: 'herald_messages_dropped_total',
    help: 'Messages that could not be delivered or were refused, by reason.',
    labelNames: ['reason'],
    registers,
    collect() {
      fromMap(this, 'reason', stats.dropped, DROP_REASONS);
    },
  });
  const latency = new Histogram({
    name: 'herald_delivery_latency_seconds',
    help: 'Time from accepting a publish to writing it to the sockets of this node (sampled: at most 100 publishes a second, one in flight per channel).',
    buckets: LATENCY_BUCKETS,
    registers,
  });
  stats.latency.observe = (seconds) => latency.observe(seconds);
  new Counter({
    name: 'herald_recoveries_total',
    help: 'Subscriptions that asked to resume from a position, by result (not_recovered: history lost or too short; the client was told to refetch).',
    labelNames: ['result'],
    registers,
    collect() {
      this.reset();
      this.inc({ result: 'recovered' }, stats.recovered);
      this.inc({ result: 'not_recovered' }, stats.notRecovered);
    },
  });
  new Counter({
    name: 'herald_auth_failures_total',
    help: 'Refused credentials, by reason.',
    labelNames: ['reason'],
    registers,
    collect() {
      fromMap(this, 'reason', stats.authFailures, AUTH_FAILURE_REASONS);
    },
  });
  new Counter({
    name: 'herald_limited_total',
    help: 'Requests refused by a limit (not messages: see herald_messages_dropped_total), by limit.',
    labelNames: ['limit'],
    registers,
    collect() {
      fromMap(this, 'limit', stats.limits, LIMITS);
    },
  });
  new Counter({
    name: 'herald_client_publishes_total',
    help: 'Client publishes (native publish frames), by outcome: published, duplicate, or why not.',
    labelNames: ['outcome'],
    registers,
    collect() {
      fromMap(this, 'outcome', stats.clientPublishes, CLIENT_PUBLISH_OUTCOMES);
    },
  });
  new Counter({
    name: 'herald_publish_hook_requests_total',
    help: 'Requests to the publish hook, by result: accept, reject, rewrite, failed (no usable answer in time).',
    labelNames: ['result'],
    registers,
    collect() {
      fromMap(this, 'result', stats.publishHook, PUBLISH_HOOK_RESULTS);
    },
  });
  new Counter({
    name: 'herald_engine_errors_total',
    help: 'Engine operations that failed (engine unreachable or erroring), by operation.',
    labelNames: ['operation'],
    registers,
    collect() {
      fromMap(this, 'operation', stats.engineErrors, ENGINE_OPERATIONS);
    },
  });
  const roundTrip = new Histogram({
    name: 'herald_engine_roundtrip_seconds',
    help: 'Duration of engine checks (Redis engine: a PING round trip), every 5 seconds and on each /readyz.',
    labelNames: ['engine'],
    buckets: ROUND_TRIP_BUCKETS,
    registers,
  });
  const up = new Gauge({
    name: 'herald_engine_up',
    help: '1 when the last engine check passed, 0 when it failed.',
    labelNames: ['engine'],
    registers,
  });
  up.set({ engine: src.engine }, 1);
  const degradedGauge = new Gauge({
    name: 'herald_engine_degraded',
    help: '1 when the last engine check found part of the engine down (a Redis Cluster master: its channels fail, the others work), else 0.',
    labelNames: ['engine'],
    registers,
  });
  degradedGauge.set({ engine: src.engine }, 0);
  const usage = src.engineUsage;
  if (usage) {
    new Gauge({
      name: 'herald_history_channels',
      help: 'Channels the memory engine keeps state for (seq, epoch, history): only published channels, kept until idle past the meta TTL.',
      registers,
      collect() {
        this.set(usage().channels);
      },
    });
    new Gauge({
      name: 'herald_history_bytes',
      help: 'Bytes of message frames the memory engine keeps in history (bounded by historyTotalBytes).',
      registers,
      collect() {
        this.set(usage().historyBytes);
      },
    });
    new Gauge({
      name: 'herald_history_buffer_bytes',
      help: 'Bytes of the buffers the memory engine holds its history frames in: the memory history takes (each channel buffer at most a few times its frames).',
      registers,
      collect() {
        this.set(usage().historyBufferBytes);
      },
    });
    new Gauge({
      name: 'herald_idempotency_keys',
      help: 'Publish ids the memory engine remembers for the idempotency window: channel, inbox and direct publishes (each bounded by idempotencyMaxKeys).',
      registers,
      collect() {
        this.set(usage().idempotencyKeys);
      },
    });
    new Gauge({
      name: 'herald_inbox_messages',
      help: "Inbox messages the memory engine keeps: every user's, until acknowledged, removed or expired (inboxTtl; at most inboxMaxMessages per user).",
      registers,
      collect() {
        this.set(usage().inboxMessages);
      },
    });
    new Gauge({
      name: 'herald_inbox_bytes',
      help: "What the memory engine's inbox messages count towards inboxTotalBytes: each message's frame plus 512 bytes, each user with messages 256 more.",
      registers,
      collect() {
        this.set(usage().inboxBytes);
      },
    });
    new Counter({
      name: 'herald_inbox_rejected_total',
      help: 'Inbox publishes the memory engine refused (inbox_storage_full, HTTP 507) because its inboxes held inboxTotalBytes.',
      registers,
      collect() {
        this.reset();
        this.inc(usage().inboxRejected);
      },
    });
    new Gauge({
      name: 'herald_inbox_receipts',
      help: "Delivery receipts the memory engine keeps: one per message published with receipt:true, until the message's expiry (acknowledged or not).",
      registers,
      collect() {
        this.set(usage().inboxReceipts);
      },
    });
    new Counter({
      name: 'herald_inbox_receipts_evicted_total',
      help: "Delivery receipts the memory engine dropped before their message's expiry because inboxMaxReceipts was reached: their GET /api/receipts answers 404.",
      registers,
      collect() {
        this.reset();
        this.inc(usage().inboxReceiptEvictions);
      },
    });
    new Counter({
      name: 'herald_idempotency_early_evictions_total',
      help: 'Publish ids forgotten before their idempotency window ended because idempotencyMaxKeys was reached: a repeat of one would publish again.',
      registers,
      collect() {
        this.reset();
        this.inc(usage().idempotencyEarlyEvictions);
      },
    });
  }
  new Counter({
    name: 'herald_ingest_messages_total',
    help: 'Messages taken from the Redis ingest (stream or PUBLISH) and published.',
    registers,
    collect() {
      this.reset();
      this.inc(stats.ingested);
    },
  });
  new Counter({
    name: 'herald_ingest_dead_letters_total',
    help: 'Ingested messages that could not be published and went to the dead-letter stream.',
    registers,
    collect() {
      this.reset();
      this.inc(stats.ingestDeadLetters);
    },
  });
  const hooks = src.webhooks;
  // Every endpoint of every protocol: `format` tells the native (standard) ones from the Pusher apps' (pusher).
  const perEndpoint = (name: string, help: string, map: (w: WebhookStats) => ReadonlyMap<string, number>): void => {
    new Counter({
      name,
      help,
      labelNames: ['endpoint', 'format'],
      registers,
      collect() {
        this.reset();
        for (const [endpoint, n] of map(hooks)) this.inc({ endpoint, format: hooks.formats.get(endpoint) ?? 'unknown' }, n);
      },
    });
  };
  perEndpoint('herald_webhooks_sent_total', 'Webhook events delivered (answered 2xx), by endpoint and format.', (w) => w.sent);
  perEndpoint(
    'herald_webhooks_failed_total',
    'Webhook event deliveries that failed an attempt (an error status, a timeout, no connection), by endpoint and format.',
    (w) => w.failed,
  );
  perEndpoint('herald_webhooks_retried_total', 'Webhook deliveries scheduled for another attempt after a failure, by endpoint and format.', (w) => w.retried);
  perEndpoint(
    'herald_webhooks_dead_total',
    "Webhook deliveries given up on (retried for their endpoint's retry time) and dead-lettered, by endpoint and format.",
    (w) => w.dead,
  );
  perEndpoint(
    'herald_webhooks_deferred_total',
    "Webhook deliveries put off without a request because their endpoint's circuit was open (it kept failing), by endpoint and format.",
    (w) => w.deferred,
  );
  new Gauge({
    name: 'herald_webhooks_circuit_open',
    help: '1 for each endpoint whose circuit is open on this node (it kept failing: one probe request per back-off), by endpoint and format.',
    labelNames: ['endpoint', 'format'],
    registers,
    collect() {
      this.reset();
      for (const endpoint of hooks.formats.keys()) this.set({ endpoint, format: hooks.formats.get(endpoint) ?? 'unknown' }, hooks.open.has(endpoint) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'herald_webhooks_queued',
    help: 'Webhook events and deliveries waiting in the outbox, cluster-wide (measured every 5 seconds).',
    registers,
    collect() {
      this.set(hooks.queued);
    },
  });
  new Gauge({
    name: 'herald_webhooks_held',
    help: 'Webhook events held back (user.offline, Pusher channel_vacated and member_removed) until their hold-back ends, cluster-wide.',
    registers,
    collect() {
      this.set(hooks.held);
    },
  });
  new Gauge({
    name: 'herald_webhooks_dead_letters',
    help: 'Webhook dead letters kept, cluster-wide (herald webhooks replay sends them again).',
    registers,
    collect() {
      this.set(hooks.deadLetters);
    },
  });
  new Gauge({
    name: 'herald_webhooks_queue_age_seconds',
    help: 'Age of the oldest webhook delivery still waiting (0 when none waits): how far behind the receivers are.',
    registers,
    collect() {
      this.set(hooks.queueAge);
    },
  });

  // Event-loop delay since the previous scrape (per worker with --workers: the `worker` label).
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();

  // The process's own series (RSS, heap, GC, CPU, handles), shared by every gateway of the process.
  for (const m of processMetrics()) registry.registerMetric(m);
  new Gauge({
    name: 'herald_event_loop_lag_seconds',
    help: 'Event-loop delay of this process since the previous scrape: the 99th percentile (how long a ready callback waited).',
    registers,
    collect() {
      const p99 = loop.count === 0 ? 0 : loop.percentile(99);
      this.set(p99 / 1e9);
      loop.reset();
    },
  });

  let machine: (() => Promise<string>) | undefined;
  return {
    registry,
    contentType: registry.contentType,
    render: () => (machine === undefined ? registry.metrics() : machine()),
    renderLocal: () => registry.metrics(),
    useMachine(m) {
      machine = m;
    },
    engineCheck(seconds, ok, degraded) {
      roundTrip.observe({ engine: src.engine }, seconds);
      up.set({ engine: src.engine }, ok ? 1 : 0);
      degradedGauge.set({ engine: src.engine }, degraded ? 1 : 0);
    },
    stop: () => loop.disable(),
    start: () => loop.enable(),
  };
}
