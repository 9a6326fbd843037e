// Operations: /metrics (auth, exact values after a scripted scenario, every metric documented), /readyz
// (JSON detail; fails when the Redis engine loses Redis, behind a fault-injecting TCP proxy), and the logs
// (each close, auth failure and drop logged once with its ids, rate limited, request ids on API calls).
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisEngine } from '../src/engine/redis/engine.js';
import type { Logger } from '../src/util/logger.js';
import { readiness } from '../src/observability/health.js';
import { LatencySampler } from '../src/delivery/latency.js';
import { LogLimiter } from '../src/util/log-limiter.js';
import { API_KEY, api, eventually, onCleanup, publish, startGateway, TestClient, token } from './helpers.js';
import { cleanupRun, REDIS_URL, testPrefix } from './redis-helpers.js';
import { TcpProxy } from './tcp-proxy.js';

afterAll(cleanupRun);

const METRICS_TOKEN = 'metrics_token_0123456789';

/** GET /metrics with `key` (the API key unless given; null for none). */
async function scrape(base: string, key: string | null = API_KEY): Promise<{ status: number; text: string; type: string | null }> {
  const res = await fetch(`${base}/metrics`, { headers: key === null ? {} : { authorization: `Bearer ${key}` } });
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') };
}

/**
 * Parses the text format into `name{label="v",...}` (labels sorted, the `node` label left out) -> value,
 * checking on the way that every series carries `node`.
 */
function parse(text: string, node: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-z_:][a-z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable line: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => [k as string, v as string] as const);
    expect(labels.find(([k]) => k === 'node')?.[1], `node label of ${line}`).toBe(node);
    const rest = labels
      .filter(([k]) => k !== 'node')
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}="${v}"`);
    out.set(rest.length > 0 ? `${m[1]}{${rest.join(',')}}` : (m[1] as string), Number(m[3]));
  }
  return out;
}

/** Every series of `metrics` whose name starts with `prefix`, as an object (easy to compare exactly). */
function pick(metrics: Map<string, number>, ...prefixes: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of metrics) if (prefixes.some((p) => k === p || k.startsWith(`${p}{`))) out[k] = v;
  return out;
}

/** A pino logger writing JSON lines into an array. */
function captureLogger(level = 'debug'): { logger: Logger; lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, any>);
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

describe('GET /metrics', () => {
  it('answers 401 (JSON error, WWW-Authenticate) without credentials or with a wrong one, 200 with the API key or the metrics token', async () => {
    const gw = await startGateway({ metricsTokens: [METRICS_TOKEN] });
    for (const key of [null, 'wrong_key_0123456789abc']) {
      const r = await api(gw.http, 'GET', '/metrics', undefined, { key });
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('unauthorized');
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
      expect(r.headers.get('x-request-id')).toBeTruthy();
    }
    for (const key of [API_KEY, METRICS_TOKEN]) {
      const r = await scrape(gw.http, key);
      expect(r.status).toBe(200);
      expect(r.type).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(r.text).toContain('# TYPE herald_connections gauge');
    }
    // The metrics token reads metrics only: it is not an API key.
    expect((await api(gw.http, 'GET', '/api/stats', undefined, { key: METRICS_TOKEN })).status).toBe(401);
    expect((await api(gw.http, 'POST', '/metrics', {}, { key: API_KEY })).status).toBe(405);
    const m = parse((await scrape(gw.http)).text, gw.gateway.nodeId);
    expect(pick(m, 'herald_auth_failures_total')).toMatchObject({
      'herald_auth_failures_total{reason="metrics"}': 2,
      'herald_auth_failures_total{reason="api_key"}': 1,
    });
  });

  it('without a metrics token, only the API key reads it', async () => {
    const gw = await startGateway();
    expect((await scrape(gw.http, METRICS_TOKEN)).status).toBe(401);
    expect((await scrape(gw.http, API_KEY)).status).toBe(200);
  });

  it('matches exactly after a scripted scenario: connect, subscribe, publish, recover, refuse, slow consumer, rate limit, missing client', async () => {
    const gw = await startGateway({ sendBufferLimit: 64 * 1024, clientRate: 1, clientBurst: 10 });
    const node = gw.gateway.nodeId;

    // A (anonymous) and B (user 42) on "news"; B also gets user:42.
    const a = await TestClient.connect(gw.ws, { subs: { news: {} } });
    const b = await TestClient.connect(gw.ws, { token: await token({ sub: '42' }), subs: { news: {} } });
    const epoch = (a.connected.subs as Record<string, { epoch: string }>)['news']?.epoch as string;
    await publish(gw.http, { channel: 'news', type: 't', payload: {} });
    await publish(gw.http, { channel: 'user:42', type: 't', payload: {} });
    await a.client.waitMessages('news', 1);
    await b.client.waitMessages('news', 1);
    await b.client.waitMessages('user:42', 1);
    expect((await publish(gw.http, { channel: 'user:43', type: 't', payload: {} })).results['user:43'].online).toBe(false);
    expect((await api(gw.http, 'POST', '/api/publish', { client: 'nope', type: 't', payload: {} })).status).toBe(404);
    expect((await api(gw.http, 'POST', '/api/publish', { channel: 'news', type: 't' })).status).toBe(400);
    expect((await api(gw.http, 'POST', '/api/publish', { channel: 'news', type: 't', payload: {} }, { key: 'wrong_key_0123456789abc' })).status).toBe(401);

    // D recovers news from seq 0; E asks from seq 1 with a foreign epoch and is told to refetch.
    const d = await TestClient.connect(gw.ws, { subs: { news: { since: 0, epoch } } });
    expect((d.connected.subs as any).news.recovered).toBe(true);
    const e = await TestClient.connect(gw.ws, { subs: { news: { since: 1, epoch: 'not-the-epoch' } } });
    expect((e.connected.subs as any).news.recovered).toBe(false);

    // A refused subscription and a refused token.
    a.client.send({ type: 'subscribe', channel: 'private:secret', id: 1 });
    expect((await a.client.nextOf('error')).code).toBe('forbidden');
    const c = await TestClient.open(gw.ws);
    c.send({ type: 'connect', token: 'not.a.token' });
    expect((await c.closed()).code).toBe(4501);

    // R sends more frames than its burst: closed 4029.
    const r = await TestClient.connect(gw.ws);
    for (let i = 0; i < 10; i++) r.client.send({ type: 'ping' });
    expect((await r.client.closed()).code).toBe(4029);

    const before = parse((await scrape(gw.http)).text, node);
    expect(before.get('herald_delivery_latency_seconds_count'), 'sampled deliveries: news and user:42').toBe(2);
    expect(before.get('herald_delivery_latency_seconds_sum')).toBeGreaterThan(0);

    // S stops reading while "big" is published: closed 4008 once its send buffer passes 64 KiB.
    const s = await TestClient.connect(gw.ws, { subs: { big: {} } });
    (s.client.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const blob = 'x'.repeat(256 * 1024);
    let n = 0;
    while (!gw.gateway.stats.closedByCode.get(4008) && n < 500) {
      await publish(gw.http, { channel: 'big', type: 't', payload: { blob } });
      n++;
    }
    expect(gw.gateway.stats.closedByCode.get(4008)).toBe(1);

    const m = parse((await scrape(gw.http)).text, node);
    expect(
      pick(
        m,
        'herald_connections',
        'herald_connections_opened_total',
        'herald_connections_closed_total',
        'herald_subscriptions',
        'herald_channels',
        'herald_messages_published_total',
        'herald_messages_delivered_total',
        'herald_messages_dropped_total',
        'herald_recoveries_total',
        'herald_auth_failures_total',
        'herald_engine_errors_total',
        'herald_engine_up',
        'herald_ingest_messages_total',
        'herald_ingest_dead_letters_total',
        'herald_info',
      ),
    ).toEqual({
      'herald_info{engine="memory",version="0.1.0"}': 1,
      // A, B, D, E (C refused, R rate limited, S slow).
      herald_connections: 4,
      herald_connections_opened_total: 7,
      'herald_connections_closed_total{code="4501"}': 1,
      'herald_connections_closed_total{code="4029"}': 1,
      'herald_connections_closed_total{code="4008"}': 1,
      // news x4 (A, B, D, E) + user:42 (B).
      herald_subscriptions: 5,
      herald_channels: 2,
      herald_messages_published_total: 3 + n,
      // news to A and B, user:42 to B, and every "big" to S (recovered messages are not deliveries).
      herald_messages_delivered_total: 3 + n,
      'herald_messages_dropped_total{reason="no_such_client"}': 1,
      'herald_messages_dropped_total{reason="user_offline"}': 1,
      'herald_messages_dropped_total{reason="user_not_subscribed"}': 0,
      'herald_messages_dropped_total{reason="slow_consumer"}': 1,
      'herald_messages_dropped_total{reason="rate_limited"}': 1,
      'herald_messages_dropped_total{reason="invalid"}': 1,
      'herald_messages_dropped_total{reason="not_authorized"}': 1,
      'herald_messages_dropped_total{reason="engine_unavailable"}': 0,
      'herald_messages_dropped_total{reason="shutting_down"}': 0,
      'herald_messages_dropped_total{reason="inbox_full"}': 0,
      'herald_recoveries_total{result="recovered"}': 1,
      'herald_recoveries_total{result="not_recovered"}': 1,
      'herald_auth_failures_total{reason="api_key"}': 1,
      'herald_auth_failures_total{reason="metrics"}': 0,
      'herald_auth_failures_total{reason="token_missing"}': 0,
      'herald_auth_failures_total{reason="token_invalid"}': 1,
      'herald_auth_failures_total{reason="token_expired"}': 0,
      'herald_auth_failures_total{reason="token_early"}': 0,
      'herald_auth_failures_total{reason="keys_unavailable"}': 0,
      'herald_auth_failures_total{reason="subscribe_forbidden"}': 1,
      'herald_auth_failures_total{reason="publish_forbidden"}': 0,
      'herald_engine_errors_total{operation="check"}': 0,
      'herald_engine_errors_total{operation="presence"}': 0,
      'herald_engine_errors_total{operation="api"}': 0,
      'herald_engine_errors_total{operation="subscribe"}': 0,
      'herald_engine_errors_total{operation="admin"}': 0,
      'herald_engine_errors_total{operation="inbox"}': 0,
      'herald_engine_errors_total{operation="client_publish"}': 0,
      'herald_engine_up{engine="memory"}': 1,
      herald_ingest_messages_total: 0,
      herald_ingest_dead_letters_total: 0,
    });
    // History: the frames kept, and the buffers holding them (at least as many bytes, at most a few times more).
    const historyBytes = m.get('herald_history_bytes') ?? 0;
    expect(historyBytes).toBeGreaterThan(0);
    expect(m.get('herald_history_buffer_bytes')).toBeGreaterThanOrEqual(historyBytes);
    expect(m.get('herald_history_buffer_bytes')).toBeLessThanOrEqual(4 * historyBytes + 3 * 256);
    // The probe at start; nothing else checked the engine.
    expect(m.get('herald_engine_roundtrip_seconds_count{engine="memory"}')).toBe(1);
    expect(m.get('herald_delivery_latency_seconds_count')).toBeGreaterThan(2);
    expect(m.get('herald_delivery_latency_seconds_count')).toBeLessThanOrEqual(2 + n);
    expect(m.get('herald_delivery_latency_seconds_bucket{le="+Inf"}')).toBe(m.get('herald_delivery_latency_seconds_count'));

    // /api/stats says the same.
    const stats = (await api(gw.http, 'GET', '/api/stats')).body;
    expect(stats).toMatchObject({
      node,
      engine: 'memory',
      connections: 4,
      channels: 2,
      subscriptions: 5,
      published: 3 + n,
      delivered: 3 + n,
      droppedTotal: 6,
      connectionsOpened: 7,
      connectionsClosed: 3,
      recovered: 1,
      notRecovered: 1,
      dropped: { no_such_client: 1, user_offline: 1, slow_consumer: 1, rate_limited: 1, invalid: 1, not_authorized: 1 },
      topChannels: [
        { channel: 'news', subscribers: 4 },
        { channel: 'user:42', subscribers: 1 },
      ],
    });
  });
});

describe('herald_connections_closed_total', () => {
  it('counts the inbox messages and receipts the memory engine keeps (herald_inbox_messages, herald_inbox_receipts)', async () => {
    const gw = await startGateway();
    const node = gw.gateway.nodeId;
    const inbox = async (): Promise<Record<string, number>> =>
      pick(parse((await scrape(gw.http)).text, node), 'herald_inbox_messages', 'herald_inbox_receipts');
    expect(await inbox()).toEqual({ herald_inbox_messages: 0, herald_inbox_receipts: 0 });
    for (let i = 0; i < 3; i++) await publish(gw.http, { user: '7', type: 't', payload: { i }, inbox: true, receipt: true });
    await publish(gw.http, { user: '8', type: 't', payload: {}, inbox: true });
    expect(await inbox()).toEqual({ herald_inbox_messages: 4, herald_inbox_receipts: 3 });
    // Removed messages are gone; their receipts stay until the messages' expiry.
    expect((await api(gw.http, 'DELETE', '/api/users/7/inbox')).body).toMatchObject({ removed: 3 });
    expect(await inbox()).toEqual({ herald_inbox_messages: 1, herald_inbox_receipts: 3 });
  });

  it('counts the closes by clients with codes of the application range as one series, the server’s own codes by code', async () => {
    const gw = await startGateway({ clientRate: 1, clientBurst: 1 });
    const node = gw.gateway.nodeId;
    for (let code = 3000; code < 3010; code++) {
      const { client } = await TestClient.connect(gw.ws);
      client.ws.close(code + 1000 * (code % 2), 'bye');
      await client.closed();
    }
    const { client } = await TestClient.connect(gw.ws);
    client.ws.close(1000);
    await client.closed();
    // The server closes one itself with one of its own codes (4029, past its rate).
    const r = await TestClient.connect(gw.ws);
    for (let i = 0; i < 5; i++) r.client.send({ type: 'ping' });
    expect((await r.client.closed()).code).toBe(4029);
    // The gateway counts a close when its socket is gone, which the client may see first.
    await eventually(() => (gw.gateway.stats.connectionsClosed === 12 ? true : undefined), 'the twelve closes counted');
    const m = parse((await scrape(gw.http)).text, node);
    expect(pick(m, 'herald_connections_closed_total')).toEqual({
      'herald_connections_closed_total{code="3000-4999"}': 10,
      'herald_connections_closed_total{code="1000"}': 1,
      'herald_connections_closed_total{code="4029"}': 1,
    });
  });
});

describe('docs/metrics.md', () => {
  it('lists exactly the registered metrics, each with its type', async () => {
    const gw = await startGateway();
    const registered = gw.gateway.metrics.registry
      .getMetricsAsArray()
      .filter((m) => m.name.startsWith('herald_'))
      .map((m) => `${m.name} ${(m as unknown as { type: string }).type}`);
    const md = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
    const start = md.indexOf('\n## Metrics\n');
    expect(start, 'a "## Metrics" section').toBeGreaterThan(0);
    const section = md.slice(start + 1).split(/\n## /)[0] as string;
    const documented = [...section.matchAll(/^\|\s*`(herald_[a-z_]+)`\s*\|\s*(counter|gauge|histogram)\s*\|/gm)].map(([, name, type]) => `${name} ${type}`);
    expect(documented.sort()).toEqual(registered.sort());
  });

  it("lists the process's own series (prom-client's defaults), each with its type, and /metrics shows them with the node label", async () => {
    const gw = await startGateway();
    const registered = gw.gateway.metrics.registry
      .getMetricsAsArray()
      .filter((m) => !m.name.startsWith('herald_'))
      .map((m) => `${m.name} ${(m as unknown as { type: string }).type}`);
    expect(registered).toContain('process_resident_memory_bytes gauge');
    const md = readFileSync(new URL('../../../docs/metrics.md', import.meta.url), 'utf8');
    const start = md.indexOf("\n### The process's own series\n");
    expect(start, 'a "### The process\'s own series" section').toBeGreaterThan(0);
    const section = md.slice(start + 1).split(/\n##+ /)[0] as string;
    const documented = [...section.matchAll(/^\|([^|]*)\|\s*(counter|gauge|histogram)\s*\|/gm)].flatMap(([, names, type]) =>
      [...(names as string).matchAll(/`((?:process|nodejs)_[a-z0-9_]+)`/g)].map(([, name]) => `${name} ${type}`),
    );
    expect(registered.filter((r) => !documented.includes(r))).toEqual([]);
    // prom-client reads these from /proc: registered on Linux only.
    const linuxOnly = ['process_virtual_memory_bytes gauge', 'process_heap_bytes gauge', 'process_max_fds gauge'];
    expect(documented.filter((d) => !registered.includes(d) && (process.platform === 'linux' || !linuxOnly.includes(d)))).toEqual([]);
    const text = (await api(gw.http, 'GET', '/metrics')).body as string;
    expect(text).toMatch(new RegExp(`^process_resident_memory_bytes\\{node="${gw.gateway.nodeId}"\\} [1-9]\\d+$`, 'm'));
    expect(text).toMatch(/^nodejs_heap_size_used_bytes\{node="[^"]+"\} [1-9]\d+$/m);
  });

  it("shares one collector of the process's series between the gateways of one process (each collector watches GC and the event loop for good)", async () => {
    const a = await startGateway();
    const b = await startGateway();
    const metricOf = (gw: typeof a) => gw.gateway.metrics.registry.getSingleMetric('nodejs_gc_duration_seconds');
    expect(metricOf(a)).toBeDefined();
    expect(metricOf(a)).toBe(metricOf(b));
  });
});

describe('GET /healthz and /readyz', () => {
  it('/readyz says ready with the engine check; /healthz only that the process is alive', async () => {
    const gw = await startGateway();
    const ok = await api(gw.http, 'GET', '/readyz', undefined, { key: null });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'ready', engine: 'memory', node: gw.gateway.nodeId, checks: { engine: { ok: true }, shutdown: { ok: true } } });
    expect(typeof ok.body.checks.engine.ms).toBe('number');
    expect((await api(gw.http, 'GET', '/healthz', undefined, { key: null })).body).toEqual({ status: 'ok' });
  });

  it('readiness() is 503 with the reason while shutting down, and when the engine check fails', async () => {
    const gw = await startGateway();
    const { engine, stats } = gw.gateway;
    const [status, body] = await readiness({ engine, node: 'n1', shuttingDown: true, stats, metrics: undefined });
    expect(status).toBe(503);
    expect(JSON.parse(body)).toEqual({
      status: 'not_ready',
      engine: 'memory',
      node: 'n1',
      reason: 'shutting down',
      checks: { shutdown: { ok: false, error: 'a graceful shutdown is in progress' } },
    });
    await engine.close();
    const [s2, b2] = await readiness({ engine, node: 'n1', shuttingDown: false, stats, metrics: gw.gateway.metrics });
    expect(s2).toBe(503);
    expect(JSON.parse(b2)).toMatchObject({
      status: 'not_ready',
      reason: 'memory engine closed',
      checks: { engine: { ok: false, code: 'engine_unavailable' }, shutdown: { ok: true } },
    });
    expect(stats.engineErrors.get('check')).toBe(1);
  });

  it('readiness() is 200 "degraded" with the reason when the engine serves only part of its channels (a cluster master down), counted in herald_engine_degraded', async () => {
    const gw = await startGateway();
    const { stats } = gw.gateway;
    const said = 'Redis Cluster: master 10.0.0.3:7001 did not answer PING; the channels of its slots fail, the others work';
    const engine = { ...gw.gateway.engine, check: () => Promise.resolve({ degraded: said }) };
    const [status, body] = await readiness({ engine, node: 'n1', shuttingDown: false, stats, metrics: gw.gateway.metrics });
    expect(status).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ status: 'degraded', reason: said, checks: { engine: { ok: true, degraded: said }, shutdown: { ok: true } } });
    const m = parse((await scrape(gw.http)).text, gw.gateway.nodeId);
    expect(m.get('herald_engine_degraded{engine="memory"}')).toBe(1);
    expect(m.get('herald_engine_up{engine="memory"}')).toBe(1);
    await readiness({ engine: gw.gateway.engine, node: 'n1', shuttingDown: false, stats, metrics: gw.gateway.metrics });
    expect(parse((await scrape(gw.http)).text, gw.gateway.nodeId).get('herald_engine_degraded{engine="memory"}')).toBe(0);
  });

  it('/readyz fails with a JSON reason when the Redis engine loses Redis, and recovers when Redis is back', async () => {
    const redisPort = Number(new URL(REDIS_URL).port || 6379);
    const proxy = await TcpProxy.start(redisPort, new URL(REDIS_URL).hostname);
    onCleanup(() => proxy.close());
    const url = new URL(REDIS_URL);
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    const engine = createRedisEngine({ url: url.toString(), prefix: testPrefix(), commandTimeout: 2000 });
    const gw = await startGateway({ engine });
    const ready = await api(gw.http, 'GET', '/readyz', undefined, { key: null });
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: 'ready', engine: 'redis', node: gw.gateway.nodeId, checks: { engine: { ok: true } } });

    // Redis hangs (no RST, no bytes): the PING gets no answer within a second.
    proxy.freeze();
    const hung = await api(gw.http, 'GET', '/readyz', undefined, { key: null });
    expect(hung.status).toBe(503);
    expect(hung.body).toMatchObject({
      status: 'not_ready',
      engine: 'redis',
      checks: { engine: { ok: false, code: 'engine_unavailable' }, shutdown: { ok: true } },
    });
    expect(hung.body.reason).toMatch(/PING/);
    proxy.unfreeze();
    await eventually(
      async () => ((await api(gw.http, 'GET', '/readyz', undefined, { key: null })).status === 200 ? true : undefined),
      'ready after the freeze',
      20_000,
    );

    // Redis goes away (connections cut, new ones refused).
    proxy.mode = 'reject';
    proxy.dropAll();
    const down = await eventually(async () => {
      const r = await api(gw.http, 'GET', '/readyz', undefined, { key: null });
      return r.status === 503 ? r : undefined;
    }, '503 from /readyz');
    expect(down.body).toMatchObject({ status: 'not_ready', engine: 'redis', checks: { engine: { ok: false, code: 'engine_unavailable' } } });
    expect(down.body.reason).toMatch(/Redis/);
    const m = parse((await scrape(gw.http)).text, gw.gateway.nodeId);
    expect(m.get('herald_engine_up{engine="redis"}')).toBe(0);
    expect(m.get('herald_engine_errors_total{operation="check"}')).toBeGreaterThanOrEqual(2);
    // A publish now is refused (503) and counted.
    expect((await api(gw.http, 'POST', '/api/publish', { channel: 'news', type: 't', payload: {} })).status).toBe(503);
    const after = parse((await scrape(gw.http)).text, gw.gateway.nodeId);
    expect(after.get('herald_messages_dropped_total{reason="engine_unavailable"}')).toBe(1);
    expect(after.get('herald_engine_errors_total{operation="api"}')).toBe(1);

    proxy.mode = 'forward';
    await eventually(async () => ((await api(gw.http, 'GET', '/readyz', undefined, { key: null })).status === 200 ? true : undefined), 'ready again', 20_000);
    expect(parse((await scrape(gw.http)).text, gw.gateway.nodeId).get('herald_engine_up{engine="redis"}')).toBe(1);
  });
});

describe('logs', () => {
  it('logs each close, auth failure and drop once with its ids, and API calls with their request id', async () => {
    const { logger, lines } = captureLogger();
    const gw = await startGateway({ logger });
    const a = await TestClient.connect(gw.ws, { token: await token({ sub: 'u1' }) });
    const client = a.connected.client as string;
    await api(gw.http, 'POST', '/api/disconnect', { user: 'u1', reason: 'bye' }, { headers: { 'x-request-id': 'req-disconnect' } });
    expect((await a.client.closed()).code).toBe(4509);
    await api(gw.http, 'POST', '/api/publish', { client: 'gone', type: 't', payload: {} }, { headers: { 'x-request-id': 'req-missing' } });
    await api(gw.http, 'GET', '/api/online?users=1', undefined, { key: 'wrong_key_0123456789abc', headers: { 'x-request-id': 'req-auth' } });
    const c = await TestClient.open(gw.ws);
    c.send({ type: 'connect', token: 'bad' });
    await c.closed();
    await eventually(() => (lines.some((l) => l.msg === 'connection closed' && l.code === 4501) ? true : undefined), 'the 4501 close line');

    const closes = lines.filter((l) => l.msg === 'connection closed');
    expect(closes.filter((l) => l.client === client)).toEqual([
      expect.objectContaining({ level: 30, client, user: 'u1', code: 4509, reason: 'bye', by: 'server' }),
    ]);
    expect(lines.filter((l) => l.msg === 'message dropped')).toEqual([
      expect.objectContaining({ level: 30, reason: 'no_such_client', client: 'gone', requestId: 'req-missing' }),
    ]);
    const auth = lines.filter((l) => l.msg === 'authentication failed');
    expect(auth).toEqual([
      expect.objectContaining({ level: 30, reason: 'api_key', requestId: 'req-auth', path: '/api/online', header: 'invalid' }),
      expect.objectContaining({ level: 30, reason: 'token_invalid' }),
    ]);
    expect(auth[1]?.client).toBeTruthy();
    // No secret reaches the log.
    expect(JSON.stringify(lines)).not.toContain('wrong_key_0123456789abc');
    // Every API call has a debug line with its request id.
    expect(lines.filter((l) => l.msg === 'http request').map((l) => [l.requestId, l.status])).toEqual(
      expect.arrayContaining([
        ['req-disconnect', 200],
        ['req-missing', 404],
        ['req-auth', 401],
      ]),
    );
  });

  it('rate limits lines of one kind and then says how many were suppressed', async () => {
    const { logger, lines } = captureLogger();
    const gw = await startGateway({ logger });
    for (let i = 0; i < 30; i++) await api(gw.http, 'POST', '/api/publish', { client: `c${i}`, type: 't', payload: {} });
    expect(lines.filter((l) => l.msg === 'message dropped' && l.reason === 'no_such_client')).toHaveLength(20);
    expect(gw.gateway.stats.dropped.get('no_such_client')).toBe(30);
    // The once-a-second timer writes the summary.
    gw.clock.advance(1000);
    expect(lines.filter((l) => l.suppressed !== undefined)).toEqual([expect.objectContaining({ kind: 'drop:no_such_client', suppressed: 10, level: 30 })]);
  });

  it('LogLimiter: a burst per kind, refilled over time, kinds independent, nothing at disabled levels', () => {
    const { logger, lines } = captureLogger('info');
    let now = 0;
    const limiter = new LogLimiter(logger, () => now, { burst: 3, perSecond: 2 });
    for (let i = 0; i < 5; i++) limiter.log('info', 'a', { i }, 'a line');
    limiter.log('info', 'b', {}, 'b line');
    expect(lines.map((l) => l.msg)).toEqual(['a line', 'a line', 'a line', 'b line']);
    now = 1000; // two more tokens
    for (let i = 0; i < 3; i++) limiter.log('info', 'a', { i }, 'a line');
    expect(lines.filter((l) => l.msg === 'a line')).toHaveLength(5);
    limiter.flush();
    expect(lines.at(-1)).toMatchObject({ kind: 'a', suppressed: 3, msg: '3 similar log lines suppressed' });
    limiter.flush();
    expect(lines.filter((l) => l.suppressed !== undefined)).toHaveLength(1);
    expect(limiter.log('debug', 'c', {}, 'c line')).toBe(false);
  });
});

describe('LatencySampler', () => {
  it('times one publish per channel in flight, observed when the hub has flushed it, not before', () => {
    const seen: number[] = [];
    const s = new LatencySampler();
    s.begin('x'); // not observed yet: ignored
    expect(s.size).toBe(0);
    s.observe = (v) => seen.push(v);
    s.begin('x');
    s.begin('x');
    s.begin('y');
    expect(s.size).toBe(2);
    s.delivered('x');
    s.delivered('x');
    s.cancel('y');
    expect(s.size).toBe(0);
    expect(seen).toHaveLength(0); // delivered to the hub, not yet written
    s.flushed();
    expect(seen).toHaveLength(1);
    s.flushed();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeGreaterThanOrEqual(0);
    expect(seen[0]).toBeLessThan(1);
  });

  it('samples at most 100 publishes in a burst', () => {
    const s = new LatencySampler();
    s.observe = () => undefined;
    for (let i = 0; i < 300; i++) s.begin(`c${i}`);
    expect(s.size).toBeLessThanOrEqual(101);
    expect(s.size).toBeGreaterThanOrEqual(100);
  });
});
