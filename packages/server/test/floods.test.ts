/**
 * Connection floods and slow clients on the `ws` transport (issue 15): idle, slowloris and malformed
 * connections are destroyed (never half-closed) after `requestTimeout`; not-yet-upgraded sockets are capped
 * per address and in all; `/healthz` answers throughout; file descriptors come back. WebSocket connection
 * limits are in limits.test.ts; uWebSockets.js's own idle timeout in uws-transport.test.ts. Bounded counts,
 * short timeouts, a manual clock, loopback only.
 */
import { describe, expect, it } from 'vitest';
import type { GatewayOptions } from '../src/gateway/options.js';
import { API_KEY, eventually, startGateway as startAnyGateway, TestClient } from './helpers.js';
import { get, openFds, openRaw, serverConnections } from './support/sockets.js';

/** These are about the `ws` transport's own guard (uws-transport.test.ts covers uWebSockets.js). */
const startGateway = (opts: GatewayOptions = {}): ReturnType<typeof startAnyGateway> => startAnyGateway({ transport: 'ws', ...opts });

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

describe('sockets that never complete a request (ws transport)', () => {
  it('destroys idle, slowloris and half-sent connections after requestTimeout, and malformed ones at once, never leaving them half-open', async () => {
    const fdsBefore = openFds();
    const gw = await startGateway({ requestTimeout: 2000 });
    const port = gw.gateway.address().port;
    const idle = await openRaw(port, 150, { localAddress: '127.0.0.2' });
    // Slowloris: a request line and one header, the rest never comes.
    const slow = await openRaw(port, 40, { localAddress: '127.0.0.2', send: 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' });
    // A body announced and never finished.
    const body = await openRaw(port, 10, {
      localAddress: '127.0.0.2',
      send: `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"chan`,
    });
    // Malformed: answered 400, then destroyed (the client never closes its side).
    const bad = await openRaw(port, 10, { localAddress: '127.0.0.2', send: 'NONSENSE\r\n\r\n' });
    await Promise.all(bad.map((s) => s.gone));
    for (const s of bad) {
      // In the API's error shape, with a request id (docs/errors.md, malformed_request).
      const [headText = '', body = ''] = s.received.split('\r\n\r\n');
      expect(headText).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(headText.toLowerCase()).toMatch(/\r\nx-request-id: [\w-]{22}\r\n/);
      expect(headText.toLowerCase()).toContain('connection: close');
      expect(JSON.parse(body)).toMatchObject({ error: { code: 'malformed_request' } });
    }

    await eventually(async () => ((await serverConnections(gw.gateway.server)) === 200 ? true : undefined), '200 sockets on the server');
    await healthy(gw.http);
    // Nothing happens before the timeout.
    gw.clock.advance(1500);
    await healthy(gw.http);
    expect([...idle, ...slow, ...body].filter((s) => s.isGone)).toHaveLength(0);

    gw.clock.advance(1000);
    await Promise.all([...idle, ...slow, ...body].map((s) => s.gone));
    await eventually(async () => ((await serverConnections(gw.gateway.server)) === 0 ? true : undefined), 'no socket left on the server');
    expect(await metric(gw.http, 'herald_sockets_dropped_total{reason="request_timeout"}')).toBe(200);
    expect(await metric(gw.http, 'herald_sockets_dropped_total{reason="client_error"}')).toBe(10);
    for (const s of [...idle, ...slow, ...body, ...bad]) s.socket.destroy();
    await eventually(() => (openFds() <= fdsBefore + 20 ? true : undefined), 'file descriptors back near the baseline');
  });

  it('answers a request followed on its connection by malformed bytes first, then 400: the publish it made is not hidden', async () => {
    const gw = await startGateway();
    const port = gw.gateway.address().port;
    const body = '{"channel":"pipe","type":"t","payload":{}}';
    const publish = `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    // Pipelined garbage, and a body longer than its Content-Length: both in the same write as the publish.
    const [garbage, longer] = await Promise.all([
      openRaw(port, 1, { send: `${publish}GARBAGE\r\n\r\n` }),
      openRaw(port, 1, { send: `${publish}, "more": 1}\r\n\r\n` }),
    ]);
    for (const s of [...garbage, ...longer]) {
      await s.gone;
      expect(s.received).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*"seq":\d[\s\S]*HTTP\/1\.1 400 Bad Request\r\n/);
    }
    expect(gw.gateway.stats.published).toBe(2);
    expect(await metric(gw.http, 'herald_sockets_dropped_total{reason="client_error"}')).toBe(2);
  });

  it.each(['ws', 'uws'] as const)(
    'refuses an upgrade that is not a valid WebSocket handshake with 400 invalid_handshake in JSON, counted (%s transport)',
    async (transport) => {
      const gw = await startAnyGateway({ transport });
      const port = gw.gateway.address().port;
      const head = (method: string, headers: string): string => `${method} /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n${headers}\r\n`;
      const key = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
      const cases = [
        head('GET', 'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n'),
        head('POST', `Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n${key}`),
        head('GET', `Upgrade: websocket\r\nSec-WebSocket-Version: 7\r\n${key}`),
        head('GET', `Upgrade: h2c\r\nSec-WebSocket-Version: 13\r\n${key}`),
        head('GET', 'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n'),
        head('GET', `Upgrade: websocket\r\n${key}`),
      ];
      const sockets = (await Promise.all(cases.map((send) => openRaw(port, 1, { send })))).flat();
      for (const s of sockets) {
        await s.gone;
        const [headText = '', body = ''] = s.received.split('\r\n\r\n');
        expect(headText).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
        expect(headText.toLowerCase()).toContain('content-type: application/json; charset=utf-8');
        expect(headText.toLowerCase()).toContain('x-request-id: ');
        expect(JSON.parse(body)).toMatchObject({ error: { code: 'invalid_handshake' } });
      }
      expect((sockets[2] as { received: string }).received.toLowerCase()).toContain('sec-websocket-version: 13');
      expect(await metric(gw.http, 'herald_sockets_dropped_total{reason="client_error"}')).toBe(6);
      expect(gw.gateway.stats.connectionsOpened).toBe(0);
      // Without `Connection: Upgrade` it is a plain request for the WebSocket path: 426.
      const [plain] = await openRaw(port, 1, { send: `GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n${key}\r\n` });
      await eventually(() => (plain?.received.includes('\r\n\r\n') ? true : undefined), 'the answer');
      expect(plain?.received).toMatch(/^HTTP\/1\.1 426 /);
      plain?.socket.destroy();
      // Version 8 (a draft's) is accepted, as the `ws` library itself accepts it.
      const draft = await TestClient.open(gw.ws, { protocolVersion: 8 });
      draft.send({ type: 'ping' });
      expect(await draft.next()).toEqual({ type: 'pong' });
      draft.terminate();
    },
  );

  it('keeps a kept-alive connection between requests for Node keepAliveTimeout, and cuts a request whose body has arrived only when answered', async () => {
    const gw = await startGateway({ requestTimeout: 1000 });
    const port = gw.gateway.address().port;
    const [ka] = await openRaw(port, 1, { send: 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' });
    if (!ka) throw new Error('no socket');
    await eventually(() => (ka.received.includes('"ok"') ? true : undefined), 'the first answer');
    // Past requestTimeout but within keepAliveTimeout (5 s): the connection still serves a request.
    gw.clock.advance(2500);
    ka.received = '';
    ka.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await eventually(() => (ka.received.includes('"ok"') ? true : undefined), 'the second answer on the same connection');
    expect(ka.isGone).toBe(false);
  });
});

describe('floods of sockets that never upgrade (ws transport)', () => {
  it('caps them per address and in all, oldest dropped first, while /healthz answers; all reclaimed after the timeout', async () => {
    const fdsBefore = openFds();
    // No trusted proxy: by default loopback peers are trusted (a local reverse proxy) and not capped per address.
    const gw = await startGateway({ requestTimeout: 1000, maxConnectionsPerIp: 40, maxPendingConnections: 100, trustedProxies: [] });
    const port = gw.gateway.address().port;

    const one = await openRaw(port, 120, { localAddress: '127.0.0.2' });
    await eventually(() => (one.filter((s) => s.isGone).length === 80 ? true : undefined), '80 sockets over the per-address cap dropped');
    expect(await serverConnections(gw.gateway.server)).toBeLessThanOrEqual(40);
    await healthy(gw.http);

    // Many addresses: the global cap holds, the oldest idle sockets make room, a health check still gets in.
    const many = (await Promise.all(['127.0.0.3', '127.0.0.4', '127.0.0.5'].map((a) => openRaw(port, 35, { localAddress: a })))).flat();
    // Every socket accepted (gone or held), not only the first ones out of the listen backlog: one accepted after
    // the clock moves below would wait for a timer of the manual clock that never fires.
    const all = [...one, ...many];
    await eventually(
      async () => {
        const held = await serverConnections(gw.gateway.server);
        return held <= 100 && held + all.filter((s) => s.isGone).length === all.length ? true : undefined;
      },
      'every socket accepted, at most 100 held',
      20_000,
    );
    await healthy(gw.http);
    expect(await serverConnections(gw.gateway.server)).toBeLessThanOrEqual(100);
    expect(await metric(gw.http, 'herald_sockets_dropped_total{reason="pending_per_ip"}')).toBe(80);
    expect(await metric(gw.http, 'herald_sockets_dropped_total{reason="pending_limit"}')).toBeGreaterThanOrEqual(45);

    gw.clock.advance(1500);
    await eventually(async () => ((await serverConnections(gw.gateway.server)) === 0 ? true : undefined), 'every socket reclaimed');
    await Promise.all(all.map((s) => s.gone));
    for (const s of all) s.socket.destroy();
    await eventually(() => (openFds() <= fdsBefore + 20 ? true : undefined), 'file descriptors back near the baseline');
  });
});
