import { createHmac } from 'node:crypto';
import type { WebhookEndpoint, WebhookEvent, WebhookFormat, WebhookRequest } from './types.js';

/** The prefix of a Standard Webhooks secret. */
export const SECRET_PREFIX = 'whsec_';

/** The HMAC key of a `whsec_<base64>` secret; throws when it is not one. */
export function secretKey(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error(`must start with ${SECRET_PREFIX} (then the base64 of at least 24 random bytes)`);
  const b64 = secret.slice(SECRET_PREFIX.length);
  const key = Buffer.from(b64, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || key.length < 24) throw new Error(`must be ${SECRET_PREFIX} and the base64 of at least 24 random bytes`);
  return key;
}

/** `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`: the Standard Webhooks signature. */
export function sign(key: Buffer, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** The body of an event: the same bytes on every attempt (only the timestamp header and signature change). */
export function standardBody(e: WebhookEvent): string {
  return JSON.stringify({ type: e.type, timestamp: new Date(e.time).toISOString(), data: e.data });
}

/**
 * Standard Webhooks (https://www.standardwebhooks.com, spec 1.0): one event per request, JSON body
 * `{"type","timestamp","data"}`, headers `webhook-id` (the event id: receivers deduplicate with it),
 * `webhook-timestamp` (this attempt, Unix seconds) and `webhook-signature`. Verified with the
 * `standardwebhooks` packages, or Herald\Webhook::verify() in PHP.
 */
export const standardFormat: WebhookFormat = {
  name: 'standard',
  maxBatch: 1,
  // Retries last an hour by default (webhookRetryFor): at most 10 minutes apart.
  maxRetryDelay: 600_000,
  checkSecret(secret) {
    secretKey(secret);
  },
  request(endpoint: WebhookEndpoint, events: readonly WebhookEvent[], now: number): WebhookRequest {
    const e = events[0] as WebhookEvent;
    const body = standardBody(e);
    const timestamp = Math.floor(now / 1000);
    return {
      body,
      headers: {
        'content-type': 'application/json',
        'webhook-id': e.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': sign(secretKey(endpoint.secret), e.id, timestamp, body),
      },
    };
  },
};
