import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { SignJWT } from 'jose';
import type { HttpRequest, HttpResponse } from '../transport/http.js';
import type { Clock } from '../util/clock.js';
import { isLoopbackRequest } from '../util/ip.js';
import type { Logger } from '../util/logger.js';
import type { RouteHook } from './handler.js';

/** What the demo page is told. */
export interface DemoOptions {
  /** The WebSocket path the page connects to. */
  wsPath: string;
  /**
   * An API key to prefill the publish form with (development mode only). Only a requester on this machine
   * (loopback, with no forwarding header naming another address) gets a page that carries it.
   */
  apiKey: string | undefined;
  /**
   * A JWT secret to mint demo tokens with (development mode only): `GET /demo-token?name=...` answers a requester on
   * this machine (the same rule as `apiKey`) with a token for the demo user of that name, who may join
   * `presence:demo` and publish to `chat:demo`.
   */
  tokenSecret?: string | undefined;
  clock: Clock;
  logger: Logger;
}

/** The demo's chat and who-is-here channels (what demo tokens grant). */
export const DEMO_CHAT = 'chat:demo';
export const DEMO_PRESENCE = 'presence:demo';
/** Demo user names: what the page picks or the visitor types. */
const DEMO_NAME = /^[A-Za-z0-9 _.-]{1,32}$/;
const DEMO_TOKEN_TTL = 3600;

const demoFile = (name: string): string => readFileSync(new URL(`../../demo/${name}`, import.meta.url), 'utf8');

function clientBundle(logger: Logger): string | undefined {
  try {
    return readFileSync(createRequire(import.meta.url).resolve('@herald/client/herald.min.js'), 'utf8');
  } catch (err) {
    logger.warn({ err }, 'the browser SDK bundle is missing (run npm run build); the demo page cannot connect');
    return undefined;
  }
}

/**
 * Serves the demo page at `/` (with `demo.js` and the SDK's `herald.min.js`): the browser SDK connected to
 * this gateway, its state, reconnects and messages, and a form that publishes through the HTTP API.
 * Files are read once, at start.
 */
export function createDemoRoute(options: DemoOptions): RouteHook {
  // "<" is escaped so nothing in the config can close the script element it sits in.
  const page = (local: boolean): string =>
    demoFile('index.html').replace(
      '{{CONFIG}}',
      JSON.stringify({
        wsPath: options.wsPath,
        apiKey: (local && options.apiKey) || null,
        demoTokens: local && options.tokenSecret !== undefined,
        chat: DEMO_CHAT,
        presence: DEMO_PRESENCE,
      }).replace(/</g, '\\u003c'),
    );
  const withKey = page(true);
  const withoutKey = page(false);
  const tokenKey = options.tokenSecret === undefined ? undefined : new TextEncoder().encode(options.tokenSecret);
  const files = new Map<string, { type: string; body: string | undefined }>([
    ['/', { type: 'text/html; charset=utf-8', body: withKey }],
    ['/demo.js', { type: 'text/javascript; charset=utf-8', body: demoFile('demo.js') }],
    ['/herald.min.js', { type: 'text/javascript; charset=utf-8', body: clientBundle(options.logger) }],
  ]);
  return (req: HttpRequest, res: HttpResponse): boolean => {
    const path = req.url.split('?', 1)[0] ?? '/';
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return true;
    }
    if (path === '/demo-token' && tokenKey !== undefined && req.method === 'GET' && isLoopbackRequest(req.remoteAddress, req.headers)) {
      demoToken(req, res, tokenKey, options.clock).catch((err: unknown) => {
        options.logger.error({ err }, 'demo token failed');
        if (!res.headersSent) res.writeHead(500).end();
      });
      return true;
    }
    const found = files.get(path === '/index.html' ? '/' : path);
    if (!found || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    // The development API key publishes to every channel: it must not reach another machine (issue 15).
    const file = found.body === withKey && !isLoopbackRequest(req.remoteAddress, req.headers) ? { ...found, body: withoutKey } : found;
    if (file.body === undefined) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('The browser SDK bundle is not built: run npm run build.\n');
      return true;
    }
    res.writeHead(200, {
      'content-type': file.type,
      'content-length': Buffer.byteLength(file.body),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:",
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
    return true;
  };
}

/** `GET /demo-token?name=Ann`: a token for the demo user `demo-Ann`, with `info: {name}`. */
async function demoToken(req: HttpRequest, res: HttpResponse, key: Uint8Array, clock: Clock): Promise<void> {
  const name = new URL(req.url, 'http://demo').searchParams.get('name') ?? '';
  if (!DEMO_NAME.test(name)) {
    const body = JSON.stringify({ error: { code: 'invalid_field', field: 'name', message: 'name must be 1-32 characters of letters, digits, space, _ . -' } });
    res.writeHead(400, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
    return;
  }
  const user = `demo-${name.trim().replace(/ +/g, '_') || '_'}`;
  const now = Math.floor(clock.now() / 1000);
  const token = await new SignJWT({ channels: [DEMO_PRESENCE], publish: [DEMO_CHAT], info: { name } })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user)
    .setIssuedAt(now)
    .setExpirationTime(now + DEMO_TOKEN_TTL)
    .sign(key);
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ token, user, name }));
}
