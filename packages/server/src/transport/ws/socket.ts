import type { Socket as NetSocket } from 'node:net';
import type { WebSocket } from 'ws';
import { limitCloseReason } from '@herald/protocol';
import type { Clock } from '../../util/clock.js';
import type { Socket } from '../types.js';
import { wire } from './wire.js';

// `ws` keeps the underlying net.Socket in `_socket`. Its Sender leaves its idle state (0) and queues frames
// only while it compresses (never here: perMessageDeflate is off) or reads a Blob (we never send one).
type WsInternals = { _socket?: NetSocket; _sender?: { _queue?: unknown[]; _state?: number } };

/**
 * Whether this `ws` version has the private fields the fast path relies on. Checked on the first socket of
 * every transport (and by a test, so that a `ws` upgrade that changes them fails CI, not production); when
 * they are gone, every socket takes the slower public `ws.send` path and the transport logs an error.
 */
export function wsInternalsUsable(ws: WebSocket): boolean {
  const i = ws as unknown as WsInternals;
  return typeof i._socket?.write === 'function' && Array.isArray(i._sender?._queue) && typeof i._sender?._state === 'number';
}

/** Whether frames may bypass the Sender: it is idle, so nothing it holds could be overtaken. */
function senderIdle(sender: WsInternals['_sender']): boolean {
  return sender !== undefined && sender._queue?.length === 0 && sender._state === 0;
}

/** A `ws` WebSocket behind the Socket seam. */
export class WsSocket implements Socket {
  constructor(
    private readonly ws: WebSocket,
    /** False when `ws`'s internals changed (see wsInternalsUsable): always take the public path. */
    private readonly fast: boolean,
    private readonly clock: Clock,
  ) {}

  /**
   * Writes prebuilt frame bytes straight to the net.Socket: one `write` (one syscall) per connection per
   * flush, the same immutable bytes for every subscriber, no per-socket framing or allocation. Safe next
   * to `ws` because its Sender keeps no queue here (see WsInternals) and `bufferedAmount` counts what the
   * net.Socket buffers; falls back to `ws.send` whenever that does not hold.
   */
  send(frames: readonly Buffer[]): void {
    if (this.ws.readyState !== 1 || frames.length === 0) return;
    const internals = this.ws as unknown as WsInternals;
    const raw = internals._socket;
    if (this.fast && raw !== undefined && senderIdle(internals._sender)) {
      raw.write(wire.get(frames));
      return;
    }
    raw?.cork();
    for (const f of frames) this.ws.send(f, { binary: false });
    raw?.uncork();
  }

  close(code: number, reason: string, graceMs?: number): void {
    if (this.ws.readyState === 2 || this.ws.readyState === 3) return;
    this.ws.close(code, limitCloseReason(reason));
    if (graceMs !== undefined) {
      const ws = this.ws;
      this.clock.setTimeout(() => ws.terminate(), graceMs);
    }
  }

  ping(): void {
    if (this.ws.readyState === 1) this.ws.ping();
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }
}
