import { performance } from 'node:perf_hooks';
import { TokenBucket } from '../util/token-bucket.js';

/** Most publishes in flight being timed at once. */
const MAX_PENDING = 256;
/** Samples allowed in a burst, and per second sustained: timing every publish would cost a timer each. */
const SAMPLE_BURST = 100;
const SAMPLES_PER_SECOND = 100;
/** A sampled publish whose message never came back (its subscriber left) is forgotten after this long. */
const STALE_MS = 30_000;

/**
 * Publish-to-delivery latency, sampled cheaply: the publisher marks a publish to a channel that has local
 * subscribers (at most one in flight per channel, at most 100 a second); when the engine hands this node
 * a message of that channel, the mark is taken and the time is observed once the hub's next flush has
 * written it to the sockets. Everything else pays one `size` check per message.
 */
export class LatencySampler {
  private readonly pending = new Map<string, number>();
  /** Start times of sampled publishes delivered to the hub and not yet written (see `flushed`). */
  private unwritten: number[] = [];
  private readonly samples = new TokenBucket(SAMPLES_PER_SECOND, SAMPLE_BURST, performance.now());
  /** Receives each sample in seconds (set by the metrics layer). */
  observe: ((seconds: number) => void) | undefined;

  /** Number of publishes being timed. */
  get size(): number {
    return this.pending.size;
  }

  /** A publish to `channel` was accepted now (call only when the channel has local subscribers). */
  begin(channel: string): void {
    if (this.observe === undefined || this.pending.size >= MAX_PENDING || this.pending.has(channel)) return;
    const now = performance.now();
    if (this.samples.take(now)) this.pending.set(channel, now);
  }

  /** The engine handed this node a message of `channel` (after the hub queued it); observed at the next flush. */
  delivered(channel: string): void {
    const started = this.pending.get(channel);
    if (started === undefined) return;
    this.pending.delete(channel);
    this.unwritten.push(started);
  }

  /**
   * The hub has written everything it had queued: observes the publishes delivered since its last flush.
   * Called by the hub after each flush, which may come a few ms after the delivery (see FlushPacer).
   */
  flushed(): void {
    if (this.unwritten.length === 0) return;
    const now = performance.now();
    for (const started of this.unwritten) this.observe?.((now - started) / 1000);
    this.unwritten = [];
  }

  /** Stops timing a publish to `channel` that delivers nothing (an idempotent repeat). */
  cancel(channel: string): void {
    this.pending.delete(channel);
  }

  /** Forgets publishes whose message never arrived (run from a periodic timer). */
  sweep(): void {
    const limit = performance.now() - STALE_MS;
    for (const [channel, started] of this.pending) if (started < limit) this.pending.delete(channel);
    // A delivery that queued nothing (its subscribers left) is never flushed.
    if (this.unwritten.length > 0 && (this.unwritten[0] as number) < limit) this.unwritten = [];
  }
}
