import cluster, { type Worker } from 'node:cluster';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Gateway } from '../gateway/gateway.js';
import { aggregateMetrics, sumSnapshots, type WorkerMetrics } from '../observability/aggregate.js';
import type { NodeSnapshot } from '../observability/snapshot-types.js';

// The machine view of `herald --workers N` over cluster IPC. A worker whose gateway runs says `machine-joined`. A
// worker asked for /metrics or /api/stats sends `machine` to the primary; the primary sends `collect` to every worker
// that joined (the asking one too), each answers `collected` with its own figures, and the primary answers
// `machine-result` with their aggregate. A worker still starting has no figures to give yet, and one that exits is
// not waited for.

type Kind = 'metrics' | 'snapshot';
interface MachineJoined {
  herald: 'machine-joined';
}
interface MachineRequest {
  herald: 'machine';
  id: number;
  kind: Kind;
}
interface MachineResult {
  herald: 'machine-result';
  id: number;
  data?: string | NodeSnapshot;
  error?: string;
}
interface Collect {
  herald: 'collect';
  id: number;
  kind: Kind;
}
interface Collected {
  herald: 'collected';
  id: number;
  data?: MetricObjectWithValues<MetricValue<string>>[] | NodeSnapshot;
  error?: string;
}

/** How long the primary waits for the workers' figures; a worker that has not answered by then is left out. */
const COLLECT_TIMEOUT_MS = 2000;
/** How long a worker waits for the machine's answer before answering with its own figures. */
const MACHINE_TIMEOUT_MS = 4000;

function isMessage<T extends { herald: string }>(m: unknown, herald: T['herald']): m is T {
  return typeof m === 'object' && m !== null && (m as { herald?: unknown }).herald === herald;
}

/**
 * The primary: answers the workers' `machine` requests by collecting the figures of every worker that joined.
 * `collectTimeoutMs`: how long a worker that does not answer is waited for (tests give a long one).
 */
export function serveMachineView(node: string, collectTimeoutMs = COLLECT_TIMEOUT_MS): void {
  let next = 0;
  const pending = new Map<number, { answers: Map<number, Collected['data']>; expected: Set<number>; done: () => void }>();
  /** Workers whose gateway runs: the ones asked for their figures. */
  const joined = new Set<number>();

  // A worker that goes away (exit, kill -9, a lost IPC channel) will not answer: its figures are left out now.
  const gone = (worker: Worker): void => {
    joined.delete(worker.id);
    for (const p of [...pending.values()]) if (p.expected.delete(worker.id) && p.expected.size === 0) p.done();
  };
  cluster.on('disconnect', gone);
  cluster.on('exit', gone);

  cluster.on('message', (worker: Worker, message: unknown) => {
    if (isMessage<MachineJoined>(message, 'machine-joined')) {
      if (worker.isConnected()) joined.add(worker.id);
      return;
    }
    if (isMessage<Collected>(message, 'collected')) {
      const p = pending.get(message.id);
      if (p === undefined) return;
      if (message.data !== undefined) p.answers.set(worker.id, message.data);
      p.expected.delete(worker.id);
      if (p.expected.size === 0) p.done();
      return;
    }
    if (!isMessage<MachineRequest>(message, 'machine')) return;
    const { kind } = message;
    const id = next++;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && joined.has(w.id) && w.isConnected());
    const answers = new Map<number, Collected['data']>();
    const reply = (r: Omit<MachineResult, 'herald' | 'id'>): void => {
      if (worker.isConnected()) worker.send({ herald: 'machine-result', id: message.id, ...r } satisfies MachineResult);
    };
    const finish = (): void => {
      clearTimeout(timer);
      pending.delete(id);
      const ordered = [...answers].sort(([a], [b]) => a - b);
      if (kind === 'snapshot') {
        try {
          reply({
            data: sumSnapshots(
              ordered.map(([, d]) => d as NodeSnapshot),
              node,
            ),
          });
        } catch (err) {
          reply({ error: err instanceof Error ? err.message : String(err) });
        }
        return;
      }
      const list: WorkerMetrics[] = ordered.map(([w, d]) => ({ worker: w, metrics: d as WorkerMetrics['metrics'] }));
      aggregateMetrics(list, node).then(
        (text) => reply({ data: text }),
        (err: unknown) => reply({ error: err instanceof Error ? err.message : String(err) }),
      );
    };
    const timer = setTimeout(finish, collectTimeoutMs);
    pending.set(id, { answers, expected: new Set(workers.map((w) => w.id)), done: finish });
    for (const w of workers) w.send({ herald: 'collect', id, kind } satisfies Collect);
    if (workers.length === 0) finish();
  });
}

/**
 * A worker: answers the primary's `collect` with this process's figures, and makes the gateway's `/metrics`
 * and `/api/stats` the machine's (its own figures if the primary does not answer in time).
 */
export function joinMachineView(gateway: Gateway): void {
  const send = process.send?.bind(process);
  if (send === undefined) return;
  let next = 0;
  const waiting = new Map<number, (r: MachineResult) => void>();
  send({ herald: 'machine-joined' } satisfies MachineJoined);
  process.on('message', (message: unknown) => {
    if (isMessage<MachineResult>(message, 'machine-result')) {
      waiting.get(message.id)?.(message);
      return;
    }
    if (!isMessage<Collect>(message, 'collect')) return;
    const answer = (data: Collected['data'] | undefined, error?: string): void => {
      send({ herald: 'collected', id: message.id, ...(data === undefined ? {} : { data }), ...(error === undefined ? {} : { error }) } satisfies Collected);
    };
    if (message.kind === 'snapshot') answer(gateway.snapshot());
    else
      gateway.metrics.registry.getMetricsAsJSON().then(
        (m) => answer(m as Collected['data']),
        (err: unknown) => answer(undefined, String(err)),
      );
  });
  const ask = <T>(kind: Kind, local: () => Promise<T> | T): Promise<T> =>
    new Promise<T>((resolve) => {
      const id = next++;
      const fallback = (): void => {
        waiting.delete(id);
        resolve(local());
      };
      const timer = setTimeout(fallback, MACHINE_TIMEOUT_MS);
      waiting.set(id, (r) => {
        clearTimeout(timer);
        waiting.delete(id);
        if (r.data === undefined) resolve(local());
        else resolve(r.data as T);
      });
      try {
        send({ herald: 'machine', id, kind } satisfies MachineRequest);
      } catch {
        clearTimeout(timer);
        fallback();
      }
    });
  gateway.useMachine({
    metrics: () => ask<string>('metrics', () => gateway.metrics.renderLocal()),
    snapshot: () => ask<NodeSnapshot>('snapshot', () => gateway.snapshot()),
  });
}
