import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { isProcessMetric } from './process-metrics.js';
import type { ChannelCount, NodeSnapshot, SeriesPoint } from './snapshot-types.js';

/**
 * One machine's view over the workers of `herald --workers N`: their metrics and stats combined into one
 * `/metrics` and one `/api/stats`, whichever worker is asked (the primary collects them over cluster IPC).
 */
export interface MachineView {
  metrics(): Promise<string>;
  snapshot(): Promise<NodeSnapshot>;
}

/** What each worker hands the primary: its registry as JSON, or its snapshot. */
export interface WorkerMetrics {
  worker: number;
  metrics: MetricObjectWithValues<MetricValue<string>>[];
}

/** Per-worker figures: kept one series per worker (label `worker`) instead of summed; so are the process's own series. */
export const PER_WORKER_METRICS: ReadonlySet<string> = new Set([
  'herald_connections',
  'herald_protocol_connections',
  'herald_subscriptions',
  'herald_channels',
  'herald_engine_up',
  'herald_engine_degraded',
  'herald_event_loop_lag_seconds',
  'herald_webhooks_circuit_open',
]);
/** Cluster-wide figures every worker measures alike (the shared outbox): the largest, not the sum. */
const CLUSTER_WIDE_METRICS: ReadonlySet<string> = new Set([
  'herald_webhooks_queued',
  'herald_webhooks_held',
  'herald_webhooks_dead_letters',
  'herald_webhooks_queue_age_seconds',
]);

/**
 * The machine's exposition: every series relabelled `node=<machine>`; counters, histograms and the other
 * gauges summed over the workers; the per-worker gauges and each process's own series (`process_*`, `nodejs_*`)
 * labelled `worker`; the cluster-wide ones the largest.
 */
export async function aggregateMetrics(workers: readonly WorkerMetrics[], node: string): Promise<string> {
  const relabelled = workers.map(({ worker, metrics }) =>
    metrics.map((m) => {
      const perWorker = PER_WORKER_METRICS.has(m.name) || isProcessMetric(m.name);
      const aggregator = m.name === 'herald_info' ? 'first' : CLUSTER_WIDE_METRICS.has(m.name) ? 'max' : 'sum';
      return {
        ...m,
        aggregator,
        values: m.values.map((v) => ({ ...v, labels: { ...v.labels, node, ...(perWorker ? { worker: String(worker) } : {}) } })),
      };
    }),
  );
  return AggregatorRegistry.aggregate(relabelled as unknown as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
}

/** Sum of `Record`s of counts. */
function sumRecords(records: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) for (const [k, n] of Object.entries(r)) out[k] = (out[k] ?? 0) + n;
  return out;
}

const round = (n: number): number => Math.round(n * 100) / 100;

/**
 * The machine's stats: counts and rates summed over the workers (`channels` too: a channel subscribed on two
 * workers counts twice, as it costs twice), the top channels merged, the shared webhook queue as the largest.
 */
export function sumSnapshots(list: readonly NodeSnapshot[], node: string): NodeSnapshot {
  const first = list[0];
  if (first === undefined) throw new Error('no worker answered');
  const sum = (f: (s: NodeSnapshot) => number): number => list.reduce((a, s) => a + f(s), 0);
  const max = (f: (s: NodeSnapshot) => number): number => list.reduce((a, s) => Math.max(a, f(s)), 0);
  const samples = list.map((s) => s.sample).filter((p): p is SeriesPoint => p !== null);
  const top = new Map<string, number>();
  for (const s of list) for (const c of s.topChannels) top.set(c.channel, (top.get(c.channel) ?? 0) + c.subscribers);
  const topChannels: ChannelCount[] = [...top]
    .map(([channel, subscribers]) => ({ channel, subscribers }))
    .sort((a, b) => b.subscribers - a.subscribers || (a.channel < b.channel ? -1 : 1))
    .slice(0, 20);
  const hooks = list.map((s) => s.webhooks).filter((w) => w !== undefined);
  return {
    node,
    engine: first.engine,
    version: first.version,
    time: max((s) => s.time),
    uptime: max((s) => s.uptime),
    workers: list.length,
    connections: sum((s) => s.connections),
    protocols: sumRecords(list.map((s) => s.protocols)),
    channels: sum((s) => s.channels),
    subscriptions: sum((s) => s.subscriptions),
    published: sum((s) => s.published),
    delivered: sum((s) => s.delivered),
    dropped: sumRecords(list.map((s) => s.dropped)),
    droppedTotal: sum((s) => s.droppedTotal),
    connectionsOpened: sum((s) => s.connectionsOpened),
    connectionsClosed: sum((s) => s.connectionsClosed),
    recovered: sum((s) => s.recovered),
    notRecovered: sum((s) => s.notRecovered),
    ingested: sum((s) => s.ingested),
    ingestDeadLetters: sum((s) => s.ingestDeadLetters),
    rates: {
      published: round(sum((s) => s.rates.published)),
      delivered: round(sum((s) => s.rates.delivered)),
      dropped: round(sum((s) => s.rates.dropped)),
    },
    rateWindow: max((s) => s.rateWindow),
    sample:
      samples.length === 0
        ? null
        : {
            t: samples.reduce((a, p) => Math.max(a, p.t), 0),
            connections: samples.reduce((a, p) => a + p.connections, 0),
            published: round(samples.reduce((a, p) => a + p.published, 0)),
            delivered: round(samples.reduce((a, p) => a + p.delivered, 0)),
            dropped: round(samples.reduce((a, p) => a + p.dropped, 0)),
          },
    topChannels,
    ...(hooks.length === 0
      ? {}
      : {
          webhooks: {
            queued: Math.max(...hooks.map((w) => w.queued)),
            held: Math.max(...hooks.map((w) => w.held ?? 0)),
            dead: Math.max(...hooks.map((w) => w.dead)),
            queueAge: Math.max(...hooks.map((w) => w.queueAge)),
            sent: hooks.reduce((a, w) => a + w.sent, 0),
            failed: hooks.reduce((a, w) => a + w.failed, 0),
            retried: hooks.reduce((a, w) => a + w.retried, 0),
            deadLettered: hooks.reduce((a, w) => a + w.deadLettered, 0),
          },
        }),
  };
}
