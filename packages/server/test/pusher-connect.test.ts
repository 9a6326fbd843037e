/**
 * The Pusher protocol's connection (docs/pusher.md): handshake and socket ids, refusals with their codes as
 * pusher-js reads them, ping/pong both ways, the core's sweep (ping after the activity timeout, 4201 without an
 * answer), rate limits, invalid frames, graceful shutdown (4200). Runs on both transports (scripts/test.sh).
 */
import { describe, expect, it } from 'vitest';
import { PusherCode } from '@herald/protocol';
import { api, startGateway, TestClient } from './helpers.js';
import { APP, pusherJs, pusherState, PusherTestClient, startPusherGateway } from './pusher-helpers.js';

describe('pusher protocol: connection', () => {
  it('sends pusher:connection_established first, with a <digits>.<digits> socket id and the activity timeout', async () => {
    const { port } = await startPusherGateway();
    const a = await PusherTestClient.connect(port);
    const b = await PusherTestClient.connect(port);
    expect(a.frames[0]?.event).toBe('pusher:connection_established');
    expect(typeof a.frames[0]?.data).toBe('string');
    expect(JSON.parse(a.frames[0]?.data as string)).toEqual({ socket_id: a.socketId, activity_timeout: 120 });
    expect(a.socketId).toMatch(/^\d+\.\d+$/);
    expect(b.socketId).not.toBe(a.socketId);
  });

  it('connects pusher-js 8 (ws transport) and gives it its socket id', async () => {
    const { port, gateway } = await startPusherGateway({ app: { activityTimeout: 30 } });
    const client = pusherJs(port);
    await pusherState(client, 'connected');
    expect(client.connection.socket_id).toMatch(/^\d+\.\d+$/);
    expect(gateway.connectionCount).toBe(1);
  });

  it('refuses an unknown app key: a pusher:error 4001 frame, then close 4001; pusher-js stops retrying', async () => {
    const { port } = await startPusherGateway();
    const c = new PusherTestClient(`ws://127.0.0.1:${port}/app/nope?protocol=7`);
    const err = await c.nextEvent('pusher:error');
    expect(err.data).toEqual({ code: PusherCode.AppDoesNotExist, message: 'App key nope does not exist' });
    expect((await c.closed()).code).toBe(PusherCode.AppDoesNotExist);
    // No key at all: the message says so (not "App key undefined").
    const bare = new PusherTestClient(`ws://127.0.0.1:${port}/app/?protocol=7`);
    expect((await bare.nextEvent('pusher:error')).data).toEqual({ code: PusherCode.AppDoesNotExist, message: 'No app key in the path (/app/<key>)' });
    const client = pusherJs(port, { key: 'nope' });
    await pusherState(client, 'disconnected');
  });

  it('refuses an unsupported protocol (4007) and a malformed version (4006); accepts a missing protocol', async () => {
    const { port } = await startPusherGateway();
    for (const [query, code] of [
      ['protocol=3', PusherCode.UnsupportedProtocol],
      ['protocol=x', PusherCode.UnsupportedProtocol],
      ['protocol=7&version=not a version', PusherCode.InvalidVersion],
    ] as const) {
      const c = new PusherTestClient(`ws://127.0.0.1:${port}/app/${APP.key}?${query}`);
      expect((await c.nextEvent('pusher:error')).data, query).toMatchObject({ code });
      expect((await c.closed()).code).toBe(code);
    }
    await PusherTestClient.connect(port, APP.key, '');
  });

  it('refuses connections over the app quota with 4004, and counts a closed one out', async () => {
    const { port } = await startPusherGateway({ app: { maxConnections: 1 } });
    const first = await PusherTestClient.connect(port);
    const second = new PusherTestClient(`ws://127.0.0.1:${port}/app/${APP.key}?protocol=7`);
    expect((await second.nextEvent('pusher:error')).data).toMatchObject({ code: PusherCode.OverQuota });
    expect((await second.closed()).code).toBe(PusherCode.OverQuota);
    first.ws.close();
    await first.closed();
    await expect.poll(async () => (await PusherTestClient.connect(port).then((c) => c.socketId)) !== '').toBe(true);
  });

  it('answers pusher:ping with pusher:pong, and WebSocket pings with pongs', async () => {
    const { port } = await startPusherGateway();
    const c = await PusherTestClient.connect(port);
    c.send({ event: 'pusher:ping', data: {} });
    const pong = await c.nextEvent('pusher:pong');
    expect(c.raw[c.raw.length - 1]).toBe('{"event":"pusher:pong","data":"{}"}');
    expect(pong.data).toBe('{}');
    await c.roundTrip();
  });

  it('pings a silent connection after the activity timeout, keeps it when it answers, closes with 4201 when it does not', async () => {
    const { port, gateway, clock } = await startPusherGateway({ app: { activityTimeout: 30 } });
    const c = await PusherTestClient.connect(port);
    clock.advance(30_000);
    gateway.sweep();
    await c.nextEvent('pusher:ping');
    c.send({ event: 'pusher:pong', data: {} });
    await c.roundTrip();
    clock.advance(29_000);
    gateway.sweep();
    expect(c.closeCode).toBeUndefined();
    clock.advance(31_000);
    gateway.sweep();
    await c.nextEvent('pusher:ping');
    clock.advance(31_000);
    gateway.sweep();
    expect((await c.closed()).code).toBe(PusherCode.PongNotReceived);
  });

  it('answers invalid frames with pusher:error, then closes with 4300 after too many', async () => {
    const { port } = await startPusherGateway({ maxInvalidFrames: 3 });
    const c = await PusherTestClient.connect(port);
    c.send('not json');
    expect((await c.nextEvent('pusher:error')).data).toMatchObject({ code: null });
    c.send({ event: 'pusher:nonsense' });
    await c.nextEvent('pusher:error');
    c.ws.send(Buffer.from([1, 2]), { binary: true });
    expect((await c.closed()).code).toBe(PusherCode.ProtocolViolation);
  });

  it('closes a connection over the frame rate limit with 4101 (pusher-js backs off and reconnects)', async () => {
    // The burst is at least maxSubscriptions + 10 frames (a pusher-js client subscribes everything as it connects).
    const { port } = await startPusherGateway({ clientRate: 1, clientBurst: 3, maxSubscriptions: 1 });
    const c = await PusherTestClient.connect(port);
    for (let i = 0; i < 13; i++) c.send({ event: 'pusher:ping', data: {} });
    expect((await c.closed()).code).toBe(PusherCode.RateLimited);
  });

  it('lets pusher-js subscribe more channels than maxSubscriptions at connect: the one past it is refused, the connection stays', async () => {
    const { port, gateway } = await startPusherGateway({ maxSubscriptions: 100 });
    const client = pusherJs(port);
    const channels = Array.from({ length: 101 }, (_, i) => client.subscribe(`ch-${i}`));
    const outcomes = await Promise.all(
      channels.map(
        (ch) =>
          new Promise<string>((resolve) => {
            ch.bind('pusher:subscription_succeeded', () => resolve('ok'));
            ch.bind('pusher:subscription_error', (e: { type: string; status: number }) => resolve(`${e.type} ${e.status}`));
          }),
      ),
    );
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(100);
    expect(outcomes.filter((o) => o !== 'ok')).toEqual(['LimitReached 400']);
    expect(client.connection.state).toBe('connected');
    expect(gateway.stats.closedByCode.get(PusherCode.RateLimited)).toBeUndefined();
  });

  it('refuses a subscription over the new-channel budget (channelRate) with LimitReached 429, not as an engine error', async () => {
    const { port, gateway } = await startPusherGateway({ channelRate: 2 });
    const c = await PusherTestClient.connect(port);
    expect((await c.subscribe('fresh-1')).event).toBe('pusher_internal:subscription_succeeded');
    expect((await c.subscribe('fresh-2')).event).toBe('pusher_internal:subscription_succeeded');
    const refused = await c.subscribe('fresh-3');
    expect(refused).toMatchObject({ event: 'pusher:subscription_error', data: { type: 'LimitReached', status: 429 } });
    expect(gateway.stats.limits.get('new_channels')).toBe(1);
    expect(gateway.stats.engineErrors.get('subscribe') ?? 0).toBe(0);
  });

  it('closes a slow consumer with 4100 (pusher-js backs off, then reconnects)', async () => {
    const { port, http, gateway } = await startPusherGateway({ sendBufferLimit: 64 * 1024 });
    const c = await PusherTestClient.connect(port);
    await c.subscribe('firehose');
    // The client stops reading: the server's send buffer grows until the core closes it.
    (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const blob = 'x'.repeat(256 * 1024);
    for (let n = 0; n < 200 && !gateway.stats.closedByCode.get(PusherCode.OverCapacity); n++) {
      await api(http, 'POST', '/api/publish', { app: APP.id, channel: 'firehose', type: 'big', payload: { blob } });
    }
    expect(gateway.stats.closedByCode.get(PusherCode.OverCapacity)).toBe(1);
    expect(gateway.stats.dropped.get('slow_consumer')).toBe(1);
  });

  it('closes every connection with 4200 on graceful shutdown', async () => {
    const { port, gateway } = await startPusherGateway();
    const c = await PusherTestClient.connect(port);
    const closed = c.closed();
    await gateway.close();
    expect((await closed).code).toBe(PusherCode.Reconnect);
  });

  it('shows Pusher connections, closes and refusals in /metrics and the stats snapshot', async () => {
    const { port, http, ws } = await startPusherGateway({ app: { maxConnections: 1 } });
    await PusherTestClient.connect(port);
    await TestClient.connect(ws);
    const over = new PusherTestClient(`ws://127.0.0.1:${port}/app/${APP.key}?protocol=7`);
    await over.closed();
    const bad = new PusherTestClient(`ws://127.0.0.1:${port}/app/nope?protocol=7`);
    await bad.closed();
    const metrics = (await api(http, 'GET', '/metrics')).body as string;
    expect(metrics).toContain('herald_protocol_connections{protocol="pusher",node=');
    expect(metrics).toMatch(/herald_protocol_connections\{protocol="pusher",node="[^"]+"\} 1\n/);
    expect(metrics).toMatch(/herald_protocol_connections\{protocol="native",node="[^"]+"\} 1\n/);
    expect(metrics).toMatch(/herald_connections_closed_total\{code="4004",node="[^"]+"\} 1\n/);
    expect(metrics).toMatch(/herald_messages_dropped_total\{reason="pusher_over_quota",node="[^"]+"\} 1\n/);
    expect(metrics).toMatch(/herald_auth_failures_total\{reason="pusher_app_key",node="[^"]+"\} 1\n/);
    expect((await api(http, 'GET', '/api/stats')).body.protocols).toEqual({ pusher: 1, native: 1 });
  });

  it('serves Pusher beside the native protocol; without an app, /app/... and /apps/... do not exist', async () => {
    const { port, http } = await startPusherGateway();
    const plain = await api(http, 'GET', `/app/${APP.key}`, undefined, { key: null });
    expect(plain.status).toBe(426);
    const bare = await startGateway();
    const upgrade = await api(bare.http, 'GET', `/app/${APP.key}`, undefined, { key: null });
    expect(upgrade.status).toBe(404);
    expect((await api(bare.http, 'POST', `/apps/${APP.id}/events`, {}, { key: null })).status).toBe(404);
    await PusherTestClient.connect(port);
  });
});
