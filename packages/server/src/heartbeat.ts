import { CloseCode } from '@herald/protocol';
import type { Connection } from './connection.js';

/** The timing rules of the sweep. */
export interface HeartbeatRules {
  connectTimeout: number;
  pingInterval: number;
  idleTimeout: number;
}

/**
 * One pass over every connection (the gateway runs it on one interval timer, never one timer per
 * connection):
 * - no `connect` within the connect timeout: close 4000;
 * - silent for longer than the idle timeout: close 4002 (dead peers are destroyed after a short grace);
 * - quiet for a ping interval: a protocol ping, which live clients answer with a pong;
 * - token expired while connected: close 4401, so the client refreshes its token and reconnects.
 */
export function sweep(connections: Iterable<Connection>, now: number, rules: HeartbeatRules): void {
  for (const conn of connections) {
    switch (conn.state) {
      case 'connecting':
      case 'authenticating':
        // The deadline covers token verification too: a connect that never completes must not hold a socket.
        if (now >= conn.connectDeadline) conn.close(CloseCode.ConnectTimeout, 'no connect frame in time', 1000);
        break;
      case 'open': {
        const expires = conn.principal.expiresAt;
        if (expires !== undefined && now >= expires) {
          conn.close(CloseCode.TokenExpired, 'token expired');
          break;
        }
        const silent = now - conn.lastSeen;
        if (silent > rules.idleTimeout) conn.close(CloseCode.NoHeartbeat, 'no heartbeat', 1000);
        else if (silent >= rules.pingInterval && now - conn.lastPing >= rules.pingInterval) conn.ping(now);
        break;
      }
      default:
        break;
    }
  }
}
