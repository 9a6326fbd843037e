/**
 * Several tabs of one origin in one real Chromium context, each running the built IIFE bundle
 * (dist/herald.min.js) in a small test page whose client events reach Node through a binding.
 *
 * Chromium is started here with a DevTools port and attached with `connectOverCDP({ noDefaults: true })`,
 * and the tabs live in its default context: Playwright's own launch turns on focus emulation for every
 * page, which keeps pages "visible" and makes `Page.setWebLifecycleState {state: 'frozen'}` a no-op; without
 * it, CDP freezes a page for real (its timers, socket and lock callbacks stop). Each test serves the page
 * from a server of its own on port 0, so every test is a separate origin: its own locks and channels.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import type { Signal } from './harness.js';
import { onCleanup, WAIT } from './harness.js';

const BUNDLE = fileURLToPath(new URL('../../dist/herald.min.js', import.meta.url));

/** What a tab logs when it takes the shared connection (it logs `... no longer holds ...` when it steps down). */
const LEADS = 'this tab holds the shared connection';

/** The test page: one client, its channels from the query, every event reported through `__tab`. */
const PAGE_SCRIPT = `(function () {
  var q = new URLSearchParams(location.search);
  var report = function (kind, data) { window.__tab(kind, { at: Date.now(), data: data }); };
  var client = Herald.createClient({
    url: q.get('ws'),
    token: q.get('token') || undefined,
    leaderTimeout: Number(q.get('timeout')),
    minDelay: 100,
    maxDelay: 500,
    logger: { debug: function (m) { report('debug', String(m)); }, warn: function (m) { report('warn', String(m)); } },
  });
  client.on('state', function (e) { report('state', e); });
  client.on('error', function (e) { report('error', e.code); });
  client.on('message', function (m) { if (m.inbox) report('inbox', { id: m.inbox, payload: m.payload }); });
  client.on('acked', function (e) { report('acked', e.inbox); });
  (q.get('channels') || '').split(',').filter(Boolean).forEach(function (c) {
    client.subscribe(c, function (m) { report('message', { channel: m.channel, seq: m.seq }); });
  });
  window.client = client;
  client.connect();
})();`;

/** Recorded in every tab before its scripts run: what it posts on a BroadcastChannel, and its resumes. */
const RECORD_POSTS = `(() => {
  window.__posts = [];
  const post = BroadcastChannel.prototype.postMessage;
  BroadcastChannel.prototype.postMessage = function (m) {
    window.__posts.push({ at: Date.now(), t: m && m.t, term: m && m.term });
    return post.call(this, m);
  };
})();`;

/** Headless Chromium with a DevTools port, attached without Playwright's default overrides. */
export function useCdpChromium(timeoutMs = 60_000): () => BrowserContext {
  let proc: ChildProcess | undefined;
  let browser: Browser | undefined;
  let profile: string | undefined;
  beforeAll(async () => {
    profile = mkdtempSync(join(tmpdir(), 'herald-tabs-'));
    const args = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-background-timer-throttling',
      '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows',
      '--remote-debugging-port=0',
      `--user-data-dir=${profile}`,
      'about:blank',
    ];
    const p = spawn(process.env['HERALD_CHROMIUM'] ?? '/usr/bin/chromium', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    proc = p;
    const endpoint = await new Promise<string>((resolve, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`Chromium did not start: ${err}`)), timeoutMs);
      p.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      p.once('exit', (code) => reject(new Error(`Chromium exited with ${code}: ${err}`)));
    });
    browser = await chromium.connectOverCDP(endpoint, { noDefaults: true, isLocal: true });
  }, timeoutMs);
  afterAll(async () => {
    const p = proc;
    const exited = p && p.exitCode === null ? new Promise((resolve) => p.once('exit', resolve)) : Promise.resolve();
    // Browser.close shuts Chromium down with its helper processes (a disconnect alone would leave it running).
    const closed = browser
      ?.newBrowserCDPSession()
      .then((session) => session.send('Browser.close'))
      .then(
        () => true,
        () => false,
      );
    if (!(await closed)) p?.kill('SIGTERM');
    await exited;
    // Helper processes may still be flushing the profile for a moment after the main one exited.
    if (profile) rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  }, timeoutMs);
  return () => {
    const context = browser?.contexts()[0];
    if (!context) throw new Error('Chromium is not running');
    return context;
  };
}

/** Serves the test page and the built bundle on 127.0.0.1 (a secure context: Web Locks work); closed after the test. */
export async function servePages(): Promise<string> {
  const bundle = readFileSync(BUNDLE, 'utf8');
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const files: Record<string, [string, string]> = {
      '/': [
        'text/html; charset=utf-8',
        '<!doctype html><meta charset="utf-8"><title>tab</title><script src="/herald.min.js"></script><script src="/tab.js"></script>',
      ],
      '/herald.min.js': ['text/javascript; charset=utf-8', bundle],
      '/tab.js': ['text/javascript; charset=utf-8', PAGE_SCRIPT],
    };
    const file = files[path ?? ''];
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file[0], 'cache-control': 'no-store' }).end(file[1]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(() => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Chromium keeps sockets to the origin open (kept alive, or preconnected and never used), which close()
    // alone would wait for: the pages are gone by now, so nothing on them is still needed.
    server.closeAllConnections();
    return closed;
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}`;
}

export interface TabEvent {
  kind: 'state' | 'message' | 'debug' | 'warn' | 'error' | 'inbox' | 'acked';
  at: number;
  data: any;
}

/** One tab and what its client reported. */
export interface TabPage {
  name: string;
  page: Page;
  events: TabEvent[];
  pageErrors: string[];
  /** Seqs its app handler got on `channel`, in order. */
  seqs(channel: string): number[];
  /** Its state transitions (`to`). */
  states(): string[];
  state(): string | undefined;
  debugs(): TabEvent[];
  /** Whether it holds the shared connection now (its last lead/step-down message says so). */
  leads(): boolean;
  /** Page-local records of what it posted on BroadcastChannel. */
  posts(): Promise<Array<{ at: number; t?: string; term?: number }>>;
  cdp(): Promise<CDPSession>;
}

/**
 * Closes a page, waiting at most 10 s: a page Chromium does not close in time is left to the browser's own
 * shutdown after the file (and named on stderr), instead of holding the next test's hook.
 */
async function closePage(page: Page): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), 10_000)));
  const closed = page.close().then(
    () => 'closed' as const,
    () => 'closed' as const,
  );
  if ((await Promise.race([closed, late])) === 'late') console.warn(`page ${page.url()} did not close within 10 s; left to the browser's shutdown`);
  clearTimeout(timer);
}

/** Opens a tab at `base` with `query` in `context`; its events notify `signal`; closed after the test. */
export async function openTab(context: BrowserContext, base: string, name: string, query: string, signal: Signal, init: string[] = []): Promise<TabPage> {
  const page = await context.newPage();
  onCleanup(() => closePage(page));
  const events: TabEvent[] = [];
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => {
    pageErrors.push(e.message);
    signal.notify();
  });
  await page.exposeFunction('__tab', (kind: TabEvent['kind'], e: { at: number; data: unknown }) => {
    events.push({ kind, at: e.at, data: e.data });
    signal.notify();
  });
  await page.addInitScript(RECORD_POSTS);
  for (const script of init) await page.addInitScript(script);
  await page.goto(`${base}/?${query}`);
  let session: CDPSession | undefined;
  const of = (kind: TabEvent['kind']): TabEvent[] => events.filter((e) => e.kind === kind);
  return {
    name,
    page,
    events,
    pageErrors,
    seqs: (channel) =>
      of('message')
        .filter((e) => e.data.channel === channel)
        .map((e) => e.data.seq as number),
    states: () => of('state').map((e) => e.data.to as string),
    state: () => of('state').at(-1)?.data.to,
    debugs: of.bind(null, 'debug'),
    leads: () =>
      of('debug')
        .filter((e) => /holds the shared connection$/.test(e.data))
        .at(-1)?.data === LEADS,
    posts: () => page.evaluate(() => (window as unknown as { __posts: Array<{ at: number; t?: string; term?: number }> }).__posts),
    cdp: async () => (session ??= await context.newCDPSession(page)),
  };
}

/** Waits on `signal` (default WAIT). */
export const until = <T>(signal: Signal, check: () => T | undefined | false, what: string, describe?: () => string, timeoutMs = WAIT): Promise<T> =>
  signal.until(check, what, timeoutMs, describe);
