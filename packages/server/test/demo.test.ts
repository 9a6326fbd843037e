// The demo page route (gateway option `demo`): served only when enabled, with its config embedded safely,
// and with the SDK bundle and demo.js as JavaScript. HTTP level only; browser.test.ts in packages/client
// drives the page itself. /herald.min.js is the built bundle: run `npm run build` first.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { API_KEY, api, publish, startGateway, TEST_TRANSPORT, TestClient } from './helpers.js';

const BUNDLE = new URL('../../client/dist/herald.min.js', import.meta.url);
const DEMO_JS = new URL('../demo/demo.js', import.meta.url);

async function get(base: string, path: string, init: RequestInit = {}): Promise<{ status: number; type: string | null; body: string; headers: Headers }> {
  const res = await fetch(base + path, init);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text(), headers: res.headers };
}

/** The JSON config embedded in the page (`<script id="herald-config" type="application/json">`). */
function embeddedConfig(html: string): unknown {
  const m = /<script id="herald-config" type="application\/json">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('no herald-config script element in the page');
  return JSON.parse(m[1] as string);
}

/** The page's embedded configuration for `wsPath` and `apiKey` (demo tokens off). */
const config = (wsPath: string, apiKey: string | null, demoTokens = false) => ({ wsPath, apiKey, demoTokens, chat: 'chat:demo', presence: 'presence:demo' });

describe('demo page route', () => {
  it('is not served unless demo is enabled: /, /index.html, /demo.js and /herald.min.js answer 404', async () => {
    for (const opts of [{}, { demo: false }, { demo: false, demoApiKey: API_KEY }]) {
      const gw = await startGateway(opts);
      for (const path of ['/', '/index.html', '/demo.js', '/herald.min.js', '/?channel=x']) {
        const r = await api(gw.http, 'GET', path, undefined, { key: null });
        expect(r.status, `${JSON.stringify(opts)} GET ${path}`).toBe(404);
        expect(r.body.error.code).toBe('not_found');
        expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      }
    }
  });

  it('serves the page at / (and /index.html) with the WebSocket path and no API key when demoApiKey is not given', async () => {
    const gw = await startGateway({ demo: true });
    const page = await get(gw.http, '/');
    expect(page.status).toBe(200);
    expect(page.type).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(embeddedConfig(page.body)).toEqual(config('/ws', null));
    // The gateway has an API key configured; the page must not carry it unless told to.
    expect(page.body).not.toContain(API_KEY);
    expect(page.body).not.toContain('{{CONFIG}}');
    expect(page.body).toMatch(/<script src="herald\.min\.js"><\/script>/);
    expect(page.body).toMatch(/<script src="demo\.js"><\/script>/);

    const index = await get(gw.http, '/index.html');
    expect(index.status).toBe(200);
    expect(index.body).toBe(page.body);
    const withQuery = await get(gw.http, '/?channel=orders&ping=500&maxDelay=500');
    expect(withQuery.status).toBe(200);
    expect(withQuery.body).toBe(page.body);
  });

  it('embeds the API key only when demoApiKey is given', async () => {
    const gw = await startGateway({ demo: true, demoApiKey: API_KEY });
    const page = await get(gw.http, '/');
    expect(page.status).toBe(200);
    expect(embeddedConfig(page.body)).toEqual(config('/ws', API_KEY));
  });

  it('embeds the API key only for requesters on this machine: not when a forwarding header names another address', async () => {
    const gw = await startGateway({ demo: true, demoApiKey: API_KEY });
    const spoofs = [
      { 'x-forwarded-for': '203.0.113.5' },
      { forwarded: 'for="[2001:db8::7]:443"' },
      { 'x-forwarded-for': 'unknown' },
      // A local proxy adding the client to X-Forwarded-For passes on the Forwarded header the client wrote, and the
      // other way round: neither header alone says the request is local.
      { forwarded: 'for=127.0.0.1', 'x-forwarded-for': '203.0.113.5' },
      { 'x-forwarded-for': '127.0.0.1', forwarded: 'for=203.0.113.5' },
    ];
    for (const headers of spoofs) {
      const page = await get(gw.http, '/', { headers });
      expect(page.status).toBe(200);
      expect(embeddedConfig(page.body)).toEqual(config('/ws', null));
      expect(page.body).not.toContain(API_KEY);
    }
    expect(embeddedConfig((await get(gw.http, '/', { headers: { 'x-forwarded-for': '127.0.0.1' } })).body)).toEqual(config('/ws', API_KEY));
  });

  it('embeds the first configured WebSocket path', async () => {
    const gw = await startGateway({ demo: true, wsPaths: ['/push', '/ws'] });
    expect(embeddedConfig((await get(gw.http, '/')).body)).toEqual(config('/push', null));
  });

  it('cannot be broken out of the config script element by a hostile demoApiKey', async () => {
    const hostile = '</script><script>window.pwned=1</script><!--';
    const gw = await startGateway({ demo: true, demoApiKey: hostile });
    const page = await get(gw.http, '/');
    expect(page.status).toBe(200);
    expect(page.body).not.toContain('<script>window.pwned');
    expect(page.body).not.toContain('<!--');
    expect(embeddedConfig(page.body)).toEqual(config('/ws', hostile));
  });

  it('mints demo tokens for requesters on this machine only, granting presence:demo and chat:demo and nothing else', async () => {
    const secret = 'demo_token_secret_0123456789_0123456789_01';
    const gw = await startGateway({ demo: true, demoApiKey: API_KEY, jwtSecrets: [secret], demoTokenSecret: secret, allowAnonymous: false });
    expect(embeddedConfig((await get(gw.http, '/')).body)).toEqual(config('/ws', API_KEY, true));
    expect(embeddedConfig((await get(gw.http, '/', { headers: { 'x-forwarded-for': '203.0.113.5' } })).body)).toEqual(config('/ws', null, false));
    const r = await get(gw.http, '/demo-token?name=Ann%20B');
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    const { token, user, name } = JSON.parse(r.body) as { token: string; user: string; name: string };
    expect([user, name]).toEqual(['demo-Ann_B', 'Ann B']);
    const { client, connected } = await TestClient.connect(gw.ws, { token, subs: { 'presence:demo': {}, 'private:x': {} } });
    expect(connected['user']).toBe('demo-Ann_B');
    expect((connected['subs'] as Record<string, unknown>)['presence:demo']).toMatchObject({ members: [{ user: 'demo-Ann_B', info: { name: 'Ann B' } }] });
    expect(await client.nextOf('error')).toMatchObject({ code: 'forbidden', channel: 'private:x' });
    client.send({ type: 'publish', channel: 'chat:demo', event: 'chat.message', payload: { text: 'hi' }, id: 1 });
    expect(await client.nextOf('published')).toMatchObject({ channel: 'chat:demo', seq: 1 });
    client.send({ type: 'publish', channel: 'news', event: 'x', payload: {}, id: 2 });
    expect(await client.nextOf('error')).toMatchObject({ code: 'forbidden', id: 2 });

    expect((await get(gw.http, '/demo-token?name=Ann', { headers: { 'x-forwarded-for': '203.0.113.5' } })).status).toBe(404);
    expect((await get(gw.http, '/demo-token?name=Ann', { headers: { forwarded: 'for=127.0.0.1', 'x-forwarded-for': '203.0.113.5' } })).status).toBe(404);
    for (const bad of ['', '?name=', '?name=%3Cscript%3E', `?name=${'x'.repeat(33)}`]) {
      const refused = await get(gw.http, `/demo-token${bad}`);
      expect(refused.status).toBe(400);
      expect(JSON.parse(refused.body).error).toMatchObject({ code: 'invalid_field', field: 'name' });
    }
  });

  it('has no demo tokens without demoTokenSecret, and refuses a demoTokenSecret the gateway would not accept', async () => {
    const gw = await startGateway({ demo: true });
    expect((await get(gw.http, '/demo-token?name=Ann')).status).toBe(404);
    await expect(startGateway({ demo: true, demoTokenSecret: 'demo_token_secret_0123456789_0123456789_01' })).rejects.toThrow(
      /demoTokenSecret: must be one of jwtSecrets/,
    );
  });

  it('serves /herald.min.js (the built SDK bundle) and /demo.js as JavaScript', async () => {
    const gw = await startGateway({ demo: true });
    const bundle = await get(gw.http, '/herald.min.js');
    expect(bundle.status).toBe(200);
    expect(bundle.type).toMatch(/^(text|application)\/javascript(;|$)/);
    expect(bundle.headers.get('x-content-type-options')).toBe('nosniff');
    expect(bundle.body).toBe(readFileSync(BUNDLE, 'utf8'));
    expect(bundle.body).toContain('Herald');

    const demo = await get(gw.http, '/demo.js');
    expect(demo.status).toBe(200);
    expect(demo.type).toMatch(/^(text|application)\/javascript(;|$)/);
    expect(demo.body).toBe(readFileSync(DEMO_JS, 'utf8'));
    expect(demo.body).toContain('heraldDemo');
  });

  it('answers HEAD without a body, and does not serve the page for other methods', async () => {
    const gw = await startGateway({ demo: true });
    const full = await get(gw.http, '/');
    const head = await get(gw.http, '/', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    // uWebSockets.js cannot report a length for HEAD without holding the connection (transport/uws/http.ts).
    expect(head.headers.get('content-length')).toBe(TEST_TRANSPORT === 'uws' ? '0' : String(Buffer.byteLength(full.body)));
    const post = await get(gw.http, '/', { method: 'POST', body: 'x' });
    expect([404, 405]).toContain(post.status);
    expect(post.body).not.toContain('<html');
  });

  it('leaves the API, health checks, the WebSocket path and unknown paths as they are', async () => {
    const gw = await startGateway({ demo: true, demoApiKey: API_KEY });
    expect((await get(gw.http, '/healthz')).status).toBe(200);
    expect((await publish(gw.http, { channel: 'demo', type: 'note', payload: {} })).results.demo.seq).toBe(1);
    expect((await api(gw.http, 'POST', '/api/publish', { channel: 'demo', type: 'note', payload: {} }, { key: null })).status).toBe(401);
    const ws = await api(gw.http, 'GET', '/ws', undefined, { key: null });
    expect(ws.status).toBe(426);
    expect(ws.body.error.code).toBe('upgrade_required');
    const unknown = await api(gw.http, 'GET', '/nope.js', undefined, { key: null });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');
  });
});
