/**
 * The Pusher HTTP API (docs/pusher.md) driven by the real `pusher` server SDK (it signs as pusher-php-server
 * does), the signature test vectors of Pusher's documentation (the corrected presence vector: see
 * docs/pusher.md), and every refusal: 401 for a bad signature, timestamp or body_md5, 413, 404, 400, 405.
 */
import PusherServerModule from 'pusher';
import { describe, expect, it } from 'vitest';
import { PusherCode } from '@herald/protocol';
import { resolvePusherApp } from '../src/protocols/pusher/apps.js';
import { authorizeChannel } from '../src/protocols/pusher/channel-auth.js';
import { stringToSign, verifyRequest } from '../src/protocols/pusher/http-auth.js';
import { channelKindOf } from '../src/protocols/pusher/names.js';
import { sign, userAuthText, verifyAuth } from '../src/protocols/pusher/signatures.js';
import { APP, presenceAuth, PusherTestClient, startPusherGateway } from './pusher-helpers.js';
import { signedRequest, signQuery } from './pusher-http-helpers.js';

const PusherServer = ((PusherServerModule as { default?: unknown }).default ?? PusherServerModule) as typeof PusherServerModule;

/** The credentials of Pusher's documentation examples. */
const DOC = resolvePusherApp({ id: '3', key: '278d425bdf160c739803', secret: '7ad3773142a6692b25b8' });

function sdk(port: number, app: { id: string; key: string; secret: string } = APP): PusherServerModule {
  return new PusherServer({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(port), useTLS: false });
}

describe('pusher signatures: the documentation test vectors', () => {
  it('signs and verifies user, private and presence authorizations', () => {
    expect(sign(DOC.secret, userAuthText('1234.1234', '{"id":"12345"}'))).toBe('4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba');
    expect(sign(DOC.secret, '1234.1234:private-foobar')).toBe('58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4');
    // The docs print afaed369... for "Mr. Channels": that hash is of the older "Mr. Pusher" text.
    const channels = '{"user_id":10,"user_info":{"name":"Mr. Channels"}}';
    const pusher = '{"user_id":10,"user_info":{"name":"Mr. Pusher"}}';
    expect(sign(DOC.secret, `1234.1234:presence-foobar:${channels}`)).toBe('31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80');
    expect(sign(DOC.secret, `1234.1234:presence-foobar:${pusher}`)).toBe('afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c');
    const ok = authorizeChannel(
      DOC,
      '1234.1234',
      channelKindOf('presence-foobar'),
      { auth: `${DOC.key}:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80`, channel_data: channels },
      undefined,
    );
    expect(ok).toEqual({ ok: true, member: { user: '10', infoJson: '{"name":"Mr. Channels"}' } });
    const wrong = authorizeChannel(
      DOC,
      '1234.1234',
      channelKindOf('presence-foobar'),
      { auth: `${DOC.key}:afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c`, channel_data: channels },
      undefined,
    );
    expect(wrong.ok).toBe(false);
    expect(verifyAuth(`${DOC.key}:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4`, DOC.key, DOC.secret, '1234.1234:private-foobar')).toBe(
      true,
    );
    expect(verifyAuth(`${DOC.key}:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a5`, DOC.key, DOC.secret, '1234.1234:private-foobar')).toBe(
      false,
    );
  });

  it('verifies the documented HTTP request signature, and the GET and terminate vectors', () => {
    const body = Buffer.from('{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}');
    const q = new URLSearchParams(
      'auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c',
    );
    const t = 1353088179_000;
    expect(verifyRequest(DOC, 'POST', '/apps/3/events', q, body, t)).toBeUndefined();
    expect(verifyRequest(DOC, 'POST', '/apps/3/events', q, body, t + 600_000)).toBeUndefined();
    expect(verifyRequest(DOC, 'POST', '/apps/3/events', q, body, t + 601_000)).toMatch(/Timestamp expired/);
    expect(verifyRequest(DOC, 'POST', '/apps/3/events', q, Buffer.from('{}'), t)).toMatch(/body_md5/);
    expect(verifyRequest(DOC, 'POST', '/apps/4/events', q, body, t)).toBe('Invalid signature');
    const get = new URLSearchParams('auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&filter_by_prefix=presence-&info=user_count');
    expect(sign(DOC.secret, stringToSign('GET', '/apps/3/channels', get))).toBe('16819168891cb5dfd72b5c7a5d3d602605b26c6ba1930033b5e2eeeb65010291');
    // PHP (Guzzle) escapes the comma in the URL and signs the raw value: both forms verify.
    for (const info of ['user_count,subscription_count', 'user_count%2Csubscription_count']) {
      const p = new URLSearchParams(`auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&filter_by_prefix=presence-&info=${info}`);
      expect(sign(DOC.secret, stringToSign('GET', '/apps/3/channels', p))).toBe('ff97d40ab3fbbd15394386a29c12998c33635305357b2e2abd18dc67efe3f87d');
    }
    const term = new URLSearchParams('auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=99914b932bd37a50b983c5e7c90ae93b');
    expect(sign(DOC.secret, stringToSign('POST', '/apps/3/users/12345/terminate_connections', term))).toBe(
      '01fa634edeb0cae84115307cad5c23f65a46cd286461b1c89637a3b5871a8f0e',
    );
  });
});

describe('pusher HTTP API with the pusher server SDK', () => {
  it('triggers to one or several channels, excluding socket_id, with info in the answer', async () => {
    const { port } = await startPusherGateway();
    const api = sdk(port);
    const a = await PusherTestClient.connect(port);
    const b = await PusherTestClient.connect(port);
    for (const c of [a, b]) {
      await c.subscribe('one');
      await c.subscribe('presence-two', presenceAuth(c.socketId, 'presence-two', { user_id: c === a ? 'a' : 'b' }));
    }
    const res = await api.trigger(
      ['one', 'presence-two'],
      'App\\Events\\Hello',
      { hello: 'wörld/😀' },
      { socket_id: a.socketId, info: 'user_count,subscription_count' },
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ channels: { one: { subscription_count: 2 }, 'presence-two': { user_count: 2, subscription_count: 2 } } });
    const got = await b.nextEvent('App\\Events\\Hello', 'one');
    expect(JSON.parse(got.data as string)).toEqual({ hello: 'wörld/😀' });
    await b.nextEvent('App\\Events\\Hello', 'presence-two');
    // The SDK sends a string as it is: not JSON, so it travels in the documented wrapper and arrives unchanged.
    await api.trigger('one', 'plain', 'a string');
    expect((await a.nextEvent('plain')).data).toBe('a string');
    expect(a.events('App\\Events\\Hello')).toEqual([]);
  });

  it('triggers batches, answering info index-aligned', async () => {
    const { port } = await startPusherGateway();
    const api = sdk(port);
    const c = await PusherTestClient.connect(port);
    await c.subscribe('b1');
    const res = await api.triggerBatch([
      { channel: 'b1', name: 'first', data: { n: 1 }, info: 'subscription_count' },
      { channel: 'b2', name: 'second', data: 'x' },
    ]);
    expect(await res.json()).toEqual({ batch: [{ subscription_count: 1 }, {}] });
    expect((await api.triggerBatch([{ channel: 'b1', name: 'third', data: {} }])).status).toBe(200);
    await c.nextEvent('third');
    expect(c.events('first').map((f) => f.data)).toEqual(['{"n":1}']);
  });

  it('lists occupied channels, channel info and presence users', async () => {
    const { port } = await startPusherGateway();
    const api = sdk(port);
    const c = await PusherTestClient.connect(port);
    await c.subscribe('news');
    await c.subscribe('presence-lobby', presenceAuth(c.socketId, 'presence-lobby', { user_id: '7' }));
    expect(await (await api.get({ path: '/channels' })).json()).toEqual({ channels: { news: {}, 'presence-lobby': {} } });
    expect(await (await api.get({ path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } })).json()).toEqual({
      channels: { 'presence-lobby': { user_count: 1 } },
    });
    expect(await (await api.get({ path: '/channels/news', params: { info: 'subscription_count' } })).json()).toEqual({ occupied: true, subscription_count: 1 });
    expect(await (await api.get({ path: '/channels/empty' })).json()).toEqual({ occupied: false });
    expect(await (await api.get({ path: '/channels/presence-lobby', params: { info: 'user_count' } })).json()).toEqual({ occupied: true, user_count: 1 });
    expect(await (await api.get({ path: '/channels/presence-lobby/users' })).json()).toEqual({ users: [{ id: '7' }] });
  });

  it('reads parameters by their lowercased names, as the signature covers them: a name re-cased under a valid signature still counts', async () => {
    const { port, http } = await startPusherGateway();
    const c = await PusherTestClient.connect(port);
    await c.subscribe('internal-orders');
    await c.subscribe('presence-lobby', presenceAuth(c.socketId, 'presence-lobby', { user_id: '7' }));
    const path = `/apps/${APP.id}/channels`;
    // Signed as filter_by_prefix=presence-, sent as FILTER_BY_PREFIX (it signs the same): still filtered, not a listing of all.
    const query = signQuery('GET', path, '', { query: { filter_by_prefix: 'presence-', info: 'user_count' } })
      .replace('filter_by_prefix=', 'FILTER_BY_PREFIX=')
      .replace('info=', 'INFO=');
    const res = await fetch(`${http}${path}?${query}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ channels: { 'presence-lobby': { user_count: 1 } } });
  });

  it("terminates a user's connections (close 4009) and sends to a user (#server-to-user)", async () => {
    const { port } = await startPusherGateway();
    const api = sdk(port);
    const c = await PusherTestClient.connect(port);
    const auth = api.authenticateUser(c.socketId, { id: '99' });
    c.send({ event: 'pusher:signin', data: auth });
    await c.nextEvent('pusher:signin_success');
    await c.subscribe('#server-to-user-99');
    await api.sendToUser('99', 'direct', { hi: 1 });
    expect((await c.nextEvent('direct')).data).toBe('{"hi":1}');
    const other = await PusherTestClient.connect(port);
    expect((await api.terminateUserConnections('99')).status).toBe(200);
    expect((await c.closed()).code).toBe(PusherCode.Unauthorized);
    await other.roundTrip();
    expect(other.closeCode).toBeUndefined();
  });

  it('refuses a wrong secret, an expired timestamp and a wrong body_md5 with 401', async () => {
    const { port, http } = await startPusherGateway();
    await expect(sdk(port, { ...APP, secret: 'not-the-secret-0123' }).trigger('x', 'e', {})).rejects.toMatchObject({ status: 401 });
    const path = `/apps/${APP.id}/events`;
    const body = { name: 'e', channel: 'x', data: '{}' };
    const r1 = await signedRequest(http, 'POST', path, body, { timestamp: Math.floor(Date.now() / 1000) - 601 });
    expect(r1.status).toBe(401);
    expect(r1.body.error.code).toBe('unauthorized');
    expect((await signedRequest(http, 'POST', path, body, { bodyMd5: '0'.repeat(32) })).status).toBe(401);
    expect((await signedRequest(http, 'POST', path, body, { app: { key: 'other', secret: APP.secret } })).status).toBe(401);
    expect((await signedRequest(http, 'POST', path, body, { signature: 'a'.repeat(64) })).status).toBe(401);
    expect((await signedRequest(http, 'POST', path, body)).status).toBe(200);
  });

  it('refuses oversized data (413), an unknown app (404), bad requests (400) and wrong methods (405)', async () => {
    const { port, http } = await startPusherGateway({ app: { maxEventSize: 1000 } });
    await expect(sdk(port).trigger('x', 'e', 'y'.repeat(1001))).rejects.toMatchObject({ status: 413 });
    await expect(sdk(port, { ...APP, id: 'nope' }).trigger('x', 'e', {})).rejects.toMatchObject({ status: 404 });
    const path = `/apps/${APP.id}/events`;
    const many = Array.from({ length: 101 }, (_, i) => `c${i}`);
    const bad: Array<[unknown, string]> = [
      [{ name: 'e', channels: many, data: '{}' }, 'invalid_field'],
      [{ name: 'e', channel: 'bad name', data: '{}' }, 'invalid_channel'],
      [{ name: 'e', channel: 'x', data: { not: 'a string' } }, 'invalid_field'],
      [{ name: '', channel: 'x', data: '{}' }, 'invalid_field'],
      [{ name: 'e', data: '{}' }, 'missing_field'],
      [{ name: 'e', channel: 'x', data: '{}', socket_id: 'abc' }, 'invalid_field'],
      [{ name: 'e', channels: ['private-encrypted-a', 'b'], data: '{}' }, 'invalid_field'],
    ];
    for (const [body, code] of bad) {
      const r = await signedRequest(http, 'POST', path, body);
      expect([r.status, r.body.error?.code], JSON.stringify(body).slice(0, 80)).toEqual([400, code]);
    }
    expect((await signedRequest(http, 'POST', path, undefined, { raw: '{not json' })).status).toBe(400);
    const batch = { batch: Array.from({ length: 11 }, () => ({ name: 'e', channel: 'x', data: '{}' })) };
    expect((await signedRequest(http, 'POST', `/apps/${APP.id}/batch_events`, batch)).status).toBe(400);
    expect((await signedRequest(http, 'GET', `/apps/${APP.id}/channels/news/users`)).status).toBe(400);
    expect((await signedRequest(http, 'GET', `/apps/${APP.id}/channels`, undefined, { query: { info: 'user_count' } })).status).toBe(400);
    expect((await signedRequest(http, 'GET', `/apps/${APP.id}/channels/news`, undefined, { query: { info: 'user_count' } })).status).toBe(400);
    expect((await signedRequest(http, 'GET', path)).status).toBe(405);
    expect((await signedRequest(http, 'GET', `/apps/${APP.id}/nothing`)).status).toBe(404);
  });
});
