/**
 * Lifecycle webhooks end to end (docs/webhooks.md): a real HTTP receiver, gateways on the memory engine and on
 * two Redis-backed nodes, every request verified with the `standardwebhooks` package. A receiver that fails its
 * first 3 attempts still gets every event exactly as sent; one that is down for a quarter of an hour gets them
 * once it is back; a reload within the hold-back makes no user.offline; dead letters are kept, counted and
 * replayed; with two nodes each event is sent once. Time is the gateways' manual clock (retries, hold-back).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createRedisEngine } from '../src/engine/redis/engine.js';
import { engineLifecycle } from '../src/gateway/engine-options.js';
import { resolveOptions, type GatewayOptions } from '../src/gateway/options.js';
import { api, ManualClock, onCleanup, publish, startGateway, TestClient, token, type TestGateway } from './helpers.js';
import { cleanupRun, REDIS_URL, testPrefix } from './redis-helpers.js';

afterAll(cleanupRun);

const SECRET = `whsec_${Buffer.from('herald-test-webhook-secret-0123456789').toString('base64')}`;

/** One request as the receiver got it. */
interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  /** What the receiver answered. */
  status: number;
  /** When it arrived, on the gateway's clock (what the verifier's "now" is). */
  at: number;
}

/** An HTTP receiver on 127.0.0.1: records every request; can fail the next N, or be down (not listening). */
class Receiver {
  readonly requests: Received[] = [];
  failNext = 0;
  /** The time requests arrive at: the gateway's manual clock once the test sets it. */
  now: () => number = Date.now;
  private server: Server;
  port = 0;

  constructor() {
    this.server = this.make();
  }

  private make(): Server {
    return createServer((req: IncomingMessage, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        const status = this.failNext > 0 ? 503 : 204;
        if (this.failNext > 0) this.failNext -= 1;
        const h = (n: string): string => String(req.headers[n] ?? '');
        this.requests.push({ id: h('webhook-id'), timestamp: h('webhook-timestamp'), signature: h('webhook-signature'), body, status, at: this.now() });
        res.writeHead(status).end();
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    onCleanup(() => this.stop());
    return this;
  }

  /** Down: nothing listens on the port any more. */
  async stop(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
    this.server = this.make();
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }

  /** Requests it answered 2xx, in order. */
  get delivered(): Received[] {
    return this.requests.filter((r) => r.status < 300);
  }
}

/** The event of a request, verified with the reference package at the (gateway) time it arrived. */
function verify(r: Received): { type: string; timestamp: string; data: Record<string, unknown> } {
  const spy = vi.spyOn(Date, 'now').mockReturnValue(r.at);
  try {
    return new Webhook(SECRET).verify(r.body, { 'webhook-id': r.id, 'webhook-timestamp': r.timestamp, 'webhook-signature': r.signature }) as never;
  } finally {
    spy.mockRestore();
  }
}

interface Setup {
  pub: TestGateway;
  sub: TestGateway;
  clock: ManualClock;
  /** Moves time on by `ms` in steps, letting every node's queue and Redis work catch up after each. */
  pass(ms: number, step?: number): Promise<void>;
}

const setups: Record<string, (opts: GatewayOptions) => Promise<Setup>> = {
  memory: async (opts) => {
    // Real time at the start: the reference verifier compares timestamps with its own clock (mocked to this one).
    const clock = new ManualClock(Date.now());
    const g = { ...(await startGateway({ clock, ...opts })), clock };
    return { pub: g, sub: g, clock, pass: passer(clock, [g]) };
  },
  'redis, two nodes': async (opts) => {
    const clock = new ManualClock(Date.now());
    const prefix = testPrefix();
    const node = async (): Promise<TestGateway> => ({
      // What `herald` does (gateway/node.ts): the engine tracks the lifecycle events the endpoints want.
      ...(await startGateway({
        clock,
        engine: createRedisEngine({ url: REDIS_URL, prefix, clock, presenceTtl: 3000, ...lifecycleOf(opts) }),
        ...opts,
      })),
      clock,
    });
    const [pub, sub] = [await node(), await node()];
    return { pub, sub, clock, pass: passer(clock, [pub, sub]) };
  },
};

/** The engine's `lifecycle` option for these gateway options, as gateway/node.ts builds it. */
function lifecycleOf(opts: GatewayOptions): { lifecycle?: NonNullable<ReturnType<typeof engineLifecycle>> } {
  const lifecycle = engineLifecycle(resolveOptions(opts));
  return lifecycle === undefined ? {} : { lifecycle };
}

function passer(clock: ManualClock, gws: TestGateway[]): Setup['pass'] {
  return async (ms, step = 500) => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(Math.min(step, ms - t));
      for (const g of gws) {
        // Redis work fired by the timers (lifecycle sweeps, presence) runs in order on the command connection.
        await g.gateway.engine.presence.online(['-']);
        await g.gateway.webhooks.kick();
      }
    }
  };
}

/** Advances time until `pred` holds (at most `maxMs` of gateway time). */
async function until(s: Setup, pred: () => boolean, what: string, maxMs = 120_000, step = 500): Promise<void> {
  for (let t = 0; !pred(); t += step) {
    if (t > maxMs) throw new Error(`not within ${maxMs} ms of gateway time: ${what}`);
    await s.pass(step, step);
  }
}

const hooks = (r: Receiver, extra: GatewayOptions = {}): GatewayOptions => ({
  webhooks: [{ name: 'app', url: r.url, secret: SECRET }],
  webhookOfflineDelay: 5000,
  ...extra,
});

/** The events delivered (2xx), verified, as `type data-values` strings, one per event id. */
function eventsOf(r: Receiver): string[] {
  const seen = new Map<string, string>();
  for (const req of r.delivered) {
    const e = verify(req);
    seen.set(req.id, `${e.type} ${Object.values(e.data).join(',')}`);
  }
  return [...seen.values()];
}

for (const [name, setup] of Object.entries(setups)) {
  describe(`webhooks: ${name}`, () => {
    it('delivers every event exactly as sent to a receiver that fails its first 3 attempts (Standard Webhooks signatures)', async () => {
      const receiver = await new Receiver().start();
      receiver.failNext = 3;
      const s = await setup(hooks(receiver));
      receiver.now = () => s.clock.now();
      const c = await TestClient.connect(s.sub.ws, { token: await token({ sub: '42' }), subs: { 'room.1': {} } });
      const pushed = await publish(s.pub.http, { user: '42', type: 'notice', payload: { text: 'hi' }, inbox: true, receipt: true });
      const message = pushed.results['user:42'].message as string;
      const frame = await c.client.waitFor(() => c.client.frames.find((f) => f['inbox'] === message), 'the inbox message');
      c.client.send({ type: 'ack', inbox: [frame['inbox']] });
      await c.client.nextOf('acked');
      c.client.terminate();
      const want = [
        'user.online 42',
        'channel.occupied user:42',
        'channel.occupied room.1',
        'channel.vacated user:42',
        'channel.vacated room.1',
        'user.offline 42',
      ];
      await until(s, () => eventsOf(receiver).length >= want.length + 1, 'every event');
      const events = eventsOf(receiver);
      expect([...events].sort()).toEqual(
        [
          ...want,
          `message.acked ${message},42,${c.connected['client'] as string},${
            events
              .find((e) => e.startsWith('message.acked'))
              ?.split(',')
              .pop() ?? ''
          }`,
        ].sort(),
      );
      // The first 3 attempts failed and were retried; every attempt of one event carried the same bytes.
      expect(receiver.requests.filter((r) => r.status >= 500)).toHaveLength(3);
      for (const failed of receiver.requests.filter((r) => r.status >= 500)) {
        const ok = receiver.delivered.find((r) => r.id === failed.id);
        expect(ok?.body).toBe(failed.body);
      }
      const acked = receiver.delivered.map((r) => verify(r)).find((e) => e.type === 'message.acked');
      expect(acked?.data).toMatchObject({ message, user: '42', client: c.connected['client'], time: expect.any(Number) });
      expect(new Date(acked?.timestamp ?? '').getTime()).toBe(acked?.data['time']);
      const metrics = (await Promise.all([...new Set([s.pub, s.sub])].map(async (g) => (await api(g.http, 'GET', '/metrics')).body as string))).join('\n');
      expect(metrics).toMatch(/herald_webhooks_retried_total\{endpoint="app",format="standard",node="[^"]+"\} [1-9]/);
    });

    it('holds events while the receiver is down for a quarter of an hour and delivers them once it is back', async () => {
      const receiver = await new Receiver().start();
      const s = await setup(hooks(receiver, { webhooks: [{ name: 'app', url: receiver.url, secret: SECRET, events: ['user.online', 'user.offline'] }] }));
      receiver.now = () => s.clock.now();
      await receiver.stop();
      const c = await TestClient.connect(s.sub.ws, { token: await token({ sub: 'down' }) });
      c.client.terminate();
      await s.pass(15 * 60_000, 5000);
      expect(receiver.requests).toEqual([]);
      const webhooks = (await api(s.pub.http, 'GET', '/api/webhooks')).body;
      expect(webhooks).toMatchObject({ queued: 2, dead: 0 });
      await receiver.start();
      // The longest back-off is 10 minutes.
      await until(s, () => eventsOf(receiver).length >= 2, 'both events', 11 * 60_000, 5000);
      // Retries are not in order: each event has its own back-off.
      expect(eventsOf(receiver).sort()).toEqual(['user.offline down', 'user.online down']);
    });

    it('sends client.publish for what a client published, once, with the payload as published, to the endpoints that want it', async () => {
      const receiver = await new Receiver().start();
      const others = await new Receiver().start();
      const s = await setup({
        webhooks: [
          { name: 'chat', url: receiver.url, secret: SECRET, events: ['client.publish'], channels: ['chat:'] },
          { name: 'presence', url: others.url, secret: SECRET, events: ['user.online'] },
        ],
      });
      receiver.now = others.now = () => s.clock.now();
      const c = await TestClient.connect(s.pub.ws, { token: await token({ sub: 'ann', publish: ['chat:*', 'news'] }) });
      for (const [id, channel] of [
        [1, 'chat:room'],
        [2, 'news'],
        [3, 'chat:room'],
      ] as const) {
        c.client.send({ type: 'publish', channel, event: 'said', payload: { text: `hi ${id}`, emoji: '👋' }, id, key: id === 3 ? 'k1' : undefined });
        await c.client.nextWhere((f) => f.type === 'published' && f['id'] === id, `publish ${id}`);
      }
      // A resend of the same key is a duplicate: no second event.
      c.client.send({ type: 'publish', channel: 'chat:room', event: 'said', payload: { text: 'hi 3', emoji: '👋' }, id: 4, key: 'k1' });
      expect(await c.client.nextWhere((f) => f['id'] === 4, 'the duplicate')).toMatchObject({ duplicate: true });
      await until(s, () => eventsOf(receiver).length >= 2 && eventsOf(others).length >= 1, 'the events');
      await s.pass(5000);
      const events = receiver.delivered.map((r) => verify(r));
      expect(events.map((e) => e.type)).toEqual(['client.publish', 'client.publish']);
      expect(events.map((e) => e.data)).toEqual([
        {
          channel: 'chat:room',
          type: 'said',
          payload: { text: 'hi 1', emoji: '👋' },
          user: 'ann',
          client: c.connected['client'],
          seq: 1,
          epoch: expect.any(String),
        },
        {
          channel: 'chat:room',
          type: 'said',
          payload: { text: 'hi 3', emoji: '👋' },
          user: 'ann',
          client: c.connected['client'],
          seq: 2,
          epoch: expect.any(String),
        },
      ]);
      expect(eventsOf(others)).toEqual(['user.online ann']);
    });

    it('makes no user.offline for a reload within the hold-back, and one after it', async () => {
      const receiver = await new Receiver().start();
      const s = await setup(hooks(receiver, { webhooks: [{ name: 'app', url: receiver.url, secret: SECRET, events: ['user.online', 'user.offline'] }] }));
      receiver.now = () => s.clock.now();
      const first = await TestClient.connect(s.sub.ws, { token: await token({ sub: 'reload' }) });
      first.client.terminate();
      await first.client.closed();
      await s.pass(2000);
      const second = await TestClient.connect(s.pub.ws, { token: await token({ sub: 'reload' }) });
      await s.pass(10_000);
      expect(eventsOf(receiver)).toEqual(['user.online reload']);
      second.client.terminate();
      await until(s, () => eventsOf(receiver).length === 2, 'the offline');
      expect(eventsOf(receiver)).toEqual(['user.online reload', 'user.offline reload']);
    });

    it('dead-letters what failed for webhookRetryFor, counts it, and replays it on request', async () => {
      const receiver = await new Receiver().start();
      receiver.failNext = 1000;
      const s = await setup(
        hooks(receiver, { webhookRetryFor: 60_000, webhooks: [{ name: 'app', url: receiver.url, secret: SECRET, events: ['user.online'] }] }),
      );
      receiver.now = () => s.clock.now();
      const c = await TestClient.connect(s.sub.ws, { token: await token({ sub: 'dead' }) });
      await until(s, () => receiver.requests.length > 0, 'a first attempt');
      // Gone: two minutes of manual time in big steps would let its presence lapse and come back (a second online).
      c.client.terminate();
      await s.pass(120_000, 5000);
      const attempts = receiver.requests.length;
      expect(attempts).toBeGreaterThan(3);
      const state = (await api(s.pub.http, 'GET', '/api/webhooks')).body;
      expect(state).toMatchObject({ queued: 0, dead: 1 });
      expect(state.deadLetters[0]).toMatchObject({ endpoint: 'app', attempt: attempts, reason: 'status 503' });
      // Counted by the node that gave up on it (either, with two).
      const metrics = [...new Set([s.pub, s.sub])].map(async (g) => (await api(g.http, 'GET', '/metrics')).body as string);
      expect((await Promise.all(metrics)).join('\n')).toMatch(/herald_webhooks_dead_total\{endpoint="app",format="standard",node="[^"]+"\} 1/);
      receiver.failNext = 0;
      // A body that is not {} or {"ids": [...]} queues nothing: a typo must not replay every dead letter.
      for (const [raw, code] of [
        ['{"id":["nope"]}', 'invalid_field'],
        ['{"ids":"x"}', 'invalid_field'],
        ['null', 'invalid_body'],
        ['[]', 'invalid_body'],
      ] as const) {
        const r = await api(s.pub.http, 'POST', '/api/webhooks/replay', undefined, { raw });
        expect(r.status, raw).toBe(400);
        expect(r.body.error.code, raw).toBe(code);
      }
      expect((await api(s.pub.http, 'GET', '/api/webhooks')).body).toMatchObject({ dead: 1 });
      expect((await api(s.pub.http, 'POST', '/api/webhooks/replay', {})).body).toEqual({ replayed: 1 });
      await until(s, () => receiver.delivered.length === 1, 'the replayed event');
      expect(eventsOf(receiver)).toEqual(['user.online dead']);
      expect((await api(s.pub.http, 'GET', '/api/webhooks')).body).toMatchObject({ queued: 0, dead: 0 });
    });
  });
}
