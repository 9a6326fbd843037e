/** Starting and stopping benchmark servers pinned to the server core, and cleaning up after them. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Kind } from './kinds.js';

export const SERVER_CORE = '0';
export const LOAD_CORE = '1';
export const REDIS_URL = process.env['HERALD_BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

const serverScript = fileURLToPath(new URL('./server.js', import.meta.url));
/**
 * Server ports come from below the kernel's ephemeral range: the load generator's own sockets (10 000 of
 * them, plus those in TIME_WAIT) take ports from that range, and a server port inside it can be taken.
 */
const EPHEMERAL_LOW = ((): number => {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  } catch {
    return 32768;
  }
})();
const PORT_LOW = 10000;
const PORT_SPAN = Math.max(1000, EPHEMERAL_LOW - PORT_LOW);
let nextPort = PORT_LOW + Math.floor(Math.random() * PORT_SPAN);
const freshPort = (): number => {
  const p = nextPort;
  nextPort = PORT_LOW + ((nextPort + 1 - PORT_LOW) % PORT_SPAN);
  return p;
};
let runId = 0;
let defaultProfileDir: string | undefined;

/** Every server started from now on writes a V8 CPU profile into `dir` (`--profile`). */
export function profileServersInto(dir: string): void {
  defaultProfileDir = dir;
}

export interface Pauses {
  fullGcs: number;
  longestStallMs: number;
}

export interface ServerProc {
  kind: Kind;
  port: number;
  pid: number;
  child: ChildProcess;
  /** Redis key prefix this server used (deleted on stop). */
  prefix?: string;
  /** RSS and JS heap in use after a full GC, in bytes. */
  mem(): Promise<{ rss: number; heapUsed: number }>;
  /** Full GCs and the longest event-loop stall (ms) since the last call (server.ts, Pauses). */
  pauses(): Promise<Pauses>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Write a V8 CPU profile into this directory. */
  profileDir?: string;
  /** Share a Redis prefix with another node (cluster). */
  prefix?: string;
  port?: number;
  /** Pin to this core instead of SERVER_CORE (the cluster's one node per core). */
  core?: string;
}

/**
 * Starts `kind` on a fresh port (fresh ports keep TIME_WAIT sockets of earlier runs out of the way); a
 * server that exits before it is ready (a port someone else took meanwhile) is tried again on another.
 */
export async function startServer(kind: Kind, opts: StartOptions = {}): Promise<ServerProc> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(kind, opts);
    } catch (err) {
      if (opts.port !== undefined || attempt >= 3) throw err;
      console.log(`  ${kind}: ${(err as Error).message}; trying another port`);
    }
  }
}

function startOnce(kind: Kind, opts: StartOptions): Promise<ServerProc> {
  const port = opts.port ?? freshPort();
  const prefix = usesRedis(kind) ? (opts.prefix ?? `herald-bench-${process.pid}-${++runId}`) : undefined;
  const profileDir = opts.profileDir ?? defaultProfileDir;
  // HERALD_BENCH_NODE_ARGS: more flags for every server's node (e.g. --trace-gc), for a look inside a run.
  const more = (process.env['HERALD_BENCH_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
  const nodeArgs = [
    '--expose-gc',
    ...more,
    ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${kind}-${port}.cpuprofile`] : []),
  ];
  const extra = JSON.stringify({ ...(prefix ? { prefix, redisUrl: REDIS_URL } : {}) });
  const child = spawn('taskset', ['-c', opts.core ?? SERVER_CORE, process.execPath, ...nodeArgs, serverScript, kind, String(port), extra], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null): void => reject(new Error(`${kind} server exited early (${code})`));
    child.once('exit', onExit);
    child.once('message', (m: { type: string }) => {
      if (m.type !== 'ready') return;
      child.off('exit', onExit);
      const proc: ServerProc = {
        kind,
        port,
        pid: child.pid as number,
        child,
        ...(prefix ? { prefix } : {}),
        mem: () =>
          new Promise((res) => {
            const on = (r: { type: string; rss: number; heapUsed: number }): void => {
              if (r.type !== 'mem') return;
              child.off('message', on);
              res({ rss: r.rss, heapUsed: r.heapUsed });
            };
            child.on('message', on);
            child.send({ cmd: 'mem' });
          }),
        pauses: () =>
          new Promise((res) => {
            const on = (r: { type: string } & Pauses): void => {
              if (r.type !== 'pauses') return;
              child.off('message', on);
              res({ fullGcs: r.fullGcs, longestStallMs: r.longestStallMs });
            };
            child.on('message', on);
            child.send({ cmd: 'pauses' });
          }),
        stop: async () => {
          if (child.exitCode === null) {
            const exited = new Promise((res) => child.once('exit', res));
            child.send({ cmd: 'stop' });
            const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
            await exited;
            clearTimeout(t);
          }
          if (prefix && !opts.prefix) deleteRedisPrefix(prefix);
        },
      };
      resolve(proc);
    });
  });
}

/** Deletes every Redis key whose name starts with `prefix` followed by `:` (or with `prefix` when it ends in `-`). */
export function deleteRedisPrefix(prefix: string): void {
  const script = `for _,k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 1`;
  spawnSync('redis-cli', ['-u', REDIS_URL, 'EVAL', script, '0', prefix.endsWith('-') ? `${prefix}*` : `${prefix}:*`], { stdio: 'ignore' });
}

/** The kinds that need the bench's Redis (each server gets a key prefix of its own). */
export function usesRedis(kind: Kind): boolean {
  return kind === 'herald-redis' || kind === 'socket.io-redis';
}

/** PID of the local redis-server, to report its CPU (it is not pinned: it is a shared service). */
export function redisPid(): number | undefined {
  const r = spawnSync('pidof', ['redis-server'], { encoding: 'utf8' });
  const pid = Number(r.stdout.trim().split(/\s+/)[0]);
  return Number.isFinite(pid) && pid > 0 ? pid : undefined;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
