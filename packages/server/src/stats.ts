/**
 * Counters kept by the gateway (exported as Prometheus metrics by the operations layer). Plain numbers:
 * incremented on hot paths, so no labels or maps here except the per-reason maps.
 */
export class Stats {
  connectionsOpened = 0;
  connectionsClosed = 0;
  /** Closes by close code. */
  readonly closedByCode = new Map<number, number>();
  published = 0;
  /** Frames handed to connections' queues (one per message per recipient). */
  delivered = 0;
  /** Messages that could not be delivered, by reason. */
  readonly dropped = new Map<string, number>();
  recovered = 0;
  notRecovered = 0;
  /** Messages published from the Redis ingest (stream or pub/sub). */
  ingested = 0;
  /** Ingested messages sent to the dead-letter stream. */
  ingestDeadLetters = 0;

  drop(reason: string, n = 1): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + n);
  }

  closed(code: number): void {
    this.connectionsClosed += 1;
    this.closedByCode.set(code, (this.closedByCode.get(code) ?? 0) + 1);
  }
}
