// The admin dashboard (/admin, gateway option `admin`) in a real headless Chromium: signing in with the API
// key (kept in sessionStorage), live numbers that move when clients connect and messages flow (pushed over
// Herald's own WebSocket protocol, not polled), drops by reason, the publish and disconnect forms, and every
// request carrying the key. Keeps a screenshot in test-artifacts/ (docs/admin-dashboard.png, shown in the README, is a copy of one). Every wait
// is on an event or a page condition, never a fixed sleep.
import { SignJWT } from 'jose';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { adminBuildIsStale, buildAdmin } from '../../server/scripts/build-admin.mjs';
import { openPage, screenshot, useChromium } from './support/chromium.js';
import { api, API_KEY, onCleanup, startGateway as startAnyGateway, WAIT } from './support/harness.js';

const JWT_SECRET = 'test_jwt_secret_0123456789_0123456789_abcdef';

beforeAll(async () => {
  // The gateway serves packages/server/dist/admin: build it when missing or older than its sources.
  if (adminBuildIsStale()) await buildAdmin();
}, 120_000);
const browser = useChromium();

/** A gateway with the admin dashboard and the test JWT secret. */
const startGateway = () => startAnyGateway({ jwtSecrets: [JWT_SECRET], admin: true });

/** Publishes through the HTTP API; returns the status and parsed body (whatever the status). */
const publish = (base: string, body: Record<string, unknown>) => api(base, 'POST', '/api/publish', body);

/** A plain WebSocket client of the native protocol; resolves once `connected` arrived. */
async function connectClient(url: string, connect: Record<string, unknown>): Promise<{ ws: WebSocket; frames: any[]; closed: Promise<number> }> {
  const ws = new WebSocket(url);
  const frames: any[] = [];
  onCleanup(() => ws.terminate());
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.on('message', (data) => {
      for (const line of (data as Buffer).toString('utf8').split('\n')) {
        const f = JSON.parse(line);
        frames.push(f);
        if (f.type === 'connected') resolve();
      }
    });
    ws.once('open', () => ws.send(JSON.stringify({ type: 'connect', ...connect })));
  });
  return { ws, frames, closed };
}

/** Waits until the text of `selector` satisfies `pred` (given as source, run in the page). */
async function waitText(page: Page, selector: string, expected: string): Promise<void> {
  await page.waitForFunction(([s, e]) => document.querySelector(s as string)?.textContent === e, [selector, expected], { timeout: WAIT, polling: 50 });
}

/** The number of snapshots the page has taken in (body[data-snapshots]). */
const snapshots = (page: Page): Promise<number> => page.evaluate(() => Number(document.body.dataset['snapshots'] ?? 0));

async function nextSnapshot(page: Page): Promise<void> {
  const n = await snapshots(page);
  await page.waitForFunction((k) => Number(document.body.dataset['snapshots'] ?? 0) > k, n, { timeout: WAIT, polling: 50 });
}

describe('admin dashboard in Chromium', () => {
  it('shows the webhook queue: deliveries waiting for a receiver that is down', async () => {
    // Nothing listens on port 9 of this machine (discard): every delivery fails and waits for a retry.
    const secret = `whsec_${Buffer.from('admin-webhook-secret-0123456789').toString('base64')}`;
    const gw = await startAnyGateway({ jwtSecrets: [JWT_SECRET], admin: true, webhooks: [{ name: 'down', url: 'http://127.0.0.1:9/hooks', secret }] });
    const { page, pageErrors } = await openPage(browser(), { viewport: { width: 1280, height: 900 } });
    await page.goto(`${gw.http}/admin`);
    await page.fill('#api-key', API_KEY);
    await page.click('#login-form button[type=submit]');
    await waitText(page, '#status', 'live');
    const userToken = await new SignJWT({ sub: 'w1' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(JWT_SECRET));
    await connectClient(gw.ws, { token: userToken });
    // user.online, channel.occupied of user:w1 (and the dashboard's own channel events) wait in the queue.
    await page.waitForFunction(() => Number(document.querySelector('#webhooks-queued')?.textContent ?? 0) >= 2, undefined, { timeout: WAIT, polling: 100 });
    await page.waitForFunction(() => Number(document.querySelector('#webhooks-failed')?.textContent ?? 0) >= 1, undefined, { timeout: WAIT, polling: 100 });
    expect(await page.textContent('#webhooks-dead')).toBe('0');
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('signs in with the API key, shows live counts and rates that move, drops by reason, and publishes and disconnects through the API', async () => {
    const gw = await startGateway();
    const { page, pageErrors } = await openPage(browser(), { viewport: { width: 1280, height: 1100 } });
    const apiCalls: Array<{ path: string; auth: string | undefined }> = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.pathname.startsWith('/api/')) apiCalls.push({ path: `${r.method()} ${u.pathname}`, auth: r.headers()['authorization'] });
    });
    const connectFrames: any[] = [];
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => {
        const frame = JSON.parse(String(f.payload));
        if (frame.type === 'connect') connectFrames.push(frame);
      });
    });

    await page.goto(`${gw.http}/admin`);
    await page.waitForSelector('#login-form', { state: 'visible', timeout: WAIT });
    expect(await page.isHidden('#dashboard')).toBe(true);

    // A wrong key is refused, and not kept.
    await page.fill('#api-key', 'wrong_key_0123456789abc');
    await page.click('#login-form button[type=submit]');
    await page.waitForFunction(() => (document.querySelector('#login-error')?.textContent ?? '').includes('refused'), undefined, { timeout: WAIT });
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    await page.fill('#api-key', API_KEY);
    await page.click('#login-form button[type=submit]');
    await waitText(page, '#status', 'live');
    expect(await page.evaluate(() => sessionStorage.getItem('herald.admin.apiKey'))).toBe(API_KEY);
    await nextSnapshot(page);
    // The dashboard itself is a connection.
    await waitText(page, '#connections', '1');

    // Clients connect: the counts move.
    const clients = await Promise.all([0, 1, 2].map(() => connectClient(gw.ws, { subs: { news: {} } })));
    const userToken = await new SignJWT({ sub: 'u1' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(JWT_SECRET));
    const u1 = await connectClient(gw.ws, { token: userToken, subs: { news: {}, sport: {} } });
    await waitText(page, '#connections', '5');
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#channel-table tbody tr')).some((tr) => tr.textContent === 'news4'), undefined, {
      timeout: WAIT,
      polling: 50,
    });

    // Messages flow, over several seconds so that the chart has a shape.
    let sent = 0;
    for (const burst of [3, 6, 9, 4, 8]) {
      for (let i = 0; i < burst; i++) expect((await publish(gw.http, { channel: 'news', type: 'tick', payload: { i } })).status).toBe(200);
      sent += burst;
      await nextSnapshot(page);
    }
    await waitText(page, '#total-published', String(sent));
    await waitText(page, '#total-delivered', String(sent * 4));
    await page.waitForFunction(() => Number(document.querySelector('#chart path.line-in')?.getAttribute('data-points') ?? 0) >= 3, undefined, {
      timeout: WAIT,
    });
    const chartMax = await page.evaluate(() =>
      Number(document.querySelector('#chart text.axis')?.parentElement?.querySelectorAll('text.axis')[2]?.textContent),
    );
    expect(chartMax).toBeGreaterThan(0);

    // Drops by reason: a push to a connection that does not exist, and one to a user who is offline.
    expect((await publish(gw.http, { client: 'nope', type: 't', payload: {} })).status).toBe(404);
    expect((await publish(gw.http, { channel: 'user:nobody', type: 't', payload: {} })).status).toBe(200);
    await page.waitForFunction(
      () => {
        const rows = Array.from(document.querySelectorAll('#drop-table tbody tr')).map((tr) => tr.textContent);
        return rows.includes('no_such_client1') && rows.includes('user_offline1');
      },
      undefined,
      { timeout: WAIT, polling: 50 },
    );
    await waitText(page, '#total-dropped', '2');

    // The publish form reaches the clients.
    await page.fill('#pub-channel', 'news');
    await page.fill('#pub-type', 'announcement');
    await page.fill('#pub-payload', '{"text":"from the dashboard"}');
    await page.click('#publish-form button[type=submit]');
    await page.waitForFunction(() => (document.querySelector('#publish-result')?.textContent ?? '').includes('"seq"'), undefined, { timeout: WAIT });
    await expect.poll(() => clients[0]?.frames.find((f) => f.type === 'announcement')?.payload, { timeout: WAIT }).toEqual({ text: 'from the dashboard' });
    // Invalid JSON is caught in the page.
    await page.fill('#pub-payload', '{nope');
    await page.click('#publish-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#publish-result')?.classList.contains('error') === true, undefined, { timeout: WAIT });

    // The disconnect form closes every connection of a user with 4509.
    await page.selectOption('#dc-kind', 'user');
    await page.fill('#dc-id', 'u1');
    await page.click('#disconnect-form button[type=submit]');
    expect(await u1.closed).toBe(4509);
    await page.waitForFunction(() => (document.querySelector('#disconnect-result')?.textContent ?? '').includes('"disconnected":1'), undefined, {
      timeout: WAIT,
    });
    await waitText(page, '#connections', '4');

    // One more round through the form, then a burst, for a screenshot with traffic in it.
    await page.fill('#pub-payload', '{"text":"hello from the admin dashboard"}');
    await page.click('#publish-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#publish-result')?.classList.contains('ok') === true, undefined, { timeout: WAIT });
    const shown = await snapshots(page);
    for (let i = 0; i < 12; i++) await publish(gw.http, { channel: i % 3 === 0 ? 'sport' : 'news', type: 'tick', payload: { i } });
    await page.waitForFunction((k) => Number(document.body.dataset['snapshots'] ?? 0) > k && document.querySelector('#rate-in')?.textContent !== '0', shown, {
      timeout: WAIT,
      polling: 50,
    });
    await screenshot(page, 'admin-dashboard.png');

    // Every request the page made carried the key; the WebSocket carried an admin token; nothing was polled.
    expect(apiCalls.length).toBeGreaterThan(0);
    expect(apiCalls.filter((c) => c.auth !== `Bearer ${API_KEY}` && c.auth !== 'Bearer wrong_key_0123456789abc')).toEqual([]);
    const reads = apiCalls.filter(
      (c) => c.auth === `Bearer ${API_KEY}` && !c.path.startsWith('POST /api/publish') && !c.path.startsWith('POST /api/disconnect'),
    );
    expect(reads.map((c) => c.path)).toEqual(['GET /api/stats', 'POST /api/admin/token']);
    expect(connectFrames.length).toBeGreaterThanOrEqual(1);
    expect(typeof connectFrames[0].token).toBe('string');
    expect(pageErrors).toEqual([]);
  }, 180_000);

  it('keeps the key for the tab across a reload, and forgets it on sign out', async () => {
    const gw = await startGateway();
    const { page } = await openPage(browser());
    await page.goto(`${gw.http}/admin`);
    await page.fill('#api-key', API_KEY);
    await page.click('#login-form button[type=submit]');
    await waitText(page, '#status', 'live');

    await page.reload();
    await waitText(page, '#status', 'live');
    expect(await page.isHidden('#login')).toBe(true);
    await nextSnapshot(page);

    await page.click('#logout');
    await page.waitForSelector('#login-form', { state: 'visible', timeout: WAIT });
    expect(await page.evaluate(() => sessionStorage.getItem('herald.admin.apiKey'))).toBeNull();
    await waitText(page, '#status', 'signed-out');
    // The dashboard's connection is gone.
    await expect.poll(() => gw.gateway.connectionCount, { timeout: WAIT }).toBe(0);
  }, 120_000);
});
