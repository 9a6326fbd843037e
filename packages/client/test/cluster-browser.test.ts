// The demo page (the minified browser SDK, dist/herald.min.js) in a real headless Chromium against three
// Redis-backed `herald` CLI processes behind a TCP proxy that spreads new connections over the nodes, as
// a load balancer would (skipping a node that refuses). The page is loaded THROUGH the proxy, so its
// WebSocket goes through it too. The node the page is on is killed with `kill -9` while messages are
// published through the other nodes: the page reconnects through the proxy to a live node and shows every
// message published meanwhile, in order, without duplicates and without a reset (issue 4).
// Every wait is on an event (process output, a page binding, waitForFunction), never a fixed sleep.
// Needs `npm run build` (the CLI runs from dist/, the page serves the built bundle) and Redis.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy } from '../../server/test/tcp-proxy.js';

const WAIT = 30_000;
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = 'packages/server/dist/cli.js';
const ARTIFACTS = `${ROOT}test-artifacts/`;
const SCREENSHOT = `${ARTIFACTS}cluster-demo-page.png`;
const REDIS_URL = process.env['HERALD_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const API_KEY = `cluster_browser_${randomBytes(12).toString('hex')}`;
const JWT_SECRET = randomBytes(32).toString('hex');

// ---- harness -------------------------------------------------------------------------------------

const cleanups: Array<() => unknown> = [];
const onCleanup = (fn: () => unknown): void => {
  cleanups.push(fn);
};
afterEach(async () => {
  while (cleanups.length > 0) await (cleanups.pop() as () => unknown)();
});

/** A fresh key prefix; its keys are deleted after the test, once every process is gone (SCAN + DEL). */
function redisPrefix(): { prefix: string; redis: Redis } {
  const prefix = `herald-cluster-browser-${randomBytes(6).toString('hex')}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  onCleanup(async () => {
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  });
  return { prefix, redis };
}

/** The environment of the test process without any HERALD_* variable and without NODE_ENV. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('HERALD_') || k === 'NODE_ENV') continue;
    env[k] = v;
  }
  return env;
}

/** A `herald` CLI process on the Redis engine: `--workers 1 --demo --allow-anonymous`, node id `name`. */
class Node {
  readonly proc: ChildProcess;
  output = '';
  http = '';
  port = 0;
  killed = false;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exitedP: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(
    readonly name: string,
    prefix: string,
  ) {
    this.proc = spawn(process.execPath, [CLI, '--port', '0', '--workers', '1', '--demo', '--allow-anonymous'], {
      cwd: ROOT,
      env: {
        ...baseEnv(),
        HERALD_API_KEY: API_KEY,
        HERALD_JWT_SECRET: JWT_SECRET,
        HERALD_REDIS_URL: REDIS_URL,
        HERALD_REDIS_PREFIX: prefix,
        HERALD_NODE_ID: name,
        HERALD_PRESENCE_TTL_MS: '3000',
        HERALD_SHUTDOWN_TIMEOUT_MS: '2000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout?.setEncoding('utf8');
    this.proc.stderr?.setEncoding('utf8');
    this.proc.stdout?.on('data', (d: string) => (this.output += d));
    this.proc.stderr?.on('data', (d: string) => (this.output += d));
    this.exitedP = new Promise((resolve) => {
      this.proc.once('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    onCleanup(async () => {
      if (this.exit === undefined) {
        this.proc.kill('SIGKILL');
        await this.exitedP;
      }
    });
  }

  /** Resolves with the node once it logs "gateway listening" (an output event, not a poll). */
  listening(): Promise<this> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not start within ${WAIT} ms: ${this.output}`)), WAIT);
      const check = (): void => {
        for (const line of this.output.split('\n')) {
          if (!line.startsWith('{')) continue;
          let log: { msg?: unknown; url?: unknown };
          try {
            log = JSON.parse(line) as { msg?: unknown; url?: unknown };
          } catch {
            continue;
          }
          if (log.msg === 'gateway listening' && typeof log.url === 'string') {
            clearTimeout(timer);
            this.proc.stdout?.off('data', check);
            this.http = log.url;
            this.port = Number(new URL(log.url).port);
            resolve(this);
            return;
          }
        }
      };
      this.proc.stdout?.on('data', check);
      this.exitedP.then(() => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited before listening: ${this.output}`));
      });
      check();
    });
  }

  /** `kill -9`; resolves once the process is gone. */
  async kill9(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.killed = true;
    this.proc.kill('SIGKILL');
    return this.exitedP;
  }
}

/** Calls the HTTP API with the test key; returns the status and parsed body. */
async function api(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

/** Polls `check` until it returns a value: for Redis state, which has no event to wait on. */
async function poll<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = WAIT): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What demo.js exposes as (window as DemoWindow).heraldDemo (the parts the test reads). */
interface DemoState {
  client: { state: string; clientId: string | undefined; on(event: string, fn: (e: any) => void): () => void };
  messages: Array<{ channel: string; seq: number; type: string; payload: Record<string, unknown> }>;
  states: Array<{ from: string; to: string; code?: number; reason?: string }>;
  resets: unknown[];
  errors: string[];
  reconnects: number;
}
/** The page's window (not a global augmentation: browser.test.ts declares its own). */
type DemoWindow = Window & { heraldDemo: DemoState; __heraldEvent?: (kind: string, data: unknown) => void };

/** Page events reported to Node through a binding. */
interface PageEvent {
  kind: 'state' | 'message' | 'reset';
  data: any;
}

class Signal {
  private waiters: Array<() => void> = [];
  notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }
  async until<T>(check: () => T | undefined | false, what: string, timeoutMs = WAIT, describeState?: () => string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check();
      if (v !== undefined && v !== false) return v;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}${describeState ? `: ${describeState()}` : ''}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: process.env['HERALD_CHROMIUM'] ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

/** Opens the demo page at `base` with `query` and reports its client's events to Node. */
async function openDemo(base: string, query: string): Promise<{ page: Page; events: PageEvent[]; signal: Signal; pageErrors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 1000 } });
  onCleanup(() => context.close());
  const page = await context.newPage();
  const events: PageEvent[] = [];
  const signal = new Signal();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => {
    pageErrors.push(e.message);
    signal.notify();
  });
  await page.exposeFunction('__heraldEvent', (kind: PageEvent['kind'], data: unknown) => {
    events.push({ kind, data });
    signal.notify();
  });
  await page.goto(`${base}/?${query}`);
  await page.waitForFunction(() => (window as DemoWindow).heraldDemo?.client !== undefined, undefined, { timeout: WAIT, polling: 50 });
  await page.evaluate(() => {
    const demo = (window as DemoWindow).heraldDemo;
    const report = (kind: string, e: unknown): void => (window as DemoWindow).__heraldEvent?.(kind, e);
    for (const s of demo.states) report('state', s); // what happened before the hook
    demo.client.on('state', (e: unknown) => report('state', e));
    demo.client.on('message', (m: { seq: number; channel: string }) => report('message', { seq: m.seq, channel: m.channel }));
    demo.client.on('reset', (e: unknown) => report('reset', e));
    for (const m of demo.messages) report('message', { seq: m.seq, channel: m.channel });
  });
  return { page, events, signal, pageErrors };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// ---- the test ------------------------------------------------------------------------------------

describe('demo page in Chromium against three Redis-backed gateway processes behind a load-balancing proxy', () => {
  it('kill -9 of the node the page is on: it reconnects through the proxy to a live node and shows every message published meanwhile, in order, once, without a reset', async () => {
    const { prefix, redis } = redisPrefix();
    const nodes = await Promise.all(['node-a', 'node-b', 'node-c'].map((name) => new Node(name, prefix).listening()));
    const proxy = await TcpProxy.start((nodes[0] as Node).port);
    onCleanup(() => proxy.close());
    proxy.setTargets(nodes.map((n) => n.port));

    const channel = `feed-${randomBytes(3).toString('hex')}`;
    const demo = await openDemo(`http://127.0.0.1:${proxy.port}`, `channel=${channel}&ping=500&maxDelay=500`);
    const delivered = (): number[] => demo.events.filter((e) => e.kind === 'message').map((e) => e.data.seq as number);
    const states = (): Array<{ from: string; to: string; code?: number }> => demo.events.filter((e) => e.kind === 'state').map((e) => e.data);
    const connects = (): number => states().filter((s) => s.to === 'connected').length;
    await demo.signal.until(
      () => connects() >= 1,
      'the page to connect',
      WAIT,
      () => JSON.stringify(demo.pageErrors),
    );
    // The page's subscription is confirmed before anything is published, so it must see seq 1 onwards.
    await demo.page.waitForFunction((ch) => ((window as DemoWindow).heraldDemo.client as any).getSubscription(ch)?.state === 'subscribed', channel, {
      timeout: WAIT,
    });

    // Which node the page's WebSocket reached (through the proxy): the engine's presence key of its client id.
    const clientBefore = (await demo.page.evaluate(() => (window as DemoWindow).heraldDemo.client.clientId)) as string;
    const doomedName = await poll(async () => (await redis.get(`${prefix}:client:{${clientBefore}}`)) ?? undefined, 'the page in presence');
    const doomed = nodes.find((n) => n.name === doomedName) as Node;
    expect(doomed, doomedName).toBeDefined();
    const others = nodes.filter((n) => n !== doomed);

    const TOTAL = 200;
    const WINDOW = 40; // the publisher stays at most this far ahead of the page...
    let cutUntil = 0; // ...except during the outage, when it publishes up to this many regardless
    let published = 0;
    let stopped = false;
    onCleanup(() => {
      stopped = true;
      demo.signal.notify();
    });
    const progress = (): string =>
      `published ${published}, page has ${delivered().length}, states ${JSON.stringify(states().map((s) => s.to))}, ` +
      `proxy accepted ${proxy.accepted} rejected ${proxy.rejected} skipped ${proxy.skipped}`;
    // Published through the other nodes only (round-robin), never through the node that dies.
    const publisher = (async () => {
      for (let i = 1; i <= TOTAL; i++) {
        await demo.signal.until(() => stopped || i <= cutUntil || i - delivered().length <= WINDOW, 'room to publish', 60_000, progress);
        if (stopped) return;
        const node = others[i % others.length] as Node;
        const r = await api(node.http, 'POST', '/api/publish', { channel, type: 'tick', payload: { i } });
        if (r.status !== 200) throw new Error(`publish ${i} through ${node.name}: ${r.status} ${JSON.stringify(r.body)}`);
        published = i;
        demo.signal.notify();
      }
    })();
    publisher.catch(() => undefined); // awaited below

    await demo.signal.until(() => delivered().length >= 60, '60 messages before the kill', WAIT, progress);
    // The load balancer refuses for a moment, so that messages are certainly published while the page is away.
    const acceptedBefore = proxy.accepted;
    proxy.mode = 'reject';
    const statesBefore = states().length;
    const exit = await doomed.kill9();
    expect(exit.signal).toBe('SIGKILL');
    cutUntil = Math.min(TOTAL, published + 30);
    demo.signal.notify();
    const lost = await demo.signal.until(
      () =>
        states()
          .slice(statesBefore)
          .find((s) => s.from === 'connected'),
      'the page to lose its node',
      WAIT,
      progress,
    );
    expect(lost.code).toBe(1006);
    await demo.signal.until(() => published >= cutUntil && proxy.rejected >= 1, '30 publishes and a refused reconnect while the page is away', WAIT, progress);
    const missedFrom = delivered().length;
    // The load balancer has not noticed the death: the dead node is still its next choice, and refuses.
    proxy.setTargets([doomed.port, ...others.map((n) => n.port)]);
    proxy.mode = 'forward';

    await demo.signal.until(() => connects() >= 2, 'the page to reconnect through the proxy', WAIT, progress);
    await publisher;
    await demo.signal.until(() => delivered().length >= TOTAL, `${TOTAL} messages on the page`, WAIT, progress);
    await demo.page.waitForFunction((n) => (window as DemoWindow).heraldDemo.messages.length >= n, TOTAL, { timeout: WAIT });

    const view = await demo.page.evaluate(() => ({
      seqs: (window as DemoWindow).heraldDemo.messages.map((m) => m.seq),
      payloads: (window as DemoWindow).heraldDemo.messages.map((m) => m.payload['i']),
      listed: Array.from(document.querySelectorAll('#messages li')).map((li) => ({
        seq: (li as HTMLElement).dataset['seq'] ?? null,
        notice: li.classList.contains('notice'),
      })),
      resets: (window as DemoWindow).heraldDemo.resets,
      errors: (window as DemoWindow).heraldDemo.errors,
      state: document.getElementById('state')?.textContent ?? '',
      log: document.getElementById('log')?.textContent ?? '',
      clientId: (window as DemoWindow).heraldDemo.client.clientId,
    }));
    expect(delivered()).toEqual(range(1, TOTAL));
    expect(view.seqs).toEqual(range(1, TOTAL));
    expect(view.payloads).toEqual(range(1, TOTAL));
    expect(view.listed.map((l) => Number(l.seq))).toEqual(range(1, TOTAL));
    expect(view.listed.some((l) => l.notice)).toBe(false);
    expect(view.resets).toEqual([]);
    expect(demo.events.filter((e) => e.kind === 'reset')).toEqual([]);
    expect(view.errors).toEqual([]);
    expect(view.state).toBe('connected');
    // It resumed from history: what was published while it was away came in a recovery, not live.
    expect(missedFrom).toBeLessThanOrEqual(cutUntil - 30);
    expect(view.log).toMatch(/recovered missed messages after seq \d+/);
    // It came back through the proxy, which skipped the dead node when its turn came, onto a live node.
    expect(connects()).toBeGreaterThanOrEqual(2);
    expect(proxy.accepted).toBeGreaterThan(acceptedBefore);
    expect(proxy.skipped).toBeGreaterThanOrEqual(1);
    expect(view.clientId).toBeTypeOf('string');
    expect(view.clientId).not.toBe(clientBefore);
    const nodeAfter = await poll(async () => (await redis.get(`${prefix}:client:{${view.clientId as string}}`)) ?? undefined, 'the page in presence again');
    expect(others.map((n) => n.name)).toContain(nodeAfter);
    expect(demo.pageErrors).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    await demo.page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.info(
      `cluster demo page: on ${doomed.name}, killed, back on ${nodeAfter}; missed from seq ${missedFrom} while away; ` +
        `proxy accepted ${proxy.accepted}, rejected ${proxy.rejected}, skipped a dead target ${proxy.skipped} times`,
    );
  }, 90_000);
});
