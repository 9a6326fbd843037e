/**
 * The webhooks' shapes (docs/webhooks.md): events as the gateway queues them, endpoints as configured, the
 * format seam through which each endpoint's requests are written and signed (Standard Webhooks here; the
 * Pusher protocol brings its own), and the sink protocols queue their events into.
 */

/** The event types of the native webhooks. */
export const WEBHOOK_EVENT_TYPES = ['user.online', 'user.offline', 'channel.occupied', 'channel.vacated', 'message.acked', 'client.publish'] as const;

/** One event, as queued: `{"id","type","time","data"}` (the outbox keeps it serialized). */
export interface WebhookEvent {
  /** Unique per event; every attempt at every endpoint carries it (Standard Webhooks' `webhook-id`). */
  id: string;
  type: string;
  /** When it happened (ms since the epoch). */
  time: number;
  /** The Pusher app it belongs to (only that app's endpoints get it); absent for the native events. */
  app?: string;
  data: Record<string, unknown>;
}

/** An endpoint that receives events. */
export interface WebhookEndpoint {
  /** Names it in jobs, metrics and dead letters; unique. */
  name: string;
  url: string;
  /** The signing secret (Standard Webhooks: `whsec_<base64>`; Pusher: the app's secret). */
  secret: string;
  /** What the format sends beside the signature to say which secret signed (Pusher: the app key `X-Pusher-Key`). */
  key?: string;
  /** The format its requests are written in. */
  format: string;
  /** The Pusher app whose events it gets; absent: the native events. */
  app?: string;
  /** How long a delivery is retried after its event was queued (ms); then it is dead-lettered. */
  retryFor: number;
  /** Most events in one request (at most its format's `maxBatch`). */
  batch: number;
  /** Event types it wants; empty: all of them. */
  events: readonly string[];
  /**
   * Channel prefixes it wants events about; empty: all. Events about a user count as about `user:<id>`
   * (so `user:` selects every user event, `orders.` none of them).
   */
  channels: readonly string[];
}

/** One HTTP request to an endpoint. */
export interface WebhookRequest {
  headers: Record<string, string>;
  body: string;
}

/**
 * How an endpoint's requests are written and signed: the seam between the delivery machinery (outbox,
 * retries, dead letters, metrics: format-blind) and a wire format. A format may put several events in one
 * request (`maxBatch` > 1, as Pusher's does); the dispatcher groups due jobs of one endpoint up to the
 * endpoint's `batch`. Requests are written at send time, on every attempt.
 */
export interface WebhookFormat {
  readonly name: string;
  /** Most events in one request. */
  readonly maxBatch: number;
  /** Longest wait between two attempts (ms): the exponential back-off stops growing there. */
  readonly maxRetryDelay: number;
  /** Checks an endpoint's secret when the configuration is read; throws a message saying what is wrong. */
  checkSecret(secret: string): void;
  /** The request for `events` (one, unless maxBatch > 1) at time `now` (ms). */
  request(endpoint: WebhookEndpoint, events: readonly WebhookEvent[], now: number): WebhookRequest;
}

/** Parses a queued event; undefined for one that is not (it is dead-lettered). */
export function parseEvent(json: string): WebhookEvent | undefined {
  try {
    const v = JSON.parse(json) as Partial<WebhookEvent>;
    if (typeof v.id !== 'string' || typeof v.type !== 'string' || typeof v.time !== 'number' || typeof v.data !== 'object' || v.data === null) return undefined;
    return typeof v.app === 'string'
      ? { id: v.id, type: v.type, time: v.time, app: v.app, data: v.data }
      : { id: v.id, type: v.type, time: v.time, data: v.data };
  } catch {
    return undefined;
  }
}

/** The channel an event is about, for prefix filters: its channel, or `user:<id>` of its user. */
export function eventChannel(e: WebhookEvent): string | undefined {
  if (typeof e.data['channel'] === 'string') return e.data['channel'];
  if (typeof e.data['user'] === 'string') return `user:${e.data['user']}`;
  return undefined;
}

/** Whether `endpoint` wants `e`: its app's (or native) events, of its types, about its channels. */
export function wants(endpoint: WebhookEndpoint, e: WebhookEvent): boolean {
  if (endpoint.app !== e.app) return false;
  if (endpoint.events.length > 0 && !endpoint.events.includes(e.type)) return false;
  if (endpoint.channels.length === 0) return true;
  const channel = eventChannel(e);
  return channel !== undefined && endpoint.channels.some((p) => channel.startsWith(p));
}

/**
 * Where protocols queue their webhook events (the dispatcher): durably in the engine's outbox, now or held back
 * under a key until a time unless cancelled. Rejects when the engine does.
 */
export interface WebhookSink {
  /** Queues events (sent from the dispatcher's next poll). */
  queue(events: readonly WebhookEvent[]): Promise<void>;
  /** Holds `event` back until `due` (ms) under `key` (see Outbox.hold). */
  hold(key: string, event: WebhookEvent, due: number): Promise<void>;
  /** Drops what is held under `key`: true when something was (it will never be sent). */
  cancel(key: string): Promise<boolean>;
}
