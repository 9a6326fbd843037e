import type { ChannelName, ClientId, StreamPosition } from '@herald/protocol';
import type { OneOrSet } from '../../util/one-or-set.js';
import { newEpoch } from '../../util/random-id.js';
import type { EngineMessage, HistoryPage, Recovery } from '../types.js';

/** Smallest chunk a channel gets (bytes). */
const MIN_CHUNK = 256;
/** A channel with one chunk smaller than this moves its frames to a larger one instead of adding a chunk. */
const GROW_BY_COPY = 4096;
/** Largest chunk size a channel grows to; a frame larger than this gets a chunk of its own size. */
const MAX_CHUNK = 16_384;
/** Dropped entries at the front of a channel's index arrays before they are cut off. */
const MAX_DEAD_ENTRIES = 64;
/** Most bytes of emptied chunks kept for reuse (see ChunkPool). */
const POOL_MAX_BYTES = 16 * 1024 * 1024;

/**
 * A piece of a channel's frame log: `buf` holds the frames from virtual offset `base` on, `fill` bytes of it in
 * use. Frames never span chunks; a channel's chunks follow each other without a gap in its virtual byte space (a
 * chunk starts where the channel's log ended when it was added).
 */
interface Chunk {
  buf: Buffer;
  base: number;
  fill: number;
}

/**
 * Everything the memory engine keeps about one channel, in one record so that a publish finds it with one lookup:
 * its seq, epoch and kept messages, whether this process is subscribed, and its presence (the connections that
 * joined it; on a `user:` channel, the user's connections). A publish used to look the channel up in five maps (its
 * history, the subscribed set, the eviction order, the members, the users); a subscribed user channel held an entry
 * in four of them.
 *
 * The messages are held without a JS object per message: their frames back to back in a few chunks, and per
 * message, oldest first from `head`, where its frame begins (a virtual offset: the channel's log as if it were one
 * buffer) and when it was appended. A busy process keeps hundreds of thousands of messages; as objects (an entry, a
 * message, a Buffer view each) they made every garbage collection mark and copy them, which showed as 100-250 ms
 * pauses under load. Seqs are contiguous and end at `seq`.
 */
export interface ChannelRecord {
  epoch: string;
  seq: number;
  /** The chunks holding the kept frames, oldest first (empty when nothing is kept). */
  chunks: Chunk[];
  /** Virtual offsets: the oldest kept frame begins at `start`, the log ends at `end`. */
  start: number;
  end: number;
  /** Virtual offset of each kept frame (index `head` is the oldest); a frame ends where the next begins, the last at `end`. */
  offsets: number[];
  /** When each kept message was appended (ms), same indexes. */
  times: number[];
  head: number;
  /** Last publish or read (ms); decides when an idle channel's seq and epoch may be forgotten. */
  touched: number;
  /** This process has subscribed to the channel (the engine's `subscribe`, until its `unsubscribe`). */
  subscribed: boolean;
  /** Presence: the connections that joined the channel (one client id, a Set only from the second on). */
  members: OneOrSet<ClientId> | undefined;
  /** Presence, on a `user:` channel: the user's connections, whatever they subscribed to. */
  conns: OneOrSet<ClientId> | undefined;
  /** Neighbours in the order of global eviction while the channel holds messages (see MemoryHistory.oldest). */
  older: ChannelRecord | null;
  newer: ChannelRecord | null;
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

const kept = (s: ChannelRecord): number => s.offsets.length - s.head;
/** Nothing keeps the record: no seq to remember, no subscription, no presence (see MemoryHistory.release). */
const unused = (s: ChannelRecord): boolean => s.seq === 0 && !s.subscribed && s.members === undefined && s.conns === undefined;

/** The power of two (MIN_CHUNK to MAX_CHUNK) a chunk of at least `n` bytes is made with; larger ones are `n` exactly. */
function chunkSize(n: number): number {
  if (n > MAX_CHUNK) return n;
  let size = MIN_CHUNK;
  while (size < n) size *= 2;
  return size;
}

/**
 * Emptied chunks of the standard sizes, kept for the next chunk of that size (any channel's) instead of being left
 * to the garbage collector. Channels fill and empty chunks all the time (a message expires, a channel at its count
 * bound drops its oldest); their buffers lie outside the JS heap, and each one dropped counts towards V8's
 * external-memory pressure, which starts full garbage collections of the whole heap: under a steady publish load
 * that was a full collection every second or two, tens of ms of stalls each on a busy core. Bounded
 * (POOL_MAX_BYTES), and what a whole sweep interval did not need is given back (`trim`).
 */
class ChunkPool {
  private readonly free = new Map<number, Buffer[]>();
  /** Fewest chunks of each size that were free at once since the last trim: those nobody needed. */
  private readonly lowWater = new Map<number, number>();
  bytes = 0;

  take(size: number): Buffer {
    const list = this.free.get(size);
    const buf = list?.pop();
    if (buf === undefined || list === undefined) return Buffer.allocUnsafeSlow(size);
    this.bytes -= size;
    if (list.length < (this.lowWater.get(size) ?? Infinity)) this.lowWater.set(size, list.length);
    return buf;
  }

  give(buf: Buffer): void {
    const size = buf.length;
    if (size > MAX_CHUNK || size !== chunkSize(size) || this.bytes + size > POOL_MAX_BYTES) return;
    let list = this.free.get(size);
    if (list === undefined) {
      this.free.set(size, (list = []));
      this.lowWater.set(size, 0);
    }
    list.push(buf);
    this.bytes += size;
  }

  /** Gives back the chunks that stayed free since the last trim (none was needed), and starts the next interval. */
  trim(): void {
    for (const [size, list] of this.free) {
      const unused = Math.min(list.length, this.lowWater.get(size) ?? 0);
      list.splice(0, unused);
      this.bytes -= unused * size;
      this.lowWater.set(size, list.length);
    }
  }
}

/**
 * The memory engine's channel records (see ChannelRecord): per channel seq, epoch and a bounded, expiring message
 * log, bounded by count and bytes per channel and by bytes for the process, and the flags and presence the engine
 * keeps in the same record. Synchronous: the memory engine wraps it.
 *
 * A channel's record (a fresh epoch) is made on first use. A record nothing was published to is kept only while
 * the channel is subscribed or has presence, and forgotten when the last of those goes (`release`) or at the next
 * sweep, so subscribers alone leave nothing behind; a position of 0 holds nothing, so a client at 0 recovers in any
 * epoch.
 * A published channel's epoch changes only when its state is forgotten (idle past `metaTtl` with no
 * subscriber), so a position stays valid as long as anyone can hold it. History is never partial: a message that
 * is not kept (too large, evicted) makes recovery across it answer `recovered: false`.
 *
 * A channel's frames go into its newest chunk while it has room. While they fit in 4 KiB a channel keeps one chunk,
 * rearranged as one buffer (frames moved to its front, or to a chunk twice as large or, once it holds little, a
 * smaller one); past that it adds a chunk as large as its kept frames (up to 16 KiB), so a growing channel neither
 * copies its log nor drops a buffer, and its chunks take about twice its frames. A chunk is emptied by its
 * messages leaving (or a move) and goes back to a pool that the next chunk of its size is taken from.
 *
 * Messages read back (recovery, the history API) are copies: the frames they hand out never change when the
 * channel's chunks are reused.
 */
export class MemoryHistory {
  private readonly channels = new Map<ChannelName, ChannelRecord>();
  /**
   * Channels holding messages, least recently published first (a publish moves its channel to the end): the order
   * of global eviction, as a list through the records (`older`, `newer`), so a publish reorders it without a lookup.
   */
  private oldest: ChannelRecord | null = null;
  private newest: ChannelRecord | null = null;
  private totalBytes = 0;
  /** Bytes of the chunks channels hold (at least totalBytes). */
  private bufferBytes = 0;
  private readonly pool = new ChunkPool();

  constructor(
    private readonly limits: MemoryHistoryLimits,
    private readonly now: () => number,
  ) {}

  /** The channel's record, made (with a fresh epoch) when it has none. */
  record(channel: ChannelName): ChannelRecord {
    let s = this.channels.get(channel);
    if (!s) {
      s = {
        epoch: newEpoch(),
        seq: 0,
        chunks: [],
        start: 0,
        end: 0,
        offsets: [],
        times: [],
        head: 0,
        touched: this.now(),
        subscribed: false,
        members: undefined,
        conns: undefined,
        older: null,
        newer: null,
      };
      this.channels.set(channel, s);
    }
    return s;
  }

  /** The channel's record, if it has one. */
  peek(channel: ChannelName): ChannelRecord | undefined {
    return this.channels.get(channel);
  }

  /** Records, for listing (presence's channels). */
  records(): IterableIterator<[ChannelName, ChannelRecord]> {
    return this.channels.entries();
  }

  /** Takes `s` out of the eviction order (it holds no message any more). */
  private unlist(s: ChannelRecord): void {
    if (s.older === null) {
      if (this.oldest !== s) return;
      this.oldest = s.newer;
    } else {
      s.older.newer = s.newer;
    }
    if (s.newer === null) this.newest = s.older;
    else s.newer.older = s.older;
    s.older = null;
    s.newer = null;
  }

  /** Puts `s` at the end of the eviction order (it was just published to). */
  private listNewest(s: ChannelRecord): void {
    if (this.newest === s) return;
    this.unlist(s);
    s.older = this.newest;
    if (this.newest === null) this.oldest = s;
    else this.newest.newer = s;
    this.newest = s;
  }

  private trim(s: ChannelRecord, now: number): void {
    const cutoff = now - this.limits.ttl;
    let drop = 0;
    const n = kept(s);
    while (drop < n && (s.times[s.head + drop] as number) <= cutoff) drop++;
    this.dropOldest(s, drop);
  }

  /** Drops the `n` oldest entries of `s`, and the chunks that held only those. */
  private dropOldest(s: ChannelRecord, n: number): void {
    if (n <= 0) return;
    if (n >= kept(s)) {
      // Empty: every chunk goes, so an idle channel holds no bytes.
      this.totalBytes -= s.end - s.start;
      for (const c of s.chunks) this.freeChunk(s, c);
      s.chunks = [];
      s.start = s.end;
      s.head = 0;
      s.offsets = [];
      s.times = [];
      this.unlist(s);
      return;
    }
    s.head += n;
    const start = s.offsets[s.head] as number;
    this.totalBytes -= start - s.start;
    s.start = start;
    // A chunk whose successor begins at or before the oldest kept frame holds no kept frame.
    let freed = 0;
    while (freed + 1 < s.chunks.length && (s.chunks[freed + 1] as Chunk).base <= start) this.freeChunk(s, s.chunks[freed++] as Chunk);
    if (freed > 0) s.chunks.splice(0, freed);
    // A large single chunk that now holds little (expiry, a burst followed by a trickle) is replaced by a small one.
    const only = s.chunks.length === 1 ? (s.chunks[0] as Chunk) : undefined;
    const live = s.end - start;
    if (only !== undefined && only.buf.length > GROW_BY_COPY && live * 4 <= only.buf.length) this.move(s, only, chunkSize(Math.max(2 * live, MIN_CHUNK)));
    if (s.head > MAX_DEAD_ENTRIES && s.head * 2 > s.offsets.length) {
      s.offsets.splice(0, s.head);
      s.times.splice(0, s.head);
      s.head = 0;
    }
  }

  private freeChunk(s: ChannelRecord, c: Chunk): void {
    this.bufferBytes -= c.buf.length;
    this.pool.give(c.buf);
  }

  /**
   * The chunk the next `length` bytes of `s` go into: its newest while that has room. A channel of one chunk
   * rearranges it as one buffer while its frames fit in GROW_BY_COPY bytes (most channels hold a few small
   * messages): they move to the chunk's front when that leaves it more than a quarter full, else to a chunk about
   * twice their size. Otherwise a chunk as large as the kept frames (at most MAX_CHUNK, at least `length`) is
   * added, so the chunks take about twice what they hold.
   */
  private room(s: ChannelRecord, length: number): Chunk {
    const chunks = s.chunks;
    const last = chunks[chunks.length - 1];
    if (last !== undefined && last.fill + length <= last.buf.length) return last;
    const live = s.end - s.start;
    const need = live + length;
    if (last !== undefined && chunks.length === 1) {
      const size = last.buf.length;
      if (need <= size && need * 4 > size) {
        last.buf.copyWithin(0, s.start - last.base, last.fill);
        last.base = s.start;
        last.fill = live;
        return last;
      }
      if (need <= GROW_BY_COPY) return this.move(s, last, chunkSize(Math.max(need, Math.min(2 * need, 2 * size, GROW_BY_COPY))));
    }
    const size = chunkSize(Math.max(length, Math.min(MAX_CHUNK, live)));
    const c: Chunk = { buf: this.pool.take(size), base: s.end, fill: 0 };
    chunks.push(c);
    this.bufferBytes += size;
    return c;
  }

  /** Moves the kept frames of `s`'s only chunk into a new chunk of `size` bytes; returns it. */
  private move(s: ChannelRecord, from: Chunk, size: number): Chunk {
    const buf = this.pool.take(size);
    from.buf.copy(buf, 0, s.start - from.base, from.fill);
    this.freeChunk(s, from);
    const moved: Chunk = { buf, base: s.start, fill: s.end - s.start };
    s.chunks[0] = moved;
    this.bufferBytes += size;
    return moved;
  }

  /** Appends a message with the next seq; `build` serializes it once the seq is known. */
  append(channel: ChannelName, build: (seq: number) => Buffer): EngineMessage {
    return this.appendTo(this.record(channel), channel, build);
  }

  /** `append` to a record already at hand (`s` is `channel`'s). */
  appendTo(s: ChannelRecord, channel: ChannelName, build: (seq: number) => Buffer): EngineMessage {
    const now = this.now();
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
      const chunk = this.room(s, length);
      frame.copy(chunk.buf, chunk.fill);
      chunk.fill += length;
      s.offsets.push(s.end);
      s.times.push(now);
      s.end += length;
      this.totalBytes += length;
      this.listNewest(s);
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
    for (let s = this.oldest; s !== null;) {
      // Emptying a channel takes it out of the order: its successor is read first.
      const next: ChannelRecord | null = s.newer;
      while (kept(s) > 0 && this.totalBytes > this.limits.totalBytes) this.dropOldest(s, 1);
      if (this.totalBytes <= this.limits.totalBytes) return;
      s = next;
    }
  }

  position(channel: ChannelName): StreamPosition {
    const s = this.record(channel);
    s.touched = this.now();
    return { seq: s.seq, epoch: s.epoch };
  }

  /**
   * Something that kept the channel's record let go of it (its subscription, its last member or connection): a
   * record nothing was published to and nothing else keeps is forgotten now.
   */
  release(channel: ChannelName): void {
    const s = this.channels.get(channel);
    if (s !== undefined && unused(s)) this.channels.delete(channel);
  }

  /** Where the frame of entry `i` (an absolute index) ends. */
  private static frameEnd(s: ChannelRecord, i: number): number {
    return i + 1 < s.offsets.length ? (s.offsets[i + 1] as number) : s.end;
  }

  /** At most `limit` kept messages from entry index `from` (absolute, >= head) on, as copies. */
  private messagesFrom(channel: ChannelName, s: ChannelRecord, from: number, limit = Infinity): EngineMessage[] {
    const count = Math.min(limit, s.offsets.length - from);
    if (count <= 0 || s.chunks.length === 0) return [];
    const base = s.offsets[from] as number;
    // One copy for the whole range (gathered from the chunks it spans); each message is a view of it.
    const copy = this.bytesBetween(s, base, MemoryHistory.frameEnd(s, from + count - 1));
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

  /** A copy of the bytes of `s`'s log between virtual offsets `from` and `to` (within what it keeps). */
  private bytesBetween(s: ChannelRecord, from: number, to: number): Buffer {
    const out = Buffer.allocUnsafe(to - from);
    let i = s.chunks.length - 1;
    while (i > 0 && (s.chunks[i] as Chunk).base > from) i--;
    for (let at = from; at < to; i++) {
      const c = s.chunks[i] as Chunk;
      const stop = Math.min(to, c.base + c.fill);
      c.buf.copy(out, at - from, at - c.base, stop - c.base);
      at = stop;
    }
    return out;
  }

  /**
   * Messages after `since`, or undefined when the history cannot reach back that far (different epoch,
   * a position ahead of the channel, or entries already evicted or expired). Never a partial list. A
   * position of 0 holds nothing, so it recovers from seq 1 in any epoch.
   */
  private after(channel: ChannelName, s: ChannelRecord, since: number, epoch: string | undefined, limit = Infinity): EngineMessage[] | undefined {
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
    const s = this.record(channel);
    s.touched = this.now();
    const position = { seq: s.seq, epoch: s.epoch };
    const messages = this.after(channel, s, since, epoch);
    return messages ? { position, recovered: true, messages } : { position, recovered: false, messages: [] };
  }

  read(channel: ChannelName, opts: { since?: number; epoch?: string; limit: number }): HistoryPage {
    const s = this.record(channel);
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
   * Drops expired entries everywhere and forgets channels that are neither subscribed nor present (see
   * ChannelRecord) and for which `keep` is not true: at once when nothing was ever published to them, after
   * `metaTtl` of idleness otherwise.
   */
  sweep(keep?: (channel: ChannelName) => boolean): void {
    const now = this.now();
    for (const [channel, s] of this.channels) {
      this.trim(s, now);
      if (kept(s) > 0 || s.subscribed || s.members !== undefined || s.conns !== undefined) continue;
      if ((s.seq === 0 || now - s.touched > this.limits.metaTtl) && keep?.(channel) !== true) this.channels.delete(channel);
    }
    // Then the pooled chunks no channel needed since the last sweep are given back; what this one emptied stays
    // pooled for the interval ahead.
    this.pool.trim();
  }

  /**
   * Channels with state, the bytes of history held, and the bytes of the buffers holding them, the emptied ones
   * kept for reuse included (for metrics and tests).
   */
  get usage(): { channels: number; bytes: number; buffers: number } {
    return { channels: this.channels.size, bytes: this.totalBytes, buffers: this.bufferBytes + this.pool.bytes };
  }
}
