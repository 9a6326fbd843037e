import type { IncomingHttpHeaders } from 'node:http';

/**
 * The small socket interface the hub and connections talk to. The WebSocket library lives behind it
 * (see ws-transport.ts), so the core never imports `ws`.
 */
export interface Socket {
  /** Sends text frames in order; a transport writes them with one syscall where it can. */
  send(frames: readonly Buffer[]): void;
  /**
   * Starts the closing handshake with `code`. When `graceMs` is given the socket is destroyed after that
   * long even if the peer never answers (dead or stuck peers must not hold memory).
   */
  close(code: number, reason: string, graceMs?: number): void;
  /** Sends a protocol-level ping (answered automatically by browsers and most clients). */
  ping(): void;
  /** Bytes queued but not yet handed to the kernel. */
  readonly bufferedAmount: number;
}

/** What a transport tells a connection about its socket. */
export interface SocketListener {
  /** A complete text (`binary: false`) or binary message. */
  message(data: Buffer, binary: boolean): void;
  /** A protocol-level pong arrived. */
  pong(): void;
  /** The socket closed (for any reason); called exactly once. */
  closed(code: number, reason: string): void;
}

/** What the transport knows about an accepted connection. */
export interface UpgradeInfo {
  path: string;
  ip: string;
  origin: string | undefined;
  headers: IncomingHttpHeaders;
}

/** Called for every accepted WebSocket; returns the listener for its events. */
export type OnSocket = (socket: Socket, info: UpgradeInfo) => SocketListener;
