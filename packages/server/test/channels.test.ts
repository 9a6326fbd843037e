import { describe, expect, it } from 'vitest';
import { api, eventually, publish, startGateway, TestClient, token } from './helpers.js';

describe('subscriptions and authorization', () => {
  it('lets anyone allowed to connect subscribe to a public channel and receive its messages', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws);
    client.send({ type: 'subscribe', channel: 'news', id: 1 });
    expect(await client.next()).toEqual({ type: 'subscribed', channel: 'news', seq: 0, epoch: expect.any(String), recovered: false, id: 1 });
    await publish(gw.http, { channel: 'news', type: 'headline', payload: { title: 'hi' } });
    expect((await client.waitMessages('news', 1))[0]).toEqual({ type: 'headline', channel: 'news', payload: { title: 'hi' }, seq: 1 });
  });

  it('refuses an invalid channel name with invalid_channel and keeps the connection', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws);
    client.send({ type: 'subscribe', channel: 'bad channel!', id: 4 });
    expect(await client.next()).toMatchObject({
      type: 'error',
      code: 'invalid_channel',
      id: 4,
      channel: 'bad channel!',
      message: expect.stringContaining('1-200 characters of [A-Za-z0-9_-:.@=]') as unknown,
    });
    client.send({ type: 'ping' });
    expect(await client.next()).toEqual({ type: 'pong' });
  });

  it('keeps user 1 out of user:2, anonymous clients out of every user channel', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws, { token: await token({ sub: '1' }) });
    client.send({ type: 'subscribe', channel: 'user:2', id: 1 });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'forbidden', id: 1, channel: 'user:2' });
    client.send({ type: 'subscribe', channel: 'user:1', id: 2 });
    expect(await client.next()).toMatchObject({ type: 'subscribed', channel: 'user:1', id: 2 });
    const anon = await TestClient.connect(gw.ws);
    anon.client.send({ type: 'subscribe', channel: 'user:1', id: 3 });
    expect(await anon.client.next()).toMatchObject({ type: 'error', code: 'forbidden', id: 3 });
    await publish(gw.http, { channel: 'user:2', type: 'secret', payload: {} });
    await publish(gw.http, { channel: 'user:1', type: 'mine', payload: {} });
    await client.waitMessages('user:1', 1);
    expect(client.frames.some((f) => f.type === 'secret')).toBe(false);
  });

  it('allows private channels only when the token grants them (glob patterns)', async () => {
    const gw = await startGateway();
    const granted = await TestClient.connect(gw.ws, { token: await token({ sub: '1', channels: ['private:team-*', 'private:exact'] }) });
    const other = await TestClient.connect(gw.ws, { token: await token({ sub: '2' }) });
    const anon = await TestClient.connect(gw.ws);
    for (const [ch, id] of [
      ['private:team-blue', 1],
      ['private:exact', 2],
    ] as const) {
      granted.client.send({ type: 'subscribe', channel: ch, id });
      expect(await granted.client.next()).toMatchObject({ type: 'subscribed', channel: ch, id });
    }
    granted.client.send({ type: 'subscribe', channel: 'private:exactly', id: 3 });
    expect(await granted.client.next()).toMatchObject({ type: 'error', code: 'forbidden', id: 3 });
    for (const c of [other.client, anon.client]) {
      c.send({ type: 'subscribe', channel: 'private:team-blue', id: 9 });
      expect(await c.next()).toMatchObject({ type: 'error', code: 'forbidden', id: 9 });
    }
  });

  it('never lets anyone subscribe to a client: channel', async () => {
    const gw = await startGateway();
    const { client, connected } = await TestClient.connect(gw.ws);
    client.send({ type: 'subscribe', channel: `client:${connected.client as string}`, id: 1 });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'forbidden', id: 1 });
  });

  it('reports refused subscriptions of the connect frame as error frames after connected', async () => {
    const gw = await startGateway();
    const c = await TestClient.open(gw.ws);
    c.send({ type: 'connect', token: await token({ sub: '1' }), subs: { news: {}, 'user:2': {}, 'bad name': {} } });
    const connected = await c.next();
    expect(Object.keys(connected.subs as object).sort()).toEqual(['news', 'user:1']);
    const errors = [await c.next(), await c.next()];
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'error', code: 'forbidden', channel: 'user:2' }),
        expect.objectContaining({ type: 'error', code: 'invalid_channel', channel: 'bad name' }),
      ]),
    );
  });

  it('enforces the maximum number of subscriptions per connection', async () => {
    const gw = await startGateway({ maxSubscriptions: 3 });
    const { client } = await TestClient.connect(gw.ws);
    for (let i = 0; i < 3; i++) {
      client.send({ type: 'subscribe', channel: `c${i}`, id: i });
      expect(await client.next()).toMatchObject({ type: 'subscribed', id: i });
    }
    client.send({ type: 'subscribe', channel: 'c3', id: 3 });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'too_many_subscriptions', id: 3 });
    // Counted where operators look for refusals by a limit.
    expect((await api(gw.http, 'GET', '/metrics')).body).toMatch(/herald_limited_total\{limit="subscriptions",node="[^"]+"\} 1\n/);
    client.send({ type: 'subscribe', channel: 'c0', id: 4 }); // a resubscribe is not a new subscription
    expect(await client.next()).toMatchObject({ type: 'subscribed', id: 4 });
    client.send({ type: 'unsubscribe', channel: 'c0', id: 5 });
    expect(await client.next()).toEqual({ type: 'unsubscribed', channel: 'c0', id: 5 });
    client.send({ type: 'subscribe', channel: 'c3', id: 6 });
    expect(await client.next()).toMatchObject({ type: 'subscribed', channel: 'c3', id: 6 });
  });

  it('stops delivery after unsubscribe and updates subscriber counts', async () => {
    const gw = await startGateway();
    const a = await TestClient.connect(gw.ws, { subs: { news: {} } });
    const b = await TestClient.connect(gw.ws, { subs: { news: {} } });
    expect((await api(gw.http, 'GET', '/api/channels/news')).body.subscribers).toBe(2);
    a.client.send({ type: 'unsubscribe', channel: 'news' });
    expect(await a.client.next()).toEqual({ type: 'unsubscribed', channel: 'news' });
    expect((await api(gw.http, 'GET', '/api/channels/news')).body.subscribers).toBe(1);
    await publish(gw.http, { channel: 'news', type: 'x', payload: {} });
    await b.client.waitMessages('news', 1);
    a.client.send({ type: 'ping' });
    await a.client.nextOf('pong');
    expect(a.client.messages('news')).toHaveLength(0);
    expect(gw.gateway.channelCount).toBe(1);
    b.client.terminate();
    await b.client.closed();
    a.client.terminate();
    await eventually(() => (gw.gateway.channelCount === 0 ? true : undefined), 'the last subscriber leaving releases the channel');
    expect((await api(gw.http, 'GET', '/api/channels/news')).body.subscribers).toBe(0);
  });

  it('answers unsubscribe of a channel it never had (idempotent)', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws);
    client.send({ type: 'unsubscribe', channel: 'never', id: 1 });
    expect(await client.next()).toEqual({ type: 'unsubscribed', channel: 'never', id: 1 });
  });
});
