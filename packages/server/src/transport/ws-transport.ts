import type { IncomingMessage, Server } from 'node:http';
import type { Socket as NetSocket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { limitCloseReason } from '@herald/protocol';
import type { Logger } from '../logger.js';
import type { OnSocket, Socket } from './socket.js';

/** Options of the `ws` transport. */
export interface WsTransportOptions {
  /** Paths that accept WebSocket upgrades. */
  paths: readonly string[];
  /** Largest client frame in bytes; larger frames close the connection with 1009. */
  maxPayload: number;
  /** Allowed `Origin` headers; empty means any. */
  allowedOrigins: readonly string[];
  logger: Logger;
}

/** A running transport. */
export interface Transport {
  /** Stops accepting upgrades (existing sockets stay until closed). */
  stop(): void;
  /** Destroys every socket still open. */
  terminateAll(): void;
  /** Number of open sockets. */
  readonly size: number;
  /** Resolves once no socket is open. */
  drained(): Promise<void>;
}

// `ws` keeps the underlying net.Socket in `_socket`; corking it lets several frames leave in one write.
type WithRawSocket = { _socket?: NetSocket };

class WsSocket implements Socket {
  constructor(private readonly ws: WebSocket) {}

  send(frames: readonly Buffer[]): void {
    if (this.ws.readyState !== 1) return;
    if (frames.length === 1) {
      this.ws.send(frames[0] as Buffer, { binary: false });
      return;
    }
    const raw = (this.ws as unknown as WithRawSocket)._socket;
    raw?.cork();
    for (const f of frames) this.ws.send(f, { binary: false });
    raw?.uncork();
  }

  close(code: number, reason: string, graceMs?: number): void {
    if (this.ws.readyState === 2 || this.ws.readyState === 3) return;
    this.ws.close(code, limitCloseReason(reason));
    if (graceMs !== undefined) {
      const ws = this.ws;
      setTimeout(() => ws.terminate(), graceMs).unref();
    }
  }

  ping(): void {
    if (this.ws.readyState === 1) this.ws.ping();
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }
}

function rejectUpgrade(socket: Duplex, status: number, reason: string, body: object): void {
  const json = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`,
  );
}

/**
 * Serves WebSocket upgrades on `server` with `ws` in noServer mode: path and origin checks happen in the
 * `upgrade` handler, before `handleUpgrade`, and a rejected upgrade gets an HTTP status with a JSON body.
 */
export function attachWsTransport(server: Server, options: WsTransportOptions, onSocket: OnSocket): Transport {
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayload, perMessageDeflate: false, clientTracking: true });
  const paths = new Set(options.paths);
  const origins = new Set(options.allowedOrigins);
  let accepting = true;
  let waiters: Array<() => void> = [];
  const settle = (): void => {
    if (wss.clients.size > 0) return;
    const w = waiters;
    waiters = [];
    for (const resolve of w) resolve();
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', (err) => options.logger.debug({ err }, 'upgrade socket error'));
    const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
    if (!accepting) {
      rejectUpgrade(socket, 503, 'Service Unavailable', { error: { code: 'shutting_down', message: 'the gateway is shutting down' } });
      return;
    }
    if (!paths.has(path)) {
      rejectUpgrade(socket, 404, 'Not Found', {
        error: { code: 'not_found', message: `no WebSocket endpoint at ${path.slice(0, 100)}`, paths: [...paths] },
      });
      return;
    }
    const origin = req.headers.origin;
    if (origins.size > 0 && (origin === undefined || !origins.has(origin))) {
      rejectUpgrade(socket, 403, 'Forbidden', { error: { code: 'forbidden', message: 'origin not allowed' } });
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const listener = onSocket(new WsSocket(ws), {
        path,
        ip: req.socket.remoteAddress ?? '',
        origin,
        headers: req.headers,
      });
      ws.on('error', (err) => options.logger.debug({ err: err.message }, 'websocket error'));
      ws.on('message', (data, isBinary) => {
        listener.message(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data), isBinary);
      });
      ws.on('pong', () => listener.pong());
      ws.on('close', (code, reason) => {
        listener.closed(code, reason.toString());
        // ws removes the socket from `clients` in its own close listener, registered before this one.
        settle();
      });
    });
  };
  server.on('upgrade', onUpgrade);

  return {
    stop() {
      accepting = false;
    },
    terminateAll() {
      for (const ws of wss.clients) ws.terminate();
    },
    get size() {
      return wss.clients.size;
    },
    drained() {
      return new Promise((resolve) => {
        waiters.push(resolve);
        settle();
      });
    },
  };
}
