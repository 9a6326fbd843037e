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
/**
 * Bytes before each frame in a chunk: its length (uint32) and when it was appended (ms, float64); after it, its
 * length again (uint32, TRAILER), so the log can be walked from either end. Little-endian. An entry (header, frame,
 * trailer) is never split between chunks.
 */
const HEADER = 12;
const TRAILER = 4;
/** What an entry adds to its frame. */
const ENTRY = HEADER + TRAILER;
/** Most bytes of emptied chunks kept for reuse (see ChunkPool). */
const POOL_MAX_BYTES = 16 * 1024 * 1024;

/**
 * A piece of a channel's log: `buf` holds entries (a HEADER, the frame, a TRAILER) from virtual offset `base` on, `fill`
 * bytes of it in use. Entries never span chunks; a channel's chunks follow each other without a gap in its virtual
 * byte space (a chunk starts where the channel's log ended when it was added).
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
 * The messages are held without anything per message on the JS heap: each frame, after a header saying its length
 * and when it was appended, back to back in a few chunks (buffers outside the heap), oldest first from `start` (a
 * virtual offset: the channel's log as if it were one buffer). A busy process keeps hundreds of thousands of
 * messages; as objects (an entry, a message, a Buffer view each) they made every garbage collection mark and copy
 * them, which showed as 100-250 ms pauses under load, and as arrays of offsets and times they still grew the JS
 * heap by 12-15 bytes a message (about 25 MB at the default bound of 256 MiB of frames), all of it marked by every
 * full collection. Recovery and reads find their messages by walking the entries back from the newest, as many as
 * they return; expiry and the bounds drop from the oldest. Seqs are contiguous and end at `seq`.
 */
export interface ChannelRecord {
  epoch: string;
  seq: number;
  /** The chunks holding the kept entries, oldest first (empty when nothing is kept). */
  chunks: Chunk[];
  /** Virtual offsets: the oldest kept entry begins at `start`, the log ends at `end`. */
  start: number;
  end: number;
  /** Messages kept (the entries between `start` and `end`), and the bytes of their frames (headers aside). */
  count: number;
  bytes: number;
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
 * Walks a channel's entries from its oldest: `offset` is where the current entry begins (a virtual offset), `time`
 * reads when it was appended, `next` steps past it and answers its frame's length. The caller keeps within the
 * channel's `count` entries.
 */
class Cursor {
  offset: number;
  private i = 0;
  private chunk: Chunk | undefined;

  constructor(private readonly s: ChannelRecord) {
    this.offset = s.start;
    this.chunk = s.chunks[0];
  }

  /** The chunk holding the current entry (entries end where the next chunk's begin). */
  private here(): Chunk {
    let c = this.chunk as Chunk;
    while (this.offset >= c.base + c.fill) c = this.chunk = this.s.chunks[++this.i] as Chunk;
    return c;
  }

  time(): number {
    const c = this.here();
    return c.buf.readDoubleLE(this.offset - c.base + 4);
  }

  next(): number {
    const c = this.here();
    const length = c.buf.readUInt32LE(this.offset - c.base);
    this.offset += ENTRY + length;
    return length;
  }
}

/** Walks a channel's entries back from its newest: `offset` is where the entry last stepped over begins. */
class BackCursor {
  offset: number;
  private i: number;

  constructor(private readonly s: ChannelRecord) {
    this.offset = s.end;
    this.i = s.chunks.length - 1;
  }

  /** Steps back over the entry that ends at `offset`. */
  prev(): void {
    let c = this.s.chunks[this.i] as Chunk;
    while (this.offset <= c.base) c = this.s.chunks[--this.i] as Chunk;
    this.offset -= ENTRY + c.buf.readUInt32LE(this.offset - c.base - TRAILER);
  }
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
 * A channel's entries (header and frame) go into its newest chunk while it has room. While they fit in 4 KiB a
 * channel keeps one chunk, rearranged as one buffer (entries moved to its front, or to a chunk twice as large or,
 * once it holds little, a smaller one); past that it adds a chunk as large as its kept entries (up to 16 KiB), so a
 * growing channel neither copies its log nor drops a buffer, and its chunks take about twice its entries. A chunk
 * is emptied by its messages leaving (or a move) and goes back to a pool that the next chunk of its size is taken
 * from. The byte bounds (`maxBytes`, `totalBytes`) count the frames; each entry's header and trailer add 16 bytes.
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
        count: 0,
        bytes: 0,
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
    const at = new Cursor(s);
    while (drop < s.count && at.time() <= cutoff) {
      at.next();
      drop++;
    }
    this.dropOldest(s, drop);
  }

  /** Drops the `n` oldest entries of `s`, and the chunks that held only those. */
  private dropOldest(s: ChannelRecord, n: number): void {
    if (n <= 0) return;
    if (n >= s.count) {
      // Empty: every chunk goes, so an idle channel holds no bytes.
      this.totalBytes -= s.bytes;
      for (const c of s.chunks) this.freeChunk(c);
      s.chunks = [];
      s.start = s.end;
      s.count = 0;
      s.bytes = 0;
      this.unlist(s);
      return;
    }
    const at = new Cursor(s);
    let bytes = 0;
    for (let k = 0; k < n; k++) bytes += at.next();
    const start = at.offset;
    this.totalBytes -= bytes;
    s.bytes -= bytes;
    s.count -= n;
    s.start = start;
    // A chunk whose successor begins at or before the oldest kept entry holds no kept entry.
    let freed = 0;
    while (freed + 1 < s.chunks.length && (s.chunks[freed + 1] as Chunk).base <= start) this.freeChunk(s.chunks[freed++] as Chunk);
    if (freed > 0) s.chunks.splice(0, freed);
    // Large chunks that now hold little (expiry, a burst followed by a trickle) are replaced by one a quarter larger
    // than what is left, whether that sits in one chunk or across the end of one and the start of the next.
    const live = s.end - start;
    if (2 * live <= MAX_CHUNK) {
      let held = 0;
      for (const c of s.chunks) held += c.buf.length;
      if (held > GROW_BY_COPY && live * 4 <= held) this.move(s, chunkSize(Math.max(live + (live >> 2), MIN_CHUNK)));
    }
  }

  private freeChunk(c: Chunk): void {
    this.bufferBytes -= c.buf.length;
    this.pool.give(c.buf);
  }

  /**
   * The chunk the next `length` bytes of `s` go into: its newest while that has room. A channel of one chunk
   * rearranges it as one buffer while its entries fit in GROW_BY_COPY bytes (most channels hold a few small
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
      if (need <= GROW_BY_COPY) return this.move(s, chunkSize(Math.max(need, Math.min(2 * need, 2 * size, GROW_BY_COPY))));
    }
    const size = chunkSize(Math.max(length, Math.min(MAX_CHUNK, live)));
    const c: Chunk = { buf: this.pool.take(size), base: s.end, fill: 0 };
    chunks.push(c);
    this.bufferBytes += size;
    return c;
  }

  /** Moves the kept entries of `s` into one new chunk of `size` bytes (at least what they take); returns it. */
  private move(s: ChannelRecord, size: number): Chunk {
    const buf = this.pool.take(size);
    for (const c of s.chunks) {
      const from = Math.max(s.start, c.base);
      c.buf.copy(buf, from - s.start, from - c.base, c.fill);
      this.freeChunk(c);
    }
    const moved: Chunk = { buf, base: s.start, fill: s.end - s.start };
    s.chunks = [moved];
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
      let bytes = s.bytes + length;
      if (s.count + 1 > size || bytes > maxBytes) {
        const at = new Cursor(s);
        while (s.count - over + 1 > size || bytes > maxBytes) {
          bytes -= at.next();
          over++;
        }
      }
      this.dropOldest(s, over);
      const chunk = this.room(s, ENTRY + length);
      const buf = chunk.buf;
      buf.writeUInt32LE(length, chunk.fill);
      buf.writeDoubleLE(now, chunk.fill + 4);
      frame.copy(buf, chunk.fill + HEADER);
      buf.writeUInt32LE(length, chunk.fill + HEADER + length);
      chunk.fill += ENTRY + length;
      s.end += ENTRY + length;
      s.count += 1;
      s.bytes += length;
      this.totalBytes += length;
      this.listNewest(s);
      if (this.totalBytes > this.limits.totalBytes) this.evict();
    } else {
      // Not kept: recovery across it must fail, so the entries before it are of no use any more.
      this.dropOldest(s, s.count);
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
      while (s.count > 0 && this.totalBytes > this.limits.totalBytes) this.dropOldest(s, 1);
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

  /** At most `limit` kept messages from the `from`th oldest (0: the oldest) on, as copies. */
  private messagesFrom(channel: ChannelName, s: ChannelRecord, from: number, limit = Infinity): EngineMessage[] {
    const count = Math.min(limit, s.count - from);
    if (count <= 0 || s.chunks.length === 0) return [];
    // Found from the newest end: a client recovering wants the messages it missed, the newest ones, so the walk is as
    // long as what it gets, not as long as the history kept before them.
    const back = new BackCursor(s);
    for (let k = s.count; k > from + count; k--) back.prev();
    const last = back.offset;
    for (let k = 0; k < count; k++) back.prev();
    // One copy for the whole range (gathered from the chunks it spans); each message is a view of it.
    const copy = this.bytesBetween(s, back.offset, last);
    const firstSeq = s.seq - s.count + 1 + from;
    const out: EngineMessage[] = new Array(count);
    for (let k = 0, pos = 0; k < count; k++) {
      const length = copy.readUInt32LE(pos);
      out[k] = { channel, seq: firstSeq + k, epoch: s.epoch, frame: copy.subarray(pos + HEADER, pos + HEADER + length) };
      pos += ENTRY + length;
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
    const n = s.count;
    // Entries are contiguous and end at s.seq; recovery needs the one right after `since`.
    if (n === 0 || s.seq - n + 1 > since + 1) return undefined;
    return this.messagesFrom(channel, s, since - (s.seq - n + 1) + 1, limit);
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
      return { position, complete: true, messages: this.messagesFrom(channel, s, Math.max(0, s.count - opts.limit)) };
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
      if (s.count > 0 || s.subscribed || s.members !== undefined || s.conns !== undefined) continue;
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
