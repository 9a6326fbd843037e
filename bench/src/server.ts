/**
 * One benchmark server process (the harness starts it pinned to the server core with taskset):
 * `node dist/server.js <kind> <port> [json options]`. Talks to the harness over IPC: `ready` once
 * listening, `{cmd:'mem'}` answers the RSS once the idle process has settled (see
 * settledMemory), `{cmd:'pauses'}` the full GCs and the longest event-loop stall since the last ask (see
 * Pauses), `{cmd:'stop'}` shuts down and exits (which
 * also writes a --cpu-prof profile).
 */
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import type { Kind } from './kinds.js';
import { startHerald, type HeraldBenchOptions } from './servers/herald.js';
import { startSocketIo } from './servers/socketio.js';
import { startSoketi } from './servers/soketi.js';
import type { Running } from './servers/types.js';
import { startUwsBaseline } from './servers/uws-baseline.js';
import { startWsBaseline } from './servers/ws-baseline.js';

const SETTLE_MIN_MS = 9000;
const SETTLE_MAX_MS = 20_000;

const [kind, portText, optsText] = process.argv.slice(2) as [Kind, string, string | undefined];
const port = Number(portText);
const extra = (optsText ? JSON.parse(optsText) : {}) as Partial<HeraldBenchOptions>;

function start(): Promise<Running> {
  switch (kind) {
    case 'herald':
      return startHerald(port, { engine: 'memory', transport: 'ws', ...extra });
    case 'herald-redis':
      return startHerald(port, { engine: 'redis', transport: 'ws', ...extra });
    case 'herald-uws':
      return startHerald(port, { engine: 'memory', transport: 'uws', ...extra });
    case 'herald-pusher':
      return startHerald(port, { engine: 'memory', transport: 'ws', pusher: true, ...extra });
    case 'herald-pusher-uws':
      return startHerald(port, { engine: 'memory', transport: 'uws', pusher: true, ...extra });
    case 'soketi':
      return startSoketi(port);
    case 'ws':
      return startWsBaseline(port);
    case 'socket.io':
      return startSocketIo(port);
    case 'uws':
      return startUwsBaseline(port);
    case 'socket.io-redis':
      return startSocketIo(port, { redisUrl: extra.redisUrl ?? 'redis://127.0.0.1:6379', key: extra.prefix ?? 'herald-bench-sio' });
    default:
      throw new Error(`unknown server kind ${String(kind)}`);
  }
}

const gc = (globalThis as { gc?: () => void }).gc;

const newSpace = (): number => getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')?.space_size ?? 0;

/**
 * RSS and JS heap in use of the idle server, once settled: full GCs, then (at least SETTLE_MIN_MS, at most
 * SETTLE_MAX_MS) until V8's memory reducer has given back the young generation that grew while the
 * connections were opened (it shrinks it a few seconds after allocation stops), so that a constant of up to
 * 32 MiB of semi-space is not counted as per-connection memory. Every server kind is measured the same way.
 */
async function settledMemory(): Promise<{ rss: number; heapUsed: number }> {
  gc?.();
  gc?.();
  const started = Date.now();
  let last = newSpace();
  let stableSince = started;
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    const now = Date.now();
    const size = newSpace();
    if (size !== last) stableSince = now;
    last = size;
    if (now - started >= SETTLE_MAX_MS || (now - started >= SETTLE_MIN_MS && now - stableSince >= 1000)) break;
  }
  gc?.();
  await new Promise((r) => setTimeout(r, 200));
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}
/**
 * What paused this server's event loop since the last ask: full (mark-compact) collections, whose marking shares
 * the pinned core with the event loop, and the longest delay of a 10 ms timer. The same for every kind; a step's
 * p99 that a server's CPU does not explain usually shows here (docs/benchmarks.md, the memory history's chunks).
 */
class Pauses {
  private fullGcs = 0;
  private readonly loop = monitorEventLoopDelay({ resolution: 10 });
  constructor() {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if ((e.detail as { kind?: number } | undefined)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) this.fullGcs++;
    }).observe({ entryTypes: ['gc'] });
    this.loop.enable();
  }
  take(): { fullGcs: number; longestStallMs: number } {
    const r = { fullGcs: this.fullGcs, longestStallMs: Math.round(this.loop.max / 1e6) };
    this.fullGcs = 0;
    this.loop.reset();
    return r;
  }
}
const pauses = new Pauses();
const running = await start();
process.send?.({ type: 'ready', pid: process.pid });
process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'mem') {
    void settledMemory().then((r) => process.send?.({ type: 'mem', ...r }));
  } else if (m.cmd === 'pauses') {
    process.send?.({ type: 'pauses', ...pauses.take() });
  } else if (m.cmd === 'stop') {
    const bye = setTimeout(() => process.exit(0), 5000);
    running.stop().finally(() => {
      clearTimeout(bye);
      process.exit(0);
    });
  }
});
process.on('disconnect', () => process.exit(0));
