/**
 * Pusher webhooks (docs/pusher.md) through the one webhook machinery (webhooks/dispatcher.ts over the engine's
 * outbox, Pusher's format as a plugin): channel_occupied/vacated, member_added/removed, client_event, in Pusher's
 * format and signature as the `pusher` SDK verifies them; vacated/member_removed held back 3 s and cancelled by a
 * return; batches for apps that ask; retries with back-off and jitter, dead letters kept, counted and replayed;
 * each event sent once for a cluster of two Redis nodes; native and Pusher endpoints side by side on one queue.
 * A manual clock drives the delays.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createMemoryEngine } from '../src/engine/memory/engine.js';
import { createRedisEngine } from '../src/engine/redis/engine.js';
import { coreChannel, occupancyChannel } from '../src/protocols/pusher/names.js';
import { api, eventually, ManualClock, onCleanup, TestClient, token, type TestGateway } from './helpers.js';
import { APP, presenceAuth, privateAuth, PusherServer, PusherTestClient, startPusherGateway } from './pusher-helpers.js';
import { cleanupRun, rawClient, REDIS_URL, testPrefix } from './redis-helpers.js';
import { deferred, turn } from './support/core.js';

type Deferred = ReturnType<typeof deferred<void>>;

afterAll(cleanupRun);

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  events: Array<Record<string, unknown>>;
  status: number;
}

/** A webhook receiver on port 0: records every request, answers with the next status of `statuses` (then 200). */
async function receiver(statuses: number[] = []) {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const status = statuses.shift() ?? 200;
      got.push({ headers: req.headers, body, events: (JSON.parse(body) as { events: Array<Record<string, unknown>> }).events, status });
      res.writeHead(status);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise<void>((r) => server.close(() => r())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/pusher/webhook`,
    got,
    /** The names of every event received, in arrival order. */
    names: () => got.flatMap((g) => g.events.map((e) => e['name'])),
    /** Every event received. */
    events: () => got.flatMap((g) => g.events),
  };
}

/**
 * Subscribes a new connection to the presence channel `channel` and closes it while the engine holds an answer of
 * that subscribe (`caught` once held); once the gateway saw the close, lets the answer go (`answered`).
 */
async function closeWhileHeld(port: number, gateway: TestGateway['gateway'], channel: string, caught: Deferred, answered: Deferred): Promise<void> {
  const a = await PusherTestClient.connect(port);
  a.send({ event: 'pusher:subscribe', data: { channel, ...presenceAuth(a.socketId, channel, { user_id: 'gone' }) } });
  await caught.promise;
  a.ws.terminate();
  await eventually(() => (gateway.connectionCount === 0 ? true : undefined), 'the server to see the close');
  answered.resolve();
}

/** What pusher-http-node checks (content type, key, HMAC of the raw body); returns the webhook's time_ms. */
function verifyPusher(r: Received): number {
  expect(r.headers['content-type']).toBe('application/json');
  const sdk = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1' });
  const webhook = sdk.webhook({ headers: r.headers as Record<string, string>, rawBody: r.body });
  expect(webhook.isValid()).toBe(true);
  return webhook.getTime().getTime();
}

describe('pusher webhooks', () => {
  it('sends channel_occupied, member_added, client_event, member_removed and channel_vacated, signed as the pusher SDK verifies', async () => {
    const hook = await receiver();
    const { port, gateway, clock } = await startPusherGateway({ app: { webhooks: [{ url: hook.url }] } });
    const run = () => gateway.webhooks.kick();
    const a = await PusherTestClient.connect(port);
    const b = await PusherTestClient.connect(port);
    await a.subscribe('presence-r', presenceAuth(a.socketId, 'presence-r', { user_id: 'ann' }));
    await b.subscribe('presence-r', presenceAuth(b.socketId, 'presence-r', { user_id: 'bob' }));
    b.send({ event: 'client-hi', channel: 'presence-r', data: { x: 1 } });
    await a.nextEvent('client-hi');
    await run();
    // One event per request (Pusher's default, without batch webhooks); no order promised between them.
    expect(hook.got.every((g) => g.events.length === 1)).toBe(true);
    expect(hook.names().sort()).toEqual(['channel_occupied', 'client_event', 'member_added', 'member_added']);
    const byName = (name: string) => hook.got.filter((g) => g.events[0]?.['name'] === name);
    expect(byName('client_event')[0]?.events[0]).toEqual({
      name: 'client_event',
      channel: 'presence-r',
      event: 'client-hi',
      data: '{"x":1}',
      socket_id: b.socketId,
      user_id: 'bob',
    });
    for (const r of hook.got) expect(verifyPusher(r)).toBe(clock.now());
    expect(byName('member_added').map((g) => g.events[0])).toContainEqual({ name: 'member_added', channel: 'presence-r', user_id: 'ann' });
    expect(byName('channel_occupied')[0]?.events).toEqual([{ name: 'channel_occupied', channel: 'presence-r' }]);

    b.ws.close();
    // Broadcast first, then held: once `a` sees member_removed, its webhook waits in the queue.
    await a.nextEvent('pusher_internal:member_removed');
    await run();
    expect(hook.got).toHaveLength(4);
    expect((await api(`http://127.0.0.1:${port}`, 'GET', '/api/webhooks')).body).toMatchObject({ held: 1 });
    const left = clock.now();
    clock.advance(2999);
    await run();
    expect(hook.got).toHaveLength(4);
    clock.advance(1);
    await run();
    expect(hook.names().slice(4)).toEqual(['member_removed']);
    expect(hook.got[4]?.events[0]).toEqual({ name: 'member_removed', channel: 'presence-r', user_id: 'bob' });
    // time_ms: when it happened (the member left), not when the hold-back let it go.
    expect(verifyPusher(hook.got[4] as Received)).toBe(left);
    a.send({ event: 'pusher:unsubscribe', data: { channel: 'presence-r' } });
    await a.roundTrip();
    clock.advance(3000);
    await run();
    expect(hook.names().slice(5).sort()).toEqual(['channel_vacated', 'member_removed']);
    for (const r of hook.got) verifyPusher(r);
  });

  it('counts no occupancy for a connection that closed while its presence join was answered: no channel_occupied without channel_vacated', async () => {
    const hook = await receiver();
    const clock = new ManualClock(Date.now());
    const engine = createMemoryEngine({ clock });
    const presence = coreChannel(APP.id, 'presence-g');
    const answered = deferred();
    const caught = deferred();
    const listed = deferred();
    const { join, list } = { join: engine.members.join.bind(engine.members), list: engine.members.list.bind(engine.members) };
    // The join runs at once (as Redis would run it); its answer is held, as if still on its way back.
    engine.members.join = async (channel, client, member) => {
      const r = await join(channel, client, member);
      if (channel === presence) {
        caught.resolve();
        await answered.promise;
      }
      return r;
    };
    engine.members.list = async (channel) => {
      const r = await list(channel);
      if (channel === presence) listed.resolve();
      return r;
    };
    const { port, gateway } = await startPusherGateway({ clock, engine, app: { webhooks: [{ url: hook.url }] } });
    await closeWhileHeld(port, gateway, 'presence-g', caught, answered);
    // The subscribe goes on: the member list, then (before the fix) the occupancy join.
    await listed.promise;
    await turn();
    expect(await engine.members.count(occupancyChannel(APP.id, 'presence-g'))).toBe(0);
    clock.advance(3000);
    await gateway.webhooks.kick();
    const names = hook.names();
    expect(names.filter((n) => n === 'channel_occupied').length).toBe(names.filter((n) => n === 'channel_vacated').length);
  });

  it('subscribes nothing for a connection that closed while its presence room was counted', async () => {
    const engine = createMemoryEngine({ clock: new ManualClock(Date.now()) });
    const presence = coreChannel(APP.id, 'presence-h');
    const answered = deferred();
    const caught = deferred();
    const count = engine.members.count.bind(engine.members);
    engine.members.count = async (channel) => {
      const n = await count(channel);
      if (channel === presence) {
        caught.resolve();
        await answered.promise;
      }
      return n;
    };
    const { port, gateway } = await startPusherGateway({ engine });
    await closeWhileHeld(port, gateway, 'presence-h', caught, answered);
    await turn();
    await turn();
    // Before the fix the closed connection was subscribed after all: the node held the channel for good.
    expect(gateway.channelCount).toBe(0);
    expect(await engine.members.count(presence)).toBe(0);
  });

  it('sends nothing when a channel or member comes back within 3 s, and only the events a URL asks for', async () => {
    const all = await receiver();
    const clientOnly = await receiver();
    const occupiedOnly = await receiver();
    const { port, gateway, clock } = await startPusherGateway({
      app: { webhooks: [{ url: all.url }, { url: clientOnly.url, events: ['client_event'] }, { url: occupiedOnly.url, events: ['channel_occupied'] }] },
    });
    const run = () => gateway.webhooks.kick();
    const a = await PusherTestClient.connect(port);
    await a.subscribe('private-x', { auth: privateAuth(a.socketId, 'private-x') });
    await a.subscribe('presence-y', presenceAuth(a.socketId, 'presence-y', { user_id: 'u1' }));
    await run();
    expect(all.names().sort()).toEqual(['channel_occupied', 'channel_occupied', 'member_added']);
    a.ws.close();
    await a.closed();
    clock.advance(1000);
    // A reload: the same user back in both channels within the hold-back.
    const again = await PusherTestClient.connect(port);
    await again.subscribe('private-x', { auth: privateAuth(again.socketId, 'private-x') });
    await again.subscribe('presence-y', presenceAuth(again.socketId, 'presence-y', { user_id: 'u1' }));
    clock.advance(5000);
    await run();
    expect(all.names().sort()).toEqual(['channel_occupied', 'channel_occupied', 'member_added']);
    // A URL that wants only channel_occupied hears of the channels once: the return was no new occupation.
    expect(occupiedOnly.names()).toEqual(['channel_occupied', 'channel_occupied']);
    expect(clientOnly.got).toEqual([]);
  });

  it('batches events for an app with batchWebhooks: several in one request, time_ms of the oldest', async () => {
    const hook = await receiver();
    const { port, gateway, clock } = await startPusherGateway({ app: { webhooks: [{ url: hook.url }], batchWebhooks: true } });
    const a = await PusherTestClient.connect(port);
    const first = clock.now();
    await a.subscribe('one');
    clock.advance(10);
    await a.subscribe('two');
    await a.subscribe('presence-z', presenceAuth(a.socketId, 'presence-z', { user_id: 'z' }));
    // Due together at the next pass: one request.
    await gateway.webhooks.kick();
    expect(hook.got).toHaveLength(1);
    expect(verifyPusher(hook.got[0] as Received)).toBe(first);
    expect(hook.events()).toHaveLength(4);
    expect(hook.events()).toEqual(
      expect.arrayContaining([
        { name: 'channel_occupied', channel: 'one' },
        { name: 'channel_occupied', channel: 'two' },
        { name: 'channel_occupied', channel: 'presence-z' },
        { name: 'member_added', channel: 'presence-z', user_id: 'z' },
      ]),
    );
  });

  it('retries a failing endpoint with back-off and jitter, dead-letters what still fails after 5 minutes, and replays it', async () => {
    const flaky = await receiver([500, 503]);
    const { port, gateway, clock } = await startPusherGateway({ app: { webhooks: [{ url: flaky.url }] } });
    const run = () => gateway.webhooks.kick();
    const a = await PusherTestClient.connect(port);
    await a.subscribe('news');
    await run();
    expect(flaky.got).toHaveLength(1);
    await run();
    expect(flaky.got).toHaveLength(1);
    // The first retry waits 0.5-1 s, the second 1-2 s (half of each window random).
    clock.advance(1000);
    await run();
    expect(flaky.got).toHaveLength(2);
    clock.advance(999);
    await run();
    expect(flaky.got).toHaveLength(2);
    clock.advance(1001);
    await run();
    // Signed at send time, one event per request: every attempt is the same bytes.
    expect(flaky.got.map((g) => g.body)).toEqual([flaky.got[0]?.body, flaky.got[0]?.body, flaky.got[0]?.body]);
    const stats = gateway.webhooks.stats;
    expect([stats.sent.get('pusher.app1.1'), stats.failed.get('pusher.app1.1'), stats.retried.get('pusher.app1.1')]).toEqual([1, 2, 2]);

    const statuses = Array.from({ length: 100 }, () => 500);
    const down = await receiver(statuses);
    // The client stays for the whole test (it answers no pings: a long activity timeout keeps it).
    const g2 = await startPusherGateway({ app: { webhooks: [{ url: down.url }], activityTimeout: 3600 } });
    const http = `http://127.0.0.1:${g2.port}`;
    const c = await PusherTestClient.connect(g2.port);
    await c.subscribe('news');
    const start = g2.clock.now();
    const dead = async () => (await g2.gateway.engine.outbox.stats()).dead;
    while ((await dead()) === 0 && g2.clock.now() - start <= 600_000) {
      await g2.gateway.webhooks.kick();
      g2.clock.advance(5000);
    }
    // Pusher retries for 5 minutes: the last attempt is past 4 minutes (retries are at most 60 s apart), none after 5.
    expect(g2.clock.now() - start).toBeGreaterThan(240_000);
    expect(g2.clock.now() - start).toBeLessThanOrEqual(305_000);
    const state = (await api(http, 'GET', '/api/webhooks')).body;
    expect(state).toMatchObject({ queued: 0, dead: 1 });
    expect(state.deadLetters[0]).toMatchObject({ endpoint: 'pusher.app1.1', attempt: down.got.length, reason: 'status 500' });
    const metrics = (await api(http, 'GET', '/metrics')).body as string;
    expect(metrics).toMatch(/herald_webhooks_dead_total\{endpoint="pusher\.app1\.1",format="pusher",node="[^"]+"\} 1/);
    expect(metrics).toMatch(/herald_webhooks_retried_total\{endpoint="pusher\.app1\.1",format="pusher",node="[^"]+"\} [1-9]/);
    // The receiver is back; replayed (what `herald webhooks replay` asks for) as a fresh delivery.
    statuses.length = 0;
    const tried = down.got.length;
    expect((await api(http, 'POST', '/api/webhooks/replay', {})).body).toEqual({ replayed: 1 });
    await g2.gateway.webhooks.kick();
    expect(down.got.slice(tried).map((g) => [g.status, g.events])).toEqual([[200, [{ name: 'channel_occupied', channel: 'news' }]]]);
    verifyPusher(down.got[tried] as Received);
    expect((await api(http, 'GET', '/api/webhooks')).body).toMatchObject({ queued: 0, dead: 0 });
  });

  it('sends each event once for a cluster of two Redis nodes, both dispatching', async () => {
    const hook = await receiver();
    const prefix = testPrefix();
    const clock = new ManualClock(Date.now());
    const node = () => startPusherGateway({ clock, app: { webhooks: [{ url: hook.url }] }, engine: createRedisEngine({ url: REDIS_URL, prefix }) });
    const a = await node();
    const b = await node();
    const runAll = () => Promise.all([a, b].map((n) => n.gateway.webhooks.kick()));
    const x = await PusherTestClient.connect(a.port);
    const y = await PusherTestClient.connect(b.port);
    await x.subscribe('presence-c', presenceAuth(x.socketId, 'presence-c', { user_id: 'same' }));
    await y.subscribe('presence-c', presenceAuth(y.socketId, 'presence-c', { user_id: 'same' }));
    await runAll();
    await runAll();
    expect(hook.names().sort()).toEqual(['channel_occupied', 'member_added']);
    x.ws.close();
    y.ws.close();
    await Promise.all([x.closed(), y.closed()]);
    // Both departures are held in the outbox (member_removed after its broadcast) before the clock moves on.
    const raw = rawClient();
    await expect.poll(() => raw.zcard(`${prefix}:{webhooks}:held`)).toBe(2);
    clock.advance(3000);
    await runAll();
    await runAll();
    expect(hook.names().sort()).toEqual(['channel_occupied', 'channel_vacated', 'member_added', 'member_removed']);
    for (const r of hook.got) verifyPusher(r);
  });
  it('reports the members and channels only a dead node had gone (member_removed, channel_vacated): a sweep finds them', async () => {
    const hook = await receiver();
    const prefix = testPrefix();
    const clock = new ManualClock(Date.now());
    const ttl = 600;
    const clients: Redis[] = [];
    const app = { webhooks: [{ url: hook.url }] };
    const a = await startPusherGateway({ clock, app, engine: createRedisEngine({ url: REDIS_URL, prefix, presenceTtl: ttl }) });
    const b = await startPusherGateway({
      clock,
      app,
      engine: createRedisEngine({ prefix, presenceTtl: ttl, redis: (_role, defaults) => clients[clients.push(new Redis(REDIS_URL, defaults)) - 1] as Redis }),
    });
    // Nobody on node a is in the channel: no script of a ever runs on it by itself.
    const doomed = await PusherTestClient.connect(b.port);
    await doomed.subscribe('presence-solo', presenceAuth(doomed.socketId, 'presence-solo', { user_id: 'doomed' }));
    await a.gateway.webhooks.kick();
    expect(hook.names().sort()).toEqual(['channel_occupied', 'member_added']);
    // kill -9 of node b's engine: its Redis connections are gone and nothing is cleaned up.
    for (const c of clients) c.disconnect();
    const raw = rawClient();
    await expect.poll(() => raw.zcard(`${prefix}:{webhooks}:held`), { timeout: 10_000 }).toBe(2);
    clock.advance(3000);
    await a.gateway.webhooks.kick();
    await a.gateway.webhooks.kick();
    expect(hook.names().sort()).toEqual(['channel_occupied', 'channel_vacated', 'member_added', 'member_removed']);
    expect(hook.events().find((e) => e['name'] === 'member_removed')).toEqual({ name: 'member_removed', channel: 'presence-solo', user_id: 'doomed' });
    // Swept and emptied: out of the index.
    await expect.poll(() => raw.zcard(`${prefix}:pm:index`), { timeout: 10_000 }).toBe(0);
  });
});

describe('native and pusher webhooks on one gateway', () => {
  const SECRET = `whsec_${Buffer.from('one-queue-webhook-secret-0123456789').toString('base64')}`;

  it('share one queue, dispatcher and metrics family: each endpoint gets its own events in its own format', async () => {
    const pusherHook = await receiver();
    const native: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        native.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onCleanup(() => new Promise<void>((r) => server.close(() => r())));
    const { port, gateway, clock } = await startPusherGateway({
      app: { webhooks: [{ url: pusherHook.url }] },
      webhooks: [{ name: 'app', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, secret: SECRET, events: ['message.acked'] }],
    });
    const p = await PusherTestClient.connect(port);
    await p.subscribe('orders');
    const http = `http://127.0.0.1:${port}`;
    const c = await TestClient.connect(`ws://127.0.0.1:${port}/ws`, { token: await token({ sub: '42' }) });
    const pushed = await api(http, 'POST', '/api/publish', { user: '42', type: 'notice', payload: {}, inbox: true, receipt: true });
    const message = pushed.body.results['user:42'].message as string;
    await c.client.waitFor(() => c.client.frames.find((f) => f['inbox'] === message), 'the inbox message');
    c.client.send({ type: 'ack', inbox: [message] });
    await c.client.nextOf('acked');
    await gateway.webhooks.kick();
    expect(pusherHook.events()).toEqual([{ name: 'channel_occupied', channel: 'orders' }]);
    expect(native).toHaveLength(1);
    const spy = vi.spyOn(Date, 'now').mockReturnValue(clock.now());
    try {
      const e = new Webhook(SECRET).verify((native[0] as { body: string }).body, native[0]?.headers as Record<string, string>) as { type: string };
      expect(e.type).toBe('message.acked');
    } finally {
      spy.mockRestore();
    }
    const metrics = (await api(http, 'GET', '/metrics')).body as string;
    expect(metrics).toMatch(/herald_webhooks_sent_total\{endpoint="app",format="standard",node="[^"]+"\} 1/);
    expect(metrics).toMatch(/herald_webhooks_sent_total\{endpoint="pusher\.app1\.1",format="pusher",node="[^"]+"\} 1/);
    // The admin tile's numbers: one queue, every protocol's deliveries.
    expect(gateway.snapshot().webhooks).toMatchObject({ queued: 0, held: 0, sent: 2, failed: 0 });
  });
});
