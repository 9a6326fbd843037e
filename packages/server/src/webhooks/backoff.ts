/** Delay before the first retry (ms). */
export const FIRST_RETRY = 1000;

/**
 * The wait before retrying after failed attempt `attempt` (0 for the first): exponential from 1 s, capped at
 * `max` ms (the format's `maxRetryDelay`), with half of it random ("equal jitter") so that endpoints coming back
 * are not hit by every retry at once, yet never retried right away. `random` is in [0, 1).
 */
export function retryDelay(attempt: number, max: number, random: () => number): number {
  const window = Math.min(max, FIRST_RETRY * 2 ** Math.min(attempt, 30));
  return Math.round(window / 2 + random() * (window / 2));
}
