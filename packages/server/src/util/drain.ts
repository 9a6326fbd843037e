/**
 * Counts work in progress (open sockets, requests in flight) and tells waiters when none is left: what a
 * graceful shutdown waits for. `size` may be read from elsewhere (a transport's own socket set) through
 * `check()`.
 */
export class Drain {
  private waiters: Array<() => void> = [];
  private count = 0;

  /** @param outside more work counted elsewhere (a socket set); the drain is empty when both are 0 */
  constructor(private readonly outside: () => number = () => 0) {}

  /** One more piece of work started. */
  begin(): void {
    this.count += 1;
  }

  /** One piece of work ended; wakes the waiters when it was the last. */
  end(): void {
    this.count -= 1;
    this.check();
  }

  /** Work in progress. */
  get size(): number {
    return this.count + this.outside();
  }

  /** Wakes the waiters if nothing is left (call after the outside count went down). */
  check(): void {
    if (this.size > 0 || this.waiters.length === 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }

  /** Resolves once nothing is in progress. */
  drained(): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.check();
    });
  }
}
