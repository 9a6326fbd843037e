/**
 * Plain HTTP on both transports, side by side: Node's `http.Server` (`ws`) and uWebSockets.js serving the API
 * natively (`uws`, transport/uws/http.ts). What the protocol suites do not reach: a client gone mid-body, a
 * body over the limit while it is still arriving, many requests on one kept-alive connection, a large answer
 * to a reader that is slow (backpressure), HEAD.
 */
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { GatewayOptions } from '../src/gateway/options.js';
import { createMemoryEngine } from '../src/engine/memory/engine.js';
import { API_KEY, eventually, onCleanup, startGateway } from './helpers.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  localPort: number;
}

function call(
  url: string,
  opts: { method?: string; headers?: Record<string, string | number>; body?: string | string[]; agent?: Agent; slow?: number; path?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // `path`: the request target as it is (a URL string would have its dot segments, even encoded ones, removed).
    const target = opts.path === undefined ? {} : { path: opts.path };
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false, ...target }, (res) => {
      const chunks: Buffer[] = [];
      if (opts.slow !== undefined) {
        // A slow reader: nothing is read for a while, so the server's writes back up.
        res.pause();
        setTimeout(() => res.resume(), opts.slow);
      }
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), localPort: req.socket?.localPort ?? 0 }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    const parts = opts.body === undefined ? [] : Array.isArray(opts.body) ? opts.body : [opts.body];
    for (const p of parts) req.write(p);
    req.end();
  });
}

/** A raw TCP connection to `port`: what it received so far (latin1), its socket errors, and when it closed. */
function rawConnection(port: number): { write(bytes: string): void; text(): string; errors(): string[]; closed: Promise<void> } {
  const socket = connect({ port, host: '127.0.0.1' });
  let text = '';
  const errors: string[] = [];
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', (err: NodeJS.ErrnoException) => errors.push(err.code ?? err.message));
  onCleanup(() => socket.destroy());
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { write: (bytes) => socket.write(bytes), text: () => text, errors: () => errors, closed };
}

const publishHeaders = (body: string): Record<string, string | number> => ({
  authorization: `Bearer ${API_KEY}`,
  'content-type': 'application/json',
  'content-length': Buffer.byteLength(body),
});

describe.each(['ws', 'uws'] as const)('plain HTTP on the %s transport', (transport) => {
  const start = (o: GatewayOptions = {}): ReturnType<typeof startGateway> => startGateway({ ...o, transport });

  it('says why it cannot listen (a port in use: EADDRINUSE, as Node says it), and stops what it started', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    onCleanup(() => new Promise<void>((resolve) => busy.close(() => resolve())));
    const port = (busy.address() as AddressInfo).port;
    const engine = createMemoryEngine();
    const failed = await start({ port, engine }).then(
      () => undefined,
      (err: unknown) => err as NodeJS.ErrnoException,
    );
    expect(failed?.code).toBe('EADDRINUSE');
    expect(failed?.message).toContain(`127.0.0.1:${port}`);
    // The engine it started is closed again.
    await expect(engine.check()).rejects.toThrow(/closed/);
  });

  it('answers many publishes on one kept-alive connection', async () => {
    const gw = await start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const ports = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const body = JSON.stringify({ user: String(i % 7), type: 'notify', payload: { i } });
      const r = await call(`${gw.http}/api/publish`, { method: 'POST', headers: publishHeaders(body), body, agent });
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ results: { [`user:${i % 7}`]: { seq: Math.floor(i / 7) + 1, online: false } } });
      expect(r.headers['x-request-id']).toMatch(/^[\w-]+$/);
      ports.add(r.localPort);
    }
    agent.destroy();
    expect(ports.size).toBe(1);
    expect(gw.gateway.stats.published).toBe(200);
  });

  it('answers a refused upgrade (wrong path, disallowed origin) with X-Request-Id, its own when it sent a valid one', async () => {
    const gw = await start({ allowedOrigins: ['https://app.example'] });
    const upgrade = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
    const wrongPath = await call(`${gw.http}/socket`, { headers: upgrade });
    expect(wrongPath.status).toBe(404);
    expect(JSON.parse(wrongPath.body)).toMatchObject({ error: { code: 'not_found', paths: ['/ws'] } });
    expect(wrongPath.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(wrongPath.headers['x-request-id']).toMatch(/^[\w-]{22}$/);
    const origin = await call(`${gw.http}/ws`, { headers: { ...upgrade, origin: 'https://evil.example', 'x-request-id': 'mine-42' } });
    expect(origin.status).toBe(403);
    expect(JSON.parse(origin.body)).toMatchObject({ error: { code: 'forbidden' } });
    expect(origin.headers['x-request-id']).toBe('mine-42');
  });

  it('answers 413 to a chunked body that grows past maxBodySize while it arrives, and closes the connection', async () => {
    const gw = await start({ maxBodySize: 1024 });
    const r = await call(`${gw.http}/api/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      body: ['{"channel":"a","type":"t","payload":{"x":"', 'x'.repeat(2000), '"}}'],
    });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'body_too_large', limit: 1024 } });
    // Node says it closes; uWebSockets.js closes (end with closeConnection) and says so when it decides to.
    if (transport === 'ws') expect(r.headers.connection).toBe('close');
    expect(gw.gateway.stats.published).toBe(0);
  });

  it('answers 413 from the declared Content-Length before reading the body', async () => {
    const gw = await start({ maxBodySize: 1024 });
    const body = JSON.stringify({ channel: 'a', type: 't', payload: { x: 'x'.repeat(2000) } });
    const r = await call(`${gw.http}/api/publish`, { method: 'POST', headers: publishHeaders(body), body });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'body_too_large' } });
  });

  it('answers 413 to a client still sending its body without resetting it: it reads the rest and keeps the connection', async () => {
    const gw = await start({ maxBodySize: 1024 });
    const c = rawConnection(gw.gateway.address().port);
    const size = 256 * 1024;
    c.write(`POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`);
    // Answered from the headers, while the body is still to come.
    await eventually(() => (c.text().includes('body_too_large') ? true : undefined), 'the 413');
    expect(c.text()).toMatch(/^HTTP\/1\.1 413 /);
    // The client goes on sending it (as curl does), in pieces.
    for (let sent = 0; sent < size; sent += 64 * 1024) c.write('x'.repeat(64 * 1024));
    c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await eventually(() => (c.text().endsWith('{"status":"ok"}') ? true : undefined), 'the next answer on the same connection');
    expect(c.errors()).toEqual([]);
    expect(gw.gateway.stats.published).toBe(0);
  });

  it('forgets a request whose client went away mid-body, publishes nothing, and keeps serving', async () => {
    const gw = await start();
    const port = gw.gateway.address().port;
    const socket = connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(
      `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"channel":"a",`,
    );
    await eventually(() => (gw.gateway.httpRequests === 1 ? true : undefined), 'the request arrived');
    socket.destroy();
    await eventually(() => (gw.gateway.httpRequests === 0 ? true : undefined), 'the request forgotten');
    expect(gw.gateway.stats.published).toBe(0);
    const r = await call(`${gw.http}/healthz`);
    expect([r.status, r.body]).toEqual([200, '{"status":"ok"}']);
    await gw.gateway.close();
  });

  it('writes a large answer whole to a slow reader, and HEAD gets its length without a body', async () => {
    const gw = await start();
    const big = 'x'.repeat(8 * 1024 * 1024);
    gw.gateway.addRoute((req, res) => {
      if (req.url !== '/big') return false;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': big.length });
      res.end(big);
      return true;
    });
    const r = await call(`${gw.http}/big`, { slow: 200 });
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(big.length);
    expect(r.body === big).toBe(true);
    const head = await call(`${gw.http}/big`, { method: 'HEAD' });
    // uWebSockets.js cannot report a length for HEAD without holding the connection (uws/http.ts): 0 there.
    expect([head.status, head.headers['content-length'], head.body]).toEqual([200, transport === 'ws' ? String(big.length) : '0', '']);
  });

  it('answers the next request on a kept-alive connection after a HEAD, and closes after a HEAD that asks for it', async () => {
    const gw = await start();
    const c = rawConnection(gw.gateway.address().port);
    c.write('HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await eventually(() => (c.text().includes('\r\n\r\n') ? true : undefined), 'the HEAD answer');
    c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await eventually(() => (c.text().endsWith('{"status":"ok"}') ? true : undefined), 'the GET answer on the same connection');
    expect(c.text().match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
    c.write('HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await c.closed;
    expect(c.text().match(/HTTP\/1\.1 200 /g)).toHaveLength(3);
  });

  it('refuses a request with two Content-Length headers (request smuggling) and reads nothing after it', async () => {
    const gw = await start();
    const c = rawConnection(gw.gateway.address().port);
    const inner = `{"channel":"smuggled","type":"m","payload":{}}`;
    const second = `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`;
    const first = `{"channel":"a","type":"m","payload":{}}`;
    c.write(
      `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${first.length}\r\nContent-Length: ${first.length + second.length}\r\n\r\n${first}${second}`,
    );
    await c.closed;
    const text = c.text();
    if (transport === 'ws') {
      expect(text).toMatch(/^HTTP\/1\.1 400 /);
      expect(text.match(/HTTP\/1\.1 \d{3} /g)).toHaveLength(1);
      expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'malformed_request' } });
    } else {
      // uWebSockets.js cannot answer and stop reading: dropped (uws/http.ts).
      expect(text).toBe('');
    }
    expect(gw.gateway.stats.published).toBe(0);
  });

  it('answers an Expect it cannot meet, and on `ws` an HTTP/1.1 request without Host, in the JSON error shape, and closes', async () => {
    const gw = await start();
    const port = gw.gateway.address().port;
    const answer = (text: string): { status: number; code: unknown; requestId: boolean } => ({
      status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1]),
      code: (JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { error?: { code?: unknown } }).error?.code,
      requestId: /\r\nx-request-id: /i.test(text),
    });
    if (transport === 'ws') {
      // uWebSockets.js never hands such a request over: it holds the socket until its idle timeout (security.md).
      const noHost = rawConnection(port);
      noHost.write('GET /healthz HTTP/1.1\r\n\r\n');
      await noHost.closed;
      expect(answer(noHost.text())).toEqual({ status: 400, code: 'malformed_request', requestId: true });
    }
    const body = `{"channel":"expect","type":"m","payload":{}}`;
    const expecting = rawConnection(port);
    expecting.write(
      `POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Type: application/json\r\n` +
        `Expect: 200-ok\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    await expecting.closed;
    expect(answer(expecting.text())).toEqual({ status: 417, code: 'expectation_failed', requestId: true });
    expect(gw.gateway.stats.published).toBe(0);
    // What stays accepted: Expect: 100-continue, and HTTP/1.0 without Host (health checkers send it) on `ws`.
    const res = await call(`${gw.http}/api/publish`, { method: 'POST', headers: { ...publishHeaders(body), expect: '100-continue' }, body });
    expect(res.status).toBe(200);
    if (transport === 'ws') {
      const old = rawConnection(port);
      old.write('GET /healthz HTTP/1.0\r\n\r\n');
      await old.closed;
      expect(old.text()).toMatch(/^HTTP\/1\.1 200 [^]*\{"status":"ok"\}$/);
    }
  });

  it('reads a repeated header as Node does: the first Authorization, every Origin', async () => {
    const gw = await start({ allowedOrigins: ['http://good.example'] });
    const port = gw.gateway.address().port;
    const ask = async (request: string): Promise<string> => {
      const c = rawConnection(port);
      c.write(request);
      return eventually(() => (c.text().includes('\r\n\r\n') ? c.text() : undefined), 'an answer');
    };
    const stats = await ask(`GET /api/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nAuthorization: Bearer nope\r\n\r\n`);
    expect(stats).toMatch(/^HTTP\/1\.1 200 /);
    const key = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';
    const upgrade = await ask(
      `GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${key}Origin: http://evil.example\r\nOrigin: http://good.example\r\n\r\n`,
    );
    expect(upgrade).toMatch(/^HTTP\/1\.1 403 /);
  });

  it('answers a query string, percent-encoded paths and unknown paths as before', async () => {
    const gw = await start();
    const online = await call(`${gw.http}/api/online?users=1,2`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(JSON.parse(online.body)).toEqual({ users: { '1': { online: false, connections: 0 }, '2': { online: false, connections: 0 } } });
    const channel = await call(`${gw.http}/api/channels/room%3A1`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(JSON.parse(channel.body)).toMatchObject({ channel: 'room:1', subscribers: 0 });
    const dotted = await call(`${gw.http}/api/x/../channels/b`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(JSON.parse(dotted.body)).toMatchObject({ channel: 'b' });
    const missing = await call(`${gw.http}/nothing-here`);
    expect([missing.status, JSON.parse(missing.body).error.code]).toEqual([404, 'not_found']);
  });

  it('reads the channels `.` and `..` (valid names) when the path says them percent-encoded', async () => {
    const gw = await start();
    const auth = { authorization: `Bearer ${API_KEY}` };
    for (const channel of ['.', '..']) {
      const body = JSON.stringify({ channel, type: 'note', payload: { channel } });
      const r = await call(`${gw.http}/api/publish`, { method: 'POST', headers: publishHeaders(body), body });
      expect(r.status).toBe(200);
    }
    const history = await call(gw.http, { path: '/api/history/%2E%2E', headers: auth });
    expect(history.status).toBe(200);
    expect(JSON.parse(history.body)).toMatchObject({ channel: '..', seq: 1, messages: [{ channel: '..', payload: { channel: '..' }, seq: 1 }] });
    const one = await call(gw.http, { path: '/api/channels/%2e', headers: auth });
    expect(JSON.parse(one.body)).toMatchObject({ channel: '.', seq: 1 });
    const user = await call(gw.http, { path: '/api/users/%2E%2E/inbox', headers: auth });
    expect([user.status, JSON.parse(user.body)]).toMatchObject([200, { user: '..' }]);
    // Literal dot segments are still removed, as every client removes them, and an encoded one outside the API
    // is a dot segment as before.
    const literal = await call(gw.http, { path: '/api/history/x/../%2E%2E', headers: auth });
    expect(JSON.parse(literal.body)).toMatchObject({ channel: '..' });
    const outside = await call(gw.http, { path: '/nothing/%2E%2E/healthz' });
    expect(outside.status).toBe(200);
  });
});
