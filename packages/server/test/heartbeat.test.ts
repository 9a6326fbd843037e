import { describe, expect, it } from 'vitest';
import { startGateway, TEST_TRANSPORT, TestClient } from './helpers.js';

const rules = { pingInterval: 10_000, idleTimeout: 25_000, sweepInterval: 1000 };

describe('heartbeat', () => {
  it('answers the app-level ping with pong at once', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws);
    client.send({ type: 'ping', id: 12 });
    expect(await client.next()).toEqual({ type: 'pong', id: 12 });
  });

  it('sends protocol pings to quiet clients and reaps one that never answers with 4002', async () => {
    const gw = await startGateway(rules);
    const c = await TestClient.open(gw.ws, { autoPong: false });
    c.send({ type: 'connect' });
    await c.nextOf('connected');
    gw.clock.advance(10_000);
    await c.waitFor(() => (c.pings > 0 ? true : undefined), 'a protocol ping');
    gw.clock.advance(14_000);
    expect(c.closeCode).toBeUndefined();
    gw.clock.advance(2000);
    expect((await c.closed()).code).toBe(4002);
  });

  it('keeps a client that answers protocol pings', async () => {
    const gw = await startGateway(rules);
    const { client } = await TestClient.connect(gw.ws);
    for (let round = 0; round < 4; round++) {
      const before = client.pings;
      gw.clock.advance(10_000);
      await client.waitFor(() => (client.pings > before ? true : undefined), 'a protocol ping');
      // The automatic pong left before this round trip's ping, so the server has seen it afterwards.
      await client.roundTrip();
    }
    expect(client.closeCode).toBeUndefined();
    expect(client.frames.filter((f) => f.type === 'pong')).toHaveLength(0);
  });

  it('keeps a client that pings on its own and never answers protocol pings', async () => {
    const gw = await startGateway(rules);
    const c = await TestClient.open(gw.ws, { autoPong: false });
    c.send({ type: 'connect' });
    await c.nextOf('connected');
    for (let i = 0; i < 6; i++) {
      gw.clock.advance(9000);
      c.send({ type: 'ping' });
      await c.nextOf('pong');
    }
    expect(c.closeCode).toBeUndefined();
    expect(c.pings).toBe(0);
  });
});

describe('limits', () => {
  it('closes a client that sends frames over the rate limit with 4029', async () => {
    const gw = await startGateway({ clientRate: 5, clientBurst: 5 });
    const c = await TestClient.open(gw.ws);
    for (let i = 0; i < 8; i++) c.send({ type: 'ping', id: i });
    expect((await c.closed()).code).toBe(4029);
    expect(c.frames.filter((f) => f.type === 'pong')).toHaveLength(5);
  });

  it('refills the rate limit over time', async () => {
    const gw = await startGateway({ clientRate: 5, clientBurst: 5 });
    const c = await TestClient.open(gw.ws);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 5; i++) c.send({ type: 'ping' });
      await c.waitFor(() => (c.frames.length === (round + 1) * 5 ? true : undefined), 'pongs');
      gw.clock.advance(1000);
    }
    expect(c.closeCode).toBeUndefined();
  });

  it('closes with 1009 on a frame over the maximum frame size (1 MiB frame)', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws);
    client.sendRaw(JSON.stringify({ type: 'subscribe', channel: 'x', pad: 'a'.repeat(1024 * 1024) }));
    expect((await client.closed()).code).toBe(1009);
  });

  it('answers malformed frames with error frames, then closes a client that keeps sending garbage with 4500', async () => {
    const gw = await startGateway({ maxInvalidFrames: 4 });
    const { client } = await TestClient.connect(gw.ws);
    client.sendRaw('{not json');
    client.send({ type: 'nope' });
    client.send({ noType: true });
    expect((await client.next()).code).toBe('invalid_json');
    expect((await client.next()).code).toBe('unknown_type');
    expect((await client.next()).code).toBe('invalid_frame');
    client.send({ type: 'ping' });
    expect((await client.next()).type).toBe('pong');
    client.sendRaw('garbage');
    expect((await client.next()).code).toBe('invalid_json');
    expect((await client.closed()).code).toBe(4500);
  });

  it('answers a binary frame with a binary_frame error and keeps the connection', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws);
    client.sendRaw(Buffer.from([1, 2, 3, 0xff]), true);
    expect(await client.next()).toMatchObject({ type: 'error', code: 'binary_frame' });
    client.send({ type: 'ping' });
    expect(await client.next()).toEqual({ type: 'pong' });
  });

  it('closes with 1007 on a text frame that is not UTF-8 (RFC 6455 8.1)', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws);
    client.sendRaw(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), false);
    // uWebSockets.js checks UTF-8 itself, before the message handler runs, and drops the connection without
    // a close frame (no option turns the check off or makes it send 1007): the client sees 1006 there.
    expect((await client.closed()).code).toBe(TEST_TRANSPORT === 'uws' ? 1006 : 1007);
  });
});
