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
  /** Idempotency window of publish ids (ms). */
  idempotencyTtl: 300_000,
  /** Most publish ids the memory engine remembers at once (oldest forgotten first). */
  idempotencyMaxKeys: 100_000,
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
