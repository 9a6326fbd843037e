import { isReservedType, MAX_PAYLOAD_DEPTH, MESSAGE_TYPE_RE } from '@herald/protocol';
import { nestingDepth } from '../delivery/publish-request.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { postText } from '../util/http-post.js';
import { randomId } from '../util/random-id.js';
import { secretKey, sign } from './standard.js';

/** A client publish as the hook sees it. */
export interface HookRequest {
  channel: string;
  type: string;
  /** The payload, serialized. */
  payloadJson: string;
  user: string;
  client: string;
  /** The publisher's `info` claim, serialized, when its token has one. */
  infoJson?: string | undefined;
}

/** The hook's decision; `failed` when it gave none (then the gateway's failure mode decides). */
export type HookVerdict =
  { action: 'accept' } | { action: 'reject'; reason: string } | { action: 'rewrite'; type: string; payloadJson: string } | { action: 'failed'; why: string };

/** Asks the backend about a client publish (docs/protocol.md, "Client publish"). */
export interface PublishHook {
  check(req: HookRequest): Promise<HookVerdict>;
}

export interface HttpPublishHookOptions {
  url: string;
  /** Standard Webhooks secret (`whsec_<base64>`) the requests are signed with. */
  secret: string;
  /** Most ms one request may take. */
  timeout: number;
  /** Largest payload the answer may rewrite to (the client publish limit). */
  maxPayloadBytes: number;
  /** Most requests in flight at once; past it a publish's hook fails at once. */
  maxInFlight: number;
  clock: Clock;
  logger: Logger;
  /** Counts each verdict (herald_publish_hook_requests_total{result}). */
  counts: Map<string, number>;
}

/** Longest reason a rejection may show the client. */
const MAX_REASON = 200;
const DEFAULT_REASON = 'rejected by the publish hook';

/**
 * The publish hook over HTTP: one signed POST (Standard Webhooks headers, so `Herald\Webhook::verify()` checks
 * it) per client publish, with the body `{"channel","type","payload","user","client","info"?}`. The answer:
 * 204, or 200 with `{"action":"accept"}`, `{"action":"reject","reason":"..."}` or
 * `{"action":"rewrite","type"?:"...","payload"?:...}`. Anything else (another status, a body that is not one
 * of these, a rewrite that breaks a publish rule, no answer within `timeout`, too many requests in flight) is a
 * failure, which the caller turns into a denial or an acceptance as configured.
 */
export class HttpPublishHook implements PublishHook {
  private readonly key: Buffer;
  private inFlight = 0;

  constructor(private readonly o: HttpPublishHookOptions) {
    this.key = secretKey(o.secret);
  }

  async check(req: HookRequest): Promise<HookVerdict> {
    const verdict = await this.ask(req);
    this.o.counts.set(verdict.action, (this.o.counts.get(verdict.action) ?? 0) + 1);
    if (verdict.action === 'failed') this.o.logger.warn({ channel: req.channel, client: req.client, user: req.user, why: verdict.why }, 'publish hook failed');
    return verdict;
  }

  private async ask(req: HookRequest): Promise<HookVerdict> {
    const { o } = this;
    if (this.inFlight >= o.maxInFlight) return { action: 'failed', why: `${o.maxInFlight} hook requests already in flight` };
    const body =
      `{"channel":${JSON.stringify(req.channel)},"type":${JSON.stringify(req.type)},"payload":${req.payloadJson},` +
      `"user":${JSON.stringify(req.user)},"client":${JSON.stringify(req.client)}${req.infoJson === undefined ? '' : `,"info":${req.infoJson}`}}`;
    const id = `pub_${randomId(12)}`;
    const timestamp = Math.floor(o.clock.now() / 1000);
    this.inFlight += 1;
    try {
      // An answer holds at most a rewritten payload and a few fields.
      const { status, text } = await postText(o.clock, o.url, {
        body,
        headers: {
          'content-type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': sign(this.key, id, timestamp, body),
        },
        timeoutMs: o.timeout,
        maxBytes: o.maxPayloadBytes + 1024,
      });
      if (status === 204) return { action: 'accept' };
      if (status !== 200) return { action: 'failed', why: `status ${status}` };
      if (text === undefined) return { action: 'failed', why: 'answer too large' };
      return verdictOf(text, req, o.maxPayloadBytes);
    } catch (err) {
      return { action: 'failed', why: err instanceof Error ? err.message : String(err) };
    } finally {
      this.inFlight -= 1;
    }
  }
}

/** Reads the hook's 200 answer. */
export function verdictOf(text: string, req: HookRequest, maxPayloadBytes: number): HookVerdict {
  let a: unknown;
  try {
    a = JSON.parse(text);
  } catch {
    return { action: 'failed', why: 'answer is not JSON' };
  }
  if (typeof a !== 'object' || a === null || Array.isArray(a)) return { action: 'failed', why: 'answer is not a JSON object' };
  const answer = a as Record<string, unknown>;
  switch (answer['action']) {
    case 'accept':
      return { action: 'accept' };
    case 'reject': {
      const reason = answer['reason'];
      return { action: 'reject', reason: typeof reason === 'string' && reason.length > 0 ? reason.slice(0, MAX_REASON) : DEFAULT_REASON };
    }
    case 'rewrite': {
      const type = answer['type'] ?? req.type;
      if (typeof type !== 'string' || !MESSAGE_TYPE_RE.test(type) || isReservedType(type))
        return { action: 'failed', why: 'rewrite: type is not a message type' };
      const payload = answer['payload'];
      if (payload === undefined) return { action: 'rewrite', type, payloadJson: req.payloadJson };
      if (typeof payload !== 'object' || payload === null) return { action: 'failed', why: 'rewrite: payload is not a JSON object or array' };
      if (nestingDepth(payload, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH) return { action: 'failed', why: 'rewrite: payload nests too deep' };
      const payloadJson = JSON.stringify(payload);
      if (Buffer.byteLength(payloadJson) > maxPayloadBytes) return { action: 'failed', why: `rewrite: payload over ${maxPayloadBytes} bytes` };
      return { action: 'rewrite', type, payloadJson };
    }
    default:
      return { action: 'failed', why: 'answer has no action accept, reject or rewrite' };
  }
}
