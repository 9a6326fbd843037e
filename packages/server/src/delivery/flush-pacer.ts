import { performance } from 'node:perf_hooks';

/** A flush that takes this long (ms) or more makes the next one wait (see FlushPacer). */
export const BUSY_FLUSH_MS = 1;
/** The longest a flush waits (ms): the most latency the write coalescing adds. */
export const MAX_FLUSH_DELAY_MS = 5;

/** Where the pacer reads the time (ms, high resolution) and schedules the flush; injected by tests. */
export interface PacerTimers {
  now(): number;
  immediate(fn: () => void): void;
  after(fn: () => void, ms: number): void;
}

const realTimers: PacerTimers = {
  now: () => performance.now(),
  immediate: (fn) => void setImmediate(fn),
  after: (fn, ms) => void setTimeout(fn, ms),
};

/**
 * Decides when the hub's next flush runs. A flush normally runs at the end of the event-loop turn that
 * queued something (`setImmediate`). After a flush that took T >= BUSY_FLUSH_MS (a large fan-out), the next
 * one starts no sooner than min(T, MAX_FLUSH_DELAY_MS) after it ended, so that messages arriving one by one
 * (the Redis engine hands them over one per pub/sub read, each in its own turn) share one write per
 * connection: the hub then spends at most about half its time flushing, and under load the number of writes
 * stops growing with the number of messages. A message that arrives once that gap has passed (a quiet
 * channel) is flushed at once: the wait is paid only while flushes follow each other closely. One timer per
 * flush, never one per connection or per message.
 */
export class FlushPacer {
  private scheduled = false;
  /** When the last flush ended, and the gap the next one keeps after it (0: none). */
  private lastEnd = 0;
  private gap = 0;

  constructor(
    private readonly run: () => void,
    private readonly timers: PacerTimers = realTimers,
  ) {}

  /** Something was queued: makes sure a flush is scheduled. */
  request(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = this.gap > 0 ? this.lastEnd + this.gap - this.timers.now() : 0;
    if (wait > 0) this.timers.after(this.flush, wait);
    else this.timers.immediate(this.flush);
  }

  /**
   * Runs the requested flush now, inside the current turn, unless the pacer is holding flushes apart (the last
   * one was busy). True when it ran; the flush already scheduled then finds nothing to do.
   */
  flushNow(): boolean {
    if (!this.scheduled || this.gap > 0) return false;
    this.flush();
    return true;
  }

  private readonly flush = (): void => {
    // Run already (flushNow) since it was scheduled.
    if (!this.scheduled) return;
    this.scheduled = false;
    const started = this.timers.now();
    this.run();
    const ended = this.timers.now();
    const took = ended - started;
    this.lastEnd = ended;
    this.gap = took >= BUSY_FLUSH_MS ? Math.min(took, MAX_FLUSH_DELAY_MS) : 0;
  };
}
