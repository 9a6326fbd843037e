import type { Logger } from '../logger.js';

/** Log levels the limiter writes at. */
export type LimitedLevel = 'debug' | 'info' | 'warn' | 'error';

/** How many lines of one kind may be written. */
export interface LogLimits {
  /** Lines of one kind written in a burst. @default 20 */
  burst?: number;
  /** Lines of one kind per second, sustained. @default 5 */
  perSecond?: number;
}

interface Bucket {
  tokens: number;
  updated: number;
  suppressed: number;
  level: LimitedLevel;
}

/**
 * A token bucket per kind of log line (a close code, a drop reason, an auth failure), so an event that
 * happens a hundred thousand times a second (a mass disconnect, a flood of bad publishes) costs a few lines
 * instead of flooding the log: past the burst, lines of that kind are counted instead of written, and
 * `flush()` (every second, from the gateway's timer) writes one "N similar log lines suppressed" line per kind.
 */
export class LogLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly burst: number;
  private readonly perSecond: number;

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number,
    limits: LogLimits = {},
  ) {
    this.burst = limits.burst ?? 20;
    this.perSecond = limits.perSecond ?? 5;
  }

  /** Writes `fields` and `msg` at `level`, unless lines of `kind` are over their rate. Returns whether it did. */
  log(level: LimitedLevel, kind: string, fields: Record<string, unknown>, msg: string): boolean {
    if (!this.logger.isLevelEnabled(level)) return false;
    const now = this.now();
    let b = this.buckets.get(kind);
    if (!b) {
      b = { tokens: this.burst, updated: now, suppressed: 0, level };
      this.buckets.set(kind, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + (Math.max(0, now - b.updated) * this.perSecond) / 1000);
    b.updated = now;
    if (b.tokens < 1) {
      b.suppressed += 1;
      b.level = level;
      return false;
    }
    b.tokens -= 1;
    this.logger[level](fields, msg);
    return true;
  }

  /** Writes one line per kind whose lines were suppressed since the last flush; forgets full, idle buckets. */
  flush(): void {
    const now = this.now();
    for (const [kind, b] of this.buckets) {
      if (b.suppressed > 0) {
        this.logger[b.level]({ kind, suppressed: b.suppressed }, `${b.suppressed} similar log lines suppressed`);
        b.suppressed = 0;
      } else if (b.tokens + (Math.max(0, now - b.updated) * this.perSecond) / 1000 >= this.burst) {
        this.buckets.delete(kind);
      }
    }
  }
}
