/**
 * The harness of the tests against a real gateway (the SDK in Node, the demo page in Chromium, several
 * gateway processes): gateways on 127.0.0.1 with the system clock, closed after the test; the HTTP API with
 * the test key; a Signal to wait on events, never a fixed sleep; and an SDK app in Node that records what it
 * saw. Not ../../../server/test/helpers.ts, whose Node-typed fetch body does not type-check under this
 * package's DOM tsconfig; the cleanup stack is the one the server's helpers use.
 */
import WebSocket from 'ws';
import { createGateway, type Gateway } from '../../../server/src/gateway/gateway.js';
import { silentLogger } from '../../../server/src/util/logger.js';
import type { GatewayOptions } from '../../../server/src/gateway/options.js';
import { listenUntilCleanup, onCleanup } from '../../../server/test/support/cleanup.js';
import { TcpProxy } from '../../../server/test/tcp-proxy.js';
import { createClient, type HeraldClient, type HeraldClientOptions, type Logger, type StateChange, type WebSocketConstructor } from '../../src/index.js';
import type { HeraldError } from '../../src/errors.js';

export { listenUntilCleanup, onCleanup };

/** The default timeout of a wait. */
export const WAIT = 20_000;
export const API_KEY = 'test_api_key_0123456789';

// ---- gateways and the HTTP API ---------------------------------------------------------------------

/** Starts a gateway on `port` (0: any free port) with the test key and anonymous clients allowed; closed after the test. */
export async function gatewayOn(port: number, opts: GatewayOptions = {}): Promise<Gateway> {
  const gateway = await createGateway({
    port,
    host: '127.0.0.1',
    apiKeys: [API_KEY],
    allowAnonymous: true,
    logger: silentLogger(),
    shutdownTimeout: 2000,
    ...opts,
  });
  onCleanup(() => gateway.close());
  return gateway;
}

/** A gateway on any free port, with its base URLs. */
export async function startGateway(opts: GatewayOptions = {}): Promise<{ gateway: Gateway; port: number; http: string; ws: string }> {
  const gateway = await gatewayOn(0, opts);
  const { port } = gateway.address();
  return { gateway, port, http: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws` };
}

/** A memory-engine gateway that can be restarted on the same port (losing its history). */
export async function restartableGateway(opts: GatewayOptions = {}): Promise<{ http: string; port: number; restart(): Promise<Gateway> }> {
  let gw = await gatewayOn(0, opts);
  const port = gw.address().port;
  return {
    http: `http://127.0.0.1:${port}`,
    port,
    async restart() {
      await gw.close();
      gw = await gatewayOn(port, opts);
      return gw;
    },
  };
}

/** Calls the HTTP API with the test key (or `key`); returns the status and parsed body. */
export async function api(base: string, method: string, path: string, body?: unknown, key = API_KEY): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

/** Publishes one message; throws on a non-200 answer. */
export async function publish(base: string, body: Record<string, unknown>): Promise<any> {
  const r = await api(base, 'POST', '/api/publish', body);
  if (r.status !== 200) throw new Error(`publish failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A fault-injecting TCP proxy to `port` (../../../server/test/tcp-proxy.ts), closed after the test. */
export async function proxyTo(port: number): Promise<TcpProxy> {
  const proxy = await TcpProxy.start(port);
  onCleanup(() => proxy.close());
  return proxy;
}

// ---- waiting ---------------------------------------------------------------------------------------

/** Wakes waiters whenever something happened; `until` re-checks its condition on every wake-up. */
export class Signal {
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

/** Polls `check` every `everyMs` until it returns a value: for state that has no event to wait on (Redis, other processes). */
export async function poll<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = WAIT, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// ---- the SDK in Node -------------------------------------------------------------------------------

/** What one app saw, in order: messages, subscriptions, recoveries, resets, state changes, errors, warnings. */
export interface AppLog {
  name: string;
  client: HeraldClient;
  /** Notified on everything the app sees. */
  signal: Signal;
  seqs: number[];
  /** `message <seq>`, `recovered since <since> to <seq>`, `reset <reason> <seq>@<epoch> -> <seq>@<epoch>`. */
  events: string[];
  subscribed: number;
  recoveries: Array<{ since: number; seq: number }>;
  /** `<reason> <seq>@<epoch> -> <seq>@<epoch>`. */
  resets: string[];
  states: StateChange[];
  errors: HeraldError[];
  warnings: string[];
  connects: number;
}

/**
 * The Node SDK (packages/client/src with `ws`) on real timers with short retry delays, subscribed to
 * `channel` and connecting; closed after the test. `app.signal` is `app`'s own Signal unless one is given.
 */
export function sdkApp(url: string, channel: string, extra: Partial<HeraldClientOptions> = {}, app: { name?: string; signal?: Signal } = {}): AppLog {
  const signal = app.signal ?? new Signal();
  const warnings: string[] = [];
  const logger: Logger = { debug: () => undefined, warn: (m) => warnings.push(m) };
  const client = createClient({
    url,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    minDelay: 50,
    maxDelay: 500,
    environment: null,
    logger,
    ...extra,
  });
  const log: AppLog = {
    name: app.name ?? 'app',
    client,
    signal,
    seqs: [],
    events: [],
    subscribed: 0,
    recoveries: [],
    resets: [],
    states: [],
    errors: [],
    warnings,
    connects: 0,
  };
  const sub = client.subscribe<{ i: number }>(channel, (m) => {
    log.seqs.push(m.seq);
    log.events.push(`message ${m.seq}`);
    signal.notify();
  });
  sub.on('subscribed', () => {
    log.subscribed += 1;
    signal.notify();
  });
  sub.on('recovered', (e) => {
    log.recoveries.push({ since: e.since, seq: e.seq });
    log.events.push(`recovered since ${e.since} to ${e.seq}`);
    signal.notify();
  });
  sub.on('reset', (e) => {
    const reset = `${e.reason} ${e.previous.seq}@${e.previous.epoch ?? '-'} -> ${e.seq}@${e.epoch}`;
    log.resets.push(reset);
    log.events.push(`reset ${reset}`);
    signal.notify();
  });
  client.on('state', (s) => {
    log.states.push(s);
    signal.notify();
  });
  client.on('connected', () => {
    log.connects += 1;
    signal.notify();
  });
  client.on('error', (e) => {
    log.errors.push(e);
    signal.notify();
  });
  onCleanup(() => client.close());
  client.connect();
  return log;
}
