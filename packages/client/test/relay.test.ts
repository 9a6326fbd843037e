// The leader's relay on its own: tab requests and server frames in, frames for the server and posts for the
// tabs out. Pure: no clock, no I/O.
import type { ServerFrame, SubscriptionResult } from '@herald/protocol';
import { describe, expect, it } from 'vitest';
import { Relay } from '../src/relay.js';
import type { LeaderBody } from '../src/tab-messages.js';

function setup() {
  const up: any[] = [];
  const posts: LeaderBody[] = [];
  const relay = new Relay({ upstream: (f) => up.push(f), post: (b) => posts.push(b) });
  /** What `tab` got (targeted or for everyone) from its `connected` on, as short strings. */
  const got = (tab: string): string[] =>
    posts
      .slice(
        Math.max(
          0,
          posts.findIndex((p) => p.t === 'connected' && p.tab === tab),
        ),
      )
      .filter((p) => p.tab === undefined || p.tab === tab)
      .map((p) => {
        if (p.t === 'connected') return `connected ${JSON.stringify(p.f.subs)}`;
        if (p.t !== 'frame') return p.t;
        const f = p.f;
        if (f.kind === 'message') return `${f.frame.channel} ${f.frame.seq}`;
        const c = f.frame as any;
        const recovered = c.recovered === undefined ? undefined : c.recovered ? 'recovered' : 'fresh';
        return [c.type, c.channel, c.seq ?? c.code, recovered, c.id === undefined ? undefined : `#${c.id}`].filter((x) => x !== undefined).join(' ');
      });
  return { relay, up, posts, got };
}

const connected = (subs: Record<string, SubscriptionResult>, user: string | null = '42') => ({
  type: 'connected' as const,
  client: 'c1',
  user,
  ping: 25_000,
  subs,
});
const msg = (channel: string, seq: number): ServerFrame => ({ kind: 'message', frame: { type: 'u', channel, payload: {}, seq } });
const ctl = (frame: object): ServerFrame => ({ kind: 'control', frame }) as ServerFrame;
const res = (seq: number, recovered: boolean, epoch = 'e1') => ({ seq, epoch, recovered });

describe('Relay', () => {
  it("sends the tabs' inbox acknowledgements up as they are, gives inbox messages and the server's acked to every tab", () => {
    const { relay, up, posts } = setup();
    relay.join('A', {});
    relay.join('B', {});
    relay.connected(connected({ 'user:42': res(0, false) }));
    const inboxMessage: ServerFrame = { kind: 'message', frame: { type: 'n', channel: 'user:42', payload: {}, seq: 0, inbox: 'm1' } };
    relay.frame(inboxMessage);
    relay.request('B', { type: 'ack', inbox: ['m1'] });
    expect(up).toEqual([{ type: 'ack', inbox: ['m1'] }]);
    relay.frame(ctl({ type: 'acked', inbox: ['m1'] }));
    const forAll = posts.filter((p) => p.t === 'frame' && p.tab === undefined).map((p) => (p.t === 'frame' ? p.f.frame : undefined));
    expect(forAll).toEqual([inboxMessage.frame, { type: 'acked', inbox: ['m1'] }]);
    // Before its `connected`, a tab's requests are void (it joins again with everything).
    relay.request('C', { type: 'ack', inbox: ['m2'] });
    expect(up).toHaveLength(1);
  });

  it("sends the tabs' publishes up under ids of its own and answers each tab under the tab's id; a lost connection voids them", () => {
    const { relay, up, posts } = setup();
    relay.join('A', {});
    relay.join('B', {});
    relay.connected(connected({ 'user:42': res(0, false) }));
    const publish = (id: number) => ({ type: 'publish' as const, channel: 'room', event: 'said', payload: {}, key: `k${id}`, id });
    relay.request('A', publish(1));
    relay.request('B', publish(1));
    expect(up.map((f) => [f.key, f.id])).toEqual([
      ['k1', expect.any(Number)],
      ['k1', expect.any(Number)],
    ]);
    const [toA, toB] = up.map((f) => f.id as number);
    expect(toA).not.toBe(toB);
    posts.length = 0;
    relay.frame(ctl({ type: 'error', code: 'rate_limited', message: 'slow', channel: 'room', id: toB }));
    relay.frame(ctl({ type: 'published', channel: 'room', seq: 5, epoch: 'e1', id: toA }));
    expect(posts).toEqual([
      { t: 'frame', tab: 'B', f: ctl({ type: 'error', code: 'rate_limited', message: 'slow', channel: 'room', id: 1 }) },
      { t: 'frame', tab: 'A', f: ctl({ type: 'published', channel: 'room', seq: 5, epoch: 'e1', id: 1 }) },
    ]);
    // An answer that came after the connection was lost is for nobody (the tab sends it again on the next one).
    relay.request('A', publish(2));
    const late = up.at(-1).id as number;
    relay.lost();
    posts.length = 0;
    relay.frame(ctl({ type: 'published', channel: 'room', seq: 6, epoch: 'e1', id: late }));
    expect(posts.filter((p) => p.t === 'frame' && p.tab === 'A')).toEqual([]);
  });

  it("gives the members of a presence channel in every tab's connected, also to a tab that joins later", () => {
    const { relay, posts } = setup();
    relay.join('A', { 'presence:room': {} });
    relay.join('B', { 'presence:room': {} });
    const members = [{ user: '42', info: { name: 'Ann' } }];
    relay.connected(connected({ 'user:42': res(0, false), 'presence:room': { ...res(0, false), members, count: 1 } }));
    relay.join('C', { 'presence:room': {} });
    const subsOf = (tab: string) => posts.flatMap((p) => (p.t === 'connected' && p.tab === tab ? [p.f.subs['presence:room']] : []))[0];
    for (const tab of ['A', 'B', 'C']) expect([tab, subsOf(tab)]).toEqual([tab, { seq: 0, epoch: 'e1', recovered: false, members, count: 1 }]);
  });

  it('gives a tab that joins later the inbox messages not acknowledged yet, after its connected', () => {
    const { relay, posts } = setup();
    relay.join('A', {});
    relay.connected(connected({ 'user:42': res(0, false) }));
    const m = (id: string): ServerFrame => ({ kind: 'message', frame: { type: 'n', channel: 'user:42', payload: {}, seq: 0, inbox: id } });
    relay.frame(m('m1'));
    relay.frame(m('m2'));
    relay.frame(ctl({ type: 'acked', inbox: ['m1'] }));
    posts.length = 0;
    relay.join('B', {});
    expect(posts.map((p) => [p.t, p.tab, p.t === 'frame' && p.f.kind === 'message' ? p.f.frame.inbox : undefined])).toEqual([
      ['connected', 'B', undefined],
      ['frame', 'B', 'm2'],
    ]);
    // A new connection replays from the server: nothing is kept across it.
    relay.lost();
    relay.connected(connected({ 'user:42': res(0, false) }));
    posts.length = 0;
    relay.join('C', {});
    expect(posts.map((p) => p.t)).toEqual(['connected']);
  });

  it('connects with the lowest position the joining tabs have, and answers each tab for its own position', () => {
    const { relay, up, got } = setup();
    relay.join('A', { news: { since: 5, epoch: 'e1' } });
    relay.join('B', { news: { since: 3, epoch: 'e1' }, sport: {} });
    expect(relay.members).toBe(2);
    expect(relay.connectSubs()).toEqual({ news: { since: 3, epoch: 'e1' }, sport: {} });
    relay.connected(connected({ news: res(9, true), sport: res(2, false), 'user:42': res(0, false) }));
    for (let seq = 4; seq <= 9; seq++) relay.frame(msg('news', seq));
    relay.frame(msg('news', 10));
    expect(got('A')).toEqual([
      'connected {"news":{"seq":9,"epoch":"e1","recovered":true},"user:42":{"seq":0,"epoch":"e1","recovered":false}}',
      ...[4, 5, 6, 7, 8, 9, 10].map((s) => `news ${s}`),
    ]);
    expect(got('B')[0]).toBe(
      'connected {"news":{"seq":9,"epoch":"e1","recovered":true},"sport":{"seq":2,"epoch":"e1","recovered":false},"user:42":{"seq":0,"epoch":"e1","recovered":false}}',
    );
    expect(up).toEqual([]);
  });

  it('gives a tab behind what was already posted a resubscribe of its own, whose replay goes to it alone', () => {
    const { relay, up, got } = setup();
    relay.join('A', {});
    relay.connectSubs();
    relay.connected(connected({ 'user:42': res(0, false) }));
    relay.request('A', { type: 'subscribe', channel: 'news', id: 1 });
    expect(up).toEqual([{ type: 'subscribe', channel: 'news', id: 1 }]);
    relay.frame(ctl({ type: 'subscribed', channel: 'news', ...res(4, false), id: 1 }));
    relay.frame(msg('news', 5));
    relay.frame(msg('news', 6));
    relay.join('B', { news: { since: 2, epoch: 'e1' } });
    relay.join('C', { news: { since: 6, epoch: 'e1' } });
    relay.join('D', { news: {} });
    expect(up.slice(1)).toEqual([{ type: 'subscribe', channel: 'news', since: 2, epoch: 'e1', id: 2 }]);
    relay.frame(ctl({ type: 'subscribed', channel: 'news', ...res(7, true), id: 2 }));
    for (const seq of [3, 4, 5, 6, 7]) relay.frame(msg('news', seq));
    relay.frame(msg('news', 8));
    expect(got('A')).toEqual([
      'connected {"user:42":{"seq":0,"epoch":"e1","recovered":false}}',
      'subscribed news 4 fresh #1',
      'news 5',
      'news 6',
      'news 7',
      'news 8',
    ]);
    expect(got('B').slice(1)).toEqual(['subscribed news 7 recovered', 'news 3', 'news 4', 'news 5', 'news 6', 'news 7', 'news 8']);
    expect(got('C')[0]).toContain('"news":{"seq":6,"epoch":"e1","recovered":true}');
    expect(got('C').slice(1)).toEqual(['news 7', 'news 8']);
    expect(got('D')[0]).toContain('"news":{"seq":6,"epoch":"e1","recovered":false}');
  });

  it('subscribes a channel for its first tab and unsubscribes it with its last; answers each unsubscribe', () => {
    const { relay, up, got } = setup();
    relay.join('A', {});
    relay.join('B', {});
    relay.connected(connected({}, null));
    relay.request('A', { type: 'subscribe', channel: 'x', id: 1 });
    relay.request('B', { type: 'subscribe', channel: 'x', id: 7 });
    expect(up).toHaveLength(1);
    relay.frame(ctl({ type: 'subscribed', channel: 'x', ...res(0, false), id: 1 }));
    expect(got('B').at(-1)).toBe('subscribed x 0 fresh #7');
    relay.request('A', { type: 'unsubscribe', channel: 'x', id: 2 });
    expect(up).toHaveLength(1);
    expect(got('A').at(-1)).toBe('unsubscribed x #2');
    relay.request('B', { type: 'unsubscribe', channel: 'x', id: 8 });
    expect(up.at(-1)).toMatchObject({ type: 'unsubscribe', channel: 'x' });
    relay.frame(ctl({ type: 'unsubscribed', channel: 'x', id: up.at(-1).id }));
    relay.frame(msg('x', 1)); // late
    expect(got('A').at(-1)).toBe('unsubscribed x #2');
    // A tab's join lists all its channels: one it dropped while disconnected is released.
    relay.request('A', { type: 'subscribe', channel: 'y', id: 3 });
    relay.lost();
    relay.join('A', {});
    relay.connected(connected({ y: res(0, false) }, null));
    expect(up.at(-1)).toMatchObject({ type: 'unsubscribe', channel: 'y' });
  });

  it('answers a join once per connection; after a reconnect, again', () => {
    const { relay, posts } = setup();
    relay.join('A', {});
    relay.connected(connected({}));
    relay.join('A', {});
    expect(posts.filter((p) => p.t === 'connected')).toHaveLength(1);
    relay.request('A', { type: 'subscribe', channel: 'n', id: 1 });
    relay.lost();
    relay.request('A', { type: 'subscribe', channel: 'm', id: 2 }); // void until the tab joins again
    relay.join('A', { n: {} });
    expect(relay.connectSubs()).toEqual({ n: {}, 'user:42': {} });
    relay.connected(connected({ n: res(0, false), 'user:42': res(0, false) }));
    expect(posts.filter((p) => p.t === 'connected')).toHaveLength(2);
  });

  it('a failed subscription: engine_unavailable keeps the channel for a retry; forbidden drops it; both reach its tabs only', () => {
    const { relay, up, got } = setup();
    relay.join('A', {});
    relay.join('B', {});
    relay.connected(connected({}, null));
    relay.request('A', { type: 'subscribe', channel: 'p', id: 1 });
    relay.frame(ctl({ type: 'error', code: 'engine_unavailable', message: 'later', channel: 'p', id: 1 }));
    expect(got('A').at(-1)).toBe('error p engine_unavailable');
    relay.request('A', { type: 'subscribe', channel: 'p', id: 2 });
    expect(up.at(-1)).toEqual({ type: 'subscribe', channel: 'p', id: 2 });
    relay.frame(ctl({ type: 'error', code: 'forbidden', message: 'no', channel: 'p', id: 2 }));
    relay.frame(msg('p', 1));
    expect(got('A').at(-1)).toBe('error p forbidden');
    expect(got('B').filter((g) => g.startsWith('error p'))).toEqual(['error p engine_unavailable', 'error p forbidden']);
    // An error about the connection itself reaches every tab.
    relay.frame(ctl({ type: 'error', code: 'rate_limited', message: 'slow down' }));
    expect(got('B').at(-1)).toBe('error rate_limited');
  });

  it('passes a reset (new epoch) on to every tab, and tells the others when a tab’s resubscribe found one', () => {
    const { relay, got } = setup();
    relay.join('A', { o: {} });
    relay.join('B', { o: {} });
    relay.connectSubs();
    relay.connected(connected({ o: res(3, false) }, null));
    relay.frame(ctl({ type: 'subscribed', channel: 'o', ...res(0, false, 'e2') }));
    expect(got('B').at(-1)).toBe('subscribed o 0 fresh');
    relay.request('A', { type: 'subscribe', channel: 'o', since: 0, epoch: 'e2', id: 5 });
    relay.frame(msg('o', 1));
    // B is behind what was posted: its own resubscribe finds the history lost again (epoch e3).
    relay.request('B', { type: 'subscribe', channel: 'o', since: 0, epoch: 'e2', id: 9 });
    relay.frame(ctl({ type: 'subscribed', channel: 'o', ...res(0, false, 'e3'), id: 1 }));
    expect(got('A').slice(-3)).toEqual(['subscribed o 0 recovered #5', 'o 1', 'subscribed o 0 fresh']);
    expect(got('B').at(-1)).toBe('subscribed o 0 fresh #9');
    relay.join('C', { o: {} });
    expect(got('C').at(-1)).toContain('"o":{"seq":0,"epoch":"e3","recovered":false}');
  });
});

describe('Relay: presence channels', () => {
  it("keeps a presence channel's members current from join/leave frames, for tabs that subscribe later", () => {
    const { relay, posts, up } = setup();
    relay.join('A', {});
    relay.join('B', {});
    relay.connected(connected({}, 'ann'));
    relay.request('A', { type: 'subscribe', channel: 'presence:room', id: 1 });
    relay.frame(ctl({ type: 'subscribed', channel: 'presence:room', ...res(0, false), members: [{ user: 'ann' }], count: 1, id: up.at(-1).id }));
    const presence = (type: 'join' | 'leave', payload: object): ServerFrame => ({
      kind: 'message',
      frame: { type, channel: 'presence:room', payload, seq: 0 } as any,
    });
    relay.frame(presence('join', { users: [{ user: 'bob', info: { n: 1 } }, { user: 'cy' }], count: 3 }));
    relay.frame(presence('leave', { users: ['cy'], count: 2 }));
    relay.request('B', { type: 'subscribe', channel: 'presence:room', id: 9 });
    const answer = posts.at(-1) as any;
    expect(answer).toMatchObject({ t: 'frame', tab: 'B' });
    expect(answer.f.frame).toMatchObject({
      type: 'subscribed',
      channel: 'presence:room',
      count: 2,
      id: 9,
      members: [{ user: 'ann' }, { user: 'bob', info: { n: 1 } }],
    });
    // Over the gateway's member limit the frames carry counts only: the relay keeps no list then.
    relay.frame(presence('join', { count: 500 }));
    relay.request('A', { type: 'subscribe', channel: 'presence:room', id: 2 });
    expect((posts.at(-1) as any).f.frame).toMatchObject({ count: 500 });
    expect((posts.at(-1) as any).f.frame).not.toHaveProperty('members');
  });
});
