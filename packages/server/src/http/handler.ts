import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Auth } from '../auth/types.js';
import type { Stats } from '../delivery/stats.js';
import type { Operations } from '../observability/operations.js';
import { Drain } from '../util/drain.js';
import { HeraldError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { ApiRoute } from './api-routes.js';
import { ClientAbortedError } from './body.js';
import { sendError, sendJson } from './respond.js';

/** Extra HTTP routes (demo page, admin page): return true when the request was handled. */
export type RouteHook = (req: IncomingMessage, res: ServerResponse) => boolean;

/** What the HTTP handler serves and checks with. */
export interface HttpDeps {
  auth: Auth;
  stats: Stats;
  logger: Logger;
  /** The `/api/<name>` endpoints. */
  apiRoutes: ReadonlyMap<string, ApiRoute>;
  /** Metrics and readiness. */
  ops: Pick<Operations, 'metrics' | 'readiness'>;
  /** Whether a path is a WebSocket endpoint (a plain request there answers 426). */
  isEndpoint: (path: string) => boolean;
  /** Routes tried after the built-in ones (demo page, admin page); more can be added while running. */
  extraRoutes: RouteHook[];
}

/** The request handler, plus `idle()`, which resolves once no request is in flight (graceful shutdown). */
export type HttpHandler = ((req: IncomingMessage, res: ServerResponse) => void) & { idle(): Promise<void> };

/**
 * The plain `(req, res)` handler for everything that is not a WebSocket upgrade: `/healthz`, `/readyz`,
 * `/metrics`, the `/api/*` endpoints (Bearer API key), and extra routes. Every error answers with the
 * JSON error shape of docs/errors.md.
 */
export function createHttpHandler(deps: HttpDeps): HttpHandler {
  const { auth, stats, logger } = deps;
  const inFlight = new Drain();

  const serveMetrics = async (req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> => {
    const authorization = req.headers.authorization;
    if (!auth.verifyApiKey(authorization, 'metrics')) {
      stats.authFailure('metrics', { requestId, header: authorization === undefined ? 'missing' : 'invalid' });
      sendError(res, new HeraldError('unauthorized', 'missing or invalid credentials (Authorization: Bearer <API key or metrics token>)'), {
        'www-authenticate': 'Bearer',
        'x-request-id': requestId,
      });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, new HeraldError('method_not_allowed', '/metrics accepts GET'), { allow: 'GET', 'x-request-id': requestId });
      return;
    }
    const { metrics } = deps.ops;
    const body = await metrics.render();
    res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const serveApi = async (req: IncomingMessage, res: ServerResponse, url: URL, requestId: string): Promise<void> => {
    const headers = { 'x-request-id': requestId };
    if (!auth.verifyApiKey(req.headers.authorization)) {
      stats.authFailure('api_key', {
        requestId,
        path: url.pathname.slice(0, 100),
        header: req.headers.authorization === undefined ? 'missing' : 'invalid',
      });
      // A publish refused for its key is a message that will not arrive: count it where operators look.
      if (url.pathname === '/api/publish') stats.drop('not_authorized', 1, { requestId });
      sendError(res, new HeraldError('unauthorized', 'missing or invalid API key (Authorization: Bearer <key>)'), { ...headers, 'www-authenticate': 'Bearer' });
      return;
    }
    const [, , name, ...rest] = url.pathname.split('/');
    const route = deps.apiRoutes.get(name ?? '');
    const param = route?.param ?? 'none';
    const shapeOk =
      param === 'none'
        ? rest.length === 0
        : param === 'required'
          ? rest.length === 1 && rest[0] !== ''
          : param === 'path'
            ? rest.length > 0 && rest.every((r) => r !== '')
            : rest.length === 0 || (rest.length === 1 && rest[0] !== '');
    if (!route || !shapeOk) {
      sendError(res, new HeraldError('not_found', `no API endpoint at ${url.pathname.slice(0, 100)}`), headers);
      return;
    }
    const methods: readonly string[] = typeof route.method === 'string' ? [route.method] : route.method;
    if (!methods.includes(req.method ?? '')) {
      sendError(res, new HeraldError('method_not_allowed', `${url.pathname} accepts ${methods.join(', ')}`), { ...headers, allow: methods.join(', ') });
      return;
    }
    const [status, body] = await route.handler(req, url, param === 'path' ? rest.join('/') : rest[0], requestId);
    sendJson(res, status, body, headers);
  };

  const failed = (err: unknown, res: ServerResponse, path: string, requestId: string): void => {
    if (err instanceof ClientAbortedError) {
      logger.debug({ requestId, path }, 'client aborted the request');
      res.destroy();
      return;
    }
    if (err instanceof HeraldError) {
      if (err.code === 'engine_unavailable' || err.code === 'engine_timeout')
        stats.engineError('api', { requestId, path: path.slice(0, 100), code: err.code, error: err.message });
      else if (err.status >= 500) logger.warn({ err, requestId, path }, 'request failed');
      // A publish that was refused (invalid, engine down, shutting down) is a message that will not arrive. One
      // whose outcome is unknown (engine_timeout) may have been published: it is an engine error, not a drop.
      if (path === '/api/publish' && err.code !== 'no_such_client' && err.code !== 'engine_timeout') {
        const reason = err.status < 500 ? 'invalid' : err.code === 'shutting_down' ? 'shutting_down' : 'engine_unavailable';
        stats.drop(reason, 1, { requestId, code: err.code, ...(err.field === undefined ? {} : { field: err.field }) });
      }
      // A refused body may still be arriving: answer, then drop the connection instead of reading it.
      sendError(res, err, { 'x-request-id': requestId, ...(err.code === 'body_too_large' ? { connection: 'close' } : {}) });
      return;
    }
    logger.error({ err, requestId, path }, 'request failed');
    sendError(res, new HeraldError('internal', 'internal error'), { 'x-request-id': requestId });
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    inFlight.begin();
    res.once('close', () => inFlight.end());
    const requestId = headerId(req.headers['x-request-id']) ?? randomUUID();
    res.setHeader('x-request-id', requestId);
    if (logger.isLevelEnabled('debug')) {
      // One access line per request at debug: at info, a busy publisher would flood the log.
      const started = process.hrtime.bigint();
      res.once('finish', () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        logger.debug({ requestId, method: req.method, path: (req.url ?? '/').split('?', 1)[0]?.slice(0, 100), status: res.statusCode, ms }, 'http request');
      });
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendError(res, new HeraldError('not_found', 'malformed request target'));
      return;
    }
    const path = url.pathname;
    const run = async (): Promise<void> => {
      if (deps.isEndpoint(path)) {
        sendError(res, new HeraldError('upgrade_required', `${path} is a WebSocket endpoint`), { upgrade: 'websocket', connection: 'Upgrade' });
      } else if (path === '/healthz') {
        sendJson(res, 200, JSON.stringify({ status: 'ok' }));
      } else if (path === '/readyz') {
        const [status, body] = await deps.ops.readiness();
        sendJson(res, status, body);
      } else if (path === '/metrics') {
        await serveMetrics(req, res, requestId);
      } else if (path.startsWith('/api/')) {
        await serveApi(req, res, url, requestId);
      } else if (!deps.extraRoutes.some((r) => r(req, res))) {
        sendError(res, new HeraldError('not_found', `nothing at ${path.slice(0, 100)}`));
      }
    };
    run().catch((err: unknown) => failed(err, res, path, requestId));
  };

  return Object.assign(handle, { idle: () => inFlight.drained() });
}

function headerId(v: string | string[] | undefined): string | undefined {
  return typeof v === 'string' && /^[\w.:-]{1,100}$/.test(v) ? v : undefined;
}
