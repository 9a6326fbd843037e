import { limitCloseReason } from '@herald/protocol';
import type { SocketListener, Socket, UpgradeInfo } from '../types.js';
import type { UwsWebSocket } from './module.js';

/** What uWebSockets.js keeps per WebSocket (its user data). */
export interface SocketData {
  /** What the upgrade request said; dropped once the connection is open (it is not needed after). */
  info: UpgradeInfo | undefined;
  /** The address admission counted the connection under (`Admission.closed` uncounts it when it closes). */
  ip: string | undefined;
  listener: SocketListener | undefined;
  socket: UwsSocket | undefined;
  /** The close handler ran: the uWS object must not be touched any more. */
  closed: boolean;
}

/** A uWebSockets.js WebSocket behind the Socket seam. */
export class UwsSocket implements Socket {
  constructor(
    private readonly ws: UwsWebSocket<SocketData>,
    private readonly data: SocketData,
  ) {}

  /** Several frames go out corked: one syscall. */
  send(frames: readonly Buffer[]): void {
    if (this.data.closed) return;
    if (frames.length === 1) {
      this.ws.send(frames[0] as Buffer, false, false);
      return;
    }
    this.ws.cork(() => {
      for (const f of frames) this.ws.send(f, false, false);
    });
  }

  /** uWebSockets.js runs the close handshake and its own timeout, so `graceMs` needs no timer here. */
  close(code: number, reason: string): void {
    if (this.data.closed) return;
    this.ws.end(code, limitCloseReason(reason));
  }

  ping(): void {
    if (!this.data.closed) this.ws.ping();
  }

  get bufferedAmount(): number {
    return this.data.closed ? 0 : this.ws.getBufferedAmount();
  }

  /** Drops the connection without a close handshake. */
  terminate(): void {
    if (!this.data.closed) this.ws.close();
  }
}
