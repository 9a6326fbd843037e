import { Agent, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { limitCloseReason } from '@herald/protocol';
import type { Logger } from '../logger.js';
import type { OnSocket, Socket, SocketListener, UpgradeInfo } from './socket.js';
import type { Transport } from './ws-transport.js';

/**
 * The optional uWebSockets.js transport. uWebSockets.js is not on the npm registry, so it is loaded only
 * when this transport is chosen (`transport: 'uws'`), with a dynamic import; the types below are the
 * small part of its API used here, so the gateway compiles without it.
 */

/** Options of the uWebSockets.js transport. */
export interface UwsTransportOptions {
  /** Paths that accept WebSocket upgrades. */
  paths: readonly string[];
  /** Largest client frame in bytes; larger frames close the connection with 1009. */
  maxPayload: number;
  /** Allowed `Origin` headers; empty means any. */
  allowedOrigins: readonly string[];
  /**
   * The per-connection send buffer limit the connection enforces (4008). uWebSockets.js is told to buffer
   * well beyond it, so it never drops a frame on its own before the connection closes the socket.
   */
  sendBufferLimit: number;
  logger: Logger;
}

/**
 * A transport that owns the listening socket: uWebSockets.js listens on the public port and serves the
 * WebSocket upgrades itself; every plain HTTP request (the API, health, metrics, the demo page) is relayed
 * to the gateway's `http.Server`, which listens on an ephemeral loopback port.
 */
export interface ListeningTransport extends Transport {
  /** Starts listening on `host:port` (0 picks a free port). */
  listen(port: number, host: string): Promise<void>;
  /** The public address (the uWebSockets.js listen socket). */
  address(): AddressInfo;
}

// ---- the subset of uWebSockets.js used here ------------------------------------------------------

type Bytes = ArrayBuffer | Uint8Array | string;
interface UwsWebSocket<T> {
  send(message: Bytes, isBinary?: boolean, compress?: boolean): number;
  end(code?: number, shortMessage?: Bytes): void;
  close(): void;
  ping(message?: Bytes): number;
  cork(cb: () => void): unknown;
  getBufferedAmount(): number;
  getUserData(): T;
}
interface UwsResponse {
  writeStatus(status: string): UwsResponse;
  writeHeader(key: string, value: string): UwsResponse;
  end(body?: Bytes, closeConnection?: boolean): UwsResponse;
  endWithoutBody(reportedContentLength?: number, closeConnection?: boolean): UwsResponse;
  onAborted(handler: () => void): UwsResponse;
  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): UwsResponse;
  cork(cb: () => void): UwsResponse;
  getRemoteAddressAsText(): ArrayBuffer;
  upgrade<T>(userData: T, key: string, protocol: string, extensions: string, context: unknown): void;
}
interface UwsRequest {
  getHeader(lowerCaseKey: string): string;
  getUrl(): string;
  getQuery(): string | undefined;
  getMethod(): string;
  forEach(cb: (key: string, value: string) => void): void;
}
interface UwsBehavior<T> {
  compression?: number;
  maxPayloadLength?: number;
  maxBackpressure?: number;
  closeOnBackpressureLimit?: boolean;
  idleTimeout?: number;
  sendPingsAutomatically?: boolean;
  upgrade?: (res: UwsResponse, req: UwsRequest, context: unknown) => void;
  open?: (ws: UwsWebSocket<T>) => void;
  message?: (ws: UwsWebSocket<T>, message: ArrayBuffer, isBinary: boolean) => void;
  pong?: (ws: UwsWebSocket<T>, message: ArrayBuffer) => void;
  close?: (ws: UwsWebSocket<T>, code: number, message: ArrayBuffer) => void;
}
interface UwsApp {
  ws<T>(pattern: string, behavior: UwsBehavior<T>): UwsApp;
  any(pattern: string, handler: (res: UwsResponse, req: UwsRequest) => void): UwsApp;
  listen(host: string, port: number, cb: (listenSocket: unknown) => void): UwsApp;
  close(): UwsApp;
}
/** The uWebSockets.js module (as much of it as this transport uses). */
export interface UwsModule {
  App(): UwsApp;
  us_listen_socket_close(listenSocket: unknown): void;
  us_socket_local_port(listenSocket: unknown): number;
}

/** The package name users install (from GitHub, or an npm alias such as `uWebSockets.js@npm:uwebsockets`). */
export const UWS_PACKAGE = 'uWebSockets.js';

/** Loads uWebSockets.js, or fails with a message that says how to install it. */
export async function loadUws(): Promise<UwsModule> {
  try {
    // A variable specifier keeps bundlers and tsc from resolving the optional package at build time.
    const name = UWS_PACKAGE;
    const mod = (await import(name)) as { default?: UwsModule } & Partial<UwsModule>;
    const uws = (mod.default ?? mod) as UwsModule;
    if (typeof uws.App !== 'function') throw new Error('the module has no App()');
    return uws;
  } catch (err) {
    throw new Error(
      `transport 'uws' needs the optional package ${UWS_PACKAGE}, which could not be loaded (${(err as Error).message}). ` +
        `Install it (the official build from uNetworking/uWebSockets.js on GitHub, or the npm alias uWebSockets.js@npm:uwebsockets@3.0.6) or use transport 'ws'.`,
      { cause: err },
    );
  }
}

// ---- sockets -------------------------------------------------------------------------------------

interface SocketData {
  /** What the upgrade request said; dropped once the connection is open (it is not needed after). */
  info: UpgradeInfo | undefined;
  listener: SocketListener | undefined;
  socket: UwsSocket | undefined;
  /** The close handler ran: the uWS object must not be touched any more. */
  closed: boolean;
}

class UwsSocket implements Socket {
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

  terminate(): void {
    if (!this.data.closed) this.ws.close();
  }
}

// ---- HTTP relay ----------------------------------------------------------------------------------

/** Hop-by-hop headers (RFC 9110 7.6.1) and the ones uWebSockets.js writes itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'proxy-connection', 'te', 'trailer', 'date']);

/**
 * uWebSockets.js drops a connection without a close frame (1006) when a frame exceeds its own limit, while
 * the protocol promises 1009. So its limit is `maxPayload` plus this much, and a frame between the two is
 * answered with 1009 here. uWebSockets.js buffers a message up to its limit before the handler sees it,
 * so this is also the most a connection can make it hold beyond `maxPayload`; a frame over the sum still
 * ends in a bare drop, as it is refused from its header.
 */
const OVERSIZE_HEADROOM = 1024 * 1024;

/** uWebSockets.js reads `maxPayloadLength` as a signed 32-bit integer. */
const MAX_UWS_PAYLOAD = 2 ** 31 - 1;

function json(res: UwsResponse, status: string, body: object, close = false): void {
  res.cork(() => {
    res.writeStatus(status).writeHeader('content-type', 'application/json');
    res.end(JSON.stringify(body), close);
  });
}

// ---- the transport -------------------------------------------------------------------------------

/**
 * Serves WebSocket upgrades with uWebSockets.js: path and origin checks in its `upgrade` handler (a refused
 * upgrade gets an HTTP status and a JSON body, as with `ws`), per-connection sends corked into one write,
 * backpressure read with `getBufferedAmount` (the connection closes a slow consumer with 4008). Plain HTTP
 * requests are relayed to `server`, so the HTTP API is the same code whichever transport runs.
 */
export async function attachUwsTransport(server: Server, options: UwsTransportOptions, onSocket: OnSocket): Promise<ListeningTransport> {
  return createUwsTransport(await loadUws(), server, options, onSocket);
}

/**
 * `attachUwsTransport` with the module already loaded. `drained` waits for the relayed HTTP requests in
 * flight as well as the WebSockets; `terminateAll` ends everything: the WebSockets, the relayed HTTP
 * connections and the app (it is the last step of a gateway's shutdown).
 */
export function createUwsTransport(uws: UwsModule, server: Server, options: UwsTransportOptions, onSocket: OnSocket): ListeningTransport {
  const { logger } = options;
  const app = uws.App();
  const paths = new Set(options.paths);
  const origins = new Set(options.allowedOrigins);
  const sockets = new Set<UwsSocket>();
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  let accepting = true;
  let listenSocket: unknown;
  let publicAddress: AddressInfo | undefined;
  let internalPort = 0;
  /** Relayed HTTP requests not yet answered (or aborted): a graceful shutdown lets them finish. */
  let relays = 0;
  let waiters: Array<() => void> = [];
  const settle = (): void => {
    if (sockets.size > 0 || relays > 0) return;
    const w = waiters;
    waiters = [];
    for (const resolve of w) resolve();
  };

  app.ws<SocketData>('/*', {
    compression: 0,
    maxPayloadLength: Math.min(options.maxPayload + OVERSIZE_HEADROOM, MAX_UWS_PAYLOAD),
    // Far above the limit the connection enforces: uWebSockets.js must never drop a frame silently.
    maxBackpressure: options.sendBufferLimit + 64 * 1024 * 1024,
    closeOnBackpressureLimit: false,
    // Liveness is the gateway's sweep (pings, 4002), the same for both transports.
    idleTimeout: 0,
    sendPingsAutomatically: false,
    upgrade: (res, req, context) => {
      // Everything from `req` must be read now: it is invalid once this handler returns.
      const path = req.getUrl();
      const headers: IncomingHttpHeaders = {};
      req.forEach((k, v) => {
        headers[k] = v;
      });
      const origin = headers.origin;
      if (!accepting) {
        json(res, '503 Service Unavailable', { error: { code: 'shutting_down', message: 'the gateway is shutting down' } }, true);
        return;
      }
      if (!paths.has(path)) {
        json(res, '404 Not Found', { error: { code: 'not_found', message: `no WebSocket endpoint at ${path.slice(0, 100)}`, paths: [...paths] } }, true);
        return;
      }
      if (origins.size > 0 && (origin === undefined || !origins.has(origin))) {
        json(res, '403 Forbidden', { error: { code: 'forbidden', message: 'origin not allowed' } }, true);
        return;
      }
      const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
      const data: SocketData = { info: { path, ip, origin, headers }, listener: undefined, socket: undefined, closed: false };
      res.upgrade(data, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
    },
    open: (ws) => {
      const data = ws.getUserData();
      const socket = new UwsSocket(ws, data);
      data.socket = socket;
      sockets.add(socket);
      data.listener = onSocket(socket, data.info as UpgradeInfo);
      data.info = undefined;
    },
    message: (ws, message, isBinary) => {
      if (message.byteLength > options.maxPayload) {
        ws.end(1009, 'message too big');
        return;
      }
      // The ArrayBuffer is only valid during this call: copy it.
      ws.getUserData().listener?.message(Buffer.from(new Uint8Array(message)), isBinary);
    },
    pong: (ws) => ws.getUserData().listener?.pong(),
    close: (ws, code, message) => {
      const data = ws.getUserData();
      data.closed = true;
      if (data.socket) sockets.delete(data.socket);
      data.listener?.closed(code, Buffer.from(new Uint8Array(message)).toString());
      settle();
    },
  });

  // Plain HTTP: relayed to the gateway's own handler on the loopback port, with the peer address kept in
  // X-Forwarded-For (the relayed request's own address is always 127.0.0.1).
  app.any('/*', (res, req) => {
    const method = req.getMethod().toUpperCase();
    const query = req.getQuery();
    const path = query ? `${req.getUrl()}?${query}` : req.getUrl();
    const headers: IncomingHttpHeaders = {};
    req.forEach((k, v) => {
      headers[k] = v;
    });
    const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
    headers['x-forwarded-for'] = typeof headers['x-forwarded-for'] === 'string' ? `${headers['x-forwarded-for']}, ${ip}` : ip;
    let aborted = false;
    let done = false;
    // The gateway's own handler finishes before its answer has come back through here, so its idle() does
    // not cover the relay: the request counts until uWebSockets.js has the answer (or the client is gone).
    relays += 1;
    const finish = (): void => {
      if (done) return;
      done = true;
      relays -= 1;
      settle();
    };
    const fail = (err: Error): void => {
      if (aborted || done) return;
      finish();
      logger.debug({ err: err.message }, 'http relay failed');
      if (accepting) json(res, '502 Bad Gateway', { error: { code: 'internal', message: 'internal error' } });
      else json(res, '503 Service Unavailable', { error: { code: 'shutting_down', message: 'the gateway is shutting down' } }, true);
    };
    const relay = request({ host: '127.0.0.1', port: internalPort, method, path, headers, agent }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      // The answer is written only once complete, so one cut short is still answered as a failed relay.
      answer.on('error', fail);
      answer.on('end', () => {
        if (aborted || done) return;
        res.cork(() => {
          res.writeStatus(`${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`);
          for (const [k, v] of Object.entries(answer.headers)) {
            if (v === undefined || HOP_BY_HOP.has(k)) continue;
            for (const one of Array.isArray(v) ? v : [v]) res.writeHeader(k, one);
          }
          const close = answer.headers.connection === 'close';
          // HEAD: report the length the gateway declared (left out, this uWS build writes 2^63).
          if (method === 'HEAD') res.endWithoutBody(Number(answer.headers['content-length'] ?? 0), close);
          else res.end(Buffer.concat(chunks), close);
        });
        finish();
      });
    });
    relay.on('error', fail);
    res.onAborted(() => {
      aborted = true;
      finish();
      relay.destroy();
    });
    const length = headers['content-length'];
    if (headers['transfer-encoding'] === undefined && (length === undefined || length === '0')) {
      relay.end();
      return;
    }
    res.onData((chunk, isLast) => {
      // Copied: uWebSockets.js reuses the chunk's memory after this call.
      relay.write(Buffer.from(new Uint8Array(chunk)));
      if (isLast) relay.end();
    });
  });

  const closeListen = (): void => {
    if (listenSocket === undefined) return;
    uws.us_listen_socket_close(listenSocket);
    listenSocket = undefined;
  };

  return {
    async listen(port, host) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      internalPort = (server.address() as AddressInfo).port;
      listenSocket = await new Promise<unknown>((resolve) => app.listen(host, port, resolve));
      if (!listenSocket) {
        listenSocket = undefined;
        throw new Error(`uWebSockets.js could not listen on ${host}:${port}`);
      }
      publicAddress = { address: host, family: host.includes(':') ? 'IPv6' : 'IPv4', port: uws.us_socket_local_port(listenSocket) };
    },
    address() {
      if (!publicAddress) throw new Error('the uWebSockets.js transport is not listening');
      return publicAddress;
    },
    stop() {
      accepting = false;
      closeListen();
    },
    terminateAll() {
      accepting = false;
      closeListen();
      for (const s of [...sockets]) s.terminate();
      agent.destroy();
      app.close();
    },
    get size() {
      return sockets.size;
    },
    drained() {
      return new Promise((resolve) => {
        waiters.push(resolve);
        settle();
      });
    },
  };
}
