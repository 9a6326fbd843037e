import type {
  ChannelName,
  ClientFrame,
  ErrorCode,
  ErrorFrame,
  JoinPayload,
  LeavePayload,
  MessageFrame,
  PresenceMember,
  SubscribeRecovery,
  SubscribedFrame,
  SubscriptionResult,
  UnsubscribedFrame,
  UserId,
} from '@herald/protocol';
import { ClientErrorCode, HeraldError } from './errors.js';
import { Subscription, type SubscriptionHost } from './subscription.js';
import type { ClientEvents, Clock, Logger, SubscribeOptions } from './types.js';

/**
 * The transient subscribe errors (the engine was unavailable; new channels over the limit): retried with
 * backoff. Literals, so the IIFE bundle does not carry the whole ErrorCode table.
 */
const RETRYABLE_SUBSCRIBE_ERRORS: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['engine_unavailable', 'too_many_channels']);

/** What the registry needs from its client (internal). */
export interface RegistryContext {
  clock: Clock;
  logger: Logger;
  backoff: (attempt: number) => number;
  /** How long a subscribe waits for its answer before it is reported and sent again (`connectTimeout`). */
  timeout: number;
  /** Sends a frame on the current connection, if one is open. */
  send(frame: ClientFrame): void;
  /** The client's next request id. */
  nextId(): number;
  /** Whether a message goes to the handlers now (client publishes with `echo: false` hold some back). */
  filter(m: MessageFrame): boolean;
  /** A channel's position was reset or it was unsubscribed. */
  forget(channel: ChannelName): void;
  /** Whether the connection is established (`connected` received). */
  connected(): boolean;
  /** Emits a client event. */
  emit<K extends keyof ClientEvents>(event: K, payload: ClientEvents[K]): void;
  /** Reports an error through the client's `error` event. */
  report(error: HeraldError): void;
  /** Subscriptions report their listeners' exceptions here. */
  host: Omit<SubscriptionHost, 'unsubscribe'>;
}

/**
 * The client's subscriptions and everything the server says about channels: subscribe and unsubscribe
 * requests and answers, per-channel sequencing (dedup, gap recovery, resets) and subscribe errors.
 * Connection lifecycle stays in the client; `reset()` is called whenever a connection ends.
 */
export class SubscriptionRegistry {
  private readonly _subs = new Map<ChannelName, Subscription>();
  private readonly _host: SubscriptionHost;
  /** Bumped by `reset()`, so loops that call app handlers notice a connection that ended meanwhile. */
  private _generation = 0;
  /** Channels subscribed on the current connection (in the connect frame or by a subscribe frame). */
  private readonly _sent = new Set<ChannelName>();
  private readonly _requests = new Map<number, ChannelName>();
  /** The answer timers of the subscribes in `_requests`. */
  private readonly _timers = new Map<number, unknown>();
  private readonly _unsubscribing = new Map<ChannelName, number>();
  private readonly _retries = new Map<Subscription, { timer: unknown; n: number }>();

  constructor(private readonly _ctx: RegistryContext) {
    this._host = { ..._ctx.host, unsubscribe: (sub) => this._unsubscribe(sub) };
  }

  /** The subscription of `channel`, if any. */
  get(channel: ChannelName): Subscription | undefined {
    return this._subs.get(channel);
  }

  /** The subscription of `channel`, created (and subscribed, when connected) if needed. */
  add(channel: ChannelName, options?: SubscribeOptions): Subscription {
    let sub = this._subs.get(channel);
    if (!sub) {
      this._subs.set(channel, (sub = new Subscription(channel, this._host, options)));
      if (this._ctx.connected()) this._subscribe(sub);
    }
    return sub;
  }

  /** The `subs` of a connect frame: every subscription with its recovery position. */
  connectSubs(): Record<ChannelName, SubscribeRecovery> {
    for (const channel of this._subs.keys()) this._sent.add(channel);
    // Object.fromEntries defines own properties, even for a channel named __proto__.
    return Object.fromEntries([...this._subs].map(([channel, sub]) => [channel, sub._pos.recovery()]));
  }

  /** Applies `connected.subs`; `own` is the user's channel, which the server subscribes by itself. */
  connected(results: Record<ChannelName, SubscriptionResult>, own: ChannelName | undefined): void {
    const gen = this._generation;
    for (const [channel, result] of Object.entries(results)) {
      if (gen !== this._generation) return;
      let sub = this._subs.get(channel);
      // Track our own user channel even when the app did not subscribe, so it recovers after reconnects.
      if (!sub && channel === own) this._subs.set(channel, (sub = new Subscription(channel, this._host)));
      this._sent.add(channel);
      if (sub) this._apply(sub, result);
      else this._sendUnsubscribe(channel); // unsubscribed while the connect frame was in flight
    }
    for (const sub of [...this._subs.values()]) {
      if (gen !== this._generation) return;
      if (!this._sent.has(sub.channel)) this._subscribe(sub); // added after the connect frame left
    }
  }

  /** The connection ended: every request in flight is void and every subscription waits for a resubscribe. */
  reset(): void {
    this._generation++;
    for (const r of this._retries.values()) this._ctx.clock.clearTimeout(r.timer);
    for (const t of this._timers.values()) this._ctx.clock.clearTimeout(t);
    this._retries.clear();
    this._timers.clear();
    this._requests.clear();
    this._unsubscribing.clear();
    this._sent.clear();
    for (const sub of this._subs.values()) sub._pos.ready = false;
  }

  /** An application message: deliver it exactly once and in order, or recover a gap. */
  message(m: MessageFrame): void {
    const sub = this._subs.get(m.channel);
    if (m.seq === 0 && (m.type === 'join' || m.type === 'leave')) {
      if (!sub) return;
      const p = m.payload as Partial<JoinPayload & LeavePayload>;
      const users = Array.isArray(p.users) ? p.users : undefined;
      const count = typeof p.count === 'number' ? p.count : sub.memberCount;
      const changed = sub._presence(m.type, users, count);
      if (changed === null) return;
      if (m.type === 'join') sub._emit('join', { users: changed as PresenceMember[] | undefined, count });
      else sub._emit('leave', { users: changed as UserId[] | undefined, count });
      return;
    }
    // seq 0: sent to this connection only (`client:<id>`) or otherwise unsequenced; nothing to track.
    if (m.seq !== 0) {
      if (!sub) return this._ctx.logger.debug('message without subscription', m.channel);
      const verdict = sub._pos.accept(m.seq);
      if (verdict === 'gap') {
        this._ctx.logger.debug(`gap on ${m.channel} after seq ${String(sub._pos.seq)}: resubscribing`, m.seq);
        this._subscribe(sub);
      }
      if (verdict !== 'deliver') return;
    }
    if (this._ctx.filter(m)) this.emit(m);
  }

  /** Hands a message, in its channel's order, to the subscription's and the client's handlers. */
  emit(m: MessageFrame): void {
    this._subs.get(m.channel)?._emit('message', m);
    this._ctx.emit('message', m);
  }

  subscribed(f: SubscribedFrame): void {
    if (f.id !== undefined) this._answered(f.id);
    const sub = this._subs.get(f.channel);
    // An answer to an older request (unsubscribed and subscribed again since) is stale.
    if (!sub || (f.id !== undefined && f.id !== sub._req)) return;
    this._apply(sub, f);
  }

  unsubscribed(f: UnsubscribedFrame): void {
    const n = this._unsubscribing.get(f.channel);
    if (n !== undefined) {
      // The answer to our own unsubscribe.
      if (n > 1) this._unsubscribing.set(f.channel, n - 1);
      else this._unsubscribing.delete(f.channel);
      return;
    }
    const sub = this._subs.get(f.channel);
    if (!sub) return;
    this._remove(sub);
    sub._emit('unsubscribed', f.reason === undefined ? {} : { reason: f.reason });
  }

  error(f: ErrorFrame): void {
    const channel = f.channel ?? (f.id === undefined ? undefined : this._requests.get(f.id));
    if (f.id !== undefined) this._answered(f.id);
    const error = new HeraldError(ClientErrorCode.ServerError, f.message, { serverCode: f.code, channel, data: f });
    const sub = channel === undefined ? undefined : this._subs.get(channel);
    if (sub && (f.id === undefined || f.id === sub._req)) {
      // forbidden, invalid_channel, too_many_subscriptions: retrying cannot help.
      if (RETRYABLE_SUBSCRIBE_ERRORS.has(f.code)) this._retry(sub);
      else this._remove(sub);
      sub._emit('error', error);
    }
    this._ctx.report(error);
  }

  private _apply(sub: Subscription, r: SubscriptionResult): void {
    this._clearRetry(sub);
    const { seq = 0, epoch } = sub._pos;
    const previous = epoch === undefined ? { seq } : { seq, epoch };
    const outcome = sub._pos.subscribed(r);
    if (r.count !== undefined) sub._presence('set', r.members, r.count);
    sub._emit('subscribed', { seq: r.seq, epoch: r.epoch, recovered: r.recovered });
    if (outcome === 'recovered') {
      sub._emit('recovered', { since: seq, seq: r.seq, epoch: r.epoch });
    } else if (outcome !== 'fresh') {
      this._ctx.forget(sub.channel);
      this._ctx.logger.debug(`${sub.channel}: position reset (${outcome})`, r);
      const reset = { reason: outcome, seq: r.seq, epoch: r.epoch, previous };
      sub._emit('reset', reset);
      this._ctx.emit('reset', { channel: sub.channel, ...reset });
    }
  }

  private _subscribe(sub: Subscription): void {
    const id = this._ctx.nextId();
    sub._req = id;
    this._requests.set(id, sub.channel);
    this._sent.add(sub.channel);
    // The server answers every subscribe (`subscribed` or an error); one lost on its way (a broken proxy, a
    // gateway bug) would leave the subscription waiting for good, its messages unheard: report it and retry.
    const ms = this._ctx.timeout;
    this._timers.set(
      id,
      this._ctx.clock.setTimeout(() => {
        this._answered(id);
        if (this._subs.get(sub.channel) !== sub) return;
        const error = new HeraldError(ClientErrorCode.SubscribeTimeout, `no answer to subscribe in ${ms} ms`, { channel: sub.channel });
        this._retry(sub);
        sub._emit('error', error);
        this._ctx.report(error);
      }, ms),
    );
    this._ctx.send({ type: 'subscribe', channel: sub.channel, ...sub._pos.recovery(), id });
  }

  /** A subscribe was answered, or given up on (a late `subscribed` still applies until the retry is sent). */
  private _answered(id: number): void {
    this._requests.delete(id);
    this._ctx.clock.clearTimeout(this._timers.get(id));
    this._timers.delete(id);
  }

  private _unsubscribe(sub: Subscription): void {
    if (this._subs.get(sub.channel) !== sub) return;
    this._remove(sub);
    if (this._ctx.connected()) this._sendUnsubscribe(sub.channel);
  }

  private _sendUnsubscribe(channel: ChannelName): void {
    this._unsubscribing.set(channel, (this._unsubscribing.get(channel) ?? 0) + 1);
    this._sent.delete(channel);
    this._ctx.send({ type: 'unsubscribe', channel, id: this._ctx.nextId() });
  }

  private _remove(sub: Subscription): void {
    if (this._subs.get(sub.channel) === sub) this._subs.delete(sub.channel);
    sub._ended = true;
    sub._pos.ready = false;
    this._ctx.forget(sub.channel);
    this._clearRetry(sub);
  }

  private _retry(sub: Subscription): void {
    const r = this._retries.get(sub) ?? { timer: undefined, n: 0 };
    this._ctx.clock.clearTimeout(r.timer);
    const gen = this._generation;
    r.timer = this._ctx.clock.setTimeout(
      () => gen === this._generation && this._subs.get(sub.channel) === sub && this._subscribe(sub),
      this._ctx.backoff(r.n++),
    );
    this._retries.set(sub, r);
  }

  private _clearRetry(sub: Subscription): void {
    const r = this._retries.get(sub);
    if (!r) return;
    this._ctx.clock.clearTimeout(r.timer);
    this._retries.delete(sub);
  }
}
