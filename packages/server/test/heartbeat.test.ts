import { describe, expect, it, vi } from 'vitest';
import { Connection } from '../src/delivery/connection.js';
import { SlicedPass } from '../src/delivery/heartbeat.js';
import { createRedisEngine } from '../src/engine/redis/engine.js';
import { silentLogger } from '../src/util/logger.js';
import { eventually, onCleanup, startGateway, TEST_TRANSPORT, TestClient } from './helpers.js';
import { REDIS_URL, testPrefix } from './redis-helpers.js';

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

  it('answers the frames within the rate limit before closing with 4029: subscribes waiting for the engine, an error', async () => {
    // Redis: a subscribe's answer waits for a round trip, so it is still under way when the limit trips.
    const gw = await startGateway({
      clientRate: 2,
      clientBurst: 6,
      engine: createRedisEngine({ url: REDIS_URL, prefix: testPrefix(), logger: silentLogger() }),
    });
    const { client: c } = await TestClient.connect(gw.ws);
    c.sendRaw('{bad');
    for (let i = 0; i < 6; i++) c.send({ type: 'subscribe', channel: `limit-${i}`, id: i });
    expect((await c.closed()).code).toBe(4029);
    // connect was the first frame of the burst: the invalid one and four subscribes were within it.
    expect(c.frames.filter((f) => f.type === 'error').map((f) => f['code'])).toEqual(['invalid_json']);
    expect(c.frames.filter((f) => f.type === 'subscribed').map((f) => f['id'])).toEqual([0, 1, 2, 3]);
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

  it('closes with 1009 on a frame over the maximum frame size (100 KiB against 64 KiB)', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws);
    // Within what uWebSockets.js reads before it drops a frame bare (64 KiB over the maximum, see uws-transport.test.ts).
    client.sendRaw(JSON.stringify({ type: 'subscribe', channel: 'x', pad: 'a'.repeat(100 * 1024) }));
    expect((await client.closed()).code).toBe(1009);
    // Counted with the code sent, not as 1006 (the library stops reading after it, so no close frame comes back).
    await eventually(() => (gw.gateway.stats.closedByCode.get(1009) === 1 ? true : undefined), 'the close counted as 1009');
    expect(gw.gateway.stats.closedByCode.get(1006)).toBeUndefined();
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
    const code = TEST_TRANSPORT === 'uws' ? 1006 : 1007;
    expect((await client.closed()).code).toBe(code);
    // Counted with the code sent (on `ws` not 1006, though the library stops reading and no close frame comes back).
    await eventually(() => (gw.gateway.stats.closedByCode.get(code) === 1 ? true : undefined), `the close counted as ${code}`);
  });
});

describe('the sweep, spread over its interval', () => {
  it('visits every item once per pass, a slice per tick, a pass per ten ticks as the single sweep did', () => {
    const items = new Map<number, number>();
    for (let i = 0; i < 1000; i++) items.set(i, i);
    const seen: number[][] = [];
    let passes = 0;
    const pass = new SlicedPass(
      items,
      10,
      (item) => (seen[seen.length - 1] as number[]).push(item),
      () => passes++,
    );
    const tick = (): void => {
      seen.push([]);
      pass.tick(seen.length);
    };
    // The first pass starts at the tenth tick (where the one-second sweep ran), then takes ten ticks.
    for (let i = 0; i < 19; i++) tick();
    expect(seen.map((s) => s.length)).toEqual([...Array(9).fill(0), ...Array(10).fill(100)]);
    expect(seen.flat()).toEqual([...items.keys()]);
    expect(passes).toBe(0);
    // The 20th tick ends the pass (the end-of-pass work runs once) and goes on with the next one.
    tick();
    expect(passes).toBe(1);
    expect(seen[19]).toEqual([...items.keys()].slice(0, 100));
  });

  it('sees items added during a pass and skips items removed before their turn', () => {
    const items = new Map<string, string>([
      ['a', 'a'],
      ['b', 'b'],
      ['c', 'c'],
      ['d', 'd'],
    ]);
    const seen: string[] = [];
    const pass = new SlicedPass(items, 2, (item) => seen.push(item));
    pass.tick(0);
    expect(seen).toEqual([]);
    pass.tick(1);
    expect(seen).toEqual(['a', 'b']);
    items.delete('c');
    items.set('e', 'e');
    pass.tick(2);
    expect(seen).toEqual(['a', 'b', 'd', 'e']);
    pass.tick(3);
    expect(seen.slice(4)).toEqual(['a', 'b']);
  });

  it('visits a small set, and runs the end-of-pass work, once per ten ticks, not every tick', () => {
    const visits: number[] = [];
    let passes = 0;
    const small = new SlicedPass(
      new Map([['x', 'x']]),
      10,
      (_item, now) => visits.push(now),
      () => passes++,
    );
    for (let tick = 1; tick <= 40; tick++) small.tick(tick);
    expect(visits).toEqual([10, 20, 30, 40]);
    expect(passes).toBe(3);
    // Nothing to visit: the end-of-pass work still runs once per pass.
    let emptyPasses = 0;
    const empty = new SlicedPass(
      new Map<string, string>(),
      10,
      () => undefined,
      () => emptyPasses++,
    );
    for (let tick = 1; tick <= 40; tick++) empty.tick(tick);
    expect(emptyPasses).toBe(4);
  });

  it('pings quiet clients that connected together a tenth per tick, and each of them within one sweep interval', async () => {
    const gw = await startGateway(rules);
    const clients = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const c = await TestClient.open(gw.ws, { autoPong: false });
        c.send({ type: 'connect' });
        await c.nextOf('connected');
        return c;
      }),
    );
    const ping = vi.spyOn(Connection.prototype, 'ping');
    onCleanup(() => ping.mockRestore());
    const pinged = (): number => ping.mock.calls.length;
    gw.clock.advance(9_999);
    expect(pinged()).toBe(0);
    // From now on, every tick (a tenth of the interval) finds all of them due; each pings at most two.
    const perTick: number[] = [];
    for (let tick = 0; tick < 11; tick++) {
      const before = pinged();
      gw.clock.advance(100);
      perTick.push(pinged() - before);
    }
    expect(Math.max(...perTick)).toBeLessThanOrEqual(2);
    expect(pinged()).toBe(20);
    for (const c of clients) await c.waitFor(() => (c.pings > 0 ? true : undefined), 'a protocol ping');
  });
});
