/**
 * The Pusher protocol across two gateways on one Redis (docs/pusher.md): presence members and their events,
 * client events, socket_id exclusion and terminate work whichever node the connections are on; the members of
 * a node that dies are announced gone; a graceful shutdown (4200) sends pusher-js to the other node at once.
 * Needs a Redis (HERALD_TEST_REDIS_URL); every key lives under a random prefix.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { PusherCode } from '@herald/protocol';
import { createRedisEngine, type RedisEngineOptions } from '../src/engine/redis/engine.js';
import type { RedisMembers } from '../src/engine/redis/members.js';
import { coreChannel } from '../src/protocols/pusher/names.js';
import { startNode } from '../src/gateway/node.js';
import { silentLogger } from '../src/util/logger.js';
import { onCleanup, TEST_TRANSPORT } from './helpers.js';
import { APP, presenceAuth, privateAuth, pusherEvent, pusherJs, pusherState, PusherTestClient, signinAuth, startPusherGateway } from './pusher-helpers.js';
import { signedRequest } from './pusher-http-helpers.js';
import { cleanupRun, rawClient, REDIS_URL, testPrefix } from './redis-helpers.js';
import { TcpProxy } from './tcp-proxy.js';

afterAll(cleanupRun);

const ROOM = 'presence-cluster';

async function twoNodes(opts: RedisEngineOptions = {}) {
  const prefix = testPrefix();
  const node = (id: string) => startPusherGateway({ engine: createRedisEngine({ url: REDIS_URL, prefix, nodeId: id, ...opts }) });
  const a = await node('node-a');
  const b = await node('node-b');
  return { a, b };
}

const join = (c: PusherTestClient, user: string, info?: unknown) =>
  c.subscribe(ROOM, presenceAuth(c.socketId, ROOM, info === undefined ? { user_id: user } : { user_id: user, user_info: info }));

describe('pusher protocol on two Redis-backed nodes', () => {
  it('shares presence members, announces first joins and last leaves cluster-wide, once', async () => {
    const { a, b } = await twoNodes();
    const x = await PusherTestClient.connect(a.port);
    await join(x, 'x', { name: 'X' });
    const y = await PusherTestClient.connect(b.port);
    const ok = JSON.parse((await join(y, 'y')).data as string) as { presence: { ids: string[]; hash: Record<string, unknown> } };
    expect(ok.presence.ids.sort()).toEqual(['x', 'y']);
    expect(ok.presence.hash['x']).toEqual({ name: 'X' });
    expect((await x.nextEvent('pusher_internal:member_added')).data).toBe('{"user_id":"y"}');
    // User y again on the other node: no new member.
    const y2 = await PusherTestClient.connect(a.port);
    await join(y2, 'y');
    y.ws.close();
    await y.closed();
    await y2.roundTrip();
    y2.ws.close();
    expect((await x.nextEvent('pusher_internal:member_removed')).data).toBe('{"user_id":"y"}');
    expect(x.events('pusher_internal:member_added')).toHaveLength(1);
    expect(x.events('pusher_internal:member_removed')).toHaveLength(1);
  });

  it('relays client events and honours socket_id exclusion across nodes', async () => {
    const { a, b } = await twoNodes();
    const x = await PusherTestClient.connect(a.port);
    const y = await PusherTestClient.connect(b.port);
    const z = await PusherTestClient.connect(b.port);
    for (const c of [x, y, z]) await join(c, c === x ? 'x' : c === y ? 'y' : 'z');
    x.send({ event: 'client-wave', channel: ROOM, data: { from: 'x' } });
    for (const c of [y, z]) expect(await c.nextEvent('client-wave')).toMatchObject({ data: '{"from":"x"}', user_id: 'x' });
    const priv = 'private-cross';
    for (const c of [x, y]) await c.subscribe(priv, { auth: privateAuth(c.socketId, priv) });
    await signedRequest(a.http, 'POST', `/apps/${APP.id}/events`, { name: 'e', channel: priv, data: '{"n":1}', socket_id: y.socketId });
    await signedRequest(a.http, 'POST', `/apps/${APP.id}/events`, { name: 'e', channel: priv, data: '{"n":2}' });
    await x.waitFor(() => (x.events('e').length === 2 ? true : undefined), 'both events on x');
    await y.nextWhere((f) => f.event === 'e' && f.data === '{"n":2}', 'the second event on y');
    expect(y.events('e').map((f) => f.data)).toEqual(['{"n":2}']);
    expect(x.events('client-wave')).toEqual([]);
  });

  it("terminates a user's connections on every node", async () => {
    const { a, b } = await twoNodes();
    const conns = [await PusherTestClient.connect(a.port), await PusherTestClient.connect(b.port)];
    for (const c of conns) {
      c.send({ event: 'pusher:signin', data: signinAuth(c.socketId, { id: 'kick' }) });
      await c.nextEvent('pusher:signin_success');
    }
    expect((await signedRequest(b.http, 'POST', `/apps/${APP.id}/users/kick/terminate_connections`, {})).status).toBe(200);
    for (const c of conns) expect((await c.closed()).code).toBe(PusherCode.Unauthorized);
  });

  it('announces member_removed for the members of a node that died, within presenceTtl', async () => {
    const prefix = testPrefix();
    const clients: Redis[] = [];
    const a = await startPusherGateway({ engine: createRedisEngine({ url: REDIS_URL, prefix, presenceTtl: 600 }) });
    const b = await startPusherGateway({
      engine: createRedisEngine({ prefix, presenceTtl: 600, redis: (_role, defaults) => clients[clients.push(new Redis(REDIS_URL, defaults)) - 1] as Redis }),
    });
    const watcher = await PusherTestClient.connect(a.port);
    await join(watcher, 'watcher');
    const doomed = await PusherTestClient.connect(b.port);
    await join(doomed, 'doomed');
    await watcher.nextEvent('pusher_internal:member_added');
    // kill -9 of node b's engine: its Redis connections are gone and nothing is cleaned up.
    for (const c of clients) c.disconnect();
    const killedAt = Date.now();
    expect((await watcher.nextEvent('pusher_internal:member_removed')).data).toBe('{"user_id":"doomed"}');
    expect(Date.now() - killedAt).toBeLessThan(3000);
  });

  it('announces member_added again for a member its node put back after another node reported it gone', async () => {
    const prefix = testPrefix();
    // Long TTLs: the refresh that puts the member back is the test's own.
    const node = () => startPusherGateway({ engine: createRedisEngine({ url: REDIS_URL, prefix, presenceTtl: 60_000 }) });
    const a = await node();
    const b = await node();
    const x = await PusherTestClient.connect(a.port);
    await join(x, 'x', { name: 'X' });
    const watcher = await PusherTestClient.connect(b.port);
    await join(watcher, 'watcher');
    // Node a could not renew x in time (a stall, a Redis outage): node b finds the entry expired first.
    await rawClient().zadd(`${prefix}:{${coreChannel(APP.id, ROOM)}}:pm:conns`, Date.now() - 1, x.socketId);
    expect(await b.gateway.engine.members.count(coreChannel(APP.id, ROOM))).toBe(1);
    expect((await watcher.nextEvent('pusher_internal:member_removed')).data).toBe('{"user_id":"x"}');
    await (a.gateway.engine.members as RedisMembers).refresh();
    expect(JSON.parse((await watcher.nextEvent('pusher_internal:member_added')).data as string)).toEqual({ user_id: 'x', user_info: { name: 'X' } });
  });

  it('publishes what backends write to the Redis ingest with an "app" field to that app\'s Pusher clients', async () => {
    const prefix = testPrefix();
    const node = await startNode(
      { port: 0, pusherApps: [APP], transport: TEST_TRANSPORT },
      { redisUrl: REDIS_URL, redisPrefix: prefix, redisSharded: false, presenceTtl: 3000, nodeId: undefined, ingest: true },
      silentLogger(),
    );
    onCleanup(() => node.close());
    const c = await PusherTestClient.connect(node.gateway.address().port);
    await c.subscribe('private-shipments', { auth: privateAuth(c.socketId, 'private-shipments') });
    const raw = rawClient();
    await raw.xadd(
      `${prefix}:ingest`,
      '*',
      'msg',
      JSON.stringify({ app: APP.id, channel: 'private-shipments', type: 'App\\Events\\Shipped', payload: { id: 9 } }),
    );
    const f = await c.nextEvent('App\\Events\\Shipped', 'private-shipments');
    expect(JSON.parse(f.data as string)).toEqual({ id: 9 });
  });

  it('sends pusher-js to the other node at once when its node shuts down gracefully (4200)', async () => {
    const { a, b } = await twoNodes();
    const proxy = await TcpProxy.start(a.port);
    onCleanup(() => proxy.close());
    const client = pusherJs(proxy.port);
    await pusherState(client, 'connected');
    client.subscribe('news');
    await pusherEvent(client, 'news', 'pusher:subscription_succeeded');
    const first = client.connection.socket_id;
    proxy.setTarget(b.port);
    const closes: number[] = [];
    client.connection.bind('error', (e: { data?: { code?: number } }) => closes.push(e.data?.code ?? 0));
    const resubscribed = pusherEvent(client, 'news', 'pusher:subscription_succeeded');
    await a.gateway.close();
    await resubscribed;
    expect(closes).toContain(PusherCode.Reconnect);
    expect(client.connection.socket_id).not.toBe(first);
    const got = pusherEvent<{ n: number }>(client, 'news', 'after');
    await signedRequest(b.http, 'POST', `/apps/${APP.id}/events`, { name: 'after', channel: 'news', data: '{"n":1}' });
    expect((await got).data).toEqual({ n: 1 });
  });
});
