import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode } from '@herald/protocol';
import { WebSocketServer, type WebSocket } from 'ws';
import { Drain } from '../../util/drain.js';
import { rejectionResponse, type Rejection } from '../admission.js';
import type { SocketListener, Transport, TransportDeps, UpgradeInfo } from '../types.js';
import { guardHttpServer } from './http-guard.js';
import { nodeHttp } from './http.js';
import { WsSocket, wsInternalsUsable } from './socket.js';

/**
 * Answers a refused upgrade on the raw socket, then destroys it once written (never a half-open socket);
 * the guard destroys it anyway should the peer not read the answer.
 */
function rejectUpgrade(socket: Duplex, r: Rejection): void {
  const { status, headers, body } = rejectionResponse(r);
  const lines = Object.entries({ ...headers, connection: 'close', 'content-length': String(Buffer.byteLength(body)) }).map(([k, v]) => `${k}: ${v}`);
  socket.end(`HTTP/1.1 ${status}\r\n${lines.join('\r\n')}\r\n\r\n${body}`, () => socket.destroy());
}

const TRACKED = '_herald';
const TRACKED_IP = '_heraldIp';
/**
 * What a WebSocket of this transport carries: who hears its frames and closes, and the address its admission
 * counted. Two fields of the WebSocket itself (they fit its one out-of-object property array), not an object.
 */
type Tracked = WebSocket & { [TRACKED]: SocketListener; [TRACKED_IP]: string };

/** Splits a request target into path and query. */
function splitUrl(url: string | undefined): { path: string; query: string } {
  const target = url ?? '/';
  const q = target.indexOf('?');
  return q < 0 ? { path: target, query: '' } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

/**
 * The default transport: `ws` in noServer mode on the gateway's own `http.Server`. Admission runs in the
 * `upgrade` handler, before `handleUpgrade`; a refused upgrade gets an HTTP status with a JSON body. Sockets
 * that are not WebSockets yet are guarded (http-guard.ts): request timeout, per-address and global caps.
 */
export function createWsTransport(deps: TransportDeps): Promise<Transport> {
  const { server, logger, clock, admission } = deps;
  const guard = guardHttpServer(server, deps.guard, clock, logger);
  server.on('request', nodeHttp(deps.http));
  // Clients are tracked here rather than by `ws` (clientTracking), whose per-socket close listener would
  // make every socket's close listeners an array.
  const wss = new WebSocketServer({ noServer: true, maxPayload: deps.maxPayload, perMessageDeflate: false, clientTracking: false });
  const clients = new Set<WebSocket>();
  const drain = new Drain(() => clients.size);
  let fast: boolean | undefined;

  // Every listener below is made once per transport, not per socket: a closure made per upgrade keeps its
  // scope (the upgrade request, its headers, `info`) alive for the whole life of the connection, and each
  // costs memory per idle connection. The socket's own state hangs off the WebSocket (`Tracked`).
  const onUpgradeSocketError = (err: Error): void => logger.debug({ err }, 'upgrade socket error');
  function onError(this: WebSocket, err: Error): void {
    logger.debug({ err: err.message }, 'websocket error');
  }
  function onMessage(this: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    (this as Tracked)[TRACKED].message(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data), isBinary);
  }
  function onPong(this: WebSocket): void {
    (this as Tracked)[TRACKED].pong();
  }
  function onClose(this: WebSocket, code: number, reason: Buffer): void {
    const t = this as Tracked;
    clients.delete(this);
    admission.closed(t[TRACKED_IP]);
    t[TRACKED].closed(code, reason.toString());
    drain.check();
  }

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', onUpgradeSocketError);
    const { path, query } = splitUrl(req.url);
    const info: UpgradeInfo = { path, query, ip: req.socket.remoteAddress ?? '', origin: req.headers.origin, headers: req.headers };
    const refused = admission.admit(info);
    if (refused) {
      rejectUpgrade(socket, refused);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => upgraded(ws, socket, info));
  };
  const upgraded = (ws: WebSocket, socket: Duplex, info: UpgradeInfo): void => {
    guard.upgraded(socket);
    // `ws` listens for the socket's errors from now on.
    socket.off('error', onUpgradeSocketError);
    if (fast === undefined) {
      fast = wsInternalsUsable(ws);
      if (!fast) logger.error('the installed ws version changed the internals the fast send path uses; falling back to ws.send (slower)');
    }
    if (!admission.opened(info)) {
      // A limit was reached since admission: the handshake is done, so say it with a close code.
      ws.on('error', () => undefined);
      ws.close(CloseCode.TryAgainLater, 'connection limit reached, try again later');
      // A peer that never answers the close must not hold the socket.
      const t = clock.setTimeout(() => ws.terminate(), 5000);
      ws.once('close', () => clock.clearTimeout(t));
      return;
    }
    clients.add(ws);
    const listener = deps.onSocket(new WsSocket(ws, fast, clock), info);
    (ws as Tracked)[TRACKED] = listener;
    (ws as Tracked)[TRACKED_IP] = info.ip;
    ws.on('error', onError);
    ws.on('message', onMessage);
    ws.on('pong', onPong);
    ws.on('close', onClose);
  };
  server.on('upgrade', onUpgrade);

  return Promise.resolve({
    listen: (port, host) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      }),
    address: () => server.address() as AddressInfo,
    // New upgrades are refused by admission once the gateway is shutting down; the gateway closes the server.
    stop: () => guard.close(),
    terminateAll() {
      for (const ws of clients) ws.terminate();
    },
    get size() {
      return clients.size;
    },
    drained: () => drain.drained(),
  });
}
