import type { ChannelName, StreamPosition } from '@herald/protocol';
import { newEpoch } from '../../util/random-id.js';
import { inSlices, LuaScript, type RedisContext } from './client.js';
import type { RedisKeys } from './keys.js';
import type { EngineMessage, History, HistoryPage, Recovery } from '../types.js';

/** History limits, as the engine was configured. */
export interface RedisHistoryLimits {
  /** Messages that count as history per channel (the stream may hold a few more: `MAXLEN ~`). */
  size: number;
  /** How long a message counts as history, in ms of Redis server time. */
  ttl: number;
  /** How long a channel's seq and epoch live after their last use, in ms. */
  metaTtl: number;
  /** Bytes of frames kept per channel (enforced by publish.lua). */
  maxBytes: number;
  /** How long the meta of a channel never published to lives after a read, in ms. */
  emptyTtl: number;
}

/** One stream entry. */
interface Entry {
  seq: number;
  /** Redis server time of the publish (ms). */
  at: number;
  frame: Buffer;
}

/** An atomic view of a channel: its position, the server time, and the entries asked for. */
interface Snapshot {
  seq: number;
  epoch: string;
  now: number;
  entries: Entry[];
}

type Mode = { mode: 'pos' } | { mode: 'after'; since: number; limit: number; epoch: string | undefined } | { mode: 'last'; limit: number };

/** Channels touched per round trip (see `touch`). */
const TOUCH_SLICE = 500;

const isBuffer = (v: unknown): v is Buffer => Buffer.isBuffer(v);

/** `since` as the script can take it; a position that is not one is refused by `after` anyway. */
const scriptSince = (since: number): number => (Number.isSafeInteger(since) && since >= 0 ? since : 0);

function replyError(what: string): Error {
  return new Error(`unexpected reply from the Redis history script: ${what}`);
}

/** Parses `XRANGE`-shaped entries `[[id, [field, value, ...]], ...]`. */
function parseEntries(raw: unknown): Entry[] {
  if (!Array.isArray(raw)) throw replyError('entries');
  return raw.map((item: unknown): Entry => {
    if (!Array.isArray(item) || !isBuffer(item[0]) || !Array.isArray(item[1])) throw replyError('entry');
    const id = item[0].toString('latin1');
    const fields = item[1] as unknown[];
    let frame: Buffer | undefined;
    let at = Number.NaN;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i];
      const value = fields[i + 1];
      if (!isBuffer(name) || !isBuffer(value)) continue;
      const key = name.toString('latin1');
      // A copy: the reply buffer is a slice of a socket chunk that a queued frame would keep alive whole.
      if (key === 'f') frame = Buffer.from(value);
      else if (key === 't') at = Number(value.toString('latin1'));
    }
    const seq = Number(id.slice(0, id.indexOf('-')));
    if (!frame || !Number.isSafeInteger(seq)) throw replyError(`entry ${id}`);
    return { seq, at: Number.isFinite(at) ? at : 0, frame };
  });
}

function parseSnapshot(raw: unknown): Snapshot {
  if (!Array.isArray(raw) || raw.length < 4) throw replyError('snapshot');
  const [seq, epoch, now, entries] = raw as [unknown, unknown, unknown, unknown];
  if (typeof seq !== 'number' || !isBuffer(epoch) || typeof now !== 'number') throw replyError('position');
  return { seq, epoch: epoch.toString('latin1'), now, entries: parseEntries(entries) };
}

/**
 * Per-channel history in Redis: a hash with seq, epoch and the stream's bytes, and a stream whose entry ids are
 * the seqs. A channel only read (subscribed to), never published to, keeps its hash for a short TTL only.
 * Writes happen in `lua/publish.lua`; reads go through `lua/history.lua`, which returns the position, the
 * server time and the entries in one atomic snapshot, so the all-or-nothing checks below never compare a
 * position with entries from another moment. Message age is judged in Redis server time, the clock that
 * stamped the entries, whichever node or PHP process published them.
 */
export class RedisHistory implements History {
  private readonly script = LuaScript.load('history');
  private readonly touchScript = LuaScript.load('touch');
  /** Position reads issued in this turn, by channel (see `position`). */
  private readonly positions = new Map<ChannelName, Promise<StreamPosition>>();

  constructor(
    private readonly ctx: RedisContext,
    private readonly keys: RedisKeys,
    readonly limits: RedisHistoryLimits,
  ) {}

  private async snapshot(channel: ChannelName, m: Mode): Promise<Snapshot> {
    const args: Array<string | number> = [newEpoch(), this.limits.metaTtl, m.mode];
    if (m.mode === 'after') args.push(m.since, m.limit, m.epoch ?? '', this.limits.size);
    else if (m.mode === 'last') args.push(0, m.limit, '', this.limits.size);
    else args.push(0, 0, '', this.limits.size);
    args.push(this.limits.emptyTtl);
    const keys = [this.keys.meta(channel), this.keys.stream(channel)];
    return parseSnapshot(await this.ctx.script('history read', this.script, keys, args, true));
  }

  private message(channel: ChannelName, epoch: string, e: Entry): EngineMessage {
    return { channel, seq: e.seq, epoch, frame: e.frame };
  }

  /**
   * The messages right after `since`, or undefined when history cannot answer for all of them: another
   * epoch, a position ahead of the channel, older than the history size, or an entry missing or expired.
   * With `limit`, only the first `limit` must be there (a page); without, everything up to `seq`.
   */
  private after(channel: ChannelName, s: Snapshot, since: number, epoch: string | undefined, limit?: number): EngineMessage[] | undefined {
    // A position of 0 holds nothing: it recovers from seq 1 in any epoch (see EMPTY_EPOCH).
    if (epoch !== undefined && epoch !== s.epoch && since !== 0) return undefined;
    if (!Number.isSafeInteger(since) || since < 0 || since > s.seq) return undefined;
    if (since === s.seq) return [];
    if (s.seq - since > this.limits.size) return undefined;
    const cutoff = s.now - this.limits.ttl;
    const out: EngineMessage[] = [];
    let next = since + 1;
    for (const e of s.entries) {
      if (e.seq !== next || e.at <= cutoff) return undefined;
      out.push(this.message(channel, s.epoch, e));
      next += 1;
    }
    if (out.length === 0) return undefined;
    if (limit === undefined && next !== s.seq + 1) return undefined;
    return out;
  }

  /**
   * Reads of one channel's position issued in the same event-loop turn share one script call: they would
   * have run back to back in the same pipeline anyway (the broker's new subscription and the hub's
   * subscriber read it together).
   */
  position(channel: ChannelName): Promise<StreamPosition> {
    let read = this.positions.get(channel);
    if (!read) {
      if (this.positions.size === 0) setImmediate(() => this.positions.clear());
      read = this.snapshot(channel, { mode: 'pos' }).then((s) => ({ seq: s.seq, epoch: s.epoch }));
      this.positions.set(channel, read);
    }
    return read.then((p) => ({ ...p }));
  }

  async recover(channel: ChannelName, since: number, epoch?: string): Promise<Recovery> {
    const s = await this.snapshot(channel, { mode: 'after', since: scriptSince(since), limit: 0, epoch });
    const position = { seq: s.seq, epoch: s.epoch };
    const messages = this.after(channel, s, since, epoch);
    return messages ? { position, recovered: true, messages } : { position, recovered: false, messages: [] };
  }

  async read(channel: ChannelName, opts: { since?: number; epoch?: string; limit: number }): Promise<HistoryPage> {
    const limit = Number.isSafeInteger(opts.limit) ? Math.max(0, opts.limit) : 0;
    if (opts.since === undefined) {
      const s = await this.snapshot(channel, { mode: 'last', limit: Math.min(limit, this.limits.size) });
      const cutoff = s.now - this.limits.ttl;
      const oldest = s.seq - this.limits.size;
      const newestFirst: EngineMessage[] = [];
      // Newest first: stop at the first entry that no longer counts (everything older is older still).
      for (const e of s.entries) {
        if (e.at <= cutoff || e.seq <= oldest) break;
        newestFirst.push(this.message(channel, s.epoch, e));
      }
      return { position: { seq: s.seq, epoch: s.epoch }, complete: true, messages: newestFirst.reverse() };
    }
    const since = opts.since;
    const s = await this.snapshot(channel, { mode: 'after', since: scriptSince(since), limit: Math.max(1, limit), epoch: opts.epoch });
    const position = { seq: s.seq, epoch: s.epoch };
    const messages = this.after(channel, s, since, opts.epoch, limit);
    if (!messages) return { position, complete: false, messages: [] };
    return { position, complete: true, messages: messages.slice(0, limit) };
  }

  /**
   * Extends the meta TTL of channels this node is subscribed to, so a channel with listeners keeps its
   * seq and epoch however long it stays quiet (the memory engine keeps subscribed channels the same way).
   */
  async touch(channels: Iterable<ChannelName>): Promise<void> {
    const args = [this.limits.metaTtl, this.limits.emptyTtl];
    // One script call per channel (each may live on its own cluster slot), a slice of them per round trip.
    await inSlices([...channels], TOUCH_SLICE, async (slice) => {
      const calls = slice.map((c) => this.ctx.script('history touch', this.touchScript, [this.keys.meta(c)], args));
      const failed = (await Promise.allSettled(calls)).find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
  }
}
