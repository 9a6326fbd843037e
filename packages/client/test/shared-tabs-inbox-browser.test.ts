// Inbox messages through a connection shared by tabs, in a real Chromium: two tabs of one user share one
// socket; a message kept while the user was offline and one pushed live each reach the app of every tab exactly
// once, the acknowledgements go up through the leader tab, and the server's `acked` reaches every tab. Every
// wait is on an event from the pages; nothing sleeps. Needs `npm run build` (the pages run the built bundle).
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { api, poll, publish, Signal, startGateway } from './support/harness.js';
import { openTab, servePages, until, useCdpChromium, type TabPage } from './support/tab-pages.js';

const context = useCdpChromium();
const SECRET = 'shared_tabs_inbox_secret_0123456789_0123';

describe('inbox through tabs sharing one connection, in Chromium', () => {
  it('gives each tab every inbox message once and acknowledges through the leader', async () => {
    const gw = await startGateway({ jwtSecrets: [SECRET] });
    await publish(gw.http, { user: 'tabs', type: 'notice', payload: { n: 1 }, inbox: true, receipt: true });
    const token = await new SignJWT({ sub: 'tabs' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
    const base = await servePages();
    const signal = new Signal();
    const tabs: TabPage[] = [];
    for (const name of ['t1', 't2']) tabs.push(await openTab(context(), base, name, `ws=${encodeURIComponent(gw.ws)}&timeout=2000&token=${token}`, signal));
    const inbox = (t: TabPage) => t.events.filter((e) => e.kind === 'inbox').map((e) => e.data.payload.n as number);
    const acked = (t: TabPage) => t.events.filter((e) => e.kind === 'acked').flatMap((e) => e.data as string[]);
    const describeTabs = () =>
      tabs.map((t) => `${t.name}: ${t.states().join('>')} inbox ${inbox(t)} acked ${acked(t)} ${JSON.stringify(t.pageErrors)}`).join('; ');
    await until(signal, () => tabs.every((t) => t.state() === 'connected'), 'both tabs connected', describeTabs);
    await until(signal, () => tabs.filter((t) => t.leads()).length === 1, 'one leader', describeTabs);
    // The message kept while the user was offline: the leader's connection gets it at connect; the other tab too
    // when it joined before the acknowledgement (as a connection of its own would), never twice.
    const leader = tabs.find((t) => t.leads()) as TabPage;
    await until(signal, () => inbox(leader).length === 1 && acked(leader).length >= 1, 'the stored message in the leader tab, acknowledged', describeTabs);
    expect(tabs.every((t) => inbox(t).length <= 1)).toBe(true);
    const before = tabs.map((t) => inbox(t).length);

    const live = await publish(gw.http, { user: 'tabs', type: 'notice', payload: { n: 2 }, inbox: true });
    const id = live.results['user:tabs'].message as string;
    await until(
      signal,
      () => tabs.every((t, i) => inbox(t).length === (before[i] ?? 0) + 1 && acked(t).includes(id)),
      'the live message in both tabs, acknowledged',
      describeTabs,
    );
    expect(tabs.map((t) => inbox(t).at(-1))).toEqual([2, 2]);
    // One socket for both tabs; nothing left in the inbox.
    expect(gw.gateway.connectionCount).toBe(1);
    expect(
      await poll(async () => {
        const r = await api(gw.http, 'GET', '/api/users/tabs/inbox');
        return r.body.messages.length === 0 ? r.body.messages : undefined;
      }, 'an empty inbox'),
    ).toEqual([]);
    expect(tabs.flatMap((t) => t.pageErrors)).toEqual([]);
  }, 60_000);
});
