/**
 * The CLI as operators run it: `node packages/server/bin/herald.js` in a child process with a clean
 * environment (no HERALD_* variable and no NODE_ENV but what the test sets). Its output is collected as it
 * comes; waits are on output chunks and the exit, never a poll; the URLs come from its "gateway listening"
 * log line. Whatever happens to the test, no process outlives it (SIGKILL after the test).
 * The CLI runs from dist/: call `buildCli` in a beforeAll, or `npm run build` first.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { REDIS_URL } from '../redis-helpers.js';
import { onCleanup } from './cleanup.js';

/** The repository root (the CLI's working directory). */
export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CLI = 'packages/server/bin/herald.js';
const WAIT = 20_000;

/** Builds the server (`tsc -b`, a no-op when up to date) so that a test never runs a stale CLI. */
export function buildCli(): void {
  execFileSync('node_modules/.bin/tsc', ['-b', 'packages/server'], { cwd: ROOT, stdio: 'pipe' });
}

/** The environment of the test process without any HERALD_* variable and without NODE_ENV. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('HERALD_') || k === 'NODE_ENV') continue;
    env[k] = v;
  }
  return env;
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface HeraldProcessOptions {
  /** Names the process in error messages (default `herald`). */
  name?: string;
  /** The default timeout of `waitFor`, `listening` and `exited` (default 20 s). */
  timeoutMs?: number | undefined;
  /** Written to its stdin, which is then closed (default: no stdin). */
  stdin?: string;
}

/** A running `herald` child process: its stdout (and lines), its stderr, its exit, and (once listening) its URLs. */
export class HeraldProcess {
  readonly proc: ChildProcess;
  readonly name: string;
  stdout = '';
  stderr = '';
  readonly lines: string[] = [];
  exitCode: number | null | undefined;
  exitSignal: NodeJS.Signals | null = null;
  /** Set by `listening()`: the base URL, the first WebSocket URL, and the port. */
  http = '';
  ws = '';
  port = 0;
  /** Set the moment the test sends SIGKILL, before the process is gone: a load balancer's view. */
  killed = false;
  private readonly timeoutMs: number;
  private readonly exitedP: Promise<Exit>;
  private waiters: Array<() => void> = [];
  private partial = '';

  constructor(args: string[], env: Record<string, string> = {}, opts: HeraldProcessOptions = {}) {
    this.name = opts.name ?? 'herald';
    this.timeoutMs = opts.timeoutMs ?? WAIT;
    this.proc = spawn(process.execPath, [CLI, ...args], {
      cwd: ROOT,
      env: { ...cleanEnv(), ...env },
      stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    this.proc.stdout?.setEncoding('utf8');
    this.proc.stderr?.setEncoding('utf8');
    this.proc.stdout?.on('data', (d: string) => {
      this.stdout += d;
      this.partial += d;
      const parts = this.partial.split('\n');
      this.partial = parts.pop() ?? '';
      this.lines.push(...parts);
      this.wake();
    });
    this.proc.stderr?.on('data', (d: string) => {
      this.stderr += d;
      this.wake();
    });
    // 'close' fires after the process exited and its stdio streams ended: every output byte is in.
    this.exitedP = new Promise((resolve) => {
      this.proc.once('close', (code, signal) => {
        if (this.partial !== '') this.lines.push(this.partial);
        this.partial = '';
        this.exitCode = code;
        this.exitSignal = signal;
        this.wake();
        resolve({ code, signal });
      });
    });
    if (opts.stdin !== undefined) {
      this.proc.stdin?.on('error', () => undefined); // EPIPE when it exits without reading
      this.proc.stdin?.end(opts.stdin);
    }
    onCleanup(async () => {
      if (this.exitCode === undefined) {
        this.proc.kill('SIGKILL');
        await this.exitedP;
      }
    });
  }

  /** Not killed by the test and not exited. */
  get alive(): boolean {
    return !this.killed && this.exitCode === undefined;
  }

  /** `kill -9`. */
  kill9(): boolean {
    this.killed = true;
    return this.proc.kill('SIGKILL');
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }

  private tail(): string {
    return `stderr: ${this.stderr.slice(-2000)}; stdout: ${this.stdout.slice(-2000)}`;
  }

  /** Waits until `check` returns a value, re-checking on every output chunk and on exit. */
  async waitFor<T>(check: () => T | undefined, what: string, timeoutMs = this.timeoutMs): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check();
      if (v !== undefined) return v;
      if (this.exitCode !== undefined) throw new Error(`${this.name} exited (${this.exitCode}) while waiting for ${what}; ${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: timed out waiting for ${what}; ${this.tail()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** JSON log lines parsed so far (lines that are not JSON are skipped). */
  logs(): LogLine[] {
    const out: LogLine[] = [];
    for (const l of this.lines) {
      if (!l.startsWith('{')) continue;
      try {
        out.push(JSON.parse(l) as LogLine);
      } catch {
        /* not a log line */
      }
    }
    return out;
  }

  /** Waits for the "gateway listening" log line and takes the URLs it announces (its first WebSocket path, else /ws). */
  async listening(): Promise<this> {
    const log = await this.waitFor(() => this.logs().find((l) => l.msg === 'gateway listening'), 'the "gateway listening" log line');
    const url = log['url'];
    if (typeof url !== 'string') throw new Error(`no url in ${JSON.stringify(log)}`);
    const paths = log['wsPaths'];
    const wsPath = Array.isArray(paths) && typeof paths[0] === 'string' ? paths[0] : '/ws';
    this.http = url;
    this.ws = `${url.replace(/^http/, 'ws')}${wsPath}`;
    this.port = Number(new URL(url).port);
    return this;
  }

  /** Waits for the process to exit and returns its code and signal. */
  exited(timeoutMs = this.timeoutMs): Promise<Exit> {
    return Promise.race([
      this.exitedP,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms; ${this.tail()}`)), timeoutMs).unref(),
      ),
    ]);
  }
}

/** Runs the CLI to completion (stdin: `stdin`, then closed) and returns its exit code and output. */
export async function runCli(args: string[], env: Record<string, string> = {}, stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const h = new HeraldProcess(args, env, { stdin });
  const { code } = await h.exited();
  return { code, stdout: h.stdout, stderr: h.stderr };
}

/**
 * Starts one single-process node on the Redis engine (`--port 0 --workers 1 --allow-anonymous`, node id
 * `name`, key prefix `prefix`, presence TTL 3 s, shutdown timeout 2 s; `env` adds or overrides); resolves
 * once it listens.
 */
export function startRedisNode(
  name: string,
  prefix: string,
  opts: { args?: string[]; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HeraldProcess> {
  const args = ['--port', '0', '--workers', '1', '--allow-anonymous', ...(opts.args ?? [])];
  const env = {
    HERALD_REDIS_URL: REDIS_URL,
    HERALD_REDIS_PREFIX: prefix,
    HERALD_NODE_ID: name,
    HERALD_PRESENCE_TTL_MS: '3000',
    HERALD_SHUTDOWN_TIMEOUT_MS: '2000',
    ...opts.env,
  };
  return new HeraldProcess(args, env, { name, timeoutMs: opts.timeoutMs }).listening();
}

/** A port that was free a moment ago (for a process to take). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}
