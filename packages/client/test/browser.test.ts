// The demo page (the minified browser SDK, dist/herald.min.js) in a real headless Chromium, loaded through
// a fault-injecting TCP proxy so that its WebSocket goes through the proxy too: HTTP publishes reach the
// page; a dropped connection, a silently dead one and a gateway restart are each survived, with missed
// messages recovered in order and lost history reported. Every wait is on an event (a page binding or
// waitForFunction), never a fixed sleep. Needs `npm run build` (the page serves the built bundle).
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { openDemo, screenshot, useChromium } from './support/chromium.js';
import { API_KEY, onCleanup, proxyTo, publish, range, restartableGateway, WAIT } from './support/harness.js';

const browser = useChromium();

/** A memory-engine gateway serving the demo page, restartable on the same port. */
const demoGateway = () => restartableGateway({ demo: true, demoApiKey: API_KEY });

/** A demo gateway, a fault-injecting proxy in front of it, and the demo page loaded through the proxy with `query`, connected. */
async function demoThroughProxy(query: string) {
  const gw = await demoGateway();
  const proxy = await proxyTo(gw.port);
  const demo = await openDemo(browser(), `http://127.0.0.1:${proxy.port}`, query);
  await demo.signal.until(
    () => demo.connects() >= 1,
    'the page to connect',
    WAIT,
    () => JSON.stringify(demo.pageErrors),
  );
  return { gw, proxy, demo };
}

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

describe('demo page in Chromium, through a fault-injecting proxy', () => {
  it('receives a message published with the HTTP API (curl-style and from its own publish form)', async () => {
    const { gw, demo } = await demoThroughProxy('channel=news&ping=500&maxDelay=1000');

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
    await screenshot(demo.page, 'demo-page.png');
  }, 60_000);

  it('reconnects after the proxy drops the connection while messages keep being published, and shows the missed ones in order without duplicates', async () => {
    const { gw, proxy, demo } = await demoThroughProxy('channel=feed&ping=500&maxDelay=1000');

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
    expect(demo.connects()).toBeGreaterThanOrEqual(2);
    expect(proxy.accepted).toBeGreaterThan(acceptedBefore); // it came back through the proxy
    expect(await demo.page.evaluate(() => window.heraldDemo.reconnects)).toBeGreaterThanOrEqual(1);
    expect(await demo.page.evaluate(() => window.heraldDemo.resets)).toEqual([]);
    expect(await demo.page.textContent('#log')).toMatch(/recovered missed messages after seq \d+/);
    expect(demo.pageErrors).toEqual([]);
  }, 60_000);

  it('detects a silently dead connection (proxy stops forwarding, nothing is closed) within two ping intervals and reconnects', async () => {
    const PING = 500;
    const { gw, proxy, demo } = await demoThroughProxy(`channel=quiet&ping=${PING}&maxDelay=1000`);
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
    const { gw, demo } = await demoThroughProxy('channel=orders&ping=500&maxDelay=1000');
    for (let i = 1; i <= 3; i++) await publish(gw.http, { channel: 'orders', type: 'order', payload: { i } });
    await demo.signal.until(() => demo.delivered().length >= 3, '3 messages');
    const epoch1 = await demo.page.evaluate(() => (window.heraldDemo.client as any).getSubscription('orders')?.position?.epoch as string);

    await gw.restart();
    await demo.signal.until(() => demo.connects() >= 2, 'the page to reconnect to the new gateway', WAIT);
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
    await screenshot(demo.page, 'demo-page.png');
  }, 60_000);

  it('accepts ?ping=500&maxDelay=500 (short delays for tests) and connects', async () => {
    const gw = await demoGateway();
    const proxy = await proxyTo(gw.port);
    const demo = await openDemo(browser(), `http://127.0.0.1:${proxy.port}`, 'channel=short&ping=500&maxDelay=500');
    await demo.signal.until(() => demo.connects() >= 1 || demo.pageErrors.length > 0, 'the page to connect or fail', WAIT);
    expect(demo.pageErrors).toEqual([]);
    expect((await pageView(demo.page)).state).toBe('connected');
  }, 60_000);
});
