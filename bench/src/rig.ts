/**
 * A loaded server: counting clients, probe clients, a publisher, and a stepped publish rate. One step
 * publishes at a fixed rate for a window, then waits for the backlog to drain, and reports the delivered
 * rate inside the window, whether everything arrived, probe latency and the CPU of every process.
 */
import { stampOf } from './client.js';
import { CpuWindow, percentile } from './proc.js';
import type { Publisher } from './publisher.js';
import { totals, type RawWs } from './raw-ws.js';
import { sleep, type Pauses, type ServerProc } from './harness.js';

/** CPU % taken by other processes above which a failed step counts as noisy and is retried. */
const NOISY_CPU = 20;
/** Retries of a step failed in a noisy window, and how long to wait for a quiet second (`--noisy-retries`, `--quiet-wait`). */
export const noise = { retries: 2, waitMs: 120_000 };

/** Publishes are sent on this tick; each carries the messages due since the last one. */
export const TICK_MS = 10;

export interface Rig {
  clients: RawWs[];
  probes: RawWs[];
  publisher: Publisher;
  /** Channels for the next `n` messages. */
  channels(n: number): string[];
  /** Deliveries one message makes (subscribers of a fan-out channel; 1 for a user channel). */
  fanout: number;
  /** Processes whose CPU is reported: [server..., load generator, redis?]. */
  pids: number[];
  pidNames: string[];
  /** The server processes (their pauses are read per step). */
  servers: readonly ServerProc[];
}

/** Full GCs and the longest event-loop stall of the servers since the last call: summed, and the longest of all. */
async function takePauses(servers: readonly ServerProc[]): Promise<Pauses> {
  const all = await Promise.all(servers.map((s) => s.pauses()));
  return { fullGcs: all.reduce((a, p) => a + p.fullGcs, 0), longestStallMs: Math.max(0, ...all.map((p) => p.longestStallMs)) };
}

export interface StepResult {
  /** Target deliveries/s. */
  target: number;
  /** Deliveries/s counted inside the publish window. */
  achieved: number;
  expected: number;
  delivered: number;
  p50: number;
  p99: number;
  max: number;
  cpu: Record<string, number>;
  /** Busy % of each core in the window, whoever used it (core 0 busier than the server means a noisy neighbour). */
  cores: number[];
  publishErrors: number;
  /** HTTP publish requests per second sent in the window. */
  requests: number;
  /** Server CPU (all server processes) per publish request and per message, in microseconds. */
  usPerRequest: number;
  usPerMessage: number;
  disconnects: number;
  /** Full (mark-compact) GCs of the servers in the window, and their longest event-loop stall (ms). */
  fullGcs: number;
  longestStallMs: number;
  /** CPU % (of one core) used in the window by processes other than the server(s), the load generator and Redis. */
  others: number;
  /** Attempts this step took (a failed step in a noisy window is run again). */
  attempts: number;
  ok: boolean;
  /** Why the step failed. */
  why?: string;
}

export function attachProbes(probes: readonly RawWs[], into: { samples: number[] }): void {
  for (const p of probes) {
    p.parse = true;
    p.onText = (payload) => {
      const t = stampOf(payload);
      if (Number.isFinite(t)) into.samples.push(performance.now() - t);
    };
  }
}

/** Waits (up to `maxMs`) for a second in which other processes use less than NOISY_CPU of the two cores. */
export async function waitQuiet(pids: readonly number[], maxMs: number): Promise<void> {
  const until = performance.now() + Math.min(maxMs, noise.waitMs);
  while (performance.now() < until) {
    const w = new CpuWindow(pids);
    await sleep(1000);
    const others = w.coresBusy().reduce((a, b) => a + b, 0) - w.read().reduce((a, b) => a + b, 0);
    if (others < NOISY_CPU) return;
  }
}

/**
 * Waits (up to `maxMs`) until the server has finished what earlier steps left: a second in which no frame
 * arrived, no publish was in flight and the server's processes used under a tenth of a core. Past saturation a
 * server holds seconds of backlog (in its queues and the sockets' buffers), more than a step's drain waits for;
 * a step measured on top of it reports that backlog's latency, not its own.
 */
export async function settle(rig: Rig, maxMs = 60_000): Promise<void> {
  const until = performance.now() + maxMs;
  while (performance.now() < until) {
    const frames = totals.frames;
    const w = new CpuWindow(rig.pids);
    await sleep(1000);
    const serverCpu = w.read().reduce((a, b) => a + b, 0);
    if (totals.frames === frames && rig.publisher.inFlight === 0 && serverCpu < 10) return;
  }
}

export function closedCount(clients: readonly RawWs[]): number {
  let n = 0;
  for (const c of clients) if (c.closed) n++;
  return n;
}

/** One step at `target` deliveries/s for `seconds`. */
export async function runStep(rig: Rig, lat: { samples: number[] }, target: number, seconds: number): Promise<StepResult> {
  const perSecond = target / rig.fanout;
  const closed0 = closedCount(rig.clients);
  const errors0 = rig.publisher.errors;
  const requests0 = rig.publisher.requests;
  const batch = rig.publisher.batch;
  lat.samples = [];
  const base = totals.frames;
  await takePauses(rig.servers);
  const cpu = new CpuWindow(rig.pids);
  const t0 = performance.now();
  let published = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    let due = Math.floor((perSecond * (now - t0)) / 1000) - published;
    while (due > 0) {
      const k = Math.min(batch, due);
      void rig.publisher.post(rig.channels(k), now);
      published += k;
      due -= k;
    }
  }, TICK_MS);
  await sleep(seconds * 1000);
  clearInterval(timer);
  const t1 = performance.now();
  const inWindow = totals.frames - base;
  const requests = rig.publisher.requests - requests0;
  const cpuPct = cpu.read();
  const pauses = await takePauses(rig.servers);
  const serverCpu = rig.pidNames.reduce((a, n, i) => (n === 'server' || n.startsWith('node') ? a + (cpuPct[i] as number) : a), 0);
  const windowUs = (t1 - t0) * 1000;
  const cores = cpu.coresBusy();
  const expected = published * rig.fanout;
  // Drain: wait for the backlog while it still moves (at most 5 s).
  let last = -1;
  let still = 0;
  const drainUntil = performance.now() + 5000;
  while (totals.frames - base < expected && performance.now() < drainUntil) {
    await sleep(50);
    const now = totals.frames;
    if (now === last && ++still > 20) break;
    if (now !== last) still = 0;
    last = now;
  }
  while (rig.publisher.inFlight > 0 && performance.now() < drainUntil) await sleep(20);
  const delivered = totals.frames - base;
  const sorted = lat.samples.slice().sort((a, b) => a - b);
  const p99 = percentile(sorted, 99);
  const disconnects = closedCount(rig.clients) - closed0;
  const publishErrors = rig.publisher.errors - errors0;
  let why: string | undefined;
  if (disconnects > 0) why = `${disconnects} clients disconnected`;
  else if (publishErrors > 0) why = `${publishErrors} publish errors (${rig.publisher.lastError})`;
  else if (delivered < expected) why = `${expected - delivered} of ${expected} not delivered`;
  else if (!(p99 < 100)) why = `p99 ${p99.toFixed(1)} ms`;
  const r: StepResult = {
    target,
    achieved: Math.round(inWindow / ((t1 - t0) / 1000)),
    expected,
    delivered,
    p50: round1(percentile(sorted, 50)),
    p99: round1(p99),
    max: round1(sorted[sorted.length - 1] ?? NaN),
    cpu: Object.fromEntries(rig.pidNames.map((n, i) => [n, cpuPct[i] as number])),
    cores,
    publishErrors,
    requests: Math.round(requests / ((t1 - t0) / 1000)),
    usPerRequest: requests > 0 ? round1((serverCpu / 100) * (windowUs / requests)) : NaN,
    usPerMessage: published > 0 ? round1((serverCpu / 100) * (windowUs / published)) : NaN,
    disconnects,
    fullGcs: pauses.fullGcs,
    longestStallMs: pauses.longestStallMs,
    others: Math.max(0, cores.reduce((a, b) => a + b, 0) - cpuPct.reduce((a, b) => a + b, 0)),
    attempts: 1,
    ok: why === undefined,
  };
  if (why !== undefined) r.why = why;
  return r;
}

export interface LadderResult {
  steps: StepResult[];
  /** Highest target with everything delivered and p99 < 100 ms. */
  sustained: number;
  /** Highest delivered rate in any window. */
  saturation: number;
  /** CPU while at saturation (the step that reached it). */
  saturationCpu: Record<string, number>;
  sustainedP99: number;
  /** The sustained step (highest target that passed). */
  best?: StepResult;
  /** The step that reached the saturation rate. */
  saturationStep?: StepResult;
}

/**
 * Climbs `targets` until the server stops keeping up: the backlog does not drain, clients drop, publishes
 * fail, or it delivers under 85% of the target in two steps in a row. A step failed on latency alone (p99 over 100 ms while
 * everything is delivered) does not end the climb: it is not sustained, but the server still keeps up, and
 * stopping there would understate the saturation rate (p99 near the line flaps on a noisy machine). The
 * first target is run once for a second first, uncounted, so JIT warm-up of both sides is not measured.
 * `log` prints each step.
 */
export async function ladder(rig: Rig, targets: readonly number[], seconds: number, log: (s: StepResult) => void): Promise<LadderResult> {
  const lat = { samples: [] as number[] };
  attachProbes(rig.probes, lat);
  if (targets[0] !== undefined) await runStep(rig, lat, targets[0], 1);
  const steps: StepResult[] = [];
  let behind = 0;
  for (const target of targets) {
    let s = await runStep(rig, lat, target, seconds);
    // A shared machine: a step that failed while other processes took a noticeable share of the two cores
    // is run again (after its backlog drained), up to NOISY_RETRIES times, so neighbours do not end a ladder.
    for (let attempt = 2; !s.ok && s.others > NOISY_CPU && s.disconnects === 0 && attempt <= noise.retries + 1; attempt++) {
      log(s);
      await waitQuiet(rig.pids, noise.waitMs);
      s = { ...(await runStep(rig, lat, target, seconds)), attempts: attempt };
    }
    steps.push(s);
    log(s);
    // Saturated (backlog not drained, clients dropped, publishes refused, or deliveries behind in two steps
    // in a row, so one hiccup of a noisy machine does not end the climb): stop climbing.
    behind = s.achieved < 0.85 * s.target ? behind + 1 : 0;
    if (s.delivered < s.expected || s.disconnects > 0 || s.publishErrors > 0 || behind >= 2) break;
    await sleep(300);
  }
  const ok = steps.filter((s) => s.ok);
  const best = ok.reduce<StepResult | undefined>((a, s) => (a === undefined || s.target > a.target ? s : a), undefined);
  const sat = steps.reduce<StepResult | undefined>((a, s) => (a === undefined || s.achieved > a.achieved ? s : a), undefined);
  return {
    steps,
    sustained: best?.target ?? 0,
    saturation: sat?.achieved ?? 0,
    saturationCpu: sat?.cpu ?? {},
    sustainedP99: best?.p99 ?? NaN,
    ...(best ? { best } : {}),
    ...(sat ? { saturationStep: sat } : {}),
  };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
