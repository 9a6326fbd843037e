// Tabs sharing one connection, in a simulated browser (support/tabs.ts): one clock, per-tab timers and tasks,
// Web Locks with steal, a BroadcastChannel, a small gateway. No sleeps: time moves only in world.advance().
import { describe, expect, it } from 'vitest';
import { ClientErrorCode } from '../src/index.js';
import { range } from './support/harness.js';
import { World, tokenFor, type Tab } from './support/tabs.js';

const TOKEN = tokenFor('42');

/** Opens tabs with the same user, subscribes them, connects them and waits until every one is connected. */
async function tabs<K extends string>(w: World, plan: Record<K, string[]>, options = {}): Promise<Record<K, Tab>> {
  const out = {} as Record<K, Tab>;
  for (const name of Object.keys(plan) as K[]) {
    const t = w.tab(name, { token: TOKEN, ...options });
    for (const c of plan[name]) t.client.subscribe(c);
    t.client.connect();
    out[name] = t;
  }
  await w.until(() => w.tabs.every((t) => t.client.state === 'connected'), 'every tab connected');
  return out;
}

/** Names of the main lock granted so far (the per-tab locks have one more path segment). */
const leaderGrants = (w: World): string[] => w.locks.grants.filter((g) => g.split('/').length === 3).map((g) => g.split(' ')[0] ?? '');

const upstream = (w: World, type: string): any[] => w.gateway.sockets.flatMap((s) => s.frames.filter((f) => f.type === type));

describe('tabs sharing one connection', () => {
  it('elects one leader once; every tab is connected through its one socket with the same client id', async () => {
    const w = new World();
    const { a, b, c } = await tabs(w, { a: ['news'], b: ['news', 'sport'], c: ['sport'] });
    expect(w.gateway.sockets).toHaveLength(1);
    expect(w.gateway.sockets[0]?.tab).toBe(a);
    expect(leaderGrants(w)).toEqual(['a']);
    const ids = [a, b, c].map((t) => t.client.clientId);
    expect(new Set(ids).size).toBe(1);
    expect(ids[0]).toBe('c1');
    for (const t of [a, b, c]) expect(t.states.map((s) => s.to)).toEqual(['connecting', 'connected']);
    // Channels of joins that arrived before the socket opened are in its connect frame; later ones subscribe.
    const subscribed = new Set([...Object.keys(upstream(w, 'connect')[0]?.subs ?? {}), ...upstream(w, 'subscribe').map((f) => f.channel)]);
    expect([...subscribed].sort()).toEqual(['news', 'sport']);
    expect(b.client.user).toBe('42');
    expect(b.client.getSubscription('user:42')?.state).toBe('subscribed');
    await w.advance(10_000);
    expect(leaderGrants(w)).toEqual(['a']);
    expect(w.gateway.sockets).toHaveLength(1);
    expect(w.tabs.every((t) => t.errors.length === 0)).toBe(true);
  });

  it('delivers a message to exactly the tabs subscribed to its channel, once each and in order', async () => {
    const w = new World();
    const { a, b, c } = await tabs(w, { a: ['news'], b: ['news', 'sport'], c: ['sport'] });
    w.gateway.publish('news', 3);
    w.gateway.publish('sport', 2);
    w.gateway.publish('news', 1);
    w.gateway.publish('user:42', 1);
    await w.advance(10);
    expect(a.seen).toEqual(['news 1', 'news 2', 'news 3', 'news 4', 'user:42 1']);
    expect(b.seen).toEqual(['news 1', 'news 2', 'news 3', 'sport 1', 'sport 2', 'news 4', 'user:42 1']);
    expect(c.seen).toEqual(['sport 1', 'sport 2', 'user:42 1']);
    // A tab that did not subscribe does not even log the other tabs' messages.
    expect(c.logger.debugs.filter((d) => d.message.includes('without subscription'))).toEqual([]);
  });

  it('reference-counts subscriptions: subscribed on the server by the first tab, unsubscribed by the last', async () => {
    const w = new World();
    const { a, b } = await tabs(w, { a: ['news'], b: [] });
    const before = upstream(w, 'subscribe').length;
    const sb = b.client.subscribe('weather');
    await w.advance(10);
    expect(
      upstream(w, 'subscribe')
        .slice(before)
        .map((f) => f.channel),
    ).toEqual(['weather']);
    const sa = a.client.subscribe('weather');
    await w.advance(10);
    expect(upstream(w, 'subscribe').slice(before)).toHaveLength(1); // answered by the leader, not the server
    expect(sa.state).toBe('subscribed');
    w.gateway.publish('weather', 2);
    await w.advance(10);
    expect([a.seqs('weather'), b.seqs('weather')]).toEqual([
      [1, 2],
      [1, 2],
    ]);
    sb.unsubscribe();
    await w.advance(10);
    expect(upstream(w, 'unsubscribe')).toEqual([]);
    w.gateway.publish('weather', 1);
    await w.advance(10);
    expect([a.seqs('weather'), b.seqs('weather')]).toEqual([
      [1, 2, 3],
      [1, 2],
    ]);
    sa.unsubscribe();
    await w.advance(10);
    expect(upstream(w, 'unsubscribe').map((f) => f.channel)).toEqual(['weather']);
    expect(w.gateway.sockets[0]?.subs.has('weather')).toBe(false);
    // A tab that goes away (pagehide) releases its channels too.
    b.client.subscribe('traffic');
    await w.advance(10);
    expect(w.gateway.sockets[0]?.subs.has('traffic')).toBe(true);
    b.leave();
    await w.advance(10);
    expect(w.gateway.sockets[0]?.subs.has('traffic')).toBe(false);
    expect(w.gateway.sockets[0]?.subs.has('news')).toBe(true);
  });

  it('a tab joining behind the others gets a replay of its own; the others drop what they already have', async () => {
    const w = new World();
    const { a } = await tabs(w, { a: ['news'] });
    w.gateway.publish('news', 5);
    await w.advance(10);
    const late = w.tab('late', { token: TOKEN });
    late.client.subscribe('news', undefined, { since: 2, epoch: 'e1' });
    const fresh = w.tab('fresh', { token: TOKEN });
    fresh.client.subscribe('news');
    late.client.connect();
    fresh.client.connect();
    await w.until(() => late.client.state === 'connected' && fresh.client.state === 'connected', 'the new tabs');
    w.gateway.publish('news', 1);
    await w.advance(10);
    expect(upstream(w, 'subscribe').map((f) => [f.channel, f.since, f.epoch])).toEqual([['news', 2, 'e1']]);
    // The replay went to the tab that asked for it alone.
    const replayed = w.posted.filter((p) => p.data.t === 'frame' && p.data.f.kind === 'message' && p.data.f.frame.seq <= 5);
    expect(replayed.filter((p) => p.data.tab === undefined)).toHaveLength(5);
    expect(replayed.filter((p) => p.data.tab !== undefined)).toHaveLength(3);
    expect(late.seqs('news')).toEqual([3, 4, 5, 6]);
    expect(fresh.seqs('news')).toEqual([6]);
    expect(a.seqs('news')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(w.gateway.sockets).toHaveLength(1);
  });

  it('after the shared connection drops, every tab recovers from its own position, exactly once', async () => {
    const w = new World();
    const all = Object.values(await tabs(w, { a: ['feed'], b: ['feed'], c: ['feed', 'other'] }));
    w.gateway.publish('feed', 10);
    await w.advance(10);
    w.gateway.kick(w.gateway.open()[0]!, 1012, 'restart');
    w.gateway.publish('feed', 5);
    await w.until(() => all.every((t) => t.client.state === 'connected' && t.seqs('feed').length === 15), 'recovery');
    for (const t of all) {
      expect(t.seqs('feed')).toEqual(range(1, 15));
      expect(t.states.map((s) => s.to)).toEqual(['connecting', 'connected', 'disconnected', 'connecting', 'connected']);
      expect(t.states[2]).toMatchObject({ code: 1012, reason: 'restart' });
    }
    expect(w.gateway.sockets).toHaveLength(2);
    expect(upstream(w, 'connect')[1]?.subs).toMatchObject({ feed: { since: 10, epoch: 'e1' } });
  });

  it('when the leader tab closes during a stream, another takes over and recovers by since: no tab misses or repeats one', async () => {
    const w = new World();
    const { a, b, c } = await tabs(w, { a: ['feed'], b: ['feed'], c: ['feed'] });
    for (let i = 0; i < 20; i++) {
      w.gateway.publish('feed');
      await w.advance(7);
    }
    a.kill();
    for (let i = 0; i < 30; i++) {
      w.gateway.publish('feed');
      await w.advance(7);
    }
    await w.until(() => [b, c].every((t) => t.seqs('feed').length === 50), 'every message in the remaining tabs');
    for (const t of [b, c]) {
      expect(t.seqs('feed')).toEqual(range(1, 50));
      expect(t.states.map((s) => s.to)).toEqual(['connecting', 'connected', 'disconnected', 'connecting', 'connected']);
      expect(t.states[2]?.reason).toBe('leader changed');
    }
    expect(leaderGrants(w)).toEqual(['a', 'b']);
    expect(w.gateway.open().map((s) => s.tab.name)).toEqual(['b']);
    // The new leader resumed from the lowest position a tab reported.
    const resumed = upstream(w, 'connect')[1]?.subs?.feed;
    expect(resumed.epoch).toBe('e1');
    expect(resumed.since).toBeLessThanOrEqual(Math.min(...[b, c].map((t) => t.seqs('feed').length)));
  });

  it('replaces a frozen leader: a follower steals the lock; the old leader wakes, posts nothing as leader and follows', async () => {
    const w = new World();
    const { a, b, c } = await tabs(w, { a: ['feed'], b: ['feed'], c: ['feed'] });
    w.gateway.publish('feed', 5);
    await w.advance(10);
    const leaderTerm = w.posted.filter((p) => p.tab === a && p.data.term !== undefined).at(-1)?.data.term as number;
    a.frozen = true;
    const frozenAt = w.now;
    for (let i = 0; i < 40; i++) {
      w.gateway.publish('feed');
      await w.advance(50);
    }
    // A frozen tab cannot answer the probe; after leaderTimeout (1000) of silence a follower takes over.
    expect(leaderGrants(w)).toEqual(['a', 'b']);
    const tookOver = w.posted.find((p) => p.tab === b && p.data.t === 'beat' && p.data.term > leaderTerm);
    expect(tookOver!.at - frozenAt).toBeLessThanOrEqual(2000);
    expect(w.posted.some((p) => p.tab === b && p.data.t === 'probe')).toBe(true);
    await w.until(() => [b, c].every((t) => t.seqs('feed').length === 45), 'the followers to get every message');

    const thawedAt = w.posted.length;
    await w.thaw(a);
    await w.advance(2000);
    // The old leader's timers ran first and its socket still had frames: nothing went out as leader.
    const fromOld = w.posted.slice(thawedAt).filter((p) => p.tab === a);
    expect(fromOld.filter((p) => p.data.term !== undefined)).toEqual([]);
    expect(fromOld.map((p) => p.data.t)).toContain('join');
    w.gateway.publish('feed', 5);
    await w.until(() => w.tabs.every((t) => t.seqs('feed').length === 50), 'every tab to have every message');
    for (const t of [a, b, c]) expect(t.seqs('feed')).toEqual(range(1, 50));
    expect(a.states.map((s) => s.to)).toEqual(['connecting', 'connected', 'disconnected', 'connecting', 'connected']);
    expect(w.gateway.open().map((s) => s.tab.name)).toEqual(['b']);
    expect(leaderGrants(w)).toEqual(['a', 'b']);
    expect(a.logger.warnings).toEqual([]);
  });

  it('a leader that was only slow (its lock still held) carries on after checking the lock', async () => {
    const w = new World();
    const { a, b } = await tabs(w, { a: ['feed'], b: ['feed'] });
    // Frozen for less than leaderTimeout: nobody stole, but its timers are late.
    a.frozen = true;
    w.gateway.publish('feed', 3);
    await w.advance(700);
    expect(w.locks.queries).toEqual([]);
    await w.thaw(a);
    await w.advance(100);
    // Its late beat made it check the lock first; what it held back went out after.
    expect(w.locks.queries).toEqual(['a']);
    expect(b.seqs('feed')).toEqual([1, 2, 3]);
    expect(leaderGrants(w)).toEqual(['a']);
    expect(w.gateway.sockets).toHaveLength(1);
  });

  it('a follower that becomes visible has the leader check the connection; its connect() retries a waiting one now', async () => {
    const w = new World();
    const { b } = await tabs(w, { a: [], b: [] }, { minDelay: 10_000, maxDelay: 10_000 });
    const pings = upstream(w, 'ping').length;
    b.show();
    await w.advance(10);
    expect(upstream(w, 'ping')).toHaveLength(pings + 1);
    w.gateway.kick(w.gateway.open()[0]!, 1006);
    await w.advance(10);
    expect(b.states.at(-1)).toMatchObject({ to: 'disconnected', code: 1006, delay: 5000 });
    b.client.connect();
    await w.advance(10);
    expect(w.gateway.sockets).toHaveLength(2);
    expect(b.client.state).toBe('connected');
  });

  it('spreads a token the leader fetched: the next leader connects with it, without a getToken of its own', async () => {
    const w = new World();
    const calls: string[] = [];
    const getToken =
      (tab: string, sub = '42') =>
      () => {
        calls.push(tab);
        return Promise.resolve(tokenFor(sub, `${tab}${calls.length}`));
      };
    const a = w.tab('a', { getToken: getToken('a') });
    const b = w.tab('b', { getToken: getToken('b') });
    a.client.subscribe('news');
    b.client.subscribe('news');
    a.client.connect();
    b.client.connect();
    await w.until(() => [a, b].every((t) => t.client.state === 'connected'), 'both connected');
    // Each tab asked once, to learn its user; the leader connected with the token it had.
    expect(calls).toEqual(['a', 'b']);
    w.gateway.kick(w.gateway.open()[0]!, 4401, 'token expired');
    await w.until(() => w.gateway.open().length === 1 && b.client.state === 'connected', 'the leader to reconnect');
    expect(calls).toEqual(['a', 'b', 'a']);
    const refreshed = upstream(w, 'connect')[1]?.token as string;
    a.kill();
    await w.until(() => w.gateway.open().length === 1 && b.client.state === 'connected', 'b to take over');
    expect(upstream(w, 'connect')[2]?.token).toBe(refreshed);
    expect(calls).toEqual(['a', 'b', 'a']);
  });

  it('a getToken that never settles (asked to learn the user) fails after connectTimeout and is asked again', async () => {
    const w = new World();
    const resolvers: ((t: string) => void)[] = [];
    const a = w.tab('a', { getToken: () => new Promise<string>((r) => resolvers.push(r)), connectTimeout: 5000 });
    a.client.connect();
    await w.advance(4999);
    expect(a.errors).toEqual([]);
    await w.advance(1);
    expect(a.errors.map((e) => [e.code, (e.cause as Error).message])).toEqual([[ClientErrorCode.Token, 'getToken() did not settle in 5000 ms']]);
    expect(a.states.at(-1)).toMatchObject({ to: 'disconnected', reason: 'token refresh failed', attempt: 0 });
    await w.until(() => resolvers.length === 2, 'getToken to be asked again');
    resolvers[0]?.(tokenFor('42', 'late'));
    resolvers[1]?.(tokenFor('42', 'fresh'));
    await w.until(() => a.client.state === 'connected', 'a to connect');
    expect(upstream(w, 'connect')).toHaveLength(1);
    expect(a.errors).toHaveLength(1);
  });

  it('a sign-out (close()) in one tab closes every tab; connect() starts again only where it is called', async () => {
    const w = new World();
    const { a, b, c } = await tabs(w, { a: ['news'], b: ['news'], c: [] });
    b.client.close();
    await w.advance(10);
    for (const t of [a, b, c]) expect(t.states.at(-1)).toMatchObject({ to: 'closed', code: 1000 });
    expect(w.gateway.sockets[0]?.closedWith).toBe(1000);
    // Closed tabs leave the election: nothing runs on behind a signed-out app.
    const quiet = w.posted.length;
    await w.advance(10_000);
    expect(w.posted.slice(quiet)).toEqual([]);
    expect([...w.locks.held.keys()]).toEqual([]);
    c.client.connect();
    await w.until(() => c.client.state === 'connected', 'c to connect again');
    expect(w.gateway.open()).toHaveLength(1);
    expect([a.client.state, b.client.state]).toEqual(['closed', 'closed']);
    w.gateway.publish('news', 1);
    await w.advance(10);
    expect(a.seqs('news')).toEqual([]);
  });

  it.each([false, true])('a terminal close code closes every tab (lock granted before the close is read: %s)', async (locksFirst) => {
    const w = new World();
    const all = Object.values(await tabs(w, { a: [], b: [], c: [] }));
    w.locksFirst = locksFirst;
    w.gateway.kick(w.gateway.open()[0]!, 4509, 'disconnected by the server API');
    await w.advance(10);
    for (const t of all) expect(t.states.at(-1)).toMatchObject({ to: 'closed', code: 4509 });
    await w.advance(5000);
    expect(w.gateway.open()).toEqual([]);
    expect(all.map((t) => t.client.state)).toEqual(['closed', 'closed', 'closed']);
  });

  it('hands a tab that joins later the inbox messages not acknowledged yet, once, while the leader tab has handled them', async () => {
    const w = new World();
    const { a } = await tabs(w, { a: [] });
    // Never acknowledged by this gateway: the leader keeps the message for the tabs that join later.
    w.gateway.open()[0]?.deliver([{ type: 'notice', channel: 'user:42', payload: { n: 1 }, seq: 0, inbox: 'm1', time: 1 }]);
    await w.advance(10);
    expect(a.seen).toEqual(['user:42 0']);
    // The leader's app has the message (with its ack()); the copy the relay posts to the new tab must still clone.
    const b = w.tab('b', { token: TOKEN });
    b.client.connect();
    await w.until(() => b.client.state === 'connected', 'b connected');
    await w.advance(10);
    expect(b.seen).toEqual(['user:42 0']);
    expect(a.seen).toEqual(['user:42 0']);
    expect([a, b].every((t) => t.errors.length === 0)).toBe(true);
  });

  it('tells every tab when the server lost a channel history', async () => {
    const w = new World();
    const all = Object.values(await tabs(w, { a: ['orders'], b: ['orders'] }));
    w.gateway.publish('orders', 3);
    await w.advance(10);
    const resets: string[] = [];
    for (const t of all) t.client.on('reset', (e) => resets.push(`${t.name} ${e.reason} ${e.previous.seq} -> ${e.seq}@${e.epoch}`));
    w.gateway.resetHistory('orders', 'e2');
    w.gateway.kick(w.gateway.open()[0]!, 1012);
    await w.until(() => all.every((t) => t.client.state === 'connected') && resets.length === 2, 'the resets');
    expect(resets.sort()).toEqual(['a epoch_changed 3 -> 0@e2', 'b epoch_changed 3 -> 0@e2']);
    w.gateway.publish('orders', 1);
    await w.advance(10);
    for (const t of all) expect(t.seqs('orders')).toEqual([1, 2, 3, 1]);
  });
});

describe('who shares', () => {
  it('tabs of different users never share; anonymous tabs share per URL; sharedKey decides when given', async () => {
    const w = new World();
    const open = (name: string, o: object) => {
      const t = w.tab(name, o);
      t.client.connect();
      return t;
    };
    open('u42', { token: tokenFor('42') });
    open('u42b', { token: tokenFor('42', 'another token') });
    open('u43', { token: tokenFor('43') });
    open('anon1', {});
    open('anon2', {});
    open('anonOther', { url: 'ws://other.test/ws' });
    open('k1', { token: tokenFor('7'), sharedKey: 'team' });
    open('k2', { token: tokenFor('8'), sharedKey: 'team' });
    await w.until(() => w.tabs.every((t) => t.client.state === 'connected'), 'all connected');
    const holders = w.gateway.open().map((s) => s.tab.name);
    expect(holders.sort()).toEqual(['anon1', 'anonOther', 'k1', 'u42', 'u43']);
  });

  it('without Web Locks the tab uses a connection of its own and says so in a debug log', async () => {
    const w = new World();
    const a = w.tab('a', { token: TOKEN });
    const lockless = w.tab('b', { token: TOKEN, environment: { ...a.env, locks: undefined } });
    const unshared = w.tab('c', { token: TOKEN, shared: false });
    for (const t of [a, lockless, unshared]) t.client.connect();
    await w.until(() => w.tabs.every((t) => t.client.state === 'connected'), 'all connected');
    expect(w.gateway.open()).toHaveLength(3);
    expect(lockless.logger.debugs.map((d) => d.message)).toContainEqual(expect.stringMatching(/connects on its own/));
    expect(unshared.logger.debugs.map((d) => d.message)).not.toContainEqual(expect.stringMatching(/connects on its own/));
  });
});
