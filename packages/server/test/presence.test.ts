/**
 * Native presence channels (`presence:*`): members in `subscribed` (one entry per user, with the `info` of its
 * token), `join`/`leave` frames on a user's first connection and last disconnection, cluster-wide on Redis,
 * counts only above the member limit, and the members in `GET /api/channels/<channel>`.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { Broker, ChannelMember, Members } from '../src/engine/types.js';
import { createRedisEngine } from '../src/engine/redis/engine.js';
import type { RedisMembers } from '../src/engine/redis/members.js';
import { NativePresence } from '../src/protocols/native/presence.js';
import { silentLogger } from '../src/util/logger.js';
import { api, eventually, startGateway, TestClient, token, type Frame } from './helpers.js';
import { rawClient, REDIS_URL, testPrefix } from './redis-helpers.js';

const ROOM = 'presence:room';
const pushed = <T>(list: T[], item: T): T => (list.push(item), item);
const member = async (sub: string, info?: object) => token({ sub, channels: ['presence:*'], ...(info ? { info } : {}) });

/** Frames of type `type` on `channel` a client received so far. */
const framesOf = (c: TestClient, type: string, channel = ROOM): Frame[] => c.frames.filter((f) => f.type === type && f['channel'] === channel);

/** Waits until the client has answered a ping: every frame sent to it before is in. */
async function drain(c: TestClient): Promise<void> {
  c.send({ type: 'ping', id: 999 });
  await c.nextOf('pong');
}

describe('presence channels', () => {
  it('lists members in subscribed, and sends join/leave on the first connection and last disconnection of a user', async () => {
    const gw = await startGateway();
    const ann = await TestClient.connect(gw.ws, { token: await member('1', { name: 'Ann' }), subs: { [ROOM]: {} } });
    expect((ann.connected.subs as Record<string, unknown>)[ROOM]).toMatchObject({ members: [{ user: '1', info: { name: 'Ann' } }], count: 1 });

    const bob = await TestClient.connect(gw.ws, { token: await member('2', { name: 'Bob' }) });
    bob.client.send({ type: 'subscribe', channel: ROOM, id: 1 });
    const answer = await bob.client.nextOf('subscribed');
    expect(answer['count']).toBe(2);
    expect((answer['members'] as Array<{ user: string }>).map((m) => m.user).sort()).toEqual(['1', '2']);
    const join = await eventually(() => framesOf(ann.client, 'join')[0], 'join');
    expect(join).toEqual({ type: 'join', channel: ROOM, payload: { users: [{ user: '2', info: { name: 'Bob' } }], count: 2 }, seq: 0 });

    // A second tab of Bob: no join for the others; it closing is no leave either (Bob is still there).
    const bob2 = await TestClient.connect(gw.ws, { token: await member('2', { name: 'Bob' }), subs: { [ROOM]: {} } });
    bob2.client.terminate();
    await eventually(async () => ((await api(gw.http, 'GET', `/api/channels/${ROOM}`)).body.subscribers === 2 ? true : undefined), 'the tab to go');
    await drain(ann.client);
    expect(framesOf(ann.client, 'join')).toHaveLength(1);
    expect(framesOf(ann.client, 'leave')).toHaveLength(0);

    const api1 = (await api(gw.http, 'GET', `/api/channels/${ROOM}`)).body;
    expect(api1.users).toBe(2);
    expect(api1.members).toEqual(
      expect.arrayContaining([
        { user: '1', info: { name: 'Ann' } },
        { user: '2', info: { name: 'Bob' } },
      ]),
    );

    bob.client.send({ type: 'unsubscribe', channel: ROOM, id: 2 });
    const leave = await eventually(() => framesOf(ann.client, 'leave')[0], 'leave');
    expect(leave).toEqual({ type: 'leave', channel: ROOM, payload: { users: ['2'], count: 1 }, seq: 0 });
  });

  it('admits members only with a grant, and only connections with a user', async () => {
    const gw = await startGateway();
    const anonymous = await TestClient.connect(gw.ws);
    anonymous.client.send({ type: 'subscribe', channel: ROOM, id: 1 });
    expect(await anonymous.client.next()).toMatchObject({ type: 'error', code: 'forbidden', id: 1 });
    const ungranted = await TestClient.connect(gw.ws, { token: await token({ sub: '3', channels: ['private:*'] }) });
    ungranted.client.send({ type: 'subscribe', channel: ROOM, id: 2 });
    expect(await ungranted.client.nextOf('error')).toMatchObject({ code: 'forbidden', id: 2 });
    // Lookalikes of the prefix are invalid names, as for every reserved prefix.
    ungranted.client.send({ type: 'subscribe', channel: 'Presence:room', id: 3 });
    expect(await ungranted.client.nextOf('error')).toMatchObject({ code: 'invalid_channel', id: 3 });
  });

  it('sends only counts above presenceMaxMembers', async () => {
    const gw = await startGateway({ presenceMaxMembers: 2 });
    const watcher = await TestClient.connect(gw.ws, { token: await member('w'), subs: { [ROOM]: {} } });
    await TestClient.connect(gw.ws, { token: await member('a'), subs: { [ROOM]: {} } });
    const third = await TestClient.connect(gw.ws, { token: await member('b'), subs: { [ROOM]: {} } });
    const result = (third.connected.subs as Record<string, Record<string, unknown>>)[ROOM];
    expect(result).toMatchObject({ count: 3 });
    expect(result).not.toHaveProperty('members');
    const joins = await eventually(() => (framesOf(watcher.client, 'join').length === 2 ? framesOf(watcher.client, 'join') : undefined), 'two joins');
    expect(joins.map((f) => f['payload'])).toEqual([{ users: [{ user: 'a' }], count: 2 }, { count: 3 }]);
  });

  it('leaves no member behind for a connection that closes while its join is under way (Redis: the join is a round trip)', async () => {
    const gw = await startGateway({ engine: createRedisEngine({ url: REDIS_URL, prefix: testPrefix(), logger: silentLogger() }) });
    const watcher = await TestClient.connect(gw.ws, { token: await member('w'), subs: { [ROOM]: {} } });
    // Tabs closed right after they asked to join: some close while their join is on its way to Redis.
    for (let i = 0; i < 8; i++) {
      const tab = await TestClient.connect(gw.ws, { token: await member(`tab-${i}`) });
      tab.client.send({ type: 'subscribe', channel: ROOM, id: 1 });
      setTimeout(() => tab.client.terminate(), i % 4);
    }
    await eventually(async () => {
      const body = (await api(gw.http, 'GET', `/api/channels/${ROOM}`)).body;
      return body.users === 1 && body.subscribers === 1 ? true : undefined;
    }, 'only the watcher left in the room');
    expect((await api(gw.http, 'GET', `/api/channels/${ROOM}`)).body.members).toEqual([{ user: 'w', info: null }]);
    // Every join the watcher saw has its leave.
    const users = (type: string): string[] =>
      framesOf(watcher.client, type)
        .flatMap((f) => (f['payload'] as { users: Array<{ user: string } | string> }).users.map((u) => (typeof u === 'string' ? u : u.user)))
        .sort();
    await eventually(() => (users('leave').join() === users('join').join() ? true : undefined), 'a leave for every join');
  });

  it("keeps members and sends join/leave across two Redis nodes, and says a killed node's users left", async () => {
    const prefix = testPrefix();
    const clients: Redis[] = [];
    const node = async () =>
      startGateway({
        engine: createRedisEngine({
          prefix,
          logger: silentLogger(),
          presenceTtl: 1500,
          redis: (_role, defaults) => pushed(clients, new Redis(REDIS_URL, defaults)),
        }),
      });
    const n1 = await node();
    const n2Clients = clients.length;
    const n2 = await node();
    const ann = await TestClient.connect(n1.ws, { token: await member('1'), subs: { [ROOM]: {} } });
    const bob = await TestClient.connect(n2.ws, { token: await member('2'), subs: { [ROOM]: {} } });
    expect(((bob.connected.subs as Record<string, Record<string, unknown>>)[ROOM]?.['members'] as Array<{ user: string }>).map((m) => m.user).sort()).toEqual([
      '1',
      '2',
    ]);
    await eventually(() => framesOf(ann.client, 'join')[0], 'the join from the other node');
    // Bob on both nodes: the one on n1 closing is no leave.
    const bobToo = await TestClient.connect(n1.ws, { token: await member('2'), subs: { [ROOM]: {} } });
    bobToo.client.terminate();
    await eventually(async () => ((await api(n1.http, 'GET', `/api/channels/${ROOM}`)).body.subscribers === 2 ? true : undefined), 'the second Bob to go');
    await drain(ann.client);
    expect(framesOf(ann.client, 'leave')).toHaveLength(0);
    // n2 dies like a kill -9: its Redis connections are gone, nothing is cleaned up, its members expire, and n1
    // (which refreshes its own members of the channel) finds Bob gone and says so.
    for (const c of clients.slice(n2Clients)) c.disconnect();
    const leave = await eventually(() => framesOf(ann.client, 'leave')[0], "the leave of the dead node's user", 15_000);
    expect(leave['payload']).toEqual({ users: ['2'], count: 1 });
    expect((await api(n1.http, 'GET', `/api/channels/${ROOM}`)).body.members).toEqual([{ user: '1', info: null }]);
  });

  it('says a user joined again when its node puts it back after another node said it left (a stalled node)', async () => {
    const prefix = testPrefix();
    // Long TTLs: the refresh that puts the member back is the test's own.
    const node = () => startGateway({ engine: createRedisEngine({ url: REDIS_URL, prefix, logger: silentLogger(), presenceTtl: 60_000 }) });
    const n1 = await node();
    const n2 = await node();
    const ann = await TestClient.connect(n1.ws, { token: await member('1', { name: 'Ann' }), subs: { [ROOM]: {} } });
    const bob = await TestClient.connect(n2.ws, { token: await member('2'), subs: { [ROOM]: {} } });
    await eventually(() => framesOf(ann.client, 'join')[0], 'the join from the other node');
    // n1 could not renew Ann in time: n2 finds her entry expired first, and says she left.
    const conns = `${prefix}:{${ROOM}}:pm:conns`;
    await rawClient().zadd(conns, Date.now() - 1, ann.connected['client'] as string);
    expect(await n2.gateway.engine.members.count(ROOM)).toBe(1);
    const leave = await eventually(() => framesOf(bob.client, 'leave')[0], 'the leave');
    expect(leave['payload']).toEqual({ users: ['1'], count: 1 });
    await (n1.gateway.engine.members as RedisMembers).refresh();
    // The join after the leave: Ann's first join (unsequenced, published as she subscribed) may reach Bob after his
    // own subscribe was answered, on a busy machine, as the protocol allows.
    const after = () => bob.client.frames.slice(bob.client.frames.indexOf(leave) + 1);
    const join = await eventually(() => after().find((f) => f.type === 'join' && f['channel'] === ROOM), 'the join again');
    expect(join['payload']).toEqual({ users: [{ user: '1', info: { name: 'Ann' } }], count: 2 });
  });
});

describe('NativePresence', () => {
  it('coalesces the joins and leaves of one turn per channel, and cancels a leave and a return', async () => {
    const sent: Array<{ type: string; payload: unknown }> = [];
    const users = new Map<string, Set<string>>();
    const members: Members = {
      join: (_ch, client, m) => {
        const set = users.get(m.user) ?? new Set<string>();
        users.set(m.user, set);
        const first = set.size === 0;
        set.add(client);
        return Promise.resolve({ first });
      },
      leave: (_ch, client) => {
        for (const [user, set] of users) if (set.delete(client)) return Promise.resolve({ user, last: set.size === 0 });
        return Promise.resolve(null);
      },
      list: () => Promise.resolve([...users].filter(([, s]) => s.size > 0).map(([user]): ChannelMember => ({ user, infoJson: 'null' }))),
      count: () => Promise.resolve([...users.values()].filter((s) => s.size > 0).length),
      onGone: () => () => undefined,
      onBack: () => () => undefined,
    };
    const broker = {
      broadcast: (b: { type: string; payloadJson: string }) => void sent.push({ type: b.type, payload: JSON.parse(b.payloadJson) }),
    } as unknown as Broker;
    const presence = new NativePresence({ members, broker, logger: silentLogger(), maxMembers: 100 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => presence.join(ROOM, `c${i}`, `u${i}`, undefined)));
    await eventually(() => (sent.length > 0 ? true : undefined), 'the join frame');
    expect(sent).toHaveLength(1);
    expect((sent[0]?.payload as { users: unknown[]; count: number }).users).toHaveLength(20);
    // u0 leaves and comes back within one turn: nothing to tell.
    sent.length = 0;
    await Promise.all([presence.leave(ROOM, 'c0'), presence.join(ROOM, 'c0b', 'u0', undefined)]);
    await presence.leave(ROOM, 'c1');
    await eventually(() => (sent.length > 0 ? true : undefined), 'the leave frame');
    expect(sent).toEqual([{ type: 'leave', payload: { users: ['u1'], count: 19 } }]);
  });
});
