import type { ChannelName, StreamPosition } from '@herald/protocol';
import { newEpoch } from '../../util/random-id.js';
import type { EngineMessage, HistoryPage, Recovery } from '../types.js';

/** Smallest frame buffer a channel gets (bytes); it grows by doubling. */
const MIN_ARENA = 256;
/** Dropped entries at the front of a channel's index arrays before they are cut off. */
const MAX_DEAD_ENTRIES = 64;
/** A channel buffer larger than this (bytes) is replaced by a smaller one once a quarter of it or less is in use. */
const SHRINK_ABOVE = 4096;

/**
 * One channel's seq, epoch and kept messages. The messages are held without a JS object per message: their
 * frames back to back in one buffer (`arena`, bytes [start, end)), and per message, oldest first from `head`,
 * where its frame begins and when it was appended. A busy process keeps hundreds of thousands of messages; as
 * objects (an entry, a message, a Buffer view each) they made every garbage collection mark and copy them,
 * which showed as 100-250 ms pauses under load. Seqs are contiguous and end at `seq`.
 */
interface ChannelState {
  epoch: string;
  seq: number;
  arena: Buffer | undefined;
  start: number;
  end: number;
  /** Offset in `arena` of each kept frame (index `head` is the oldest); a frame ends where the next begins, the last at `end`. */
  offsets: number[];
  /** When each kept message was appended (ms), same indexes. */
  times: number[];
  head: number;
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

const kept = (s: ChannelState): number => s.offsets.length - s.head;

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
 *
 * Messages read back (recovery, the history API) are copies: the frames they hand out never change when the
 * channel's buffer is reused.
 */
export class MemoryHistory {
  private readonly channels = new Map<ChannelName, ChannelState>();
  /** Channels holding messages, least recently published first (a publish moves its channel to the end): the order of global eviction. */
  private readonly evictable = new Set<ChannelState>();
  private totalBytes = 0;
  /** Bytes of the channel buffers holding the frames (at least totalBytes). */
  private bufferBytes = 0;

  constructor(
    private readonly limits: MemoryHistoryLimits,
    private readonly now: () => number,
  ) {}

  private state(channel: ChannelName): ChannelState {
    let s = this.channels.get(channel);
    if (!s) {
      s = { epoch: newEpoch(), seq: 0, arena: undefined, start: 0, end: 0, offsets: [], times: [], head: 0, touched: this.now() };
      this.channels.set(channel, s);
    }
    return s;
  }

  private trim(s: ChannelState, now: number): void {
    const cutoff = now - this.limits.ttl;
    let drop = 0;
    const n = kept(s);
    while (drop < n && (s.times[s.head + drop] as number) <= cutoff) drop++;
    this.dropOldest(s, drop);
  }

  /** Drops the `n` oldest entries of `s`. */
  private dropOldest(s: ChannelState, n: number): void {
    if (n <= 0) return;
    if (n >= kept(s)) {
      // Empty: the buffer goes too, so an idle channel holds no bytes.
      this.totalBytes -= s.end - s.start;
      this.bufferBytes -= s.arena?.length ?? 0;
      s.arena = undefined;
      s.start = s.end = s.head = 0;
      s.offsets = [];
      s.times = [];
      this.evictable.delete(s);
      return;
    }
    s.head += n;
    const start = s.offsets[s.head] as number;
    this.totalBytes -= start - s.start;
    s.start = start;
    if (s.head > MAX_DEAD_ENTRIES && s.head * 2 > s.offsets.length) {
      s.offsets.splice(0, s.head);
      s.times.splice(0, s.head);
      s.head = 0;
    }
    // A large buffer that now holds little (expiry, eviction) is replaced by a smaller one.
    if (s.arena && s.arena.length > SHRINK_ABOVE && (s.end - s.start) * 4 < s.arena.length) this.reserve(s, 0, true);
  }

  /**
   * Makes room for `length` more bytes at the end of `s.arena`: moves the kept frames to the front, or to a
   * larger buffer (or, `shrink`, to a smaller one).
   */
  private reserve(s: ChannelState, length: number, shrink = false): Buffer {
    const arena = s.arena;
    if (arena && !shrink && s.end + length <= arena.length) return arena;
    const live = s.end - s.start;
    const need = live + length;
    let target: Buffer;
    if (arena && need <= arena.length && need * 4 > arena.length) {
      arena.copyWithin(0, s.start, s.end);
      target = arena;
    } else {
      // Doubling (amortized O(1) per byte), and shrinking again when most of a large buffer went unused.
      const size = arena ? Math.max(need, Math.min(2 * need, 2 * arena.length), MIN_ARENA) : Math.max(length, MIN_ARENA);
      target = Buffer.allocUnsafeSlow(size);
      if (arena && live > 0) arena.copy(target, 0, s.start, s.end);
    }
    const shift = s.start;
    for (let i = s.head; i < s.offsets.length; i++) s.offsets[i] = (s.offsets[i] as number) - shift;
    this.bufferBytes += target.length - (arena?.length ?? 0);
    s.arena = target;
    s.start = 0;
    s.end = live;
    return target;
  }

  /** Appends a message with the next seq; `build` serializes it once the seq is known. */
  append(channel: ChannelName, build: (seq: number) => Buffer): EngineMessage {
    const now = this.now();
    const s = this.state(channel);
    s.seq += 1;
    s.touched = now;
    const msg: EngineMessage = { channel, seq: s.seq, epoch: s.epoch, frame: build(s.seq) };
    const { size, maxBytes } = this.limits;
    const frame = msg.frame;
    const length = frame.length;
    if (size > 0 && length <= maxBytes) {
      // Make room first (count and bytes of the channel), so the buffer never grows past what is kept.
      let over = 0;
      let bytes = s.end - s.start + length;
      const n = kept(s);
      while (n - over + 1 > size || bytes > maxBytes) {
        const i = s.head + over;
        bytes -= MemoryHistory.frameEnd(s, i) - (s.offsets[i] as number);
        over++;
      }
      this.dropOldest(s, over);
      const arena = this.reserve(s, length);
      frame.copy(arena, s.end);
      s.offsets.push(s.end);
      s.times.push(now);
      s.end += length;
      this.totalBytes += length;
      this.evictable.delete(s);
      this.evictable.add(s);
      if (this.totalBytes > this.limits.totalBytes) this.evict();
    } else {
      // Not kept: recovery across it must fail, so the entries before it are of no use any more.
      this.dropOldest(s, kept(s));
    }
    return msg;
  }

  /**
   * Frees the oldest entries of the least recently published channels until the process is under its byte
   * bound. Only channels holding messages are visited, so a publish never walks channels evicted earlier.
   */
  private evict(): void {
    for (const s of this.evictable) {
      while (kept(s) > 0 && this.totalBytes > this.limits.totalBytes) this.dropOldest(s, 1);
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

  /** Where the frame of entry `i` (an absolute index) ends. */
  private static frameEnd(s: ChannelState, i: number): number {
    return i + 1 < s.offsets.length ? (s.offsets[i + 1] as number) : s.end;
  }

  /** At most `limit` kept messages from entry index `from` (absolute, >= head) on, as copies. */
  private messagesFrom(channel: ChannelName, s: ChannelState, from: number, limit = Infinity): EngineMessage[] {
    const count = Math.min(limit, s.offsets.length - from);
    if (count <= 0 || !s.arena) return [];
    const base = s.offsets[from] as number;
    // One copy for the whole range; each message is a view of it.
    const copy = Buffer.from(s.arena.subarray(base, MemoryHistory.frameEnd(s, from + count - 1)));
    const firstSeq = s.seq - kept(s) + 1 + (from - s.head);
    const out: EngineMessage[] = new Array(count);
    for (let k = 0; k < count; k++) {
      const i = from + k;
      const a = (s.offsets[i] as number) - base;
      const b = MemoryHistory.frameEnd(s, i) - base;
      out[k] = { channel, seq: firstSeq + k, epoch: s.epoch, frame: copy.subarray(a, b) };
    }
    return out;
  }

  /**
   * Messages after `since`, or undefined when the history cannot reach back that far (different epoch,
   * a position ahead of the channel, or entries already evicted or expired). Never a partial list. A
   * position of 0 holds nothing, so it recovers from seq 1 in any epoch.
   */
  private after(channel: ChannelName, s: ChannelState, since: number, epoch: string | undefined, limit = Infinity): EngineMessage[] | undefined {
    if (epoch !== undefined && epoch !== s.epoch && since !== 0) return undefined;
    if (since > s.seq) return undefined;
    if (since === s.seq) return [];
    this.trim(s, this.now());
    const n = kept(s);
    // Entries are contiguous and end at s.seq; recovery needs the one right after `since`.
    if (n === 0 || s.seq - n + 1 > since + 1) return undefined;
    return this.messagesFrom(channel, s, s.head + (since - (s.seq - n + 1) + 1), limit);
  }

  recover(channel: ChannelName, since: number, epoch?: string): Recovery {
    const s = this.state(channel);
    s.touched = this.now();
    const position = { seq: s.seq, epoch: s.epoch };
    const messages = this.after(channel, s, since, epoch);
    return messages ? { position, recovered: true, messages } : { position, recovered: false, messages: [] };
  }

  read(channel: ChannelName, opts: { since?: number; epoch?: string; limit: number }): HistoryPage {
    const s = this.state(channel);
    const position = { seq: s.seq, epoch: s.epoch };
    if (opts.since === undefined) {
      this.trim(s, this.now());
      return { position, complete: true, messages: this.messagesFrom(channel, s, s.head + Math.max(0, kept(s) - opts.limit)) };
    }
    const messages = this.after(channel, s, opts.since, opts.epoch, opts.limit);
    if (!messages) return { position, complete: false, messages: [] };
    return { position, complete: true, messages };
  }

  /**
   * Drops expired entries everywhere and forgets channels for which `keep` (subscribed) is false: at once when
   * nothing was ever published to them, after `metaTtl` of idleness otherwise.
   */
  sweep(keep: (channel: ChannelName) => boolean): void {
    const now = this.now();
    for (const [channel, s] of this.channels) {
      this.trim(s, now);
      if (kept(s) === 0 && (s.seq === 0 || now - s.touched > this.limits.metaTtl) && !keep(channel)) this.channels.delete(channel);
    }
  }

  /** Channels with state, the bytes of history held, and the bytes of the buffers holding them (for metrics and tests). */
  get usage(): { channels: number; bytes: number; buffers: number } {
    return { channels: this.channels.size, bytes: this.totalBytes, buffers: this.bufferBytes };
  }
}
