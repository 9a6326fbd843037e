import {
  USER_CHANNEL_PREFIX,
  channelKind,
  isSeq,
  isValidChannel,
  type ChannelName,
  type ClientId,
  type Payload,
  type ServerFrame,
  type UserId,
} from '@herald/protocol';
import { Connection } from './connection.js';
import { Emitter, type Listener } from './emitter.js';
import { ClientErrorCode, HeraldError } from './errors.js';
import type { Link, LinkHost, StateInfo } from './link.js';
import { resolveOptions, type HeraldClientOptions, type ResolvedOptions } from './options.js';
import { SubscriptionRegistry } from './registry.js';
import { InboxAcks } from './inbox.js';
import { Publishes } from './publishes.js';
import { SharedLink, type SharingEnvironment } from './shared-link.js';
import type { Subscription } from './subscription.js';
import type { ClientEvents, ClientState, Message, PublishOptions, PublishResult, SubscribeOptions } from './types.js';

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
  private readonly _subs: SubscriptionRegistry;
  private readonly _link: Link;
  private readonly _inbox: InboxAcks;
  private readonly _publishes: Publishes;
  /** Request ids, shared by subscribes and publishes so that every answer finds its request. */
  private _ids = 0;
  private _st: ClientState = 'disconnected';
  private _clientId: ClientId | undefined;
  private _user: UserId | null | undefined;
  private _sharing = { tabs: 1, leader: true };

  /** @throws {HeraldError} `HERALD_ERR_CLIENT_INVALID_OPTION` for missing or invalid options. */
  constructor(options: HeraldClientOptions) {
    this._o = resolveOptions(options);
    this._events = new Emitter((error, event) => this._listenerError(error, event));
    this._subs = new SubscriptionRegistry({
      clock: this._o.clock,
      logger: this._o.logger,
      backoff: this._o.backoff,
      timeout: this._o.connectTimeout,
      send: (frame) => this._link.send(frame),
      nextId: () => ++this._ids,
      filter: (m) => this._publishes.filter(m),
      forget: (channel) => this._publishes.forget(channel),
      connected: () => this._st === 'connected',
      emit: (event, payload) => this._events.emit(event, payload),
      report: (error) => this._report(error),
      host: { listenerError: (error, event) => this._listenerError(error, event) },
    });
    this._publishes = new Publishes({
      clock: this._o.clock,
      backoff: this._o.backoff,
      nextId: () => ++this._ids,
      send: (frame) => this._link.send(frame),
      connected: () => this._st === 'connected',
      closed: () => this._st === 'closed',
      follows: (channel) => this._subs.get(channel) !== undefined,
      timeout: this._o.publishTimeout,
      emit: (m) => this._subs.emit(m),
    });
    this._link = createLink(this._o, this._host());
    this._inbox = new InboxAcks((inbox) => this._link.send({ type: 'ack', inbox }), this._o.inboxAck === 'manual');
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

  /**
   * How this client's connection is shared: by how many tabs, and whether this tab holds it (the `sharing` event
   * tells each change). `{ tabs: 1, leader: true }` for a connection of its own.
   */
  get sharing(): { tabs: number; leader: boolean } {
    return { ...this._sharing };
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
    this._link.connect();
  }

  /**
   * Closes the connection with code 1000 and stops reconnecting (state `closed`). Subscriptions and
   * their positions are kept, so a later `connect()` resumes them. Resolves once the socket reports
   * the close (at most about a second).
   */
  close(): Promise<void> {
    return this._link.close();
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

  /**
   * Publishes a message from this client, when its token's `publish` claim grants the channel: resolves with its
   * `seq` once the gateway published it, rejects with a {@link HeraldError} (`HERALD_ERR_CLIENT_SERVER_ERROR` with
   * the gateway's `serverCode`: `forbidden`, `rate_limited`, `publish_rejected` ...; `HERALD_ERR_CLIENT_PUBLISH_TIMEOUT`;
   * `HERALD_ERR_CLIENT_CLOSED`). Waits for the connection when there is none, and is sent again after a reconnect
   * or an engine failure until answered (with an idempotency key, so it is published once). Messages of one
   * client are published in the order of the calls. Never throws.
   */
  publish<P extends Payload = Payload>(channel: ChannelName, type: string, payload: P, options?: PublishOptions): Promise<PublishResult> {
    return this._publishes.publish(channel, type, payload, options);
  }

  /** The subscription of `channel`, if any (including the automatic `user:{id}` one once connected). */
  getSubscription(channel: ChannelName): Subscription | undefined {
    return this._subs.get(channel);
  }

  // ---- what the link reports ------------------------------------------------------------------

  /** The one place the state changes; every transition is emitted. */
  private _setState(to: ClientState, info: StateInfo = {}): void {
    const from = this._st;
    if (from === to) return;
    this._st = to;
    this._events.emit('state', { from, to, ...info });
  }

  private _host(): LinkHost {
    return {
      state: ({ to, ...info }) => {
        // Every request in flight died with the connection; subscriptions wait for a resubscribe.
        if (to !== 'connecting') this._subs.reset();
        this._setState(to, info);
        // Closed for good (close(), a terminal code): nothing will send what is waiting.
        if (to === 'closed') this._publishes.close();
      },
      connected: (f, live) => {
        this._clientId = f.client;
        this._user = f.user;
        this._setState('connected');
        if (live()) this._events.emit('connected', { client: f.client, user: f.user });
        if (live()) this._subs.connected(f.subs, f.user === null ? undefined : USER_CHANNEL_PREFIX + f.user);
        if (live()) this._publishes.connected();
      },
      frame: (f) => this._handle(f),
      error: (e, logged) => (logged ? this._events.emit('error', e) : this._report(e)),
      subs: () => this._subs.connectSubs(),
      sharing: (s) => {
        this._sharing = s;
        this._events.emit('sharing', { ...s });
      },
      has: (channel) => this._subs.get(channel) !== undefined,
    };
  }

  private _handle(f: ServerFrame): void {
    if (f.kind === 'message') {
      const m = f.frame;
      return typeof m.inbox === 'string' ? this._inbox.receive(m as Message & { inbox: string }, (x) => this._subs.message(x)) : this._subs.message(m);
    }
    const c = f.frame;
    switch (c.type) {
      case 'acked':
        this._inbox.acked(c.inbox);
        return this._events.emit('acked', { inbox: c.inbox });
      case 'published':
        return this._publishes.published(c);
      case 'subscribed':
        return this._subs.subscribed(c);
      case 'unsubscribed':
        return this._subs.unsubscribed(c);
      case 'error':
        return this._publishes.error(c) ? undefined : this._subs.error(c);
      default:
        return;
    }
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

/** The link under a client: a connection shared with the other tabs where the browser can, else its own. */
function createLink(o: ResolvedOptions, host: LinkHost): Link {
  const env = o.environment;
  if (o.shared && env) {
    if (env.locks && env.BroadcastChannel) return new SharedLink(o, host, env as SharingEnvironment);
    o.logger.debug('no Web Locks or BroadcastChannel: this tab connects on its own');
  }
  return new Connection(o, host);
}

/** Creates a {@link HeraldClient}; same as `new HeraldClient(options)`. */
export function createClient(options: HeraldClientOptions): HeraldClient {
  return new HeraldClient(options);
}
