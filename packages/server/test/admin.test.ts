// The admin dashboard's server side (option `admin`): the page route and its headers, POST /api/admin/token
// and what an admin token may do, the once-a-second snapshots on the admin channel, GET /api/stats and
// GET /api/channels, and the dashboard's pure model. packages/client/test/admin-browser.test.ts drives the
// page in Chromium.
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DashboardModel, NODE_TIMEOUT_MS, type NodeSnapshot } from '../admin/model.js';
import { createRedisEngine } from '../src/engine/redis/engine.js';
import { ADMIN_CHANNEL, ADMIN_TOKEN_KID, ADMIN_TOKEN_TTL_MS, mintAdminToken } from '../src/auth/admin-token.js';
import { OptionsError, resolveOptions } from '../src/gateway/options.js';
import { adminBuildIsStale, buildAdmin } from '../scripts/build-admin.mjs';
import { API_KEY, api, eventually, JWT_SECRET, publish, startGateway, TestClient, token } from './helpers.js';
import { cleanupRun, REDIS_URL, testPrefix } from './redis-helpers.js';

afterAll(cleanupRun);

beforeAll(async () => {
  // The page route serves dist/admin; build it when missing or older than its sources.
  if (adminBuildIsStale()) await buildAdmin();
}, 60_000);

async function adminToken(base: string, key: string | null = API_KEY): Promise<{ status: number; body: any }> {
  return api(base, 'POST', '/api/admin/token', undefined, { key });
}

describe('admin option', () => {
  it('is off by default: /admin and /api/admin/token answer 404', async () => {
    const gw = await startGateway();
    expect(gw.gateway.options.admin).toBe(false);
    for (const path of ['/admin', '/admin/', '/admin/admin.js']) {
      const r = await api(gw.http, 'GET', path, undefined, { key: null });
      expect(r.status, path).toBe(404);
      expect(r.body.error.code).toBe('not_found');
    }
    expect((await adminToken(gw.http)).status).toBe(404);
  });

  it('needs an API key', () => {
    const err = (() => {
      try {
        resolveOptions({ admin: true });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(OptionsError);
    expect((err as OptionsError).option).toBe('admin');
    expect(resolveOptions({ admin: true, apiKeys: [API_KEY] }).admin).toBe(true);
  });

  it('rejects WebSocket paths that would shadow /metrics or /admin', () => {
    for (const wsPaths of [['/metrics'], ['/admin'], ['/admin/ws']]) {
      expect(() => resolveOptions({ wsPaths })).toThrow(OptionsError);
    }
  });
});

describe('GET /admin', () => {
  it('serves the page, its script and stylesheet without a key, with a strict CSP and no caching', async () => {
    const gw = await startGateway({ admin: true });
    for (const [path, type] of [
      ['/admin', 'text/html; charset=utf-8'],
      ['/admin/', 'text/html; charset=utf-8'],
      ['/admin/admin.js', 'text/javascript; charset=utf-8'],
      ['/admin/admin.css', 'text/css; charset=utf-8'],
    ] as const) {
      const res = await fetch(gw.http + path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      const body = await res.text();
      // The page never carries a key: it asks for one.
      expect(body).not.toContain(API_KEY);
      if (type.startsWith('text/html')) {
        expect(body).toContain('<script src="/admin/admin.js"></script>');
        expect(body).not.toMatch(/<script>(?!<)/);
      }
    }
    expect((await fetch(`${gw.http}/admin/nope.js`)).status).toBe(404);
    expect((await fetch(`${gw.http}/admin`, { method: 'POST' })).status).toBe(404);
    // /api/* still needs the key.
    expect((await api(gw.http, 'GET', '/api/stats', undefined, { key: null })).status).toBe(401);
  });
});

describe('POST /api/admin/token', () => {
  it('needs the API key and mints a short-lived token for the admin channel', async () => {
    const gw = await startGateway({ admin: true });
    expect((await adminToken(gw.http, null)).status).toBe(401);
    expect((await adminToken(gw.http, 'wrong_key_0123456789abc')).status).toBe(401);
    expect((await api(gw.http, 'GET', '/api/admin/token')).status).toBe(405);
    expect((await api(gw.http, 'POST', '/api/admin/other')).status).toBe(404);
    const r = await adminToken(gw.http);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ channel: ADMIN_CHANNEL, type: 'stats', wsPath: '/ws', node: gw.gateway.nodeId });
    expect(r.body.expiresAt).toBe(Math.floor((gw.clock.now() + ADMIN_TOKEN_TTL_MS) / 1000) * 1000);
    expect(typeof r.body.token).toBe('string');
  });

  it('works without a JWT secret: the token connects (no user) and may subscribe to the admin channel and nothing private else', async () => {
    const gw = await startGateway({ admin: true, jwtSecrets: [], allowAnonymous: false });
    const { body } = await adminToken(gw.http);
    const { client, connected } = await TestClient.connect(gw.ws, { token: body.token, subs: { [ADMIN_CHANNEL]: {} } });
    expect(connected.user).toBeNull();
    expect((connected.subs as Record<string, unknown>)[ADMIN_CHANNEL]).toMatchObject({ recovered: false });
    client.send({ type: 'subscribe', channel: 'private:other', id: 1 });
    expect(await client.nextOf('error')).toMatchObject({ code: 'forbidden', id: 1 });
    // Public channels stay open to it like to any connection.
    client.send({ type: 'subscribe', channel: 'news', id: 2 });
    expect(await client.nextOf('subscribed')).toMatchObject({ channel: 'news', id: 2 });
  });

  it('refuses admin tokens when the dashboard is off, signed with another key, or expired (4401 once connected)', async () => {
    const off = await startGateway();
    const { token: t } = await mintAdminToken(API_KEY, off.clock.now());
    const c1 = await TestClient.open(off.ws);
    c1.send({ type: 'connect', token: t });
    expect((await c1.closed()).code).toBe(4501);

    // Pings far apart: the clock jumps past the token's expiry without the connection going idle first.
    const gw = await startGateway({ admin: true, pingInterval: 3_600_000, idleTimeout: 7_200_000 });
    const forged = await mintAdminToken('another_key_0123456789', gw.clock.now());
    const c2 = await TestClient.open(gw.ws);
    c2.send({ type: 'connect', token: forged.token });
    expect((await c2.closed()).code).toBe(4501);

    // A JWT-secret token that claims the admin kid is not an admin token, and not a valid connection token either.
    const claimed = await new SignJWT({ sub: 'x', channels: ['private:*'] })
      .setProtectedHeader({ alg: 'HS256', kid: ADMIN_TOKEN_KID })
      .sign(new TextEncoder().encode(JWT_SECRET));
    const c3 = await TestClient.open(gw.ws);
    c3.send({ type: 'connect', token: claimed });
    expect((await c3.closed()).code).toBe(4501);

    const { body } = await adminToken(gw.http);
    const { client } = await TestClient.connect(gw.ws, { token: body.token, subs: { [ADMIN_CHANNEL]: {} } });
    gw.clock.advance(ADMIN_TOKEN_TTL_MS + 1000);
    expect((await client.closed()).code).toBe(4401);
    const late = await TestClient.open(gw.ws);
    late.send({ type: 'connect', token: body.token });
    expect((await late.closed()).code).toBe(4401);
    expect(gw.gateway.stats.authFailures.get('token_expired')).toBe(1);
  });

  it('does not replace the ordinary tokens: user tokens still work with the dashboard on', async () => {
    const gw = await startGateway({ admin: true });
    const { connected } = await TestClient.connect(gw.ws, { token: await token({ sub: '7' }) });
    expect(connected.user).toBe('7');
  });
});

describe('the admin channel', () => {
  it('carries one snapshot per second while somebody watches, and none otherwise', async () => {
    const gw = await startGateway({ admin: true });
    gw.clock.advance(3000);
    await new Promise((r) => setImmediate(r));
    expect((await api(gw.http, 'GET', `/api/channels/${encodeURIComponent(ADMIN_CHANNEL)}`)).body.seq).toBe(0);

    const { body } = await adminToken(gw.http);
    const { client } = await TestClient.connect(gw.ws, { token: body.token, subs: { [ADMIN_CHANNEL]: {} } });
    const app = await TestClient.connect(gw.ws, { subs: { news: {}, sport: {} } });
    await TestClient.connect(gw.ws, { subs: { news: {} } });
    await publish(gw.http, { channel: 'news', type: 't', payload: {} });
    await publish(gw.http, { channel: 'news', type: 't', payload: {} });
    await app.client.waitMessages('news', 2);
    gw.clock.advance(1000);
    const [m1] = await client.waitMessages(ADMIN_CHANNEL, 1);
    expect(m1?.type).toBe('stats');
    const snap = m1?.payload as unknown as NodeSnapshot;
    expect(snap).toMatchObject({
      node: gw.gateway.nodeId,
      engine: 'memory',
      time: gw.clock.now(),
      connections: 3,
      channels: 3,
      subscriptions: 4,
      published: 2,
      delivered: 4,
      topChannels: [
        { channel: 'news', subscribers: 2 },
        { channel: ADMIN_CHANNEL, subscribers: 1 },
        { channel: 'sport', subscribers: 1 },
      ],
    });
    // Four seconds of ticks: the last second saw the two publishes.
    expect(snap.sample).toMatchObject({ t: gw.clock.now(), published: 2, delivered: 4, connections: 3 });
    gw.clock.advance(1000);
    const got = await client.waitMessages(ADMIN_CHANNEL, 2);
    expect((got[1]?.payload as unknown as NodeSnapshot).sample).toMatchObject({ published: 0, delivered: 0 });
    // Snapshots are not application messages: neither published nor delivered.
    expect(gw.gateway.stats.published).toBe(2);
    expect(gw.gateway.stats.delivered).toBe(4);
  });
});

describe('the admin channel in a cluster (Redis engine)', () => {
  it("a dashboard connected to one node gets every node's snapshots, with a token minted by another node", async () => {
    const prefix = testPrefix();
    const a = await startGateway({ admin: true, engine: createRedisEngine({ url: REDIS_URL, prefix, nodeId: 'node-a' }) });
    const b = await startGateway({ admin: true, engine: createRedisEngine({ url: REDIS_URL, prefix, nodeId: 'node-b' }) });
    expect([a.gateway.nodeId, b.gateway.nodeId]).toEqual(['node-a', 'node-b']);
    const { body } = await adminToken(a.http);
    const { client } = await TestClient.connect(b.ws, { token: body.token, subs: { [ADMIN_CHANNEL]: {} } });
    await TestClient.connect(a.ws, { subs: { news: {} } });
    // Each node sees the watcher through presence, and publishes on its own tick (the clocks are manual:
    // every poll is one more second on both nodes).
    const nodes = new Set<string>();
    await eventually(() => {
      a.clock.advance(1000);
      b.clock.advance(1000);
      for (const m of client.messages(ADMIN_CHANNEL)) nodes.add((m.payload as unknown as NodeSnapshot).node);
      return nodes.size === 2 ? true : undefined;
    }, 'snapshots from both nodes');
    const fromA = client
      .messages(ADMIN_CHANNEL)
      .map((m) => m.payload as unknown as NodeSnapshot)
      .filter((p) => p.node === 'node-a');
    expect(fromA.at(-1)).toMatchObject({ engine: 'redis', connections: 1, topChannels: [{ channel: 'news', subscribers: 1 }] });
    // seq has no gaps: one stream, whichever node published.
    const seqs = client.messages(ADMIN_CHANNEL).map((m) => m.seq);
    expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] as number) + i));
  });
});

describe('GET /api/stats and GET /api/channels', () => {
  it('/api/stats returns the snapshot, with the per-second series on request', async () => {
    const gw = await startGateway();
    await TestClient.connect(gw.ws, { subs: { a: {} } });
    for (let i = 0; i < 3; i++) {
      await publish(gw.http, { channel: 'a', type: 't', payload: {} });
      gw.clock.advance(1000);
    }
    const plain = (await api(gw.http, 'GET', '/api/stats')).body;
    expect(plain.series).toBeUndefined();
    expect(plain).toMatchObject({
      connections: 1,
      channels: 1,
      subscriptions: 1,
      published: 3,
      delivered: 3,
      rateWindow: 3,
      rates: { published: 1, delivered: 1 },
    });
    const { series } = (await api(gw.http, 'GET', '/api/stats?series=true')).body;
    expect(series.map((p: any) => [p.published, p.delivered, p.connections])).toEqual([
      [1, 1, 1],
      [1, 1, 1],
      [1, 1, 1],
    ]);
  });

  it('/api/channels lists the channels with subscribers on this node, most first, with prefix and limit', async () => {
    const gw = await startGateway();
    expect((await api(gw.http, 'GET', '/api/channels')).body).toEqual({ node: gw.gateway.nodeId, total: 0, channels: [] });
    await TestClient.connect(gw.ws, { subs: { 'room:1': {}, 'room:2': {}, lobby: {} } });
    await TestClient.connect(gw.ws, { subs: { 'room:2': {} } });
    await TestClient.connect(gw.ws, { token: await token({ sub: '9' }), subs: { 'room:2': {} } });
    expect((await api(gw.http, 'GET', '/api/channels')).body).toEqual({
      node: gw.gateway.nodeId,
      total: 4,
      channels: [
        { channel: 'room:2', subscribers: 3 },
        { channel: 'lobby', subscribers: 1 },
        { channel: 'room:1', subscribers: 1 },
        { channel: 'user:9', subscribers: 1 },
      ],
    });
    expect((await api(gw.http, 'GET', '/api/channels?prefix=room:&limit=1')).body).toEqual({
      node: gw.gateway.nodeId,
      total: 2,
      channels: [{ channel: 'room:2', subscribers: 3 }],
    });
    expect((await api(gw.http, 'GET', '/api/channels?limit=0')).status).toBe(400);
    expect((await api(gw.http, 'GET', '/api/channels?limit=0')).body.error).toMatchObject({ code: 'invalid_field', field: 'limit' });
    // The single-channel form is unchanged; an empty segment is still 404.
    expect((await api(gw.http, 'GET', '/api/channels/room:2')).body).toMatchObject({ channel: 'room:2', subscribers: 3 });
    expect((await api(gw.http, 'GET', '/api/channels/')).status).toBe(404);
    expect((await api(gw.http, 'GET', '/api/channels', undefined, { key: null })).status).toBe(401);
  });
});

describe('DashboardModel', () => {
  const snap = (node: string, over: Partial<NodeSnapshot> = {}): NodeSnapshot => ({
    node,
    engine: 'redis',
    version: '0.1.0',
    time: 10_000,
    uptime: 10,
    connections: 2,
    protocols: { native: 2 },
    channels: 1,
    subscriptions: 2,
    published: 5,
    delivered: 9,
    dropped: { slow_consumer: 1 },
    droppedTotal: 1,
    connectionsOpened: 3,
    connectionsClosed: 1,
    recovered: 0,
    notRecovered: 0,
    ingested: 0,
    ingestDeadLetters: 0,
    rates: { published: 1, delivered: 2, dropped: 0 },
    rateWindow: 10,
    sample: { t: 10_000, connections: 2, published: 1, delivered: 2, dropped: 0 },
    topChannels: [{ channel: 'news', subscribers: 2 }],
    ...over,
  });

  it('merges the nodes: sums, distinct channels, drops by reason, one chart point per second', () => {
    const m = new DashboardModel();
    m.add(snap('a'), 0);
    m.add(snap('b', { dropped: { slow_consumer: 2, no_such_client: 4 }, droppedTotal: 6, topChannels: [{ channel: 'news', subscribers: 1 }] }), 0);
    const v = m.view(1000);
    expect(v.nodes.map((n) => n.node)).toEqual(['a', 'b']);
    expect(v).toMatchObject({
      connections: 4,
      channels: 1,
      subscriptions: 4,
      rates: { in: 2, out: 4, dropped: 0 },
      totals: { published: 10, delivered: 18, dropped: 7 },
    });
    expect(v.drops).toEqual([
      { reason: 'no_such_client', count: 4 },
      { reason: 'slow_consumer', count: 3 },
    ]);
    expect(v.channelList).toEqual([{ channel: 'news', subscribers: 3 }]);
    expect(v.chart).toEqual([{ second: 10, in: 2, out: 4, dropped: 0 }]);
  });

  it('shows the one webhook queue of every protocol: the largest measurement of the cluster-wide queue, the sum of deliveries', () => {
    const m = new DashboardModel();
    const hooks = (queued: number, held: number, sent: number) => ({
      webhooks: { queued, held, dead: 1, queueAge: queued, sent, failed: 1, retried: 1, deadLettered: 0 },
    });
    m.add(snap('a', hooks(3, 2, 10)), 0);
    m.add(snap('b', hooks(5, 1, 4)), 0);
    // A node of a version before the hold-backs moved into the queue says nothing of them.
    m.add(snap('c', { webhooks: { queued: 4, dead: 1, queueAge: 0, sent: 1, failed: 0, retried: 0, deadLettered: 0 } }), 0);
    expect(m.view(1000).webhooks).toEqual({ queued: 5, held: 2, dead: 1, queueAge: 5, sent: 15, failed: 2 });
  });

  it('drops silent nodes, ignores stale snapshots, and seeds the chart from a series', () => {
    const m = new DashboardModel();
    m.seed('a', [
      { t: 8000, connections: 1, published: 3, delivered: 3, dropped: 0 },
      { t: 9000, connections: 1, published: 4, delivered: 4, dropped: 1 },
    ]);
    m.add(snap('a'), 0);
    m.add(snap('a', { time: 5000, connections: 99 }), 10);
    expect(m.view(10).connections).toBe(2);
    expect(m.view(10).chart.map((p) => p.second)).toEqual([8, 9, 10]);
    expect(m.view(NODE_TIMEOUT_MS + 1).nodes).toEqual([]);
    // A node that lists fewer channels than it has: the channel count is the sum.
    const big = new DashboardModel();
    big.add(snap('a', { channels: 50 }), 0);
    expect(big.view(0).channels).toBe(50);
  });
});
