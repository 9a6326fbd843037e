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
  for (const conn of connections) sweepOne(conn, now);
}

/** The sweep's checks for one connection (see `sweep`). */
export function sweepOne(conn: Connection, now: number): void {
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

/**
 * A pass over a live collection spread over `slices` timer ticks: each tick visits the next
 * ceil(size / slices) items, so a full pass takes one sweep interval as before, but what falls due at the same
 * moment is handled a slice at a time. Clients that connected together (a deploy, a network blip: every
 * browser reconnects within seconds) are quiet together and would all be pinged, and answer, in one turn:
 * 2500 pings took 50-100 ms of writes on one event loop in the bench, so 50 000 would take a second or more.
 * Items added during a pass are visited in it (a Map iterator sees entries added after its position), removed
 * ones are not.
 */
export class SlicedPass<T> {
  private cursor: Iterator<T> | undefined;
  /** Ticks so far, and the tick the current pass started at (the first pass starts at tick `slices - 1`). */
  private ticks = -1;
  private started = -1;

  constructor(
    private readonly items: { values(): Iterator<T>; readonly size: number },
    private readonly slices: number,
    private readonly visit: (item: T, now: number) => void,
    /** Runs when a pass has visited every item (once per sweep interval). */
    private readonly passEnded: (now: number) => void = () => undefined,
  ) {}

  /**
   * One tick: the next slice of the pass. A pass starts at most once per `slices` ticks (once per sweep
   * interval, at the moments the single sweep ran before), so a small set is not visited, nor the end-of-pass
   * work run, more often than that; a pass that ends in a tick where the next may start goes straight on.
   */
  tick(now: number): void {
    this.ticks++;
    const n = Math.max(1, Math.ceil(this.items.size / this.slices));
    for (let visited = 0; visited < n;) {
      if (this.cursor === undefined) {
        if (this.ticks - this.started < this.slices) return;
        this.cursor = this.items.values();
        this.started = this.ticks;
      }
      const r = this.cursor.next();
      if (r.done === true) {
        this.cursor = undefined;
        this.passEnded(now);
        continue;
      }
      this.visit(r.value, now);
      visited++;
    }
  }
}
