import type { Logger } from './logger.js';
import { TokenBucket } from './token-bucket.js';

/** Log levels the limiter writes at. */
export type LimitedLevel = 'debug' | 'info' | 'warn' | 'error';

/** How many lines of one kind may be written. */
export interface LogLimits {
  /** Lines of one kind written in a burst. @default 20 */
  burst?: number;
  /** Lines of one kind per second, sustained. @default 5 */
  perSecond?: number;
}

interface Kind {
  bucket: TokenBucket;
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
  private readonly kinds = new Map<string, Kind>();
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

  /** Whether lines at `level` are written at all (callers skip building their fields when not). */
  enabled(level: LimitedLevel): boolean {
    return this.logger.isLevelEnabled(level);
  }

  /** Writes `fields` and `msg` at `level`, unless lines of `kind` are over their rate. Returns whether it did. */
  log(level: LimitedLevel, kind: string, fields: Record<string, unknown>, msg: string): boolean {
    if (!this.logger.isLevelEnabled(level)) return false;
    const now = this.now();
    let k = this.kinds.get(kind);
    if (!k) {
      k = { bucket: new TokenBucket(this.perSecond, this.burst, now), suppressed: 0, level };
      this.kinds.set(kind, k);
    }
    if (!k.bucket.take(now)) {
      k.suppressed += 1;
      k.level = level;
      return false;
    }
    this.logger[level](fields, msg);
    return true;
  }

  /** Writes one line per kind whose lines were suppressed since the last flush; forgets full, idle buckets. */
  flush(): void {
    const now = this.now();
    for (const [kind, k] of this.kinds) {
      if (k.suppressed > 0) {
        this.logger[k.level]({ kind, suppressed: k.suppressed }, `${k.suppressed} similar log lines suppressed`);
        k.suppressed = 0;
      } else if (k.bucket.full(now)) {
        this.kinds.delete(kind);
      }
    }
  }
}
