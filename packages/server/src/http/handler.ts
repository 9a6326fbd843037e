import type { Auth } from '../auth/types.js';
import type { Stats } from '../delivery/stats.js';
import type { Operations } from '../observability/operations.js';
import { closesAfterRefusedBody, type HttpRequest, type HttpResponse } from '../transport/http.js';
import { Drain } from '../util/drain.js';
import { HeraldError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { requestIdOf } from '../util/request-id.js';
import type { ApiRoute, RequestTarget } from './api-routes.js';
import { ClientAbortedError } from './body.js';
import { sendError, sendJson } from './respond.js';

/** Extra HTTP routes (demo page, admin page): return true when the request was handled. */
export type RouteHook = (req: HttpRequest, res: HttpResponse) => boolean;

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

/** The request handler, plus `idle()`, which resolves once no request is in flight (graceful shutdown), and how many are. */
export type HttpHandler = ((req: HttpRequest, res: HttpResponse) => void) & { idle(): Promise<void>; readonly inFlight: number };

/** A parsed request target: the path, and the query parsed only when a route reads it. */
class Target implements RequestTarget {
  private params: URLSearchParams | undefined;
  constructor(
    readonly pathname: string,
    private readonly query: string,
  ) {}
  get searchParams(): URLSearchParams {
    return (this.params ??= new URLSearchParams(this.query));
  }
}

/** Paths that a URL parser would leave as they are (no dot segments, backslashes or characters it escapes). */
const PLAIN_PATH = /^\/[\w\-~!$&'()*+,;=:@%/.]*$/;

/**
 * The request target as `new URL` reads it, without building a URL for the plain paths of the API. One exception:
 * under `/api/` a percent-encoded dot segment (`%2E`, `%2E%2E`) is data, not a dot segment: the only way to name
 * the valid channels `.` and `..` (or such a user id) in a path. RFC 3986 removes literal dot segments only, and
 * curl and PHP send `%2E%2E` as it is; WHATWG URL (a browser, Node's fetch) turns it into `..` before sending.
 */
function parseTarget(raw: string): Target | undefined {
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  if (PLAIN_PATH.test(path) && (q < 0 || !raw.includes('#', q))) {
    const query = q < 0 ? '' : raw.slice(q + 1);
    if (path.startsWith('/api/')) return new Target(path.includes('/.') ? removeDotSegments(path) : path, query);
    if (!path.includes('/.') && !/%2e/i.test(path)) return new Target(path, query);
  }
  try {
    const url = new URL(raw, 'http://localhost');
    return new Target(url.pathname, url.search.slice(1));
  } catch {
    return undefined;
  }
}

/** RFC 3986's remove_dot_segments for a path of PLAIN_PATH: the literal `.` and `..` segments only. */
function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i] as string;
    const last = i === segments.length - 1;
    if (s === '.' || s === '..') {
      if (s === '..') out.pop();
      // `/a/b/..` is `/a/`: a dot segment at the end leaves its slash.
      if (last) out.push('');
    } else out.push(s);
  }
  return `/${out.join('/')}`;
}

/**
 * The plain `(req, res)` handler for everything that is not a WebSocket upgrade: `/healthz`, `/readyz`,
 * `/metrics`, the `/api/*` endpoints (Bearer API key), and extra routes. Every error answers with the
 * JSON error shape of docs/errors.md.
 */
export function createHttpHandler(deps: HttpDeps): HttpHandler {
  const { auth, stats, logger } = deps;
  const inFlight = new Drain();

  const serveMetrics = async (req: HttpRequest, res: HttpResponse, requestId: string): Promise<void> => {
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

  /** Answers an `/api/*` request: at once when it is refused, otherwise once its route's promise settles (returned). */
  const serveApi = (req: HttpRequest, res: HttpResponse, url: Target, requestId: string): Promise<void> | undefined => {
    const authorization = req.headers.authorization;
    if (!auth.verifyApiKey(authorization)) {
      stats.authFailure('api_key', {
        requestId,
        path: url.pathname.slice(0, 100),
        header: authorization === undefined ? 'missing' : 'invalid',
      });
      // A publish refused for its key is a message that will not arrive: count it where operators look.
      if (url.pathname === '/api/publish') stats.drop('not_authorized', 1, { requestId });
      sendError(res, new HeraldError('unauthorized', 'missing or invalid API key (Authorization: Bearer <key>)'), {
        'x-request-id': requestId,
        'www-authenticate': 'Bearer',
      });
      return undefined;
    }
    const pathname = url.pathname;
    // `/api/<name>` alone (the common case) needs no split.
    const slash = pathname.indexOf('/', 5);
    const name = slash < 0 ? pathname.slice(5) : pathname.slice(5, slash);
    const rest = slash < 0 ? NO_SEGMENTS : pathname.slice(slash + 1).split('/');
    const route = deps.apiRoutes.get(name);
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
      sendError(res, new HeraldError('not_found', `no API endpoint at ${url.pathname.slice(0, 100)}`), { 'x-request-id': requestId });
      return undefined;
    }
    const method = req.method;
    const arg = param === 'path' ? rest.join('/') : rest[0];
    const methods = route.methodsOf ? route.methodsOf(arg) : route.method;
    if (methods === undefined) {
      sendError(res, new HeraldError('not_found', `no API endpoint at ${url.pathname.slice(0, 100)}`), { 'x-request-id': requestId });
      return undefined;
    }
    if (methods !== method && (typeof methods === 'string' || !methods.includes(method as 'GET'))) {
      const allowed: readonly string[] = typeof methods === 'string' ? [methods] : methods;
      sendError(res, new HeraldError('method_not_allowed', `${url.pathname} accepts ${allowed.join(', ')}`), {
        'x-request-id': requestId,
        allow: allowed.join(', '),
      });
      return undefined;
    }
    // x-request-id was set when the request arrived.
    return route.handler(req, url, arg, requestId).then(([status, body]) => sendJson(res, status, body));
  };

  const failed = (err: unknown, req: HttpRequest, res: HttpResponse, path: string, requestId: string): void => {
    if (err instanceof ClientAbortedError) {
      logger.debug({ requestId, path }, 'client aborted the request');
      res.destroy();
      return;
    }
    if (err instanceof HeraldError) {
      if (err.code === 'engine_unavailable' || err.code === 'engine_timeout')
        stats.engineError('api', { requestId, path: path.slice(0, 100), code: err.code, error: err.message });
      // shutting_down is the expected answer while the gateway stops (counted as a drop below), not a failure.
      else if (err.status >= 500 && err.code !== 'shutting_down') logger.warn({ err, requestId, path }, 'request failed');
      // A publish that was refused (invalid, engine down, shutting down) is a message that will not arrive. One
      // whose outcome is unknown (engine_timeout) may have been published: it is an engine error, not a drop.
      if (path === '/api/publish' && err.code !== 'no_such_client' && err.code !== 'engine_timeout') {
        const reason = err.status < 500 ? 'invalid' : err.code === 'shutting_down' ? 'shutting_down' : 'engine_unavailable';
        stats.drop(reason, 1, { requestId, code: err.code, ...(err.field === undefined ? {} : { field: err.field }) });
      }
      // A refused body may still be arriving: read and dropped after the answer, or the connection closed (see
      // closesAfterRefusedBody).
      const close = err.code === 'body_too_large' && closesAfterRefusedBody(req);
      sendError(res, err, { 'x-request-id': requestId, ...(close ? { connection: 'close' } : {}) });
      return;
    }
    logger.error({ err, requestId, path }, 'request failed');
    sendError(res, new HeraldError('internal', 'internal error'), { 'x-request-id': requestId });
  };

  /** Serves a request; a route that answers later (a promise) has its failure answered by `failed`. */
  const route = (req: HttpRequest, res: HttpResponse, url: Target, requestId: string): void => {
    const path = url.pathname;
    let later: Promise<void> | undefined;
    try {
      if (deps.isEndpoint(path)) {
        sendError(res, new HeraldError('upgrade_required', `${path} is a WebSocket endpoint`), { upgrade: 'websocket', connection: 'Upgrade' });
      } else if (path === '/healthz') {
        sendJson(res, 200, JSON.stringify({ status: 'ok' }));
      } else if (path === '/readyz') {
        later = deps.ops.readiness().then(([status, body]) => sendJson(res, status, body));
      } else if (path === '/metrics') {
        later = serveMetrics(req, res, requestId);
      } else if (path.startsWith('/api/')) {
        later = serveApi(req, res, url, requestId);
      } else if (!deps.extraRoutes.some((r) => r(req, res))) {
        sendError(res, new HeraldError('not_found', `nothing at ${path.slice(0, 100)}`));
      }
    } catch (err) {
      failed(err, req, res, path, requestId);
      return;
    }
    if (later !== undefined) later.then(undefined, (err: unknown) => failed(err, req, res, path, requestId));
  };

  const ended = (): void => inFlight.end();

  const handle = (req: HttpRequest, res: HttpResponse): void => {
    inFlight.begin();
    res.onClose(ended);
    const requestId = requestIdOf(req.headers['x-request-id']);
    res.setHeader('x-request-id', requestId);
    if (logger.isLevelEnabled('debug')) {
      // One access line per request at debug: at info, a busy publisher would flood the log.
      const started = process.hrtime.bigint();
      res.onClose(() => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        logger.debug({ requestId, method: req.method, path: req.url.split('?', 1)[0]?.slice(0, 100), status: res.statusCode, ms }, 'http request');
      });
    }
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      // RFC 9112 3.2: a server responds 400 to an HTTP/1.1 request without Host.
      sendError(res, new HeraldError('malformed_request', 'an HTTP/1.1 request needs a Host header'), { 'x-request-id': requestId, connection: 'close' });
      return;
    }
    const expectation = req.headers.expect;
    if (expectation !== undefined && !/^100-continue$/i.test(expectation)) {
      // Its body, if any, was not asked for: the connection is not reused.
      sendError(res, new HeraldError('expectation_failed', `cannot meet Expect: ${expectation.slice(0, 100)}`), {
        'x-request-id': requestId,
        connection: 'close',
      });
      return;
    }
    const url = parseTarget(req.url);
    if (url === undefined) {
      sendError(res, new HeraldError('not_found', 'malformed request target'));
      return;
    }
    route(req, res, url, requestId);
  };

  return Object.defineProperties(Object.assign(handle, { idle: () => inFlight.drained() }), {
    inFlight: { get: () => inFlight.size },
  }) as HttpHandler;
}

const NO_SEGMENTS: string[] = [];
