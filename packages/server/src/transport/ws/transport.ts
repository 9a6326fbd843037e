import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode } from '@herald/protocol';
import { WebSocket, WebSocketServer } from 'ws';
import { Drain } from '../../util/drain.js';
import { handshakeProblem, rejectionResponse, type Rejection } from '../admission.js';
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

/**
 * The close codes `ws` sends when a client breaks the framing rules (RFC 6455 7.4.1), by its error's `code`; any
 * other `WS_ERR_*` is a protocol error (1002). It stops reading once it has sent one, so the socket's `close` event
 * says 1006 (no close frame came back): the code sent is what the connection's close is counted and logged with.
 */
const LIBRARY_CLOSE_CODES: Readonly<Record<string, number>> = {
  WS_ERR_INVALID_UTF8: CloseCode.InvalidPayload,
  WS_ERR_TOO_MANY_BUFFERED_PARTS: CloseCode.PolicyViolation,
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MessageTooBig,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: CloseCode.MessageTooBig,
};

/** Sockets `ws` closed for a framing error, with the code and reason it sent (rare: not a field of every socket). */
const closedByLibrary = new WeakMap<WebSocket, { code: number; reason: string }>();

/** What the transport does when one of its sockets closes or fails (one per transport, shared by its sockets). */
interface Tracker {
  closed(ws: TrackedWebSocket, code: number, reason: Buffer): void;
  error(err: Error): void;
}

/**
 * The transport's WebSocket: it hands its events straight to the connection's listener instead of through
 * EventEmitter listeners, whose four entries made each socket's `_events` a dictionary of its own (about 250
 * bytes per idle connection). Listeners added with `on` still hear their events, after the connection's.
 */
class TrackedWebSocket extends WebSocket {
  /** Who hears the frames and the close; set once the socket is accepted. */
  listener: SocketListener | undefined = undefined;
  /** The address its admission counted (`Admission.closed` with it when it closes). */
  ip = '';
  tracker: Tracker | undefined = undefined;

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const { listener, tracker } = this;
    if (listener === undefined || tracker === undefined) return super.emit(event, ...args);
    switch (event) {
      case 'message': {
        const data = args[0] as WebSocket.RawData;
        listener.message(Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data), args[1] === true);
        break;
      }
      case 'pong':
        listener.pong();
        break;
      case 'close':
        tracker.closed(this, args[0] as number, args[1] as Buffer);
        break;
      case 'error': {
        const err = args[0] as Error & { code?: unknown };
        if (typeof err.code === 'string' && err.code.startsWith('WS_ERR_')) {
          closedByLibrary.set(this, { code: LIBRARY_CLOSE_CODES[err.code] ?? CloseCode.ProtocolError, reason: err.message.slice(0, 100) });
        }
        tracker.error(err);
        break;
      }
      default:
        return super.emit(event, ...args);
    }
    // Without a listener of its own EventEmitter would throw an 'error': only emitted when someone listens.
    if (this.listenerCount(event) > 0) super.emit(event, ...args);
    return true;
  }
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
  const onRequest = nodeHttp(deps.http);
  server.on('request', onRequest);
  // An Expect other than 100-continue: Node answers a bare 417 unless someone listens; the handler answers it in the
  // JSON error shape, as on uWS.
  server.on('checkExpectation', onRequest);
  // Clients are tracked here rather than by `ws` (clientTracking), whose per-socket close listener would
  // make every socket's close listeners an array.
  const wss = new WebSocketServer<typeof TrackedWebSocket>({
    noServer: true,
    maxPayload: deps.maxPayload,
    perMessageDeflate: false,
    clientTracking: false,
    WebSocket: TrackedWebSocket,
  });
  const clients = new Set<WebSocket>();
  const drain = new Drain(() => clients.size);
  let fast: boolean | undefined;

  // Every listener below is made once per transport, not per socket: a closure made per upgrade keeps its
  // scope (the upgrade request, its headers, `info`) alive for the whole life of the connection, and each
  // costs memory per idle connection. The socket's own state is fields of its TrackedWebSocket.
  const onUpgradeSocketError = (err: Error): void => logger.debug({ err }, 'upgrade socket error');
  const tracker: Tracker = {
    closed(ws, code, reason) {
      clients.delete(ws);
      admission.closed(ws.ip);
      const { listener } = ws;
      ws.listener = undefined;
      const sent = closedByLibrary.get(ws);
      if (sent === undefined) listener?.closed(code, reason.toString());
      else listener?.closed(sent.code, sent.reason, true);
      drain.check();
    },
    error(err) {
      logger.debug({ err: err.message }, 'websocket error');
    },
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', onUpgradeSocketError);
    const { path, query } = splitUrl(req.url);
    const info: UpgradeInfo = { path, query, ip: req.socket.remoteAddress ?? '', origin: req.headers.origin, headers: req.headers };
    // What `ws` would refuse in plain text (a POST, no key, another version): refused as every other upgrade is.
    const malformed = handshakeProblem(req.method, req.headers);
    if (malformed) deps.guard.dropped('client_error');
    const refused = malformed ?? admission.admit(info);
    if (refused) {
      rejectUpgrade(socket, refused);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => upgraded(ws, socket, info));
  };
  const upgraded = (ws: TrackedWebSocket, socket: Duplex, info: UpgradeInfo): void => {
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
    ws.ip = info.ip;
    forgetPeerName(socket);
    ws.listener = deps.onSocket(new WsSocket(ws, fast, clock), info);
    ws.tracker = tracker;
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

/**
 * A net.Socket keeps the peer's address as an object of its own once `remoteAddress` is read (`_peername`: 56
 * bytes per idle WebSocket in a heap snapshot). The connection keeps the one string it needs (`ws.ip`), so the
 * cache goes; a later read asks the socket again. `_peername` is Node's internal field: on a Node without it
 * nothing is written.
 */
function forgetPeerName(socket: Duplex): void {
  if ('_peername' in socket) (socket as Duplex & { _peername: unknown })._peername = null;
}
