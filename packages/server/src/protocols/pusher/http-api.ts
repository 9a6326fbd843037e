import { PusherCode } from '@herald/protocol';
import type { Publisher } from '../../delivery/publisher.js';
import type { Stats } from '../../delivery/stats.js';
import type { Engine } from '../../engine/types.js';
import { ClientAbortedError, closesAfterRefusedBody, type HttpRequest, type HttpResponse } from '../../transport/http.js';
import type { Clock } from '../../util/clock.js';
import { errorBody, HeraldError } from '../../util/errors.js';
import type { Logger } from '../../util/logger.js';
import type { ProtocolRoute } from '../types.js';
import type { PusherApp, PusherApps } from './apps.js';
import { verifyRequest } from './http-auth.js';
import { parseEventItem, type EventItem } from './http-events.js';
import { channelKindOf, coreChannel, isPusherChannel, pusherName, pusherUser } from './names.js';

/** What the Pusher HTTP API reads and calls. */
export interface PusherHttpDeps {
  apps: PusherApps;
  engine: Pick<Engine, 'broker' | 'presence' | 'members'>;
  publisher: Publisher;
  stats: Stats;
  clock: Clock;
  logger: Logger;
  /** Largest request body (413 above it). */
  maxBodySize: number;
  isShuttingDown: () => boolean;
}

/** Most events in one `batch_events` request (Pusher's multi-tenant limit). */
export const MAX_BATCH = 10;
/** Most channels `GET /channels` lists. */
const MAX_CHANNEL_LIST = 10_000;

/** `query`: the request's parameters with their names lowercased, as the signature covers them. */
type Handler = (app: PusherApp, parts: string[], query: URLSearchParams, body: Buffer) => Promise<object>;

interface Route {
  method: 'GET' | 'POST';
  /** Path segments after `/apps/{id}/`; `*` matches one segment. */
  pattern: string[];
  handler: Handler;
}

/**
 * The Pusher HTTP API of every configured app (docs/pusher.md): `/apps/{id}/events`, `batch_events`, `channels`,
 * `channels/{name}`, `channels/{name}/users` and `users/{id}/terminate_connections`, each request signed as
 * Pusher signs them (http-auth.ts). Answers are JSON objects with status 200; errors are Herald's JSON error
 * body with 400, 401, 404, 405, 413 or 503.
 */
export function createPusherHttpApi(d: PusherHttpDeps): ProtocolRoute {
  const routes: Route[] = [
    { method: 'POST', pattern: ['events'], handler: (app, _p, _u, body) => events(app, body) },
    { method: 'POST', pattern: ['batch_events'], handler: (app, _p, _u, body) => batchEvents(app, body) },
    { method: 'GET', pattern: ['channels'], handler: (app, _p, query) => channels(app, query) },
    { method: 'GET', pattern: ['channels', '*'], handler: (app, p, query) => channel(app, p[1] as string, query) },
    { method: 'GET', pattern: ['channels', '*', 'users'], handler: (app, p) => users(app, p[1] as string) },
    { method: 'POST', pattern: ['users', '*', 'terminate_connections'], handler: (app, p) => terminate(app, p[1] as string) },
  ];

  const publish = async (app: PusherApp, items: EventItem[]): Promise<Array<Record<string, object> | undefined>> => {
    if (d.isShuttingDown()) throw new HeraldError('shutting_down', 'the gateway is shutting down');
    await d.publisher.publishAll(
      items.map((e) => ({
        target: { kind: 'channels' as const, channels: e.channels.map((c) => coreChannel(app.id, c)) },
        type: e.type,
        payloadJson: e.payloadJson,
        id: undefined,
        ...(e.socketId === undefined ? {} : { exclude: e.socketId }),
      })),
    );
    return Promise.all(items.map((e) => (e.info.length === 0 ? undefined : channelInfos(app, e.channels, e.info))));
  };

  const channelInfos = async (app: PusherApp, names: readonly string[], info: readonly string[]): Promise<Record<string, object>> => {
    const out = Object.create(null) as Record<string, object>;
    for (const name of names) out[name] = await attributes(app, name, info);
    return out;
  };

  /** `user_count` (presence channels) and `subscription_count` of one channel. */
  const attributes = async (app: PusherApp, name: string, info: readonly string[]): Promise<Record<string, number>> => {
    const core = coreChannel(app.id, name);
    const out: Record<string, number> = {};
    if (info.includes('user_count') && channelKindOf(name).kind === 'presence') out['user_count'] = await d.engine.members.count(core);
    if (info.includes('subscription_count')) out['subscription_count'] = await d.engine.presence.subscribers(core);
    return out;
  };

  const events = async (app: PusherApp, body: Buffer): Promise<object> => {
    const item = parseEventItem(jsonBody(body), app, '', true);
    const [info] = await publish(app, [item]);
    return info === undefined ? {} : { channels: info };
  };

  const batchEvents = async (app: PusherApp, body: Buffer): Promise<object> => {
    const raw = jsonBody(body);
    const batch = isObject(raw) ? raw['batch'] : undefined;
    if (!Array.isArray(batch) || batch.length === 0) throw new HeraldError('invalid_field', 'batch must be a non-empty array', { field: 'batch' });
    if (batch.length > MAX_BATCH) throw new HeraldError('invalid_field', `batch: at most ${MAX_BATCH} events`, { field: 'batch' });
    const items = batch.map((b, i) => parseEventItem(b, app, `batch[${i}].`, false));
    const infos = await publish(app, items);
    if (infos.every((x) => x === undefined)) return {};
    // Pusher answers the attributes of each event's channel, index-aligned with the batch.
    return { batch: infos.map((x) => (x === undefined ? {} : (Object.values(x)[0] ?? {}))) };
  };

  const channels = async (app: PusherApp, query: URLSearchParams): Promise<object> => {
    const prefix = query.get('filter_by_prefix') ?? '';
    const info = listParam(query.get('info'));
    if (info.some((a) => a !== 'user_count')) throw new HeraldError('invalid_field', 'info: only user_count is supported here', { field: 'info' });
    if (info.length > 0 && !prefix.startsWith('presence-')) {
      throw new HeraldError('invalid_field', 'info=user_count needs filter_by_prefix=presence-', { field: 'info' });
    }
    const found = await d.engine.presence.channels(coreChannel(app.id, prefix), MAX_CHANNEL_LIST);
    const out = Object.create(null) as Record<string, object>;
    for (const core of found) out[pusherName(core)] = info.length === 0 ? {} : { user_count: await d.engine.members.count(core) };
    return { channels: out };
  };

  const channel = async (app: PusherApp, raw: string, query: URLSearchParams): Promise<object> => {
    const name = channelParam(raw);
    const info = listParam(query.get('info'));
    const presence = channelKindOf(name).kind === 'presence';
    for (const a of info) {
      if (a === 'user_count' && !presence) throw new HeraldError('invalid_field', 'info: user_count is only for presence channels', { field: 'info' });
      if (a !== 'user_count' && a !== 'subscription_count')
        throw new HeraldError('invalid_field', `info: ${a.slice(0, 50)} is not supported`, { field: 'info' });
    }
    const subscribers = await d.engine.presence.subscribers(coreChannel(app.id, name));
    return { occupied: subscribers > 0, ...(await attributes(app, name, info)) };
  };

  const users = async (app: PusherApp, raw: string): Promise<object> => {
    const name = channelParam(raw);
    if (channelKindOf(name).kind !== 'presence') throw new HeraldError('invalid_field', 'users are only listed for presence channels', { field: 'channel' });
    const members = await d.engine.members.list(coreChannel(app.id, name));
    return { users: members.map((m) => ({ id: m.user })) };
  };

  const terminate = async (app: PusherApp, raw: string): Promise<object> => {
    const user = decodeSegment(raw, 'user_id');
    if (user.length === 0 || user.length > 128) throw new HeraldError('invalid_field', 'user_id must be 1-128 characters', { field: 'user_id' });
    await d.engine.broker.disconnect({ user: pusherUser(app.id, user), code: PusherCode.Unauthorized, reason: 'terminated by the server' });
    return {};
  };

  const serve = async (req: HttpRequest, res: HttpResponse, url: URL, segments: string[]): Promise<void> => {
    const app = d.apps.id(decodeSegment(segments[0] ?? '', 'app_id'));
    if (!app) throw new HeraldError('not_found', 'no such app');
    const parts = segments.slice(1);
    const route = routes.find((r) => r.pattern.length === parts.length && r.pattern.every((p, i) => p === '*' || p === parts[i]));
    if (!route) throw new HeraldError('not_found', `no Pusher API endpoint at ${url.pathname.slice(0, 100)}`);
    if (req.method !== route.method) throw new HeraldError('method_not_allowed', `${url.pathname.slice(0, 100)} accepts ${route.method}`);
    const body = await readBody(req, d.maxBodySize);
    const path = req.url.split('?', 1)[0] as string;
    const problem = verifyRequest(app, route.method, path, url.searchParams, body, d.clock.now());
    if (problem !== undefined) {
      d.stats.authFailure('pusher_api_signature', { path: path.slice(0, 100), error: problem });
      throw new HeraldError('unauthorized', problem);
    }
    // The signature covers the parameters with their names lowercased (FILTER_BY_PREFIX signs as filter_by_prefix):
    // the handlers read them so, or a name's case could be changed under a valid signature to make one go unread.
    const query = new URLSearchParams();
    for (const [k, v] of url.searchParams) query.append(k.toLowerCase(), v);
    send(res, 200, JSON.stringify(await route.handler(app, parts, query, body)));
  };

  return (req, res) => {
    const target = req.url;
    if (!target.startsWith('/apps/')) return false;
    let url: URL;
    try {
      url = new URL(target, 'http://localhost');
    } catch {
      return false;
    }
    const segments = url.pathname.split('/').slice(2);
    serve(req, res, url, segments).catch((err: unknown) => {
      if (err instanceof HeraldError) {
        // A body still arriving: read and dropped after the answer, or the connection closed (closesAfterRefusedBody).
        if (err.code === 'body_too_large' && closesAfterRefusedBody(req)) res.setHeader('connection', 'close');
        if (err.status >= 500) d.logger.warn({ err, path: url.pathname.slice(0, 100) }, 'pusher api request failed');
        send(res, err.status, errorBody(err));
        return;
      }
      if (err instanceof ClientAbortedError) {
        res.destroy();
        return;
      }
      d.logger.error({ err, path: url.pathname.slice(0, 100) }, 'pusher api request failed');
      send(res, 500, errorBody(new HeraldError('internal', 'internal error')));
    });
    return true;
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function send(res: HttpResponse, status: number, body: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function jsonBody(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new HeraldError('invalid_body', 'the request body is not valid JSON');
  }
}

function listParam(raw: string | null): string[] {
  return raw === null ? [] : raw.split(',').filter((a) => a.length > 0);
}

function decodeSegment(raw: string, field: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HeraldError('invalid_field', `${field} is not valid percent-encoding`, { field });
  }
}

function channelParam(raw: string): string {
  const name = decodeSegment(raw, 'channel');
  if (!isPusherChannel(name)) throw new HeraldError('invalid_channel', 'invalid channel name', { field: 'channel' });
  return name;
}

/** The raw body (its MD5 is signed), at most `max` bytes (413 above). */
async function readBody(req: HttpRequest, max: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) throw tooLarge(max);
  return req.body(max);
}

function tooLarge(max: number): HeraldError {
  return new HeraldError('body_too_large', `the request body exceeds ${max} bytes`, { extra: { limit: max } });
}
