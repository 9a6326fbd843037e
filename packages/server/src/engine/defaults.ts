/**
 * The engines' defaults, in one place: the memory engine, the Redis engine, the gateway options and the
 * CLI read them from here, and `lua/publish.lua` documents the same numbers for callers that leave an
 * argument empty (a test checks that the script agrees).
 */
export const ENGINE_DEFAULTS = {
  /** Messages kept per channel for recovery. */
  historySize: 1000,
  /** How long a message stays in history (ms). */
  historyTtl: 600_000,
  /**
   * How long a channel's seq and epoch outlive its last publish or read (ms), at least `historyTtl`: a
   * client that comes back within it with a position and nothing missed is told `recovered: true`.
   */
  historyMetaTtl: 3_600_000,
  /** Bytes of message frames kept in one channel's history; a larger message is published but not kept. */
  historyMaxBytes: 1_048_576,
  /** Memory engine: bytes of history kept by the whole process (the least recently published channels give way first). */
  historyTotalBytes: 268_435_456,
  /**
   * How long the seq and epoch of a channel nothing was published to outlive its last read (ms): subscribers
   * alone leave nothing lasting behind (nodes keep extending it while they have subscribers).
   */
  emptyMetaTtl: 300_000,
  /** Idempotency window of publish ids (ms). */
  idempotencyTtl: 300_000,
  /**
   * Memory engine: most publish ids remembered at once, about 40 bytes each: 10 000 publishes a second with ids
   * for the whole 5-minute window. Past it the oldest id is forgotten early (counted).
   */
  idempotencyMaxKeys: 3_000_000,
  /**
   * Memory engine: most delivery receipts kept at once, about 180 bytes each: a receipt a second for an inbox
   * message's default week and room to spare. Past it the oldest receipt goes before its message's expiry (counted).
   */
  inboxMaxReceipts: 1_000_000,
  /**
   * Memory engine: bytes every user's inbox messages may take together (frame plus INBOX_MESSAGE_OVERHEAD each),
   * as the history's default: about a million notifications of a few hundred bytes. Past it an inbox publish is
   * refused (`inbox_storage_full`).
   */
  inboxTotalBytes: 256 * 1024 * 1024,
  /** Redis engine: a node that stops without cleaning up disappears from presence within this many ms. */
  presenceTtl: 30_000,
  /** Redis engine: most ms a command may take before the call fails (a hung connection). */
  commandTimeout: 5000,
  /** Redis engine: key prefix. */
  redisPrefix: 'herald',
} as const;

/** The meta TTL that goes with `historyTtl` when none is configured: never shorter than the history. */
export function defaultMetaTtl(historyTtl: number): number {
  return Math.max(historyTtl, ENGINE_DEFAULTS.historyMetaTtl);
}
