import type { ChannelName, Payload, PresenceMember, StreamPosition, UserId } from '@herald/protocol';
import { Emitter, type Listener } from './emitter.js';
import { Sequencer } from './sequencer.js';
import type { SubscribeOptions, SubscriptionEvents, SubscriptionState } from './types.js';

/** What a subscription needs from its client (internal). */
export interface SubscriptionHost {
  unsubscribe(sub: Subscription): void;
  listenerError(error: unknown, event: string): void;
}

/**
 * One channel the client follows. Created by `client.subscribe()`; the same object is returned for
 * the same channel until it is unsubscribed. It survives reconnects: the client resubscribes it with
 * its position so missed messages are replayed.
 */
export class Subscription<P extends Payload = Payload> {
  /** The channel. */
  readonly channel: ChannelName;
  /** @internal */
  readonly _pos: Sequencer;
  /** Id of the latest subscribe request sent for this subscription. @internal */
  _req: number | undefined;
  /** @internal */
  _ended = false;
  /**
   * Presence channels: who is there now, one entry per user (its token's `info` as the value); empty for other
   * channels, and over the gateway's member limit (see `memberCount`).
   */
  readonly members = new Map<UserId, unknown>();
  /** Presence channels: how many members there are now (0 for other channels). */
  memberCount = 0;
  private readonly _events: Emitter<SubscriptionEvents<P>>;
  private readonly _host: SubscriptionHost;

  /** @internal */
  constructor(channel: ChannelName, host: SubscriptionHost, options: SubscribeOptions = {}) {
    this.channel = channel;
    this._host = host;
    this._pos = new Sequencer(options.since, options.epoch);
    this._events = new Emitter((error, event) => host.listenerError(error, `subscription ${event}`));
  }

  /** `subscribing` until the server confirms (again after each reconnect or gap), then `subscribed`. */
  get state(): SubscriptionState {
    if (this._ended) return 'unsubscribed';
    return this._pos.ready ? 'subscribed' : 'subscribing';
  }

  /** The last delivered seq and its epoch, once known. */
  get position(): StreamPosition | undefined {
    const { seq, epoch } = this._pos;
    return seq === undefined || epoch === undefined ? undefined : { seq, epoch };
  }

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof SubscriptionEvents<P>>(event: K, listener: Listener<SubscriptionEvents<P>[K]>): () => void {
    return this._events.on(event, listener);
  }

  /** Adds a listener called at most once; returns a function that removes it. */
  once<K extends keyof SubscriptionEvents<P>>(event: K, listener: Listener<SubscriptionEvents<P>[K]>): () => void {
    return this._events.once(event, listener);
  }

  /** Removes a listener. */
  off<K extends keyof SubscriptionEvents<P>>(event: K, listener: Listener<SubscriptionEvents<P>[K]>): void {
    this._events.off(event, listener);
  }

  /** Stops following the channel. `client.subscribe()` afterwards creates a new subscription. */
  unsubscribe(): void {
    this._host.unsubscribe(this as unknown as Subscription);
  }

  /**
   * Applies a presence channel's members: all of them (`subscribed`), or who joined or left. Returns the users a
   * join or leave changes (all of them, undefined, over the member limit), or null when it changes nothing: join
   * and leave frames are unsequenced, so one published while this subscription was being set up can arrive after
   * the `subscribed` that already counted it (its count older than the one known), and a join may name users
   * already known. @internal
   */
  _presence(
    kind: 'set' | 'join' | 'leave',
    users: ReadonlyArray<PresenceMember | UserId> | undefined,
    count: number,
  ): ReadonlyArray<PresenceMember | UserId> | undefined | null {
    if (kind === 'set' || !users) {
      this.members.clear();
    } else if (this.members.size === this.memberCount) {
      // Every member is known (over the member limit only counts are: nothing to compare then).
      // A leave (user ids) changes the set for members, a join for users who are not.
      users = users.filter((u) => this.members.has((u as PresenceMember).user ?? (u as UserId)) === (kind === 'leave'));
      if (!users.length) return null;
    }
    for (const u of users ?? []) {
      if (typeof u === 'string') this.members.delete(u);
      else this.members.set(u.user, u.info);
    }
    this.memberCount = count;
    return users;
  }

  /** @internal */
  _emit<K extends keyof SubscriptionEvents<P>>(event: K, payload: SubscriptionEvents<P>[K]): void {
    this._events.emit(event, payload);
  }
}
