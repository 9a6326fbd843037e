// The demo page's inbox in a real headless Chromium: pushes to an offline user are on the page right after it
// opens (connected with a token for that user), then one pushed while it is open; each gets its
// "acknowledged" mark once the server confirmed the SDK's automatic acknowledgement, and the user's inbox is
// empty afterwards. Waits are on the page (waitForFunction), never fixed sleeps. Needs `npm run build`.
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { openDemo, screenshot, useChromium } from './support/chromium.js';
import { api, API_KEY, publish, startGateway, WAIT } from './support/harness.js';

const browser = useChromium();
const SECRET = 'demo_inbox_secret_0123456789_0123456789';

describe('demo page inbox in Chromium', () => {
  it('shows inbox messages pushed while the user was offline after it opens, with an acknowledged mark', async () => {
    const gw = await startGateway({ demo: true, demoApiKey: API_KEY, jwtSecrets: [SECRET] });
    for (const text of ['while you were away', 'and another one'])
      await publish(gw.http, { user: 'ana', type: 'notice', payload: { text }, inbox: true, receipt: true });
    const jwt = await new SignJWT({ sub: 'ana' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
    const demo = await openDemo(browser(), gw.http, `channel=news&token=${jwt}`);
    await demo.page.waitForFunction(() => window.heraldDemo.inbox.length === 2 && window.heraldDemo.inbox.every((m) => m.acked), undefined, { timeout: WAIT });
    await publish(gw.http, { user: 'ana', type: 'notice', payload: { text: 'live' }, inbox: true });
    await demo.page.waitForFunction(() => window.heraldDemo.inbox.length === 3 && window.heraldDemo.inbox.every((m) => m.acked), undefined, { timeout: WAIT });
    const listed = await demo.page.$$eval('#inbox li', (lis) => lis.map((li) => ({ acked: li.classList.contains('acked'), text: li.textContent ?? '' })));
    expect(listed.map((l) => l.acked)).toEqual([true, true, true]);
    expect(listed.map((l) => l.text)).toEqual([
      'notice  {"text":"while you were away"}✓ acknowledged',
      'notice  {"text":"and another one"}✓ acknowledged',
      'notice  {"text":"live"}✓ acknowledged',
    ]);
    expect((await api(gw.http, 'GET', '/api/users/ana/inbox')).body.messages).toEqual([]);
    const first = await demo.page.evaluate(() => window.heraldDemo.inbox[0]?.id ?? '');
    expect((await api(gw.http, 'GET', `/api/receipts/${first}`)).body).toMatchObject({ status: 'acknowledged', delivered: 1 });
    expect(demo.pageErrors).toEqual([]);
    await screenshot(demo.page, 'demo-inbox.png');
  }, 60_000);
});
