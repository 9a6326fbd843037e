import type { Connection } from './connection.js';

/** Grace a connection closed by the sweep gets to finish the close handshake (its peer is likely gone). */
const SWEEP_CLOSE_GRACE_MS = 1000;

/**
 * One pass over every connection (the gateway runs it on one interval timer, never one timer per
 * connection):
 * - not established within the connect timeout: closed (`connect_timeout`; native 4000);
 * - silent for longer than its protocol's idle timeout: closed (`no_heartbeat`; native 4002), the socket
 *   destroyed after a short grace;
 * - quiet for a ping interval: pinged, the way its protocol pings;
 * - credential expired while connected: closed (`token_expired`; native 4401), so the client refreshes it;
 * - idle with its frame rate limit full again: the limit's bucket forgotten (memory per idle connection).
 */
export function sweep(connections: Iterable<Connection>, now: number): void {
  for (const conn of connections) {
    switch (conn.state) {
      case 'connecting':
        // The deadline covers token verification too: a connect that never completes must not hold a socket.
        if (now >= conn.connectDeadline) conn.closeFor('connect_timeout', 'not connected in time', SWEEP_CLOSE_GRACE_MS);
        break;
      case 'open': {
        const expires = conn.identity.expiresAt;
        if (expires !== undefined && now >= expires) {
          conn.closeFor('token_expired', 'token expired');
          break;
        }
        const { pingInterval, idleTimeout } = conn.handler.liveness;
        const silent = now - conn.lastSeen;
        if (silent > idleTimeout) conn.closeFor('no_heartbeat', 'no heartbeat', SWEEP_CLOSE_GRACE_MS);
        else if (silent >= pingInterval && now - conn.lastPing >= pingInterval) conn.ping(now);
        conn.settle(now);
        break;
      }
      default:
        break;
    }
  }
}
