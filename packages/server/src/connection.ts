import {
  CloseCode,
  ErrorCode,
  isValidChannel,
  parseClientFrame,
  userChannel,
  type ChannelName,
  type ClientFrame,
  type ClientId,
  type ConnectFrame,
  type ErrorFrame,
  type SubscribeFrame,
  type SubscriptionResult,
} from '@herald/protocol';
import { checkSubscribe } from './auth/policy.js';
import type { Principal } from './auth/jwt.js';
import type { Context } from './context.js';
import type { EngineMessage, PresenceConnection } from './engine/types.js';
import { FramesMemo } from './frames-memo.js';
import type { PreparedSubscription } from './hub.js';
import { TokenBucket } from './rate-limiter.js';
import type { Socket, SocketListener } from './transport/socket.js';

/** Lifecycle: waiting for `connect`, verifying it, open, closed. */
export type ConnectionState = 'connecting' | 'authenticating' | 'open' | 'closed';

const ANONYMOUS: Principal = { user: null, channels: [], expiresAt: undefined };
const NEWLINE = Buffer.from('\n');
/** Time a closing socket gets to finish the close handshake before it is destroyed. */
const CLOSE_GRACE_MS = 5000;
/** Frames that arrive while `connect` is being verified are kept, up to this many. */
const MAX_EARLY_FRAMES = 32;
/** The empty queue every idle connection shares (replaced, never pushed to). */
const NO_FRAMES: Buffer[] = [];
/** Where every connection's serial work starts. */
const IDLE: Promise<void> = Promise.resolve();
const MALFORMED: ReadonlySet<string> = new Set([ErrorCode.InvalidJson, ErrorCode.InvalidFrame, ErrorCode.UnknownType, ErrorCode.BinaryFrame]);

/**
 * The `\n`-joined frame of a batch client, joined once per distinct list of frames rather than once per
 * connection (see FramesMemo); the transport can then also frame it once.
 */
const batchLine = new FramesMemo((frames) => {
  const parts: Buffer[] = [];
  for (const f of frames) parts.push(f, NEWLINE);
  parts.pop();
  return Buffer.concat(parts);
});

/**
 * One client connection: the protocol state machine (connect, subscribe, unsubscribe, ping), its limits,
 * and its outgoing queue. I/O goes through the `Socket` seam; channels and delivery through the hub.
 */
export class Connection implements SocketListener {
  state: ConnectionState = 'connecting';
  principal: Principal = ANONYMOUS;
  /** Whether the connection was registered under its user and in presence. */
  registered = false;
  /** Channels this connection is in (live or being recovered), each with the epoch the client was told. */
  readonly subs = new Map<ChannelName, string>();
  /**
   * Channels being set up: live messages wait here until the subscription answer has been queued. Made
   * on first use and dropped when empty: most connections hold nothing here most of their life.
   */
  private setup: Map<ChannelName, EngineMessage[]> | null = null;
  readonly presence: PresenceConnection;
  lastSeen: number;
  lastPing = 0;
  readonly connectDeadline: number;
  private batch = false;
  /** Frames queued for the next flush (NO_FRAMES, shared and never written to, while there are none). */
  private queue: Buffer[] = NO_FRAMES;
  private queued = false;
  private invalidFrames = 0;
  private readonly bucket: TokenBucket;
  /** Frames that arrived while `connect` was being verified (made on the first one). */
  private early: ClientFrame[] | null = null;
  /** Subscribe and unsubscribe frames run one after another, in arrival order. */
  private work: Promise<void> = IDLE;

  constructor(
    readonly id: ClientId,
    private readonly socket: Socket,
    private readonly ctx: Context,
  ) {
    const now = ctx.clock.now();
    this.lastSeen = now;
    this.connectDeadline = now + ctx.options.connectTimeout;
    this.bucket = new TokenBucket(ctx.options.clientRate, ctx.options.clientBurst, now);
    this.presence = { client: id, user: null };
  }

  // ---- socket events ---------------------------------------------------------------------------

  message(data: Buffer, binary: boolean): void {
    if (this.state === 'closed') return;
    const now = this.ctx.clock.now();
    this.lastSeen = now;
    if (!this.bucket.take(now)) {
      this.ctx.stats.drop('rate_limited', 1, { client: this.id, user: this.principal.user });
      this.close(CloseCode.RateLimited, 'rate limit exceeded');
      return;
    }
    if (binary) {
      this.fail({ type: 'error', code: ErrorCode.BinaryFrame, message: 'binary frames are not supported; send JSON text frames' });
      return;
    }
    const parsed = parseClientFrame(data.toString('utf8'));
    if (!parsed.ok) {
      const err: ErrorFrame = { type: 'error', code: parsed.code, message: parsed.message };
      if (parsed.id !== undefined) err.id = parsed.id;
      // Once open, errors queue behind earlier subscribe answers so answers keep request order.
      if (this.state === 'open') this.serial(() => Promise.resolve(this.fail(err)));
      else this.fail(err);
      return;
    }
    const frame = parsed.frame;
    if (frame.type === 'ping') {
      this.send(frame.id === undefined ? { type: 'pong' } : { type: 'pong', id: frame.id });
      return;
    }
    switch (this.state) {
      case 'connecting':
        if (frame.type !== 'connect') {
          this.send({ type: 'error', code: ErrorCode.NotConnected, message: 'the first frame must be connect' });
          this.close(CloseCode.ProtocolViolation, 'first frame must be connect');
          return;
        }
        this.state = 'authenticating';
        this.connect(frame).catch((err: unknown) => this.internalError(err));
        return;
      case 'authenticating':
        this.early ??= [];
        if (this.early.length >= MAX_EARLY_FRAMES) {
          this.close(CloseCode.ProtocolViolation, 'too many frames before connected');
          return;
        }
        this.early.push(frame);
        return;
      case 'open':
        this.handle(frame);
    }
  }

  pong(): void {
    this.lastSeen = this.ctx.clock.now();
  }

  closed(code: number): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.queue = NO_FRAMES;
    // Counted and logged once (rate limited, debug) by the stats observer.
    this.ctx.stats.closed(code, { client: this.id, user: this.principal.user, by: 'peer' });
    this.ctx.hub.remove(this);
  }

  // ---- protocol --------------------------------------------------------------------------------

  private handle(frame: ClientFrame): void {
    switch (frame.type) {
      case 'connect':
        this.serial(() => Promise.resolve(this.send({ type: 'error', code: ErrorCode.AlreadyConnected, message: 'already connected' })));
        return;
      case 'subscribe':
        this.serial(() => this.subscribe(frame));
        return;
      case 'unsubscribe':
        this.serial(() => {
          this.ctx.hub.unsubscribe(this, frame.channel);
          this.send(frame.id === undefined ? { type: 'unsubscribed', channel: frame.channel } : { type: 'unsubscribed', channel: frame.channel, id: frame.id });
          return Promise.resolve();
        });
        return;
      case 'ping':
        return;
    }
  }

  private serial(task: () => Promise<void>): void {
    this.work = this.work.then(() => (this.state === 'open' ? task() : undefined)).catch((err: unknown) => this.internalError(err));
  }

  private async connect(frame: ConnectFrame): Promise<void> {
    const { ctx } = this;
    if (frame.token !== undefined) {
      const v = await ctx.tokens.verify(frame.token, ctx.clock.now());
      if (this.state !== 'authenticating') return;
      if (!v.ok) {
        ctx.stats.authFailure(v.reason === 'expired' ? 'token_expired' : 'token_invalid', { client: this.id, error: v.message });
        this.close(v.reason === 'expired' ? CloseCode.TokenExpired : CloseCode.InvalidToken, v.message);
        return;
      }
      this.principal = v.principal;
      this.presence.user = v.principal.user;
    } else if (!ctx.options.allowAnonymous) {
      ctx.stats.authFailure('token_missing', { client: this.id });
      this.close(CloseCode.InvalidToken, 'a token is required');
      return;
    }
    this.batch = frame.batch === true;
    this.registered = true;
    await ctx.hub.register(this);
    if (this.isClosed()) return;

    const wanted = new Map<ChannelName, SubscribeFrame>();
    if (this.principal.user !== null) {
      const own = userChannel(this.principal.user);
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
    const settled = await Promise.allSettled([...wanted.values()].map((s) => ctx.hub.prepare(this, s.channel, s)));
    if (this.isClosed()) return;
    // Keyed by client-chosen names ("__proto__" is a valid channel): no prototype to collide with.
    const subs = Object.create(null) as Record<ChannelName, SubscriptionResult>;
    const ready: PreparedSubscription[] = [];
    settled.forEach((r, i) => {
      const channel = [...wanted.keys()][i] as ChannelName;
      if (r.status === 'fulfilled') {
        subs[channel] = r.value.result;
        ready.push(r.value);
      } else {
        errors.push({ type: 'error', code: ErrorCode.EngineUnavailable, message: 'subscription failed, retry later', channel });
        ctx.stats.engineError('subscribe', { client: this.id, channel, error: r.reason instanceof Error ? r.reason.message : String(r.reason) });
      }
    });
    // Open only now: frames that arrived meanwhile were kept in `early`, so no answer overtakes
    // `connected` (except `pong`, which is always answered at once).
    this.state = 'open';
    this.send({ type: 'connected', client: this.id, user: this.principal.user, ping: ctx.options.pingInterval, subs });
    for (const p of ready) for (const f of ctx.hub.finish(this, p)) this.enqueue(f);
    for (const e of errors) this.send(e);
    ctx.logger.debug({ client: this.id, user: this.principal.user, subs: ready.length }, 'connected');

    const early = this.early;
    this.early = null;
    for (const f of early ?? []) this.handle(f);
  }

  /** Why this connection may not subscribe to `channel`, or null. */
  private refuse(channel: string, count: number, id?: number): ErrorFrame | null {
    const base = id === undefined ? {} : { id };
    const shown = channel.slice(0, 200);
    if (!isValidChannel(channel)) return { type: 'error', code: ErrorCode.InvalidChannel, message: 'invalid channel name', ...base, channel: shown };
    const denied = checkSubscribe(this.principal, channel);
    if (denied) {
      this.ctx.stats.authFailure('subscribe_forbidden', { client: this.id, user: this.principal.user, channel });
      return { type: 'error', code: denied, message: `not allowed to subscribe to ${channel}`, ...base, channel };
    }
    if (!this.subs.has(channel) && count >= this.ctx.options.maxSubscriptions) {
      return { type: 'error', code: ErrorCode.TooManySubscriptions, message: `at most ${this.ctx.options.maxSubscriptions} subscriptions`, ...base, channel };
    }
    return null;
  }

  private async subscribe(frame: SubscribeFrame): Promise<void> {
    const problem = this.refuse(frame.channel, this.subs.size, frame.id);
    if (problem) {
      this.send(problem);
      return;
    }
    let prepared: PreparedSubscription;
    try {
      prepared = await this.ctx.hub.prepare(this, frame.channel, frame);
    } catch (err) {
      this.ctx.stats.engineError('subscribe', { client: this.id, channel: frame.channel, error: err instanceof Error ? err.message : String(err) });
      const e: ErrorFrame = { type: 'error', code: ErrorCode.EngineUnavailable, message: 'subscription failed, retry later', channel: frame.channel };
      if (frame.id !== undefined) e.id = frame.id;
      this.send(e);
      return;
    }
    if (this.isClosed()) return;
    const ok = { type: 'subscribed' as const, channel: frame.channel, ...prepared.result };
    this.send(frame.id === undefined ? ok : { ...ok, id: frame.id });
    for (const f of this.ctx.hub.finish(this, prepared)) this.enqueue(f);
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Answers a malformed frame with an error; too many of them close the connection with 4500. */
  private fail(err: ErrorFrame): void {
    this.send(err);
    if (!MALFORMED.has(err.code)) return;
    this.invalidFrames += 1;
    if (this.invalidFrames >= this.ctx.options.maxInvalidFrames) this.close(CloseCode.ProtocolViolation, 'too many invalid frames');
  }

  private internalError(err: unknown): void {
    this.ctx.logger.error({ err, client: this.id }, 'connection handler failed');
    this.close(CloseCode.InternalError, 'internal error');
  }

  // ---- output ----------------------------------------------------------------------------------

  // ---- live messages of channels being set up (see Hub.prepare / Hub.finish) ----------------------

  /** Where live messages of `channel` wait while its subscription is set up; undefined: deliver them now. */
  buffered(channel: ChannelName): EngineMessage[] | undefined {
    return this.setup === null ? undefined : this.setup.get(channel);
  }

  /** Starts holding back live messages of `channel` (again, from none, when called twice). */
  holdBack(channel: ChannelName): void {
    (this.setup ??= new Map()).set(channel, []);
  }

  /** Stops holding back `channel` and returns what was held. */
  release(channel: ChannelName): EngineMessage[] {
    const held = this.setup?.get(channel) ?? [];
    if (this.setup !== null && this.setup.delete(channel) && this.setup.size === 0) this.setup = null;
    return held;
  }

  /** Drops everything held back (the connection is gone). */
  releaseAll(): void {
    this.setup = null;
  }

  /** Queues a control frame. */
  send(frame: object): void {
    this.enqueue(Buffer.from(JSON.stringify(frame)));
  }

  /** Queues a serialized frame; the hub flushes every dirty connection once per event-loop turn. */
  enqueue(frame: Buffer): void {
    if (this.state === 'closed') return;
    if (this.queued) {
      this.queue.push(frame);
      return;
    }
    this.queue = [frame];
    this.queued = true;
    this.ctx.hub.markDirty(this);
  }

  /** Writes the queue: one `\n`-joined frame for batch clients, one corked write otherwise. */
  flush(): void {
    this.queued = false;
    const frames = this.queue;
    this.queue = NO_FRAMES;
    if (frames.length === 0 || this.state === 'closed') return;
    this.socket.send(this.batch && frames.length > 1 ? [batchLine.get(frames)] : frames);
    if (this.socket.bufferedAmount > this.ctx.options.sendBufferLimit) {
      this.ctx.stats.drop('slow_consumer', 1, { client: this.id, user: this.principal.user });
      this.close(CloseCode.SlowConsumer, 'send buffer limit exceeded', CLOSE_GRACE_MS);
    }
  }

  /** Sends a protocol ping (the sweep does this for quiet connections). */
  ping(now: number): void {
    this.lastPing = now;
    this.socket.ping();
  }

  /** Closes with `code`; pending output is flushed first so an error frame before a close is not lost. */
  close(code: number, reason: string, graceMs = CLOSE_GRACE_MS): void {
    if (this.state === 'closed') return;
    if (code !== CloseCode.SlowConsumer) this.flush();
    this.state = 'closed';
    this.queue = NO_FRAMES;
    // Counted and logged once (rate limited; info unless routine) by the stats observer.
    this.ctx.stats.closed(code, { client: this.id, user: this.principal.user, reason, by: 'server' });
    this.ctx.hub.remove(this);
    this.socket.close(code, reason, graceMs);
  }
}
