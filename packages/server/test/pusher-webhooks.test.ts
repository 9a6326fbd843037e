/**
 * Pusher webhooks (docs/pusher.md) through the durable webhook machinery (delivery/webhooks.ts, engine job
 * queues): channel_occupied/vacated, member_added/removed, client_event, in Pusher's format and signature as the
 * `pusher` SDK verifies them; vacated/member_removed held back 3 s and cancelled by a return; retries with
 * back-off, dead letters; each event sent once for a cluster of two Redis nodes. A fake clock drives the delays.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { WEBHOOK_QUEUE } from '../src/delivery/webhooks.js';
import { createRedisEngine } from '../src/engine/redis/engine.js';
import { ManualClock, onCleanup } from './helpers.js';
import { APP, presenceAuth, privateAuth, PusherServer, PusherTestClient, startPusherGateway } from './pusher-helpers.js';
import { cleanupRun, rawClient, REDIS_URL, testPrefix } from './redis-helpers.js';

afterAll(cleanupRun);

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  events: Array<Record<string, unknown>>;
}

/** A webhook receiver on port 0: records every request, answers with the next status of `statuses` (then 200). */
async function receiver(statuses: number[] = []) {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      got.push({ headers: req.headers, body, events: (JSON.parse(body) as { events: Array<Record<string, unknown>> }).events });
      res.writeHead(statuses.shift() ?? 200);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(() => new Promise<void>((r) => server.close(() => r())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/pusher/webhook`,
    got,
    names: () => got.flatMap((g) => g.events.map((e) => e['name'])),
  };
}

describe('pusher webhooks', () => {
  it('sends channel_occupied, member_added, client_event, member_removed and channel_vacated, signed as the pusher SDK verifies', async () => {
    const hook = await receiver();
    const { port, gateway, clock } = await startPusherGateway({ app: { webhooks: [{ url: hook.url }] } });
    const run = () => (gateway.webhooks as NonNullable<typeof gateway.webhooks>).runOnce();
    const a = await PusherTestClient.connect(port);
    const b = await PusherTestClient.connect(port);
    await a.subscribe('presence-r', presenceAuth(a.socketId, 'presence-r', { user_id: 'ann' }));
    await b.subscribe('presence-r', presenceAuth(b.socketId, 'presence-r', { user_id: 'bob' }));
    b.send({ event: 'client-hi', channel: 'presence-r', data: { x: 1 } });
    await a.nextEvent('client-hi');
    await run();
    // Requests go out concurrently: Pusher promises no order between webhooks either.
    expect(hook.names().sort()).toEqual(['channel_occupied', 'client_event', 'member_added', 'member_added']);
    const byName = (name: string) => hook.got.filter((g) => g.events[0]?.['name'] === name);
    const client = byName('client_event')[0] as Received;
    expect(client.events[0]).toEqual({
      name: 'client_event',
      channel: 'presence-r',
      event: 'client-hi',
      data: '{"x":1}',
      socket_id: b.socketId,
      user_id: 'bob',
    });
    // Exactly what pusher-http-node checks: the content type, the key, the HMAC of the raw body.
    const sdk = new PusherServer({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1' });
    for (const r of hook.got) {
      expect(r.headers['content-type']).toBe('application/json');
      const webhook = sdk.webhook({ headers: r.headers as Record<string, string>, rawBody: r.body });
      expect(webhook.isValid()).toBe(true);
      expect(webhook.getTime().getTime()).toBe(clock.now());
    }
    expect(byName('member_added').map((g) => g.events[0])).toContainEqual({ name: 'member_added', channel: 'presence-r', user_id: 'ann' });
    expect(byName('channel_occupied')[0]?.events).toEqual([{ name: 'channel_occupied', channel: 'presence-r' }]);

    b.ws.close();
    // Broadcast first, then queued: once `a` sees member_removed, its webhook waits in the queue.
    await a.nextEvent('pusher_internal:member_removed');
    await run();
    expect(hook.got).toHaveLength(4);
    clock.advance(3000);
    await run();
    expect(hook.names().slice(4)).toEqual(['member_removed']);
    expect(hook.got[4]?.events[0]).toEqual({ name: 'member_removed', channel: 'presence-r', user_id: 'bob' });
    a.send({ event: 'pusher:unsubscribe', data: { channel: 'presence-r' } });
    await a.roundTrip();
    clock.advance(3000);
    await run();
    expect(hook.names().slice(5).sort()).toEqual(['channel_vacated', 'member_removed']);
  });

  it('sends nothing when a channel or member comes back within 3 s, and only the events a URL asks for', async () => {
    const all = await receiver();
    const some = await receiver();
    const { port, gateway, clock } = await startPusherGateway({ app: { webhooks: [{ url: all.url }, { url: some.url, events: ['client_event'] }] } });
    const run = () => (gateway.webhooks as NonNullable<typeof gateway.webhooks>).runOnce();
    const a = await PusherTestClient.connect(port);
    await a.subscribe('private-x', { auth: privateAuth(a.socketId, 'private-x') });
    await run();
    expect(all.names()).toEqual(['channel_occupied']);
    a.send({ event: 'pusher:unsubscribe', data: { channel: 'private-x' } });
    await a.roundTrip();
    clock.advance(1000);
    await a.subscribe('private-x', { auth: privateAuth(a.socketId, 'private-x') });
    clock.advance(5000);
    await run();
    expect(all.names()).toEqual(['channel_occupied']);
    expect(some.got).toEqual([]);
  });

  it('retries a failing endpoint with back-off, then dead-letters what still fails after 5 minutes', async () => {
    const flaky = await receiver([500, 503]);
    const { port, gateway, clock } = await startPusherGateway({ app: { webhooks: [{ url: flaky.url }] } });
    const run = () => (gateway.webhooks as NonNullable<typeof gateway.webhooks>).runOnce();
    const a = await PusherTestClient.connect(port);
    await a.subscribe('news');
    await run();
    expect(flaky.got).toHaveLength(1);
    await run();
    expect(flaky.got).toHaveLength(1);
    clock.advance(1000);
    await run();
    expect(flaky.got).toHaveLength(2);
    clock.advance(1999);
    await run();
    expect(flaky.got).toHaveLength(2);
    clock.advance(1);
    await run();
    expect(flaky.got.map((g) => g.body)).toEqual([flaky.got[0]?.body, flaky.got[0]?.body, flaky.got[0]?.body]);
    expect(gateway.stats.webhooksSent).toBe(1);
    expect(gateway.stats.webhookRetries).toBe(2);

    const down = await receiver(Array.from({ length: 100 }, () => 500));
    const g2 = await startPusherGateway({ app: { webhooks: [{ url: down.url }] } });
    const c = await PusherTestClient.connect(g2.port);
    await c.subscribe('news');
    for (let t = 0; t <= 300_000; t += 60_000) {
      await (g2.gateway.webhooks as NonNullable<typeof g2.gateway.webhooks>).runOnce();
      g2.clock.advance(60_000);
    }
    await (g2.gateway.webhooks as NonNullable<typeof g2.gateway.webhooks>).runOnce();
    const dead = await g2.gateway.engine.jobs.dead(WEBHOOK_QUEUE, 10);
    expect(dead).toHaveLength(1);
    expect(dead[0]?.reason).toBe('HTTP 500');
    expect(g2.gateway.stats.dropped.get('webhook_dead_letter')).toBe(1);
  });

  it('sends each event once for a cluster of two Redis nodes, both dispatching', async () => {
    const hook = await receiver();
    const prefix = testPrefix();
    const clock = new ManualClock(Date.now());
    const node = () => startPusherGateway({ clock, app: { webhooks: [{ url: hook.url }] }, engine: createRedisEngine({ url: REDIS_URL, prefix }) });
    const a = await node();
    const b = await node();
    const runAll = () => Promise.all([a, b].map((n) => (n.gateway.webhooks as NonNullable<typeof n.gateway.webhooks>).runOnce()));
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
    // Both delayed events are queued (member_removed after its broadcast) before the clock moves on.
    const raw = rawClient();
    await expect.poll(() => raw.zcard(`${prefix}:{jobs:${WEBHOOK_QUEUE}}:due`)).toBe(2);
    clock.advance(3000);
    await runAll();
    await runAll();
    expect(hook.names().sort()).toEqual(['channel_occupied', 'channel_vacated', 'member_added', 'member_removed']);
  });
});
