import { performance } from 'node:perf_hooks';
import type { Engine } from '../engine/types.js';
import { HeraldError } from '../util/errors.js';
import type { Stats } from '../delivery/stats.js';
import type { Metrics } from './metrics.js';

/** The result of one engine check. */
export interface EngineProbe {
  ok: boolean;
  /** Round trip in ms (rounded to 0.01). */
  ms: number;
  /** Why it failed: the error code (`engine_unavailable` ...) and message; absent when ok. */
  code?: string;
  error?: string;
  /** The engine answers, but part of it is down (a Redis Cluster master): what. */
  degraded?: string;
}

/**
 * Runs `engine.check()` (the Redis engine: subscriber connection up and a PING answered within a second),
 * records its round trip in `herald_engine_roundtrip_seconds` and `herald_engine_up`, and counts a failure
 * as an engine error (operation `check`).
 */
export async function probeEngine(engine: Engine, stats: Stats, metrics: Metrics | undefined): Promise<EngineProbe> {
  const started = performance.now();
  try {
    const found = await engine.check();
    const seconds = (performance.now() - started) / 1000;
    const degraded = found?.degraded;
    metrics?.engineCheck(seconds, true, degraded !== undefined);
    if (degraded !== undefined) {
      stats.engineError('check', { code: 'engine_degraded', error: degraded });
      return { ok: true, ms: round(seconds * 1000), degraded };
    }
    return { ok: true, ms: round(seconds * 1000) };
  } catch (err) {
    const seconds = (performance.now() - started) / 1000;
    metrics?.engineCheck(seconds, false, false);
    const code = err instanceof HeraldError ? err.code : 'engine_unavailable';
    const error = err instanceof Error ? err.message : 'engine unavailable';
    stats.engineError('check', { code, error });
    return { ok: false, ms: round(seconds * 1000), code, error };
  }
}

/**
 * The `/readyz` answer: 200 when the engine answers and the gateway is not shutting down, 503 otherwise.
 * The body says which check failed and why:
 * `{"status":"not_ready","engine":"redis","node":"…","reason":"…","checks":{"engine":{"ok":false,…},"shutdown":{"ok":true}}}`.
 * `reason` repeats the first failure for humans and simple probes. An engine that answers with part of it down (a
 * Redis Cluster master) is still ready, 200 with `"status":"degraded"` and the reason: every gateway sees the same
 * cluster, so taking them all out of rotation would turn a third of the channels failing into all of them.
 */
export async function readiness(opts: {
  engine: Engine;
  node: string;
  shuttingDown: boolean;
  stats: Stats;
  metrics: Metrics | undefined;
}): Promise<[number, string]> {
  const { engine, node } = opts;
  if (opts.shuttingDown) {
    const body = {
      status: 'not_ready',
      engine: engine.name,
      node,
      reason: 'shutting down',
      checks: { shutdown: { ok: false, error: 'a graceful shutdown is in progress' } },
    };
    return [503, JSON.stringify(body)];
  }
  const probe = await probeEngine(engine, opts.stats, opts.metrics);
  const checks = { engine: probe, shutdown: { ok: true } };
  if (probe.ok && probe.degraded !== undefined) return [200, JSON.stringify({ status: 'degraded', engine: engine.name, node, reason: probe.degraded, checks })];
  if (probe.ok) return [200, JSON.stringify({ status: 'ready', engine: engine.name, node, checks })];
  return [503, JSON.stringify({ status: 'not_ready', engine: engine.name, node, reason: probe.error, checks })];
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
