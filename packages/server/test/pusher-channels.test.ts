/**
 * Pusher channels (docs/pusher.md): public, private (signatures, constant-time, a bad one never subscribes),
 * encrypted (relayed untouched), cache channels, user channels and sign-in, and the namespaces that keep Pusher
 * apps and native channels apart. Runs on both transports (scripts/test.sh).
 */
import { describe, expect, it } from 'vitest';
import { PusherCode } from '@herald/protocol';
import { api, publish, startGateway, TestClient } from './helpers.js';
import { APP, privateAuth, PusherTestClient, signinAuth, startPusherGateway } from './pusher-helpers.js';
import { signedRequest } from './pusher-http-helpers.js';

describe('pusher protocol: channels', () => {
  it('subscribes to a public channel (data "{}") and relays HTTP API events with their data string byte for byte', async () => {
    const { port, http } = await startPusherGateway();
    const c = await PusherTestClient.connect(port);
    const ok = await c.subscribe('news');
    expect(ok).toEqual({ event: 'pusher_internal:subscription_succeeded', channel: 'news', data: '{}' });
    // PHP's json_encode escapes slashes and non-ASCII: the string must arrive exactly as sent.
    const datas = ['{"url":"https:\\/\\/x.test\\/a","n":"\\u00e9"}', 'plain text', '42', '"quoted"', '{"$pusher_data":"x"}', '[1, 2 ]', '{bad json'];
    for (const data of datas) {
      const r = await signedRequest(http, 'POST', `/apps/${APP.id}/events`, { name: 'App\\Events\\OrderShipped', channel: 'news', data });
      expect(r.status).toBe(200);
      expect(r.body).toEqual({});
    }
    await c.waitFor(() => (c.events('App\\Events\\OrderShipped').length === datas.length ? true : undefined), 'every event');
    expect(c.events('App\\Events\\OrderShipped').map((f) => f.data)).toEqual(datas);
    expect(c.events('App\\Events\\OrderShipped').every((f) => f.channel === 'news')).toBe(true);
  });

  it('excludes the connection named by socket_id', async () => {
    const { port, http } = await startPusherGateway();
    const a = await PusherTestClient.connect(port);
    const b = await PusherTestClient.connect(port);
    await a.subscribe('room');
    await b.subscribe('room');
    await signedRequest(http, 'POST', `/apps/${APP.id}/events`, { name: 'e', channels: ['room'], data: '{"n":1}', socket_id: a.socketId });
    await signedRequest(http, 'POST', `/apps/${APP.id}/events`, { name: 'e', channels: ['room'], data: '{"n":2}' });
    await b.waitFor(() => (b.events('e').length === 2 ? true : undefined), 'two events on b');
    await a.nextWhere((f) => f.event === 'e' && f.data === '{"n":2}', 'the second event on a');
    expect(a.events('e').map((f) => f.data)).toEqual(['{"n":2}']);
  });

  it('subscribes to private channels with a valid signature only; a bad one is an AuthError 401 and pusher:error 4009', async () => {
    const { port, http } = await startPusherGateway();
    const c = await PusherTestClient.connect(port);
    const bad = await c.subscribe('private-a', { auth: `${APP.key}:${'0'.repeat(64)}` });
    expect(bad).toEqual({ event: 'pusher:subscription_error', channel: 'private-a', data: { type: 'AuthError', error: expect.any(String), status: 401 } });
    expect((await c.nextEvent('pusher:error')).data).toMatchObject({ code: PusherCode.Unauthorized });
    for (const auth of ['', 'nokey', `other-key:${privateAuth(c.socketId, 'private-a').split(':')[1]}`, privateAuth('1.1', 'private-a')]) {
      expect((await c.subscribe('private-a', { auth })).event, auth).toBe('pusher:subscription_error');
    }
    await signedRequest(http, 'POST', `/apps/${APP.id}/events`, { name: 'secret', channel: 'private-a', data: '{}' });
    expect((await c.subscribe('private-b', { auth: privateAuth(c.socketId, 'private-b') })).event).toBe('pusher_internal:subscription_succeeded');
    await signedRequest(http, 'POST', `/apps/${APP.id}/events`, { name: 'ok', channel: 'private-b', data: '{}' });
    await c.nextEvent('ok', 'private-b');
    expect(c.events('secret')).toEqual([]);
    expect(c.closeCode).toBeUndefined();
  });

  it('relays encrypted channel data untouched and refuses client events on them', async () => {
    const { port, http } = await startPusherGateway();
    const a = await PusherTestClient.connect(port);
    const ch = 'private-encrypted-vault';
    expect((await a.subscribe(ch, { auth: privateAuth(a.socketId, ch) })).event).toBe('pusher_internal:subscription_succeeded');
    const data = JSON.stringify({ nonce: 'bm9uY2Vub25jZW5vbmNlbm9uY2Vub25j', ciphertext: 'Y2lwaGVy/dGV4dA+=' });
    await signedRequest(http, 'POST', `/apps/${APP.id}/events`, { name: 'sealed', channel: ch, data });
    expect((await a.nextEvent('sealed', ch)).data).toBe(data);
    a.send({ event: 'client-x', channel: ch, data: {} });
    expect((await a.nextEvent('pusher:error')).data).toEqual({ code: PusherCode.ClientEventRejected, message: 'Client events are not on encrypted channels' });
  });

  it('replays the last event of a cache channel on subscribe, or sends pusher:cache_miss', async () => {
    const { port, http } = await startPusherGateway();
    const a = await PusherTestClient.connect(port);
    await a.subscribe('cache-prices');
    const miss = await a.nextWhere((f) => f.channel === 'cache-prices', 'cache miss');
    expect(miss).toEqual({ event: 'pusher:cache_miss', channel: 'cache-prices' });
    for (const n of [1, 2]) await signedRequest(http, 'POST', `/apps/${APP.id}/events`, { name: 'price', channel: 'cache-prices', data: `{"n":${n}}` });
    const b = await PusherTestClient.connect(port);
    await b.subscribe('cache-prices');
    expect(await b.nextWhere((f) => f.channel === 'cache-prices', 'replayed event')).toEqual({ event: 'price', channel: 'cache-prices', data: '{"n":2}' });
    await signedRequest(http, 'POST', `/apps/${APP.id}/events`, { name: 'price', channel: 'cache-prices', data: '{"n":3}' });
    await b.nextWhere((f) => f.event === 'price' && f.data === '{"n":3}', 'the live event');
    expect(b.events('price').map((f) => f.data)).toEqual(['{"n":2}', '{"n":3}']);
    expect(b.events('pusher:cache_miss')).toEqual([]);
    const p = await PusherTestClient.connect(port);
    await p.subscribe('private-cache-x', { auth: privateAuth(p.socketId, 'private-cache-x') });
    await p.nextEvent('pusher:cache_miss', 'private-cache-x');
  });

  it('signs in (pusher:signin_success) and lets only that user subscribe to #server-to-user-<id>', async () => {
    const { port, http } = await startPusherGateway();
    const c = await PusherTestClient.connect(port);
    expect((await c.subscribe('#server-to-user-42')).data).toMatchObject({ status: 403 });
    c.send({ event: 'pusher:signin', data: { auth: `${APP.key}:${'f'.repeat(64)}`, user_data: '{"id":"42"}' } });
    expect((await c.nextEvent('pusher:error')).data).toMatchObject({ code: PusherCode.Unauthorized });
    const signin = signinAuth(c.socketId, { id: '42', user_info: { name: 'Ann' } });
    c.send({ event: 'pusher:signin', data: signin });
    expect(await c.nextEvent('pusher:signin_success')).toEqual({ event: 'pusher:signin_success', data: { user_data: signin.user_data } });
    expect((await c.subscribe('#server-to-user-43')).event).toBe('pusher:subscription_error');
    expect((await c.subscribe('#server-to-user-42')).event).toBe('pusher_internal:subscription_succeeded');
    await signedRequest(http, 'POST', `/apps/${APP.id}/events`, { name: 'hello', channel: '#server-to-user-42', data: '{"to":"you"}' });
    expect((await c.nextEvent('hello')).data).toBe('{"to":"you"}');
  });

  it('keeps Pusher apps and native channels apart both ways; the native API publishes into an app with "app"', async () => {
    const { port, http, ws } = await startPusherGateway();
    const p = await PusherTestClient.connect(port);
    await p.subscribe('orders');
    const { client: n } = await TestClient.connect(ws);
    n.send({ type: 'subscribe', channel: `$pusher.${APP.id}:orders`, id: 1 });
    expect(await n.nextOf('error')).toMatchObject({ code: 'invalid_channel' });
    n.send({ type: 'subscribe', channel: 'orders', id: 2 });
    await n.nextOf('subscribed');
    await publish(http, { channel: 'orders', type: 'native', payload: { x: 1 } });
    await n.waitMessages('orders', 1);
    await signedRequest(http, 'POST', `/apps/${APP.id}/events`, { name: 'pusher', channel: 'orders', data: '{}' });
    const r = await publish(http, { app: APP.id, channel: 'orders', type: 'OrderShipped', payload: { id: 7, note: 'é/😀' } });
    expect(r.results[`$pusher.${APP.id}:orders`]).toMatchObject({ seq: 2 });
    const shipped = await p.nextEvent('OrderShipped', 'orders');
    expect(JSON.parse(shipped.data as string)).toEqual({ id: 7, note: 'é/😀' });
    expect(p.events('native')).toEqual([]);
    expect(n.messages('orders').map((m) => m.type)).toEqual(['native']);
    // Any Pusher event name, and a data string that is not JSON through the documented wrapper.
    await publish(http, { app: APP.id, channel: 'orders', type: 'App\\Events\\X', payload: { $pusher_data: 'just text' } });
    expect((await p.nextEvent('App\\Events\\X')).data).toBe('just text');
    const history = await api(http, 'GET', `/api/history/orders?app=${APP.id}`);
    expect(history.body.messages.map((m: { seq: number }) => m.seq)).toEqual([1, 2, 3]);
    expect((await api(http, 'GET', `/api/channels/orders?app=${APP.id}`)).body).toMatchObject({ subscribers: 1, seq: 3 });
    expect((await api(http, 'POST', '/api/publish', { app: 'nope', channel: 'x', type: 't', payload: {} })).status).toBe(404);
    expect((await api(http, 'POST', '/api/publish', { app: APP.id, channel: 'bad channel', type: 't', payload: {} })).body.error.code).toBe('invalid_channel');
  });

  it('refuses with "app" what it would otherwise drop: native targets, inbox fields, a payload nested too deep', async () => {
    const { http } = await startPusherGateway();
    const item = { app: APP.id, channel: 'orders', type: 'E', payload: {} };
    for (const [field, value] of [
      ['user', '42'],
      ['inbox', true],
      ['ttl', 5],
      ['receipt', true],
      ['client', 'abc'],
    ] as const) {
      const r = await api(http, 'POST', '/api/publish', { ...item, [field]: value });
      expect(r.status, field).toBe(400);
      expect(r.body.error, field).toMatchObject({ code: 'invalid_field', field });
    }
    // 100 000 levels: a 400 naming the limit, not a stack overflow answered 500.
    const deep = `{"app":"${APP.id}","channel":"orders","type":"E","payload":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    for (const raw of [deep, `[${deep}]`]) {
      const r = await api(http, 'POST', '/api/publish', undefined, { raw });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'payload_too_deep', limit: 64 });
    }
    expect((await api(http, 'GET', `/api/channels/orders?app=${APP.id}`)).body.seq).toBe(0);
  });

  it('answers an unknown app with 404 naming the app field, in a single publish, a batch item and a channel query', async () => {
    const { http } = await startPusherGateway();
    const item = { app: 'nope', channel: 'orders', type: 'E', payload: {} };
    const single = await api(http, 'POST', '/api/publish', item);
    expect(single.status).toBe(404);
    expect(single.body.error).toMatchObject({ code: 'not_found', field: 'app' });
    const batch = await api(http, 'POST', '/api/publish', [{ channel: 'news', type: 'E', payload: {} }, item]);
    expect(batch.status).toBe(404);
    expect(batch.body.error).toMatchObject({ code: 'not_found', field: '[1].app' });
    const query = await api(http, 'GET', '/api/channels/orders?app=nope');
    expect(query.status).toBe(404);
    expect(query.body.error).toMatchObject({ code: 'not_found', field: 'app' });
    // Without any Pusher app configured, the same.
    const gw = await startGateway();
    expect((await api(gw.http, 'POST', '/api/publish', item)).body.error).toMatchObject({ code: 'not_found', field: 'app' });
  });

  it('answers a repeated subscribe again, unsubscribes, and refuses invalid names without closing', async () => {
    const { port, http } = await startPusherGateway();
    const c = await PusherTestClient.connect(port);
    await c.subscribe('a');
    expect((await c.subscribe('a')).event).toBe('pusher_internal:subscription_succeeded');
    for (const bad of ['bad name', 'x'.repeat(201), '#nope', 'ünï']) {
      c.send({ event: 'pusher:subscribe', data: { auth: '', channel: bad } });
      expect((await c.nextEvent('pusher:subscription_error')).data, bad).toMatchObject({ type: 'InvalidChannel', status: 400 });
    }
    c.send({ event: 'pusher:unsubscribe', data: { channel: 'a' } });
    await c.roundTrip();
    await signedRequest(http, 'POST', `/apps/${APP.id}/events`, { name: 'gone', channel: 'a', data: '{}' });
    await c.subscribe('b');
    await signedRequest(http, 'POST', `/apps/${APP.id}/events`, { name: 'here', channel: 'b', data: '{}' });
    await c.nextEvent('here');
    expect(c.events('gone')).toEqual([]);
  });
});
