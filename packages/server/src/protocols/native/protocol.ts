import type { Connection } from '../../delivery/connection.js';
import type { ProtocolHandler } from '../../delivery/protocol.js';
import type { Broker, Members } from '../../engine/types.js';
import type { Protocol } from '../types.js';
import { NativeHandler, type NativeDeps } from './handler.js';
import { NativePresence } from './presence.js';

export type { NativeDeps } from './handler.js';

/** What the native protocol is built from. */
export type NativeProtocolDeps = Omit<NativeDeps, 'presence'> & {
  /** The engine's members (presence channels) and broker (their join/leave frames). */
  members: Members;
  broker: Broker;
  /** Above this many members a presence channel's frames carry counts only. */
  presenceMaxMembers: number;
};

/** Herald's own protocol v1 (docs/protocol.md) on `deps.paths` (default `/ws`). */
export function createNativeProtocol(deps: NativeProtocolDeps): Protocol {
  const paths = new Set(deps.paths);
  const presence = new NativePresence({ members: deps.members, broker: deps.broker, logger: deps.logger, maxMembers: deps.presenceMaxMembers });
  const handlerDeps: NativeDeps = { ...deps, presence };
  return {
    name: 'native',
    endpoints: [...deps.paths],
    accepts: (path) => paths.has(path),
    open: (conn: Connection): ProtocolHandler => new NativeHandler(conn, handlerDeps),
  };
}
