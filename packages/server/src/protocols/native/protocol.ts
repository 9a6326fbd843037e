import type { Connection } from '../../delivery/connection.js';
import type { ProtocolHandler } from '../../delivery/protocol.js';
import type { Publisher } from '../../delivery/publisher.js';
import type { Broker, Members } from '../../engine/types.js';
import type { Protocol } from '../types.js';
import { NativeHandler, type NativeDeps } from './handler.js';
import { NativePresence } from './presence.js';
import { ClientPublishing, type ClientPublished, type ClientPublishSettings } from './publish.js';

export type { NativeDeps } from './handler.js';

/** What the native protocol is built from. */
export type NativeProtocolDeps = Omit<NativeDeps, 'presence' | 'publishing'> & {
  /** The engine's members (presence channels) and broker (their join/leave frames). */
  members: Members;
  broker: Broker;
  /** Above this many members a presence channel's frames carry counts only. */
  presenceMaxMembers: number;
  /** Where client publishes go (as the HTTP API's do). */
  publisher: Publisher;
  /** Limits and hook of client publishes. */
  clientPublish: ClientPublishSettings;
  /** Told of every client publish that was published (the `client.publish` webhook). */
  onClientPublish?: ((p: ClientPublished) => void) | undefined;
};

/** Herald's own protocol v1 (docs/protocol.md) on `deps.paths` (default `/ws`). */
export function createNativeProtocol(deps: NativeProtocolDeps): Protocol {
  const paths = new Set(deps.paths);
  const presence = new NativePresence({ members: deps.members, broker: deps.broker, logger: deps.logger, maxMembers: deps.presenceMaxMembers });
  const publishing = new ClientPublishing({
    publisher: deps.publisher,
    auth: deps.auth,
    stats: deps.stats,
    clock: deps.clock,
    settings: deps.clientPublish,
    published: deps.onClientPublish,
  });
  const handlerDeps: NativeDeps = { ...deps, presence, publishing };
  return {
    name: 'native',
    endpoints: [...deps.paths],
    accepts: (path) => paths.has(path),
    open: (conn: Connection): ProtocolHandler => new NativeHandler(conn, handlerDeps),
  };
}
