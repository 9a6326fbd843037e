import type { ChannelName, StreamPosition } from '@herald/protocol';
import { newEpoch } from '../../util/random-id.js';
import type { EngineMessage, HistoryPage, Recovery } from '../types.js';

interface Entry {
  msg: EngineMessage;
  /** When it was appended (ms). */
  at: number;
}

interface ChannelState {
  epoch: string;
  seq: number;
  entries: Entry[];
  /** Bytes of the frames in `entries`. */
  bytes: number;
  /** Last publish or read (ms); decides when an idle channel's seq and epoch may be forgotten. */
  touched: number;
}

/** Limits of the in-memory history. */
export interface MemoryHistoryLimits {
  /** Messages kept per channel. */
  size: number;
  /** How long a message stays in history (ms). */
  ttl: number;
  /** How long an idle channel's seq and epoch are remembered after its last publish or read (ms). */
  metaTtl: number;
  /** Bytes of frames kept per channel; a message larger than this is not kept at all. */
  maxBytes: number;
  /** Bytes of frames kept by the whole process; past it the least recently published channels lose their oldest entries. */
  totalBytes: number;
}

/**
 * Per-channel seq, epoch and a bounded, expiring message log: bounded by count and bytes per channel and by
 * bytes for the process. Synchronous: the memory engine wraps it.
 *
 * A channel's state (a fresh epoch) is made on first use. State nothing was published to is kept only while
 * the channel has subscribers and forgotten at the next sweep after the last one left (`release`, `sweep`), so
 * subscribers alone leave nothing behind; a position of 0 holds nothing, so a client at 0 recovers in any epoch.
 * A published channel's epoch changes only when its state is forgotten (idle past `metaTtl` with no
 * subscriber), so a position stays valid as long as anyone can hold it. History is never partial: a message that
 * is not kept (too large, evicted) makes recovery across it answer `recovered: false`.
 */
export class MemoryHistory {
  /** Least recently published first (a publish moves its channel to the end): the order of global eviction. */
  private readonly channels = new Map<ChannelName, ChannelState>();
  private totalBytes = 0;

  constructor(
    private readonly limits: MemoryHistoryLimits,
    private readonly now: () => number,
  ) {}

  private state(channel: ChannelName): ChannelState {
    let s = this.channels.get(channel);
    if (!s) {
      s = { epoch: newEpoch(), seq: 0, entries: [], bytes: 0, touched: this.now() };
      this.channels.set(channel, s);
    }
    return s;
  }

  private trim(s: ChannelState, now: number): void {
    const cutoff = now - this.limits.ttl;
    let drop = 0;
    while (drop < s.entries.length && (s.entries[drop] as Entry).at <= cutoff) drop++;
    this.dropOldest(s, drop);
  }

  /** Drops the `n` oldest entries of `s`. */
  private dropOldest(s: ChannelState, n: number): void {
    if (n <= 0) return;
    let bytes = 0;
    for (let i = 0; i < n; i++) bytes += (s.entries[i] as Entry).msg.frame.length;
    s.entries.splice(0, n);
    s.bytes -= bytes;
    this.totalBytes -= bytes;
  }

  /** Appends a message with the next seq; `build` serializes it once the seq is known. */
  append(channel: ChannelName, build: (seq: number) => Buffer): EngineMessage {
    const now = this.now();
    // Moved to the end of the map: the least recently published channels are first (global eviction order).
    const s = this.state(channel);
    this.channels.delete(channel);
    this.channels.set(channel, s);
    s.seq += 1;
    s.touched = now;
    const msg: EngineMessage = { channel, seq: s.seq, epoch: s.epoch, frame: build(s.seq) };
    const { size, maxBytes } = this.limits;
    const length = msg.frame.length;
    if (size > 0 && length <= maxBytes) {
      s.entries.push({ msg, at: now });
      s.bytes += length;
      this.totalBytes += length;
      let over = 0;
      let bytes = s.bytes;
      while (s.entries.length - over > size || bytes > maxBytes) bytes -= (s.entries[over++] as Entry).msg.frame.length;
      this.dropOldest(s, over);
      if (this.totalBytes > this.limits.totalBytes) this.evict();
    } else {
      // Not kept: recovery across it must fail, so the entries before it are of no use any more.
      this.dropOldest(s, s.entries.length);
    }
    return msg;
  }

  /** Frees the oldest entries of the least recently published channels until the process is under its byte bound. */
  private evict(): void {
    for (const s of this.channels.values()) {
      while (s.entries.length > 0 && this.totalBytes > this.limits.totalBytes) this.dropOldest(s, 1);
      if (this.totalBytes <= this.limits.totalBytes) return;
    }
  }

  position(channel: ChannelName): StreamPosition {
    const s = this.state(channel);
    s.touched = this.now();
    return { seq: s.seq, epoch: s.epoch };
  }

  /** The channel's last local subscriber left: state nothing was published to is forgotten now. */
  release(channel: ChannelName): void {
    if (this.channels.get(channel)?.seq === 0) this.channels.delete(channel);
  }

  /**
   * Messages after `since`, or undefined when the history cannot reach back that far (different epoch,
   * a position ahead of the channel, or entries already evicted or expired). Never a partial list. A
   * position of 0 holds nothing, so it recovers from seq 1 in any epoch.
   */
  private after(s: ChannelState, since: number, epoch: string | undefined): EngineMessage[] | undefined {
    if (epoch !== undefined && epoch !== s.epoch && since !== 0) return undefined;
    if (since > s.seq) return undefined;
    if (since === s.seq) return [];
    this.trim(s, this.now());
    const first = s.entries[0];
    // Entries are contiguous and end at s.seq; recovery needs the one right after `since`.
    if (!first || first.msg.seq > since + 1) return undefined;
    return s.entries.slice(since - first.msg.seq + 1).map((e) => e.msg);
  }

  recover(channel: ChannelName, since: number, epoch?: string): Recovery {
    const s = this.state(channel);
    s.touched = this.now();
    const position = { seq: s.seq, epoch: s.epoch };
    const messages = this.after(s, since, epoch);
    return messages ? { position, recovered: true, messages } : { position, recovered: false, messages: [] };
  }

  read(channel: ChannelName, opts: { since?: number; epoch?: string; limit: number }): HistoryPage {
    const s = this.state(channel);
    const position = { seq: s.seq, epoch: s.epoch };
    if (opts.since === undefined) {
      this.trim(s, this.now());
      const msgs = s.entries.slice(Math.max(0, s.entries.length - opts.limit)).map((e) => e.msg);
      return { position, complete: true, messages: msgs };
    }
    const messages = this.after(s, opts.since, opts.epoch);
    if (!messages) return { position, complete: false, messages: [] };
    return { position, complete: true, messages: messages.slice(0, opts.limit) };
  }

  /**
   * Drops expired entries everywhere and forgets channels for which `keep` (subscribed) is false: at once when
   * nothing was ever published to them, after `metaTtl` of idleness otherwise.
   */
  sweep(keep: (channel: ChannelName) => boolean): void {
    const now = this.now();
    for (const [channel, s] of this.channels) {
      this.trim(s, now);
      if (s.entries.length === 0 && (s.seq === 0 || now - s.touched > this.limits.metaTtl) && !keep(channel)) this.channels.delete(channel);
    }
  }

  /** Channels with state, and the bytes of history held (for metrics and tests). */
  get usage(): { channels: number; bytes: number } {
    return { channels: this.channels.size, bytes: this.totalBytes };
  }
}
