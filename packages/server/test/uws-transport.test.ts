/**
 * The protocol behaviours of the transport seam, run against the uWebSockets.js transport: the same
 * gateway, hub and connections as every other suite, with `attachWsTransport` swapped for the uWS one
 * (`transport: 'uws'`). uWebSockets.js is an optional package for users; this repository installs it (the
 * bench workspace's devDependency), so a missing package fails this suite instead of skipping it.
 */
import { createRequire } from 'node:module';
import { request } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import type { GatewayOptions } from '../src/options.js';
import { api, publish, startGateway as startAnyGateway, TestClient, token } from './helpers.js';

/** A test gateway on the uWebSockets.js transport. */
const startGateway = (opts: GatewayOptions = {}): ReturnType<typeof startAnyGateway> => startAnyGateway({ ...opts, transport: 'uws' });

/** Sends a raw upgrade request and returns the HTTP status and JSON body of the refusal. */
function upgrade(base: string, path: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(base + path, {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: null });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('uWebSockets.js transport', () => {
  beforeAll(() => {
    // Installed here by the bench workspace (npm:uwebsockets@3.0.6); never skip silently.
    expect(() => createRequire(import.meta.url).resolve('uWebSockets.js')).not.toThrow();
  });

  it('runs the gateway on uWebSockets.js', async () => {
    const gw = await startGateway();
    const r = await fetch(`${gw.http}/healthz`);
    // uWebSockets.js names itself in every response it writes.
    expect(r.headers.get('uwebsockets')).not.toBeNull();
  });

  it('connects with a token and is subscribed to its user channel', async () => {
    const gw = await startGateway();
    const { connected } = await TestClient.connect(gw.ws, { token: await token({ sub: '42' }) });
    expect(connected).toMatchObject({ type: 'connected', user: '42' });
    expect(connected.subs).toEqual({ 'user:42': { seq: 0, epoch: expect.any(String), recovered: false } });
    expect(gw.gateway.connectionCount).toBe(1);
  });

  it('subscribes and delivers published messages in seq order, plain and batched', async () => {
    const gw = await startGateway();
    const plain = await TestClient.connect(gw.ws);
    plain.client.send({ type: 'subscribe', channel: 'news', id: 1 });
    expect(await plain.client.next()).toMatchObject({ type: 'subscribed', channel: 'news', seq: 0, recovered: false, id: 1 });
    const batched = await TestClient.connect(gw.ws, { batch: true, subs: { news: {} } });
    await publish(gw.http, [1, 2, 3].map((i) => ({ channel: 'news', type: 'headline', payload: { i } })) as any);
    for (const c of [plain.client, batched.client]) {
      const got = await c.waitMessages('news', 3);
      expect(got.map((m) => [m.type, m.seq, (m.payload as { i: number }).i])).toEqual([
        ['headline', 1, 1],
        ['headline', 2, 2],
        ['headline', 3, 3],
      ]);
    }
    // Three messages queued in one turn: one WebSocket frame for the batch client, three for the plain one.
    expect(batched.client.raw.some((r) => r.includes('\n'))).toBe(true);
    expect(plain.client.raw.filter((r) => r.includes('\n'))).toHaveLength(0);
  });

  it('recovers missed messages with since and epoch', async () => {
    const gw = await startGateway();
    const first = await publish(gw.http, { channel: 'r', type: 'm', payload: { i: 1 } });
    const epoch = first.results.r.epoch as string;
    for (let i = 2; i <= 5; i++) await publish(gw.http, { channel: 'r', type: 'm', payload: { i } });
    const { client } = await TestClient.connect(gw.ws);
    client.send({ type: 'subscribe', channel: 'r', since: 2, epoch, id: 1 });
    expect(await client.next()).toEqual({ type: 'subscribed', channel: 'r', seq: 5, epoch, recovered: true, id: 1 });
    await publish(gw.http, { channel: 'r', type: 'm', payload: { i: 6 } });
    expect((await client.waitMessages('r', 4)).map((m) => m.seq)).toEqual([3, 4, 5, 6]);
  });

  it('answers the app-level ping with pong, and a protocol ping with a protocol pong', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws);
    client.send({ type: 'ping', id: 12 });
    expect(await client.next()).toEqual({ type: 'pong', id: 12 });
    await client.roundTrip();
  });

  it('sends protocol pings to quiet clients and reaps one that never answers with 4002', async () => {
    const gw = await startGateway({ pingInterval: 10_000, idleTimeout: 25_000, sweepInterval: 1000 });
    const c = await TestClient.open(gw.ws, { autoPong: false });
    c.send({ type: 'connect' });
    await c.nextOf('connected');
    gw.clock.advance(10_000);
    await c.waitFor(() => (c.pings > 0 ? true : undefined), 'a protocol ping');
    gw.clock.advance(16_000);
    expect((await c.closed()).code).toBe(4002);
  });

  it('answers a binary frame with a binary_frame error and keeps the connection', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws);
    client.sendRaw(Buffer.from([1, 2, 3]), true);
    expect(await client.next()).toMatchObject({ type: 'error', code: 'binary_frame' });
    client.send({ type: 'ping' });
    expect(await client.next()).toEqual({ type: 'pong' });
  });

  it('closes with 1009 on a frame over maxFrameSize', async () => {
    const gw = await startGateway({ maxFrameSize: 1024 });
    const { client } = await TestClient.connect(gw.ws);
    client.sendRaw('x'.repeat(2048));
    expect((await client.closed()).code).toBe(1009);
  });

  it('closes a slow consumer with 4008 while other clients keep receiving everything', async () => {
    const gw = await startGateway({ sendBufferLimit: 64 * 1024 });
    const slow = await TestClient.connect(gw.ws, { subs: { big: {} } });
    const fast = await TestClient.connect(gw.ws, { subs: { big: {} } });
    (slow.client.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const payload = { blob: 'x'.repeat(16 * 1024) };
    let n = 0;
    while (!gw.gateway.stats.closedByCode.get(4008) && n < 2000) {
      await publish(gw.http, { channel: 'big', type: 'chunk', payload });
      n++;
    }
    expect(gw.gateway.stats.closedByCode.get(4008)).toBe(1);
    expect(gw.gateway.stats.dropped.get('slow_consumer')).toBe(1);
    const got = await fast.client.waitMessages('big', n, 20_000);
    expect(got.map((m) => m.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    (slow.client.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect((await slow.client.closed(20_000)).code).toBe(4008);
  });

  it('answers an upgrade on another path with 404 and the valid paths', async () => {
    const gw = await startGateway();
    const r = await upgrade(gw.http, '/socket');
    expect(r.status).toBe(404);
    expect(r.body.error).toMatchObject({ code: 'not_found', paths: ['/ws'] });
  });

  it('answers a plain GET on /ws with 426, and serves the HTTP API on the same port', async () => {
    const gw = await startGateway();
    const r = await api(gw.http, 'GET', '/ws', undefined, { key: null });
    expect(r.status).toBe(426);
    expect(r.body.error.code).toBe('upgrade_required');
    expect(r.headers.get('upgrade')).toBe('websocket');
    expect((await api(gw.http, 'GET', '/healthz', undefined, { key: null })).body).toEqual({ status: 'ok' });
    expect((await api(gw.http, 'POST', '/api/publish', { channel: 'x', type: 't', payload: {} }, { key: 'wrong_key_0123456789' })).status).toBe(401);
  });

  it('closes every client with 1012 on shutdown and releases the port', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws);
    await gw.gateway.close();
    expect((await client.closed()).code).toBe(1012);
  });
});
