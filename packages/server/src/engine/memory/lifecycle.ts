import type { ChannelName, ClientId, UserId } from '@herald/protocol';
import type { Clock } from '../../util/clock.js';
import { randomId } from '../../util/random-id.js';
import { lifecycleEvent, offlineKey, tracksChannel, type LifecycleData, type LifecycleOptions } from '../outbox.js';
import type { MemoryOutbox } from './outbox.js';

/**
 * First and last connection of each user and first and last subscriber of each channel, in one process,
 * turned into outbox events: `user.online` and `user.offline` (held back in the outbox `offlineDelay` ms and
 * cancelled when the user comes back meanwhile), `channel.occupied` and `channel.vacated`. The memory engine's
 * presence calls it.
 */
export class MemoryLifecycle {
  private readonly users = new Map<UserId, Set<ClientId>>();
  private readonly channels = new Map<ChannelName, Set<ClientId>>();

  constructor(
    private readonly o: LifecycleOptions,
    private readonly clock: Clock,
    private readonly outbox: Pick<MemoryOutbox, 'publishNow' | 'holdNow' | 'cancelNow'>,
  ) {}

  connected(client: ClientId, user: UserId | null): void {
    if (!this.o.users || user === null) return;
    const set = this.users.get(user) ?? new Set();
    if (set.has(client)) return;
    set.add(client);
    this.users.set(user, set);
    if (set.size > 1) return;
    // Back within the hold-back: the offline was never said, so neither is an online.
    if (this.outbox.cancelNow(offlineKey(user))) return;
    this.outbox.publishNow([this.event('user.online', { user })]);
  }

  disconnected(client: ClientId, user: UserId | null): void {
    if (user === null) return;
    const set = this.users.get(user);
    if (!set?.delete(client) || set.size > 0) return;
    this.users.delete(user);
    const due = this.clock.now() + this.o.offlineDelay;
    this.outbox.holdNow(offlineKey(user), this.event('user.offline', { user }, due), due);
  }

  joined(channel: ChannelName, client: ClientId): void {
    if (!tracksChannel(this.o, channel)) return;
    const set = this.channels.get(channel) ?? new Set();
    if (set.has(client)) return;
    set.add(client);
    this.channels.set(channel, set);
    if (set.size === 1) this.outbox.publishNow([this.event('channel.occupied', { channel })]);
  }

  left(channel: ChannelName, client: ClientId): void {
    const set = this.channels.get(channel);
    if (!set?.delete(client) || set.size > 0) return;
    this.channels.delete(channel);
    this.outbox.publishNow([this.event('channel.vacated', { channel })]);
  }

  /** `time`: when it is true (a held-back offline: when the hold-back ends). */
  private event(type: string, data: LifecycleData, time = this.clock.now()): string {
    return lifecycleEvent(`evt_${randomId(12)}`, type, time, data);
  }
}
