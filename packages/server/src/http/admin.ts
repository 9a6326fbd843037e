import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { decodeProtectedHeader, errors, jwtVerify, SignJWT } from 'jose';
import { TOKEN_ALGORITHMS, TokenVerifier, type Principal, type TokenFailure } from '../auth/jwt.js';
import type { Context } from '../context.js';
import { HeraldError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { NodeSnapshot } from '../metrics/snapshot.js';
import type { ApiRoute, RouteHook } from './api.js';

/**
 * The reserved channel the gateway publishes its stats snapshots to, once a second per node while somebody
 * is subscribed. A `private:` channel: only a token that grants it may subscribe (the admin token below).
 */
export const ADMIN_CHANNEL = 'private:herald.admin';
/** The message type of a snapshot on the admin channel (its payload is a `NodeSnapshot`). */
export const ADMIN_MESSAGE_TYPE = 'stats';
/** The `kid` header that marks an admin token; verified with the admin keys only. */
export const ADMIN_TOKEN_KID = 'herald-admin';
/** How long an admin token (and the dashboard connection made with it) lasts, in ms. */
export const ADMIN_TOKEN_TTL_MS = 5 * 60_000;
const ADMIN_SCOPE = 'herald-admin';

/**
 * The key admin tokens are signed with: HMAC-SHA256 of a fixed label under the API key. Every node that
 * shares the API key can verify them, they need no JWT secret, the key cannot be recovered from a token,
 * and rotating the API key out invalidates them.
 */
function adminKey(apiKey: string): Uint8Array {
  return createHmac('sha256', apiKey).update('herald admin token v1').digest();
}

/** Whether `token` claims to be an admin token (its header says `kid: herald-admin`). */
function isAdminToken(token: string): boolean {
  try {
    return decodeProtectedHeader(token).kid === ADMIN_TOKEN_KID;
  } catch {
    return false;
  }
}

/**
 * Connection tokens, plus admin tokens: a token with `kid: herald-admin` is verified with the keys derived
 * from the API keys (never the JWT secrets) and grants exactly one thing, subscribing to `ADMIN_CHANNEL`
 * as an anonymous connection (no user, no presence entry), until it expires; whatever else it claims is
 * ignored. Every other token goes to the ordinary verifier.
 */
export class AdminTokenVerifier extends TokenVerifier {
  private readonly adminKeys: Uint8Array[];

  constructor(jwtSecrets: readonly string[], apiKeys: readonly string[]) {
    super(jwtSecrets);
    this.adminKeys = apiKeys.map(adminKey);
  }

  override async verify(token: string, now: number): Promise<{ ok: true; principal: Principal } | TokenFailure> {
    if (!isAdminToken(token)) return super.verify(token, now);
    for (const key of this.adminKeys) {
      try {
        const { payload } = await jwtVerify(token, key, { algorithms: TOKEN_ALGORITHMS, currentDate: new Date(now) });
        if (payload['scope'] !== ADMIN_SCOPE || payload.exp === undefined) break;
        return { ok: true, principal: { user: null, channels: [ADMIN_CHANNEL], expiresAt: payload.exp * 1000 } };
      } catch (err) {
        if (err instanceof errors.JWTExpired) return { ok: false, reason: 'expired', message: 'token expired' };
      }
    }
    return { ok: false, reason: 'invalid', message: 'admin token rejected' };
  }
}

/** Signs an admin token with the key derived from `apiKey`, valid for `ttlMs` from `now`. */
export async function mintAdminToken(apiKey: string, now: number, ttlMs = ADMIN_TOKEN_TTL_MS): Promise<{ token: string; expiresAt: number }> {
  const iat = Math.floor(now / 1000);
  const exp = Math.floor((now + ttlMs) / 1000);
  const token = await new SignJWT({ scope: ADMIN_SCOPE, channels: [ADMIN_CHANNEL] })
    .setProtectedHeader({ alg: 'HS256', kid: ADMIN_TOKEN_KID, typ: 'JWT' })
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(adminKey(apiKey));
  return { token, expiresAt: exp * 1000 };
}

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

/** What the admin feature needs from the gateway. */
export interface AdminDeps {
  ctx: Context;
  node: string;
  /** This node's snapshot now. */
  snapshot: () => NodeSnapshot;
}

/** The admin dashboard: its page, its token endpoint, and the snapshot feed. */
export interface Admin {
  /** Serves `/admin` (the page) and its script and stylesheet. No key is needed for the files themselves. */
  page: RouteHook;
  /** `POST /api/admin/token` (registered as the `admin` API route). */
  apiRoute: ApiRoute;
  /** Publishes a snapshot to `ADMIN_CHANNEL` when somebody watches (called once a second). */
  tick(): void;
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

/** Sets up the admin dashboard (option `admin`). Files are read once, at start. */
export function createAdmin(deps: AdminDeps): Admin {
  const { ctx } = deps;
  const { engine, options, stats, logger, clock } = ctx;
  const files = readAssets(logger);

  const page: RouteHook = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
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
      const { token, expiresAt } = await mintAdminToken(options.apiKeys[0] as string, clock.now());
      const body = { token, expiresAt, channel: ADMIN_CHANNEL, type: ADMIN_MESSAGE_TYPE, wsPath: options.wsPaths[0] ?? '/ws', node: deps.node };
      return [200, JSON.stringify(body)];
    },
  };

  let busy = false;
  const tick = (): void => {
    if (busy) return;
    busy = true;
    // Cluster-wide: a dashboard connected to another node still gets this node's snapshots.
    engine.presence
      .subscribers(ADMIN_CHANNEL)
      .then(async (watchers) => {
        if (watchers === 0) return;
        // Straight into the engine, not through the Publisher: snapshots are not application messages.
        await engine.broker.publish({ channel: ADMIN_CHANNEL, type: ADMIN_MESSAGE_TYPE, payloadJson: JSON.stringify(deps.snapshot()) });
      })
      .catch((err: unknown) => stats.engineError('admin', { channel: ADMIN_CHANNEL, error: err instanceof Error ? err.message : String(err) }))
      .finally(() => {
        busy = false;
      });
  };

  return { page, apiRoute, tick };
}
