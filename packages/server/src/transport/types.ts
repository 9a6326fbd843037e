import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { ErrorCode } from '@herald/protocol';
import type { HttpRequestHandler } from './http.js';

/**
 * The small socket interface connections talk to. The WebSocket library lives behind it (`ws/`, `uws/`), so
 * nothing outside `transport/` imports `ws` or uWebSockets.js.
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
  /**
   * The socket closed (for any reason); called exactly once. `bySelf`: the transport's WebSocket library closed it
   * with `code` and `reason` (a framing error, invalid UTF-8, a frame over `maxPayload`), not the peer.
   */
  closed(code: number, reason: string, bySelf?: boolean): void;
}

/** What the transport knows about an upgrade request. */
export interface UpgradeInfo {
  /** The path, without the query. */
  path: string;
  /** The query string without `?` (empty when there is none). */
  query: string;
  /**
   * The client address: the transport sets the TCP peer; admission replaces it with the address a trusted
   * proxy forwarded (`trustedProxies`), so that limits and logs see the client, not the proxy.
   */
  ip: string;
  origin: string | undefined;
  headers: IncomingHttpHeaders;
}

/** An upgrade refused before it is accepted: an HTTP status with the JSON error body of the catalogue. */
export interface Rejection {
  status: number;
  code: ErrorCode;
  message: string;
  /** More fields of the error object (the valid `paths` of a 404). */
  extra?: Record<string, unknown>;
  /** Extra response headers (`Retry-After`). */
  headers?: Record<string, string>;
}

/**
 * Decides upgrades and counts the WebSockets they become (see admission.ts). A transport calls `admit` before
 * the handshake and `opened` when the socket is accepted: false when a limit was reached in the meantime (close
 * it with 1013); otherwise `closed` with the same `info.ip`, exactly once, when the socket is gone. (An address
 * string, not a release closure: a closure and its scope per socket cost about 100 bytes per idle connection.)
 */
export interface Admission {
  admit(info: UpgradeInfo): Rejection | undefined;
  opened(info: UpgradeInfo): boolean;
  closed(ip: string): void;
}

/** Why a socket that never became a WebSocket nor completed a request was destroyed (the `reason` label of `herald_sockets_dropped_total`). */
export type SocketDropReason = 'request_timeout' | 'pending_per_ip' | 'pending_limit' | 'client_error';

/** Every socket drop reason, for metrics exported at 0. */
export const SOCKET_DROP_REASONS: readonly SocketDropReason[] = ['request_timeout', 'pending_per_ip', 'pending_limit', 'client_error'];

/** How the transport guards sockets before they are WebSockets or have completed a request (see ws/http-guard.ts). */
export interface SocketGuardOptions {
  /** Time a new TCP connection has to complete a request (headers and body) or an upgrade, in ms. */
  requestTimeout: number;
  /** Most such sockets at once; a new one beyond it makes the oldest go. */
  maxPending: number;
  /** Most such sockets per TCP peer address (a trusted proxy is exempt); more are destroyed at once. */
  maxPendingPerIp: number;
  /** Whether a TCP peer is a trusted proxy (its sockets carry many clients). */
  isTrustedProxy(ip: string): boolean;
  /** Counts a dropped socket. */
  dropped(reason: SocketDropReason): void;
}

/** Called for every accepted WebSocket; returns the listener for its events. */
export type OnSocket = (socket: Socket, info: UpgradeInfo) => SocketListener;

/** What every transport is built from. */
export interface TransportDeps {
  /** The gateway's HTTP server: the `ws` transport serves upgrades and plain HTTP on it (uWebSockets.js does not use it). */
  server: Server;
  /** Serves every plain HTTP request (the API, health, metrics, pages); both transports call it. */
  http: HttpRequestHandler;
  /** Most request body bytes kept before a route reads the body with its own limit. */
  maxRequestBody: number;
  /** Decides every upgrade before it is accepted and counts the WebSockets (see admission.ts). */
  admission: Admission;
  /** Idle, slow and excess sockets that are not WebSockets yet. */
  guard: SocketGuardOptions;
  /** Makes the connection of an accepted socket. */
  onSocket: OnSocket;
  /** Largest client frame in bytes; larger frames close the connection with 1009. */
  maxPayload: number;
  /** The per-connection send buffer limit the connection enforces (4008); the library must buffer at least this much. */
  sendBufferLimit: number;
  clock: Clock;
  logger: Logger;
}

/** A WebSocket transport: it owns the listening socket, accepts upgrades, and drains at shutdown. */
export interface Transport {
  /** Starts listening on `host:port` (0 picks a free port). */
  listen(port: number, host: string): Promise<void>;
  /** The public address. */
  address(): AddressInfo;
  /** Stops accepting upgrades (existing sockets stay until closed). */
  stop(): void;
  /** Destroys every socket still open (the last step of a shutdown). */
  terminateAll(): void;
  /** Number of open sockets. */
  readonly size: number;
  /** Resolves once no WebSocket is open. */
  drained(): Promise<void>;
}

/** Builds a transport (the `transport` option picks one). */
export type TransportFactory = (deps: TransportDeps) => Promise<Transport>;
