import type { Connection } from '../../delivery/connection.js';
import type { ProtocolHandler } from '../../delivery/protocol.js';
import type { Protocol } from '../types.js';
import { NativeHandler, type NativeDeps } from './handler.js';

export type { NativeDeps } from './handler.js';

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
