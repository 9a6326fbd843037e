import { LatencySampler } from './latency.js';

/** Ids that say what an event concerns (for the logs): a connection, its user, a channel, an API request. */
export interface EventIds {
  client?: string | undefined;
  user?: string | null | undefined;
  channel?: string | undefined;
  requestId?: string | undefined;
  /** Anything else worth logging (a close reason, an error code). */
  [key: string]: unknown;
}

/**
 * Told about every event the gateway counts that an operator may need to see in the logs. Set by the
 * operations layer (metrics/observer.ts), which logs each one once, rate limited per reason.
 */
export interface StatsObserver {
  closed(code: number, ids: EventIds): void;
  dropped(reason: string, n: number, ids: EventIds | undefined): void;
  authFailed(reason: string, ids: EventIds): void;
  engineError(operation: string, ids: EventIds): void;
  limited(limit: string, ids: EventIds): void;
}

/** Outcomes of client publishes, as counted (herald_client_publishes_total{outcome}). */
export const CLIENT_PUBLISH_OUTCOMES = [
  'published',
  'duplicate',
  'forbidden',
  'rate_limited',
  'too_large',
  'too_deep',
  'rejected',
  'hook_failed',
  'engine_error',
] as const;
export type ClientPublishOutcome = (typeof CLIENT_PUBLISH_OUTCOMES)[number];

/** Verdicts of the publish hook, as counted (herald_publish_hook_requests_total{result}). */
export const PUBLISH_HOOK_RESULTS = ['accept', 'reject', 'rewrite', 'failed'] as const;

/** The `code` under which closes by clients with a code of the application range (3000-4999) are counted. */
export const PEER_APPLICATION_CLOSE = '3000-4999';

/**
 * Counters kept by the gateway (exported as Prometheus metrics by the operations layer). Plain numbers:
 * incremented on hot paths, so no labels or maps here except the per-reason maps.
 */
export class Stats {
  connectionsOpened = 0;
  connectionsClosed = 0;
  /**
   * Closes by close code; the codes of the application range (3000-4999) that a client closed with are counted
   * together under PEER_APPLICATION_CLOSE: a client picks them, and each would be a metric series for good.
   */
  readonly closedByCode = new Map<number | typeof PEER_APPLICATION_CLOSE, number>();
  published = 0;
  /** Frames handed to connections' queues (one per message per recipient). */
  delivered = 0;
  /** Messages that could not be delivered, by reason. */
  readonly dropped = new Map<string, number>();
  /** Sum of `dropped`. */
  droppedTotal = 0;
  recovered = 0;
  notRecovered = 0;
  /** Messages published from the Redis ingest (stream or pub/sub). */
  ingested = 0;
  /** Ingested messages sent to the dead-letter stream. */
  ingestDeadLetters = 0;
  /** Refused credentials (API key, connection token, subscription), by reason. */
  readonly authFailures = new Map<string, number>();
  /** Requests refused by a limit, by limit. */
  readonly limits = new Map<string, number>();
  /** Engine operations that failed, by operation. */
  readonly engineErrors = new Map<string, number>();
  /** WebSocket connections refused by a connection limit, by limit. */
  readonly refused = new Map<string, number>();
  /** Sockets dropped before they completed a request or became WebSockets (timeouts, caps, client errors), by reason. */
  readonly socketsDropped = new Map<string, number>();
  /** Client publishes (native `publish` frames), by outcome. */
  readonly clientPublishes = new Map<string, number>();
  /** Answers of the publish hook, by verdict (accept, reject, rewrite, failed). */
  readonly publishHook = new Map<string, number>();
  /** Samples publish-to-flush latency (a few publishes, never every one). */
  readonly latency = new LatencySampler();
  /** Logs what is counted; undefined when nobody listens (a bare hub in a unit test). */
  observer: StatsObserver | undefined;

  /** Counts `n` messages that could not be delivered; `ids` say which (for the log line). */
  drop(reason: string, n = 1, ids?: EventIds): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + n);
    this.droppedTotal += n;
    this.observer?.dropped(reason, n, ids);
  }

  /** Counts a closed connection; `ids` (client, user, reason) are for the log line. */
  closed(code: number, ids: EventIds = {}): void {
    this.connectionsClosed += 1;
    const key = ids['by'] === 'peer' && code >= 3000 ? PEER_APPLICATION_CLOSE : code;
    this.closedByCode.set(key, (this.closedByCode.get(key) ?? 0) + 1);
    this.observer?.closed(code, ids);
  }

  /** Counts refused credentials. */
  authFailure(reason: string, ids: EventIds = {}): void {
    this.authFailures.set(reason, (this.authFailures.get(reason) ?? 0) + 1);
    this.observer?.authFailed(reason, ids);
  }

  /** Counts a connection refused by a limit (`max_connections`, `max_connections_per_ip`, `connect_rate`). */
  refuse(reason: string): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }

  /** Counts a socket dropped before it completed a request or an upgrade. */
  socketDropped(reason: string): void {
    this.socketsDropped.set(reason, (this.socketsDropped.get(reason) ?? 0) + 1);
  }

  /** Counts a request refused by a limit (not a message: see `drop` for those), by which limit. */
  limited(limit: string, ids: EventIds = {}): void {
    this.limits.set(limit, (this.limits.get(limit) ?? 0) + 1);
    this.observer?.limited(limit, ids);
  }

  /** Counts a failed engine operation (the engine was unreachable or answered an error). */
  engineError(operation: string, ids: EventIds = {}): void {
    this.engineErrors.set(operation, (this.engineErrors.get(operation) ?? 0) + 1);
    this.observer?.engineError(operation, ids);
  }
}
