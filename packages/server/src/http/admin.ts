import { readFileSync } from 'node:fs';
import { ADMIN_CHANNEL, ADMIN_MESSAGE_TYPE, mintAdminToken } from '../auth/admin-token.js';
import type { Clock } from '../util/clock.js';
import { HeraldError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { ApiRoute } from './api-routes.js';
import type { RouteHook } from './handler.js';

/** The dashboard's files, built by `npm run build` (packages/server/scripts/build-admin.mjs) into dist/admin. */
export const ADMIN_ASSETS = new URL('../../dist/admin/', import.meta.url);

const ASSETS: ReadonlyArray<[path: string, file: string, type: string]> = [
  ['/admin', 'index.html', 'text/html; charset=utf-8'],
  ['/admin/', 'index.html', 'text/html; charset=utf-8'],
  ['/admin/admin.js', 'admin.js', 'text/javascript; charset=utf-8'],
  ['/admin/admin.css', 'admin.css', 'text/css; charset=utf-8'],
];

/**
 * The page keeps the API key in sessionStorage: no inline script, no other origin, no framing, so that
 * neither injected markup nor another site can reach it.
 */
const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

/** What the admin page and its token endpoint need. */
export interface AdminDeps {
  /** The API key admin tokens are signed with (the first configured one: every node shares it). */
  apiKey: string;
  /** The WebSocket path the page connects to. */
  wsPath: string;
  node: string;
  clock: Clock;
  logger: Logger;
}

/** The admin dashboard's HTTP side (its feed is observability/admin-feed.ts). */
export interface AdminHttp {
  /** Serves `/admin` (the page) and its script and stylesheet. No key is needed for the files themselves. */
  page: RouteHook;
  /** `POST /api/admin/token` (registered as the `admin` API route). */
  apiRoute: ApiRoute;
}

function readAssets(logger: Logger): Map<string, { type: string; body: Buffer }> | undefined {
  try {
    const files = new Map<string, { type: string; body: Buffer }>();
    for (const [path, file, type] of ASSETS) files.set(path, { type, body: readFileSync(new URL(file, ADMIN_ASSETS)) });
    return files;
  } catch (err) {
    logger.warn({ err }, 'the admin dashboard is not built (run npm run build); /admin answers 503');
    return undefined;
  }
}

/** Sets up the admin dashboard's page and token endpoint (option `admin`). Files are read once, at start. */
export function createAdminHttp(deps: AdminDeps): AdminHttp {
  const files = readAssets(deps.logger);

  const page: RouteHook = (req, res): boolean => {
    const path = req.url.split('?', 1)[0] ?? '/';
    if (path !== '/admin' && !path.startsWith('/admin/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    if (!files) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end('The admin dashboard is not built: run npm run build.\n');
      return true;
    }
    const file = files.get(path);
    if (!file) return false;
    res.writeHead(200, { 'content-type': file.type, 'content-length': file.body.length, ...PAGE_HEADERS });
    res.end(req.method === 'HEAD' ? undefined : file.body);
    return true;
  };

  const apiRoute: ApiRoute = {
    method: 'POST',
    param: 'required',
    handler: async (_req, url, param) => {
      if (param !== 'token') throw new HeraldError('not_found', `no API endpoint at ${url.pathname.slice(0, 100)}`);
      // The API key was checked before routing; every node shares the first key, so any node verifies the token.
      const { token, expiresAt } = await mintAdminToken(deps.apiKey, deps.clock.now());
      const body = { token, expiresAt, channel: ADMIN_CHANNEL, type: ADMIN_MESSAGE_TYPE, wsPath: deps.wsPath, node: deps.node };
      return [200, JSON.stringify(body)];
    },
  };

  return { page, apiRoute };
}
