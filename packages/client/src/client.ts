import {
  CloseCode,
  USER_CHANNEL_PREFIX,
  channelKind,
  isSeq,
  isValidChannel,
  shouldReconnect,
  type ChannelName,
  type ClientFrame,
  type ClientId,
  type ConnectFrame,
  type ConnectedFrame,
  type Payload,
  type ServerFrame,
  type UserId,
} from '@herald/protocol';
import { decode } from './decode.js';
import { Emitter, type Listener } from './emitter.js';
import { ClientErrorCode, HeraldError } from './errors.js';
import { Heartbeat } from './heartbeat.js';
import { resolveOptions, type HeraldClientOptions, type ResolvedOptions } from './options.js';
import { SubscriptionRegistry } from './registry.js';
import type { Subscription } from './subscription.js';
import type { ClientEvents, ClientState, Message, StateChange, SubscribeOptions, WebSocketLike } from './types.js';

/** RFC 6455 section 7.1.5: the close code reported when a connection closed without a close frame. */
const ABNORMAL_CLOSURE = 1006;
/** How long `close()` waits for the socket's close event before resolving anyway, in ms. */
const CLOSE_WAIT = 1000;

type StateInfo = Omit<StateChange, 'from' | 'to'>;
type CloseEventLike = { code?: unknown; reason?: unknown } | undefined;

/**
 * The Herald client: one WebSocket to the gateway, reconnected with backoff, with exactly-once,
 * in-order delivery per channel across reconnects (within the server's history window).
 *
 * ```ts
 * const client = new HeraldClient({ url: 'wss://push.example.com/ws', getToken });
 * client.subscribe('orders', (m) => render(m.payload));
 * client.connect();
 * ```
 */
export class HeraldClient {
  private readonly _o: ResolvedOptions;
  private readonly _events: Emitter<ClientEvents>;
  private readonly _heartbeat: Heartbeat;
  private readonly _subs: SubscriptionRegistry;
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
  private _clientId: ClientId | undefined;
  private _user: UserId | null | undefined;

  /** @throws {HeraldError} `HERALD_ERR_CLIENT_INVALID_OPTION` for missing or invalid options. */
  constructor(options: HeraldClientOptions) {
    this._o = resolveOptions(options);
    this._events = new Emitter((error, event) => this._listenerError(error, event));
    this._subs = new SubscriptionRegistry({
      clock: this._o.clock,
      logger: this._o.logger,
      backoff: this._o.backoff,
      send: (frame) => this._send(frame),
      connected: () => this._st === 'connected',
      emit: (event, payload) => this._events.emit(event, payload),
      report: (error) => this._report(error),
      host: { listenerError: (error, event) => this._listenerError(error, event) },
    });
    this._heartbeat = new Heartbeat(
      this._o.clock,
      () => this._send({ type: 'ping' }),
      (reason) => this._lost(CloseCode.NoHeartbeat, reason, true),
    );
  }

  /** The current state. */
  get state(): ClientState {
    return this._st;
  }

  /** The connection id the server assigned (the last one while disconnected). */
  get clientId(): ClientId | undefined {
    return this._clientId;
  }

  /** The authenticated user id (null for an anonymous connection), once connected. */
  get user(): UserId | null | undefined {
    return this._user;
  }

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): () => void {
    return this._events.on(event, listener);
  }

  /** Adds a listener called at most once; returns a function that removes it. */
  once<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): () => void {
    return this._events.once(event, listener);
  }

  /** Removes a listener. */
  off<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): void {
    this._events.off(event, listener);
  }

  /**
   * Connects, and keeps reconnecting until `close()` or a terminal close code. Does nothing while
   * connecting or connected; while waiting for a retry it retries at once. After a terminal close it
   * starts again (calling `getToken` first when there is one).
   */
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

  /**
   * Closes the connection with code 1000 and stops reconnecting (state `closed`). Subscriptions and
   * their positions are kept, so a later `connect()` resumes them. Resolves once the socket reports
   * the close (at most about a second).
   */
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

  /**
   * Follows `channel`; `handler`, when given, is added as a `message` listener. The same channel
   * returns the same subscription (and `options` only apply when it is created). Works before
   * `connect()` and for the automatic `user:{id}` channel.
   * @throws {HeraldError} `HERALD_ERR_CLIENT_INVALID_CHANNEL` for an invalid channel or a `client:` channel.
   */
  subscribe<P extends Payload = Payload>(channel: ChannelName, handler?: Listener<Message<P>>, options?: SubscribeOptions): Subscription<P> {
    if (!isValidChannel(channel) || channelKind(channel) === 'client') {
      throw new HeraldError(ClientErrorCode.InvalidChannel, `cannot subscribe to ${String(channel).slice(0, 200)}`, { channel: String(channel) });
    }
    if (options?.since !== undefined && !isSeq(options.since)) {
      throw new HeraldError(ClientErrorCode.InvalidOption, 'since must be a non-negative integer', { channel });
    }
    const typed = this._subs.add(channel, options) as unknown as Subscription<P>;
    if (handler) typed.on('message', handler);
    return typed;
  }

  /** The subscription of `channel`, if any (including the automatic `user:{id}` one once connected). */
  getSubscription(channel: ChannelName): Subscription | undefined {
    return this._subs.get(channel);
  }

  // ---- connection lifecycle --------------------------------------------------------------------

  /** The one place the state changes; every transition is emitted. */
  private _setState(to: ClientState, info: StateInfo = {}): void {
    const from = this._st;
    if (from === to) return;
    this._st = to;
    this._events.emit('state', { from, to, ...info });
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
      this._report(new HeraldError(ClientErrorCode.Token, 'getToken() failed', { cause }));
      this._lost(undefined, 'token refresh failed');
    };
    new Promise<string>((resolve) => resolve(getToken())).then((token) => {
      if (id !== this._tid) return;
      if (typeof token !== 'string' || token === '') return failed(new TypeError('getToken() must resolve to a non-empty string'));
      this._token = token;
      this._tokenStale = false;
      this._dial(id);
    }, failed);
  }

  private _dial(id: number): void {
    let ws: WebSocketLike;
    try {
      ws = new this._o.WebSocket(this._o.url);
    } catch (cause) {
      // Invalid URL, blocked by the page's security policy: retrying cannot help.
      this._report(new HeraldError(ClientErrorCode.Socket, 'cannot create the WebSocket', { cause }));
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
    frame.subs = this._subs.connectSubs();
    frame.batch = true;
    this._send(frame);
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
    this._subs.reset();
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
    this._unhook = [
      env.onOnline(() => this._retryNow()),
      env.onVisible(() => (this._st === 'connected' ? this._heartbeat.probe(this._o.visibilityTimeout) : this._retryNow())),
    ];
  }

  private _send(frame: ClientFrame): void {
    if (!this._ws || !this._opened) return;
    try {
      this._ws.send(JSON.stringify(frame));
    } catch (error) {
      // The socket is closing; its close event follows.
      this._o.logger.debug('send failed', error);
    }
  }

  // ---- incoming frames -------------------------------------------------------------------------

  private _onData(id: number, data: unknown): void {
    this._heartbeat.alive();
    for (const d of decode(data)) {
      // A handler may have closed or replaced the connection in the middle of a batch.
      if (id !== this._tid) return;
      if ('error' in d) {
        this._o.logger.warn(d.error.message, d.error.data);
        this._events.emit('error', d.error);
      } else {
        this._handle(d.frame);
      }
    }
  }

  private _handle(f: ServerFrame): void {
    if (f.kind === 'message') return this._subs.message(f.frame);
    const c = f.frame;
    switch (c.type) {
      case 'connected':
        return this._onConnected(c);
      case 'subscribed':
        return this._subs.subscribed(c);
      case 'unsubscribed':
        return this._subs.unsubscribed(c);
      case 'error':
        return this._subs.error(c);
      default:
        // pong: liveness only, already counted.
        return;
    }
  }

  private _onConnected(f: ConnectedFrame): void {
    if (this._st !== 'connecting') {
      this._report(new HeraldError(ClientErrorCode.InvalidFrame, 'unexpected connected frame', { data: f }));
      return;
    }
    const id = this._tid;
    this._o.clock.clearTimeout(this._connectTimer);
    this._connectTimer = undefined;
    this._connectedAt = this._o.clock.now();
    this._clientId = f.client;
    this._user = f.user;
    const own = this._o.pingInterval;
    const server = typeof f.ping === 'number' && f.ping > 0 ? f.ping : own;
    this._heartbeat.start(own === 0 ? 0 : Math.min(own, server));
    this._setState('connected');
    if (id === this._tid) this._events.emit('connected', { client: f.client, user: f.user });
    if (id === this._tid) this._subs.connected(f.subs, f.user === null ? undefined : USER_CHANNEL_PREFIX + f.user);
  }

  // ---- errors ----------------------------------------------------------------------------------

  private _report(error: HeraldError): void {
    if (!this._events.has('error')) this._o.logger.warn(error.message, error);
    this._events.emit('error', error);
  }

  private _listenerError(cause: unknown, event: string): void {
    const error = new HeraldError(ClientErrorCode.Handler, `a ${event} handler threw`, { cause });
    // An error handler that throws is logged, never fed back into itself.
    if (event === 'error') this._o.logger.warn(error.message, cause);
    else this._report(error);
  }
}

/** Creates a {@link HeraldClient}; same as `new HeraldClient(options)`. */
export function createClient(options: HeraldClientOptions): HeraldClient {
  return new HeraldClient(options);
}
