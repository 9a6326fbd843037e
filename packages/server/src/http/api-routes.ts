import { channelKind, INVALID_CHANNEL_MESSAGE, isValidChannel, type ChannelName } from '@herald/protocol';
import type { Hub } from '../delivery/hub.js';
import { isValidUserId, parsePublishBody, unknownApp, type ChannelNamespaces, type PublishItem } from '../delivery/publish-request.js';
import type { Publisher } from '../delivery/publisher.js';
import type { Engine } from '../engine/types.js';
import type { Operations } from '../observability/operations.js';
import type { HttpRequest } from '../transport/http.js';
import { HeraldError } from '../util/errors.js';
import { readJsonBody } from './body.js';
import { parseDisconnect } from './disconnect-request.js';

/**
 * An `/api/<name>` endpoint. `param` says whether it takes one more path segment (`/api/channels/<channel>`):
 * `none` (the default), `required` or `optional`; `path`: one or more, joined with `/` (`/api/users/42/inbox`).
 * The handler answers `[status, JSON body]` or throws a HeraldError; the API key was checked before it runs.
 */
export interface ApiRoute {
  /** The method, or the methods (the handler reads `req.method`). */
  method: ApiMethod | readonly ApiMethod[];
  param?: 'none' | 'required' | 'optional' | 'path';
  /**
   * For a route whose paths take different methods (`/api/webhooks` and `/api/webhooks/replay`): the methods of
   * the path with this param (`undefined` when the path is not an endpoint: 404), in place of `method` (405 with
   * `Allow` naming them).
   */
  methodsOf?: (param: string | undefined) => readonly ApiMethod[] | undefined;
  handler: (req: HttpRequest, url: RequestTarget, param: string | undefined, requestId: string) => Promise<[number, string]>;
}

export type ApiMethod = 'GET' | 'POST' | 'DELETE';

/** The parts of the request target a route reads (the query is parsed only when read). */
export type RequestTarget = Pick<URL, 'pathname' | 'searchParams'>;

/** What the API routes read and call. */
export interface ApiRoutesDeps {
  engine: Engine;
  hub: Hub;
  publisher: Publisher;
  ops: Pick<Operations, 'stats' | 'series'>;
  maxBodySize: number;
  maxPublishChannels: number;
  /** This node's id (in `GET /api/channels`). */
  node: string;
  isShuttingDown: () => boolean;
  /** Other protocols' namespaces (`app` in a publish, `?app=` on channels and history). */
  namespaces: ChannelNamespaces;
}

/** A 200 answer with `value` as its JSON body. */
const ok = (value: unknown): [number, string] => [200, JSON.stringify(value)];

const MAX_ONLINE_USERS = 1000;
const MAX_CHANNEL_LIST = 1000;
const MAX_HISTORY_LIMIT = 1000;
const MAX_MEMBER_LIST = 1000;

/** The `/api/*` endpoints of docs/protocol.md, by name. */
export function createApiRoutes(deps: ApiRoutesDeps): Map<string, ApiRoute> {
  const { engine, publisher } = deps;
  return new Map<string, ApiRoute>([
    [
      'publish',
      {
        method: 'POST',
        // Promise callbacks, not async functions: the path of every notification, and each async frame allocates.
        handler: (req, _url, _param, requestId) =>
          readJsonBody(req, deps.maxBodySize).then((body) => {
            const { items, many } = parsePublishBody(body, deps.maxPublishChannels, deps.namespaces);
            if (deps.isShuttingDown()) throw new HeraldError('shutting_down', 'the gateway is shutting down');
            return many ? publisher.publishAll(items, { requestId }).then(ok) : publisher.publish(items[0] as PublishItem, { requestId }).then(ok);
          }),
      },
    ],
    [
      'online',
      {
        method: 'GET',
        handler: async (_req, url) => {
          const raw = queryParam(url, 'users');
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
            const prefix = queryParam(url, 'prefix') ?? undefined;
            const list = deps.hub.listChannels({ prefix, limit });
            return [200, JSON.stringify({ node: deps.node, total: list.total, channels: list.channels })];
          }
          const channel = channelParam(param, url, deps.namespaces);
          const [p, subscribers] = await Promise.all([engine.history.position(channel), engine.presence.subscribers(channel)]);
          const body: Record<string, unknown> = { channel, subscribers, seq: p.seq, epoch: p.epoch };
          if (channelKind(channel) === 'presence') {
            // One entry per user, with the `info` of its token; at most MAX_MEMBER_LIST of them.
            const members = await engine.members.list(channel);
            body['users'] = members.length;
            body['members'] = members.slice(0, MAX_MEMBER_LIST).map((m) => ({ user: m.user, info: JSON.parse(m.infoJson) as unknown }));
          }
          return [200, JSON.stringify(body)];
        },
      },
    ],
    [
      'history',
      {
        method: 'GET',
        param: 'required',
        handler: async (_req, url, param) => {
          const channel = channelParam(param, url, deps.namespaces);
          const since = intParam(url, 'since', 0, Number.MAX_SAFE_INTEGER);
          const limit = intParam(url, 'limit', 1, MAX_HISTORY_LIMIT) ?? 100;
          const epoch = queryParam(url, 'epoch') ?? undefined;
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
          const d = parseDisconnect(await readJsonBody(req, deps.maxBodySize));
          const n = await engine.broker.disconnect({ ...d });
          if (d.client !== undefined && n === 0) throw new HeraldError('no_such_client', `no connection with client id ${d.client}`, { field: 'client' });
          return [200, JSON.stringify({ disconnected: n })];
        },
      },
    ],
    [
      'stats',
      {
        method: 'GET',
        handler: async (_req, url) => {
          const withSeries = ['1', 'true'].includes(queryParam(url, 'series') ?? '');
          const snapshot = await deps.ops.stats();
          return [200, JSON.stringify(withSeries ? { ...snapshot, series: deps.ops.series() } : snapshot)];
        },
      },
    ],
  ]);
}

/** The core channel of a path parameter: a native channel, or with `?app=` a channel of that app's namespace. */
function channelParam(param: string | undefined, url: RequestTarget, namespaces: ChannelNamespaces): ChannelName {
  let channel: string;
  try {
    channel = decodeURIComponent(param ?? '');
  } catch {
    throw new HeraldError('invalid_channel', 'the channel in the path is not valid percent-encoding', { field: 'channel' });
  }
  const app = queryParam(url, 'app');
  if (app !== null) {
    if (!namespaces.has(app)) throw unknownApp(app, 'app');
    return namespaces.channel(app, channel, 'channel');
  }
  if (!isValidChannel(channel)) throw new HeraldError('invalid_channel', INVALID_CHANNEL_MESSAGE, { field: 'channel' });
  return channel;
}

/**
 * The query parameter `name`, or null when absent. Given twice (`users=1&users=2`) it is refused: reading only
 * the first would answer for half of what was asked without saying so.
 */
export function queryParam(url: RequestTarget, name: string): string | null {
  const all = url.searchParams.getAll(name);
  if (all.length > 1) throw new HeraldError('invalid_field', `${name} is given more than once (list values in one, comma-separated)`, { field: name });
  return all[0] ?? null;
}

function intParam(url: RequestTarget, name: string, min: number, max: number): number | undefined {
  const raw = queryParam(url, name);
  if (raw === null) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new HeraldError('invalid_field', `${name} must be an integer between ${min} and ${max}`, { field: name });
  }
  return n;
}
