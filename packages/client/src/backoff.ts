/** Parameters of {@link fullJitterBackoff}. */
export interface BackoffOptions {
  /** Base delay of the first retry, in ms. */
  minDelay: number;
  /** Cap of the delay window, in ms. */
  maxDelay: number;
  /** Uniform random number in [0, 1). */
  random: () => number;
}

/**
 * Capped exponential backoff with full jitter: retry `attempt` (0 for the first) waits a uniformly random
 * delay in `[0, min(maxDelay, minDelay * 2^attempt))`. Full jitter spreads the reconnects of many clients
 * dropped at once (a gateway restart) over the whole window instead of bunching them at its edges.
 * See https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/.
 */
export function fullJitterBackoff({ minDelay, maxDelay, random }: BackoffOptions): (attempt: number) => number {
  return (attempt) => {
    // 2^31 already exceeds any sensible cap; clamping the exponent keeps the result finite.
    const window = Math.min(maxDelay, minDelay * 2 ** Math.min(Math.max(attempt, 0), 31));
    return Math.floor(random() * window);
  };
}
