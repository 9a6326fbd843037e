/**
 * The webhooks' shapes (docs/webhooks.md): events as the gateway queues them, endpoints as configured, and the
 * format seam through which each endpoint's requests are written and signed (Standard Webhooks here; the
 * Pusher protocol adds its own).
 */

/** The event types of the native webhooks. (`client.publish` is not one: clients cannot publish yet.) */
export const WEBHOOK_EVENT_TYPES = ['user.online', 'user.offline', 'channel.occupied', 'channel.vacated', 'message.acked'] as const;

/** One event, as queued: `{"id","type","time","data"}` (the outbox keeps it serialized). */
export interface WebhookEvent {
  /** Unique per event; every attempt at every endpoint carries it (Standard Webhooks' `webhook-id`). */
  id: string;
  type: string;
  /** When it happened (ms since the epoch). */
  time: number;
  data: Record<string, unknown>;
}

/** An endpoint that receives events. */
export interface WebhookEndpoint {
  /** Names it in jobs, metrics and dead letters; unique. */
  name: string;
  url: string;
  /** The signing secret (Standard Webhooks: `whsec_<base64>`). */
  secret: string;
  /** The format its requests are written in. */
  format: string;
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
 * request (`maxBatch` > 1, as Pusher's does); the dispatcher groups due jobs of one endpoint up to it.
 */
export interface WebhookFormat {
  readonly name: string;
  /** Most events in one request. */
  readonly maxBatch: number;
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
    return { id: v.id, type: v.type, time: v.time, data: v.data };
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

/** Whether `endpoint` wants `e`. */
export function wants(endpoint: WebhookEndpoint, e: WebhookEvent): boolean {
  if (endpoint.events.length > 0 && !endpoint.events.includes(e.type)) return false;
  if (endpoint.channels.length === 0) return true;
  const channel = eventChannel(e);
  return channel !== undefined && endpoint.channels.some((p) => channel.startsWith(p));
}
