/**
 * Idle memory per subscribed connection, Herald beside the minimal `ws` (and uWebSockets.js) servers in one run:
 * N connections each in its own user channel (Herald: a token, so `user:<id>`; the baselines: a subscribe to
 * `user:<id>`), RSS read a few seconds after the last subscribe (as an operator sees it) and once settled (full
 * GCs, the young generation given back), both against the settled RSS before the N connections.
 *
 *   node packages/server/scripts/idle-memory.mjs [N] [kinds, default herald,ws,herald-uws,uws]
 *   REPS=3 ...       each kind 3 times, interleaved, then the medians
 *   HEAPSNAP=1 ...   also writes a heap snapshot of each settled server (node --heapsnapshot-signal) in /tmp
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { openMany, type Subscription } from '../../../bench/src/client.js';
import { tokenFor } from '../../../bench/src/jwt.js';
import type { Kind } from '../../../bench/src/kinds.js';

const N = Number(process.argv[2] ?? 5000);
const kinds = (process.argv[3] ?? 'herald,ws,herald-uws,uws').split(',') as Kind[];
// Bundled into bench/dist/ beside the bench's server.js (idle-memory.mjs).
const SERVER = new URL('./server.js', import.meta.url).pathname;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const rssOf = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

interface Reading {
  early: number;
  settled: number;
  heap: number;
}

async function measure(kind: Kind, port: number): Promise<Reading> {
  const child = fork(SERVER, [kind, String(port)], {
    execArgv: ['--expose-gc', ...(process.env['HEAPSNAP'] ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=/tmp`] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = <T>(type: string): Promise<T> => new Promise((resolve) => child.on('message', (m: { type: string }) => m.type === type && resolve(m as T)));
  await next('ready');
  const mem = async (): Promise<{ rss: number; heapUsed: number }> => {
    const p = next<{ rss: number; heapUsed: number }>('mem');
    child.send({ cmd: 'mem' });
    return p;
  };
  const herald = kind.startsWith('herald');
  const subs = (from: number, n: number): Subscription[] =>
    Array.from({ length: n }, (_, i) => (herald ? { token: tokenFor(`u${from + i}`) } : { channel: `user:u${from + i}` }));
  const warm = await openMany(kind, port, subs(1_000_000, 300), 100);
  for (const c of warm) c.destroy();
  const before = await mem();
  const clients = await openMany(kind, port, subs(0, N), 200);
  await sleep(3000);
  const early = rssOf(child.pid as number);
  const settled = await mem();
  if (process.env['HEAPSNAP']) {
    child.kill('SIGUSR2');
    await sleep(8000);
  }
  const closed = clients.filter((c) => c.closed).length;
  const kb = (b: number): string => (b / N / 1024).toFixed(2);
  console.log(
    `${kind.padEnd(11)} N=${N} RSS +3s ${kb(early - before.rss)} KB/conn, settled ${kb(settled.rss - before.rss)} KB/conn, JS heap ${kb(settled.heapUsed - before.heapUsed)} KB/conn${closed ? ` (${closed} closed!)` : ''}`,
  );
  for (const c of clients) c.destroy();
  child.send({ cmd: 'stop' });
  await new Promise((r) => child.once('exit', r));
  return { early: (early - before.rss) / N, settled: (settled.rss - before.rss) / N, heap: (settled.heapUsed - before.heapUsed) / N };
}

// REPS=n repeats the kinds in turn (interleaved, so drift on a busy machine hits all alike) and ends with medians.
const reps = Number(process.env['REPS'] ?? 1);
let port = 19_400 + Math.floor(Math.random() * 500);
const all = new Map<Kind, Reading[]>(kinds.map((k) => [k, []]));
for (let r = 0; r < reps; r++) for (const kind of kinds) all.get(kind)?.push(await measure(kind, port++));
if (reps > 1) {
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  for (const [kind, rs] of all) {
    const f = (pick: (r: Reading) => number): string => (median(rs.map(pick)) / 1024).toFixed(2);
    console.log(
      `median of ${reps}: ${kind.padEnd(11)} RSS +3s ${f((r) => r.early)} KB/conn, settled ${f((r) => r.settled)} KB/conn, JS heap ${f((r) => r.heap)} KB/conn`,
    );
  }
}
