/**
 * WebSocket connection limits (issue 15), on either transport (HERALD_TEST_TRANSPORT): in all (503
 * too_many_connections), per client address (429 too_many_connections_per_ip) and in connect rate (429
 * connect_rate_limited), each with Retry-After and counted by reason, the client address read from
 * forwarding headers only behind trusted proxies; `/healthz` and `/metrics` answer during the flood; close
 * 1013 when a limit is found once the handshake is done. Loopback only, bounded counts.
 */
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ConnectionLimits } from '../src/transport/limits.js';
import { TRANSPORTS } from '../src/transport/registry.js';
import type { Admission } from '../src/transport/types.js';
import { silentLogger } from '../src/util/logger.js';
import { API_KEY, eventually, ManualClock, onCleanup, startGateway, TEST_TRANSPORT, TestClient } from './helpers.js';
import { get, upgrade, type UpgradeResult } from './support/sockets.js';

/** One metric's value from the exposition text (0 when absent). */
async function metric(http: string, series: string): Promise<number> {
  const { status, body } = await get(`${http}/metrics`, { authorization: `Bearer ${API_KEY}` });
  expect(status).toBe(200);
  const line = body.split('\n').find((l) => l.startsWith(`${series} `) || l.startsWith(`${series.replace(/}$/, '')},node=`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

const healthy = async (http: string): Promise<void> => {
  expect((await get(`${http}/healthz`)).status).toBe(200);
};

describe('WebSocket connection limits', () => {
  const refused = (r: UpgradeResult, status: number, code: string): void => {
    expect(r.status, JSON.stringify(r.body)).toBe(status);
    expect(r.body?.error?.code).toBe(code);
    expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  };

  it('refuses over maxConnectionsPerIp with 429 and over maxConnections with 503, with Retry-After; /healthz and /metrics answer; slots come back', async () => {
    // Nobody trusted: by default loopback peers are (a reverse proxy on this machine) and not limited per address.
    const gw = await startGateway({ maxConnections: 40, maxConnectionsPerIp: 25, trustedProxies: [] });
    const port = gw.gateway.address().port;
    const a = await Promise.all(Array.from({ length: 30 }, () => upgrade(port, { localAddress: '127.0.0.2' })));
    expect(a.filter((r) => r.status === 101)).toHaveLength(25);
    for (const r of a.filter((x) => x.status !== 101)) refused(r, 429, 'too_many_connections_per_ip');
    await healthy(gw.http);

    const b = await Promise.all(Array.from({ length: 20 }, () => upgrade(port, { localAddress: '127.0.0.3' })));
    expect(b.filter((r) => r.status === 101)).toHaveLength(15);
    for (const r of b.filter((x) => x.status !== 101)) refused(r, 503, 'too_many_connections');
    await healthy(gw.http);
    expect(gw.gateway.connectionCount).toBe(40);
    expect(await metric(gw.http, 'herald_connections_refused_total{reason="max_connections_per_ip"}')).toBe(5);
    expect(await metric(gw.http, 'herald_connections_refused_total{reason="max_connections"}')).toBe(5);

    // Ten of the first address go: ten more connections fit again.
    for (const r of a.filter((x) => x.status === 101).slice(0, 10)) r.socket?.destroy();
    await eventually(() => (gw.gateway.connectionCount === 30 ? true : undefined), '30 connections');
    const c = await Promise.all(Array.from({ length: 10 }, () => upgrade(port, { localAddress: '127.0.0.4' })));
    expect(c.map((r) => r.status)).toEqual(Array(10).fill(101));
  });

  it('limits the connect rate per address with a token bucket (429 connect_rate_limited, Retry-After), refilled over time', async () => {
    const gw = await startGateway({ connectRate: 2, connectBurst: 3, trustedProxies: [] });
    const port = gw.gateway.address().port;
    const first = [];
    for (let i = 0; i < 4; i++) first.push(await upgrade(port, { localAddress: '127.0.0.2' }));
    expect(first.map((r) => r.status)).toEqual([101, 101, 101, 429]);
    refused(first[3] as UpgradeResult, 429, 'connect_rate_limited');
    // Another address has its own bucket.
    expect((await upgrade(port, { localAddress: '127.0.0.3' })).status).toBe(101);
    gw.clock.advance(1000);
    expect((await upgrade(port, { localAddress: '127.0.0.2' })).status).toBe(101);
    expect((await upgrade(port, { localAddress: '127.0.0.2' })).status).toBe(101);
    expect((await upgrade(port, { localAddress: '127.0.0.2' })).status).toBe(429);
    expect(await metric(gw.http, 'herald_connections_refused_total{reason="connect_rate"}')).toBe(2);
  });

  it('by default trusts a reverse proxy on this machine: limits its forwarded clients, not the proxy itself', async () => {
    const gw = await startGateway({ maxConnectionsPerIp: 2, connectBurst: 2, connectRate: 1 });
    const port = gw.gateway.address().port;
    // Header-less loopback peers (the proxy, local tools) are limited only globally.
    const local = await Promise.all(Array.from({ length: 6 }, () => upgrade(port)));
    expect(local.map((r) => r.status)).toEqual(Array(6).fill(101));
    const forwarded = [];
    for (let i = 0; i < 3; i++) forwarded.push(await upgrade(port, { headers: { 'x-forwarded-for': '203.0.113.1' } }));
    expect(forwarded.map((r) => r.status)).toEqual([101, 101, 429]);
  });

  it('reads the client address from X-Forwarded-For only when the TCP peer is a trusted proxy', async () => {
    const gw = await startGateway({ maxConnectionsPerIp: 2, trustedProxies: ['127.0.0.1/32', '10.0.0.0/8'] });
    const port = gw.gateway.address().port;
    const via = (xff: string, localAddress = '127.0.0.1'): Promise<UpgradeResult> => upgrade(port, { localAddress, headers: { 'x-forwarded-for': xff } });
    // Behind the proxy: per forwarded client; a spoofed left-hand entry is not believed, trusted hops are skipped.
    expect((await via('198.51.100.9, 203.0.113.1')).status).toBe(101);
    expect((await via('203.0.113.1')).status).toBe(101);
    expect((await via('203.0.113.1, 10.1.2.3')).status).toBe(429);
    expect((await via('203.0.113.2')).status).toBe(101);
    // Not a trusted peer: its headers are ignored, the limit is on its own address.
    expect((await via('203.0.113.3', '127.0.0.2')).status).toBe(101);
    expect((await via('203.0.113.4', '127.0.0.2')).status).toBe(101);
    expect((await via('203.0.113.5', '127.0.0.2')).status).toBe(429);
  });
});

describe('the forwarding header a trusted proxy writes (forwardedHeader)', () => {
  // A proxy writes one forwarding header and passes the other on as the client wrote it (nginx, HAProxy and most load
  // balancers write X-Forwarded-For): reading the other let a client behind the proxy name itself anyone, or
  // `unknown` (then counted as the proxy, which is not limited per address).
  it('by default reads X-Forwarded-For only: a Forwarded header the client wrote does not dodge the per-address limit', async () => {
    const gw = await startGateway({ maxConnectionsPerIp: 2 });
    const port = gw.gateway.address().port;
    const statuses = [];
    for (const forwarded of ['for=10.0.0.1', 'for=10.0.0.2', 'for=unknown', 'for=10.0.0.3'])
      statuses.push((await upgrade(port, { headers: { forwarded, 'x-forwarded-for': '203.0.113.7' } })).status);
    expect(statuses).toEqual([101, 101, 429, 429]);
  });

  it('with forwardedHeader: forwarded, reads RFC 7239 Forwarded only, and an X-Forwarded-For the client wrote does not count', async () => {
    const gw = await startGateway({ maxConnectionsPerIp: 2, forwardedHeader: 'forwarded' });
    const port = gw.gateway.address().port;
    const statuses = [];
    for (const xff of ['10.0.0.1', '10.0.0.2', '10.0.0.3'])
      statuses.push((await upgrade(port, { headers: { forwarded: 'for="[2001:db8::1]:4711";proto=https', 'x-forwarded-for': xff } })).status);
    expect(statuses).toEqual([101, 101, 429]);
  });

  it('refuses another value at startup', async () => {
    await expect(startGateway({ forwardedHeader: 'x-real-ip' as never })).rejects.toThrow(/forwardedHeader/);
  });

  it('takes the host a same-origin check compares from that header too, its rightmost entry (what the nearest proxy wrote)', async () => {
    const status = async (opts: { forwardedHeader?: 'forwarded' }, headers: Record<string, string>): Promise<number> => {
      const gw = await startGateway({ allowedOrigins: ['same-origin'], ...opts });
      return (await upgrade(gw.gateway.address().port, { headers: { origin: 'https://app.example', ...headers } })).status;
    };
    expect(await status({}, { 'x-forwarded-host': 'app.example' })).toBe(101);
    expect(await status({}, { 'x-forwarded-host': 'evil.example, app.example' })).toBe(101);
    expect(await status({}, { 'x-forwarded-host': 'app.example, evil.example' })).toBe(403);
    expect(await status({}, { forwarded: 'host=app.example' })).toBe(403);
    expect(await status({ forwardedHeader: 'forwarded' }, { forwarded: 'for=192.0.2.1;host=evil.example, for=192.0.2.9;host=app.example' })).toBe(101);
    expect(await status({ forwardedHeader: 'forwarded' }, { 'x-forwarded-host': 'app.example' })).toBe(403);
  });
});

describe('a limit found after the handshake', () => {
  it('closes the WebSocket with 1013 (try again later) when admission refuses it on open', async () => {
    const server = createServer();
    let opened = 0;
    const released: string[] = [];
    let refuse = true;
    const admission: Admission = {
      admit: () => undefined,
      opened: () => {
        if (refuse) return false;
        opened += 1;
        return true;
      },
      closed: (ip) => released.push(ip),
    };
    const clock = new ManualClock();
    const transport = await TRANSPORTS[TEST_TRANSPORT]({
      server,
      http: (_req, res) => res.writeHead(404).end(),
      maxRequestBody: 65_536,
      admission,
      guard: { requestTimeout: 10_000, maxPending: 100, maxPendingPerIp: 100, isTrustedProxy: () => false, dropped: () => undefined },
      onSocket: () => ({ message: () => undefined, pong: () => undefined, closed: () => undefined }),
      maxPayload: 65_536,
      sendBufferLimit: 1_048_576,
      clock,
      logger: silentLogger(),
    });
    onCleanup(() => {
      transport.terminateAll();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    await transport.listen(0, '127.0.0.1');
    const url = `ws://127.0.0.1:${transport.address().port}/ws`;
    const refused = await TestClient.open(url);
    expect((await refused.closed()).code).toBe(1013);
    refuse = false;
    const ok = await TestClient.open(url);
    expect(opened).toBe(1);
    ok.ws.close(1000);
    await ok.closed();
    // Released once, under the address it was counted under; the refused one was never counted.
    await eventually(() => (released.length === 1 ? true : undefined), 'the slot released');
    expect(released).toEqual(['127.0.0.1']);
  });
});

describe('ConnectionLimits', () => {
  const limits = (o: Partial<ConstructorParameters<typeof ConnectionLimits>[0]> = {}): ConnectionLimits =>
    new ConnectionLimits({ maxConnections: 3, maxConnectionsPerIp: 2, connectRate: 1, connectBurst: 2, ...o });

  it('counts at open: a burst that passed check together is refused at open beyond the limit', () => {
    const l = limits();
    expect(l.check('a', 0)).toBeUndefined();
    expect(l.check('a', 0)).toBeUndefined();
    expect(l.opened('a', 0)).toBeUndefined();
    expect(l.opened('a', 0)).toBeUndefined();
    expect(l.opened('a', 0)).toBe('max_connections_per_ip');
    expect(l.opened('b', 0)).toBeUndefined();
    expect(l.opened('c', 0)).toBe('max_connections');
    expect(l.check('c', 0)).toMatchObject({ reason: 'max_connections' });
    l.closed('a');
    expect(l.open).toBe(2);
    expect(l.check('c', 0)).toBeUndefined();
  });

  it('keeps per-address state bounded: idle addresses are forgotten when their bucket is full, oldest first past the bound', () => {
    const l = limits({ maxConnections: 1000, maxTrackedAddresses: 100 });
    for (let i = 0; i < 500; i++) l.check(`10.0.${Math.floor(i / 256)}.${i % 256}`, 0);
    expect(l.tracked).toBeLessThanOrEqual(100);
    // An address holding a connection is never forgotten.
    expect(l.opened('192.0.2.1', 0)).toBeUndefined();
    for (let i = 0; i < 500; i++) l.check(`10.1.${Math.floor(i / 256)}.${i % 256}`, 0);
    l.closed('192.0.2.1');
    expect(l.open).toBe(0);
    l.sweep(10_000);
    expect(l.tracked).toBe(0);
  });
});
