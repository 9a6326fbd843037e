/**
 * Client publish (native `publish` frames): only what the token's `publish` claim grants, answered with
 * `published` (seq) or an error with a stable code; per-connection and per-user rates, payload size and depth;
 * echo suppression; idempotency keys; the publish hook (accept, reject, rewrite, timeout, failure modes,
 * signed requests); and client publishes counted, kept in history and recovered like any other.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { createMemoryEngine } from '../src/engine/memory/engine.js';
import { createRedisEngine } from '../src/engine/redis/engine.js';
import type { GatewayOptions } from '../src/gateway/options.js';
import { silentLogger } from '../src/util/logger.js';
import { api, eventually, ManualClock, onCleanup, startGateway, TestClient, token, type Frame } from './helpers.js';
import { REDIS_URL, testPrefix } from './redis-helpers.js';
import { listenUntilCleanup } from './support/cleanup.js';

const HOOK_SECRET = `whsec_${Buffer.from('publish-hook-secret-0123456789').toString('base64')}`;

/** A connection of `sub` granted `publish` patterns (and `channels`), subscribed to `subs`. */
async function publisher(ws: string, sub: string, publish: string[], subs: string[] = [], extra: Record<string, unknown> = {}): Promise<TestClient> {
  const t = await token({ sub, publish, channels: ['private:*', 'presence:*'], ...extra });
  const { client } = await TestClient.connect(ws, { token: t, subs: Object.fromEntries(subs.map((c) => [c, {}])) });
  return client;
}

let ids = 0;
/** Sends a publish frame and waits for its answer (`published` or `error`, matched by id). */
async function send(c: TestClient, channel: string, event: string, payload: unknown, extra: Record<string, unknown> = {}): Promise<Frame> {
  const id = ++ids;
  c.send({ type: 'publish', channel, event, payload, id, ...extra });
  return c.nextWhere((f) => (f.type === 'published' || f.type === 'error') && f['id'] === id, `the answer to publish ${id}`);
}

/** Waits until every frame sent to `c` before now has arrived (pong answers in order). */
async function drain(c: TestClient): Promise<void> {
  const id = 100_000 + ++ids;
  c.send({ type: 'ping', id });
  await c.nextWhere((f) => f.type === 'pong' && f['id'] === id, 'pong');
}

/** A publish hook receiver: answers each request with `answer(body)`, or holds it while `hold` is set. */
async function hookServer(answer: (body: Record<string, unknown>) => { status: number; body?: unknown } | 'hold') {
  const received: Array<{ headers: IncomingMessage['headers']; text: string; body: Record<string, unknown> }> = [];
  const held: ServerResponse[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body = JSON.parse(text) as Record<string, unknown>;
      received.push({ headers: req.headers, text, body });
      const a = answer(body);
      if (a === 'hold') {
        held.push(res);
        return;
      }
      res.writeHead(a.status, a.body === undefined ? {} : { 'content-type': 'application/json' });
      res.end(a.body === undefined ? undefined : JSON.stringify(a.body));
    });
  });
  const port = await listenUntilCleanup(server);
  // Runs first (last registered): the answers held back go before the server closes.
  onCleanup(() => {
    for (const r of held) r.destroy();
  });
  return { url: `http://127.0.0.1:${port}/hook`, received };
}

describe('client publish: grants', () => {
  it('publishes what the publish claim grants, and answers published with the seq', async () => {
    const gw = await startGateway();
    const reader = await TestClient.connect(gw.ws, { subs: { 'chat:1': {} } });
    const ann = await publisher(gw.ws, 'ann', ['chat:*']);
    const ok = await send(ann, 'chat:1', 'chat.message', { text: 'héllo 👋' });
    expect(ok).toEqual({ type: 'published', channel: 'chat:1', seq: 1, epoch: expect.any(String), id: ok['id'] });
    const [m] = await reader.client.waitMessages('chat:1', 1);
    expect(m).toEqual({ type: 'chat.message', channel: 'chat:1', payload: { text: 'héllo 👋' }, seq: 1 });
    // The same history and position the HTTP API sees.
    expect((await api(gw.http, 'GET', '/api/channels/chat:1')).body).toMatchObject({ seq: 1, epoch: ok['epoch'] });
    expect((await api(gw.http, 'GET', '/metrics')).body).toMatch(/herald_client_publishes_total\{outcome="published",node="[^"]+"\} 1/);
    expect((await api(gw.http, 'GET', '/api/stats')).body).toMatchObject({ published: 1 });
  });

  it('refuses with forbidden what the claim does not grant: other channels, no claim, anonymous, client: and herald: channels', async () => {
    const gw = await startGateway();
    const ann = await publisher(gw.ws, 'ann', ['chat:*', 'user:*', 'private:team-*', '*']);
    for (const channel of ['client:abc', 'herald:admin']) {
      expect(await send(ann, channel, 'x', {})).toMatchObject({ type: 'error', code: 'forbidden', channel });
    }
    const narrow = await publisher(gw.ws, 'bob', ['chat:*']);
    for (const channel of ['news', 'private:team-1', 'user:ann', 'user:bob', 'presence:room']) {
      expect(await send(narrow, channel, 'x', {})).toMatchObject({
        type: 'error',
        code: 'forbidden',
        channel,
        message: `not allowed to publish to ${channel}`,
      });
    }
    const none = await publisher(gw.ws, 'cid', []);
    expect(await send(none, 'chat:1', 'x', {})).toMatchObject({ code: 'forbidden' });
    const anonymous = (await TestClient.connect(gw.ws, {})).client;
    expect(await send(anonymous, 'chat:1', 'x', {})).toMatchObject({ code: 'forbidden' });
    // Granted: user channels (another user's too) and private ones, by pattern.
    expect(await send(ann, 'user:bob', 'x', {})).toMatchObject({ type: 'published', seq: 1 });
    expect(await send(ann, 'private:team-1', 'x', {})).toMatchObject({ type: 'published', seq: 1 });
    const refused = (await api(gw.http, 'GET', '/metrics')).body as string;
    expect(refused).toMatch(/herald_client_publishes_total\{outcome="forbidden",node="[^"]+"\} 9/);
    expect(refused).toMatch(/herald_auth_failures_total\{reason="publish_forbidden",node="[^"]+"\} 9/);
    expect(refused).toMatch(/herald_client_publishes_total\{outcome="published",node="[^"]+"\} 2/);
    // Nothing refused reached a channel.
    expect((await api(gw.http, 'GET', '/api/channels/news')).body.seq).toBe(0);
  });

  it('refuses malformed publishes with their codes: reserved or invalid event, payload not an object, too deep, too large', async () => {
    const gw = await startGateway({ clientPublishMaxBytes: 100 });
    const ann = await publisher(gw.ws, 'ann', ['*']);
    // Each names the frame's channel (docs/protocol.md: the error carries the frame's id and channel).
    expect(await send(ann, 'c', 'published', {})).toMatchObject({ type: 'error', code: 'reserved_type', channel: 'c' });
    expect(await send(ann, 'c', 'a b', {})).toMatchObject({ type: 'error', code: 'invalid_frame', channel: 'c' });
    expect(await send(ann, 'c', 'x', 'text')).toMatchObject({ type: 'error', code: 'invalid_frame', channel: 'c' });
    expect(await send(ann, 'bad channel', 'x', {})).toMatchObject({ type: 'error', code: 'invalid_channel', channel: 'bad channel' });
    expect(await send(ann, 'c', 'x', {}, { key: 'not a key' })).toMatchObject({ type: 'error', code: 'invalid_frame', channel: 'c' });
    expect(await send(ann, 'c', 'x', {}, { echo: 'no' })).toMatchObject({ type: 'error', code: 'invalid_frame', channel: 'c' });
    let deep: unknown = {};
    for (let i = 0; i < 70; i++) deep = [deep];
    expect(await send(ann, 'c', 'x', deep)).toMatchObject({ type: 'error', code: 'payload_too_deep', channel: 'c' });
    expect(await send(ann, 'c', 'x', { s: 'x'.repeat(100) })).toMatchObject({
      type: 'error',
      code: 'payload_too_large',
      message: 'payload is larger than 100 bytes',
    });
    // Counted in bytes: 40 three-byte characters are 120 bytes.
    expect(await send(ann, 'c', 'x', { s: '€'.repeat(40) })).toMatchObject({ code: 'payload_too_large' });
    expect(await send(ann, 'c', 'x', { s: 'x'.repeat(80) })).toMatchObject({ type: 'published', seq: 1 });
    expect(ann.closeCode).toBeUndefined();
  });
});

describe('client publish: delivery', () => {
  it("echoes to the publishing connection unless echo is false; the user's other connections get it either way", async () => {
    const gw = await startGateway();
    const tab1 = await publisher(gw.ws, 'ann', ['chat:*'], ['chat:1']);
    const tab2 = await publisher(gw.ws, 'ann', ['chat:*'], ['chat:1']);
    const first = await send(tab1, 'chat:1', 'said', { n: 1 });
    await send(tab1, 'chat:1', 'said', { n: 2 }, { echo: false });
    await tab2.waitMessages('chat:1', 2);
    await drain(tab1);
    expect(tab1.messages('chat:1').map((m) => m['payload'])).toEqual([{ n: 1 }]);
    // Not echoed live, but in history like any message: a recovery from 0 has both.
    const late = await TestClient.connect(gw.ws, { subs: { 'chat:1': { since: 0, epoch: first['epoch'] } } });
    expect((await late.client.waitMessages('chat:1', 2)).map((m) => m['seq'])).toEqual([1, 2]);
  });

  it("publishes a key once per user: a resend is answered duplicate with the first seq; another user's same key is its own", async () => {
    const gw = await startGateway();
    const reader = await TestClient.connect(gw.ws, { subs: { 'chat:1': {} } });
    const ann = await publisher(gw.ws, 'ann', ['chat:*']);
    const first = await send(ann, 'chat:1', 'm', { v: 1 }, { key: 'k-1' });
    const again = await send(ann, 'chat:1', 'm', { v: 1 }, { key: 'k-1' });
    expect(again).toMatchObject({ type: 'published', seq: first['seq'], duplicate: true });
    // From another connection of the same user (a reconnect): still once.
    const annAgain = await publisher(gw.ws, 'ann', ['chat:*']);
    expect(await send(annAgain, 'chat:1', 'm', { v: 1 }, { key: 'k-1' })).toMatchObject({ seq: first['seq'], duplicate: true });
    const bob = await publisher(gw.ws, 'bob', ['chat:*']);
    expect(await send(bob, 'chat:1', 'm', { v: 2 }, { key: 'k-1' })).toMatchObject({ seq: 2 });
    // An HTTP publish whose id is the same text is not taken for it either.
    expect((await api(gw.http, 'POST', '/api/publish', { channel: 'chat:1', type: 'm', payload: {}, id: 'k-1' })).body.results['chat:1'].seq).toBe(3);
    await reader.client.waitMessages('chat:1', 3);
    await drain(reader.client);
    expect(reader.client.messages('chat:1').map((m) => m['seq'])).toEqual([1, 2, 3]);
    expect((await api(gw.http, 'GET', '/metrics')).body).toMatch(/herald_client_publishes_total\{outcome="duplicate",node="[^"]+"\} 2/);
  });

  it('keeps publishes of one connection in the order sent, with answers in order', async () => {
    const gw = await startGateway({ clientPublishRate: 1000, clientPublishUserRate: 1000, clientRate: 1000, clientBurst: 1000 });
    const reader = await TestClient.connect(gw.ws, { subs: { room: {} } });
    const ann = await publisher(gw.ws, 'ann', ['room']);
    for (let i = 0; i < 200; i++) ann.send({ type: 'publish', channel: 'room', event: 'n', payload: { i }, id: i });
    const answers = await ann.waitFor(() => {
      const a = ann.frames.filter((f) => f.type === 'published');
      return a.length === 200 ? a : undefined;
    }, '200 answers');
    expect(answers.map((a) => a['id'])).toEqual(answers.map((_, i) => i));
    expect(answers.map((a) => a['seq'])).toEqual(answers.map((_, i) => i + 1));
    const got = await reader.client.waitMessages('room', 200);
    expect(got.map((m) => (m['payload'] as { i: number }).i)).toEqual(got.map((_, i) => i));
  });

  it('answers engine_unavailable when the engine refuses the publish: nothing was published', async () => {
    const engine = createMemoryEngine({});
    const original = engine.broker.publish.bind(engine.broker);
    let down = true;
    engine.broker.publish = (input) => (down ? Promise.reject(new Error('connection refused')) : original(input));
    const gw = await startGateway({ engine });
    const ann = await publisher(gw.ws, 'ann', ['chat:*']);
    expect(await send(ann, 'chat:1', 'm', {})).toMatchObject({ type: 'error', code: 'engine_unavailable', channel: 'chat:1' });
    down = false;
    expect(await send(ann, 'chat:1', 'm', {})).toMatchObject({ type: 'published', seq: 1 });
    expect((await api(gw.http, 'GET', '/metrics')).body).toMatch(/herald_client_publishes_total\{outcome="engine_error",node="[^"]+"\} 1/);
  });
});

describe('client publish: rates', () => {
  it('limits publishes per connection, refilled with time, and per user across its connections', async () => {
    const clock = new ManualClock();
    const gw = await startGateway({ clock, clientPublishRate: 3, clientPublishUserRate: 5 });
    const tab1 = await publisher(gw.ws, 'ann', ['c']);
    for (let i = 0; i < 3; i++) expect(await send(tab1, 'c', 'm', {})).toMatchObject({ type: 'published' });
    expect(await send(tab1, 'c', 'm', {})).toMatchObject({
      type: 'error',
      code: 'rate_limited',
      message: 'at most 3 publishes per second per connection and 5 per user',
    });
    // Another connection of the same user has its own connection budget, but shares the user's: 2 left.
    const tab2 = await publisher(gw.ws, 'ann', ['c']);
    for (let i = 0; i < 2; i++) expect(await send(tab2, 'c', 'm', {})).toMatchObject({ type: 'published' });
    expect(await send(tab2, 'c', 'm', {})).toMatchObject({ code: 'rate_limited' });
    // Another user is not affected.
    const bob = await publisher(gw.ws, 'bob', ['c']);
    expect(await send(bob, 'c', 'm', {})).toMatchObject({ type: 'published' });
    // A second later each budget has refilled.
    clock.advance(1000);
    expect(await send(tab1, 'c', 'm', {})).toMatchObject({ type: 'published' });
    expect(tab1.closeCode).toBeUndefined();
    const text = (await api(gw.http, 'GET', '/metrics')).body as string;
    expect(text).toMatch(/herald_limited_total\{limit="client_publish",node="[^"]+"\} 2/);
    expect(text).toMatch(/herald_client_publishes_total\{outcome="rate_limited",node="[^"]+"\} 2/);
  });

  it('refuses a flood at once, without queueing it behind a slow hook', async () => {
    const hook = await hookServer(() => 'hold');
    const gw = await startGateway({ clientPublishRate: 5, clientPublishUserRate: 5, publishHookUrl: hook.url, publishHookSecret: HOOK_SECRET });
    const ann = await publisher(gw.ws, 'ann', ['c']);
    for (let i = 0; i < 40; i++) ann.send({ type: 'publish', channel: 'c', event: 'm', payload: {}, id: i });
    // 35 refusals arrive while the first five wait for the hook (which never answers).
    await ann.waitFor(() => (ann.frames.filter((f) => f['code'] === 'rate_limited').length === 35 ? true : undefined), '35 refusals');
    expect(hook.received.length).toBeLessThanOrEqual(5);
  });
});

describe('client publish: the publish hook', () => {
  const withHook = async (answer: Parameters<typeof hookServer>[0], opts: GatewayOptions = {}) => {
    const hook = await hookServer(answer);
    // Signed with the real time: verifiers refuse timestamps far from their own clock.
    const gw = await startGateway({ clock: new ManualClock(Date.now()), publishHookUrl: hook.url, publishHookSecret: HOOK_SECRET, ...opts });
    const reader = await TestClient.connect(gw.ws, { subs: { 'chat:1': {} } });
    const ann = await publisher(gw.ws, 'ann', ['chat:*'], [], { info: { name: 'Ann' } });
    return { hook, gw, reader: reader.client, ann };
  };

  it('asks the hook with a signed request (Standard Webhooks) and publishes what it accepts', async () => {
    const { hook, gw, reader, ann } = await withHook((b) =>
      (b['payload'] as { n: number }).n === 1 ? { status: 204 } : { status: 200, body: { action: 'accept' } },
    );
    expect(await send(ann, 'chat:1', 'said', { n: 1 })).toMatchObject({ type: 'published', seq: 1 });
    expect(await send(ann, 'chat:1', 'said', { n: 2 })).toMatchObject({ type: 'published', seq: 2 });
    await reader.waitMessages('chat:1', 2);
    const first = hook.received[0]!;
    const verified = new Webhook(HOOK_SECRET).verify(first.text, first.headers as Record<string, string>);
    expect(verified).toEqual({ channel: 'chat:1', type: 'said', payload: { n: 1 }, user: 'ann', client: expect.any(String), info: { name: 'Ann' } });
    // A tampered body fails verification.
    expect(() => new Webhook(HOOK_SECRET).verify(first.text.replace('"n":1', '"n":9'), first.headers as Record<string, string>)).toThrow();
    expect((await api(gw.http, 'GET', '/metrics')).body).toMatch(/herald_publish_hook_requests_total\{result="accept",node="[^"]+"\} 2/);
  });

  it('refuses what the hook rejects, with its reason; nothing is published', async () => {
    const { reader, ann } = await withHook(() => ({ status: 200, body: { action: 'reject', reason: 'no links, please' } }));
    expect(await send(ann, 'chat:1', 'said', { text: 'http://spam' })).toMatchObject({
      type: 'error',
      code: 'publish_rejected',
      message: 'no links, please',
      channel: 'chat:1',
    });
    await drain(reader);
    expect(reader.messages('chat:1')).toHaveLength(0);
  });

  it('publishes what the hook rewrites: its payload and type', async () => {
    const { reader, ann } = await withHook((b) => ({
      status: 200,
      body: {
        action: 'rewrite',
        type: 'chat.clean',
        payload: { text: String((b['payload'] as { text: string }).text).replace('darn', '****'), by: b['user'] },
      },
    }));
    expect(await send(ann, 'chat:1', 'said', { text: 'oh darn' })).toMatchObject({ type: 'published', seq: 1 });
    const [m] = await reader.waitMessages('chat:1', 1);
    expect(m).toEqual({ type: 'chat.clean', channel: 'chat:1', payload: { text: 'oh ****', by: 'ann' }, seq: 1 });
  });

  it('denies on a failed hook by default: an error status, an unusable answer, a rewrite that breaks the rules, no answer in time', async () => {
    const clock = new ManualClock(Date.now());
    const answers: Array<{ status: number; body?: unknown } | 'hold'> = [
      { status: 500 },
      { status: 200, body: { action: 'maybe' } },
      { status: 200, body: { action: 'rewrite', type: 'connected' } },
      { status: 302 },
      'hold',
    ];
    const { hook, reader, ann, gw } = await withHook(() => answers.shift() ?? { status: 204 }, { clock, publishHookTimeout: 2000 });
    for (let i = 0; i < 4; i++) {
      expect(await send(ann, 'chat:1', 'said', { i })).toMatchObject({ type: 'error', code: 'publish_hook_failed', channel: 'chat:1' });
    }
    const id = ++ids;
    ann.send({ type: 'publish', channel: 'chat:1', event: 'said', payload: { i: 4 }, id });
    await eventually(() => (hook.received.length === 5 ? true : undefined), 'the fifth hook request');
    clock.advance(2000);
    expect(await ann.nextWhere((f) => f['id'] === id, 'the answer')).toMatchObject({ type: 'error', code: 'publish_hook_failed' });
    await drain(reader);
    expect(reader.messages('chat:1')).toHaveLength(0);
    expect((await api(gw.http, 'GET', '/metrics')).body).toMatch(/herald_publish_hook_requests_total\{result="failed",node="[^"]+"\} 5/);
  });

  it('allows unchanged on a failed hook when publishHookFailure is allow', async () => {
    const { reader, ann } = await withHook(() => ({ status: 503 }), { publishHookFailure: 'allow' });
    expect(await send(ann, 'chat:1', 'said', { n: 1 })).toMatchObject({ type: 'published', seq: 1 });
    expect((await reader.waitMessages('chat:1', 1))[0]).toMatchObject({ type: 'said', payload: { n: 1 } });
  });

  it('refuses to start with a hook and no signing secret, or a secret that is not one', async () => {
    await expect(startGateway({ publishHookUrl: 'http://127.0.0.1:1/hook' })).rejects.toThrow(/publishHookSecret: the publish hook needs a signing secret/);
    await expect(startGateway({ publishHookUrl: 'http://127.0.0.1:1/hook', publishHookSecret: 'plain' })).rejects.toThrow(
      /publishHookSecret: must start with whsec_/,
    );
    await expect(startGateway({ publishHookUrl: 'ftp://x', publishHookSecret: HOOK_SECRET })).rejects.toThrow(/publishHookUrl: must be an http/);
  });
});

describe('client publish on Redis', () => {
  it('reaches subscribers on another node, and a key is published once across nodes', async () => {
    const prefix = testPrefix();
    const a = await startGateway({ engine: createRedisEngine({ url: REDIS_URL, prefix, logger: silentLogger() }) });
    const b = await startGateway({ engine: createRedisEngine({ url: REDIS_URL, prefix, logger: silentLogger() }) });
    const reader = await TestClient.connect(b.ws, { subs: { 'chat:1': {} } });
    const onA = await publisher(a.ws, 'ann', ['chat:*']);
    const onB = await publisher(b.ws, 'ann', ['chat:*']);
    const first = await send(onA, 'chat:1', 'm', { v: 1 }, { key: 'resend-me' });
    expect(await send(onB, 'chat:1', 'm', { v: 1 }, { key: 'resend-me' })).toMatchObject({ seq: first['seq'], duplicate: true });
    expect(await send(onA, 'chat:1', 'm', { v: 2 }, { echo: false })).toMatchObject({ seq: 2 });
    const got = await reader.client.waitMessages('chat:1', 2);
    expect(got.map((m) => m['payload'])).toEqual([{ v: 1 }, { v: 2 }]);
  });
});
