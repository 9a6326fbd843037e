import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isValidChannel, type ChannelName } from '@herald/protocol';
import type { ApiKeyChecker } from '../auth/api-key.js';
import type { Context } from '../context.js';
import { HeraldError } from '../errors.js';
import { listChannels } from '../metrics/snapshot.js';
import { Publisher } from '../publisher.js';
import { ClientAbortedError, readJsonBody } from './body.js';
import { sendError, sendJson } from './respond.js';
import { isValidUserId, parseDisconnect, parsePublishBody, type PublishItem } from './validate.js';

/** Extra HTTP routes (demo page, admin): return true when the request was handled. */
export type RouteHook = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * An `/api/<name>` endpoint. `param` says whether it takes one more path segment (`/api/channels/<channel>`):
 * `none` (the default), `required` or `optional`. The handler answers `[status, JSON body]` or throws a
 * HeraldError; the API key was checked before it runs.
 */
export interface ApiRoute {
  method: 'GET' | 'POST';
  param?: 'none' | 'required' | 'optional';
  handler: (req: IncomingMessage, url: URL, param: string | undefined, requestId: string) => Promise<[number, string]>;
}

export interface ApiDeps {
  ctx: Context;
  apiKeys: ApiKeyChecker;
  /** True once a graceful shutdown started. */
  isShuttingDown: () => boolean;
  extraRoutes: RouteHook[];
  /** More `/api/<name>` endpoints (stats, admin token), looked up after the built-in ones. */
  apiRoutes?: ReadonlyMap<string, ApiRoute>;
  /** Serves `GET /metrics` (it checks its own credentials); without it `/metrics` is 404. */
  metrics?: (req: IncomingMessage, res: ServerResponse, requestId: string) => Promise<void>;
  /** Answers `/readyz` with `[status, JSON body]`; without it, a bare engine check. */
  readiness?: () => Promise<[number, string]>;
  /** This node's id (in `GET /api/channels`). */
  node?: string;
}

/** The request handler, plus `idle()`, which resolves once no request is in flight (graceful shutdown). */
export type HttpHandler = ((req: IncomingMessage, res: ServerResponse) => void) & { idle(): Promise<void> };

const MAX_ONLINE_USERS = 1000;
const MAX_CHANNEL_LIST = 1000;
const MAX_HISTORY_LIMIT = 1000;

/**
 * The plain `(req, res)` handler for everything that is not a WebSocket upgrade: `/healthz`, `/readyz`,
 * the `/api/*` endpoints (Bearer API key), and extra routes. Every error answers with the JSON error shape.
 */
export function createHttpHandler(deps: ApiDeps): HttpHandler {
  const { ctx } = deps;
  let inFlight = 0;
  let idleWaiters: Array<() => void> = [];
  const done = (): void => {
    inFlight -= 1;
    if (inFlight > 0) return;
    const w = idleWaiters;
    idleWaiters = [];
    for (const resolve of w) resolve();
  };
  const { engine, options } = ctx;
  const wsPaths = new Set(options.wsPaths);

  const publisher = new Publisher(ctx);

  const routes = new Map<string, ApiRoute>([
    [
      'publish',
      {
        method: 'POST',
        handler: async (req, _url, _param, requestId) => {
          const { items, many } = parsePublishBody(await readJsonBody(req, options.maxBodySize), options.maxPublishChannels);
          if (deps.isShuttingDown()) throw new HeraldError('shutting_down', 'the gateway is shutting down');
          if (!many) return [200, JSON.stringify(await publisher.publish(items[0] as PublishItem, { requestId }))];
          const out = await publisher.publishAll(items, { requestId });
          return [200, JSON.stringify(out)];
        },
      },
    ],
    [
      'online',
      {
        method: 'GET',
        handler: async (_req, url) => {
          const raw = url.searchParams.get('users');
          if (raw === null) throw new HeraldError('missing_field', 'users is required (?users=42,43)', { field: 'users' });
          const users = [
            ...new Set(
              raw
                .split(',')
                .map((u) => u.trim())
                .filter((u) => u.length > 0),
            ),
          ];
          if (users.length > MAX_ONLINE_USERS) throw new HeraldError('invalid_field', `users: at most ${MAX_ONLINE_USERS} at once`, { field: 'users' });
          const bad = users.find((u) => !isValidUserId(u));
          if (bad !== undefined) throw new HeraldError('invalid_field', `users: ${bad.slice(0, 50)} is not a valid user id`, { field: 'users' });
          const counts = await engine.presence.online(users);
          const out = Object.create(null) as Record<string, { online: boolean; connections: number }>;
          for (const u of users) {
            const n = counts.get(u) ?? 0;
            out[u] = { online: n > 0, connections: n };
          }
          return [200, JSON.stringify({ users: out })];
        },
      },
    ],
    [
      'channels',
      {
        method: 'GET',
        param: 'optional',
        handler: async (_req, url, param) => {
          if (param === undefined) {
            // GET /api/channels: the channels with subscribers on this node (docs/protocol.md).
            const limit = intParam(url, 'limit', 1, MAX_CHANNEL_LIST) ?? 100;
            const prefix = url.searchParams.get('prefix') ?? undefined;
            const list = listChannels(ctx.hub.connections.values(), { prefix, limit });
            return [200, JSON.stringify({ node: deps.node ?? null, total: list.total, channels: list.channels })];
          }
          const channel = channelParam(param);
          const [p, subscribers] = await Promise.all([engine.history.position(channel), engine.presence.subscribers(channel)]);
          return [200, JSON.stringify({ channel, subscribers, seq: p.seq, epoch: p.epoch })];
        },
      },
    ],
    [
      'history',
      {
        method: 'GET',
        param: 'required',
        handler: async (_req, url, param) => {
          const channel = channelParam(param);
          const since = intParam(url, 'since', 0, Number.MAX_SAFE_INTEGER);
          const limit = intParam(url, 'limit', 1, MAX_HISTORY_LIMIT) ?? 100;
          const epoch = url.searchParams.get('epoch') ?? undefined;
          const page = await engine.history.read(channel, { limit, ...(since === undefined ? {} : { since }), ...(epoch === undefined ? {} : { epoch }) });
          // Stored frames are already JSON: join them instead of parsing and re-serializing.
          const head = JSON.stringify({ channel, seq: page.position.seq, epoch: page.position.epoch, complete: page.complete });
          return [200, `${head.slice(0, -1)},"messages":[${page.messages.map((m) => m.frame.toString('utf8')).join(',')}]}`];
        },
      },
    ],
    [
      'disconnect',
      {
        method: 'POST',
        handler: async (req) => {
          const d = parseDisconnect(await readJsonBody(req, options.maxBodySize));
          const n = await engine.broker.disconnect({ ...d });
          if (d.client !== undefined && n === 0) throw new HeraldError('no_such_client', `no connection with client id ${d.client}`, { field: 'client' });
          return [200, JSON.stringify({ disconnected: n })];
        },
      },
    ],
  ]);

  const serveApi = async (req: IncomingMessage, res: ServerResponse, url: URL, requestId: string): Promise<void> => {
    const headers = { 'x-request-id': requestId };
    if (!deps.apiKeys.check(req.headers.authorization)) {
      ctx.stats.authFailure('api_key', {
        requestId,
        path: url.pathname.slice(0, 100),
        header: req.headers.authorization === undefined ? 'missing' : 'invalid',
      });
      // A publish refused for its key is a message that will not arrive: count it where operators look.
      if (url.pathname === '/api/publish') ctx.stats.drop('not_authorized', 1, { requestId });
      sendError(res, new HeraldError('unauthorized', 'missing or invalid API key (Authorization: Bearer <key>)'), { ...headers, 'www-authenticate': 'Bearer' });
      return;
    }
    const [, , name, ...rest] = url.pathname.split('/');
    const route = routes.get(name ?? '') ?? deps.apiRoutes?.get(name ?? '');
    const param = route?.param ?? 'none';
    const shapeOk =
      param === 'none'
        ? rest.length === 0
        : param === 'required'
          ? rest.length === 1 && rest[0] !== ''
          : rest.length === 0 || (rest.length === 1 && rest[0] !== '');
    if (!route || !shapeOk) {
      sendError(res, new HeraldError('not_found', `no API endpoint at ${url.pathname.slice(0, 100)}`), headers);
      return;
    }
    if (req.method !== route.method) {
      sendError(res, new HeraldError('method_not_allowed', `${url.pathname} accepts ${route.method}`), { ...headers, allow: route.method });
      return;
    }
    const [status, body] = await route.handler(req, url, rest[0], requestId);
    sendJson(res, status, body, headers);
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    inFlight += 1;
    res.once('close', done);
    const requestId = headerId(req.headers['x-request-id']) ?? randomUUID();
    res.setHeader('x-request-id', requestId);
    if (ctx.logger.isLevelEnabled('debug')) {
      // One access line per request at debug: at info, a busy publisher would flood the log.
      const started = process.hrtime.bigint();
      res.once('finish', () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        ctx.logger.debug({ requestId, method: req.method, path: (req.url ?? '/').split('?', 1)[0]?.slice(0, 100), status: res.statusCode, ms }, 'http request');
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
      if (wsPaths.has(path)) {
        sendError(res, new HeraldError('upgrade_required', `${path} is a WebSocket endpoint`), { upgrade: 'websocket', connection: 'Upgrade' });
      } else if (path === '/healthz') {
        sendJson(res, 200, JSON.stringify({ status: 'ok' }));
      } else if (path === '/readyz') {
        await readiness(res);
      } else if (path === '/metrics' && deps.metrics) {
        await deps.metrics(req, res, requestId);
      } else if (path.startsWith('/api/')) {
        await serveApi(req, res, url, requestId);
      } else if (!deps.extraRoutes.some((r) => r(req, res))) {
        sendError(res, new HeraldError('not_found', `nothing at ${path.slice(0, 100)}`));
      }
    };
    run().catch((err: unknown) => {
      if (err instanceof ClientAbortedError) {
        ctx.logger.debug({ requestId, path }, 'client aborted the request');
        res.destroy();
        return;
      }
      if (err instanceof HeraldError) {
        if (err.code === 'engine_unavailable') ctx.stats.engineError('api', { requestId, path: path.slice(0, 100), error: err.message });
        else if (err.status >= 500) ctx.logger.warn({ err, requestId, path }, 'request failed');
        // A publish that was refused (invalid, engine down, shutting down) is a message that will not arrive.
        if (path === '/api/publish' && err.code !== 'no_such_client') {
          const reason = err.status < 500 ? 'invalid' : err.code === 'shutting_down' ? 'shutting_down' : 'engine_unavailable';
          ctx.stats.drop(reason, 1, { requestId, code: err.code, ...(err.field === undefined ? {} : { field: err.field }) });
        }
        // A refused body may still be arriving: answer, then drop the connection instead of reading it.
        sendError(res, err, { 'x-request-id': requestId, ...(err.code === 'body_too_large' ? { connection: 'close' } : {}) });
        return;
      }
      ctx.logger.error({ err, requestId, path }, 'request failed');
      sendError(res, new HeraldError('internal', 'internal error'), { 'x-request-id': requestId });
    });
  };

  return Object.assign(handle, {
    idle: () =>
      new Promise<void>((resolve) => {
        if (inFlight === 0) resolve();
        else idleWaiters.push(resolve);
      }),
  });

  async function readiness(res: ServerResponse): Promise<void> {
    if (deps.readiness) {
      const [status, body] = await deps.readiness();
      sendJson(res, status, body);
      return;
    }
    if (deps.isShuttingDown()) {
      sendJson(res, 503, JSON.stringify({ status: 'not_ready', reason: 'shutting down' }));
      return;
    }
    try {
      await engine.check();
      sendJson(res, 200, JSON.stringify({ status: 'ready', engine: engine.name }));
    } catch (err) {
      sendJson(res, 503, JSON.stringify({ status: 'not_ready', engine: engine.name, reason: err instanceof Error ? err.message : 'engine unavailable' }));
    }
  }
}

function headerId(v: string | string[] | undefined): string | undefined {
  return typeof v === 'string' && /^[\w.:-]{1,100}$/.test(v) ? v : undefined;
}

function channelParam(param: string | undefined): ChannelName {
  let channel: string;
  try {
    channel = decodeURIComponent(param ?? '');
  } catch {
    throw new HeraldError('invalid_channel', 'the channel in the path is not valid percent-encoding', { field: 'channel' });
  }
  if (!isValidChannel(channel)) throw new HeraldError('invalid_channel', 'invalid channel name', { field: 'channel' });
  return channel;
}

function intParam(url: URL, name: string, min: number, max: number): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new HeraldError('invalid_field', `${name} must be an integer between ${min} and ${max}`, { field: name });
  }
  return n;
}
