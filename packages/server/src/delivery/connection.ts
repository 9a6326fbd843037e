import type { ChannelName, ClientId, UserId } from '@herald/protocol';
import { ANONYMOUS, type Identity } from '../auth/types.js';
import type { EngineMessage, PresenceConnection } from '../engine/types.js';
import type { InboxMessage } from '../engine/inbox.js';
import type { Socket, SocketListener } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import { FramesMemo } from '../util/frames-memo.js';
import { SmallMap } from '../util/small-map.js';
import { TokenBucket } from '../util/token-bucket.js';
import type { CloseReason, ProtocolHandler } from './protocol.js';
import type { EventIds, Stats } from './stats.js';

/**
 * One connection's subscription to one channel, owned by the hub. While it is being set up (history is
 * read), live messages of the channel are held in `held`; `finish` (see Hub) merges both without a gap or a
 * duplicate, then the subscription is live (`held` null).
 */
export class Subscription {
  /** The epoch the client was told for this channel ('' until the subscription answer was queued). */
  epoch = '';
  /** Live messages held back while the subscription is set up; null once live. */
  held: EngineMessage[] | null = [];
  /**
   * The last seq `finish` gave the client, until a live message passes it (then 0). On an engine whose history
   * reads and live messages travel apart (Redis: a command connection and a subscriber connection), the live
   * copy of a message the replay already sent can come after the subscription went live: it is skipped.
   */
  floor = 0;

  constructor(
    readonly conn: Connection,
    readonly channel: ChannelName,
  ) {}
}

/** Lifecycle: `connecting` until the protocol says the connection is established, then `open`, then `closed`. */
export type ConnectionState = 'connecting' | 'open' | 'closed';

/** What a connection needs from the hub that holds it (the hub implements it; no import cycle). */
export interface ConnectionHost {
  /** Something was queued on `conn` in this turn: flush it soon (once per turn, whatever was queued). */
  markDirty(conn: Connection): void;
  /** `conn` closed: forget its subscriptions, user entry and presence. Idempotent. */
  remove(conn: Connection): void;
}

/** The limits the core enforces on every connection, whatever its protocol. */
export interface ConnectionLimits {
  /** Time to become `open` (ms). */
  connectTimeout: number;
  /** Client frames per second, sustained, and in a burst. */
  clientRate: number;
  clientBurst: number;
  /** Bytes queued in the socket above which the connection is a slow consumer. */
  sendBufferLimit: number;
}

/** What every connection shares. */
export interface ConnectionDeps {
  host: ConnectionHost;
  limits: ConnectionLimits;
  stats: Stats;
  clock: Clock;
}

const NEWLINE = Buffer.from('\n');
/** Time a closing socket gets to finish the close handshake before it is destroyed. */
const CLOSE_GRACE_MS = 5000;
/** The empty queue every idle connection shares (replaced, never pushed to). */
const NO_FRAMES: Buffer[] = [];

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
 * One client connection as the delivery core sees it, whatever its wire protocol: who it is, the channels
 * it is subscribed to (records owned by the hub), its outgoing queue, its liveness and its limits. What the
 * client says is the protocol handler's business (`handler`); I/O goes through the `Socket` seam.
 */
export class Connection implements SocketListener, PresenceConnection {
  state: ConnectionState = 'connecting';
  identity: Identity = ANONYMOUS;
  /** Whether the connection was registered under its user and in presence (see Hub.register). */
  registered = false;
  /** This connection's subscriptions by channel, live or being set up; maintained by the hub. */
  readonly subs = new SmallMap<ChannelName, Subscription>();
  lastSeen: number;
  lastPing = 0;
  readonly connectDeadline: number;
  /** Set by the protocol right after construction (see Protocol.open). */
  handler!: ProtocolHandler;
  /** The name of the connection's protocol (metrics), set with the handler. */
  protocol = '';
  /** Frames queued within one flush are sent as one `\n`-joined frame (native `batch` clients). */
  joinFrames = false;
  /**
   * Its user's inbox: undefined until the replay at connect starts (live inbox messages are not for it yet: the
   * replay reads them), the live ones held meanwhile, then null (live). See InboxDelivery.
   */
  inboxHeld: InboxMessage[] | null | undefined = undefined;
  /**
   * The inbox ids the replay sent, until a live inbox message not among them arrives (then undefined): the live
   * copy of a stored message can come after the replay that read it (Redis: two connections), and is skipped.
   */
  inboxSent: Set<string> | undefined = undefined;
  /** Frames queued for the next flush (NO_FRAMES, shared and never written to, while there are none). */
  private queue: Buffer[] = NO_FRAMES;
  private queued = false;
  /** The frame rate limit; dropped while full (an idle connection: see `settle`) and made again on the next frame. */
  private bucket: TokenBucket | undefined;
  /** Past the rate limit: closing once the frames within it are answered (closeForRate). */
  private overLimit = false;

  constructor(
    readonly id: ClientId,
    /** The peer address (for logs and per-address limits). */
    readonly ip: string,
    private readonly socket: Socket,
    private readonly deps: ConnectionDeps,
  ) {
    const now = deps.clock.now();
    this.lastSeen = now;
    this.connectDeadline = now + deps.limits.connectTimeout;
  }

  /**
   * What presence knows of the connection: the connection itself (its `client` and `user`), not an object of its
   * own per idle connection.
   */
  get presence(): PresenceConnection {
    return this;
  }

  /** The connection id, as presence names it. */
  get client(): ClientId {
    return this.id;
  }

  /** Its user once authenticated (presence counts it under that user); null for an anonymous connection. */
  get user(): UserId | null {
    return this.identity.user;
  }

  /** Whether the connection is closed (a method, so that TypeScript re-reads it after an await). */
  isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Ids for log lines about this connection. */
  ids(extra?: EventIds): EventIds {
    return { client: this.id, user: this.identity.user, ...extra };
  }

  // ---- socket events ---------------------------------------------------------------------------

  message(data: Buffer, binary: boolean): void {
    if (this.state === 'closed') return;
    const now = this.deps.clock.now();
    this.lastSeen = now;
    const bucket = (this.bucket ??= new TokenBucket(this.deps.limits.clientRate, this.deps.limits.clientBurst, now));
    if (this.overLimit || !bucket.take(now)) {
      this.deps.stats.drop('rate_limited', 1, this.ids());
      if (!this.overLimit) this.closeForRate();
      return;
    }
    this.handler.message(data, binary);
  }

  /**
   * Closes for the rate limit (4029 natively) once the frames within the limit are answered: their answers (a
   * subscribe's waits for the engine) go out first, within CLOSE_GRACE_MS. Frames after this one are beyond the
   * limit too: counted and not handled, as the close says.
   */
  private closeForRate(): void {
    this.overLimit = true;
    const pending = this.handler.settled?.();
    const close = (): void => this.closeFor('rate_limited', 'rate limit exceeded');
    if (pending === undefined) {
      close();
      return;
    }
    const timer = this.deps.clock.setTimeout(close, CLOSE_GRACE_MS);
    void pending.then(() => {
      this.deps.clock.clearTimeout(timer);
      close();
    });
  }

  /**
   * Forgets the rate limit's bucket once it is full again: a full bucket made anew is the same bucket, and an
   * idle connection then holds none (the heartbeat sweep calls this).
   */
  settle(now: number): void {
    if (this.bucket?.full(now) === true) this.bucket = undefined;
  }

  pong(): void {
    this.lastSeen = this.deps.clock.now();
  }

  closed(code: number, reason?: string, bySelf = false): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.queue = NO_FRAMES;
    // Counted and logged once (rate limited; debug when the peer closed) by the stats observer.
    this.deps.stats.closed(code, this.ids(bySelf ? { reason, by: 'server' } : { by: 'peer' }));
    this.deps.host.remove(this);
    this.handler.closed();
  }

  // ---- what protocols call ----------------------------------------------------------------------

  /** Sets who the connection is (before the hub registers it). */
  authenticate(identity: Identity): void {
    this.identity = identity;
  }

  /** The protocol established the connection: the connect deadline no longer applies. */
  opened(): void {
    if (this.state === 'connecting') this.state = 'open';
  }

  /** Queues a control frame. */
  sendJson(frame: object): void {
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
    this.deps.host.markDirty(this);
  }

  /** Writes the queue: one `\n`-joined frame for batch clients, one corked write otherwise. */
  flush(): void {
    this.queued = false;
    const frames = this.queue;
    this.queue = NO_FRAMES;
    if (frames.length === 0 || this.state === 'closed') return;
    this.socket.send(this.joinFrames && frames.length > 1 ? [batchLine.get(frames)] : frames);
    if (this.socket.bufferedAmount > this.deps.limits.sendBufferLimit) {
      this.deps.stats.drop('slow_consumer', 1, this.ids());
      this.closeFor('slow_consumer', 'send buffer limit exceeded');
    }
  }

  /** Makes a quiet client answer (the sweep calls this; the protocol decides how). */
  ping(now: number): void {
    this.lastPing = now;
    this.handler.ping();
  }

  /** Sends a protocol-level ping (what most protocols' `ping` does). */
  pingSocket(): void {
    this.socket.ping();
  }

  /** Closes for a reason the core decided, with the code the protocol gives it. */
  closeFor(reason: CloseReason, text: string, graceMs = CLOSE_GRACE_MS, requested?: number): void {
    if (this.state === 'closed') return;
    this.close(this.handler.closeCode(reason, requested), text, graceMs, reason !== 'slow_consumer');
  }

  /**
   * Closes with `code`. Pending output is flushed first (unless the client is a slow consumer) so an error
   * frame right before a close is not lost.
   */
  close(code: number, reason: string, graceMs = CLOSE_GRACE_MS, flushFirst = true): void {
    if (this.state === 'closed') return;
    if (flushFirst) this.flush();
    this.state = 'closed';
    this.queue = NO_FRAMES;
    // Counted and logged once (rate limited; info unless routine) by the stats observer.
    this.deps.stats.closed(code, this.ids({ reason, by: 'server' }));
    this.deps.host.remove(this);
    this.socket.close(code, reason, graceMs);
    this.handler.closed();
  }
}
