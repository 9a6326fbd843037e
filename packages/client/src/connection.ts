import { CloseCode, shouldReconnect, type ClientFrame, type ConnectFrame, type ConnectedFrame } from '@herald/protocol';
import { decode } from './decode.js';
import { ClientErrorCode, HeraldError } from './errors.js';
import { Heartbeat } from './heartbeat.js';
import type { Link, LinkHost, StateInfo } from './link.js';
import { fetchToken, type ResolvedOptions } from './options.js';
import type { ClientState, WebSocketLike } from './types.js';

/** RFC 6455 section 7.1.5: the close code reported when a connection closed without a close frame. */
const ABNORMAL_CLOSURE = 1006;
/** How long `close()` waits for the socket's close event before resolving anyway, in ms. */
const CLOSE_WAIT = 1000;

type CloseEventLike = { code?: unknown; reason?: unknown } | undefined;

/**
 * One WebSocket to the gateway and its whole lifecycle (internal): token, connect frame, connect timeout,
 * heartbeat, close codes, reconnects with backoff and the page's online/visible hooks. It knows nothing of
 * subscriptions: frames go to its {@link LinkHost}, which is the client itself, or the relay of the leader
 * tab when tabs share this connection.
 */
export class Connection implements Link {
  private readonly _heartbeat: Heartbeat;
  private _st: ClientState = 'disconnected';
  private _ws: WebSocketLike | undefined;
  private _opened = false;
  /** Transport id: bumped whenever a socket is replaced, so callbacks of older sockets are ignored. */
  private _tid = 0;
  private _failures = 0;
  private _pending: number | undefined;
  private _retryTimer: unknown;
  private _connectTimer: unknown;
  private _connectedAt: number | undefined;
  private _token: string | undefined;
  private _tokenStale = false;
  private _unhook: Array<() => void> = [];

  /** `onToken` hears every token `getToken()` resolved to (the leader tab shares them with the others). */
  constructor(
    private readonly _o: ResolvedOptions,
    private readonly _host: LinkHost,
    private readonly _onToken?: (token: string) => void,
  ) {
    this._heartbeat = new Heartbeat(
      _o.clock,
      () => this.send({ type: 'ping' }),
      (reason) => this._lost(CloseCode.NoHeartbeat, reason, true),
    );
  }

  /** Connects unless connecting or connected; while waiting for a retry it retries at once. */
  connect(): void {
    if (this._st === 'connecting' || this._st === 'connected') return;
    if (this._st === 'closed') {
      this._failures = 0;
      if (this._o.getToken) this._tokenStale = true;
    }
    this._hookEnvironment();
    if (this._pending !== undefined) this._retryNow();
    else this._open(undefined);
  }

  /** Closes with code 1000 and stops reconnecting; resolves once the socket reports the close (at most about a second). */
  close(): Promise<void> {
    const ws = this._ws;
    this._detach();
    this._terminate(CloseCode.Normal, 'client closed');
    if (!ws) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = this._o.clock.setTimeout(resolve, CLOSE_WAIT);
      const done = (): void => {
        this._o.clock.clearTimeout(timer);
        resolve();
      };
      ws.onclose = done;
      try {
        ws.close(CloseCode.Normal, 'client closed');
      } catch {
        done();
      }
    });
  }

  /** The page came back (visible, online): check a connected socket at once, or retry now. */
  wake(): void {
    if (this._st === 'connected') this._heartbeat.probe(this._o.visibilityTimeout);
    else this._retryNow();
  }

  /** Sends a frame on the open socket; dropped otherwise. */
  send(frame: ClientFrame): void {
    if (!this._ws || !this._opened) return;
    try {
      this._ws.send(JSON.stringify(frame));
    } catch (error) {
      // The socket is closing; its close event follows.
      this._o.logger.debug('send failed', error);
    }
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /** The one place the connection's state changes; every transition is reported to the host. */
  private _setState(to: ClientState, info: StateInfo = {}): void {
    if (this._st === to) return;
    this._st = to;
    if (to !== 'connected') this._host.state({ to, ...info });
  }

  private _open(attempt: number | undefined): void {
    const id = ++this._tid;
    this._setState('connecting', attempt === undefined ? {} : { attempt });
    if (id !== this._tid) return;
    const getToken = this._o.getToken;
    if (!getToken || !(this._tokenStale || (this._token ?? this._o.token) === undefined)) {
      this._dial(id);
      return;
    }
    const failed = (cause: unknown): void => {
      if (id !== this._tid) return;
      this._host.error(new HeraldError(ClientErrorCode.Token, 'getToken() failed', { cause }));
      this._lost(undefined, 'token refresh failed');
    };
    fetchToken(this._o).then((token) => {
      if (id !== this._tid) return;
      this._token = token;
      this._tokenStale = false;
      this._onToken?.(token);
      this._dial(id);
    }, failed);
  }

  private _dial(id: number): void {
    let ws: WebSocketLike;
    try {
      ws = new this._o.WebSocket(this._o.url);
    } catch (cause) {
      // Invalid URL, blocked by the page's security policy: retrying cannot help.
      this._host.error(new HeraldError(ClientErrorCode.Socket, 'cannot create the WebSocket', { cause }));
      this._terminate(undefined, 'cannot create the WebSocket');
      return;
    }
    this._ws = ws;
    // Handlers are never removed, only disarmed by the transport id: the ws package throws on an
    // 'error' event without a listener.
    ws.onopen = () => id === this._tid && this._onOpen();
    ws.onmessage = (ev: { data?: unknown } | undefined) => id === this._tid && this._onData(id, ev?.data);
    ws.onclose = (ev: CloseEventLike) => {
      if (id !== this._tid) return;
      const code = typeof ev?.code === 'number' ? ev.code : ABNORMAL_CLOSURE;
      this._lost(code, typeof ev?.reason === 'string' ? ev.reason : '');
    };
    ws.onerror = () => id === this._tid && this._o.logger.debug('socket error');
    this._connectTimer = this._o.clock.setTimeout(
      () => id === this._tid && this._lost(CloseCode.ConnectTimeout, 'connect timeout', true),
      this._o.connectTimeout,
    );
  }

  private _onOpen(): void {
    this._opened = true;
    const frame: ConnectFrame = { type: 'connect' };
    const token = this._token ?? this._o.token;
    if (token !== undefined) frame.token = token;
    frame.subs = this._host.subs();
    frame.batch = true;
    this.send(frame);
  }

  /** The connection is gone (or we gave up on it): reconnect with backoff, or stop for good. */
  private _lost(code: number | undefined, reason: string, closeSocket = false): void {
    const stable = this._connectedAt !== undefined && this._o.clock.now() - this._connectedAt >= this._o.stableAfter;
    this._detach(closeSocket ? code : undefined, reason);
    if (code !== undefined && !shouldReconnect(code)) return this._terminate(code, reason);
    if (code === CloseCode.TokenExpired) {
      // Reconnecting with the same expired token would only be refused again.
      if (!this._o.getToken) return this._terminate(code, reason);
      this._tokenStale = true;
    }
    if (stable) this._failures = 0;
    const attempt = this._failures++;
    const wait = this._o.backoff(attempt);
    const delay = Number.isFinite(wait) && wait > 0 ? wait : 0;
    this._pending = attempt;
    this._retryTimer = this._o.clock.setTimeout(() => this._retryNow(), delay);
    this._setState('disconnected', code === undefined ? { reason, attempt, delay } : { code, reason, attempt, delay });
  }

  private _retryNow(): void {
    const attempt = this._pending;
    if (attempt === undefined) return;
    this._o.clock.clearTimeout(this._retryTimer);
    this._retryTimer = this._pending = undefined;
    this._open(attempt);
  }

  private _terminate(code: number | undefined, reason: string): void {
    this._o.clock.clearTimeout(this._retryTimer);
    this._retryTimer = this._pending = undefined;
    for (const off of this._unhook) off();
    this._unhook = [];
    this._setState('closed', code === undefined ? { reason } : { code, reason });
  }

  /** Forgets the current socket and everything tied to it; its later callbacks are ignored. */
  private _detach(closeCode?: number, reason?: string): void {
    const ws = this._ws;
    this._ws = undefined;
    this._opened = false;
    this._tid++;
    this._o.clock.clearTimeout(this._connectTimer);
    this._connectTimer = this._connectedAt = undefined;
    this._heartbeat.stop();
    if (ws && closeCode !== undefined) {
      try {
        ws.close(closeCode, reason);
      } catch (error) {
        this._o.logger.debug('close failed', error);
      }
    }
  }

  private _hookEnvironment(): void {
    const env = this._o.environment;
    if (!env || this._unhook.length > 0) return;
    this._unhook = [env.onOnline(() => this._retryNow()), env.onVisible(() => this.wake())];
  }

  // ---- incoming frames -----------------------------------------------------------------------

  private _onData(id: number, data: unknown): void {
    this._heartbeat.alive();
    for (const d of decode(data)) {
      // A handler may have closed or replaced the connection in the middle of a batch.
      if (id !== this._tid) return;
      if ('error' in d) {
        this._o.logger.warn(d.error.message, d.error.data);
        this._host.error(d.error, true);
      } else if (d.frame.kind === 'control' && d.frame.frame.type === 'connected') {
        this._onConnected(d.frame.frame);
      } else if (d.frame.kind === 'message' || d.frame.frame.type !== 'pong') {
        // pong: liveness only, already counted.
        this._host.frame(d.frame);
      }
    }
  }

  private _onConnected(f: ConnectedFrame): void {
    if (this._st !== 'connecting') {
      this._host.error(new HeraldError(ClientErrorCode.InvalidFrame, 'unexpected connected frame', { data: f }));
      return;
    }
    const id = this._tid;
    this._o.clock.clearTimeout(this._connectTimer);
    this._connectTimer = undefined;
    this._connectedAt = this._o.clock.now();
    const own = this._o.pingInterval;
    const server = typeof f.ping === 'number' && f.ping > 0 ? f.ping : own;
    this._heartbeat.start(own === 0 ? 0 : Math.min(own, server));
    this._setState('connected');
    this._host.connected(f, () => id === this._tid);
  }
}
