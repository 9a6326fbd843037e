/**
 * The gateway's own channels (`herald:*`) and lookalikes of reserved prefixes: no token claim reaches the admin
 * feed, and `USER:42` is not a public channel that passes for `user:42` (docs/protocol.md#channels).
 */
import { describe, expect, it } from 'vitest';
import { ADMIN_CHANNEL, mintAdminToken } from '../src/auth/admin-token.js';
import { api, API_KEY, startGateway, TestClient, token } from './helpers.js';

describe('reserved channels', () => {
  it('keeps herald:admin from every token claim, `*` included; only an admin token subscribes', async () => {
    const gw = await startGateway({ admin: true });
    expect(ADMIN_CHANNEL).toBe('herald:admin');
    for (const channels of [['*'], ['private:*'], ['herald:*'], ['herald:admin'], ['?erald:admin']]) {
      const { client } = await TestClient.connect(gw.ws, { token: await token({ sub: 'mallory', channels }) });
      client.send({ type: 'subscribe', channel: ADMIN_CHANNEL, id: 1 });
      expect(await client.next(), `claim ${JSON.stringify(channels)}`).toMatchObject({ type: 'error', code: 'forbidden', id: 1 });
    }
    const anonymous = await TestClient.connect(gw.ws);
    anonymous.client.send({ type: 'subscribe', channel: 'herald:anything', id: 2 });
    expect(await anonymous.client.next()).toMatchObject({ type: 'error', code: 'forbidden', id: 2 });
    const admin = await mintAdminToken(API_KEY, gw.clock.now());
    const { connected } = await TestClient.connect(gw.ws, { token: admin.token, subs: { [ADMIN_CHANNEL]: {} } });
    expect((connected.subs as Record<string, unknown>)[ADMIN_CHANNEL]).toMatchObject({ recovered: false });
  });

  it('refuses backends publishing to the gateway channels (403 forbidden)', async () => {
    const gw = await startGateway();
    for (const body of [
      { channel: 'herald:admin', type: 'stats', payload: {} },
      { channels: ['news', 'herald:x'], type: 't', payload: {} },
    ]) {
      const r = await api(gw.http, 'POST', '/api/publish', body);
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe('forbidden');
    }
  });

  it.each(['USER:42', 'User:42', 'PRIVATE:x', 'Private:x', 'CLIENT:c', 'HERALD:admin', 'Herald:admin'])(
    'treats the lookalike %s as an invalid name everywhere',
    async (name) => {
      const gw = await startGateway();
      const { client, connected } = await TestClient.connect(gw.ws, { token: await token({ sub: '42', channels: ['*'] }), subs: { [name]: {} } });
      expect(connected.subs).not.toHaveProperty(name);
      expect(await client.next()).toMatchObject({ type: 'error', code: 'invalid_channel', channel: name });
      client.send({ type: 'subscribe', channel: name, id: 3 });
      expect(await client.next()).toMatchObject({ type: 'error', code: 'invalid_channel', id: 3 });
      const r = await api(gw.http, 'POST', '/api/publish', { channel: name, type: 't', payload: {} });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_channel', field: 'channel' });
      expect((await api(gw.http, 'GET', `/api/history/${encodeURIComponent(name)}`)).body.error.code).toBe('invalid_channel');
    },
  );

  it('still accepts names that merely contain a reserved word', async () => {
    const gw = await startGateway();
    for (const name of ['users:1', 'myuser:1', 'heraldic:x', 'x:USER:1', 'news:Private:x']) {
      const r = await api(gw.http, 'POST', '/api/publish', { channel: name, type: 't', payload: {} });
      expect(r.status, name).toBe(200);
    }
  });
});

describe('new channels per connection and per address', () => {
  it('refuses subscriptions that bring new channels faster than channelRate (too_many_channels), and recovers with time', async () => {
    const gw = await startGateway({ channelRate: 5, channelRatePerIp: 1000 });
    const { client } = await TestClient.connect(gw.ws);
    for (let i = 0; i < 5; i++) {
      client.send({ type: 'subscribe', channel: `new-${i}`, id: i });
      expect(await client.next()).toMatchObject({ type: 'subscribed', id: i });
    }
    client.send({ type: 'subscribe', channel: 'new-5', id: 5 });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'too_many_channels', id: 5 });
    // A channel that already has subscribers on the node costs nothing.
    const other = await TestClient.connect(gw.ws, { subs: { 'new-0': {} } });
    expect(Object.keys(other.connected.subs as object)).toEqual(['new-0']);
    expect(gw.gateway.stats.limits.get('new_channels')).toBe(1);
    // 5 a minute: one more after 12 s.
    gw.clock.advance(12_000);
    client.send({ type: 'subscribe', channel: 'new-5', id: 6 });
    expect(await client.next()).toMatchObject({ type: 'subscribed', id: 6 });
  });

  it('counts all connections of one address together (channelRatePerIp)', async () => {
    const gw = await startGateway({ channelRate: 100, channelRatePerIp: 6 });
    const a = await TestClient.connect(gw.ws, { subs: { a1: {}, a2: {}, a3: {} } });
    expect(Object.keys(a.connected.subs as object)).toHaveLength(3);
    const b = await TestClient.connect(gw.ws, { subs: { b1: {}, b2: {}, b3: {}, b4: {} } });
    expect(Object.keys(b.connected.subs as object)).toHaveLength(3);
    expect(await b.client.next()).toMatchObject({ type: 'error', code: 'too_many_channels' });
  });
});

describe("new channels: a connection's own user channel", () => {
  it('is never charged, so many users behind one address all get their own channel', async () => {
    const gw = await startGateway({ channelRate: 100, channelRatePerIp: 2 });
    for (let i = 0; i < 5; i++) {
      const { connected } = await TestClient.connect(gw.ws, { token: await token({ sub: `nat-${i}` }) });
      expect(Object.keys(connected.subs as object)).toEqual([`user:nat-${i}`]);
    }
    expect(gw.gateway.stats.limits.get('new_channels') ?? 0).toBe(0);
  });
});
