import { describe, expect, it } from 'vitest';
import { API_KEY, publish, secondsOf, startGateway, TestClient, token } from './helpers.js';

describe('connect', () => {
  it('answers connect with the client id, user, ping interval and the automatic user channel', async () => {
    const gw = await startGateway({ pingInterval: 20_000 });
    const t = await token({ sub: '42' });
    const { connected } = await TestClient.connect(gw.ws, { token: t });
    expect(connected).toMatchObject({ type: 'connected', user: '42', ping: 20_000 });
    expect(typeof connected.client).toBe('string');
    expect(connected.subs).toEqual({ 'user:42': { seq: 0, epoch: expect.any(String), recovered: false } });
  });

  it('delivers a publish to user:{id} to every connection of that user and nobody else', async () => {
    const gw = await startGateway();
    const a1 = await TestClient.connect(gw.ws, { token: await token({ sub: '42' }) });
    const a2 = await TestClient.connect(gw.ws, { token: await token({ sub: '42' }) });
    const b = await TestClient.connect(gw.ws, { token: await token({ sub: '43' }) });
    const res = await publish(gw.http, { channel: 'user:42', type: 'note', payload: { n: 1 } });
    expect(res.results['user:42']).toMatchObject({ seq: 1, online: true, subscribers: 2 });
    for (const c of [a1.client, a2.client])
      expect((await c.waitMessages('user:42', 1))[0]).toEqual({ type: 'note', channel: 'user:42', payload: { n: 1 }, seq: 1 });
    await publish(gw.http, { channel: 'user:43', type: 'note', payload: { n: 2 } });
    await b.client.waitMessages('user:43', 1);
    expect(a1.client.frames.some((f) => f.channel === 'user:43')).toBe(false);
  });

  it('closes with 4000 when no connect frame arrives within the connect timeout', async () => {
    const gw = await startGateway({ connectTimeout: 5000, sweepInterval: 1000 });
    const c = await TestClient.open(gw.ws);
    await new Promise((r) => setImmediate(r));
    gw.clock.advance(4000);
    expect(c.closeCode).toBeUndefined();
    gw.clock.advance(1000);
    expect((await c.closed()).code).toBe(4000);
  });

  it('times out a connect whose verification never completes with 4000', async () => {
    const gw = await startGateway({ connectTimeout: 5000 });
    const c = await TestClient.open(gw.ws);
    // A connect that is still being processed (here: its presence registration never settles) is not exempt.
    const presence = gw.gateway.engine.presence;
    presence.add = () => new Promise<void>(() => undefined);
    c.send({ type: 'connect' });
    await c.roundTrip();
    gw.clock.advance(5000);
    expect((await c.closed()).code).toBe(4000);
  });

  it('does not time out a connection that connected', async () => {
    const gw = await startGateway({ connectTimeout: 5000 });
    const { client } = await TestClient.connect(gw.ws);
    gw.clock.advance(6000);
    client.send({ type: 'ping' });
    expect((await client.nextOf('pong')).type).toBe('pong');
  });

  it('closes with 4500 when the first frame is not connect', async () => {
    const gw = await startGateway();
    const c = await TestClient.open(gw.ws);
    c.send({ type: 'subscribe', channel: 'news' });
    expect(await c.next()).toMatchObject({ type: 'error', code: 'not_connected' });
    expect((await c.closed()).code).toBe(4500);
  });

  it('answers a ping even before connect', async () => {
    const gw = await startGateway();
    const c = await TestClient.open(gw.ws);
    c.send({ type: 'ping', id: 3 });
    expect(await c.next()).toEqual({ type: 'pong', id: 3 });
  });

  it('rejects a second connect frame but keeps the connection', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws);
    client.send({ type: 'connect' });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'already_connected' });
    client.send({ type: 'ping' });
    expect(await client.next()).toEqual({ type: 'pong' });
  });

  it('handles frames sent right behind connect, after connected', async () => {
    const gw = await startGateway();
    const c = await TestClient.open(gw.ws);
    c.send({ type: 'connect', token: await token({ sub: '1' }) });
    c.send({ type: 'subscribe', channel: 'news', id: 1 });
    c.send({ type: 'subscribe', channel: 'user:2', id: 2 });
    expect((await c.next()).type).toBe('connected');
    expect(await c.next()).toMatchObject({ type: 'subscribed', channel: 'news', id: 1 });
    expect(await c.next()).toMatchObject({ type: 'error', code: 'forbidden', id: 2 });
  });

  it('answers malformed and binary frames sent right behind connect after connected too, in the order they came', async () => {
    const gw = await startGateway();
    const c = await TestClient.open(gw.ws);
    c.send({ type: 'connect', token: await token({ sub: '1' }) });
    c.send({ type: 'subscribe', channel: 'ok1', id: 1 });
    c.send({ type: 'subscribe', channel: 'bad name', id: 2 });
    c.sendRaw('not json');
    c.sendRaw(Buffer.from([1, 2, 3]), true);
    c.send({ type: 'subscribe', channel: 'ok5', id: 5 });
    expect((await c.next()).type).toBe('connected');
    expect(await c.next()).toMatchObject({ type: 'subscribed', channel: 'ok1', id: 1 });
    expect(await c.next()).toMatchObject({ type: 'error', code: 'invalid_channel', id: 2, channel: 'bad name' });
    expect(await c.next()).toMatchObject({ type: 'error', code: 'invalid_json' });
    expect(await c.next()).toMatchObject({ type: 'error', code: 'binary_frame' });
    expect(await c.next()).toMatchObject({ type: 'subscribed', channel: 'ok5', id: 5 });
  });
});

describe('answers once connected', () => {
  it('answers malformed and binary frames in their place among subscribe answers, not ahead of them', async () => {
    const gw = await startGateway();
    const { client: c } = await TestClient.connect(gw.ws, { token: await token({ sub: '1' }) });
    c.send({ type: 'subscribe', channel: 'a', id: 1 });
    c.sendRaw(Buffer.from([1, 2, 3]), true);
    c.sendRaw('not json');
    c.send({ type: 'subscribe', channel: 'b', id: 2 });
    expect(await c.next()).toMatchObject({ type: 'subscribed', channel: 'a', id: 1 });
    expect(await c.next()).toMatchObject({ type: 'error', code: 'binary_frame' });
    expect(await c.next()).toMatchObject({ type: 'error', code: 'invalid_json' });
    expect(await c.next()).toMatchObject({ type: 'subscribed', channel: 'b', id: 2 });
  });
});

describe('tokens', () => {
  const expectClose = async (url: string, tok: string | undefined, code: number) => {
    const c = await TestClient.open(url);
    c.send(tok === undefined ? { type: 'connect' } : { type: 'connect', token: tok });
    expect((await c.closed()).code).toBe(code);
    expect(c.frames.some((f) => f.type === 'connected')).toBe(false);
  };

  it('refuses a bad signature with 4501', async () => {
    const gw = await startGateway();
    await expectClose(gw.ws, await token({ sub: '1' }, { secret: 'another_secret_another_secret_another_secret' }), 4501);
  });

  it('refuses alg:none with 4501', async () => {
    const gw = await startGateway();
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    await expectClose(gw.ws, `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: '1' })}.`, 4501);
  });

  it('refuses another algorithm signed with the same secret (HS512) with 4501', async () => {
    const gw = await startGateway();
    await expectClose(gw.ws, await token({ sub: '1' }, { alg: 'HS512' }), 4501);
  });

  it('refuses garbage and tokens without a usable sub with 4501', async () => {
    const gw = await startGateway();
    await expectClose(gw.ws, 'not.a.jwt', 4501);
    await expectClose(gw.ws, await token({}), 4501);
    await expectClose(gw.ws, await token({ sub: 'has space' }), 4501);
    await expectClose(gw.ws, await token({ sub: '1', channels: 'private:*' }), 4501);
  });

  it('refuses an expired token with 4401', async () => {
    const gw = await startGateway();
    await expectClose(gw.ws, await token({ sub: '1' }, { expiresAt: secondsOf(gw.clock.now()) - 10 }), 4401);
  });

  it('closes with 4401 when the token expires while connected', async () => {
    const gw = await startGateway({ sweepInterval: 1000 });
    const exp = secondsOf(gw.clock.now()) + 30;
    const { client } = await TestClient.connect(gw.ws, { token: await token({ sub: '1' }, { expiresAt: exp }) });
    gw.clock.advance(20_000);
    client.send({ type: 'ping' });
    await client.nextOf('pong');
    gw.clock.advance(11_000);
    expect((await client.closed()).code).toBe(4401);
  });

  it('refuses a token-less connection with 4501 when anonymous connections are off', async () => {
    const gw = await startGateway({ allowAnonymous: false });
    await expectClose(gw.ws, undefined, 4501);
  });

  it('accepts a token signed with any of several secrets (rotation)', async () => {
    const old = 'old_secret_old_secret_old_secret_0123456789';
    const gw = await startGateway({ jwtSecrets: ['new_secret_new_secret_new_secret_0123456789', old] });
    const { connected } = await TestClient.connect(gw.ws, { token: await token({ sub: '7' }, { secret: old }) });
    expect(connected.user).toBe('7');
  });

  it('does not accept the API key as a token', async () => {
    const gw = await startGateway();
    await expectClose(gw.ws, API_KEY, 4501);
  });
});
