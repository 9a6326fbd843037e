import { handshakeProblem, rejectionResponse, type Rejection } from '../admission.js';
import { CloseCode } from '@herald/protocol';
import { createServer, type AddressInfo } from 'node:net';
import { Drain } from '../../util/drain.js';
import type { Transport, TransportDeps, UpgradeInfo } from '../types.js';
import { nativeHttp, readHeaders, UwsExchange } from './http.js';
import { loadUws, type UwsModule, type UwsResponse } from './module.js';
import { UwsSocket, type SocketData } from './socket.js';

/**
 * uWebSockets.js drops a connection without a close frame (1006) when a frame exceeds its own limit, while
 * the protocol promises 1009. So its limit is `maxPayload` plus this much, and a frame between the two is
 * answered with 1009 here. uWebSockets.js buffers a message up to its limit before the handler sees it,
 * so this is also the most a connection can make it hold beyond `maxPayload` (64 KiB: with 1 MiB, a thousand
 * connections of one address sending unfinished messages held a GiB); a frame over the sum still ends in a
 * bare drop, as it is refused from its header.
 */
const OVERSIZE_HEADROOM = 64 * 1024;

/** uWebSockets.js reads `maxPayloadLength` as a signed 32-bit integer. */
const MAX_UWS_PAYLOAD = 2 ** 31 - 1;

/**
 * Why uWebSockets.js could not listen on `host:port` (it does not say): Node's own listen on the same address gives
 * the error the `ws` transport would have (EADDRINUSE, EACCES, EADDRNOTAVAIL: code and message), or, when that
 * succeeds, a plain error.
 */
function listenError(host: string, port: number): Promise<Error> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', (err) => resolve(err));
    probe.listen(port, host, () => probe.close(() => resolve(new Error(`uWebSockets.js could not listen on ${host}:${port}`))));
  });
}

/** Writes a rejection (status, headers, JSON body) on a uWebSockets.js response. */
function writeRejection(res: UwsResponse, r: Rejection, close = false): void {
  const { status, headers, body } = rejectionResponse(r);
  res.cork(() => {
    res.writeStatus(status);
    for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
    res.end(body, close);
  });
}

/** The uWebSockets.js transport, with the module loaded on demand (see module.ts). */
export async function createUwsTransport(deps: TransportDeps): Promise<Transport> {
  return uwsTransport(await loadUws(), deps);
}

/**
 * Serves WebSocket upgrades with uWebSockets.js, which owns the public port: admission in its `upgrade`
 * handler (a refused upgrade gets the same HTTP status and JSON body as with `ws`), per-connection sends
 * corked into one write, backpressure read with `getBufferedAmount` (the connection closes a slow consumer
 * with 4008). Plain HTTP requests are served natively (http.ts) by the gateway's handler; uWebSockets.js closes
 * a socket that has not completed a request within its own fixed HTTP idle timeout (10 s), and the
 * gateway's `http.Server` is not used. `drained` waits for the WebSockets (the gateway waits for its HTTP
 * requests itself); `terminateAll` ends everything: the WebSockets and the app.
 */
export function uwsTransport(uws: UwsModule, deps: TransportDeps): Transport {
  const app = uws.App();
  const sockets = new Set<UwsSocket>();
  const drain = new Drain(() => sockets.size);
  let listenSocket: unknown;
  let publicAddress: AddressInfo | undefined;

  app.ws<SocketData>('/*', {
    compression: 0,
    maxPayloadLength: Math.min(deps.maxPayload + OVERSIZE_HEADROOM, MAX_UWS_PAYLOAD),
    // Far above the limit the connection enforces: uWebSockets.js must never drop a frame silently.
    maxBackpressure: deps.sendBufferLimit + 64 * 1024 * 1024,
    closeOnBackpressureLimit: false,
    // Liveness is the gateway's sweep (pings, 4002), the same for both transports.
    idleTimeout: 0,
    sendPingsAutomatically: false,
    upgrade: (res, req, context) => {
      // Everything from `req` must be read now: it is invalid once this handler returns.
      const path = req.getUrl();
      const query = req.getQuery() ?? '';
      const headers = readHeaders(req);
      // Without `Connection: upgrade` Node's server sees a plain request (the handler answers it: 426 on `/ws`).
      if (!/\bupgrade\b/i.test(String(headers.connection))) {
        const x = new UwsExchange(res, req, deps.maxRequestBody);
        deps.http(x, x);
        return;
      }
      const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
      const info: UpgradeInfo = { path, query, ip, origin: headers.origin, headers };
      // What uWebSockets.js would accept though `ws` refuses it (another version, a key that is not 16 bytes in
      // base64, an Upgrade other than websocket): refused as on the `ws` transport.
      const malformed = handshakeProblem(req.getMethod().toUpperCase(), headers);
      if (malformed) deps.guard.dropped('client_error');
      const refused = malformed ?? deps.admission.admit(info);
      if (refused) {
        writeRejection(res, refused, true);
        return;
      }
      const data: SocketData = { info, ip: undefined, listener: undefined, socket: undefined, closed: false };
      res.upgrade(data, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
    },
    open: (ws) => {
      const data = ws.getUserData();
      const info = data.info as UpgradeInfo;
      if (!deps.admission.opened(info)) {
        // A limit was reached since admission: the handshake is done, so say it with a close code.
        data.info = undefined;
        ws.end(CloseCode.TryAgainLater, 'connection limit reached, try again later');
        return;
      }
      const socket = new UwsSocket(ws, data);
      data.socket = socket;
      sockets.add(socket);
      data.ip = info.ip;
      data.listener = deps.onSocket(socket, info);
      data.info = undefined;
    },
    message: (ws, message, isBinary) => {
      if (message.byteLength > deps.maxPayload) {
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
      if (data.ip !== undefined) deps.admission.closed(data.ip);
      data.ip = undefined;
      data.listener?.closed(code, Buffer.from(new Uint8Array(message)).toString());
      drain.check();
    },
  });
  app.any(
    '/*',
    nativeHttp(deps.http, deps.maxRequestBody, () => deps.guard.dropped('client_error')),
  );

  const closeListen = (): void => {
    if (listenSocket === undefined) return;
    uws.us_listen_socket_close(listenSocket);
    listenSocket = undefined;
  };

  return {
    async listen(port, host) {
      listenSocket = await new Promise<unknown>((resolve) => app.listen(host, port, resolve));
      if (!listenSocket) {
        listenSocket = undefined;
        throw await listenError(host, port);
      }
      publicAddress = { address: host, family: host.includes(':') ? 'IPv6' : 'IPv4', port: uws.us_socket_local_port(listenSocket) };
    },
    address() {
      if (!publicAddress) throw new Error('the uWebSockets.js transport is not listening');
      return publicAddress;
    },
    stop() {
      closeListen();
    },
    terminateAll() {
      closeListen();
      for (const s of [...sockets]) s.terminate();
      app.close();
    },
    get size() {
      return sockets.size;
    },
    drained: () => drain.drained(),
  };
}
