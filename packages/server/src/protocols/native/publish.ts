import { ErrorCode, MAX_PAYLOAD_DEPTH, type ErrorFrame, type PublishedFrame, type PublishFrame } from '@herald/protocol';
import type { Auth } from '../../auth/types.js';
import type { Connection } from '../../delivery/connection.js';
import { nestingDepth } from '../../delivery/publish-request.js';
import type { Publisher } from '../../delivery/publisher.js';
import type { ClientPublishOutcome, Stats } from '../../delivery/stats.js';
import type { Clock } from '../../util/clock.js';
import { HeraldError } from '../../util/errors.js';
import { RateBudget } from '../../util/rate-budget.js';
import type { PublishHook } from '../../webhooks/publish-hook.js';

/** The limits and the hook of client publishes. */
export interface ClientPublishSettings {
  /** Publishes per second per connection, sustained and in a burst. */
  rate: number;
  /** Publishes per second per user on this node (all its connections together), sustained and in a burst. */
  userRate: number;
  /** Largest payload, serialized, in bytes. */
  maxPayloadBytes: number;
  /** Asked about every publish, when there is one. */
  hook: PublishHook | undefined;
  /** What a failed hook means: deny the publish (the default), or allow it unchanged. */
  hookFailure: 'deny' | 'allow';
}

/** A client publish that was published: what the `client.publish` webhook tells. */
export interface ClientPublished {
  channel: string;
  type: string;
  payloadJson: string;
  user: string;
  client: string;
  seq: number;
  epoch: string;
}

/** A publish that passed the checks made on arrival: ready for the hook and the engine. */
export interface CheckedPublish {
  frame: PublishFrame;
  payloadJson: string;
}

export interface ClientPublishingDeps {
  publisher: Publisher;
  auth: Auth;
  stats: Stats;
  clock: Clock;
  settings: ClientPublishSettings;
  /** Told of every client publish that was published (not of duplicates). */
  published?: ((p: ClientPublished) => void) | undefined;
}

/**
 * Client publishes of native connections (docs/protocol.md, "Client publish"): the grant (`publish` claim),
 * the limits (rate per connection and per user, payload size and depth), the optional publish hook, then the
 * delivery core's Publisher, so history, recovery and metrics count them as any other publish. Checks that
 * cost nothing run as the frame arrives (`check`), so a flood is refused without queueing; the rest runs in
 * the connection's order (`publish`).
 */
export class ClientPublishing {
  private readonly budget: RateBudget;

  constructor(private readonly d: ClientPublishingDeps) {
    const s = d.settings;
    this.budget = new RateBudget({ perOwner: s.rate, ownerBurst: s.rate, perKey: s.userRate, keyBurst: s.userRate });
  }

  /** Forgets users whose publish budget is full again (the gateway's sweep). */
  sweep(now: number): void {
    this.budget.sweep(now);
  }

  /** The grant, the payload and the rate, checked as the frame arrives: the error to answer, or the publish. */
  check(conn: Connection, frame: PublishFrame): ErrorFrame | CheckedPublish {
    const { d } = this;
    const user = conn.identity.user;
    const denied = user === null ? ErrorCode.Forbidden : d.auth.mayPublish(conn.identity, frame.channel);
    if (denied !== null) {
      d.stats.authFailure('publish_forbidden', conn.ids({ channel: frame.channel }));
      return this.refuse('forbidden', frame, denied, `not allowed to publish to ${frame.channel}`);
    }
    if (nestingDepth(frame.payload, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH) {
      return this.refuse('too_deep', frame, ErrorCode.PayloadTooDeep, `payload nests deeper than ${MAX_PAYLOAD_DEPTH} levels`);
    }
    const payloadJson = JSON.stringify(frame.payload);
    const max = d.settings.maxPayloadBytes;
    if (payloadJson.length > max || Buffer.byteLength(payloadJson) > max) {
      return this.refuse('too_large', frame, ErrorCode.PayloadTooLarge, `payload is larger than ${max} bytes`);
    }
    if (!this.budget.take(conn, user as string, d.clock.now())) {
      d.stats.limited('client_publish', conn.ids({ channel: frame.channel }));
      const s = d.settings;
      return this.refuse('rate_limited', frame, ErrorCode.RateLimited, `at most ${s.rate} publishes per second per connection and ${s.userRate} per user`);
    }
    return { frame, payloadJson };
  }

  /** Asks the hook, then publishes: the `published` answer, or the error. */
  async publish(conn: Connection, p: CheckedPublish): Promise<PublishedFrame | ErrorFrame> {
    const { d } = this;
    const { frame } = p;
    const user = conn.identity.user as string;
    let type = frame.event;
    let payloadJson = p.payloadJson;
    const hook = d.settings.hook;
    if (hook) {
      const v = await hook.check({ channel: frame.channel, type, payloadJson, user, client: conn.id, infoJson: conn.identity.infoJson });
      if (v.action === 'reject') return this.refuse('rejected', frame, ErrorCode.PublishRejected, v.reason);
      if (v.action === 'failed' && d.settings.hookFailure === 'deny') {
        return this.refuse('hook_failed', frame, ErrorCode.PublishHookFailed, 'the publish hook failed; the message was not published');
      }
      if (v.action === 'rewrite') {
        type = v.type;
        payloadJson = v.payloadJson;
      }
    }
    let answer: Record<string, unknown>;
    try {
      answer = await d.publisher.publish({
        target: { kind: 'channels', channels: [frame.channel] },
        type,
        payloadJson,
        // Scoped to the user: one user's keys never meet another's, nor a backend's publish ids.
        id: frame.key === undefined ? undefined : `client\u0000${user}\u0000${frame.key}`,
        ...(frame.echo === false ? { exclude: conn.id } : {}),
      });
    } catch (err) {
      // The HTTP API's rule: unavailable means nothing was published; a timeout, that nobody knows (resend with the key).
      const code = err instanceof HeraldError && err.code === ErrorCode.EngineTimeout ? ErrorCode.EngineTimeout : ErrorCode.EngineUnavailable;
      d.stats.engineError('client_publish', conn.ids({ channel: frame.channel, error: err instanceof Error ? err.message : String(err) }));
      const message =
        code === ErrorCode.EngineTimeout
          ? 'the engine did not answer in time: the message may be published; resend it with the same key'
          : 'not published, retry later';
      return this.refuse('engine_error', frame, code, message);
    }
    const results = answer['results'] as Record<string, { seq: number; epoch: string; duplicate: boolean }>;
    const r = results[frame.channel] as { seq: number; epoch: string; duplicate: boolean };
    this.count(r.duplicate ? 'duplicate' : 'published');
    if (!r.duplicate) d.published?.({ channel: frame.channel, type, payloadJson, user, client: conn.id, seq: r.seq, epoch: r.epoch });
    const ok: PublishedFrame = { type: 'published', channel: frame.channel, seq: r.seq, epoch: r.epoch };
    if (frame.id !== undefined) ok.id = frame.id;
    if (r.duplicate) ok.duplicate = true;
    return ok;
  }

  private refuse(outcome: ClientPublishOutcome, frame: PublishFrame, code: ErrorCode, message: string): ErrorFrame {
    this.count(outcome);
    const e: ErrorFrame = { type: 'error', code, message, channel: frame.channel };
    if (frame.id !== undefined) e.id = frame.id;
    return e;
  }

  private count(outcome: ClientPublishOutcome): void {
    this.d.stats.clientPublishes.set(outcome, (this.d.stats.clientPublishes.get(outcome) ?? 0) + 1);
  }
}
