import { describe, expect, it } from 'vitest';
import { api, eventually, publish, startGateway, TestClient } from './helpers.js';
import { Publisher } from '../src/delivery/publisher.js';
import { EARLY_FLUSH_CONNECTIONS } from '../src/delivery/hub.js';
import type { PublishItem } from '../src/delivery/publish-request.js';
import { coreHarness, turn } from './support/core.js';

const item = (channel: string, i: number): PublishItem => ({
  target: { kind: 'channels', channels: [channel] },
  type: 't',
  payloadJson: `{"i":${i}}`,
  id: undefined,
});

describe('fan-out', () => {
  it('serializes a message once and hands the same bytes to every recipient', async () => {
    const core = await coreHarness();
    const opened = [0, 1, 2].map((i) => core.open(`c${i}`));
    for (const { conn } of opened) core.send(conn, { type: 'connect', subs: { news: {} } });
    const sockets = opened.map((o) => o.socket);
    await eventually(() => (sockets.every((s) => s.writes.length === 1) ? true : undefined), 'connected frames');
    await core.engine.broker.publish({ channel: 'news', type: 'hi', payloadJson: '{"a":1}' });
    await turn();
    const frames = sockets.map((s) => s.writes[1]?.[0]);
    expect(frames[0]?.toString()).toBe('{"type":"hi","channel":"news","payload":{"a":1},"seq":1}');
    expect(frames[1]).toBe(frames[0]);
    expect(frames[2]).toBe(frames[0]);
    await core.close();
  });

  it('coalesces everything queued in one turn into one write per connection', async () => {
    const core = await coreHarness();
    const plain = core.open('p');
    const batched = core.open('b');
    core.send(plain.conn, { type: 'connect', subs: { n: {} }, batch: false });
    core.send(batched.conn, { type: 'connect', subs: { n: {} }, batch: true });
    await eventually(() => (plain.socket.writes.length === 1 && batched.socket.writes.length === 1 ? true : undefined), 'connected');
    for (let i = 0; i < 3; i++) await core.engine.broker.publish({ channel: 'n', type: 't', payloadJson: `{"i":${i}}` });
    await turn();
    // One write each: three frames corked together for the plain client, one `\n`-joined frame for the batch client.
    expect(plain.socket.writes[1]).toHaveLength(3);
    expect(batched.socket.writes[1]).toHaveLength(1);
    expect(
      batched.socket.writes[1]?.[0]
        ?.toString()
        .split('\n')
        .map((l) => JSON.parse(l).seq),
    ).toEqual([1, 2, 3]);
    await core.close();
  });

  it('writes a push to few connections before its publish is answered, not at the end of the turn', async () => {
    const core = await coreHarness();
    const { socket } = await core.connect('c1', { subs: { n: {} } });
    const publisher = new Publisher(core.engine, core.stats, core.hub);
    const before = socket.writes.length;
    // No turn passes here (promises only): the frame is on the socket by the time the answer exists, so it
    // leaves ahead of the HTTP response, and other requests read in the same turn do not hold it back.
    expect(await publisher.publish(item('n', 1))).toMatchObject({ results: { n: { seq: 1, subscribers: 1 } } });
    expect(socket.writes.length).toBe(before + 1);
    expect(JSON.parse(socket.writes[before]?.[0]?.toString() ?? '')).toMatchObject({ channel: 'n', seq: 1 });
    await turn();
    expect(socket.writes.length).toBe(before + 1);
    await core.close();
  });

  it('keeps a fan-out to more connections for the end of the turn, one write per connection for every publish of it', async () => {
    const core = await coreHarness();
    const sockets = [];
    for (let i = 0; i <= EARLY_FLUSH_CONNECTIONS; i++) sockets.push((await core.connect(`c${i}`, { subs: { n: {} } })).socket);
    const publisher = new Publisher(core.engine, core.stats, core.hub);
    const before = sockets.map((s) => s.writes.length);
    // Two requests' publishes in one turn, to one more connection than an early flush writes.
    await Promise.all([publisher.publish(item('n', 1)), publisher.publish(item('n', 2))]);
    expect(sockets.map((s) => s.writes.length)).toEqual(before);
    await turn();
    for (const [i, s] of sockets.entries()) {
      expect(s.writes.length).toBe((before[i] as number) + 1);
      expect(s.writes.at(-1)).toHaveLength(2);
    }
    await core.close();
  });

  it('batch:true clients get several messages in one frame; plain clients one per frame', async () => {
    const gw = await startGateway();
    const batched = await TestClient.connect(gw.ws, { subs: { n: {} }, batch: true });
    const plain = await TestClient.connect(gw.ws, { subs: { n: {} } });
    const items = Array.from({ length: 5 }, (_, i) => ({ channel: 'n', type: 't', payload: { i } }));
    expect((await api(gw.http, 'POST', '/api/publish', items)).status).toBe(200);
    expect((await batched.client.waitMessages('n', 5)).map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
    expect((await plain.client.waitMessages('n', 5)).map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(batched.client.raw.length).toBeLessThan(6);
    expect(batched.client.raw.some((r) => r.includes('\n'))).toBe(true);
    expect(plain.client.raw.filter((r) => r.includes('\n'))).toHaveLength(0);
    expect(plain.client.raw).toHaveLength(6);
  });

  it('closes a slow consumer with 4008 while other clients keep receiving everything', async () => {
    const gw = await startGateway({ sendBufferLimit: 64 * 1024 });
    const slow = await TestClient.connect(gw.ws, { subs: { big: {} } });
    const fast = await TestClient.connect(gw.ws, { subs: { big: {} } });
    // Stop reading: the kernel buffers fill, then the server's send buffer grows past the limit.
    (slow.client.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const payload = { blob: 'x'.repeat(16 * 1024) };
    let n = 0;
    while (!gw.gateway.stats.closedByCode.get(4008) && n < 2000) {
      await publish(gw.http, { channel: 'big', type: 'chunk', payload });
      n++;
    }
    expect(gw.gateway.stats.closedByCode.get(4008)).toBe(1);
    expect(gw.gateway.stats.dropped.get('slow_consumer')).toBe(1);
    await publish(gw.http, { channel: 'big', type: 'chunk', payload });
    n++;
    const got = await fast.client.waitMessages('big', n, 20_000);
    expect(got.map((m) => m.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    (slow.client.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    expect((await slow.client.closed(20_000)).code).toBe(4008);
    expect((await api(gw.http, 'GET', '/api/channels/big')).body.subscribers).toBe(1);
  });
});
