import { encodeEventType, PusherCode } from '@herald/protocol';
import type { Connection } from '../../delivery/connection.js';
import type { CloseReason, Liveness, ProtocolHandler } from '../../delivery/protocol.js';
import type { UpgradeInfo } from '../../transport/types.js';
import { TokenBucket } from '../../util/token-bucket.js';
import type { PusherApp } from './apps.js';
import { userIdOf, type SignedInUser } from './channel-auth.js';
import type { PusherCodec } from './codec.js';
import { dataObject, errorFrame, established, parseClientFrame, PING, PONG, type ClientFrame } from './frames.js';
import { channelKindOf, coreChannel, isPusherChannel, pusherUser } from './names.js';
import { payloadOfData } from './payload.js';
import { userAuthText, verifyAuth } from './signatures.js';
import type { PusherDeps } from './deps.js';
import { PusherSubscriber } from './subscribe.js';

export type { PusherDeps } from './deps.js';

/** Pusher close codes of the reasons the core closes for. */
const CLOSE_CODES: Readonly<Record<CloseReason, number>> = {
  connect_timeout: PusherCode.Reconnect,
  no_heartbeat: PusherCode.PongNotReceived,
  token_expired: PusherCode.Reconnect,
  slow_consumer: PusherCode.OverCapacity,
  rate_limited: PusherCode.RateLimited,
  protocol_violation: PusherCode.ProtocolViolation,
  disconnected: PusherCode.Unauthorized,
  shutdown: PusherCode.Reconnect,
  internal_error: PusherCode.Reconnect,
};

/** Where every connection's serial work starts. */
const IDLE: Promise<void> = Promise.resolve();
/** Seconds pusher-js waits for a pong before it gives up on a connection (its `pongTimeout`). */
const PONG_WAIT_MS = 30_000;
/** Longest client event name (the Node SDK's check). */
const MAX_EVENT_NAME = 200;

/** `protocol` query values Herald speaks (Pusher still accepts 4 to 7 and treats them alike for clients). */
const PROTOCOLS = /^[4-7]$/;
const VERSION = /^\d+(\.\d+){0,3}([-+][0-9A-Za-z.-]+)?$/;

/**
 * The Pusher Channels protocol 7 state machine of one connection (docs/pusher.md): the handshake on
 * `/app/{key}`, ping/pong both ways, subscribe/unsubscribe (public, private, encrypted, presence, cache and
 * user channels; see subscribe.ts), sign-in, and client events. Frames other than pings run one after another,
 * in arrival order, so answers keep request order.
 */
export class PusherHandler implements ProtocolHandler {
  readonly codec: PusherCodec;
  liveness: Liveness = { pingInterval: 120_000, idleTimeout: 150_000 };
  private app: PusherApp | undefined;
  private user: SignedInUser | undefined;
  private invalidFrames = 0;
  private work: Promise<void> = IDLE;
  private clientEvents: TokenBucket | undefined;
  private readonly subscriber: PusherSubscriber;

  constructor(
    private readonly conn: Connection,
    private readonly d: PusherDeps,
    info: UpgradeInfo,
  ) {
    this.codec = d.codec;
    this.subscriber = new PusherSubscriber(conn, d);
    // The gateway adds the connection after `open` returns: the handshake (or a refusal, which closes) waits for it.
    queueMicrotask(() => this.start(info));
  }

  private start(info: UpgradeInfo): void {
    const { conn, d } = this;
    if (conn.isClosed()) return;
    const key = decodeKey(info.path);
    const app = key === undefined ? undefined : d.apps.key(key);
    if (!app) {
      d.stats.authFailure('pusher_app_key', conn.ids());
      this.refuse(PusherCode.AppDoesNotExist, key === undefined ? 'No app key in the path (/app/<key>)' : `App key ${key.slice(0, 100)} does not exist`);
      return;
    }
    const q = new URLSearchParams(info.query);
    const version = q.get('version');
    const protocol = q.get('protocol');
    if (version !== null && !VERSION.test(version)) return this.refuse(PusherCode.InvalidVersion, 'Invalid version string format');
    if (protocol !== null && !PROTOCOLS.test(protocol))
      return this.refuse(PusherCode.UnsupportedProtocol, `Unsupported protocol version ${protocol.slice(0, 10)}`);
    const count = d.counts.get(app.id) ?? 0;
    if (count >= app.maxConnections) {
      d.stats.drop('pusher_over_quota', 1, conn.ids({ app: app.id }));
      return this.refuse(PusherCode.OverQuota, 'Application is over connection quota');
    }
    d.counts.set(app.id, count + 1);
    this.app = app;
    this.subscriber.app = app;
    this.clientEvents = new TokenBucket(app.clientEventRate, app.clientEventRate, d.clock.now());
    const ping = app.activityTimeout * 1000;
    this.liveness = { pingInterval: ping, idleTimeout: ping + PONG_WAIT_MS };
    conn.opened();
    conn.sendJson(established(conn.id, app.activityTimeout));
    // Registered without a user: disconnects by socket id reach it on any node; sign-in adds the user.
    this.track(d.subscriptions.register(conn));
  }

  /** An error frame with `code`, then a close with the same code (pusher-js reads either). */
  private refuse(code: number, message: string): void {
    this.conn.sendJson(errorFrame(code, message));
    this.conn.close(code, message);
  }

  message(data: Buffer, binary: boolean): void {
    if (this.app === undefined) return;
    const frame = binary ? undefined : parseClientFrame(data.toString('utf8'));
    if (!frame) {
      this.invalid(binary ? 'binary frames are not supported' : 'frames must be JSON objects with a string event');
      return;
    }
    switch (frame.event) {
      case 'pusher:ping':
        this.conn.enqueue(PONG);
        return;
      case 'pusher:pong':
        return;
      case 'pusher:subscribe':
        this.serial(() => this.subscriber.subscribe(dataObject(frame.data), this.user));
        return;
      case 'pusher:unsubscribe':
        this.serial(() => this.subscriber.unsubscribe(dataObject(frame.data)));
        return;
      case 'pusher:signin':
        this.serial(() => this.signin(dataObject(frame.data)));
        return;
      default:
        if (frame.event.startsWith('client-')) this.serial(() => this.clientEvent(frame));
        else this.invalid(`unknown event ${frame.event.slice(0, 100)}`);
    }
  }

  closeCode(reason: CloseReason, requested?: number): number {
    return requested ?? CLOSE_CODES[reason];
  }

  ping(): void {
    this.conn.enqueue(PING);
  }

  closed(): void {
    const app = this.app;
    if (app === undefined) return;
    this.app = undefined;
    const n = (this.d.counts.get(app.id) ?? 1) - 1;
    if (n > 0) this.d.counts.set(app.id, n);
    else this.d.counts.delete(app.id);
    this.track(this.subscriber.leaveAll());
  }

  // ---- frames ----------------------------------------------------------------------------------------

  settled(): Promise<void> | undefined {
    return this.work;
  }

  private serial(task: () => Promise<void>): void {
    this.work = this.work.then(() => (this.conn.isClosed() ? undefined : task())).catch((err: unknown) => this.internalError(err));
  }

  private track(work: Promise<unknown>): void {
    this.d.track(work.catch((err: unknown) => this.d.logger.warn({ err, client: this.conn.id }, 'pusher: connection bookkeeping failed')));
  }

  /** A frame that is not one: an error frame; too many of them close the connection with 4300. */
  private invalid(message: string): void {
    this.conn.sendJson(errorFrame(null, message));
    this.invalidFrames += 1;
    if (this.invalidFrames >= this.d.maxInvalidFrames) this.conn.close(PusherCode.ProtocolViolation, 'too many invalid frames');
  }

  /** `pusher:signin`: `user_data` signed as `socket_id::user::user_data` -> `pusher:signin_success`. */
  private async signin(data: Record<string, unknown>): Promise<void> {
    const { conn, d } = this;
    const app = this.app as PusherApp;
    const userData = data['user_data'];
    if (typeof userData !== 'string' || !verifyAuth(data['auth'], app.key, app.secret, userAuthText(conn.id, userData))) {
      d.stats.authFailure('pusher_signature', conn.ids({ event: 'pusher:signin' }));
      conn.sendJson(errorFrame(PusherCode.Unauthorized, 'Invalid signature for pusher:signin'));
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(userData);
    } catch {
      parsed = undefined;
    }
    const o = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
    const id = typeof o['id'] === 'string' ? userIdOf(o['id']) : undefined;
    if (id === undefined) {
      conn.sendJson(errorFrame(PusherCode.Unauthorized, 'user_data must be a JSON object with a string id'));
      return;
    }
    this.user = { id, infoJson: o['user_info'] === undefined ? 'null' : JSON.stringify(o['user_info']) };
    conn.authenticate({ user: pusherUser(app.id, id), channels: [], gateway: [], expiresAt: undefined });
    await d.subscriptions.register(conn);
    if (conn.isClosed()) return;
    conn.sendJson({ event: 'pusher:signin_success', data: { user_data: userData } });
  }

  /** A `client-*` event: to the other subscribers of a private or presence channel the sender is subscribed to. */
  private async clientEvent(frame: ClientFrame): Promise<void> {
    const { conn, d } = this;
    const app = this.app as PusherApp;
    const reject = (code: number, message: string): void => {
      d.stats.drop('pusher_client_event_rejected', 1, conn.ids({ event: frame.event.slice(0, 100) }));
      conn.sendJson(errorFrame(code, message));
    };
    if (!app.clientEvents) return reject(PusherCode.ClientEventRejected, 'Client events are disabled for this app');
    const channel = frame.channel;
    const kind = isPusherChannel(channel) ? channelKindOf(channel).kind : undefined;
    if (channel === undefined || (kind !== 'private' && kind !== 'presence')) {
      // An encrypted channel is a private one, but its payloads are end-to-end encrypted: Pusher takes no client events there.
      const which = kind === 'encrypted' ? 'not on encrypted channels' : 'only allowed on private and presence channels';
      return reject(PusherCode.ClientEventRejected, `Client events are ${which}`);
    }
    const core = coreChannel(app.id, channel);
    if (!this.subscriber.isSubscribed(core)) return reject(PusherCode.Unauthorized, `Not subscribed to ${channel}`);
    if (frame.event.length > MAX_EVENT_NAME) return reject(PusherCode.ClientEventRejected, `Event names are at most ${MAX_EVENT_NAME} characters`);
    if (!(this.clientEvents as TokenBucket).take(d.clock.now())) {
      return reject(PusherCode.ClientEventRejected, `Client event rate limit exceeded (${app.clientEventRate} per second)`);
    }
    const dataText = typeof frame.data === 'string' ? frame.data : JSON.stringify(frame.data ?? null);
    if (Buffer.byteLength(dataText) > app.maxEventSize) return reject(PusherCode.ClientEventRejected, `Event data exceeds ${app.maxEventSize} bytes`);
    const type = encodeEventType(frame.event);
    if (type === undefined) return reject(PusherCode.ClientEventRejected, 'Invalid event name');
    const user = kind === 'presence' ? this.subscriber.memberOf(core) : undefined;
    try {
      await d.engine.broker.broadcast({
        channel: core,
        type,
        payloadJson: payloadOfData(dataText),
        exclude: conn.id,
        ...(user === undefined ? {} : { user }),
      });
      await d.webhooks.clientEvent(app, core, frame.event, dataText, conn.id, user);
    } catch (err) {
      d.stats.engineError('pusher_client_event', conn.ids({ channel, error: err instanceof Error ? err.message : String(err) }));
      conn.sendJson(errorFrame(null, 'The client event could not be sent, retry later'));
    }
  }

  private internalError(err: unknown): void {
    this.d.logger.error({ err, client: this.conn.id }, 'pusher connection handler failed');
    this.conn.closeFor('internal_error', 'internal error');
  }
}

/** The app key of `/app/{key}` (percent-decoded); undefined when the path has none. */
function decodeKey(path: string): string | undefined {
  const raw = path.slice('/app/'.length);
  if (raw.length === 0 || raw.includes('/')) return undefined;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}
