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
  const wss = new WebSocketServer({ noServer: true, maxPayload: deps.maxPayload, perMessageDeflate: false, clientTracking: true });
  const drain = new Drain(() => wss.clients.size);
  let fast: boolean | undefined;

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', (err) => logger.debug({ err }, 'upgrade socket error'));
    const { path, query } = splitUrl(req.url);
    const info: UpgradeInfo = { path, query, ip: req.socket.remoteAddress ?? '', origin: req.headers.origin, headers: req.headers };
    const refused = admission.admit(info);
    if (refused) {
      rejectUpgrade(socket, refused);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      guard.upgraded(socket);
      if (fast === undefined) {
        fast = wsInternalsUsable(ws);
        if (!fast) logger.error('the installed ws version changed the internals the fast send path uses; falling back to ws.send (slower)');
      }
      const release = admission.opened(info);
      if (!release) {
        // A limit was reached since admission: the handshake is done, so say it with a close code.
        ws.on('error', () => undefined);
        ws.close(CloseCode.TryAgainLater, 'connection limit reached, try again later');
        // A peer that never answers the close must not hold the socket.
        const t = clock.setTimeout(() => ws.terminate(), 5000);
        ws.once('close', () => clock.clearTimeout(t));
        return;
      }
      ws.once('close', release);
      listen(ws, deps.onSocket(new WsSocket(ws, fast, clock), info));
    });
  };
  // The socket's listeners are made here, not inside the upgrade callback: closures there would keep the
  // upgrade request (headers, raw headers, `head`) alive for the whole life of the connection.
  const listen = (ws: WebSocket, listener: SocketListener): void => {
    ws.on('error', (err) => logger.debug({ err: err.message }, 'websocket error'));
    ws.on('message', (data, isBinary) => {
      listener.message(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data), isBinary);
    });
    ws.on('pong', () => listener.pong());
    ws.on('close', (code, reason) => {
      listener.closed(code, reason.toString());
      // ws removes the socket from `clients` in its own close listener, registered before this one.
      drain.check();
    });
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
      for (const ws of wss.clients) ws.terminate();
    },
    get size() {
      return wss.clients.size;
    },
    drained: () => drain.drained(),
  });
}
