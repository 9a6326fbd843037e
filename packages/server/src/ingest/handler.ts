import type { ChannelNamespaces } from '../delivery/publish-request.js';
import type { Publisher } from '../delivery/publisher.js';
import type { Stats } from '../delivery/stats.js';
import { EngineUnavailableError, HeraldError } from '../util/errors.js';
import { parseIngestMessage } from './parse.js';

/** Why an ingested message (or one of its items) could not be published. */
export interface IngestError {
  code: string;
  message: string;
  field?: string | undefined;
}

/**
 * What became of one ingested message: published (`done`), impossible to publish (`dead`, with why: it goes
 * to the dead-letter stream), or not published for now (`retry`: the engine was unavailable).
 */
export type IngestOutcome = { kind: 'done' } | { kind: 'dead'; errors: IngestError[] } | { kind: 'retry'; error: unknown };

/** Where an ingested message came from: the durable stream (its entry id) or pub/sub. */
export type IngestSource = 'stream' | 'pubsub';

/** Publishes one ingested message; never throws. */
export type IngestHandler = (msg: string, source: IngestSource, sourceId: string) => Promise<IngestOutcome>;

/** Counts a message that went to the dead-letter stream (the source calls it when it wrote one). */
export function countDeadLetter(stats: Stats, reason: IngestError): void {
  stats.drop(`ingest_${reason.code}`);
  stats.ingestDeadLetters += 1;
}

/**
 * The source-independent half of the ingest: parse the JSON exactly as `POST /api/publish` parses its body,
 * publish through the same Publisher, and decide what cannot be published. Stream entries give their items
 * the entry id as idempotency key (`ingest:<entry id>:<index>`) unless they carry an id, so an entry that is
 * claimed again after its node died is not published twice.
 */
export function createIngestHandler(deps: {
  publisher: Publisher;
  stats: Stats;
  maxItems: number;
  /** Largest message, in bytes: the HTTP API's `maxBodySize`. */
  maxBytes?: number;
  namespaces?: ChannelNamespaces;
}): IngestHandler {
  const { publisher, stats } = deps;
  const dead = (errors: IngestError[]): IngestOutcome => ({ kind: 'dead', errors });
  return async (msg, source, sourceId) => {
    const parsed = parseIngestMessage(msg, deps.maxItems, source === 'stream' ? `ingest:${sourceId}` : undefined, deps.namespaces, deps.maxBytes);
    if (!parsed.ok) return dead([parsed.error]);
    try {
      const results = await publisher.publishAll(parsed.items);
      stats.ingested += 1;
      // A push to a connection that does not exist: nobody can be told but the dead-letter stream.
      const missing = results.flatMap((r) => {
        const e = r['error'] as { code: string; message: string } | undefined;
        return e ? [{ ...e, field: 'client' }] : [];
      });
      return missing.length > 0 ? dead(missing) : { kind: 'done' };
    } catch (err) {
      if (err instanceof HeraldError && !(err instanceof EngineUnavailableError) && err.status < 500) {
        return dead([{ code: err.code, message: err.message, field: err.field }]);
      }
      return { kind: 'retry', error: err };
    }
  };
}
