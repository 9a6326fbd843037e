/**
 * The hub through its narrow ports: the engine handlers (message, disconnect), the Subscriptions port the
 * native protocol uses (register, prepare, finish, unsubscribe), and ConnectionHost.remove. Connections sit
 * on fake sockets; the engine is the memory engine, spied on or wrapped where a test needs to see or hold it.
 */
import { describe, expect, it, vi } from 'vitest';
import { ADMIN_CHANNEL, mintAdminToken } from '../src/auth/admin-token.js';
import { JwtAuth } from '../src/auth/jwt-auth.js';
import { createMemoryEngine } from '../src/engine/memory/engine.js';
import { encodeMessage } from '../src/engine/message.js';
import type { EngineMessage, PresenceConnection } from '../src/engine/types.js';
import { EngineUnavailableError } from '../src/util/errors.js';
import { API_KEY, JWT_SECRET, ManualClock, onCleanup, token } from './helpers.js';
import { coreHarness, holdRecover, turn, until, type FakeSocket } from './support/core.js';

type Core = Awaited<ReturnType<typeof coreHarness>>;

async function harness(...args: Parameters<typeof coreHarness>): Promise<Core> {
  const core = await coreHarness(...args);
  onCleanup(core.close);
  return core;
}

/** Frames of `channel` a socket got (messages and subscription answers), as [type, seq] or the whole frame. */
const onChannel = (socket: FakeSocket, channel: string) => socket.frames().filter((f) => f.channel === channel);
const messagesOf = (socket: FakeSocket, channel: string) => onChannel(socket, channel).filter((f) => f.type === 't');

const message = (channel: string, seq: number, epoch: string): EngineMessage => ({ channel, seq, epoch, frame: encodeMessage('t', channel, '{}', seq) });

const publish = (core: Core, channel: string, n = 1) =>
  (async () => {
    let epoch = '';
    for (let i = 0; i < n; i++) epoch = (await core.engine.broker.publish({ channel, type: 't', payloadJson: '{}' })).epoch;
    return epoch;
  })();

describe('hub: engine subscriptions', () => {
  it('subscribes the node in the engine on the first local subscriber and unsubscribes on the last', async () => {
    const core = await harness();
    const subscribe = vi.spyOn(core.engine.broker, 'subscribe');
    const unsubscribe = vi.spyOn(core.engine.broker, 'unsubscribe');
    const a = await core.connect('a', { subs: { news: {} } });
    const b = await core.connect('b', { subs: { news: {} } });
    expect(subscribe.mock.calls).toEqual([['news']]);
    expect(core.hub.localSubscribers('news')).toBe(2);

    core.send(a.conn, { type: 'unsubscribe', channel: 'news', id: 1 });
    await until(() => a.socket.frames().find((f) => f.type === 'unsubscribed'), 'unsubscribed');
    expect(unsubscribe).not.toHaveBeenCalled();
    expect(core.hub.localSubscribers('news')).toBe(1);

    b.conn.closed(1000);
    expect(unsubscribe.mock.calls).toEqual([['news']]);
    expect(core.hub.channelCount).toBe(0);

    // The next first subscriber subscribes the node again.
    await core.connect('c', { subs: { news: {} } });
    expect(subscribe.mock.calls).toEqual([['news'], ['news']]);
  });

  it('does not poison a channel whose engine subscribe failed: the next subscriber retries', async () => {
    const core = await harness();
    const subscribe = vi.spyOn(core.engine.broker, 'subscribe').mockRejectedValueOnce(new EngineUnavailableError('down'));
    const a = await core.connect('a', { subs: { news: {} } });
    expect(a.connected.subs).toEqual({});
    expect(await until(() => a.socket.frames().find((f) => f.type === 'error'), 'an error')).toMatchObject({ code: 'engine_unavailable', channel: 'news' });
    expect(core.hub.channelCount).toBe(0);
    expect(a.conn.subs.size).toBe(0);

    const b = await core.connect('b', { subs: { news: {} } });
    expect(b.connected.subs).toMatchObject({ news: { seq: 0, recovered: false } });
    expect(subscribe).toHaveBeenCalledTimes(2);
    core.send(a.conn, { type: 'subscribe', channel: 'news', id: 2 });
    await until(() => a.socket.frames().find((f) => f.type === 'subscribed'), 'a subscribed');
    await publish(core, 'news');
    await until(() => (messagesOf(a.socket, 'news').length === 1 && messagesOf(b.socket, 'news').length === 1 ? true : undefined), 'the message');
  });
});

describe('hub: prepare and finish', () => {
  it.each(['before', 'after'] as const)(
    'merges recovered messages and live ones held meanwhile without gap or duplicate (history read %s the live ones)',
    async (read) => {
      const held = holdRecover(createMemoryEngine({ clock: new ManualClock() }), read);
      const core = await harness({ engine: held.engine });
      const epoch = await publish(core, 'news', 3);
      const { conn, socket } = await core.connect('a');
      core.send(conn, { type: 'subscribe', channel: 'news', since: 1, epoch, id: 1 });
      await held.started;
      await publish(core, 'news', 2);
      expect(messagesOf(socket, 'news')).toEqual([]);
      held.release();
      await until(() => (messagesOf(socket, 'news').length >= 4 ? true : undefined), 'four messages');
      await publish(core, 'news');
      await until(() => (messagesOf(socket, 'news').length >= 5 ? true : undefined), 'a live message');
      await turn();
      const frames = onChannel(socket, 'news');
      expect(frames[0]).toMatchObject({ type: 'subscribed', id: 1, recovered: true, epoch });
      expect(frames.slice(1).map((f) => [f.type, f.seq])).toEqual([2, 3, 4, 5, 6].map((s) => ['t', s]));
    },
  );

  it('skips the late live copy of a message the replay already sent (Redis: history and pub/sub travel apart)', async () => {
    const core = await harness();
    const epoch = await publish(core, 'news', 3);
    const { conn, socket } = await core.connect('a');
    core.send(conn, { type: 'subscribe', channel: 'news', since: 1, epoch, id: 1 });
    await until(() => (messagesOf(socket, 'news').length >= 2 ? true : undefined), 'the replay');
    // The subscriber connection hands over seqs 2 and 3 after the history read did.
    core.hub.message(message('news', 3, epoch));
    core.hub.message(message('news', 2, epoch));
    await publish(core, 'news');
    await until(() => (messagesOf(socket, 'news').length >= 3 ? true : undefined), 'a live message');
    await turn();
    expect(messagesOf(socket, 'news').map((f) => f.seq)).toEqual([2, 3, 4]);
  });

  it('skips a late live copy at or below the position of a subscription without recovery, in a new epoch too', async () => {
    const core = await harness();
    const epoch = await publish(core, 'news', 2);
    const { conn, socket } = await core.connect('a');
    core.send(conn, { type: 'subscribe', channel: 'news', id: 1 });
    await until(() => (onChannel(socket, 'news').length >= 1 ? true : undefined), 'subscribed');
    core.hub.message(message('news', 2, epoch));
    core.hub.message(message('news', 1, 'E2'));
    await turn();
    expect(onChannel(socket, 'news').map((f) => [f.type, f.seq])).toEqual([
      ['subscribed', 2],
      ['subscribed', 0],
      ['t', 1],
    ]);
  });

  it('announces a new epoch reached while the subscription was set up before its first message', async () => {
    const held = holdRecover(createMemoryEngine({ clock: new ManualClock() }), 'after');
    const core = await harness({ engine: held.engine });
    const epoch = await publish(core, 'news', 2);
    const { conn, socket } = await core.connect('a');
    core.send(conn, { type: 'subscribe', channel: 'news', since: 1, epoch });
    await held.started;
    core.hub.message(message('news', 1, 'E2'));
    held.release();
    await until(() => (messagesOf(socket, 'news').length >= 2 ? true : undefined), 'two messages');
    await turn();
    expect(onChannel(socket, 'news').map((f) => [f.type, f.seq, f.epoch])).toEqual([
      ['subscribed', 2, epoch],
      ['t', 2, undefined],
      ['subscribed', 0, 'E2'],
      ['t', 1, undefined],
    ]);
  });
});

describe('hub: delivery', () => {
  it('sends a subscriber that knows another epoch the epoch reset before the message, once', async () => {
    const core = await harness();
    const a = await core.connect('a', { subs: { news: {} } });
    const b = await core.connect('b', { subs: { news: {} } });
    const old = (a.connected.subs as Record<string, { epoch: string }>)['news']?.epoch;
    expect(old).toEqual(expect.any(String));
    core.hub.message(message('news', 1, 'E2'));
    core.hub.message(message('news', 2, 'E2'));
    await until(() => (messagesOf(b.socket, 'news').length === 2 ? true : undefined), 'two messages');
    for (const { socket } of [a, b]) {
      expect(onChannel(socket, 'news').map((f) => [f.type, f.seq])).toEqual([
        ['subscribed', 0],
        ['t', 1],
        ['t', 2],
      ]);
      expect(onChannel(socket, 'news')[0]).toEqual({ type: 'subscribed', channel: 'news', seq: 0, epoch: 'E2', recovered: false });
    }
    expect(core.stats.delivered).toBe(4);
  });

  it('does not count deliveries on the gateway admin channel as delivered messages', async () => {
    const core = await harness({ auth: new JwtAuth({ secrets: [JWT_SECRET], apiKeys: [API_KEY], admin: true }) });
    const admin = await core.connect('admin', { token: (await mintAdminToken(API_KEY, core.clock.now())).token, subs: { [ADMIN_CHANNEL]: {}, news: {} } });
    expect(Object.keys(admin.connected.subs as object).sort()).toEqual(['news', ADMIN_CHANNEL].sort());
    const a = await core.connect('a', { subs: { news: {} } });
    const before = core.stats.delivered;
    await core.engine.broker.publish({ channel: ADMIN_CHANNEL, type: 'stats', payloadJson: '{}' });
    await publish(core, 'news');
    await until(() => (onChannel(admin.socket, ADMIN_CHANNEL).some((f) => f.type === 'stats') ? true : undefined), 'the stats message');
    await until(() => (messagesOf(a.socket, 'news').length === 1 && messagesOf(admin.socket, 'news').length === 1 ? true : undefined), 'news');
    expect(core.stats.delivered - before).toBe(2);
  });
});

describe('hub: connections', () => {
  it('joins no presence-channel members for a connection that closed while its subscription waited', async () => {
    const core = await harness();
    let subscribed: () => void = () => undefined;
    const subscribe = vi.spyOn(core.engine.broker, 'subscribe').mockImplementation(() => new Promise<void>((resolve) => (subscribed = resolve)));
    const join = vi.spyOn(core.engine.members, 'join');
    const { conn } = core.open('gone');
    const t = await token({ sub: '9', channels: ['presence:*'] }, { expiresAt: Math.floor(core.clock.now() / 1000) + 3600 });
    core.send(conn, { type: 'connect', token: t, subs: { 'presence:room': {} } });
    await until(() => (subscribe.mock.calls.some(([c]) => c === 'presence:room') ? true : undefined), 'subscribing');
    conn.closed(1006);
    subscribed();
    for (let i = 0; i < 5; i++) await turn();
    expect(join).not.toHaveBeenCalled();
    expect(await core.engine.members.list('presence:room')).toEqual([]);
  });
  it('joins no presence for a connection that closed while its subscription waited for the engine', async () => {
    const core = await harness();
    let subscribed: () => void = () => undefined;
    vi.spyOn(core.engine.broker, 'subscribe').mockImplementation(() => new Promise<void>((resolve) => (subscribed = resolve)));
    const join = vi.spyOn(core.engine.presence, 'join');
    const { conn } = core.open('gone');
    core.send(conn, { type: 'connect', subs: { news: {} } });
    await until(() => (core.hub.localSubscribers('news') === 1 ? true : undefined), 'subscribing');
    conn.closed(1006);
    subscribed();
    for (let i = 0; i < 5; i++) await turn();
    expect(join).not.toHaveBeenCalled();
    expect(await core.engine.presence.subscribers('news')).toBe(0);
  });

  it("adds a user's connection to presence without waiting for the inbox watch (one round trip, not two in a row)", async () => {
    const core = await harness();
    let watched: () => void = () => undefined;
    const watch = vi.spyOn(core.engine.inbox, 'watch').mockImplementation(() => new Promise<void>((resolve) => (watched = resolve)));
    const add = vi.spyOn(core.engine.presence, 'add');
    const { conn, socket } = core.open('u');
    core.send(conn, { type: 'connect', token: await token({ sub: '7' }, { expiresAt: Math.floor(core.clock.now() / 1000) + 3600 }) });
    await until(() => (add.mock.calls.length === 1 ? true : undefined), 'presence add');
    expect(watch).toHaveBeenCalledTimes(1);
    // Connected only once the watch is in place: messages published from now on reach the connection live.
    await turn();
    expect(socket.frames().find((f) => f.type === 'connected')).toBeUndefined();
    watched();
    await until(() => socket.frames().find((f) => f.type === 'connected'), 'connected');
  });

  it('remove() is idempotent, leaves every channel and removes presence, anonymous connections included', async () => {
    const core = await harness();
    const add = vi.spyOn(core.engine.presence, 'add');
    const removed = vi.spyOn(core.engine.presence, 'remove');
    const left = vi.spyOn(core.engine.presence, 'leave');
    const unsubscribe = vi.spyOn(core.engine.broker, 'unsubscribe');
    const anon = await core.connect('anon', { subs: { news: {} } });
    const user = await core.connect('u', { token: await token({ sub: '42' }, { expiresAt: Math.floor(core.clock.now() / 1000) + 3600 }), subs: { news: {} } });
    expect(user.connected.user).toBe('42');
    // Presence gets the connection itself (its client and user), not a copy.
    const who = (c: PresenceConnection): PresenceConnection => ({ client: c.client, user: c.user });
    expect(add.mock.calls.map(([c]) => who(c))).toEqual([
      { client: 'anon', user: null },
      { client: 'u', user: '42' },
    ]);
    expect(add.mock.calls[0]?.[0]).toBe(anon.conn);
    expect(await core.engine.presence.online(['42'])).toEqual(new Map([['42', 1]]));
    expect(await core.engine.presence.subscribers('news')).toBe(2);

    core.hub.remove(anon.conn);
    core.hub.remove(anon.conn);
    expect(removed.mock.calls.map(([c]) => who(c))).toEqual([{ client: 'anon', user: null }]);
    expect(left.mock.calls.map(([channel, c]) => [channel, who(c)])).toEqual([['news', { client: 'anon', user: null }]]);
    expect(anon.conn.subs.size).toBe(0);
    expect(core.hub.connections.has('anon')).toBe(false);
    expect(core.hub.localSubscribers('news')).toBe(1);
    expect(unsubscribe).not.toHaveBeenCalled();

    core.hub.remove(user.conn);
    core.hub.remove(user.conn);
    expect(removed).toHaveBeenCalledTimes(2);
    expect(unsubscribe.mock.calls.map((c) => c[0]).sort()).toEqual(['news', 'user:42']);
    expect(core.hub.channelCount).toBe(0);
    expect(await core.engine.presence.online(['42'])).toEqual(new Map([['42', 0]]));
    expect(await core.engine.presence.subscribers('news')).toBe(0);
    // Forgotten under its user too.
    expect(core.hub.disconnect({ user: '42', code: 4509, reason: 'gone' })).toBe(0);
  });

  it('disconnects by user and by client with the requested code', async () => {
    const core = await harness();
    const tok = (sub: string) => token({ sub }, { expiresAt: Math.floor(core.clock.now() / 1000) + 3600 });
    const a1 = await core.connect('a1', { token: await tok('42') });
    const a2 = await core.connect('a2', { token: await tok('42') });
    const b = await core.connect('b', { token: await tok('43') });
    expect(await core.engine.broker.disconnect({ user: '42', code: 4509, reason: 'banned' })).toBe(2);
    expect(a1.socket.closedWith).toEqual({ code: 4509, reason: 'banned' });
    expect(a2.socket.closedWith).toEqual({ code: 4509, reason: 'banned' });
    expect(b.socket.closedWith).toBeUndefined();
    expect(await core.engine.broker.disconnect({ client: 'b', code: 4000, reason: 'bye' })).toBe(1);
    expect(b.socket.closedWith).toEqual({ code: 4000, reason: 'bye' });
    expect(await core.engine.broker.disconnect({ client: 'nobody', code: 4000, reason: 'bye' })).toBe(0);
    expect(core.hub.connections.size).toBe(0);
  });

  it('counts only open connections in listChannels and subscriptionCount', async () => {
    const core = await harness();
    await core.connect('a', { subs: { x: {}, y: {} } });
    const { conn: pending } = core.open('p');
    // A connection still being set up (its connect is preparing subscriptions) is in the channel already.
    await core.hub.prepare(pending, 'x', {});
    expect(pending.state).toBe('connecting');
    expect(core.hub.localSubscribers('x')).toBe(2);
    expect(core.hub.listChannels({ limit: 10 })).toEqual({
      total: 2,
      channels: [
        { channel: 'x', subscribers: 1 },
        { channel: 'y', subscribers: 1 },
      ],
    });
    expect(core.hub.subscriptionCount()).toBe(2);
    pending.opened();
    expect(core.hub.listChannels({ limit: 1 })).toEqual({ total: 2, channels: [{ channel: 'x', subscribers: 2 }] });
    expect(core.hub.listChannels({ prefix: 'y', limit: 10 })).toEqual({ total: 1, channels: [{ channel: 'y', subscribers: 1 }] });
    expect(core.hub.subscriptionCount()).toBe(3);
  });
});
