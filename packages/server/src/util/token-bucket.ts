/**
 * A token bucket refilled continuously from the time the caller passes in: no timer, a few arithmetic
 * operations per call. The one rate limiter of the gateway (client frames, log lines, latency samples, ...).
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  /**
   * @param rate tokens added per second
   * @param burst bucket capacity (the largest burst allowed)
   * @param now current time in milliseconds
   */
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  private refill(now: number): void {
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
      this.last = now;
    }
  }

  /** Takes one token; false when the bucket is empty. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether the bucket is full again (nothing was taken for a while): its owner may forget it. */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }

  /** Milliseconds until a token is available (0 when one is). */
  wait(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.rate);
  }
}
