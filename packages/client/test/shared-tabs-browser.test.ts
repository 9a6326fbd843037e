// Tabs sharing one connection in a real Chromium: several pages of one origin in one browser context, each
// running the built bundle (dist/herald.min.js, so `npm run build` first) against a real gateway. One socket
// at the gateway; every message in every subscribed tab exactly once and in order, while the leader tab is
// closed or frozen mid-stream; a page without Web Locks keeps a connection of its own. Every wait is on an
// event from the pages (or, for the gateway's connection count, a poll); nothing sleeps.
import { describe, expect, it } from 'vitest';
import { api, onCleanup, poll, publish, range, Signal, startGateway, WAIT } from './support/harness.js';
import { openTab, servePages, until, useCdpChromium, type TabPage } from './support/tab-pages.js';

const context = useCdpChromium();

const TOTAL = 300;

/** A gateway, the pages' origin, and tabs (`name` → channels) connected to it through one shared connection. */
async function setup(plan: Record<string, string[]>, leaderTimeout: number) {
  const gw = await startGateway();
  const base = await servePages();
  const signal = new Signal();
  const tabs: TabPage[] = [];
  for (const [name, channels] of Object.entries(plan)) {
    tabs.push(await openTab(context(), base, name, `ws=${encodeURIComponent(gw.ws)}&timeout=${leaderTimeout}&channels=${channels.join(',')}`, signal));
  }
  const describeTabs = (): string =>
    tabs.map((t) => `${t.name}: ${t.states().join('>')} ${t.leads() ? 'LEADS' : ''} ${JSON.stringify(t.pageErrors)}`).join('; ');
  await until(signal, () => tabs.every((t) => t.state() === 'connected') || tabs.some((t) => t.pageErrors.length > 0), 'every tab connected', describeTabs);
  expect(tabs.flatMap((t) => t.pageErrors)).toEqual([]);
  await until(signal, () => tabs.filter((t) => t.leads()).length === 1, 'one leader', describeTabs);
  return { gw, base, signal, tabs, describeTabs };
}

/** The gateway's connection count, once it has settled at `n` (a closed socket takes a moment to be noticed). */
const connections = (gw: { connectionCount: number }, n: number): Promise<number> =>
  poll(async () => (gw.connectionCount === n ? n : undefined), `${n} connection(s) at the gateway`).catch(() => gw.connectionCount);

/**
 * Publishes 1..TOTAL on `channel` through the HTTP API, never more than `window` ahead of the slowest tab of
 * `live()` (the tabs that can receive now), so the stream keeps flowing while tabs change roles.
 */
function stream(http: string, channel: string, signal: Signal, live: () => TabPage[], window = 40) {
  let published = 0;
  let stopped = false;
  onCleanup(() => {
    stopped = true;
    signal.notify();
  });
  const slowest = (): number => Math.min(...live().map((t) => t.seqs(channel).length));
  const done = (async () => {
    for (let i = 1; i <= TOTAL; i++) {
      await signal.until(
        () => stopped || i - slowest() <= window,
        `room to publish #${i}`,
        120_000,
        () => `published ${published}, slowest ${slowest()}`,
      );
      if (stopped) return;
      await publish(http, { channel, type: 'tick', payload: { i } });
      published = i;
      signal.notify();
    }
  })();
  done.catch(() => undefined); // awaited by the test
  return { done, published: () => published, slowest };
}

describe('tabs sharing one connection, in Chromium', () => {
  it('holds one connection at the gateway and delivers each message once to exactly the tabs subscribed to it', async () => {
    const { gw, signal, tabs, describeTabs } = await setup({ t1: ['news'], t2: ['news', 'sport'], t3: ['sport'], t4: ['news'] }, 2000);
    expect(await connections(gw.gateway, 1)).toBe(1);
    const stats = await api(gw.http, 'GET', '/api/stats');
    expect(stats.status).toBe(200);
    expect(stats.body.connections).toBe(1);
    for (let i = 1; i <= 5; i++) {
      await publish(gw.http, { channel: 'news', type: 'n', payload: { i } });
      await publish(gw.http, { channel: 'sport', type: 's', payload: { i } });
    }
    const want: Record<string, [number, number]> = { t1: [5, 0], t2: [5, 5], t3: [0, 5], t4: [5, 0] };
    await until(
      signal,
      () => tabs.every((t) => t.seqs('news').length >= (want[t.name]?.[0] ?? 0) && t.seqs('sport').length >= (want[t.name]?.[1] ?? 0)),
      'the messages',
      describeTabs,
    );
    for (const t of tabs) {
      const [news, sport] = want[t.name] ?? [0, 0];
      expect([t.name, t.seqs('news'), t.seqs('sport')]).toEqual([t.name, range(1, news), range(1, sport)]);
      expect(t.events.filter((e) => e.kind === 'warn' || e.kind === 'error')).toEqual([]);
    }
    expect(await connections(gw.gateway, 1)).toBe(1);
    expect(tabs.filter((t) => t.leads())).toHaveLength(1);
  }, 60_000);

  it(`keeps every tab at 1..${TOTAL} exactly once and in order when the leader tab is closed mid-stream`, async () => {
    const { gw, signal, tabs, describeTabs } = await setup({ a: ['feed'], b: ['feed'], c: ['feed'] }, 2000);
    const closed = new Set<TabPage>();
    const live = (): TabPage[] => tabs.filter((t) => !closed.has(t));
    const s = stream(gw.http, 'feed', signal, live);
    await until(signal, () => s.slowest() >= 100, '100 messages in every tab', describeTabs);
    // The leader now (a loaded machine may have moved it since the setup).
    const leader = await until(signal, () => tabs.find((t) => t.leads()), 'the leader', describeTabs);
    const closedAt = Date.now();
    closed.add(leader);
    await leader.page.close();
    const next = await until(signal, () => live().find((t) => t.leads()), 'another tab to take over', describeTabs);
    const tookOver = (next.debugs().at(-1)?.at ?? 0) - closedAt;
    console.info(`leader closed at message ${s.published()}: ${next.name} took over ${tookOver} ms later`);
    expect(tookOver).toBeLessThan(5000);
    await s.done;
    await until(signal, () => live().every((t) => t.seqs('feed').length >= TOTAL), `${TOTAL} messages in the remaining tabs`, describeTabs);
    for (const t of live()) {
      expect(t.seqs('feed')).toEqual(range(1, TOTAL));
      expect(t.states().slice(-3)).toEqual(['disconnected', 'connecting', 'connected']);
      expect(t.events.filter((e) => e.kind === 'warn' || e.kind === 'error')).toEqual([]);
    }
    expect(await connections(gw.gateway, 1)).toBe(1);
  }, 120_000);

  it('replaces a frozen leader; woken, the old leader has stepped down without posting as leader, and no tab misses or repeats a message', async () => {
    const { gw, signal, tabs, describeTabs } = await setup({ a: ['feed'], b: ['feed'], c: ['feed'] }, 1500);
    let frozen: TabPage | undefined;
    const live = (): TabPage[] => tabs.filter((t) => t !== frozen);
    const s = stream(gw.http, 'feed', signal, live);
    await until(signal, () => s.slowest() >= 80, '80 messages in every tab', describeTabs);
    const leader = await until(signal, () => tabs.find((t) => t.leads()), 'the leader', describeTabs);
    const cdp = await leader.cdp();
    const statesBefore = leader.states().length;
    frozen = leader;
    await cdp.send('Page.setWebLifecycleState', { state: 'frozen' });
    const frozenAt = Date.now();
    const next = await until(signal, () => live().find((t) => t.leads()), 'a follower to take the lock', describeTabs);
    const takeoverAt = next.debugs().at(-1)?.at ?? 0;
    console.info(`leader frozen at message ${s.published()}: ${next.name} took over ${takeoverAt - frozenAt} ms later (leaderTimeout 1500)`);
    expect(takeoverAt - frozenAt).toBeLessThan(6000);
    await until(signal, () => s.published() >= 200 && s.slowest() >= 200, '200 messages without the frozen tab', describeTabs);

    const activeAt = Date.now();
    await cdp.send('Page.setWebLifecycleState', { state: 'active' });
    frozen = undefined;
    await until(signal, () => !leader.leads() && leader.states().slice(statesBefore).includes('connected'), 'the old leader to follow', describeTabs);
    await s.done;
    await until(signal, () => tabs.every((t) => t.seqs('feed').length >= TOTAL), `${TOTAL} messages in every tab`, describeTabs);
    for (const t of tabs) {
      expect([t.name, t.seqs('feed')]).toEqual([t.name, range(1, TOTAL)]);
      expect(t.events.filter((e) => e.kind === 'warn' || e.kind === 'error')).toEqual([]);
    }
    // Once its lock was taken, the old leader posted nothing as leader (leader messages carry a term).
    const posts = await leader.posts();
    expect(posts.filter((p) => p.term !== undefined && p.at >= takeoverAt)).toEqual([]);
    expect(posts.filter((p) => p.at >= takeoverAt).map((p) => p.t)).toContain('join');
    const stepDown = leader.debugs().find((d) => d.data === 'this tab no longer holds the shared connection');
    expect(stepDown).toBeDefined();
    console.info(
      `the old leader stepped down ${stepDown!.at - takeoverAt} ms after the takeover (${stepDown!.at < activeAt ? 'while frozen' : 'once active'})`,
    );
    expect(leader.states().slice(statesBefore)).toEqual(['disconnected', 'connecting', 'connected']);
    expect(await connections(gw.gateway, 1)).toBe(1);
  }, 120_000);

  it('a sign-out (close()) in a follower tab closes every tab and the connection', async () => {
    const { gw, signal, tabs, describeTabs } = await setup({ a: ['news'], b: ['news'], c: [] }, 2000);
    const follower = tabs.find((t) => !t.leads()) as TabPage;
    await follower.page.evaluate(() => (window as unknown as { client: { close(): Promise<void> } }).client.close());
    await until(signal, () => tabs.every((t) => t.state() === 'closed'), 'every tab closed', describeTabs);
    for (const t of tabs) expect(t.events.filter((e) => e.kind === 'state').at(-1)?.data).toMatchObject({ to: 'closed', code: 1000 });
    expect(await connections(gw.gateway, 0)).toBe(0);
  }, 60_000);

  it('a page without Web Locks keeps a connection of its own and says so in its debug log', async () => {
    const gw = await startGateway();
    const base = await servePages();
    const signal = new Signal();
    const query = `ws=${encodeURIComponent(gw.ws)}&timeout=2000&channels=news`;
    const a = await openTab(context(), base, 'a', query, signal);
    const b = await openTab(context(), base, 'b', query, signal);
    const lockless = await openTab(context(), base, 'lockless', query, signal, ['delete Navigator.prototype.locks;']);
    const all = [a, b, lockless];
    await until(signal, () => all.every((t) => t.state() === 'connected'), 'every tab connected');
    expect(await lockless.page.evaluate(() => 'locks' in navigator)).toBe(false);
    expect(lockless.debugs().map((d) => d.data)).toContainEqual(expect.stringMatching(/connects on its own/));
    expect(a.debugs().map((d) => d.data)).not.toContainEqual(expect.stringMatching(/connects on its own/));
    expect(await connections(gw.gateway, 2)).toBe(2);
    for (let i = 1; i <= 3; i++) await publish(gw.http, { channel: 'news', type: 'n', payload: { i } });
    await until(signal, () => all.every((t) => t.seqs('news').length >= 3), 'the messages');
    for (const t of all) expect(t.seqs('news')).toEqual([1, 2, 3]);
    expect(WAIT).toBeGreaterThan(0);
  }, 60_000);
});
