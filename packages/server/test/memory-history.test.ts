import { describe, expect, it } from 'vitest';
import { MemoryHistory, type MemoryHistoryLimits } from '../src/engine/memory/history.js';

/** A deterministic PRNG (mulberry32), so a failure replays. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What the history should hold: the plain model (an array of frames per channel) the store must agree with. */
class Model {
  readonly kept = new Map<string, { seq: number; frame: string; at: number }[]>();
  readonly order: string[] = [];
  total = 0;
  constructor(private readonly limits: MemoryHistoryLimits) {}

  append(channel: string, seq: number, frame: string, at: number): void {
    const list = this.kept.get(channel) ?? [];
    this.kept.set(channel, list);
    const bytes = Buffer.byteLength(frame);
    if (bytes > this.limits.maxBytes) {
      this.drop(channel, list.length);
      return;
    }
    list.push({ seq, frame, at });
    this.total += bytes;
    while (list.length > this.limits.size || this.bytes(list) > this.limits.maxBytes) this.drop(channel, 1);
    const i = this.order.indexOf(channel);
    if (i >= 0) this.order.splice(i, 1);
    this.order.push(channel);
    for (const ch of [...this.order]) {
      const l = this.kept.get(ch) ?? [];
      while (l.length > 0 && this.total > this.limits.totalBytes) this.drop(ch, 1);
      if (this.total <= this.limits.totalBytes) break;
    }
  }

  expire(now: number): void {
    for (const [ch, l] of this.kept) {
      let n = 0;
      while (n < l.length && (l[n]?.at as number) <= now - this.limits.ttl) n++;
      this.drop(ch, n);
    }
  }

  private bytes(list: readonly { frame: string }[]): number {
    return list.reduce((a, e) => a + Buffer.byteLength(e.frame), 0);
  }

  private drop(channel: string, n: number): void {
    const list = this.kept.get(channel) ?? [];
    for (const e of list.splice(0, n)) this.total -= Buffer.byteLength(e.frame);
    if (list.length === 0) {
      const i = this.order.indexOf(channel);
      if (i >= 0) this.order.splice(i, 1);
    }
  }
}

describe('memory history: frames kept back to back per channel', () => {
  // Small frames in small chunks; then frames of up to 40 KB, over the largest standard chunk (16 KiB), so that
  // reads gather frames from many chunks and a frame may take a chunk of its own.
  it.each([
    { seed: 20261206, limits: { size: 40, ttl: 5_000, metaTtl: 60_000, maxBytes: 3_000, totalBytes: 12_000 }, large: 1_500 },
    { seed: 20261207, limits: { size: 60, ttl: 5_000, metaTtl: 60_000, maxBytes: 120_000, totalBytes: 400_000 }, large: 40_000 },
  ])('agrees with a plain model through growth, reuse of its chunks, expiry and global eviction (seed $seed)', ({ seed, limits, large }) => {
    const rand = prng(seed);
    let t = 1_000_000;
    const store = new MemoryHistory(limits, () => t);
    const model = new Model(limits);
    const channels = ['a', 'b', 'c', 'd', 'e', 'f'];
    const seqs = new Map<string, number>();
    const epochs = new Map<string, string>();
    for (let step = 0; step < 6_000; step++) {
      t += Math.floor(rand() * 20);
      const channel = channels[Math.floor(rand() * channels.length)] as string;
      // Mostly small frames, some large, now and then one over the per-channel bound (not kept).
      const r = rand();
      const size = r < 0.8 ? 20 + Math.floor(rand() * 200) : r < 0.99 ? 500 + Math.floor(rand() * large) : limits.maxBytes + 500;
      const body = `é${'x'.repeat(size)}😀`;
      const msg = store.append(channel, (seq) => Buffer.from(`{"seq":${seq},"body":"${body}"}`));
      const seq = (seqs.get(channel) ?? 0) + 1;
      seqs.set(channel, seq);
      expect(msg.seq).toBe(seq);
      epochs.set(channel, msg.epoch);
      model.append(channel, seq, msg.frame.toString(), t);
      if (step % 13 === 0) {
        // Expiry is lazy in the store (a sweep, or a read of the channel): both expire at the same time here.
        store.sweep(() => true);
        model.expire(t);
        for (const ch of channels) {
          const now = model.kept.get(ch) ?? [];
          const page = store.read(ch, { limit: 1_000 });
          expect(page.messages.map((m) => [m.seq, m.frame.toString()])).toEqual(now.map((e) => [e.seq, e.frame]));
          const last = seqs.get(ch) ?? 0;
          if (now.length > 0) {
            const since = (now[0]?.seq as number) - 1;
            const rec = store.recover(ch, since, epochs.get(ch));
            expect(rec.recovered).toBe(true);
            expect(rec.messages.map((m) => m.seq)).toEqual(now.map((e) => e.seq));
            // One before the oldest kept: not reachable, never a partial answer.
            if (since > 0) expect(store.recover(ch, since - 1, epochs.get(ch)).recovered).toBe(false);
            const tail = store.read(ch, { since, epoch: epochs.get(ch) as string, limit: 3 });
            expect(tail.messages.map((m) => m.frame.toString())).toEqual(now.slice(0, 3).map((e) => e.frame));
            // From a position in the middle (the walk back from the newest stops there), and the newest few.
            const mid = Math.floor(rand() * now.length);
            const fromMid = store.recover(ch, now[mid]?.seq as number, epochs.get(ch));
            expect(fromMid.messages.map((m) => [m.seq, m.frame.toString()])).toEqual(now.slice(mid + 1).map((e) => [e.seq, e.frame]));
            const newest = store.read(ch, { limit: 2 });
            expect(newest.messages.map((m) => m.frame.toString())).toEqual(now.slice(-2).map((e) => e.frame));
          } else if (last > 0) {
            expect(store.recover(ch, last, epochs.get(ch)).recovered).toBe(true);
          }
        }
        expect(store.usage.bytes).toBe(model.total);
        expect(store.usage.bytes).toBeLessThanOrEqual(limits.totalBytes);
      }
    }
  });

  it('hands out copies: frames read back do not change when the channel keeps publishing', () => {
    const t = 1_000;
    const store = new MemoryHistory({ size: 4, ttl: 60_000, metaTtl: 60_000, maxBytes: 1_000_000, totalBytes: 1_000_000 }, () => t);
    for (let i = 1; i <= 4; i++) store.append('ch', (seq) => Buffer.from(`{"n":${seq}}`));
    const before = store.recover('ch', 0).messages;
    expect(before.map((m) => m.frame.toString())).toEqual(['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}']);
    // Enough to move the kept frames within the channel's buffer and to replace it with a larger one.
    for (let i = 5; i <= 200; i++) store.append('ch', (seq) => Buffer.from(`{"n":${seq},"pad":"${'y'.repeat(i)}"}`));
    expect(before.map((m) => m.frame.toString())).toEqual(['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}']);
    expect(store.recover('ch', 196).messages.map((m) => m.seq)).toEqual([197, 198, 199, 200]);
  });

  it('keeps the frame it delivered live unchanged (the message returned by append is not the stored copy)', () => {
    const store = new MemoryHistory({ size: 10, ttl: 60_000, metaTtl: 60_000, maxBytes: 1_000_000, totalBytes: 1_000_000 }, () => 0);
    const frame = Buffer.from('{"a":1}');
    const msg = store.append('ch', () => frame);
    expect(msg.frame).toBe(frame);
    frame.write('{"b":2}');
    expect(store.recover('ch', 0).messages[0]?.frame.toString()).toBe('{"a":1}');
  });

  it('frees a channel buffer once its last message is gone (expired or evicted)', () => {
    let t = 0;
    const store = new MemoryHistory({ size: 10, ttl: 1_000, metaTtl: 60_000, maxBytes: 1_000_000, totalBytes: 1_000_000 }, () => t);
    for (let i = 0; i < 5; i++) store.append('ch', () => Buffer.alloc(100, 0x61));
    expect(store.usage.bytes).toBe(500);
    t += 1_001;
    store.sweep(() => true);
    expect(store.usage.bytes).toBe(0);
    // A position still answers, with nothing to recover across the expired messages.
    expect(store.recover('ch', 5).recovered).toBe(true);
    expect(store.recover('ch', 4).recovered).toBe(false);
  });

  it('evicts for the process bound from channels that still hold messages, the least recently published first', () => {
    const store = new MemoryHistory({ size: 100, ttl: 60_000, metaTtl: 60_000, maxBytes: 1_000_000, totalBytes: 1_000 }, () => 0);
    // Many channels emptied by eviction stay behind; later evictions take from the ones holding messages.
    for (let i = 0; i < 2_000; i++) store.append(`old-${i}`, () => Buffer.alloc(100, 0x61));
    expect(store.usage.bytes).toBe(1_000);
    for (let i = 0; i < 5; i++) store.append('x', () => Buffer.alloc(100, 0x62));
    for (let i = 0; i < 5; i++) store.append('y', () => Buffer.alloc(100, 0x63));
    expect(store.read('x', { limit: 100 }).messages).toHaveLength(5);
    expect(store.read('y', { limit: 100 }).messages).toHaveLength(5);
    store.append('y', () => Buffer.alloc(100, 0x63));
    expect(store.read('x', { limit: 100 }).messages).toHaveLength(4);
    expect(store.read('y', { limit: 100 }).messages).toHaveLength(6);
    expect(store.read('old-1999', { limit: 100 }).messages).toHaveLength(0);
  });
});

describe('memory history: buffer memory', () => {
  it('holds its frames in buffers at most a few times their size, and gives large buffers back once they empty out', () => {
    let t = 0;
    const store = new MemoryHistory({ size: 10_000, ttl: 1_000, metaTtl: 60_000, maxBytes: 10_000_000, totalBytes: 100_000_000 }, () => t);
    const frame = Buffer.alloc(1_000, 0x61);
    // 1 000 channels of one small message each: one small buffer each.
    for (let i = 0; i < 1_000; i++) store.append(`small-${i}`, () => frame.subarray(0, 100));
    expect(store.usage.bytes).toBe(100_000);
    expect(store.usage.buffers).toBeLessThanOrEqual(1_000 * 256);
    // One channel grows to 2 MB, then all but its newest messages expire.
    for (let i = 0; i < 2_000; i++) store.append('big', () => frame);
    expect(store.usage.buffers).toBeLessThanOrEqual(2 * (store.usage.bytes + 1_000 * 256));
    t += 600;
    for (let i = 0; i < 3; i++) store.append('big', () => frame);
    t += 500;
    store.sweep(() => true);
    expect(store.read('big', { limit: 10 }).messages).toHaveLength(3);
    expect(store.usage.bytes).toBe(3_000);
    // The emptied chunks are kept for reuse until a sweep interval passes without a need for them.
    expect(store.usage.buffers).toBeGreaterThan(1_000_000);
    store.sweep(() => true);
    expect(store.usage.buffers).toBeLessThanOrEqual(1_000 * 256 + 16_384);
    // Everything expired: nothing held, and after one more quiet sweep nothing pooled.
    t += 1_000;
    store.sweep(() => true);
    store.sweep(() => true);
    expect(store.usage).toEqual({ channels: 1_001, bytes: 0, buffers: 0 });
  });

  // Buffers stay within about twice the kept frames (plus one smallest chunk per channel) whatever a channel held
  // before: bounded channels, a burst followed by a trickle, a steady stream through a short TTL. Read after two
  // sweeps without publishes, when the pool has given its chunks back.
  it.each([
    { name: 'two messages kept of a steady stream', limits: { size: 2 }, channels: 10, rounds: 40, trickle: 0 },
    { name: 'ten messages kept', limits: { size: 10 }, channels: 10, rounds: 400, trickle: 0 },
    { name: 'a 300-byte bound per channel', limits: { maxBytes: 300 }, channels: 10, rounds: 400, trickle: 0 },
    { name: 'a burst of 20 KB, then one message a minute through a 10-minute TTL', limits: {}, channels: 200, rounds: 200, trickle: 30 },
    { name: 'a steady stream through a 2-second TTL', limits: { ttl: 2_000 }, channels: 200, rounds: 300, trickle: 0, step: 100 },
  ])('holds at most about twice its frames in buffers: $name', ({ limits, channels, rounds, trickle, step }) => {
    let t = 0;
    const store = new MemoryHistory({ size: 1000, ttl: 600_000, metaTtl: 3_600_000, maxBytes: 1_048_576, totalBytes: 268_435_456, ...limits }, () => t);
    const frame = Buffer.alloc(100, 0x61);
    for (let r = 0; r < rounds; r++) {
      t += step ?? 0;
      for (let c = 0; c < channels; c++) store.append(`c${c}`, () => frame);
    }
    for (let m = 0; m < trickle; m++) {
      t += 60_000;
      for (let c = 0; c < channels; c++) store.append(`c${c}`, () => frame);
      store.sweep(() => true);
    }
    store.sweep(() => true);
    store.sweep(() => true);
    const { bytes, buffers } = store.usage;
    expect(bytes).toBeGreaterThan(0);
    expect(buffers).toBeLessThanOrEqual(2.6 * bytes + 256 * channels);
  });

  it('reuses the chunks one channel emptied for another instead of allocating, and pools at most 16 MiB', () => {
    let t = 0;
    const store = new MemoryHistory({ size: 100_000, ttl: 1_000, metaTtl: 60_000, maxBytes: 100_000_000, totalBytes: 100_000_000 }, () => t);
    const frame = Buffer.alloc(1_000, 0x61);
    for (let i = 0; i < 500; i++) store.append('a', () => frame);
    const peak = store.usage.buffers;
    t += 1_001;
    store.sweep(() => true);
    expect(store.usage.bytes).toBe(0);
    expect(store.usage.buffers).toBe(peak);
    // `b` grows the way `a` did: every chunk it needs comes from the pool.
    for (let i = 0; i < 500; i++) store.append('b', () => frame);
    expect(store.usage.buffers).toBe(peak);
    expect(store.read('b', { limit: 1_000 }).messages.map((m) => m.frame.length)).toEqual(new Array(500).fill(1_000));
    // 40 MB emptied at once: at most 16 MiB of it stays pooled.
    for (let i = 0; i < 40_000; i++) store.append('c', () => frame);
    t += 2_002;
    store.sweep(() => true);
    expect(store.usage.bytes).toBe(0);
    expect(store.usage.buffers).toBeLessThanOrEqual(16 * 1024 * 1024);
  });
});
