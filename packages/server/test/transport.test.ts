import { request } from 'node:http';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { api, startGateway, TestClient } from './helpers.js';

/** Sends a raw upgrade request and returns the HTTP status and JSON body of the refusal. */
function upgrade(base: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(base + path, {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: null });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('transport', () => {
  it('answers an upgrade on another path with 404 and the valid paths', async () => {
    const gw = await startGateway();
    const r = await upgrade(gw.http, '/socket');
    expect(r.status).toBe(404);
    expect(r.body.error).toMatchObject({ code: 'not_found', paths: ['/ws'] });
  });

  it('accepts upgrades on every configured path', async () => {
    const gw = await startGateway({ wsPaths: ['/ws', '/realtime'] });
    const port = gw.gateway.address().port;
    for (const p of ['/ws', '/realtime', '/ws?x=1']) {
      const { connected } = await TestClient.connect(`ws://127.0.0.1:${port}${p}`);
      expect(connected.type).toBe('connected');
    }
    expect((await upgrade(gw.http, '/other')).body.error.paths).toEqual(['/ws', '/realtime']);
  });

  it('keeps no cached peer address per open WebSocket on the ws transport (the connection keeps its own string)', async () => {
    const gw = await startGateway({ transport: 'ws' });
    const sockets: Socket[] = [];
    gw.gateway.server.on('connection', (s: Socket) => sockets.push(s));
    expect((await TestClient.connect(gw.ws)).connected.type).toBe('connected');
    const [socket] = sockets;
    // Read at the upgrade for the per-address limits, then let go: about 80 bytes per idle connection.
    expect((socket as unknown as { _peername: unknown })._peername).toBeNull();
    // Asked again on a later read.
    expect(socket?.remoteAddress).toBe('127.0.0.1');
  });

  it('answers a plain GET on /ws with 426', async () => {
    const gw = await startGateway();
    const r = await api(gw.http, 'GET', '/ws', undefined, { key: null });
    expect(r.status).toBe(426);
    expect(r.body.error.code).toBe('upgrade_required');
    expect(r.headers.get('upgrade')).toBe('websocket');
    expect(r.headers.get('connection')?.toLowerCase()).toContain('upgrade');
  });

  it('refuses upgrades from origins that are not allowed, when a list is configured', async () => {
    const gw = await startGateway({ allowedOrigins: ['https://app.example'] });
    const r = await upgrade(gw.http, '/ws', { origin: 'https://evil.example' });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('forbidden');
    expect((await upgrade(gw.http, '/ws', { origin: 'https://app.example' })).status).toBe(101);
  });

  it('serves health on one http.Server together with WebSockets', async () => {
    const gw = await startGateway();
    expect((await api(gw.http, 'GET', '/healthz', undefined, { key: null })).body).toEqual({ status: 'ok' });
    expect((await api(gw.http, 'GET', '/readyz', undefined, { key: null })).body).toMatchObject({ status: 'ready', engine: 'memory' });
    expect((await api(gw.http, 'GET', '/nothing', undefined, { key: null })).status).toBe(404);
  });
});
