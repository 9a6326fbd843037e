import {
  isReservedType,
  isValidChannel,
  MESSAGE_TYPE_RE,
  type ChannelName,
  type ClientFrame,
  type ErrorCode,
  type ErrorFrame,
  type MessageFrame,
  type Payload,
  type PublishedFrame,
  type PublishFrame,
} from '@herald/protocol';
import { ClientErrorCode, HeraldError } from './errors.js';
import type { Clock, PublishOptions, PublishResult } from './types.js';

/** Answers after which the SDK sends the same publish again (same key: published at most once). Literals: see registry.ts. */
const RESEND: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['engine_unavailable', 'engine_timeout']);
/** Most of one channel's own messages waiting to be recognized and skipped. */
const MAX_MUTED = 1000;
const CLOSED = 'client closed';

/** What client publishes need from their client (internal). */
export interface PublishContext {
  clock: Clock;
  backoff: (attempt: number) => number;
  /** The client's request ids (shared with subscribe requests, so answers are told apart by id). */
  nextId(): number;
  send(frame: ClientFrame): void;
  /** Whether the connection is established. */
  connected(): boolean;
  /** Whether the client was closed (`close()`, or a terminal close code). */
  closed(): boolean;
  /** Whether the client follows `channel` (only then is an echo expected). */
  follows(channel: ChannelName): boolean;
  /** Default time a publish may take. */
  timeout: number;
  /** Hands a message that was held back to the handlers (after its channel's order was checked). */
  emit(m: MessageFrame): void;
}

interface Pending {
  frame: PublishFrame & { id: number };
  resolve: (r: PublishResult) => void;
  reject: (e: HeraldError) => void;
  timer: unknown;
  attempts: number;
  /** Waits for the shared retry after a failure (see Publishes.error). */
  wait: boolean;
  /** Last sent by the SDK on its own schedule (after a reconnect or a failure), not at the app's pace. */
  late: boolean;
  /** The channel whose echo this publish holds back (echo: false on a followed channel). */
  muting: ChannelName | undefined;
}

/** A channel's own messages (echo: false) to skip, and the messages held until the publishes say which they are. */
interface Mute {
  /** Publishes whose seq is not known yet. */
  outstanding: number;
  seqs: Set<number>;
  held: MessageFrame[];
}

/** A random idempotency key: 16 characters of [a-z0-9]. */
function newKey(): string {
  const bytes = new Uint8Array(16);
  const c = (globalThis as { crypto?: { getRandomValues?(a: Uint8Array): Uint8Array } }).crypto;
  if (c?.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.random() * 256;
  let key = '';
  for (const b of bytes) key += (b % 36).toString(36);
  return key;
}

/**
 * Client publishes (internal): each gets a request id and an idempotency key, waits for the connection, is sent
 * again after a reconnect or an engine failure until answered or timed out (the key makes the gateway publish it
 * once), and settles its promise from the `published` or `error` answer.
 *
 * `echo: false` is done here, not by the gateway, so that tabs sharing one connection still get each other's
 * messages: the message comes back and takes its place in the channel's sequence, but is not emitted to this
 * client's handlers. Until the publish is answered (and its seq known) the channel's messages are held back.
 */
export class Publishes {
  private readonly _pending = new Map<number, Pending>();
  private readonly _mutes = new Map<ChannelName, Mute>();
  /** The one timer that sends the publishes waiting after a failure again (see error()). */
  private _retry: unknown;

  constructor(private readonly _ctx: PublishContext) {}

  publish(channel: ChannelName, type: string, payload: Payload, options: PublishOptions = {}): Promise<PublishResult> {
    const ctx = this._ctx;
    const problem = !isValidChannel(channel)
      ? new HeraldError(ClientErrorCode.InvalidChannel, `cannot publish to ${String(channel).slice(0, 200)}`, { channel: String(channel) })
      : typeof type !== 'string' || !MESSAGE_TYPE_RE.test(type) || isReservedType(type)
        ? new HeraldError(ClientErrorCode.InvalidOption, `invalid message type ${String(type)}`, { channel })
        : typeof payload !== 'object' || payload === null
          ? new HeraldError(ClientErrorCode.InvalidOption, 'payload must be an object or array', { channel })
          : ctx.closed()
            ? new HeraldError(ClientErrorCode.Closed, CLOSED, { channel })
            : undefined;
    if (problem) return Promise.reject(problem);
    const timeout = options.timeout ?? ctx.timeout;
    return new Promise<PublishResult>((resolve, reject) => {
      const id = ctx.nextId();
      const p: Pending = {
        frame: { type: 'publish', channel, event: type, payload, key: newKey(), id },
        resolve,
        reject,
        timer: undefined,
        attempts: 0,
        wait: false,
        late: false,
        muting: options.echo === false && ctx.follows(channel) ? channel : undefined,
      };
      p.timer = ctx.clock.setTimeout(() => {
        const sent = p.attempts > 0 ? ' (sent: it may be published)' : '';
        this._settle(p, undefined, new HeraldError(ClientErrorCode.PublishTimeout, `no publish answer in ${timeout} ms${sent}`, { channel }));
      }, timeout);
      if (p.muting !== undefined) this._mute(p.muting).outstanding++;
      this._pending.set(id, p);
      // Behind publishes waiting to go again: it goes with them, in call order.
      if (this._retry !== undefined) p.wait = true;
      else if (ctx.connected()) this._send(p, false);
    });
  }

  /** A connection is established: every publish not answered yet is sent (again), in call order. */
  connected(): void {
    this._ctx.clock.clearTimeout(this._retry);
    this._retry = undefined;
    for (const p of this._pending.values()) this._send(p, true);
  }

  /** The `published` answer of one of ours. */
  published(f: PublishedFrame): void {
    const p = f.id === undefined ? undefined : this._pending.get(f.id);
    if (p) this._settle(p, { channel: f.channel, seq: f.seq, epoch: f.epoch, duplicate: f.duplicate === true });
  }

  /** An error frame: true when it answers one of ours (then settled, or sent again after a while). */
  error(f: ErrorFrame): boolean {
    const p = f.id === undefined ? undefined : this._pending.get(f.id);
    if (!p) return false;
    // Nothing published (unavailable; over the rate limit, for a publish the SDK sent in a burst of its own) or
    // unknown (timeout): the same frame again, the key keeps it once. One timer sends every waiting publish, and
    // those called meanwhile, in call order (a timer each would shuffle them).
    if (RESEND.has(f.code) || (f.code === 'rate_limited' && p.late)) {
      p.wait = true;
      this._retry ??= this._ctx.clock.setTimeout(
        () => {
          this._retry = undefined;
          if (this._ctx.connected()) for (const q of this._pending.values()) if (q.wait) this._send(q, true);
        },
        this._ctx.backoff(p.attempts - 1),
      );
      return true;
    }
    this._settle(p, undefined, new HeraldError(ClientErrorCode.ServerError, f.message, { serverCode: f.code, channel: p.frame.channel, data: f }));
    return true;
  }

  /** The client was closed: every publish not answered yet fails. */
  close(): void {
    this._ctx.clock.clearTimeout(this._retry);
    this._retry = undefined;
    for (const p of [...this._pending.values()]) {
      this._settle(p, undefined, new HeraldError(ClientErrorCode.Closed, CLOSED, { channel: p.frame.channel }));
    }
  }

  /**
   * Whether a message (accepted in its channel's order) goes to the handlers now: false for this client's own
   * message published with `echo: false`, and for messages held back until such a publish is answered (they are
   * handed to the context's `emit` then).
   */
  filter(m: MessageFrame): boolean {
    const mute = this._mutes.get(m.channel);
    if (!mute || m.seq === 0) return true;
    if (mute.seqs.delete(m.seq)) {
      this._tidy(m.channel, mute);
      return false;
    }
    if (mute.outstanding === 0) return true;
    mute.held.push(m);
    return false;
  }

  /** The channel's position was reset (or it was unsubscribed): its own seqs no longer mean anything. */
  forget(channel: ChannelName): void {
    const mute = this._mutes.get(channel);
    if (!mute) return;
    mute.seqs.clear();
    mute.outstanding = 0;
    this._tidy(channel, mute);
  }

  private _mute(channel: ChannelName): Mute {
    let mute = this._mutes.get(channel);
    if (!mute) this._mutes.set(channel, (mute = { outstanding: 0, seqs: new Set(), held: [] }));
    return mute;
  }

  /** Releases held messages once no publish of the channel is outstanding; forgets an idle channel. */
  private _tidy(channel: ChannelName, mute: Mute): void {
    if (mute.outstanding > 0) return;
    const held = mute.held;
    mute.held = [];
    for (const m of held) if (!mute.seqs.delete(m.seq)) this._ctx.emit(m);
    if (mute.seqs.size === 0 && mute.held.length === 0 && mute.outstanding === 0) this._mutes.delete(channel);
  }

  private _send(p: Pending, late: boolean): void {
    p.attempts++;
    p.wait = false;
    p.late = late;
    this._ctx.send(p.frame);
  }

  private _settle(p: Pending, result: PublishResult | undefined, error?: HeraldError): void {
    if (this._pending.get(p.frame.id) !== p) return;
    this._pending.delete(p.frame.id);
    this._ctx.clock.clearTimeout(p.timer);
    if (p.muting !== undefined) {
      const mute = this._mute(p.muting);
      mute.outstanding = Math.max(0, mute.outstanding - 1);
      if (result && mute.seqs.size < MAX_MUTED) mute.seqs.add(result.seq);
      this._tidy(p.muting, mute);
    }
    if (result) p.resolve(result);
    else p.reject(error as HeraldError);
  }
}
