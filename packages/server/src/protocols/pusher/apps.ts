import { NAMESPACE_ID_RE } from '@herald/protocol';
import { hasCredentials, isHttpUrl } from '../../util/url.js';

/** One Pusher app as configured: credentials and limits. */
export interface PusherAppOptions {
  /** The app id (`/apps/{id}/...`, the `app` field of the native API): `[A-Za-z0-9_-]{1,64}`. */
  id: string;
  /** The public key clients connect with (`/app/{key}`). */
  key: string;
  /** The secret that signs subscriptions, sign-ins and HTTP API requests (at least 16 characters). */
  secret: string;
  /** Most connections of this app on one node (close 4004 above it). @default 10000 */
  maxConnections?: number;
  /** Whether clients may send `client-*` events on private and presence channels. @default true */
  clientEvents?: boolean;
  /** Client events one connection may send per second (a `pusher:error` 4301 above it). @default 10 */
  clientEventRate?: number;
  /** Largest event `data` in bytes, from the HTTP API (413) and from clients (4301). @default 10240 */
  maxEventSize?: number;
  /** Most members of a presence channel. @default 100 */
  maxPresenceMembers?: number;
  /**
   * Where to send Pusher webhooks (docs/pusher.md): each URL gets the events it lists (`channel_occupied`,
   * `channel_vacated`, `member_added`, `member_removed`, `client_event`; all when `events` is omitted). @default []
   */
  webhooks?: readonly PusherWebhookTarget[];
  /** How long a webhook request is retried after its event, in ms, before it is dead-lettered (Pusher: 5 minutes). @default 300000 */
  webhookRetryFor?: number;
  /** Whether one webhook request may carry several events (Pusher's "batch webhooks"); otherwise one event per request. @default false */
  batchWebhooks?: boolean;
  /** Seconds of silence before a client pings (advertised as `activity_timeout`); the server pings after it too. @default 120 */
  activityTimeout?: number;
}

/** The webhook events Pusher sends. */
export const PUSHER_WEBHOOK_EVENTS = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event'] as const;
export type PusherWebhookEvent = (typeof PUSHER_WEBHOOK_EVENTS)[number];

/** One webhook endpoint of an app. */
export interface PusherWebhookTarget {
  /** An http(s) URL. */
  url: string;
  /** The events it gets. @default every event */
  events?: readonly PusherWebhookEvent[];
}

/** A Pusher app with its defaults merged. */
export type PusherApp = Required<PusherAppOptions>;

/** The defaults of `PusherAppOptions`, in one place. */
export const PUSHER_APP_DEFAULTS = {
  maxConnections: 10_000,
  clientEvents: true,
  clientEventRate: 10,
  maxEventSize: 10_240,
  maxPresenceMembers: 100,
  activityTimeout: 120,
  webhooks: [] as readonly PusherWebhookTarget[],
  webhookRetryFor: 300_000,
  batchWebhooks: false,
};

/** The limits an app's options may set, with their bounds (the configuration file is checked against them). */
const INTEGER_LIMITS = ['maxConnections', 'clientEventRate', 'maxEventSize', 'maxPresenceMembers', 'activityTimeout', 'webhookRetryFor'] as const;

/** Merges defaults into one app's options; throws an Error naming the problem. */
export function resolvePusherApp(o: PusherAppOptions): PusherApp {
  if (typeof o.id !== 'string' || !NAMESPACE_ID_RE.test(o.id)) throw new Error('id must be 1-64 characters of [A-Za-z0-9_-]');
  if (typeof o.key !== 'string' || !/^[A-Za-z0-9_.-]{1,100}$/.test(o.key)) throw new Error(`app ${o.id}: key must be 1-100 characters of [A-Za-z0-9_.-]`);
  if (typeof o.secret !== 'string' || o.secret.length < 16) throw new Error(`app ${o.id}: secret must be at least 16 characters`);
  const app: PusherApp = { ...PUSHER_APP_DEFAULTS, ...o } as PusherApp;
  for (const k of INTEGER_LIMITS) {
    const v = app[k];
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`app ${o.id}: ${k} must be a positive integer, got ${String(v)}`);
  }
  if (typeof app.clientEvents !== 'boolean') throw new Error(`app ${o.id}: clientEvents must be true or false`);
  if (typeof app.batchWebhooks !== 'boolean') throw new Error(`app ${o.id}: batchWebhooks must be true or false`);
  if (!Array.isArray(app.webhooks)) throw new Error(`app ${o.id}: webhooks must be an array of {url, events?}`);
  for (const w of app.webhooks) {
    if (typeof w !== 'object' || w === null || typeof w.url !== 'string' || !isHttpUrl(w.url)) {
      throw new Error(`app ${o.id}: every webhook needs an http(s) url`);
    }
    if (hasCredentials(w.url)) throw new Error(`app ${o.id}: a webhook url must not carry a user or password (check the signature instead)`);
    if (w.events !== undefined && (!Array.isArray(w.events) || w.events.some((e: string) => !(PUSHER_WEBHOOK_EVENTS as readonly string[]).includes(e)))) {
      throw new Error(`app ${o.id}: webhook events must be among ${PUSHER_WEBHOOK_EVENTS.join(', ')}`);
    }
  }
  return app;
}

/** The configured apps, by id and by key. */
export class PusherApps {
  private readonly byId = new Map<string, PusherApp>();
  private readonly byKey = new Map<string, PusherApp>();

  constructor(apps: readonly PusherAppOptions[]) {
    for (const o of apps) {
      const app = resolvePusherApp(o);
      if (this.byId.has(app.id)) throw new Error(`app ${app.id}: the id is used twice`);
      if (this.byKey.has(app.key)) throw new Error(`app ${app.id}: the key is used by another app`);
      this.byId.set(app.id, app);
      this.byKey.set(app.key, app);
    }
  }

  get size(): number {
    return this.byId.size;
  }

  id(id: string): PusherApp | undefined {
    return this.byId.get(id);
  }

  key(key: string): PusherApp | undefined {
    return this.byKey.get(key);
  }

  all(): IterableIterator<PusherApp> {
    return this.byId.values();
  }
}
