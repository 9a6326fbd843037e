/**
 * Guards the `http.Server` of the `ws` transport against sockets that hold a file descriptor without
 * doing anything useful: idle connections that never send a request, slow ("slowloris") headers and bodies,
 * floods of plain TCP connections, and half-closed sockets after an error.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket as NetSocket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Clock } from '../../util/clock.js';
import { normalizeIp } from '../../util/ip.js';
import { randomId } from '../../util/random-id.js';
import type { Logger } from '../../util/logger.js';
import { reject, rejectionResponse } from '../admission.js';
import type { SocketGuardOptions } from '../types.js';

/** One socket that is not a WebSocket (yet). */
interface Entry {
  ip: string;
  /** When it is destroyed unless a request is under way. */
  deadline: number;
  /** Requests whose response has not finished. */
  requests: Set<IncomingMessage>;
  /** Runs once they have: the answer to a malformed request that followed them on the connection (pipelined). */
  then?: (() => void) | undefined;
}

/** The guard of one server. */
export interface HttpGuard {
  /** The socket became a WebSocket: it is no longer guarded here (the WebSocket limits apply). */
  upgraded(socket: Duplex): void;
  /** Sockets guarded now. */
  readonly size: number;
  /** Stops the sweep timer. */
  close(): void;
}

/**
 * The answer to a client error Node reports (RFC 9110 15.5), in the API's error shape with a request id: 408 for a
 * request timeout Node detects, 431 for oversized headers, 400 for bytes that are not HTTP/1.1.
 */
function clientErrorResponse(code: string | undefined): string {
  const r =
    code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? reject('request_timeout', 'the request did not arrive in time')
      : code === 'HPE_HEADER_OVERFLOW'
        ? reject('headers_too_large', 'the request headers are too large')
        : reject('malformed_request', 'the bytes received are not a valid HTTP/1.1 request');
  r.headers = { 'x-request-id': randomId(16) };
  const { status, headers, body } = rejectionResponse(r);
  const lines = Object.entries({ ...headers, connection: 'close', 'content-length': String(Buffer.byteLength(body)) }).map(([k, v]) => `${k}: ${v}`);
  return `HTTP/1.1 ${status}\r\n${lines.join('\r\n')}\r\n\r\n${body}`;
}

/**
 * Tracks every socket of `server` from accept until it becomes a WebSocket or closes:
 * - a socket that has not completed a request (headers and body) or an upgrade within `requestTimeout` is
 *   destroyed, and so is one idle for `keepAliveTimeout` + `requestTimeout` after a response (Node's own
 *   keep-alive timeout normally closes it first); a request whose body has arrived is never cut while its
 *   answer is being prepared;
 * - a TCP peer may hold at most `maxPendingPerIp` such sockets (a trusted proxy is exempt); more are
 *   destroyed at once;
 * - at most `maxPending` in all: a new socket beyond that makes the oldest idle one go, so that a flood from
 *   many addresses cannot starve a health check of file descriptors;
 * - a malformed request gets its 4xx and the socket is destroyed, never left half-closed.
 * One sweep timer on the injected clock serves every socket.
 */
export function guardHttpServer(server: Server, o: SocketGuardOptions, clock: Clock, logger: Logger): HttpGuard {
  const sockets = new Map<Duplex, Entry>();
  const perIp = new Map<string, number>();

  const forget = (socket: Duplex): void => {
    const e = sockets.get(socket);
    if (!e) return;
    sockets.delete(socket);
    const n = (perIp.get(e.ip) ?? 1) - 1;
    if (n <= 0) perIp.delete(e.ip);
    else perIp.set(e.ip, n);
  };

  const drop = (socket: Duplex, reason: Parameters<SocketGuardOptions['dropped']>[0]): void => {
    forget(socket);
    o.dropped(reason);
    socket.destroy();
  };

  // Shared by every socket (`this` is the socket), not made per connection: a WebSocket lives long, and
  // closures per socket would be memory per idle connection. Removed once the socket is upgraded.
  function onSocketError(this: Duplex, err: Error): void {
    logger.debug({ err: err.message }, 'http socket error');
  }
  function onSocketClose(this: Duplex): void {
    forget(this);
  }

  const onConnection = (socket: NetSocket): void => {
    socket.on('error', onSocketError);
    const ip = normalizeIp(socket.remoteAddress ?? '');
    if (!o.isTrustedProxy(ip) && (perIp.get(ip) ?? 0) >= o.maxPendingPerIp) {
      o.dropped('pending_per_ip');
      socket.destroy();
      return;
    }
    if (sockets.size >= o.maxPending) {
      let oldest: Duplex | undefined;
      for (const [s, e] of sockets) {
        if (e.requests.size === 0) {
          oldest = s;
          break;
        }
      }
      if (oldest === undefined) {
        o.dropped('pending_limit');
        socket.destroy();
        return;
      }
      drop(oldest, 'pending_limit');
    }
    sockets.set(socket, { ip, deadline: clock.now() + o.requestTimeout, requests: new Set() });
    perIp.set(ip, (perIp.get(ip) ?? 0) + 1);
    socket.on('close', onSocketClose);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const e = sockets.get(req.socket);
    if (!e) return;
    e.requests.add(req);
    res.once('close', () => {
      e.requests.delete(req);
      if (e.requests.size > 0) return;
      // Waiting for the next request on a kept-alive connection: Node's keepAliveTimeout applies first.
      e.deadline = clock.now() + server.keepAliveTimeout + o.requestTimeout;
      const then = e.then;
      e.then = undefined;
      then?.();
    });
  };

  const onClientError = (err: Error & { code?: string }, socket: Duplex): void => {
    logger.debug({ err: err.message, code: err.code }, 'http client error');
    const e = sockets.get(socket);
    forget(socket);
    o.dropped('client_error');
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const answer = (): void => {
      if (socket.destroyed) return;
      // Answer, then destroy once written: `end` alone leaves a half-closed socket until the peer closes.
      socket.end(clientErrorResponse(err.code), () => socket.destroy());
      // A peer that reads nothing must not keep it either.
      const t = clock.setTimeout(() => socket.destroy(), 1000);
      socket.once('close', () => clock.clearTimeout(t));
    };
    // Malformed bytes after a request that is still being answered (pipelined, or a body longer than its
    // Content-Length): that request may have published, so its answer goes out first, then this one. Not when a
    // request's body is cut short by the error (the peer went away mid-body): that request is never answered.
    let answering = e !== undefined && e.requests.size > 0;
    for (const req of e?.requests ?? []) if (!req.complete) answering = false;
    if (answering && e !== undefined) e.then = answer;
    else answer();
  };

  const sweep = (): void => {
    const now = clock.now();
    for (const [socket, e] of sockets) {
      if (now < e.deadline) continue;
      // A request whose body has fully arrived is being answered (perhaps waiting on the engine): not idle.
      let receiving = e.requests.size === 0;
      for (const req of e.requests) if (!req.complete) receiving = true;
      if (receiving) drop(socket, 'request_timeout');
    }
  };

  server.on('connection', onConnection);
  server.on('request', onRequest);
  server.on('clientError', onClientError);
  const timer = clock.setInterval(sweep, Math.max(10, Math.min(1000, Math.floor(o.requestTimeout / 4))));

  return {
    upgraded(socket) {
      forget(socket);
      // The WebSocket library listens for the socket's errors and close from now on.
      socket.off('error', onSocketError);
      socket.off('close', onSocketClose);
    },
    get size() {
      return sockets.size;
    },
    close() {
      clock.clearInterval(timer);
    },
  };
}
