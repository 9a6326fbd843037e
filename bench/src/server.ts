/**
 * One benchmark server process (the harness starts it pinned to the server core with taskset):
 * `node dist/server.js <kind> <port> [json options]`. Talks to the harness over IPC: `ready` once
 * listening, `{cmd:'mem'}` answers the RSS after a full GC, `{cmd:'stop'}` shuts down and exits (which
 * also writes a --cpu-prof profile).
 */
import type { Kind } from './kinds.js';
import { startHerald, type HeraldBenchOptions } from './servers/herald.js';
import { startSocketIo } from './servers/socketio.js';
import type { Running } from './servers/types.js';
import { startUwsBaseline } from './servers/uws-baseline.js';
import { startWsBaseline } from './servers/ws-baseline.js';

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
    case 'ws':
      return startWsBaseline(port);
    case 'socket.io':
      return startSocketIo(port);
    case 'uws':
      return startUwsBaseline(port);
    default:
      throw new Error(`unknown server kind ${String(kind)}`);
  }
}

const gc = (globalThis as { gc?: () => void }).gc;
const running = await start();
process.send?.({ type: 'ready', pid: process.pid });
process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'mem') {
    gc?.();
    gc?.();
    setTimeout(() => {
      gc?.();
      process.send?.({ type: 'mem', rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed });
    }, 200);
  } else if (m.cmd === 'stop') {
    const bye = setTimeout(() => process.exit(0), 5000);
    running.stop().finally(() => {
      clearTimeout(bye);
      process.exit(0);
    });
  }
});
process.on('disconnect', () => process.exit(0));
