import type { ChannelName, ClientId, UserId } from '@herald/protocol';
import type { Clock, TimerHandle } from '../../util/clock.js';
import { randomId } from '../../util/random-id.js';
import { lifecycleEvent, tracksChannel, type LifecycleData, type LifecycleOptions, type OutboxEvent } from '../outbox.js';

/**
 * First and last connection of each user and first and last subscriber of each channel, in one process,
 * turned into outbox events: `user.online` and `user.offline` (held back `offlineDelay` ms and dropped when the
 * user comes back meanwhile), `channel.occupied` and `channel.vacated`. The memory engine's presence calls it.
 */
export class MemoryLifecycle {
  private readonly users = new Map<UserId, Set<ClientId>>();
  private readonly channels = new Map<ChannelName, Set<ClientId>>();
  /** Users whose last connection closed, with the timer that will say so. */
  private readonly pending = new Map<UserId, TimerHandle>();

  constructor(
    private readonly o: LifecycleOptions,
    private readonly clock: Clock,
    private readonly emit: (events: OutboxEvent[]) => void,
  ) {}

  connected(client: ClientId, user: UserId | null): void {
    if (!this.o.users || user === null) return;
    const set = this.users.get(user) ?? new Set();
    if (set.has(client)) return;
    set.add(client);
    this.users.set(user, set);
    if (set.size > 1) return;
    const timer = this.pending.get(user);
    if (timer !== undefined) {
      // Back within the hold-back: the offline was never said, so neither is an online.
      this.clock.clearTimeout(timer);
      this.pending.delete(user);
      return;
    }
    this.event('user.online', { user });
  }

  disconnected(client: ClientId, user: UserId | null): void {
    if (user === null) return;
    const set = this.users.get(user);
    if (!set?.delete(client) || set.size > 0) return;
    this.users.delete(user);
    this.pending.set(
      user,
      this.clock.setTimeout(() => {
        this.pending.delete(user);
        this.event('user.offline', { user });
      }, this.o.offlineDelay),
    );
  }

  joined(channel: ChannelName, client: ClientId): void {
    if (!tracksChannel(this.o, channel)) return;
    const set = this.channels.get(channel) ?? new Set();
    if (set.has(client)) return;
    set.add(client);
    this.channels.set(channel, set);
    if (set.size === 1) this.event('channel.occupied', { channel });
  }

  left(channel: ChannelName, client: ClientId): void {
    const set = this.channels.get(channel);
    if (!set?.delete(client) || set.size > 0) return;
    this.channels.delete(channel);
    this.event('channel.vacated', { channel });
  }

  /** Stops the hold-back timers (the engine closes; pending offlines are lost with the process). */
  close(): void {
    for (const t of this.pending.values()) this.clock.clearTimeout(t);
    this.pending.clear();
  }

  private event(type: string, data: LifecycleData): void {
    this.emit([lifecycleEvent(`evt_${randomId(12)}`, type, this.clock.now(), data)]);
  }
}
