import { parseNamespacedChannel, type ChannelName } from '@herald/protocol';
import type { Connection } from '../../delivery/connection.js';
import type { ChannelNamespaces } from '../../delivery/publish-request.js';
import type { ProtocolHandler } from '../../delivery/protocol.js';
import type { UpgradeInfo } from '../../transport/types.js';
import { newSocketId } from '../../util/random-id.js';
import type { Protocol, ProtocolRoute } from '../types.js';
import { PusherApps, resolvePusherApp, type PusherAppOptions } from './apps.js';
import { PusherCodec } from './codec.js';
import type { PusherDeps } from './deps.js';
import { PusherHandler } from './handler.js';
import { createPusherHttpApi, type PusherHttpDeps } from './http-api.js';
import { pusherNamespaces } from './namespace.js';
import { coreChannel, pusherName } from './names.js';
import { announceMember } from './subscribe.js';
import type { WebhookEndpoint, WebhookFormat, WebhookSink } from '../../webhooks/types.js';
import { pusherFormat } from './webhook-format.js';
import { PusherWebhooks, pusherWebhookEndpoints } from './webhooks.js';

export type { PusherAppOptions } from './apps.js';

/** What the Pusher protocol needs (the gateway builds it). */
export type PusherProtocolDeps = Omit<PusherDeps, 'apps' | 'codec' | 'counts' | 'track' | 'webhooks' | 'engine'> &
  Omit<PusherHttpDeps, 'apps' | 'engine'> & {
    apps: readonly PusherAppOptions[];
    engine: PusherDeps['engine'] & PusherHttpDeps['engine'];
    /** Where the apps' webhook events go (the gateway's one webhook dispatcher). */
    webhookSink: WebhookSink;
  };

/**
 * The Pusher apps' webhooks as a plugin of the one webhook dispatcher: Pusher's format, and one endpoint per URL of
 * each app (`pusher.<app id>.<n>`), which gets that app's events only.
 */
export function pusherWebhookPlugin(apps: readonly PusherAppOptions[]): { format: WebhookFormat; endpoints: WebhookEndpoint[] } {
  return { format: pusherFormat, endpoints: pusherWebhookEndpoints(apps.map(resolvePusherApp)) };
}

/** The Pusher protocol, with what the gateway and tests may inspect. */
export interface PusherProtocol extends Protocol {
  readonly apps: PusherApps;
  /** The apps as namespaces of the native API and the ingest (`app` field). */
  readonly namespaces: ChannelNamespaces;
  /** Connections per app on this node. */
  readonly counts: ReadonlyMap<string, number>;
}

/**
 * The Pusher Channels protocol 7 (docs/pusher.md) on `/app/{key}`, over the same delivery core as the native
 * protocol: every app is its own channel namespace (`$pusher.<app id>:<channel>`), connections get Pusher
 * socket ids, and the app's HTTP API (`/apps/{id}/...`) comes with it. When a node that died leaves presence
 * members behind, whichever node notices announces `member_removed` (engine Members `onGone`).
 */
export function createPusherProtocol(deps: PusherProtocolDeps): PusherProtocol {
  const apps = new PusherApps(deps.apps);
  const counts = new Map<string, number>();
  const pending = new Set<Promise<unknown>>();
  const track = (work: Promise<unknown>): void => {
    pending.add(work);
    void work.finally(() => pending.delete(work));
  };
  const webhooks = new PusherWebhooks({ sink: deps.webhookSink, clock: deps.clock }, pusherName);
  const handlerDeps: PusherDeps = { ...deps, apps, codec: new PusherCodec(), counts, track, webhooks };
  /**
   * A member the engine found gone (a node that died) or put back (a node that could not renew it in time):
   * `member_removed`/`member_added` to the channel, and the app's webhooks (the occupancy channel's: vacated or
   * occupied). Not removed at close: the engine's own close reports the members of this node's last connections.
   */
  const announce = async (kind: 'added' | 'removed', channel: ChannelName, user: string, infoJson?: string): Promise<void> => {
    const ns = parseNamespacedChannel(channel);
    const app = ns === undefined ? undefined : apps.id(ns.id);
    if (!ns || !app) return;
    try {
      if (ns.kind === 'pusherocc') {
        const core = coreChannel(app.id, ns.name);
        await (kind === 'added' ? webhooks.occupied(app, core) : webhooks.vacated(app, core));
      } else if (ns.kind === 'pusher') {
        await announceMember(deps.engine, channel, kind, user, infoJson === undefined ? {} : { infoJson });
        await (kind === 'added' ? webhooks.memberAdded(app, channel, user) : webhooks.memberRemoved(app, channel, user));
      }
    } catch (err) {
      deps.logger.warn({ err, channel, kind }, 'pusher: announcing a member the engine found failed');
    }
  };
  deps.engine.members.onGone((channel, user) => announce('removed', channel, user));
  deps.engine.members.onBack((channel, user, infoJson) => announce('added', channel, user, infoJson));
  const routes: ProtocolRoute[] = [createPusherHttpApi({ ...deps, apps })];
  return {
    name: 'pusher',
    endpoints: ['/app/{key}'],
    apps,
    counts,
    namespaces: pusherNamespaces(apps),
    accepts: (path) => path.startsWith('/app/'),
    open: (conn: Connection, info: UpgradeInfo): ProtocolHandler => new PusherHandler(conn, handlerDeps, info),
    clientId: newSocketId,
    // pusher-js sends one pusher:subscribe per channel as it connects.
    subscribesFrameByFrame: true,
    routes,
    async close() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
