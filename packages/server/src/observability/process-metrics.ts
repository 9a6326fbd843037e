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

export function processMetrics(): readonly Metric[] {
  if (shared === undefined) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    shared = registry
      .getMetricsAsArray()
      .map((m) => registry.getSingleMetric(m.name))
      .filter((m): m is Metric => m !== undefined);
  }
  return shared;
}

/** Whether a series is one of the process's (named `process_*` or `nodejs_*`), kept per worker with `--workers`. */
export const isProcessMetric = (name: string): boolean => name.startsWith('process_') || name.startsWith('nodejs_');
