import type { ChannelName } from '@herald/protocol';
import { WEBHOOK_QUEUE, webhookJob } from '../../delivery/webhooks.js';
import type { JobQueues } from '../../engine/types.js';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import { newClientId } from '../../util/random-id.js';
import type { PusherApp, PusherWebhookEvent } from './apps.js';
import { sign } from './signatures.js';

/** How long `channel_vacated` and `member_removed` wait; a channel or member back within it cancels both events. */
export const WEBHOOK_DELAY_MS = 3000;

/** One Pusher webhook event (`{"name":..., "channel":..., ...}`). */
type PusherEvent = { name: PusherWebhookEvent; channel: string } & Record<string, unknown>;

/**
 * Pusher webhooks (docs/pusher.md): each event becomes one request per subscribed URL, `{"time_ms","events":[e]}`
 * with `Content-Type: application/json`, `X-Pusher-Key` and `X-Pusher-Signature` (hex HMAC-SHA256 of the body with
 * the app's secret), queued in the engine for the dispatcher (delivery/webhooks.ts: retries, dead letters, once
 * per cluster). `channel_vacated` and `member_removed` are held back 3 s under a predictable job id, so a
 * `channel_occupied` or `member_added` of the same channel or user within the window cancels both.
 */
export class PusherWebhooks {
  constructor(
    private readonly d: { jobs: JobQueues; clock: Clock; logger: Logger },
    private readonly name: (core: ChannelName) => string,
  ) {}

  /** Whether `app` wants `event` at any URL. */
  wants(app: PusherApp, event: PusherWebhookEvent): boolean {
    return app.webhooks.some((w) => w.events === undefined || w.events.includes(event));
  }

  occupied(app: PusherApp, core: ChannelName): Promise<void> {
    return this.arrival(app, 'channel_occupied', 'channel_vacated', core, { name: 'channel_occupied', channel: this.name(core) });
  }

  vacated(app: PusherApp, core: ChannelName): Promise<void> {
    return this.emit(app, { name: 'channel_vacated', channel: this.name(core) }, `channel_vacated:${core}`);
  }

  memberAdded(app: PusherApp, core: ChannelName, user: string): Promise<void> {
    return this.arrival(app, 'member_added', 'member_removed', `${core}\u0000${user}`, { name: 'member_added', channel: this.name(core), user_id: user });
  }

  memberRemoved(app: PusherApp, core: ChannelName, user: string): Promise<void> {
    return this.emit(app, { name: 'member_removed', channel: this.name(core), user_id: user }, `member_removed:${core}\u0000${user}`);
  }

  clientEvent(app: PusherApp, core: ChannelName, event: string, data: string, socketId: string, user: string | undefined): Promise<void> {
    const e: PusherEvent = { name: 'client_event', channel: this.name(core), event, data, socket_id: socketId };
    if (user !== undefined) e['user_id'] = user;
    return this.emit(app, e);
  }

  /** An arrival cancels the pending departure of the same thing; when it did, neither event is sent. */
  private async arrival(app: PusherApp, name: PusherWebhookEvent, departure: PusherWebhookEvent, key: string, event: PusherEvent): Promise<void> {
    let cancelled = false;
    for (const [i] of app.webhooks.entries()) {
      if (await this.d.jobs.cancel(WEBHOOK_QUEUE, this.jobId(app, `${departure}:${key}`, i), this.d.clock.now())) cancelled = true;
    }
    if (!cancelled) await this.emit(app, { ...event, name });
  }

  /** Queues `event` for every URL of `app` that wants it; `delayKey` delays it under a predictable id. */
  private async emit(app: PusherApp, event: PusherEvent, delayKey?: string): Promise<void> {
    const now = this.d.clock.now();
    const body = JSON.stringify({ time_ms: now, events: [event] });
    // Exactly these header names and this content type: the PHP SDK reads them case-sensitively, the Node SDK
    // parses only `application/json` without parameters.
    const headers = { 'Content-Type': 'application/json', 'X-Pusher-Key': app.key, 'X-Pusher-Signature': sign(app.secret, body) };
    await Promise.all(
      app.webhooks.map(async (w, i) => {
        if (w.events !== undefined && !w.events.includes(event.name)) return;
        const id = delayKey === undefined ? newClientId() : this.jobId(app, delayKey, i);
        const payload = webhookJob({ url: w.url, headers, body, createdAt: now });
        await this.d.jobs.enqueue(WEBHOOK_QUEUE, { id, payload }, delayKey === undefined ? now : now + WEBHOOK_DELAY_MS);
      }),
    );
  }

  private jobId(app: PusherApp, key: string, target: number): string {
    return `pusher:${app.id}:${target}:${key}`;
  }
}
