import type { IncomingMessage, Server } from 'node:http';
import type { Socket as NetSocket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { limitCloseReason } from '@herald/protocol';
import { FramesMemo } from '../frames-memo.js';
import type { Logger } from '../logger.js';
import type { OnSocket, Socket, SocketListener } from './socket.js';

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

// `ws` keeps the underlying net.Socket in `_socket`. Its Sender leaves its idle state (0) and queues frames
// only while it compresses (never here: perMessageDeflate is off) or reads a Blob (we never send one).
type WsInternals = { _socket?: NetSocket; _sender?: { _queue?: unknown[]; _state?: number } };

/** Whether frames may bypass the Sender: it is idle, so nothing it holds could be overtaken. */
function senderIdle(sender: WsInternals['_sender']): boolean {
  return sender !== undefined && sender._queue?.length === 0 && sender._state === 0;
}

/** Bytes of the RFC 6455 5.2 header of an unmasked frame with a payload of `n` bytes. */
function headerSize(n: number): number {
  return n < 126 ? 2 : n < 65536 ? 4 : 10;
}

/** Writes the header of a final, unmasked text frame of `n` bytes at `off`; returns the offset after it. */
function writeHeader(out: Buffer, off: number, n: number): number {
  out[off] = 0x81; // FIN + opcode 1 (text)
  if (n < 126) {
    out[off + 1] = n;
    return off + 2;
  }
  if (n < 65536) {
    out[off + 1] = 126;
    out.writeUInt16BE(n, off + 2);
    return off + 4;
  }
  out[off + 1] = 127;
  out.writeUInt32BE(Math.floor(n / 2 ** 32), off + 2);
  out.writeUInt32BE(n >>> 0, off + 6);
  return off + 10;
}

/** The wire bytes of `frames` as consecutive text frames (header + payload each), in one buffer. */
export function encodeFrames(frames: readonly Buffer[]): Buffer {
  let size = 0;
  for (const f of frames) size += headerSize(f.length) + f.length;
  const out = Buffer.allocUnsafe(size);
  let off = 0;
  for (const f of frames) {
    off = writeHeader(out, off, f.length);
    off += f.copy(out, off);
  }
  return out;
}

/** Wire bytes built once per distinct list of frames, not once per socket (see FramesMemo). */
const wire = new FramesMemo(encodeFrames);

class WsSocket implements Socket {
  constructor(private readonly ws: WebSocket) {}

  /**
   * Writes prebuilt frame bytes straight to the net.Socket: one `write` (one syscall) per connection per
   * flush, the same immutable bytes for every subscriber, no per-socket framing or allocation. Safe next
   * to `ws` because its Sender keeps no queue here (see WsInternals) and `bufferedAmount` counts what the
   * net.Socket buffers; falls back to `ws.send` should that ever not hold.
   */
  send(frames: readonly Buffer[]): void {
    if (this.ws.readyState !== 1 || frames.length === 0) return;
    const internals = this.ws as unknown as WsInternals;
    const raw = internals._socket;
    if (raw !== undefined && senderIdle(internals._sender)) {
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
      listen(ws, listener);
    });
  };
  // The socket's listeners are made here, not inside the upgrade callback: closures there would keep the
  // upgrade request (headers, raw headers, `head`) alive for the whole life of the connection.
  const listen = (ws: WebSocket, listener: SocketListener): void => {
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
