import type { ChannelName } from '@herald/protocol';
import type { Clock } from '../../util/clock.js';
import { randomId } from '../../util/random-id.js';
import type { WebhookEndpoint, WebhookEvent, WebhookSink } from '../../webhooks/types.js';
import type { PusherApp, PusherWebhookEvent } from './apps.js';
import { PUSHER_MAX_BATCH, pusherFormat } from './webhook-format.js';

/** How long `channel_vacated` and `member_removed` wait; a channel or member back within it cancels both events. */
export const WEBHOOK_DELAY_MS = 3000;

/** The name of the `n`th (from 1) webhook endpoint of an app: `pusher.<app id>.<n>` (metrics, dead letters). */
export function pusherEndpointName(app: string, n: number): string {
  return `pusher.${app}.${n}`;
}

/** The webhook endpoints of the apps, one per configured URL, in Pusher's format (see webhook-format.ts). */
export function pusherWebhookEndpoints(apps: Iterable<PusherApp>): WebhookEndpoint[] {
  return [...apps].flatMap((app) =>
    app.webhooks.map((w, i) => ({
      name: pusherEndpointName(app.id, i + 1),
      url: w.url,
      secret: app.secret,
      key: app.key,
      format: pusherFormat.name,
      app: app.id,
      events: [...(w.events ?? [])],
      channels: [],
      retryFor: app.webhookRetryFor,
      batch: app.batchWebhooks ? PUSHER_MAX_BATCH : 1,
    })),
  );
}

/**
 * The Pusher apps' webhook events (docs/pusher.md), queued in the one webhook machinery (the dispatcher's
 * outbox: retries, dead letters, once per cluster), where each app's endpoints that want them get them in
 * Pusher's format. `channel_vacated` and `member_removed` are held back 3 s under a key of the channel (and
 * user), so a `channel_occupied` or `member_added` of the same within the window cancels it and is not sent
 * either (a page reload says nothing).
 */
export class PusherWebhooks {
  constructor(
    private readonly d: { sink: WebhookSink; clock: Clock },
    private readonly name: (core: ChannelName) => string,
  ) {}

  /** Whether `app` wants `event` at any URL. */
  wants(app: PusherApp, event: PusherWebhookEvent): boolean {
    return app.webhooks.some((w) => w.events === undefined || w.events.includes(event));
  }

  occupied(app: PusherApp, core: ChannelName): Promise<void> {
    return this.arrival(app, 'channel_occupied', 'channel_vacated', holdKey(app, 'channel_vacated', core), { channel: this.name(core) });
  }

  vacated(app: PusherApp, core: ChannelName): Promise<void> {
    return this.departure(app, 'channel_vacated', 'channel_occupied', holdKey(app, 'channel_vacated', core), { channel: this.name(core) });
  }

  memberAdded(app: PusherApp, core: ChannelName, user: string): Promise<void> {
    return this.arrival(app, 'member_added', 'member_removed', holdKey(app, 'member_removed', core, user), { channel: this.name(core), user_id: user });
  }

  memberRemoved(app: PusherApp, core: ChannelName, user: string): Promise<void> {
    return this.departure(app, 'member_removed', 'member_added', holdKey(app, 'member_removed', core, user), { channel: this.name(core), user_id: user });
  }

  clientEvent(app: PusherApp, core: ChannelName, event: string, data: string, socketId: string, user: string | undefined): Promise<void> {
    if (!this.wants(app, 'client_event')) return Promise.resolve();
    const fields: Record<string, unknown> = { channel: this.name(core), event, data, socket_id: socketId };
    if (user !== undefined) fields['user_id'] = user;
    return this.d.sink.queue([this.event(app, 'client_event', fields)]);
  }

  /** An arrival cancels the held departure of the same thing; when it did, neither event is sent. */
  private async arrival(app: PusherApp, name: PusherWebhookEvent, departure: PusherWebhookEvent, key: string, data: Record<string, unknown>): Promise<void> {
    if (!this.wants(app, name) && !this.wants(app, departure)) return;
    if (await this.d.sink.cancel(key)) return;
    if (this.wants(app, name)) await this.d.sink.queue([this.event(app, name, data)]);
  }

  /** Held back, also when only the arrival is wanted: a quick return then makes no second arrival. */
  private async departure(app: PusherApp, name: PusherWebhookEvent, arrival: PusherWebhookEvent, key: string, data: Record<string, unknown>): Promise<void> {
    if (!this.wants(app, name) && !this.wants(app, arrival)) return;
    const now = this.d.clock.now();
    await this.d.sink.hold(key, this.event(app, name, data, now), now + WEBHOOK_DELAY_MS);
  }

  private event(app: PusherApp, type: PusherWebhookEvent, data: Record<string, unknown>, time = this.d.clock.now()): WebhookEvent {
    return { id: `evt_${randomId(12)}`, type, time, app: app.id, data };
  }
}

/** The outbox key a departure is held under: unambiguous whatever the channel and user contain. */
function holdKey(app: PusherApp, departure: PusherWebhookEvent, core: ChannelName, user?: string): string {
  return JSON.stringify(user === undefined ? ['pusher', app.id, departure, core] : ['pusher', app.id, departure, core, user]);
}
