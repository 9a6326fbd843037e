/**
 * pusher-js 8 (its web build, dist/web/pusher.min.js) and Laravel Echo 2 (its IIFE build) on a page in headless
 * Chromium, as a Laravel front end runs them: Echo with `broadcaster: 'reverb'`, auth at `/broadcasting/auth`
 * through the browser's XHR (a Laravel-style endpoint signing with the `pusher` SDK), events published by the
 * `pusher` server SDK as Laravel's PusherBroadcaster does. Every wait is on the page's state, never a sleep.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { RouteHook } from '../src/http/handler.js';
import { describe, expect, it } from 'vitest';
import { openPage, useChromium } from '../../client/test/support/chromium.js';
import { systemClock } from '../src/util/clock.js';
import { API_KEY } from './helpers.js';
import { APP, laravelAuthRoute, PusherServer, PusherTestClient, startPusherGateway } from './pusher-helpers.js';

const browser = useChromium();
const require = createRequire(import.meta.url);
const PUSHER_JS = readFileSync(require.resolve('pusher-js/dist/web/pusher.min.js'), 'utf8');
const ECHO_JS = readFileSync(require.resolve('laravel-echo/iife'), 'utf8');

/** What the page records (window.log). */
interface PageLog {
  state: string;
  socketId: string;
  events: Array<{ name: string; data: unknown }>;
}

const PAGE = (port: number) => `<!doctype html><meta charset="utf-8"><title>pusher test</title>
<script src="/pusher.min.js"></script><script src="/echo.iife.js"></script>
<script>
  window.log = { state: '', socketId: '', events: [] };
  const record = (name) => (data) => window.log.events.push({ name, data });
  const EchoClass = Echo.default || Echo;
  window.echo = new EchoClass({
    broadcaster: 'reverb', key: ${JSON.stringify(APP.key)}, wsHost: '127.0.0.1', wsPort: ${port}, wssPort: ${port},
    forceTLS: false, enabledTransports: ['ws', 'wss'],
  });
  const pusher = window.echo.connector.pusher;
  pusher.connection.bind('state_change', (s) => {
    window.log.state = s.current;
    window.log.socketId = pusher.connection.socket_id || '';
  });
  window.echo.private('orders.1').listen('OrderShipped', record('shipped'));
  window.echo.join('room').here(record('here')).joining(record('joining')).listenForWhisper('typing', record('whisper'));
  window.echo.channel('news').listen('.headline', record('headline'));
</script>`;

/** Serves the test page and the two client libraries from the gateway. */
function pageRoute(port: number): RouteHook {
  const files: Record<string, [string, string]> = {
    '/pusher-test.html': ['text/html', PAGE(port)],
    '/pusher.min.js': ['application/javascript', PUSHER_JS],
    '/echo.iife.js': ['application/javascript', ECHO_JS],
  };
  return (req, res) => {
    const file = files[req.url.split('?')[0] ?? ''];
    if (!file) return false;
    res.writeHead(200, { 'content-type': file[0] });
    res.end(file[1]);
    return true;
  };
}

describe('pusher-js and Laravel Echo in Chromium', () => {
  it('connects, authorizes private and presence channels through XHR, receives events, joins and whispers', async () => {
    const { port, gateway, http } = await startPusherGateway();
    gateway.addRoute(pageRoute(port));
    gateway.addRoute(laravelAuthRoute([{ id: '1', info: { name: 'Ann' } }]));
    const { page, pageErrors } = await openPage(browser());
    await page.goto(`${http}/pusher-test.html`);
    await page.waitForFunction(() => (window as unknown as { log: PageLog }).log.events.some((e) => e.name === 'here'), undefined, { timeout: 20_000 });
    const log = async (): Promise<PageLog> => page.evaluate(() => (window as unknown as { log: PageLog }).log);
    expect((await log()).state).toBe('connected');
    expect((await log()).socketId).toMatch(/^\d+\.\d+$/);

    const backend = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(port), useTLS: false });
    await backend.trigger(['private-orders.1'], 'App\\Events\\OrderShipped', { order: { id: 1, note: 'é 😀 /' } });
    await backend.trigger('news', 'headline', { title: 'Hi' });
    const until = (name: string) =>
      page.waitForFunction((n) => (window as unknown as { log: PageLog }).log.events.some((e) => e.name === n), name, { timeout: 20_000 });
    await until('shipped');
    await until('headline');

    // Bob, a raw Pusher client in Node, joins and whispers on the page's presence channel.
    const bob = await PusherTestClient.connect(port);
    const auth = backend.authorizeChannel(bob.socketId, 'presence-room', { user_id: '2', user_info: { name: 'Bob' } });
    await bob.subscribe('presence-room', { ...auth });
    await until('joining');
    bob.send({ event: 'client-typing', channel: 'presence-room', data: { who: 'Bob' } });
    await until('whisper');
    const events = (await log()).events;
    expect(events).toEqual(
      expect.arrayContaining([
        { name: 'here', data: [{ name: 'Ann' }] },
        { name: 'shipped', data: { order: { id: 1, note: 'é 😀 /' } } },
        { name: 'headline', data: { title: 'Hi' } },
        { name: 'joining', data: { name: 'Bob' } },
        { name: 'whisper', data: { who: 'Bob' } },
      ]),
    );
    // The page whispers back; Bob gets it with the page user's id.
    await page.evaluate(() =>
      (window as unknown as { echo: { join(c: string): { whisper(e: string, d: unknown): void } } }).echo.join('room').whisper('typing', { who: 'Ann' }),
    );
    expect(await bob.nextEvent('client-typing')).toMatchObject({ data: '{"who":"Ann"}', user_id: '1' });
    expect(pageErrors).toEqual([]);
  });

  it('shows Pusher connections per protocol in the admin dashboard', async () => {
    // The dashboard's snapshots run on the gateway's clock: a real one here.
    const { port, http } = await startPusherGateway({ admin: true, clock: systemClock });
    await PusherTestClient.connect(port);
    const { page } = await openPage(browser());
    await page.goto(`${http}/admin`);
    await page.fill('#api-key', API_KEY);
    await page.click('#login-form button[type=submit]');
    // The dashboard is a native connection itself: one of each.
    const text = () => page.evaluate(() => document.querySelector('#node-table tbody')?.textContent ?? '');
    await page
      .waitForFunction(() => (document.querySelector('#node-table tbody')?.textContent ?? '').includes('(native 1, pusher 1)'), undefined, { timeout: 20_000 })
      .catch(async (err: unknown) => {
        throw new Error(`node table: ${await text()} / status ${await page.evaluate(() => document.querySelector('#status')?.textContent)}: ${String(err)}`);
      });
  });
});
