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
  /** Last publish or read (ms); decides when an idle channel's seq and epoch may be forgotten. */
  touched: number;
}

/** Limits of the in-memory history. */
export interface MemoryHistoryLimits {
  /** Messages kept per channel. */
  size: number;
  /** How long a message stays in history (ms). */
  ttl: number;
  /** How long an idle channel's seq and epoch are remembered after its last message expired (ms). */
  metaTtl: number;
}

/**
 * Per-channel seq, epoch and a bounded, expiring message log. Synchronous: the memory engine wraps it.
 * A channel's state is created on first use with a fresh epoch; the epoch changes only when the state is
 * forgotten (idle past `metaTtl` with no subscriber), so a position stays valid as long as anyone can hold it.
 */
export class MemoryHistory {
  private readonly channels = new Map<ChannelName, ChannelState>();

  constructor(
    private readonly limits: MemoryHistoryLimits,
    private readonly now: () => number,
  ) {}

  private state(channel: ChannelName): ChannelState {
    let s = this.channels.get(channel);
    if (!s) {
      s = { epoch: newEpoch(), seq: 0, entries: [], touched: this.now() };
      this.channels.set(channel, s);
    }
    return s;
  }

  private trim(s: ChannelState, now: number): void {
    const cutoff = now - this.limits.ttl;
    let drop = 0;
    while (drop < s.entries.length && (s.entries[drop] as Entry).at <= cutoff) drop++;
    if (drop > 0) s.entries.splice(0, drop);
  }

  /** Appends a message with the next seq; `build` serializes it once the seq is known. */
  append(channel: ChannelName, build: (seq: number) => Buffer): EngineMessage {
    const now = this.now();
    const s = this.state(channel);
    s.seq += 1;
    s.touched = now;
    const msg: EngineMessage = { channel, seq: s.seq, epoch: s.epoch, frame: build(s.seq) };
    if (this.limits.size > 0) {
      s.entries.push({ msg, at: now });
      if (s.entries.length > this.limits.size) s.entries.splice(0, s.entries.length - this.limits.size);
    }
    return msg;
  }

  position(channel: ChannelName): StreamPosition {
    const s = this.state(channel);
    s.touched = this.now();
    return { seq: s.seq, epoch: s.epoch };
  }

  /**
   * Messages after `since`, or undefined when the history cannot reach back that far (different epoch,
   * a position ahead of the channel, or entries already evicted or expired). Never a partial list.
   */
  private after(s: ChannelState, since: number, epoch: string | undefined): EngineMessage[] | undefined {
    if (epoch !== undefined && epoch !== s.epoch) return undefined;
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

  /** Drops expired entries everywhere and forgets idle channels for which `keep` is false. */
  sweep(keep: (channel: ChannelName) => boolean): void {
    const now = this.now();
    for (const [channel, s] of this.channels) {
      this.trim(s, now);
      if (s.entries.length === 0 && now - s.touched > this.limits.metaTtl && !keep(channel)) this.channels.delete(channel);
    }
  }

  /** Number of channels with state (for tests and stats). */
  get size(): number {
    return this.channels.size;
  }
}
