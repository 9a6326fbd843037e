// The demo page's shared connection, who's here and chat in a real headless Chromium, against a gateway set up as
// development mode sets it up (demo tokens): two tabs of one browser are one demo user and share one WebSocket
// ("1 connection shared by 2 tabs"); a second browser (another context: another user) shows up in who's here;
// a chat line typed in one tab reaches every tab of both browsers. Waits are on the pages, never fixed sleeps.
// Needs `npm run build` (the page runs the built bundle).
import type { Browser, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { screenshot, useChromium } from './support/chromium.js';
import { API_KEY, onCleanup, startGateway, WAIT } from './support/harness.js';

const browser = useChromium();
const SECRET = 'demo_chat_secret_0123456789_0123456789_0123';

/** A browser profile of its own (its own storage, locks and channels) with `n` tabs of the demo page. */
async function browserWithTabs(b: Browser, url: string, n: number): Promise<{ tabs: Page[]; errors: string[] }> {
  const context = await b.newContext({ viewport: { width: 1100, height: 1100 } });
  onCleanup(() => context.close());
  const errors: string[] = [];
  const tabs: Page[] = [];
  for (let i = 0; i < n; i++) {
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    tabs.push(page);
  }
  return { tabs, errors };
}

const text = (page: Page, selector: string): Promise<string> => page.$eval(selector, (el) => el.textContent ?? '');

describe('demo page: shared connection, who is here, chat', () => {
  it('shows one connection shared by two tabs, the members, and a chat line in every tab', async () => {
    const gw = await startGateway({ demo: true, demoApiKey: API_KEY, jwtSecrets: [SECRET], demoTokenSecret: SECRET });
    const ann = await browserWithTabs(browser(), `${gw.http}/?name=Ann`, 2);
    for (const tab of ann.tabs) {
      await tab
        .waitForFunction(() => window.heraldDemo.sharing?.tabs === 2 && window.heraldDemo.members.length === 1, undefined, { timeout: WAIT })
        .catch(async (err: unknown) => {
          const seen = await tab.evaluate(() => JSON.stringify({ d: { ...window.heraldDemo, client: undefined }, s: window.heraldDemo.client.state }));
          throw new Error(`${String(err)}: ${seen} ${JSON.stringify(ann.errors)}`);
        });
    }
    expect(await Promise.all(ann.tabs.map((t) => text(t, '#sharing')))).toEqual(
      expect.arrayContaining(['1 connection shared by 2 tabs (this tab holds it)', '1 connection shared by 2 tabs']),
    );
    expect(gw.gateway.connectionCount).toBe(1);
    expect(await text(ann.tabs[0] as Page, '#members')).toBe('Ann (you)');

    // Another browser: another user, in who's here of Ann's tabs.
    const bob = await browserWithTabs(browser(), `${gw.http}/?name=Bob`, 1);
    for (const tab of [...ann.tabs, ...bob.tabs]) {
      await tab.waitForFunction(() => window.heraldDemo.members.length === 2, undefined, { timeout: WAIT });
    }
    expect((await Promise.all(ann.tabs.map((t) => text(t, '#member-count')))).every((c) => c === '2 users')).toBe(true);
    expect(gw.gateway.connectionCount).toBe(2);

    // A chat line typed in Ann's second tab reaches all three tabs, once.
    const second = ann.tabs[1] as Page;
    await second.fill('#chat-text', 'Hello from tab 2 👋');
    await second.press('#chat-text', 'Enter');
    for (const tab of [...ann.tabs, ...bob.tabs]) {
      await tab.waitForFunction(() => window.heraldDemo.chat.length === 1, undefined, { timeout: WAIT });
      expect(await tab.evaluate(() => window.heraldDemo.chat)).toEqual([{ seq: 1, name: 'Ann', text: 'Hello from tab 2 👋' }]);
      expect(await text(tab, '#chat')).toBe('AnnHello from tab 2 👋');
    }
    expect(await second.inputValue('#chat-text')).toBe('');
    expect([...ann.errors, ...bob.errors]).toEqual([]);
    await screenshot(ann.tabs[0] as Page, 'demo-chat.png');
  }, 90_000);
});
