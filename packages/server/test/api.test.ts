import { request } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { createMemoryEngine } from '../src/engine/memory/engine.js';
import { EngineUnavailableError } from '../src/util/errors.js';
import { api, API_KEY, capturingLogger, eventually, publish, startGateway, TestClient, token } from './helpers.js';

describe('HTTP API: authentication and routing', () => {
  it('requires the Bearer API key on every /api call', async () => {
    const gw = await startGateway();
    for (const key of [null, 'wrong_key_wrong_key_1234', '']) {
      const r = await api(gw.http, 'GET', '/api/online?users=1', undefined, { key });
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('unauthorized');
    }
    const basic = await api(gw.http, 'GET', '/api/online?users=1', undefined, { key: null, headers: { authorization: 'Basic eDp5' } });
    expect(basic.status).toBe(401);
    expect((await api(gw.http, 'GET', '/api/online?users=1')).status).toBe(200);
  });

  it('answers unknown routes with 404 and wrong methods with 405', async () => {
    const gw = await startGateway();
    expect((await api(gw.http, 'GET', '/api/nope')).body.error.code).toBe('not_found');
    expect((await api(gw.http, 'GET', '/api/channels/a/b')).status).toBe(404);
    const r = await api(gw.http, 'GET', '/api/publish');
    expect(r.status).toBe(405);
    expect(r.body.error.code).toBe('method_not_allowed');
    expect(r.headers.get('allow')).toBe('POST');
  });

  it("answers 405 with the methods of the path itself where a route's paths differ (webhooks, inbox), 404 off its paths", async () => {
    const gw = await startGateway();
    for (const [method, path, allow] of [
      ['POST', '/api/webhooks', 'GET'],
      ['DELETE', '/api/webhooks', 'GET'],
      ['GET', '/api/webhooks/replay', 'POST'],
      ['GET', '/api/users/42/inbox/m1', 'DELETE'],
      ['POST', '/api/users/42/inbox/m1', 'DELETE'],
      ['POST', '/api/users/42/inbox', 'GET, DELETE'],
    ] as const) {
      const r = await api(gw.http, method, path);
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.body.error.code).toBe('method_not_allowed');
      expect(r.headers.get('allow'), `${method} ${path}`).toBe(allow);
    }
    for (const path of ['/api/webhooks/nope', '/api/users/42/outbox', '/api/users/42/inbox/m1/x']) {
      expect((await api(gw.http, 'GET', path)).status, path).toBe(404);
    }
  });

  it('refuses a query parameter given twice instead of reading the first one only', async () => {
    const gw = await startGateway();
    for (const [path, field] of [
      ['/api/online?users=1&users=2', 'users'],
      ['/api/history/a?limit=1&limit=5', 'limit'],
      ['/api/users/42/inbox?limit=1&limit=2', 'limit'],
    ] as const) {
      const r = await api(gw.http, 'GET', path);
      expect(r.status, path).toBe(400);
      expect(r.body.error, path).toMatchObject({ code: 'invalid_field', field });
    }
    expect((await api(gw.http, 'GET', '/api/online?users=1,2')).status).toBe(200);
  });

  it('echoes or assigns a request id', async () => {
    const gw = await startGateway();
    expect((await api(gw.http, 'GET', '/api/online?users=1', undefined, { headers: { 'x-request-id': 'req-123' } })).headers.get('x-request-id')).toBe(
      'req-123',
    );
    expect((await api(gw.http, 'GET', '/api/online?users=1')).headers.get('x-request-id')).toMatch(/^[\w-]{22}$/);
  });
});

describe('HTTP API: publish validation', () => {
  const cases: Array<[string, unknown, number, string, string | undefined]> = [
    ['no target', { type: 't', payload: {} }, 400, 'missing_field', 'channel'],
    ['no type', { channel: 'a', payload: {} }, 400, 'missing_field', 'type'],
    ['no payload', { channel: 'a', type: 't' }, 400, 'missing_field', 'payload'],
    ['type not a string', { channel: 'a', type: 5, payload: {} }, 400, 'invalid_field', 'type'],
    ['reserved type', { channel: 'a', type: 'subscribed', payload: {} }, 400, 'reserved_type', 'type'],
    ['bad type chars', { channel: 'a', type: 'has space', payload: {} }, 400, 'invalid_field', 'type'],
    ['scalar payload', { channel: 'a', type: 't', payload: 'text' }, 400, 'invalid_field', 'payload'],
    ['null payload', { channel: 'a', type: 't', payload: null }, 400, 'invalid_field', 'payload'],
    ['bad channel', { channel: 'no spaces', type: 't', payload: {} }, 400, 'invalid_channel', 'channel'],
    ['channel not a string', { channel: 7, type: 't', payload: {} }, 400, 'invalid_field', 'channel'],
    ['empty channels', { channels: [], type: 't', payload: {} }, 400, 'invalid_field', 'channels'],
    ['bad channel in list', { channels: ['a', 'b c'], type: 't', payload: {} }, 400, 'invalid_channel', 'channels[1]'],
    ['two targets', { channel: 'a', client: 'x', type: 't', payload: {} }, 400, 'invalid_field', 'client'],
    ['unknown field', { channel: 'a', type: 't', payload: {}, chanel: 'typo' }, 400, 'invalid_field', 'chanel'],
    ['bad id', { channel: 'a', type: 't', payload: {}, id: 5 }, 400, 'invalid_field', 'id'],
    ['client: channel', { channel: 'client:abc', type: 't', payload: {} }, 400, 'invalid_channel', 'channel'],
    [
      'array item',
      [
        { channel: 'a', type: 't', payload: {} },
        { channel: 'a', type: 't' },
      ],
      400,
      'missing_field',
      '[1].payload',
    ],
    ['empty array', [], 400, 'invalid_body', undefined],
    ['body is a string', 'hello', 400, 'invalid_body', undefined],
    ['array item not an object', [{ channel: 'a', type: 't', payload: {} }, 1], 400, 'invalid_body', '[1]'],
  ];
  it.each(cases)('%s', async (_name, body, status, code, field) => {
    const gw = await startGateway();
    const r = await api(gw.http, 'POST', '/api/publish', body);
    expect(r.status).toBe(status);
    expect(r.body.error.code).toBe(code);
    if (field !== undefined) expect(r.body.error.field).toBe(field);
    expect(typeof r.body.error.message).toBe('string');
    // The message names the item as `field` does (`[1] must be ...`, not `[1]. must be ...`).
    if (code === 'invalid_body' && field !== undefined) expect(r.body.error.message).toBe(`${field} must be a JSON object`);
    expect((await api(gw.http, 'GET', '/api/channels/a')).body.seq).toBe(0);
    // The channel answer does move with a publish: seq 0 above meant that nothing was published.
    await publish(gw.http, { channel: 'a', type: 't', payload: {} });
    expect((await api(gw.http, 'GET', '/api/channels/a')).body.seq).toBe(1);
  });

  it('answers invalid JSON with 400 invalid_body, wrong content type with 415, oversize with 413', async () => {
    const gw = await startGateway({ maxBodySize: 1024 });
    const bad = await api(gw.http, 'POST', '/api/publish', undefined, { raw: '{"channel":' });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'invalid_body']);
    const form = await api(gw.http, 'POST', '/api/publish', undefined, { raw: 'channel=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect([form.status, form.body.error.code]).toEqual([415, 'unsupported_media_type']);
    const none = await api(gw.http, 'POST', '/api/publish', undefined, { raw: '{}', headers: { 'content-type': '' } });
    expect(none.status).toBe(415);
    // Another charset than UTF-8 would be read as UTF-8, its accents lost without a word: refused.
    const item = '{"channel":"a","type":"t","payload":{"s":"caf\u00e9"}}';
    for (const type of ['application/json; charset=iso-8859-1', 'application/json;charset="windows-1252"']) {
      const latin = await api(gw.http, 'POST', '/api/publish', undefined, { raw: item, headers: { 'content-type': type } });
      expect([latin.status, latin.body.error.code], type).toEqual([415, 'unsupported_media_type']);
    }
    for (const type of ['application/json; charset=utf-8', 'application/json; charset=UTF8', 'Application/JSON']) {
      expect((await api(gw.http, 'POST', '/api/publish', undefined, { raw: item, headers: { 'content-type': type } })).status, type).toBe(200);
    }
    const big = await api(gw.http, 'POST', '/api/publish', { channel: 'a', type: 't', payload: { pad: 'x'.repeat(2000) } });
    expect([big.status, big.body.error.code]).toEqual([413, 'body_too_large']);
    // Still serving afterwards.
    expect((await api(gw.http, 'POST', '/api/publish', { channel: 'a', type: 't', payload: {} })).status).toBe(200);
  });

  it('accepts application/json with a charset and a UTF-8 BOM', async () => {
    const gw = await startGateway();
    const r = await api(gw.http, 'POST', '/api/publish', undefined, {
      raw: `\ufeff${JSON.stringify({ channel: 'a', type: 't', payload: {} })}`,
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(r.status).toBe(200);
  });
});

describe('HTTP API: publish', () => {
  it('publishes to several channels and returns the seq per channel', async () => {
    const gw = await startGateway();
    const a = await TestClient.connect(gw.ws, { subs: { a: {}, b: {} } });
    await publish(gw.http, { channel: 'a', type: 't', payload: {} });
    const r = await publish(gw.http, { channels: ['a', 'b'], type: 'multi', payload: { x: 1 } });
    expect(r.results).toEqual({
      a: { seq: 2, epoch: expect.any(String), duplicate: false, subscribers: 1 },
      b: { seq: 1, epoch: expect.any(String), duplicate: false, subscribers: 1 },
    });
    expect((await a.client.waitMessages('a', 2))[1]).toEqual({ type: 'multi', channel: 'a', payload: { x: 1 }, seq: 2 });
    expect((await a.client.waitMessages('b', 1))[0]).toEqual({ type: 'multi', channel: 'b', payload: { x: 1 }, seq: 1 });
  });

  it('publishes an array of messages in order', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws, { subs: { a: {} } });
    const r = await api(gw.http, 'POST', '/api/publish', [
      { channel: 'a', type: 'one', payload: {} },
      { channel: 'a', type: 'two', payload: [1, 2] },
    ]);
    expect(r.status).toBe(200);
    expect(r.body.map((x: any) => x.results.a.seq)).toEqual([1, 2]);
    expect((await client.waitMessages('a', 2)).map((m) => m.type)).toEqual(['one', 'two']);
  });

  it('publishes once for the same idempotency id', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws, { subs: { a: {} } });
    const first = await publish(gw.http, { channel: 'a', type: 't', payload: { n: 1 }, id: 'order-1' });
    const again = await publish(gw.http, { channel: 'a', type: 't', payload: { n: 1 }, id: 'order-1' });
    expect(first).toMatchObject({ id: 'order-1', results: { a: { seq: 1, duplicate: false } } });
    expect(again).toMatchObject({ id: 'order-1', results: { a: { seq: 1, duplicate: true } } });
    await publish(gw.http, { channel: 'a', type: 't', payload: { n: 2 }, id: 'order-2' });
    const msgs = await client.waitMessages('a', 2);
    expect(msgs.map((m) => m.seq)).toEqual([1, 2]);
    expect((await api(gw.http, 'GET', '/api/channels/a')).body.seq).toBe(2);
  });

  it('refuses an idempotency id holding a lone surrogate (the Redis engine would read x\\ud800 and x\\udc00 as one id)', async () => {
    const gw = await startGateway();
    for (const raw of ['{"channel":"a","type":"t","payload":{},"id":"x\\ud800"}', '[{"channel":"a","type":"t","payload":{},"id":"\\udc00y"}]']) {
      const r = await api(gw.http, 'POST', '/api/publish', undefined, { raw });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_field', field: raw.startsWith('[') ? '[0].id' : 'id' });
    }
    // A pair is a character: an emoji id publishes.
    expect((await publish(gw.http, { channel: 'a', type: 't', payload: {}, id: 'evt-😀' })).results.a).toMatchObject({ seq: 1 });
  });

  it('forgets idempotency ids after the window', async () => {
    const gw = await startGateway({ idempotencyTtl: 60_000 });
    await publish(gw.http, { channel: 'a', type: 't', payload: {}, id: 'k' });
    gw.clock.advance(59_000);
    expect((await publish(gw.http, { channel: 'a', type: 't', payload: {}, id: 'k' })).results.a).toMatchObject({ seq: 1, duplicate: true });
    gw.clock.advance(2000);
    expect((await publish(gw.http, { channel: 'a', type: 't', payload: {}, id: 'k' })).results.a).toMatchObject({ seq: 2, duplicate: false });
  });

  it('reports online:false for a user with no connection', async () => {
    const gw = await startGateway();
    const r = await publish(gw.http, { channel: 'user:99', type: 't', payload: {} });
    expect(r.results['user:99']).toMatchObject({ online: false, subscribers: 0, seq: 1 });
    // The same publish once the user is connected: online, and subscribed to its user channel.
    const { client } = await TestClient.connect(gw.ws, { token: await token({ sub: '99' }) });
    expect((await publish(gw.http, { channel: 'user:99', type: 't', payload: {} })).results['user:99']).toMatchObject({ online: true, subscribers: 1, seq: 2 });
    expect((await client.waitMessages('user:99', 1))[0]?.seq).toBe(2);
  });

  it('answers online:true, live:false for a user whose connection is not subscribed yet, and counts it', async () => {
    const engine = createMemoryEngine();
    let release: () => void = () => undefined;
    const subscribe = engine.broker.subscribe.bind(engine.broker);
    vi.spyOn(engine.broker, 'subscribe').mockImplementation((channel) =>
      channel === 'user:98' ? new Promise<void>((resolve) => (release = resolve)).then(() => subscribe(channel)) : subscribe(channel),
    );
    const gw = await startGateway({ engine });
    const client = await TestClient.open(gw.ws);
    client.send({ type: 'connect', token: await token({ sub: '98' }) });
    await eventually(async () => ((await api(gw.http, 'GET', '/api/online?users=98')).body.users['98'].online === true ? true : undefined), 'user 98 online');
    const r = (await publish(gw.http, { user: '98', type: 't', payload: {} })).results['user:98'];
    expect(r).toMatchObject({ online: true, live: false, subscribers: 0, seq: 1 });
    expect(gw.gateway.stats.dropped.get('user_not_subscribed')).toBe(1);
    release();
    expect(await client.next()).toMatchObject({ type: 'connected', subs: { 'user:98': { seq: 1 } } });
    expect((await publish(gw.http, { user: '98', type: 't', payload: {} })).results['user:98']).toMatchObject({ online: true, live: true, subscribers: 1 });
    expect((await client.waitMessages('user:98', 1))[0]?.seq).toBe(2);
  });

  it("closes a user's connection with 1013 when its user channel cannot be subscribed (it would miss the user's pushes)", async () => {
    const engine = createMemoryEngine();
    const subscribe = vi.spyOn(engine.broker, 'subscribe').mockRejectedValueOnce(new EngineUnavailableError('down'));
    const gw = await startGateway({ engine });
    const client = await TestClient.open(gw.ws);
    client.send({ type: 'connect', token: await token({ sub: '97' }) });
    expect(await client.closed()).toMatchObject({ code: 1013 });
    expect(subscribe).toHaveBeenCalledWith('user:97');
    await eventually(async () => ((await api(gw.http, 'GET', '/api/online?users=97')).body.users['97'].online === false ? true : undefined), 'user 97 gone');
    // The client reconnects (1013 says so) and, the engine back, gets its pushes.
    const { client: again, connected } = await TestClient.connect(gw.ws, { token: await token({ sub: '97' }) });
    expect(Object.keys(connected.subs as object)).toEqual(['user:97']);
    expect((await publish(gw.http, { user: '97', type: 't', payload: {} })).results['user:97']).toMatchObject({ online: true, live: true });
    expect(await again.waitMessages('user:97', 1)).toHaveLength(1);
  });

  it('publishes to one client, and answers 404 no_such_client when it does not exist', async () => {
    const gw = await startGateway();
    const { client, connected } = await TestClient.connect(gw.ws);
    const id = connected.client as string;
    expect(await publish(gw.http, { client: id, type: 'direct', payload: { hi: true } })).toEqual({ client: id, delivered: true });
    expect(await client.nextWhere((f) => f.type === 'direct')).toEqual({ type: 'direct', channel: `client:${id}`, payload: { hi: true }, seq: 0 });
    const missing = await api(gw.http, 'POST', '/api/publish', { client: 'nobody', type: 'direct', payload: {} });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'no_such_client', field: 'client' });
    client.terminate();
    await client.closed();
    // Once the server has seen the connection go, a push to it is a 404, never a silent success.
    await eventually(
      async () => ((await api(gw.http, 'POST', '/api/publish', { client: id, type: 'direct', payload: {} })).status === 404 ? true : undefined),
      '404 for a closed client',
    );
    expect(gw.gateway.connectionCount).toBe(0);
  });

  it('reports a missing client inside an array in its own item', async () => {
    const gw = await startGateway();
    const r = await api(gw.http, 'POST', '/api/publish', [
      { channel: 'a', type: 't', payload: {} },
      { client: 'nobody', type: 't', payload: {} },
    ]);
    expect(r.status).toBe(200);
    expect(r.body[0].results.a.seq).toBe(1);
    expect(r.body[1]).toMatchObject({ client: 'nobody', delivered: false, error: { code: 'no_such_client' } });
  });

  it('delivers emoji, CJK and escapes byte-exact, and replaces invalid UTF-8 with U+FFFD', async () => {
    const gw = await startGateway();
    const { client } = await TestClient.connect(gw.ws, { subs: { a: {} } });
    const text = 'héllo 😀👩‍👩‍👧 中文 日本語 한국어 \u2028 "quoted" \\ \u0000';
    await publish(gw.http, { channel: 'a', type: 't', payload: { text } });
    const raw = Buffer.concat([Buffer.from('{"channel":"a","type":"t","payload":{"text":"ok '), Buffer.from([0xff, 0xc3]), Buffer.from(' end"}}')]);
    expect((await api(gw.http, 'POST', '/api/publish', undefined, { raw })).status).toBe(200);
    const [first, second] = await client.waitMessages('a', 2);
    expect((first?.payload as any).text).toBe(text);
    expect((second?.payload as any).text).toBe('ok \ufffd\ufffd end');
    expect(client.raw.find((r) => r.includes('😀'))).toContain('😀👩‍👩‍👧 中文');
  });

  it('answers a publish that arrives during shutdown with 503 shutting_down, and lets it finish', async () => {
    const { logger, entries } = capturingLogger();
    const gw = await startGateway({ logger });
    const body = JSON.stringify({ channel: 'a', type: 't', payload: {} });
    const req = request(`${gw.http}/api/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    const response = new Promise<{ status: number; body: any }>((resolve, reject) => {
      req.on('response', (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      });
      req.on('error', reject);
    });
    req.write(body.slice(0, 5));
    await eventually(() => (gw.gateway.httpRequests === 1 ? true : undefined), 'the request arrived');
    const closing = gw.gateway.close();
    req.end(body.slice(5));
    const r = await response;
    expect([r.status, r.body.error.code]).toEqual([503, 'shutting_down']);
    await closing;
    // An expected answer while stopping, counted as a drop: not a warning with a stack trace.
    expect(entries.filter((e) => e['msg'] === 'request failed')).toEqual([]);
    expect((await api(gw.http, 'GET', '/readyz', undefined, { key: null }).catch((e: Error) => e)) instanceof Error).toBe(true);
  });
});

describe('HTTP API: presence, channels, history, disconnect', () => {
  it('answers who is online with connection counts', async () => {
    const gw = await startGateway();
    await TestClient.connect(gw.ws, { token: await token({ sub: '42' }) });
    await TestClient.connect(gw.ws, { token: await token({ sub: '42' }) });
    await TestClient.connect(gw.ws, { token: await token({ sub: '43' }) });
    const r = await api(gw.http, 'GET', '/api/online?users=42,43,44');
    expect(r.body).toEqual({
      users: { '42': { online: true, connections: 2 }, '43': { online: true, connections: 1 }, '44': { online: false, connections: 0 } },
    });
    expect((await api(gw.http, 'GET', '/api/online')).body.error).toMatchObject({ code: 'missing_field', field: 'users' });
    expect((await api(gw.http, 'GET', '/api/online?users=a%20b')).body.error).toMatchObject({ code: 'invalid_field', field: 'users' });
    const many = Array.from({ length: 1001 }, (_, i) => i).join(',');
    expect((await api(gw.http, 'GET', `/api/online?users=${many}`)).status).toBe(400);
  });

  it('updates presence when connections close', async () => {
    const gw = await startGateway();
    const online = async () => (await api(gw.http, 'GET', '/api/online?users=42')).body.users['42'] as { online: boolean; connections: number };
    const first = await TestClient.connect(gw.ws, { token: await token({ sub: '42' }) });
    const second = await TestClient.connect(gw.ws, { token: await token({ sub: '42' }) });
    expect(await online()).toEqual({ online: true, connections: 2 });
    first.client.terminate();
    await first.client.closed();
    await eventually(async () => ((await online()).connections === 1 ? true : undefined), 'one connection left');
    expect(await online()).toEqual({ online: true, connections: 1 });
    second.client.terminate();
    await second.client.closed();
    await eventually(async () => ((await online()).online === false ? true : undefined), 'user 42 offline');
    expect(await online()).toEqual({ online: false, connections: 0 });
  });

  it('describes a channel', async () => {
    const gw = await startGateway();
    await TestClient.connect(gw.ws, { subs: { 'room:1': {} } });
    await publish(gw.http, { channel: 'room:1', type: 't', payload: {} });
    const r = await api(gw.http, 'GET', '/api/channels/room%3A1');
    expect(r.body).toEqual({ channel: 'room:1', subscribers: 1, seq: 1, epoch: expect.any(String) });
    expect((await api(gw.http, 'GET', '/api/channels/bad%20name')).body.error.code).toBe('invalid_channel');
    expect((await api(gw.http, 'GET', '/api/channels/%E0%A4%A')).body.error.code).toBe('invalid_channel');
  });

  it('reads history since a position, with a limit', async () => {
    const gw = await startGateway();
    for (let i = 1; i <= 5; i++) await publish(gw.http, { channel: 'h', type: 't', payload: { i } });
    const all = await api(gw.http, 'GET', '/api/history/h');
    expect(all.body).toMatchObject({ channel: 'h', seq: 5, complete: true });
    expect(all.body.messages.map((m: any) => m.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(all.body.messages[0]).toEqual({ type: 't', channel: 'h', payload: { i: 1 }, seq: 1 });
    const since = await api(gw.http, 'GET', `/api/history/h?since=2&limit=2&epoch=${all.body.epoch as string}`);
    expect(since.body.messages.map((m: any) => m.seq)).toEqual([3, 4]);
    const wrongEpoch = await api(gw.http, 'GET', '/api/history/h?since=2&epoch=nope');
    expect(wrongEpoch.body).toMatchObject({ complete: false, messages: [] });
    expect((await api(gw.http, 'GET', '/api/history/h?since=-1')).body.error).toMatchObject({ code: 'invalid_field', field: 'since' });
    expect((await api(gw.http, 'GET', '/api/history/h?limit=0')).body.error).toMatchObject({ code: 'invalid_field', field: 'limit' });
  });

  it('disconnects every connection of a user with 4509, or one client with a chosen code', async () => {
    const gw = await startGateway();
    const a = await TestClient.connect(gw.ws, { token: await token({ sub: '42' }) });
    const b = await TestClient.connect(gw.ws, { token: await token({ sub: '42' }) });
    const other = await TestClient.connect(gw.ws, { token: await token({ sub: '43' }) });
    expect((await api(gw.http, 'POST', '/api/disconnect', { user: '42', reason: 'banned' })).body).toEqual({ disconnected: 2 });
    expect(await a.client.closed()).toEqual({ code: 4509, reason: 'banned' });
    expect((await b.client.closed()).code).toBe(4509);
    const r = await api(gw.http, 'POST', '/api/disconnect', { client: other.connected.client, code: 4000 });
    expect(r.body).toEqual({ disconnected: 1 });
    expect((await other.client.closed()).code).toBe(4000);
    expect((await api(gw.http, 'POST', '/api/disconnect', { client: 'nobody' })).status).toBe(404);
    expect((await api(gw.http, 'POST', '/api/disconnect', { user: '42', code: 1001 })).body.error).toMatchObject({ code: 'invalid_field', field: 'code' });
    expect((await api(gw.http, 'POST', '/api/disconnect', {})).body.error).toMatchObject({ code: 'missing_field', field: 'user' });
    expect((await api(gw.http, 'POST', '/api/disconnect', { user: '42' })).body).toEqual({ disconnected: 0 });
  });

  it('treats __proto__ and other Object.prototype names as ordinary channel and user names', async () => {
    const gw = await startGateway();
    // JSON.parse makes __proto__ an own key (an object literal would set the prototype instead).
    const { client } = await TestClient.connect(gw.ws, { subs: JSON.parse('{"__proto__":{},"constructor":{}}') });
    expect(Object.keys(client.frames[0]?.subs as object).sort()).toEqual(['__proto__', 'constructor']);
    const r = await publish(gw.http, { channels: ['__proto__', 'constructor'], type: 't', payload: {} });
    expect(Object.keys(r.results).sort()).toEqual(['__proto__', 'constructor']);
    expect((await client.waitMessages('__proto__', 1))[0]?.seq).toBe(1);
    // One channel (the path of a push to one user) answers by name the same way.
    const one = await publish(gw.http, { channel: '__proto__', type: 't', payload: {} });
    expect(Object.keys(one.results)).toEqual(['__proto__']);
    expect(one.results['__proto__']).toMatchObject({ seq: 2, duplicate: false, subscribers: 1 });
    const online = await api(gw.http, 'GET', '/api/online?users=__proto__,toString');
    expect(Object.keys(online.body.users).sort()).toEqual(['__proto__', 'toString']);
  });
});
