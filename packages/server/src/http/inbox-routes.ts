import { isValidUserId } from '../delivery/publish-request.js';
import type { Engine } from '../engine/types.js';
import type { HttpRequest } from '../transport/http.js';
import type { InboxMessage, Receipt } from '../engine/inbox.js';
import { HeraldError } from '../util/errors.js';
import type { WebhookDispatcher } from '../webhooks/dispatcher.js';
import { queryParam, type ApiRoute } from './api-routes.js';
import { readJsonBody } from './body.js';

/** What the inbox, receipt and webhook routes use. */
export interface InboxRoutesDeps {
  engine: Engine;
  webhooks: WebhookDispatcher;
  maxBodySize: number;
  /** The gateway's clock. @default Date.now */
  now?: () => number;
}

/** Most messages one `GET /api/users/{id}/inbox` lists. */
const MAX_LIST = 1000;

/** A stored message as the API shows it: its frame's members, and when it expires. */
function shown(m: InboxMessage): string {
  return `${m.frame.toString('utf8').slice(0, -1)},"expires":${m.expires},"receipt":${m.receipt}}`;
}

/** The state of a receipt: acknowledged, delivered (to at least one connection), or pending. */
function receiptBody(r: Receipt): string {
  const status = r.acked ? 'acknowledged' : r.delivered > 0 ? 'delivered' : 'pending';
  return JSON.stringify({
    id: r.id,
    user: r.user,
    status,
    created: r.created,
    expires: r.expires,
    delivered: r.delivered,
    deliveredAt: r.deliveredAt,
    acknowledged: r.acked ? { at: r.acked.at, client: r.acked.client } : null,
  });
}

const GET_ONLY = ['GET'] as const;
const POST_ONLY = ['POST'] as const;
const DELETE_ONLY = ['DELETE'] as const;
const GET_DELETE = ['GET', 'DELETE'] as const;

/**
 * What a replay body asks for: `{}` every dead letter, `{"ids": [...]}` those. Anything else is refused, so that a
 * typo (`{"id": [...]}`) cannot queue every dead letter again.
 */
function replayIds(body: unknown): string[] | 'all' {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HeraldError('invalid_body', 'the body must be a JSON object: {} (every dead letter) or {"ids": [...]}');
  }
  for (const k of Object.keys(body))
    if (k !== 'ids') throw new HeraldError('invalid_field', `${k.slice(0, 64)} is not a known field`, { field: k.slice(0, 64) });
  const ids = (body as { ids?: unknown }).ids;
  if (ids === undefined) return 'all';
  if (!Array.isArray(ids) || !ids.every((i): i is string => typeof i === 'string')) {
    throw new HeraldError('invalid_field', 'ids must be an array of dead letter ids', { field: 'ids' });
  }
  return ids;
}

function segment(raw: string | undefined, field: string): string {
  try {
    return decodeURIComponent(raw ?? '');
  } catch {
    throw new HeraldError('invalid_field', `${field} in the path is not valid percent-encoding`, { field });
  }
}

/**
 * `/api/users/{id}/inbox[/{message}]` (GET lists, DELETE removes one or all), `GET /api/receipts/{id}`,
 * `GET /api/webhooks` (the queue and its dead letters) and `POST /api/webhooks/replay` (docs/protocol.md).
 */
export function inboxRoutes(deps: InboxRoutesDeps): Array<[string, ApiRoute]> {
  const { engine } = deps;
  return [
    [
      'users',
      {
        method: ['GET', 'DELETE'],
        param: 'path',
        // `{id}/inbox` lists (GET) or empties (DELETE) the inbox, `{id}/inbox/{message}` removes one (DELETE).
        methodsOf: (param) => {
          const parts = (param ?? '').split('/');
          if (parts[1] !== 'inbox' || parts.length > 3) return undefined;
          return parts.length === 3 ? DELETE_ONLY : GET_DELETE;
        },
        handler: async (req: HttpRequest, url, param) => {
          const parts = (param ?? '').split('/');
          const user = segment(parts[0], 'user');
          if (!isValidUserId(user)) throw new HeraldError('invalid_field', 'the user id in the path is not a user id', { field: 'user' });
          const message = parts[2] === undefined ? undefined : segment(parts[2], 'message');
          if (req.method === 'GET') {
            const limitRaw = queryParam(url, 'limit');
            const limit = limitRaw === null ? 100 : Number(limitRaw);
            if (!/^\d+$/.test(limitRaw ?? '1') || limit < 1 || limit > MAX_LIST) {
              throw new HeraldError('invalid_field', `limit must be an integer between 1 and ${MAX_LIST}`, { field: 'limit' });
            }
            const list = await engine.inbox.list(user, limit);
            return [200, `{"user":${JSON.stringify(user)},"messages":[${list.map(shown).join(',')}]}`];
          }
          const removed = await engine.inbox.remove(user, message === undefined ? 'all' : [message]);
          if (message !== undefined && removed.length === 0) {
            throw new HeraldError('no_such_message', `no message ${message.slice(0, 64)} in the inbox of ${user.slice(0, 64)}`, { field: 'message' });
          }
          return [200, JSON.stringify({ user, removed: removed.length })];
        },
      },
    ],
    [
      'receipts',
      {
        method: 'GET',
        param: 'required',
        handler: async (_req, _url, param) => {
          const id = segment(param, 'id');
          const r = await engine.inbox.receipt(id);
          if (!r) throw new HeraldError('no_such_message', `no receipt for message ${id.slice(0, 64)} (none was asked for, or it expired)`, { field: 'id' });
          return [200, receiptBody(r)];
        },
      },
    ],
    [
      'webhooks',
      {
        method: ['GET', 'POST'],
        param: 'optional',
        // GET /api/webhooks, POST /api/webhooks/replay.
        methodsOf: (param) => (param === undefined ? GET_ONLY : param === 'replay' ? POST_ONLY : undefined),
        handler: async (req, _url, param) => {
          if (param === undefined) {
            await deps.webhooks.measure();
            const [stats, dead] = await Promise.all([engine.outbox.stats(), engine.outbox.deadLetters(100)]);
            return [200, JSON.stringify({ ...stats, deadLetters: dead })];
          }
          const ids = replayIds(await readJsonBody(req, deps.maxBodySize));
          const replayed = await engine.outbox.replay(ids, (deps.now ?? Date.now)());
          void deps.webhooks.replayed();
          return [200, JSON.stringify({ replayed })];
        },
      },
    ],
  ];
}
