import { afterAll, describe, expect, it } from 'vitest';
import { api, publish, startGateway, TestClient, token } from './helpers.js';
import { cleanupRun, engineWithSubscriberProxy, waitFor } from './redis-helpers.js';

const seqs = (frames: ReadonlyArray<Record<string, unknown>>): number[] => frames.map((f) => f.seq as number);
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function publishMany(base: string, channel: string, n: number, parallel = 8, onProgress?: (done: number) => void): Promise<void> {
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        const i = next++;
        await publish(base, { channel, type: 'm', payload: { i } });
        onProgress?.(++done);
      }
    }),
  );
}

describe('history and recovery', () => {
  it('replays everything after since, oldest first, before live messages', async () => {
    const gw = await startGateway();
    const first = await publish(gw.http, { channel: 'r', type: 'm', payload: { i: 1 } });
    const epoch = first.results.r.epoch as string;
    for (let i = 2; i <= 5; i++) await publish(gw.http, { channel: 'r', type: 'm', payload: { i } });
    const { client } = await TestClient.connect(gw.ws);
    client.send({ type: 'subscribe', channel: 'r', since: 2, epoch, id: 1 });
    expect(await client.next()).toEqual({ type: 'subscribed', channel: 'r', seq: 5, epoch, recovered: true, id: 1 });
    await publish(gw.http, { channel: 'r', type: 'm', payload: { i: 6 } });
    expect(seqs(await client.waitMessages('r', 4))).toEqual([3, 4, 5, 6]);
    expect(client.frames.slice(2, 6).map((f) => (f.payload as { i: number }).i)).toEqual([3, 4, 5, 6]);
  });

  it('recovers in the connect frame: connected, then the missed messages', async () => {
    const gw = await startGateway();
    const a = await TestClient.connect(gw.ws, { subs: { r: {} } });
    const epoch = (a.connected.subs as any).r.epoch as string;
    for (let i = 1; i <= 3; i++) await publish(gw.http, { channel: 'r', type: 'm', payload: { i } });
    await a.client.waitMessages('r', 1);
    a.client.terminate();
    const b = await TestClient.connect(gw.ws, { subs: { r: { since: 1, epoch } } });
    expect((b.connected.subs as any).r).toEqual({ seq: 3, epoch, recovered: true });
    expect(seqs(await b.client.waitMessages('r', 2))).toEqual([2, 3]);
  });

  it('has no gap and no duplicate when 1000 publishes race a recovering subscribe', async () => {
    const gw = await startGateway();
    const epoch = (await api(gw.http, 'GET', '/api/channels/race')).body.epoch as string;
    const { client } = await TestClient.connect(gw.ws);
    let sent = false;
    await publishMany(gw.http, 'race', 1000, 8, (done) => {
      if (done === 300 && !sent) {
        sent = true;
        client.send({ type: 'subscribe', channel: 'race', since: 0, epoch });
      }
    });
    const got = await client.waitMessages('race', 1000);
    expect(seqs(got)).toEqual(range(1, 1000));
    const sub = client.frames.find((f) => f.type === 'subscribed');
    expect(sub).toMatchObject({ recovered: true, epoch });
  });

  it('has no gap and no duplicate when a client reconnects with since while publishes continue', async () => {
    const gw = await startGateway();
    const first = await TestClient.connect(gw.ws, { subs: { live: {} } });
    const epoch = (first.connected.subs as any).live.epoch as string;
    let second: TestClient | undefined;
    let reconnecting: Promise<void> | undefined;
    await publishMany(gw.http, 'live', 1000, 8, (done) => {
      if (done === 400 && !reconnecting) {
        first.client.terminate();
        const last = Math.max(0, ...seqs(first.client.messages('live')));
        reconnecting = TestClient.connect(gw.ws, { subs: { live: { since: last, epoch } } }).then(({ client }) => {
          second = client;
        });
      }
    });
    await reconnecting;
    const before = seqs(first.client.messages('live'));
    const after = seqs(await (second as TestClient).waitMessages('live', 1000 - before.length));
    expect([...before, ...after]).toEqual(range(1, 1000));
  });

  it('answers recovered:false, never a partial replay, when history was evicted (size)', async () => {
    const gw = await startGateway({ historySize: 10 });
    let epoch = '';
    for (let i = 1; i <= 20; i++) epoch = (await publish(gw.http, { channel: 's', type: 'm', payload: { i } })).results.s.epoch;
    const { client } = await TestClient.connect(gw.ws);
    client.send({ type: 'subscribe', channel: 's', since: 9, epoch, id: 1 });
    expect(await client.next()).toMatchObject({ type: 'subscribed', seq: 20, recovered: false, id: 1 });
    client.send({ type: 'subscribe', channel: 's', since: 10, epoch, id: 2 });
    expect(await client.nextOf('subscribed')).toMatchObject({ seq: 20, recovered: true, id: 2 });
    await publish(gw.http, { channel: 's', type: 'm', payload: { i: 21 } });
    expect(seqs(await client.waitMessages('s', 11))).toEqual(range(11, 21));
  });

  it('answers recovered:false when history expired (TTL), true when nothing was missed', async () => {
    const gw = await startGateway({ historyTtl: 60_000 });
    let epoch = '';
    for (let i = 1; i <= 3; i++) epoch = (await publish(gw.http, { channel: 't', type: 'm', payload: { i } })).results.t.epoch;
    gw.clock.advance(61_000);
    const { client } = await TestClient.connect(gw.ws);
    client.send({ type: 'subscribe', channel: 't', since: 1, epoch, id: 1 });
    expect(await client.next()).toMatchObject({ type: 'subscribed', seq: 3, epoch, recovered: false, id: 1 });
    client.send({ type: 'subscribe', channel: 't', since: 3, epoch, id: 2 });
    expect(await client.next()).toMatchObject({ type: 'subscribed', seq: 3, epoch, recovered: true, id: 2 });
    client.send({ type: 'ping' });
    await client.nextOf('pong');
    expect(client.messages('t')).toHaveLength(0);
  });

  it('answers recovered:false for another epoch or a position ahead of the channel', async () => {
    const gw = await startGateway();
    const epoch = (await publish(gw.http, { channel: 'e', type: 'm', payload: {} })).results.e.epoch as string;
    await publish(gw.http, { channel: 'e', type: 'm', payload: {} });
    const { client } = await TestClient.connect(gw.ws);
    client.send({ type: 'subscribe', channel: 'e', since: 1, epoch: 'other-epoch', id: 1 });
    expect(await client.next()).toMatchObject({ recovered: false, seq: 2, epoch, id: 1 });
    client.send({ type: 'subscribe', channel: 'e', since: 5, epoch, id: 2 });
    expect(await client.next()).toMatchObject({ recovered: false, seq: 2, id: 2 });
    client.send({ type: 'ping' });
    await client.nextOf('pong');
    expect(client.messages('e')).toHaveLength(0);
  });

  it('recovers a position of 0 in any epoch: it holds nothing another epoch could contradict', async () => {
    const gw = await startGateway();
    const epoch = (await publish(gw.http, { channel: 'z', type: 'm', payload: { i: 1 } })).results.z.epoch as string;
    await publish(gw.http, { channel: 'z', type: 'm', payload: { i: 2 } });
    const { client } = await TestClient.connect(gw.ws);
    // E.g. a client that subscribed before anything was published, and whose channel state was then reclaimed.
    client.send({ type: 'subscribe', channel: 'z', since: 0, epoch: 'an-old-one', id: 1 });
    expect(await client.next()).toMatchObject({ type: 'subscribed', recovered: true, seq: 2, epoch, id: 1 });
    expect(seqs(await client.waitMessages('z', 2))).toEqual([1, 2]);
  });

  it('keeps seq without gaps per channel and a stable epoch across publishes', async () => {
    const gw = await startGateway();
    const out = [];
    for (let i = 0; i < 5; i++) out.push((await publish(gw.http, { channels: ['x', 'y'], type: 'm', payload: {} })).results);
    expect(out.map((r) => r.x.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(out.map((r) => r.x.epoch)).size).toBe(1);
    expect(out[0].x.epoch).not.toBe(out[0].y.epoch);
  });

  it('never recovers a since sent without its epoch', async () => {
    const gw = await startGateway();
    for (let i = 1; i <= 3; i++) await publish(gw.http, { channel: 'ne', type: 'm', payload: { i } });
    const { client } = await TestClient.connect(gw.ws);
    client.send({ type: 'subscribe', channel: 'ne', since: 1, id: 1 });
    expect(await client.next()).toMatchObject({ type: 'subscribed', seq: 3, recovered: false, id: 1 });
    client.send({ type: 'ping' });
    await client.nextOf('pong');
    expect(client.messages('ne')).toHaveLength(0);
  });

  it('recovers the automatic user channel listed in connect.subs, even at the subscription limit', async () => {
    const gw = await startGateway({ maxSubscriptions: 1 });
    const t = await token({ sub: '5' });
    const first = await TestClient.connect(gw.ws, { token: t });
    const epoch = (first.connected.subs as any)['user:5'].epoch as string;
    for (let i = 1; i <= 3; i++) await publish(gw.http, { channel: 'user:5', type: 'm', payload: { i } });
    await first.client.waitMessages('user:5', 3);
    first.client.terminate();
    const again = await TestClient.connect(gw.ws, { token: t, subs: { 'user:5': { since: 1, epoch } } });
    expect((again.connected.subs as any)['user:5']).toEqual({ seq: 3, epoch, recovered: true });
    expect(seqs(await again.client.waitMessages('user:5', 2))).toEqual([2, 3]);
  });
});

describe('history and recovery on Redis', () => {
  afterAll(cleanupRun);

  // The history read (the command connection) and the live messages (the subscriber connection) travel apart:
  // the live copy of a message the replay already sent can come after the subscription went live.
  it('sends a message once when its live copy comes after the replay that held it', async () => {
    const { engine, proxy } = await engineWithSubscriberProxy();
    const gw = await startGateway({ engine });
    const a = await TestClient.connect(gw.ws, { subs: { r: {} } });
    const epoch = (a.connected.subs as any).r.epoch as string;
    for (let i = 1; i <= 3; i++) await publish(gw.http, { channel: 'r', type: 'm', payload: { i } });
    await a.client.waitMessages('r', 3);
    // Seq 4 is published and stored; its live copy waits on the subscriber connection.
    expect(proxy.freeze()).toBe(1);
    await publish(gw.http, { channel: 'r', type: 'm', payload: { i: 4 } });
    const b = await TestClient.connect(gw.ws, { subs: { r: { since: 3, epoch } } });
    expect((b.connected.subs as any).r).toEqual({ seq: 4, epoch, recovered: true });
    expect(seqs(await b.client.waitMessages('r', 1))).toEqual([4]);
    proxy.unfreeze();
    await a.client.waitMessages('r', 4);
    await publish(gw.http, { channel: 'r', type: 'm', payload: { i: 5 } });
    await waitFor(() => a.client.messages('r').length === 5 && b.client.messages('r').length >= 2, 'seq 5 on both');
    expect(seqs(a.client.messages('r'))).toEqual([1, 2, 3, 4, 5]);
    expect(seqs(b.client.messages('r'))).toEqual([4, 5]);
  });
});
