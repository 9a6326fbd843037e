import type { Auth } from '../../auth/types.js';
import type { Connection } from '../../delivery/connection.js';
import type { Subscriptions } from '../../delivery/hub.js';
import type { Liveness, ProtocolHandler } from '../../delivery/protocol.js';
import type { Stats } from '../../delivery/stats.js';
import type { Clock } from '../../util/clock.js';
import type { Logger } from '../../util/logger.js';
import type { Protocol } from '../types.js';
import { NativeHandler } from './handler.js';

/** What the native protocol needs. */
export interface NativeDeps {
  /** The WebSocket paths it serves. */
  paths: readonly string[];
  subscriptions: Subscriptions;
  auth: Auth;
  stats: Stats;
  clock: Clock;
  logger: Logger;
  /** Whether a connection without a token may connect (public channels only). */
  allowAnonymous: boolean;
  /** Most subscriptions one connection may hold. */
  maxSubscriptions: number;
  /** Malformed frames tolerated before close 4500. */
  maxInvalidFrames: number;
  /** Ping interval (advertised in `connected`) and idle timeout. */
  liveness: Liveness;
}

/** Herald's own protocol v1 (docs/protocol.md) on `deps.paths` (default `/ws`). */
export function createNativeProtocol(deps: NativeDeps): Protocol {
  const paths = new Set(deps.paths);
  return {
    name: 'native',
    endpoints: [...deps.paths],
    accepts: (path) => paths.has(path),
    open: (conn: Connection): ProtocolHandler => new NativeHandler(conn, deps),
  };
}
