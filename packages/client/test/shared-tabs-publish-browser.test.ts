// Client publish through a connection shared by tabs, in a real Chromium: three tabs of one user share one socket;
// each publishes through the leader's connection (the follower tabs' frames go over the BroadcastChannel) and
// each gets its own answer; `echo: false` keeps a message from the tab that sent it only (the other tabs of the
// same connection get it, in order); a publish refused by the gateway rejects in the tab that made it. Every wait
// is on an event from the pages; nothing sleeps. Needs `npm run build` (the pages run the built bundle).
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { poll, range, Signal, startGateway } from './support/harness.js';
import { openTab, servePages, until, useCdpChromium, type TabPage } from './support/tab-pages.js';

const context = useCdpChromium();
const SECRET = 'shared_tabs_publish_secret_0123456789_012';

type Published = { seq: number; epoch: string; duplicate: boolean } | { error: string; serverCode: string | undefined };

/** Publishes from a tab's page and returns what its promise settled with. */
const publishFrom = (t: TabPage, channel: string, payload: object, echo: boolean): Promise<Published> =>
  t.page.evaluate(
    ([c, p, e]) =>
      (window as unknown as { client: { publish: (...a: unknown[]) => Promise<{ seq: number; epoch: string; duplicate: boolean }> } }).client
        .publish(c, 'said', p, { echo: e })
        .then(
          (r) => ({ seq: r.seq, epoch: r.epoch, duplicate: r.duplicate }),
          (err: { code: string; serverCode?: string }) => ({ error: err.code, serverCode: err.serverCode }),
        ),
    [channel, payload, echo] as const,
  );

describe('client publish from tabs sharing one connection, in Chromium', () => {
  it('publishes from every tab over the one socket; echo false keeps the message from its own tab only', async () => {
    const gw = await startGateway({ jwtSecrets: [SECRET] });
    const token = await new SignJWT({ sub: 'ann', publish: ['chat'] }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
    const base = await servePages();
    const signal = new Signal();
    const tabs: TabPage[] = [];
    for (const name of ['t1', 't2', 't3']) {
      tabs.push(await openTab(context(), base, name, `ws=${encodeURIComponent(gw.ws)}&timeout=2000&token=${token}&channels=chat`, signal));
    }
    const describeTabs = () => tabs.map((t) => `${t.name}: ${t.states().join('>')} ${t.leads() ? 'LEADS ' : ''}chat ${t.seqs('chat')}`).join('; ');
    await until(signal, () => tabs.every((t) => t.state() === 'connected'), 'every tab connected', describeTabs);
    await until(signal, () => tabs.filter((t) => t.leads()).length === 1, 'one leader', describeTabs);
    expect(gw.gateway.connectionCount).toBe(1);
    // Every tab knows the connection is shared by three, and which of them holds it.
    const sharing = () =>
      Promise.all(tabs.map((t) => t.page.evaluate(() => (window as unknown as { client: { sharing: { tabs: number; leader: boolean } } }).client.sharing)));
    const shared = await poll(async () => {
      const s = await sharing();
      return s.every((x) => x.tabs === 3) ? s : undefined;
    }, 'every tab to count three tabs');
    expect(shared.map((x) => x.leader)).toEqual(tabs.map((t) => t.leads()));

    // Each tab publishes once, without echo, one after the other: seqs 1, 2, 3.
    const answers: Published[] = [];
    for (const t of tabs) answers.push(await publishFrom(t, 'chat', { from: t.name }, false));
    expect(answers.map((a) => ('seq' in a ? a.seq : a))).toEqual([1, 2, 3]);
    await until(signal, () => tabs.every((t) => t.seqs('chat').length === 2), 'each tab with the two messages of the others', describeTabs);
    tabs.forEach((t, i) => expect([t.name, t.seqs('chat')]).toEqual([t.name, range(1, 3).filter((s) => s !== i + 1)]));

    // With echo, every tab has it; a channel the token does not grant is refused in the tab that asked.
    const follower = tabs.find((t) => !t.leads()) as TabPage;
    expect(await publishFrom(follower, 'chat', { from: follower.name }, true)).toMatchObject({ seq: 4, duplicate: false });
    await until(signal, () => tabs.every((t) => t.seqs('chat').includes(4)), 'message 4 in every tab', describeTabs);
    expect(await publishFrom(follower, 'news', {}, true)).toEqual({ error: 'HERALD_ERR_CLIENT_SERVER_ERROR', serverCode: 'forbidden' });
    expect(gw.gateway.connectionCount).toBe(1);
    expect(tabs.flatMap((t) => [...t.pageErrors, ...t.events.filter((e) => e.kind === 'warn' || e.kind === 'error').map((e) => String(e.data))])).toEqual([]);
  }, 60_000);
});
