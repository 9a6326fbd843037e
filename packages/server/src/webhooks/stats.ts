/** Counters of the webhook dispatcher (exported as herald_webhooks_*), and the queue as last measured. */
export class WebhookStats {
  /** Each endpoint's format (the `format` label beside `endpoint`). */
  readonly formats = new Map<string, string>();
  /** Requests answered 2xx, by endpoint. */
  readonly sent = new Map<string, number>();
  /** Attempts that failed (an error status, a timeout, no connection), by endpoint. */
  readonly failed = new Map<string, number>();
  /** Jobs scheduled for another attempt, by endpoint. */
  readonly retried = new Map<string, number>();
  /** Jobs given up on (dead-lettered), by endpoint. */
  readonly dead = new Map<string, number>();
  /** Jobs put off without a request because their endpoint's circuit was open, by endpoint. */
  readonly deferred = new Map<string, number>();
  /** Endpoints whose circuit is open on this node (see Circuits). */
  readonly open = new Set<string>();
  /** Jobs and events waiting, events held back, dead letters kept, and the age of the oldest waiting one (s), as last measured. */
  queued = 0;
  held = 0;
  deadLetters = 0;
  queueAge = 0;

  count(map: Map<string, number>, endpoint: string, n = 1): void {
    map.set(endpoint, (map.get(endpoint) ?? 0) + n);
  }
}
