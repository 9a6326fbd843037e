import type { WebhookEndpoint, WebhookEvent, WebhookFormat, WebhookRequest } from '../../webhooks/types.js';
import { sign } from './signatures.js';

/** Most events in one request of an app with `batchWebhooks`. */
export const PUSHER_MAX_BATCH = 50;

/**
 * Pusher's webhook format (docs/pusher.md#webhooks), a plugin of the one webhook dispatcher:
 * `{"time_ms","events":[{"name",...}]}` with `Content-Type: application/json`, `X-Pusher-Key` (the app key) and
 * `X-Pusher-Signature` (hex HMAC-SHA256 of the body with the app's secret), as the Pusher SDKs' webhook helpers
 * verify them. `time_ms` is when the oldest event of the request happened, so a one-event request is the same
 * bytes on every attempt. Retries are at most a minute apart (Pusher retries for 5 minutes).
 */
export const pusherFormat: WebhookFormat = {
  name: 'pusher',
  maxBatch: PUSHER_MAX_BATCH,
  maxRetryDelay: 60_000,
  checkSecret(secret) {
    if (secret.length < 16) throw new Error('must be at least 16 characters (the app secret)');
  },
  request(endpoint: WebhookEndpoint, events: readonly WebhookEvent[]): WebhookRequest {
    const body = JSON.stringify({ time_ms: Math.min(...events.map((e) => e.time)), events: events.map((e) => ({ name: e.type, ...e.data })) });
    // Exactly these header names and this content type: the PHP SDK reads them case-sensitively, the Node SDK
    // parses only `application/json` without parameters.
    return {
      body,
      headers: { 'Content-Type': 'application/json', 'X-Pusher-Key': endpoint.key ?? '', 'X-Pusher-Signature': sign(endpoint.secret, body) },
    };
  },
};
