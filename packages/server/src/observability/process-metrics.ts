import { collectDefaultMetrics, Registry, type Metric } from 'prom-client';

/**
 * The process's own series (prom-client's default metrics: `process_cpu_seconds_total`,
 * `process_resident_memory_bytes`, `nodejs_heap_size_used_bytes`, `nodejs_gc_duration_seconds`, ...), what an
 * operator reads to tell a leak or a busy loop from load.
 *
 * One collector per process, made when the first gateway asks: each collection starts a GC observer and an
 * event-loop monitor that nothing stops, and a process may run several gateways (tests run hundreds). Every
 * gateway registers these same metric objects in its own registry, which adds its `node` label at render time.
 */
let shared: readonly Metric[] | undefined;

/**
 * Default metrics left out: each scrape of them walks every open socket or pending write synchronously
 * (`process._getActiveHandles()`, `_getActiveRequests()`, `getActiveResourcesInfo()`, a `readdir` of
 * /proc/self/fd): tens of ms of a blocked event loop at 20 000 connections. `herald_connections` counts the sockets
 * that matter.
 */
const PER_SOCKET = [
  'nodejs_active_handles',
  'nodejs_active_handles_total',
  'nodejs_active_resources',
  'nodejs_active_resources_total',
  'nodejs_active_requests',
  'nodejs_active_requests_total',
  'process_open_fds',
];

export function processMetrics(): readonly Metric[] {
  if (shared === undefined) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    for (const name of PER_SOCKET) registry.removeSingleMetric(name);
    shared = registry
      .getMetricsAsArray()
      .map((m) => registry.getSingleMetric(m.name))
      .filter((m): m is Metric => m !== undefined);
  }
  return shared;
}

/** Whether a series is one of the process's (named `process_*` or `nodejs_*`), kept per worker with `--workers`. */
export const isProcessMetric = (name: string): boolean => name.startsWith('process_') || name.startsWith('nodejs_');
