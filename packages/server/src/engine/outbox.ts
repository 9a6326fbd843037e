import type { ChannelName, UserId } from '@herald/protocol';

/**
 * One event for the webhooks, serialized once when it happens: `{"id","type","time","data":{...}}` (JSON text).
 * The engine queues it durably and never looks inside except to route it (webhooks/ knows the shapes).
 */
export type OutboxEvent = string;

/** One delivery of one event to one endpoint, as the outbox schedules it. */
export interface OutboxJob {
  /** Unique per delivery. */
  id: string;
  /** The endpoint's name (its configuration is looked up when the job is sent). */
  endpoint: string;
  /** The event, as queued. */
  event: OutboxEvent;
  /** Attempts made so far (0 for a job never tried). */
  attempt: number;
  /** When its event was fanned out (ms): retries stop some time after it. */
  created: number;
  /** Times it was deferred untried (its endpoint's circuit open); absent for none. Deferrals back off as attempts do. */
  deferred?: number;
}

/** A job that was given up on, with why. */
export interface DeadJob extends Omit<OutboxJob, 'deferred'> {
  reason: string;
  /** When it was given up on (ms). */
  died: number;
}

/**
 * What became of a leased job: sent (`done`); tried and failed, due again at a time (`retry`, one more attempt);
 * not tried, due again at a time (`defer`: its endpoint's circuit is open; counted in `deferred`, and remembered
 * for `release` for `keep` ms); given up on (`dead`, `untried` when it was not tried this time, so that its
 * attempts are not counted one too many).
 */
export type JobOutcome =
  { kind: 'done' } | { kind: 'retry'; due: number } | { kind: 'defer'; due: number; keep: number } | { kind: 'dead'; reason: string; untried?: true };

/** The outbox's size now. */
export interface OutboxStats {
  /** Jobs waiting (due or not) and in flight, plus events not fanned out yet. */
  queued: number;
  /** Events held back (see `Outbox.hold`), not counted in `queued` until they are due. */
  held: number;
  /** Dead letters kept. */
  dead: number;
  /** When the oldest waiting job (or event) was created (ms), or null when none waits. */
  oldest: number | null;
}

/**
 * The one durable queue under the webhooks of every protocol (docs/webhooks.md): events go in now (`publish`)
 * or held back until a time under a key (`hold`; `cancel` drops one still held: a departure made moot by a
 * return), are fanned out once per cluster into one job per endpoint that wants them, and jobs are leased to one
 * node at a time (`claim`), settled (`settle`: done, retry at a time, dead) or, when their node died, leased
 * again after `lease` ms. Memory: in the process. Redis: a stream read with a consumer group (events), a sorted
 * set of held events and one of due times (jobs), under one hash tag, so a crash or restart loses nothing and
 * each job has one sender.
 */
export interface Outbox {
  /** Queues events for fan-out. */
  publish(events: readonly OutboxEvent[]): Promise<void>;
  /**
   * Holds `event` back until `due` (ms): then it is queued as `publish` queues events, unless `cancel(key)` came
   * first. Holding again under a key replaces the event held under it.
   */
  hold(key: string, event: OutboxEvent, due: number): Promise<void>;
  /** Drops the event held under `key`: true when one was (it will never be sent), false when none was or it was queued already. */
  cancel(key: string): Promise<boolean>;
  /**
   * Queues the held events due at `now`, then fans out up to `max` queued events: `route` names the endpoints of
   * each (none: the event is dropped). Resolves how many were fanned out.
   */
  fanOut(route: (event: OutboxEvent) => string[], max: number, now: number): Promise<number>;
  /** Leases up to `max` due jobs to this node for `lease` ms. */
  claim(now: number, lease: number, max: number): Promise<OutboxJob[]>;
  /** Settles a leased job. */
  settle(job: OutboxJob, outcome: JobOutcome, now: number): Promise<void>;
  /**
   * Makes the jobs of `endpoint` that were deferred (and not leased or settled since) due at `now`: its receiver
   * answers again, and they need not wait out their back-off. Resolves how many.
   */
  release(endpoint: string, now: number): Promise<number>;
  /** Dead letters, oldest first, at most `limit`. */
  deadLetters(limit: number): Promise<DeadJob[]>;
  /** Queues dead letters again (all, or those ids) as fresh jobs due now; resolves how many. */
  replay(ids: readonly string[] | 'all', now: number): Promise<number>;
  stats(): Promise<OutboxStats>;
}

/** Which lifecycle transitions the engine turns into outbox events (none unless a webhook endpoint wants them). */
export interface LifecycleOptions {
  /** `user.online` / `user.offline`. */
  users: boolean;
  /** `channel.occupied` / `channel.vacated`, for channels starting with one of `channelPrefixes` (empty: every channel). */
  channels: boolean;
  channelPrefixes: readonly string[];
  /** A user's last connection closed: `user.offline` only after this many ms without a new one (a page reload is no pair). */
  offlineDelay: number;
}

/** The `Outbox.hold` key of a user's pending `user.offline` (a new connection cancels it). */
export function offlineKey(user: UserId): string {
  return `user.offline:${user}`;
}

/** A lifecycle event's `data`. */
export type LifecycleData = { user: UserId } | { channel: ChannelName };

/** The serialized event (see OutboxEvent) of a lifecycle transition. */
export function lifecycleEvent(id: string, type: string, time: number, data: LifecycleData): OutboxEvent {
  return JSON.stringify({ id, type, time, data });
}

/** Whether lifecycle tracking covers `channel`. */
export function tracksChannel(o: LifecycleOptions | undefined, channel: ChannelName): boolean {
  return o !== undefined && o.channels && (o.channelPrefixes.length === 0 || o.channelPrefixes.some((p) => channel.startsWith(p)));
}
