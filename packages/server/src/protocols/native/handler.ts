import {
  channelKind,
  CloseCode,
  ErrorCode,
  INVALID_CHANNEL_MESSAGE,
  isValidChannel,
  parseClientFrame,
  userChannel,
  type ChannelName,
  type ClientFrame,
  type ConnectFrame,
  type ErrorFrame,
  type ParseResult,
  type SubscribeFrame,
  type SubscriptionResult,
} from '@herald/protocol';
import type { Auth } from '../../auth/types.js';
import type { Connection } from '../../delivery/connection.js';
import type { Subscriptions } from '../../delivery/hub.js';
import type { InboxPort } from '../../delivery/inbox.js';
import type { CloseReason, Liveness, MessageCodec, ProtocolHandler } from '../../delivery/protocol.js';
import type { Stats } from '../../delivery/stats.js';
import type { PreparedSubscription } from '../../delivery/subscription.js';
import type { Clock } from '../../util/clock.js';
import { HeraldError } from '../../util/errors.js';
import type { Logger } from '../../util/logger.js';
import { nativeCodec } from './codec.js';
import type { NativePresence } from './presence.js';
import type { ClientPublishing } from './publish.js';

/** The `herald_auth_failures_total` reason of each way a token is refused. */
const AUTH_FAILURE = { expired: 'token_expired', invalid: 'token_invalid', early: 'token_early', unavailable: 'keys_unavailable' } as const;
/** What the native protocol needs. */
export interface NativeDeps {
  /** The WebSocket paths it serves. */
  paths: readonly string[];
  subscriptions: Subscriptions;
  /** The user's inbox: replayed at connect, acknowledged with `ack`. */
  inbox: InboxPort;
  auth: Auth;
  stats: Stats;
  clock: Clock;
  logger: Logger;
  /** Whether a connection without a token may connect (public channels only). */
  allowAnonymous: boolean;
  /** Most subscriptions one connection may hold. */
  maxSubscriptions: number;
  /** Malformed frames tolerated before close 4500. */
  maxInvalidFrames: number;
  /** Ping interval (advertised in `connected`) and idle timeout. */
  liveness: Liveness;
  /** Members of `presence:*` channels, and their join/leave frames. */
  presence: NativePresence;
  /** Client publishes: grants, limits, the hook, the publisher. */
  publishing: ClientPublishing;
}

/** Frames that arrive while `connect` is being verified are kept, up to this many. */
const MAX_EARLY_FRAMES = 32;
/** Where every connection's serial work starts. */
const IDLE: Promise<void> = Promise.resolve();
const MALFORMED: ReadonlySet<string> = new Set([ErrorCode.InvalidJson, ErrorCode.InvalidFrame, ErrorCode.UnknownType, ErrorCode.BinaryFrame]);

/** Native close codes of the reasons the core closes for (docs/protocol.md). */
const CLOSE_CODES: Readonly<Record<CloseReason, number>> = {
  connect_timeout: CloseCode.ConnectTimeout,
  no_heartbeat: CloseCode.NoHeartbeat,
  token_expired: CloseCode.TokenExpired,
  slow_consumer: CloseCode.SlowConsumer,
  rate_limited: CloseCode.RateLimited,
  protocol_violation: CloseCode.ProtocolViolation,
  disconnected: CloseCode.DisconnectedByServer,
  shutdown: CloseCode.ServiceRestart,
  internal_error: CloseCode.InternalError,
};

/** Where the native state machine is: waiting for `connect`, verifying it, established. */
type Phase = 'awaiting_connect' | 'authenticating' | 'open';

/**
 * The native protocol v1 state machine of one connection: `connect` (token, initial subscriptions with
 * recovery), `subscribe`, `unsubscribe`, `ping`, `ack`, `publish`, and the error frames of docs/errors.md.
 * Frames after `connect` run one after another, in arrival order, so answers keep request order and a
 * connection's publishes are published in the order it sent them.
 */
export class NativeHandler implements ProtocolHandler {
  private phase: Phase = 'awaiting_connect';
  private invalidFrames = 0;
  /** Frames that arrived while `connect` was being verified, and the errors answering malformed ones (made on the first one). */
  private early: Array<ClientFrame | ErrorFrame> | null = null;
  private work: Promise<void> = IDLE;
  /** Presence channels this connection is a member of (made on the first one). */
  private memberOf: Set<ChannelName> | null = null;

  constructor(
    private readonly conn: Connection,
    private readonly d: NativeDeps,
  ) {}

  // Getters, not fields: shared by every connection instead of stored in each (idle connections are many).
  get codec(): MessageCodec {
    return nativeCodec;
  }

  get liveness(): Liveness {
    return this.d.liveness;
  }

  message(data: Buffer, binary: boolean): void {
    // A binary frame is answered as a malformed one: in its place among the frames around it.
    const parsed: ParseResult<ClientFrame> = binary
      ? { ok: false, code: ErrorCode.BinaryFrame, message: 'binary frames are not supported; send JSON text frames' }
      : parseClientFrame(data.toString('utf8'));
    if (!parsed.ok) {
      const err: ErrorFrame = { type: 'error', code: parsed.code, message: parsed.message };
      if (parsed.id !== undefined) err.id = parsed.id;
      if (parsed.channel !== undefined) err.channel = parsed.channel;
      // Once open, errors queue behind earlier subscribe answers so answers keep request order; while connecting,
      // they wait with the frames that arrived meanwhile and are answered after `connected`, in arrival order.
      if (this.phase === 'open') this.serial(() => Promise.resolve(this.fail(err)));
      else if (this.phase === 'authenticating') this.hold(err);
      else this.fail(err);
      return;
    }
    const frame = parsed.frame;
    if (frame.type === 'ping') {
      this.conn.sendJson(frame.id === undefined ? { type: 'pong' } : { type: 'pong', id: frame.id });
      return;
    }
    switch (this.phase) {
      case 'awaiting_connect':
        if (frame.type !== 'connect') {
          this.conn.sendJson({ type: 'error', code: ErrorCode.NotConnected, message: 'the first frame must be connect' });
          this.conn.close(CloseCode.ProtocolViolation, 'first frame must be connect');
          return;
        }
        this.phase = 'authenticating';
        this.connect(frame).catch((err: unknown) => this.internalError(err));
        return;
      case 'authenticating':
        this.hold(frame);
        return;
      case 'open':
        this.handle(frame);
    }
  }

  /** Keeps a frame (or the error answering a malformed one) that arrived before `connected` was sent. */
  private hold(frame: ClientFrame | ErrorFrame): void {
    this.early ??= [];
    if (this.early.length >= MAX_EARLY_FRAMES) {
      this.conn.close(CloseCode.ProtocolViolation, 'too many frames before connected');
      return;
    }
    this.early.push(frame);
  }

  closeCode(reason: CloseReason, requested?: number): number {
    return requested ?? CLOSE_CODES[reason];
  }

  ping(): void {
    this.conn.pingSocket();
  }

  closed(): void {
    this.early = null;
    for (const channel of this.memberOf ?? []) this.leavePresence(channel);
    this.memberOf = null;
  }

  /** Leaves a presence channel (unsubscribed or closed); a failure leaves it to the member TTL. */
  private leavePresence(channel: ChannelName): void {
    if (!this.memberOf?.delete(channel)) return;
    this.d.presence.leave(channel, this.conn.id).catch((err: unknown) => this.d.logger.warn({ err, channel, client: this.conn.id }, 'presence leave failed'));
  }

  /**
   * Both halves' first: the core's prepare, and for a presence channel membership and the members to answer
   * with (in the result). A membership that fails undoes the subscription.
   */
  private async prepare(channel: ChannelName, rec: SubscribeFrame): Promise<PreparedSubscription> {
    const { conn, d } = this;
    const prepared = await d.subscriptions.prepare(conn, channel, rec);
    const user = conn.identity.user;
    // A connection closed meanwhile joins no members: it would stay a member after it left.
    if (channelKind(channel) !== 'presence' || user === null || conn.isClosed()) return prepared;
    try {
      const { members, count } = await d.presence.join(channel, conn.id, user, conn.identity.infoJson);
      if (conn.isClosed()) {
        // Closed while joining: closed() ran before this membership existed, and would never end it.
        d.presence.leave(channel, conn.id).catch((err: unknown) => d.logger.warn({ err, channel, client: conn.id }, 'presence leave failed'));
        return prepared;
      }
      (this.memberOf ??= new Set()).add(channel);
      prepared.result = members === undefined ? { ...prepared.result, count } : { ...prepared.result, members, count };
      return prepared;
    } catch (err) {
      d.subscriptions.unsubscribe(conn, channel);
      throw err;
    }
  }

  // ---- frames --------------------------------------------------------------------------------------

  private handle(frame: ClientFrame): void {
    switch (frame.type) {
      case 'connect':
        this.serial(() => Promise.resolve(this.conn.sendJson({ type: 'error', code: ErrorCode.AlreadyConnected, message: 'already connected' })));
        return;
      case 'subscribe':
        this.serial(() => this.subscribe(frame));
        return;
      case 'unsubscribe':
        this.serial(() => {
          this.d.subscriptions.unsubscribe(this.conn, frame.channel);
          this.leavePresence(frame.channel);
          this.conn.sendJson(
            frame.id === undefined ? { type: 'unsubscribed', channel: frame.channel } : { type: 'unsubscribed', channel: frame.channel, id: frame.id },
          );
          return Promise.resolve();
        });
        return;
      case 'ping':
        return;
      case 'ack':
        this.serial(() => this.ack(frame.inbox));
        return;
      case 'publish': {
        // Grant, size and rate are checked as the frame arrives, and refused at once (the answer carries the
        // frame's id): a flood is not queued behind earlier publishes waiting for the hook or the engine.
        const checked = this.d.publishing.check(this.conn, frame);
        if ('code' in checked) this.conn.sendJson(checked);
        else this.serial(async () => this.conn.sendJson(await this.d.publishing.publish(this.conn, checked)));
        return;
      }
    }
  }

  /** Acknowledges inbox messages of this connection's user; `acked` answers once they are removed. */
  private async ack(ids: string[]): Promise<void> {
    const { conn, d } = this;
    if (conn.identity.user === null) {
      conn.sendJson({ type: 'error', code: ErrorCode.Forbidden, message: 'only a connection of a user has an inbox' });
      return;
    }
    try {
      await d.inbox.ack(conn, ids);
    } catch (err) {
      d.stats.engineError('inbox', { client: conn.id, error: err instanceof Error ? err.message : String(err) });
      conn.sendJson({ type: 'error', code: ErrorCode.EngineUnavailable, message: 'acknowledgement failed, retry later' });
      return;
    }
    conn.sendJson({ type: 'acked', inbox: ids });
  }

  settled(): Promise<void> | undefined {
    return this.work === IDLE ? undefined : this.work;
  }

  private serial(task: () => Promise<void>): void {
    const work = this.work.then(() => (this.conn.state === 'open' ? task() : undefined)).catch((err: unknown) => this.internalError(err));
    this.work = work;
    // Once done and nothing queued after it, back to the shared IDLE: an idle connection keeps no promise.
    const idle = (): void => {
      if (this.work === work) this.work = IDLE;
    };
    void work.then(idle, idle);
  }

  private async connect(frame: ConnectFrame): Promise<void> {
    const { conn, d } = this;
    if (frame.token !== undefined) {
      const v = await d.auth.verifyConnection(frame.token, d.clock.now());
      if (conn.isClosed()) return;
      if (!v.ok) {
        d.stats.authFailure(AUTH_FAILURE[v.reason], { client: conn.id, error: v.message });
        // A token that could not be checked now (the identity provider's keys out of reach) or is valid in a moment (its
        // nbf ahead of this clock) is not refused for good: 1013, the client tries again.
        conn.close(v.reason === 'expired' ? CloseCode.TokenExpired : v.reason === 'invalid' ? CloseCode.InvalidToken : CloseCode.TryAgainLater, v.message);
        return;
      }
      conn.authenticate(v.identity);
    } else if (!d.allowAnonymous) {
      d.stats.authFailure('token_missing', { client: conn.id });
      conn.close(CloseCode.InvalidToken, 'a token is required');
      return;
    }
    conn.joinFrames = frame.batch === true;
    // Registering (presence, the inbox watch) and the subscriptions start together: their Redis commands share a
    // turn (one SUBSCRIBE for the inbox and the channels). Only the inbox replay waits for the watch.
    const registered = d.subscriptions.register(conn);

    const wanted = new Map<ChannelName, SubscribeFrame>();
    const user = conn.identity.user;
    if (user !== null) {
      const own = userChannel(user);
      wanted.set(own, { type: 'subscribe', channel: own });
    }
    const errors: ErrorFrame[] = [];
    for (const [channel, rec] of Object.entries(frame.subs ?? {})) {
      const already = wanted.get(channel);
      if (already) {
        // The automatic user channel, listed again with a position to recover from.
        wanted.set(channel, { ...already, ...rec });
        continue;
      }
      const problem = this.refuse(channel, wanted.size);
      if (problem) errors.push(problem);
      else wanted.set(channel, { type: 'subscribe', channel, ...rec });
    }
    const channels = [...wanted.keys()];
    // The inbox is read beside the subscriptions; live inbox messages are held from here until it is sent.
    const stored = registered
      .then(() => (conn.isClosed() ? [] : d.inbox.replay(conn)))
      .catch((err: unknown) => {
        d.stats.engineError('inbox', { client: conn.id, error: err instanceof Error ? err.message : String(err) });
        errors.push({ type: 'error', code: ErrorCode.EngineUnavailable, message: 'the inbox could not be read; it is sent at the next connect' });
        return [];
      });
    const settled = await Promise.allSettled([...wanted.values()].map((s) => this.prepare(s.channel, s)));
    const inbox = await stored;
    if (conn.isClosed()) return;
    // Without its user channel a user's connection would look online and miss every push to the user: it is
    // closed instead, with a code that makes clients reconnect (with backoff) and try again.
    const own = user === null ? undefined : settled[channels.indexOf(userChannel(user))];
    if (own?.status === 'rejected') {
      this.subscribeFailed(userChannel(user as string), own.reason);
      conn.close(CloseCode.TryAgainLater, 'the user channel could not be set up (engine unavailable); reconnect');
      return;
    }
    // Keyed by client-chosen names ("__proto__" is a valid channel): no prototype to collide with.
    const subs = Object.create(null) as Record<ChannelName, SubscriptionResult>;
    const ready: PreparedSubscription[] = [];
    settled.forEach((r, i) => {
      const channel = channels[i] as ChannelName;
      if (r.status === 'fulfilled') {
        subs[channel] = r.value.result;
        ready.push(r.value);
      } else {
        errors.push(this.subscribeFailed(channel, r.reason));
      }
    });
    // Open only now: frames that arrived meanwhile were kept in `early`, so no answer overtakes
    // `connected` (except `pong`, which is always answered at once).
    this.phase = 'open';
    conn.opened();
    conn.sendJson({ type: 'connected', client: conn.id, user, ping: this.liveness.pingInterval, subs });
    // Unacknowledged inbox messages first, in order; then what each channel recovered.
    for (const f of d.inbox.finish(conn, inbox)) conn.enqueue(f);
    for (const p of ready) for (const f of d.subscriptions.finish(conn, p)) conn.enqueue(f);
    for (const e of errors) conn.sendJson(e);
    d.logger.debug({ client: conn.id, user, subs: ready.length }, 'connected');

    const early = this.early;
    this.early = null;
    for (const f of early ?? []) {
      if (f.type === 'error') this.serial(() => Promise.resolve(this.fail(f)));
      else this.handle(f);
    }
  }

  /** Why this connection may not subscribe to `channel`, or null. */
  private refuse(channel: string, count: number, id?: number): ErrorFrame | null {
    const { conn, d } = this;
    const base = id === undefined ? {} : { id };
    const shown = channel.slice(0, 200);
    if (!isValidChannel(channel)) return { type: 'error', code: ErrorCode.InvalidChannel, message: INVALID_CHANNEL_MESSAGE, ...base, channel: shown };
    const denied = d.auth.maySubscribe(conn.identity, channel);
    if (denied) {
      d.stats.authFailure('subscribe_forbidden', conn.ids({ channel }));
      return { type: 'error', code: denied, message: `not allowed to subscribe to ${channel}`, ...base, channel };
    }
    if (!conn.subs.has(channel) && count >= d.maxSubscriptions) {
      d.stats.limited('subscriptions', conn.ids({ channel }));
      return { type: 'error', code: ErrorCode.TooManySubscriptions, message: `at most ${d.maxSubscriptions} subscriptions`, ...base, channel };
    }
    return null;
  }

  private async subscribe(frame: SubscribeFrame): Promise<void> {
    const { conn, d } = this;
    const problem = this.refuse(frame.channel, conn.subs.size, frame.id);
    if (problem) {
      conn.sendJson(problem);
      return;
    }
    let prepared: PreparedSubscription;
    try {
      prepared = await this.prepare(frame.channel, frame);
    } catch (err) {
      const e = this.subscribeFailed(frame.channel, err);
      if (frame.id !== undefined) e.id = frame.id;
      conn.sendJson(e);
      return;
    }
    if (conn.isClosed()) return;
    const ok = { type: 'subscribed' as const, channel: frame.channel, ...prepared.result };
    conn.sendJson(frame.id === undefined ? ok : { ...ok, id: frame.id });
    for (const f of d.subscriptions.finish(conn, prepared)) conn.enqueue(f);
  }

  /** The error frame of a subscription that could not be made: a limit of the core, or the engine. */
  private subscribeFailed(channel: ChannelName, err: unknown): ErrorFrame {
    if (err instanceof HeraldError && err.code === ErrorCode.TooManyChannels) {
      return { type: 'error', code: err.code, message: err.message, channel };
    }
    this.d.stats.engineError('subscribe', { client: this.conn.id, channel, error: err instanceof Error ? err.message : String(err) });
    return { type: 'error', code: ErrorCode.EngineUnavailable, message: 'subscription failed, retry later', channel };
  }

  /** Answers a malformed frame with an error; too many of them close the connection with 4500. */
  private fail(err: ErrorFrame): void {
    this.conn.sendJson(err);
    if (!MALFORMED.has(err.code)) return;
    this.invalidFrames += 1;
    if (this.invalidFrames >= this.d.maxInvalidFrames) this.conn.close(CloseCode.ProtocolViolation, 'too many invalid frames');
  }

  private internalError(err: unknown): void {
    this.d.logger.error({ err, client: this.conn.id }, 'connection handler failed');
    this.conn.closeFor('internal_error', 'internal error');
  }
}
