// The demo page (the minified browser SDK, dist/herald.min.js) in a real headless Chromium, loaded through
// a fault-injecting TCP proxy so that its WebSocket goes through the proxy too: HTTP publishes reach the
// page; a dropped connection, a silently dead one and a gateway restart are each survived, with missed
// messages recovered in order and lost history reported. Every wait is on an event (a page binding or
// waitForFunction), never a fixed sleep. Needs `npm run build` (the page serves the built bundle).
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../../server/src/gateway.js';
import { silentLogger } from '../../server/src/logger.js';
import type { GatewayOptions } from '../../server/src/options.js';
import { TcpProxy } from '../../server/test/tcp-proxy.js';

const WAIT = 20_000;
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));
const SCREENSHOT = `${ARTIFACTS}demo-page.png`;

// ---- harness -------------------------------------------------------------------------------------
// Self-contained (not ../../server/test/helpers.ts, whose Node-typed fetch does not type-check under this
// package's DOM tsconfig): gateways on 127.0.0.1 with the system clock, cleanup after each test, publish.

const API_KEY = 'test_api_key_0123456789';
const cleanups: Array<() => unknown> = [];
const onCleanup = (fn: () => unknown): void => {
  cleanups.push(fn);
};
afterEach(async () => {
  while (cleanups.length > 0) await (cleanups.pop() as () => unknown)();
});

/** Starts a gateway on `port` (0: any free port), closed after the test. */
async function gatewayOn(port: number, opts: GatewayOptions = {}): Promise<Gateway> {
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

/** Calls the HTTP API with the test key; returns the status and parsed body. */
async function api(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

/** Publishes one message; throws on a non-200 answer. */
async function publish(base: string, body: Record<string, unknown>): Promise<any> {
  const r = await api(base, 'POST', '/api/publish', body);
  if (r.status !== 200) throw new Error(`publish failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A memory-engine gateway that can be restarted on the same port (losing its history). */
async function restartableGateway(opts: GatewayOptions = {}): Promise<{ http: string; port: number; restart(): Promise<Gateway> }> {
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

/** What demo.js exposes as window.heraldDemo (the parts the tests read). */
interface DemoMessage {
  channel: string;
  seq: number;
  type: string;
  payload: Record<string, unknown>;
}
interface DemoState {
  client: { state: string; clientId: string | undefined; on(event: string, fn: (e: any) => void): () => void };
  messages: DemoMessage[];
  states: Array<{ from: string; to: string; code?: number; reason?: string }>;
  resets: Array<{ reason: string; seq: number; epoch: string; previous: { seq: number; epoch?: string } }>;
  errors: string[];
  reconnects: number;
}
declare global {
  interface Window {
    heraldDemo: DemoState;
    __heraldEvent?: (kind: string, data: unknown) => void;
  }
}

/** Page events reported to Node through a binding, with the page's Date.now() (same machine clock). */
interface PageEvent {
  kind: 'state' | 'message' | 'reset';
  data: any;
  at: number;
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

interface DemoPage {
  page: Page;
  events: PageEvent[];
  signal: Signal;
  pageErrors: string[];
  /** Seqs the page's app handler received, as reported by the binding (in order). */
  delivered(): number[];
  states(): PageEvent[];
}

let browser: Browser;

beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: process.env.HERALD_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

/** A memory-engine gateway serving the demo page, restartable on the same port. */
const demoGateway = () => restartableGateway({ demo: true, demoApiKey: API_KEY });

async function proxyTo(port: number): Promise<TcpProxy> {
  const proxy = await TcpProxy.start(port);
  onCleanup(() => proxy.close());
  return proxy;
}

/** Opens the demo page at `base` with `query`, and hooks its client's events to Node. */
async function openDemo(base: string, query: string): Promise<DemoPage> {
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
  await page.exposeFunction('__heraldEvent', (kind: PageEvent['kind'], data: { at: number; e: unknown }) => {
    events.push({ kind, data: data.e, at: data.at });
    signal.notify();
  });
  await page.goto(`${base}/?${query}`);
  // Fails at once when the page throws (for example while creating its client) instead of timing out.
  let ready = false;
  const started = page.waitForFunction(() => window.heraldDemo?.client !== undefined, undefined, { timeout: WAIT, polling: 50 });
  started.catch(() => undefined);
  const failed = signal
    .until(() => ready || pageErrors.length > 0, 'the page to start or fail', WAIT + 1000)
    .then(() => {
      if (!ready) throw new Error(`the demo page failed to start: ${JSON.stringify(pageErrors)}`);
    });
  failed.catch(() => undefined);
  await Promise.race([started, failed]);
  ready = true;
  signal.notify();
  await page.evaluate(() => {
    const demo = window.heraldDemo;
    const report = (kind: string, e: unknown): void => window.__heraldEvent?.(kind, { at: Date.now(), e });
    for (const s of demo.states) report('state', s); // what happened before the hook
    demo.client.on('state', (e: { from: string; to: string; code?: number; reason?: string }) => report('state', e));
    demo.client.on('message', (m: { seq: number; channel: string }) => report('message', { seq: m.seq, channel: m.channel }));
    demo.client.on('reset', (e: unknown) => report('reset', e));
    for (const m of demo.messages) report('message', { seq: m.seq, channel: m.channel });
  });
  const dp: DemoPage = {
    page,
    events,
    signal,
    pageErrors,
    delivered: () => events.filter((e) => e.kind === 'message').map((e) => e.data.seq as number),
    states: () => events.filter((e) => e.kind === 'state'),
  };
  return dp;
}

const connectedCount = (p: DemoPage): number => p.states().filter((s) => s.data.to === 'connected').length;
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** What the page itself recorded and rendered: window.heraldDemo.messages and the #messages list. */
async function pageView(page: Page): Promise<{ seqs: number[]; listed: Array<{ seq: string | null; notice: boolean; text: string }>; state: string }> {
  return page.evaluate(() => ({
    seqs: window.heraldDemo.messages.map((m) => m.seq),
    listed: Array.from(document.querySelectorAll('#messages li')).map((li) => ({
      seq: (li as HTMLElement).dataset.seq ?? null,
      notice: li.classList.contains('notice'),
      text: li.textContent ?? '',
    })),
    state: document.getElementById('state')?.textContent ?? '',
  }));
}

async function screenshot(page: Page): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
}

describe('demo page in Chromium, through a fault-injecting proxy', () => {
  it('receives a message published with the HTTP API (curl-style and from its own publish form)', async () => {
    const gw = await demoGateway();
    const proxy = await proxyTo(gw.port);
    const demo = await openDemo(`http://127.0.0.1:${proxy.port}`, 'channel=news&ping=500&maxDelay=1000');
    await demo.signal.until(
      () => connectedCount(demo) >= 1,
      'the page to connect',
      WAIT,
      () => JSON.stringify(demo.pageErrors),
    );

    await publish(gw.http, { channel: 'news', type: 'note', payload: { text: 'hello from the API 👋 你好' } });
    await demo.signal.until(() => demo.delivered().length >= 1, 'the published message on the page');

    // The form is prefilled with the channel and the demoApiKey; it publishes through the proxy.
    await demo.page.fill('#pub-payload', '{"text":"from the form"}');
    await demo.page.click('#publish button[type=submit]');
    await demo.signal.until(() => demo.delivered().length >= 2, 'the message published by the form');
    await demo.page.waitForFunction(() => document.getElementById('result')?.textContent?.startsWith('published'), undefined, { timeout: WAIT });

    const view = await pageView(demo.page);
    expect(view.state).toBe('connected');
    expect(await demo.page.evaluate(() => window.heraldDemo.messages)).toEqual([
      { channel: 'news', seq: 1, type: 'note', payload: { text: 'hello from the API 👋 你好' } },
      { channel: 'news', seq: 2, type: 'note', payload: { text: 'from the form' } },
    ]);
    expect(view.listed.map((l) => l.seq)).toEqual(['1', '2']);
    expect(view.listed[0]?.text).toContain('hello from the API 👋 你好');
    expect(await demo.page.textContent('#channel')).toBe('news');
    expect(demo.pageErrors).toEqual([]);
    await screenshot(demo.page);
  }, 60_000);

  it('reconnects after the proxy drops the connection while messages keep being published, and shows the missed ones in order without duplicates', async () => {
    const gw = await demoGateway();
    const proxy = await proxyTo(gw.port);
    const demo = await openDemo(`http://127.0.0.1:${proxy.port}`, 'channel=feed&ping=500&maxDelay=1000');
    await demo.signal.until(
      () => connectedCount(demo) >= 1,
      'the page to connect',
      WAIT,
      () => JSON.stringify(demo.pageErrors),
    );

    const TOTAL = 200;
    const WINDOW = 40; // the publisher stays at most this far ahead of the page...
    let cutUntil = 0; // ...except during the cut
    let published = 0;
    let stopped = false;
    onCleanup(() => {
      stopped = true;
      demo.signal.notify();
    });
    const progress = (): string => `published ${published}, page has ${demo.delivered().length}, states ${JSON.stringify(demo.states().map((s) => s.data.to))}`;
    const publisher = (async () => {
      for (let i = 1; i <= TOTAL; i++) {
        await demo.signal.until(() => stopped || i <= cutUntil || i - demo.delivered().length <= WINDOW, 'room to publish', 120_000);
        if (stopped) return;
        await publish(gw.http, { channel: 'feed', type: 'tick', payload: { i } });
        published = i;
        demo.signal.notify();
      }
    })();
    publisher.catch(() => undefined); // awaited below

    await demo.signal.until(() => demo.delivered().length >= 40, '40 messages before the cut', WAIT, progress);
    const acceptedBefore = proxy.accepted;
    proxy.mode = 'reject';
    expect(proxy.dropAll()).toBeGreaterThanOrEqual(1);
    cutUntil = Math.min(TOTAL, published + 30);
    demo.signal.notify();
    await demo.signal.until(() => published >= cutUntil, '30 publishes while the page is cut off', WAIT, progress);
    proxy.mode = 'forward';

    await publisher;
    await demo.signal.until(() => demo.delivered().length >= TOTAL, `${TOTAL} messages on the page`, WAIT, progress);
    await demo.page.waitForFunction((n) => window.heraldDemo.messages.length >= n, TOTAL, { timeout: WAIT });

    const view = await pageView(demo.page);
    expect(demo.delivered()).toEqual(range(1, TOTAL));
    expect(view.seqs).toEqual(range(1, TOTAL));
    expect(view.listed.map((l) => Number(l.seq))).toEqual(range(1, TOTAL));
    expect(view.listed.some((l) => l.notice)).toBe(false);
    expect(view.state).toBe('connected');
    expect(connectedCount(demo)).toBeGreaterThanOrEqual(2);
    expect(proxy.accepted).toBeGreaterThan(acceptedBefore); // it came back through the proxy
    expect(await demo.page.evaluate(() => window.heraldDemo.reconnects)).toBeGreaterThanOrEqual(1);
    expect(await demo.page.evaluate(() => window.heraldDemo.resets)).toEqual([]);
    expect(await demo.page.textContent('#log')).toMatch(/recovered missed messages after seq \d+/);
    expect(demo.pageErrors).toEqual([]);
  }, 60_000);

  it('detects a silently dead connection (proxy stops forwarding, nothing is closed) within two ping intervals and reconnects', async () => {
    const PING = 500;
    const gw = await demoGateway();
    const proxy = await proxyTo(gw.port);
    const demo = await openDemo(`http://127.0.0.1:${proxy.port}`, `channel=quiet&ping=${PING}&maxDelay=1000`);
    await demo.signal.until(
      () => connectedCount(demo) >= 1,
      'the page to connect',
      WAIT,
      () => JSON.stringify(demo.pageErrors),
    );
    for (let i = 1; i <= 3; i++) await publish(gw.http, { channel: 'quiet', type: 't', payload: { i } });
    await demo.signal.until(() => demo.delivered().length >= 3, '3 messages');

    const acceptedBefore = proxy.accepted;
    const clientBefore = await demo.page.evaluate(() => window.heraldDemo.client.clientId);
    const statesBefore = demo.states().length;
    const frozenAt = Date.now();
    expect(proxy.freeze()).toBeGreaterThanOrEqual(1);
    // Published into the dead connection: the server believes it delivered it.
    await publish(gw.http, { channel: 'quiet', type: 't', payload: { i: 4 } });

    const lost = await demo.signal.until(
      () =>
        demo
          .states()
          .slice(statesBefore)
          .find((s) => s.data.to === 'disconnected'),
      'the page to notice the dead connection',
      WAIT,
    );
    expect(lost.data.code).toBe(4002);
    const detectedAfter = lost.at - frozenAt;
    console.info(`silent death detected ${detectedAfter} ms after the freeze (ping interval ${PING} ms)`);
    expect(detectedAfter).toBeLessThanOrEqual(2 * PING + 3000);

    await demo.signal.until(
      () =>
        demo
          .states()
          .slice(statesBefore)
          .some((s) => s.data.to === 'connected'),
      'the page to reconnect through a new proxied connection',
      WAIT,
    );
    expect(proxy.accepted).toBeGreaterThan(acceptedBefore);
    const clientAfter = await demo.page.evaluate(() => window.heraldDemo.client.clientId);
    expect(clientAfter).toBeTypeOf('string');
    expect(clientAfter).not.toBe(clientBefore);
    expect(await demo.page.textContent('#client')).toBe(clientAfter);
    await demo.signal.until(() => demo.delivered().length >= 4, 'the message sent into the dead connection');
    const view = await pageView(demo.page);
    expect(view.seqs).toEqual([1, 2, 3, 4]);
    expect(view.state).toBe('connected');
    expect(await demo.page.textContent('#close')).toContain('4002');
    expect(demo.pageErrors).toEqual([]);
  }, 60_000);

  it('reconnects after the gateway restarts and says that history was lost', async () => {
    const gw = await demoGateway();
    const proxy = await proxyTo(gw.port);
    const demo = await openDemo(`http://127.0.0.1:${proxy.port}`, 'channel=orders&ping=500&maxDelay=1000');
    await demo.signal.until(
      () => connectedCount(demo) >= 1,
      'the page to connect',
      WAIT,
      () => JSON.stringify(demo.pageErrors),
    );
    for (let i = 1; i <= 3; i++) await publish(gw.http, { channel: 'orders', type: 'order', payload: { i } });
    await demo.signal.until(() => demo.delivered().length >= 3, '3 messages');
    const epoch1 = await demo.page.evaluate(() => (window.heraldDemo.client as any).getSubscription('orders')?.position?.epoch as string);

    await gw.restart();
    await demo.signal.until(() => connectedCount(demo) >= 2, 'the page to reconnect to the new gateway', WAIT);
    await demo.signal.until(() => demo.events.some((e) => e.kind === 'reset'), 'the page to be told that history was lost', WAIT);
    expect(demo.states().find((s) => s.data.from === 'connected')?.data.code).toBe(1012);

    const resets = await demo.page.evaluate(() => window.heraldDemo.resets);
    expect(resets).toHaveLength(1);
    expect(resets[0]).toMatchObject({ reason: 'epoch_changed', seq: 0, previous: { seq: 3, epoch: epoch1 } });
    expect(resets[0]?.epoch).not.toBe(epoch1);

    // A message of the new epoch is shown after the notice.
    await publish(gw.http, { channel: 'orders', type: 'order', payload: { i: 4 } });
    await demo.signal.until(() => demo.delivered().length >= 4, 'a message after the restart');
    await demo.page.waitForFunction(() => window.heraldDemo.messages.length >= 4, undefined, { timeout: WAIT });
    const view = await pageView(demo.page);
    expect(view.seqs).toEqual([1, 2, 3, 1]);
    expect(view.listed.map((l) => (l.notice ? 'notice' : l.seq))).toEqual(['1', '2', '3', 'notice', '1']);
    expect(view.listed[3]?.text).toMatch(/history was lost/i);
    expect(await demo.page.textContent('#log')).toMatch(/history lost on orders/i);
    expect(view.state).toBe('connected');
    expect(demo.pageErrors).toEqual([]);
    await screenshot(demo.page);
  }, 60_000);

  it('accepts ?ping=500&maxDelay=500 (short delays for tests) and connects', async () => {
    const gw = await demoGateway();
    const proxy = await proxyTo(gw.port);
    const demo = await openDemo(`http://127.0.0.1:${proxy.port}`, 'channel=short&ping=500&maxDelay=500');
    await demo.signal.until(() => connectedCount(demo) >= 1 || demo.pageErrors.length > 0, 'the page to connect or fail', WAIT);
    expect(demo.pageErrors).toEqual([]);
    expect((await pageView(demo.page)).state).toBe('connected');
  }, 60_000);
});
