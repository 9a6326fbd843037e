import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
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
  logger: Logger;
}

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
  const page = (apiKey: string | undefined): string =>
    demoFile('index.html').replace('{{CONFIG}}', JSON.stringify({ wsPath: options.wsPath, apiKey: apiKey ?? null }).replace(/</g, '\\u003c'));
  const withKey = page(options.apiKey);
  const withoutKey = page(undefined);
  const files = new Map<string, { type: string; body: string | undefined }>([
    ['/', { type: 'text/html; charset=utf-8', body: withKey }],
    ['/demo.js', { type: 'text/javascript; charset=utf-8', body: demoFile('demo.js') }],
    ['/herald.min.js', { type: 'text/javascript; charset=utf-8', body: clientBundle(options.logger) }],
  ]);
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (path === '/favicon.ico') {
      res.writeHead(204).end();
      return true;
    }
    const found = files.get(path === '/index.html' ? '/' : path);
    if (!found || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    // The development API key publishes to every channel: it must not reach another machine (issue 15).
    const file = found.body === withKey && !isLoopbackRequest(req.socket.remoteAddress, req.headers) ? { ...found, body: withoutKey } : found;
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
