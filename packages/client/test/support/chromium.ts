/**
 * Headless Chromium for the browser tests: one browser per test file (HERALD_CHROMIUM, else
 * /usr/bin/chromium), pages in contexts of their own that record uncaught errors, the demo page's client
 * events reported to Node through a binding, and screenshots kept in test-artifacts/.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { onCleanup, Signal, WAIT } from './harness.js';

const ARTIFACTS = fileURLToPath(new URL('../../../../test-artifacts/', import.meta.url));

/** Launches headless Chromium. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env['HERALD_CHROMIUM'] ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/** One Chromium for the test file: launched before its first test, closed after its last. Returns a getter. */
export function useChromium(timeoutMs = 60_000): () => Browser {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchChromium();
  }, timeoutMs);
  afterAll(async () => {
    await browser?.close();
  });
  return () => {
    if (browser === undefined) throw new Error('Chromium is not running');
    return browser;
  };
}

/** A page in a context of its own (closed after the test); `pageErrors` records its uncaught errors, each notifying `signal`. */
export async function openPage(browser: Browser, options: BrowserContextOptions = {}): Promise<{ page: Page; pageErrors: string[]; signal: Signal }> {
  const context = await browser.newContext(options);
  onCleanup(() => context.close());
  const page = await context.newPage();
  const signal = new Signal();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => {
    pageErrors.push(e.message);
    signal.notify();
  });
  return { page, pageErrors, signal };
}

/** Saves a full-page screenshot as test-artifacts/`name`. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}${name}`, fullPage: true });
}

// ---- the demo page (packages/server/demo) ----------------------------------------------------------

/** What demo.js exposes as window.heraldDemo (the parts the tests read). */
export interface DemoMessage {
  channel: string;
  seq: number;
  type: string;
  payload: Record<string, unknown>;
}
export interface DemoState {
  client: { state: string; clientId: string | undefined; on(event: string, fn: (e: any) => void): () => void };
  messages: DemoMessage[];
  /** Inbox messages as they arrived, and whether the server confirmed their acknowledgement. */
  inbox: Array<{ id: string; type: string; payload: Record<string, unknown>; acked: boolean }>;
  states: Array<{ from: string; to: string; code?: number; reason?: string }>;
  resets: Array<{ reason: string; seq: number; epoch: string; previous: { seq: number; epoch?: string } }>;
  errors: string[];
  reconnects: number;
  /** The demo user's name (development mode's demo tokens), or null. */
  name: string | null;
  /** Chat messages as they arrived. */
  chat: Array<{ seq: number; name: string; text: string }>;
  /** Who is here (names), as last shown. */
  members: string[];
  /** How the connection is shared, as last shown. */
  sharing: { tabs: number; leader: boolean } | null;
}
declare global {
  interface Window {
    heraldDemo: DemoState;
    __heraldEvent?: (kind: string, data: unknown) => void;
  }
}

/** Page events reported to Node through a binding, with the page's Date.now() (same machine clock). */
export interface PageEvent {
  kind: 'state' | 'message' | 'reset';
  data: any;
  at: number;
}

export interface DemoPage {
  page: Page;
  events: PageEvent[];
  /** Notified on every page event and page error. */
  signal: Signal;
  pageErrors: string[];
  /** Seqs the page's app handler received, as reported by the binding (in order). */
  delivered(): number[];
  states(): PageEvent[];
  /** How many times the page's client connected. */
  connects(): number;
}

/** Opens the demo page at `base` with `query`, and hooks its client's events to Node. */
export async function openDemo(browser: Browser, base: string, query: string, timeoutMs = WAIT): Promise<DemoPage> {
  const { page, pageErrors, signal } = await openPage(browser, { viewport: { width: 1100, height: 1000 } });
  const events: PageEvent[] = [];
  await page.exposeFunction('__heraldEvent', (kind: PageEvent['kind'], data: { at: number; e: unknown }) => {
    events.push({ kind, data: data.e, at: data.at });
    signal.notify();
  });
  await page.goto(`${base}/?${query}`);
  // Fails at once when the page throws (for example while creating its client) instead of timing out.
  let ready = false;
  const started = page.waitForFunction(() => window.heraldDemo?.client !== undefined, undefined, { timeout: timeoutMs, polling: 50 });
  started.catch(() => undefined);
  const failed = signal
    .until(() => ready || pageErrors.length > 0, 'the page to start or fail', timeoutMs + 1000)
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
  const states = (): PageEvent[] => events.filter((e) => e.kind === 'state');
  return {
    page,
    events,
    signal,
    pageErrors,
    delivered: () => events.filter((e) => e.kind === 'message').map((e) => e.data.seq as number),
    states,
    connects: () => states().filter((s) => s.data.to === 'connected').length,
  };
}
