/**
 * Pusher presence channels and client events on one node (docs/pusher.md): members with user_id and user_info,
 * member_added/member_removed on a user's first connection and last disconnection, member limits; client events
 * to the other subscribers only, with user_id on presence channels, refused where Pusher refuses them, rate
 * limited per connection. pusher-js 8 takes part as it is. Runs on both transports (scripts/test.sh).
 */
import { describe, expect, it } from 'vitest';
import { PusherCode } from '@herald/protocol';
import { presenceAuth, privateAuth, pusherEvent, pusherJs, pusherState, PusherTestClient, startPusherGateway } from './pusher-helpers.js';

const ROOM = 'presence-room';

async function join(c: PusherTestClient, user: string | number, info?: unknown) {
  const member = info === undefined ? { user_id: user } : { user_id: user, user_info: info };
  return c.subscribe(ROOM, presenceAuth(c.socketId, ROOM, member));
}

describe('pusher protocol: presence', () => {
  it('lists members in subscription_succeeded and announces first joins and last leaves to the others', async () => {
    const { port } = await startPusherGateway();
    const a = await PusherTestClient.connect(port);
    const okA = await join(a, '1', { name: 'Ann' });
    expect(JSON.parse(okA.data as string)).toEqual({ presence: { ids: ['1'], hash: { '1': { name: 'Ann' } }, count: 1 } });
    const b = await PusherTestClient.connect(port);
    const okB = await join(b, 2);
    const data = JSON.parse(okB.data as string) as { presence: { ids: string[]; hash: Record<string, unknown>; count: number } };
    expect(data.presence.ids.sort()).toEqual(['1', '2']);
    expect(data.presence.count).toBe(2);
    expect(data.presence.hash).toEqual({ '1': { name: 'Ann' }, '2': null });
    expect(await a.nextEvent('pusher_internal:member_added', ROOM)).toEqual({ event: 'pusher_internal:member_added', channel: ROOM, data: '{"user_id":"2"}' });
    // A second connection of user 2: no member_added; its departure: no member_removed.
    const b2 = await PusherTestClient.connect(port);
    await join(b2, '2');
    b2.ws.close();
    await b2.closed();
    b.send({ event: 'pusher:unsubscribe', data: { channel: ROOM } });
    expect(await a.nextEvent('pusher_internal:member_removed', ROOM)).toEqual({
      event: 'pusher_internal:member_removed',
      channel: ROOM,
      data: '{"user_id":"2"}',
    });
    expect(a.events('pusher_internal:member_added')).toHaveLength(1);
    expect(a.events('pusher_internal:member_removed')).toHaveLength(1);
    expect(b.events('pusher_internal:member_added')).toEqual([]);
  });

  it('sends no member_added of a user its subscription_succeeded listed (published while the subscription was set up)', async () => {
    const { port, gateway } = await startPusherGateway();
    const dave = await PusherTestClient.connect(port);
    await join(dave, 'dave');
    // Bob's subscription reads the members only once Ann has joined and Dave has left: Ann's member_added and Dave's
    // member_removed, published meanwhile, are held for him while his subscription is set up, and his
    // subscription_succeeded lists Ann already and Dave no more.
    const members = gateway.engine.members;
    const list = members.list.bind(members);
    let release: (() => void) | undefined;
    let gated: Promise<void> | undefined = new Promise<void>((resolve) => (release = resolve));
    members.list = async (channel) => {
      const gate = gated;
      gated = undefined;
      if (gate) await gate;
      return list(channel);
    };
    const b = await PusherTestClient.connect(port);
    b.send({ event: 'pusher:subscribe', data: { channel: ROOM, ...presenceAuth(b.socketId, ROOM, { user_id: 'bob' }) } });
    await b.roundTrip();
    const a = await PusherTestClient.connect(port);
    const okA = await join(a, 'ann');
    expect(JSON.parse(okA.data as string).presence.ids.sort()).toEqual(['ann', 'bob', 'dave']);
    dave.ws.terminate();
    await a.nextEvent('pusher_internal:member_removed', ROOM);
    release?.();
    const okB = await b.nextEvent('pusher_internal:subscription_succeeded', ROOM);
    expect(JSON.parse(okB.data as string).presence.ids.sort()).toEqual(['ann', 'bob']);
    // A later change still comes through: Ann leaves.
    a.ws.terminate();
    expect(JSON.parse((await b.nextEvent('pusher_internal:member_removed', ROOM)).data as string)).toEqual({ user_id: 'ann' });
    expect(b.events('pusher_internal:member_added')).toEqual([]);
    expect(b.events('pusher_internal:member_removed').map((f) => f.data)).toEqual(['{"user_id":"ann"}']);
  });

  it('announces member_removed when the last connection of a user closes', async () => {
    const { port } = await startPusherGateway();
    const a = await PusherTestClient.connect(port);
    await join(a, 'a');
    const b = await PusherTestClient.connect(port);
    await join(b, 'b', { n: 1 });
    expect(JSON.parse((await a.nextEvent('pusher_internal:member_added')).data as string)).toEqual({ user_id: 'b', user_info: { n: 1 } });
    b.ws.terminate();
    expect(JSON.parse((await a.nextEvent('pusher_internal:member_removed')).data as string)).toEqual({ user_id: 'b' });
  });

  it('refuses presence subscriptions without valid channel_data, and over the member limit', async () => {
    const { port } = await startPusherGateway({ app: { maxPresenceMembers: 1 } });
    const a = await PusherTestClient.connect(port);
    const forged = presenceAuth(a.socketId, ROOM, { user_id: '1' });
    expect((await a.subscribe(ROOM, { ...forged, channel_data: '{"user_id":"2"}' })).data).toMatchObject({ type: 'AuthError', status: 401 });
    expect((await a.subscribe(ROOM, { auth: forged.auth })).data).toMatchObject({ type: 'AuthError' });
    expect((await a.subscribe(ROOM, presenceAuth(a.socketId, ROOM, { user_id: '' }))).data).toMatchObject({ status: 400 });
    expect((await join(a, '1')).event).toBe('pusher_internal:subscription_succeeded');
    const b = await PusherTestClient.connect(port);
    expect((await join(b, '2')).data).toMatchObject({ type: 'LimitReached' });
    const a2 = await PusherTestClient.connect(port);
    expect((await join(a2, '1')).event).toBe('pusher_internal:subscription_succeeded');
  });

  it('works with pusher-js: members.me, here/joining/leaving through its events', async () => {
    const { port } = await startPusherGateway();
    const ann = pusherJs(port, { member: { user_id: '1', user_info: { name: 'Ann' } } });
    const ch = ann.subscribe(ROOM) as unknown as { members: { me: unknown; count: number; each(fn: (m: { id: string; info: unknown }) => void): void } };
    await pusherEvent(ann, ROOM, 'pusher:subscription_succeeded');
    expect(ch.members.me).toEqual({ id: '1', info: { name: 'Ann' } });
    const added = pusherEvent<{ id: string; info: unknown }>(ann, ROOM, 'pusher:member_added');
    const bob = pusherJs(port, { member: { user_id: '2', user_info: { name: 'Bob' } } });
    bob.subscribe(ROOM);
    expect((await added).data).toEqual({ id: '2', info: { name: 'Bob' } });
    expect(ch.members.count).toBe(2);
    const removed = pusherEvent<{ id: string }>(ann, ROOM, 'pusher:member_removed');
    bob.disconnect();
    expect((await removed).data).toMatchObject({ id: '2' });
    expect(ch.members.count).toBe(1);
  });
});

describe('pusher protocol: client events', () => {
  it('relays client events to the other subscribers, never back to the sender, with user_id on presence channels', async () => {
    const { port } = await startPusherGateway();
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => PusherTestClient.connect(port)));
    for (const [i, x] of [a, b, c].entries()) await join(x as PusherTestClient, `u${i}`);
    a?.send({ event: 'client-typing', channel: ROOM, data: { typing: true } });
    for (const x of [b, c] as PusherTestClient[]) {
      const f = await x.nextEvent('client-typing');
      expect(f).toEqual({ event: 'client-typing', channel: ROOM, data: '{"typing":true}', user_id: 'u0' });
    }
    const priv = 'private-chat';
    for (const x of [a, b] as PusherTestClient[]) await x.subscribe(priv, { auth: privateAuth(x.socketId, priv) });
    b?.send({ event: 'client-msg', channel: priv, data: 'raw text' });
    const got = await (a as PusherTestClient).nextEvent('client-msg');
    expect(got).toEqual({ event: 'client-msg', channel: priv, data: 'raw text' });
    await (b as PusherTestClient).roundTrip();
    expect(b?.events('client-msg')).toEqual([]);
    expect(a?.events('client-typing')).toEqual([]);
  });

  it('refuses client events where Pusher does: not subscribed (4009), public channel, disabled, too large (4301)', async () => {
    const { port } = await startPusherGateway({ app: { maxEventSize: 100 } });
    const a = await PusherTestClient.connect(port);
    const errors = async (frame: unknown, code: number) => {
      a.send(frame);
      expect((await a.nextEvent('pusher:error')).data).toMatchObject({ code });
    };
    await errors({ event: 'client-x', channel: 'private-nope', data: {} }, PusherCode.Unauthorized);
    await a.subscribe('public');
    await errors({ event: 'client-x', channel: 'public', data: {} }, PusherCode.ClientEventRejected);
    await a.subscribe('private-p', { auth: privateAuth(a.socketId, 'private-p') });
    await errors({ event: 'client-x', channel: 'private-p', data: { big: 'x'.repeat(200) } }, PusherCode.ClientEventRejected);
    const off = await startPusherGateway({ app: { clientEvents: false } });
    const b = await PusherTestClient.connect(off.port);
    await b.subscribe('private-p', { auth: privateAuth(b.socketId, 'private-p') });
    b.send({ event: 'client-x', channel: 'private-p', data: {} });
    expect((await b.nextEvent('pusher:error')).data).toMatchObject({ code: PusherCode.ClientEventRejected });
    expect(a.closeCode).toBeUndefined();
  });

  it('rate limits client events per connection (10/s by default) with pusher:error 4301, without closing', async () => {
    const { port, clock } = await startPusherGateway({ clientRate: 1000, clientBurst: 1000 });
    const [a, b] = await Promise.all([PusherTestClient.connect(port), PusherTestClient.connect(port)]);
    for (const x of [a, b]) await x.subscribe('private-r', { auth: privateAuth(x.socketId, 'private-r') });
    for (let i = 0; i < 12; i++) a.send({ event: 'client-n', channel: 'private-r', data: { i } });
    await a.roundTrip();
    const refused = await a.waitFor(() => (a.events('pusher:error').length === 2 ? a.events('pusher:error') : undefined), 'two refusals');
    for (const e of refused) expect(e.data).toMatchObject({ code: PusherCode.ClientEventRejected });
    await b.waitFor(() => (b.events('client-n').length === 10 ? true : undefined), 'ten events');
    clock.advance(1000);
    a.send({ event: 'client-n', channel: 'private-r', data: { i: 'again' } });
    await b.nextWhere((f) => f.event === 'client-n' && f.data === '{"i":"again"}', 'an event after a second');
    expect(a.closeCode).toBeUndefined();
  });

  it('delivers a pusher-js trigger to another pusher-js client', async () => {
    const { port } = await startPusherGateway();
    const x = pusherJs(port);
    const y = pusherJs(port);
    const cx = x.subscribe('private-w');
    y.subscribe('private-w');
    await Promise.all([pusherEvent(x, 'private-w', 'pusher:subscription_succeeded'), pusherEvent(y, 'private-w', 'pusher:subscription_succeeded')]);
    const got = pusherEvent<{ hi: number }>(y, 'private-w', 'client-hello');
    expect(cx.trigger('client-hello', { hi: 1 })).toBe(true);
    expect((await got).data).toEqual({ hi: 1 });
    await pusherState(x, 'connected');
  });
});
