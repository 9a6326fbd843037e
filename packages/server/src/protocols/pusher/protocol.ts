import type { Connection } from '../../delivery/connection.js';
import type { ChannelNamespaces } from '../../delivery/publish-request.js';
import type { ProtocolHandler } from '../../delivery/protocol.js';
import type { UpgradeInfo } from '../../transport/types.js';
import { newSocketId } from '../../util/random-id.js';
import type { Protocol, ProtocolRoute } from '../types.js';
import { PusherApps, type PusherAppOptions } from './apps.js';
import { PusherCodec } from './codec.js';
import type { PusherDeps } from './deps.js';
import { PusherHandler } from './handler.js';
import { createPusherHttpApi, type PusherHttpDeps } from './http-api.js';
import { pusherNamespaces } from './namespace.js';
import { announceMember } from './subscribe.js';

export type { PusherAppOptions } from './apps.js';

/** What the Pusher protocol needs (the gateway builds it). */
export type PusherProtocolDeps = Omit<PusherDeps, 'apps' | 'codec' | 'counts' | 'track'> &
  Omit<PusherHttpDeps, 'apps' | 'engine'> & {
    apps: readonly PusherAppOptions[];
    engine: PusherDeps['engine'] & PusherHttpDeps['engine'];
  };

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
  const handlerDeps: PusherDeps = { ...deps, apps, codec: new PusherCodec(), counts, track };
  // Not removed at close: the engine's own close reports the members of this node's last connections.
  deps.engine.members.onGone(async (channel, user) => {
    if (!channel.startsWith('$pusher.')) return;
    await announceMember(deps.engine, channel, 'removed', user).catch((err: unknown) =>
      deps.logger.warn({ err, channel }, 'pusher: announcing a gone member failed'),
    );
  });
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
    routes,
    async close() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
