import { isValidChannel } from '@herald/protocol';
import type { LifecycleOptions } from '../engine/outbox.js';
import { standardFormat } from './standard.js';
import { WEBHOOK_EVENT_TYPES, type WebhookEndpoint, type WebhookFormat } from './types.js';
import { hasCredentials, isHttpUrl } from '../util/url.js';

/** An endpoint as configured (the `webhooks` setting): `format`, `events` and `channels` are optional. */
export interface WebhookEndpointConfig {
  /** @default 'default' for a single endpoint, else `endpoint-<n>` */
  name?: string;
  url: string;
  secret: string;
  /** @default 'standard' */
  format?: string;
  /** Event types; @default all */
  events?: readonly string[];
  /** Channel prefixes; @default all */
  channels?: readonly string[];
}

/** The formats the native gateway knows (a protocol may register more). */
export function defaultFormats(): Map<string, WebhookFormat> {
  return new Map([[standardFormat.name, standardFormat]]);
}

/** The fields of an endpoint: another (a typo, `event` for `events`) is refused, not ignored. */
const ENDPOINT_FIELDS = new Set(['name', 'url', 'secret', 'format', 'events', 'channels']);

/** Endpoint names starting with this belong to the Pusher apps' webhooks (`pusher.<app id>.<n>`). */
export const PUSHER_ENDPOINT_PREFIX = 'pusher.';

/**
 * Checks configured endpoints and fills their defaults; throws an Error whose message names the endpoint and
 * the field. `formats` are the known formats; each format checks its endpoints' secrets. `retryFor`: how long
 * their deliveries are retried (ms).
 */
export function resolveEndpoints(configs: readonly WebhookEndpointConfig[], formats: ReadonlyMap<string, WebhookFormat>, retryFor: number): WebhookEndpoint[] {
  const names = new Set<string>();
  return configs.map((c, i) => {
    const name = c.name ?? (configs.length === 1 ? 'default' : `endpoint-${i + 1}`);
    const where = `webhook endpoint ${JSON.stringify(name)}`;
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new Error(`${where}: name must be 1-64 characters of [A-Za-z0-9_.-]`);
    if (names.has(name)) throw new Error(`${where}: two endpoints have this name`);
    if (name.startsWith(PUSHER_ENDPOINT_PREFIX)) throw new Error(`${where}: names starting with ${PUSHER_ENDPOINT_PREFIX} are the Pusher apps' webhooks`);
    names.add(name);
    const unknownField = Object.keys(c).find((k) => !ENDPOINT_FIELDS.has(k));
    if (unknownField !== undefined)
      throw new Error(`${where}: unknown field ${JSON.stringify(unknownField.slice(0, 64))} (known: ${[...ENDPOINT_FIELDS].join(', ')})`);
    if (typeof c.url !== 'string' || !isHttpUrl(c.url)) throw new Error(`${where}: url must be an http(s) URL`);
    if (hasCredentials(c.url)) throw new Error(`${where}: url must not carry a user or password (check the signature instead)`);
    const format = formats.get(c.format ?? 'standard');
    if (!format) throw new Error(`${where}: format must be one of ${[...formats.keys()].join(', ')}`);
    try {
      format.checkSecret(String(c.secret));
    } catch (err) {
      throw new Error(`${where}: secret ${err instanceof Error ? err.message : String(err)}`);
    }
    const events = [...(c.events ?? [])];
    const unknown = events.find((e) => !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(e));
    if (unknown !== undefined) throw new Error(`${where}: unknown event type ${JSON.stringify(unknown)} (known: ${WEBHOOK_EVENT_TYPES.join(', ')})`);
    const channels = [...(c.channels ?? [])];
    if (channels.some((p) => typeof p !== 'string' || p === '' || !isValidChannel(p))) throw new Error(`${where}: channels must be channel name prefixes`);
    return { name, url: c.url, secret: c.secret, format: format.name, events, channels, retryFor, batch: format.maxBatch };
  });
}

/** What lifecycle tracking the endpoints need (undefined: none wants lifecycle events, so none is tracked). */
export function lifecycleFor(endpoints: readonly WebhookEndpoint[], offlineDelay: number): LifecycleOptions | undefined {
  // The Pusher apps' endpoints get their app's events only, never these.
  const native = endpoints.filter((e) => e.app === undefined);
  const want = (types: string[]) => native.filter((e) => e.events.length === 0 || types.some((t) => e.events.includes(t)));
  const users = want(['user.online', 'user.offline']).length > 0;
  const channelEndpoints = want(['channel.occupied', 'channel.vacated']);
  // Any endpoint without a prefix filter needs every channel.
  const prefixes = channelEndpoints.some((e) => e.channels.length === 0) ? [] : [...new Set(channelEndpoints.flatMap((e) => e.channels))];
  if (!users && channelEndpoints.length === 0) return undefined;
  return { users, channels: channelEndpoints.length > 0, channelPrefixes: prefixes, offlineDelay };
}
