/**
 * The memory engine's idempotency index: ids are remembered for the whole window up to the bound, forgotten
 * when the window passes, and forgotten early (and counted) only when the bound is reached; checked against a
 * plain Map model through random operations, and at the scale the issue asks for (200 000 other ids).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdempotencyIndex } from '../src/engine/memory/idempotency.js';
import { createMemoryEngine } from '../src/engine/memory/engine.js';
import { capturingLogger, ManualClock, startGateway } from './helpers.js';

describe('IdempotencyIndex', () => {
  it('remembers an id for the window, then forgets it', () => {
    let t = 0;
    const index = new IdempotencyIndex(1000, 100, () => t);
    index.set('a', { seq: 7, epoch: 'e1' });
    t = 999;
    expect(index.get('a')).toEqual({ seq: 7, epoch: 'e1' });
    t = 1000;
    expect(index.get('a')).toBeUndefined();
    expect(index.size).toBe(0);
  });

  it('forgets the oldest id early only when the bound is reached, and says how many', () => {
    const early: number[] = [];
    const index = new IdempotencyIndex(
      60_000,
      3,
      () => 0,
      (n) => early.push(n),
    );
    for (const k of ['a', 'b', 'c']) index.set(k, { seq: 1, epoch: k });
    expect(early).toEqual([]);
    index.set('d', { seq: 1, epoch: 'd' });
    expect(early).toEqual([1]);
    expect(index.get('a')).toBeUndefined();
    expect(['b', 'c', 'd'].map((k) => index.get(k)?.epoch)).toEqual(['b', 'c', 'd']);
  });

  it('gives its memory back once a burst of ids has expired, and still remembers and grows after', () => {
    let t = 0;
    const index = new IdempotencyIndex(1000, 1_000_000, () => t);
    for (let i = 0; i < 50_000; i++) index.set(`burst-${i}`, { seq: i, epoch: 'e' });
    t = 400;
    for (let i = 50_000; i < 100_000; i++) index.set(`burst-${i}`, { seq: i, epoch: 'e' });
    expect(index.bytes).toBeGreaterThan(100_000 * 32);
    const full = index.bytes;
    // Half the burst expires: more than an eighth is left, the arrays stay.
    t = 1000;
    expect(index.size).toBe(50_000);
    expect(index.bytes).toBe(full);
    for (let i = 0; i < 10; i++) index.set(`late-${i}`, { seq: i, epoch: 'e' });
    t = 1400;
    expect(index.size).toBe(10);
    // Back to the smallest ring (1024 ids, 32 bytes each) and its table (2048 slots of 4 bytes).
    expect(index.bytes).toBe(1024 * 32 + 2048 * 4);
    expect(index.get('late-3')).toEqual({ seq: 3, epoch: 'e' });
    t = 2000;
    expect(index.size).toBe(0);
    for (let i = 0; i < 5000; i++) index.set(`again-${i}`, { seq: i, epoch: 'e' });
    expect(index.size).toBe(5000);
    expect(index.get('again-4999')).toEqual({ seq: 4999, epoch: 'e' });
    expect(index.get('burst-1')).toBeUndefined();
  });

  it('agrees with a Map model through random sets, gets and time steps (growth, wrap-around, deletions)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 3000 }) }),
      fc.record({ kind: fc.constant('get' as const), key: fc.integer({ min: 0, max: 3000 }) }),
      fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 300 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 3000 }), (ops) => {
        let t = 0;
        const ttl = 1000;
        const index = new IdempotencyIndex(ttl, 1_000_000, () => t);
        const model = new Map<string, { seq: number; expires: number }>();
        let n = 0;
        for (const o of ops) {
          if (o.kind === 'tick') {
            t += o.ms;
            continue;
          }
          const key = `id-${o.key}`;
          const live = model.get(key);
          const expected = live !== undefined && live.expires > t ? live : undefined;
          if (o.kind === 'get') {
            expect(index.get(key)?.seq).toBe(expected?.seq);
          } else if (expected === undefined) {
            n += 1;
            index.set(key, { seq: n, epoch: 'e' });
            model.set(key, { seq: n, expires: t + ttl });
          }
        }
        const alive = [...model.values()].filter((v) => v.expires > t).length;
        expect(index.size).toBe(alive);
      }),
      { numRuns: 60 },
    );
  });
});

describe('the memory engine honours the idempotency window', () => {
  it('under 200 000 other ids a repeated id still publishes once (the old cache forgot it after 100 000)', async () => {
    const clock = new ManualClock();
    const engine = createMemoryEngine({ clock, historySize: 0 });
    await engine.start({ message: () => undefined, direct: () => false, disconnect: () => 0, inbox: () => undefined });
    const first = await engine.broker.publish({ channel: 'c', type: 't', payloadJson: '{}', idempotencyKey: 'the-one' });
    for (let i = 0; i < 200_000; i++) {
      await engine.broker.publish({ channel: `ch-${i % 50}`, type: 't', payloadJson: '{}', idempotencyKey: `other-${i}` });
      if (i % 10_000 === 0) clock.advance(10);
    }
    const again = await engine.broker.publish({ channel: 'c', type: 't', payloadJson: '{}', idempotencyKey: 'the-one' });
    expect(again).toEqual({ seq: first.seq, epoch: first.epoch, duplicate: true });
    expect(engine.usage?.()).toMatchObject({ idempotencyKeys: 200_001, idempotencyEarlyEvictions: 0 });
    await engine.close();
  });

  it('counts ids forgotten early when the configured bound is too small for the traffic', async () => {
    const evicted: number[] = [];
    const engine = createMemoryEngine({ idempotencyMaxKeys: 1000, onEarlyEviction: (n) => evicted.push(n) });
    await engine.start({ message: () => undefined, direct: () => false, disconnect: () => 0, inbox: () => undefined });
    for (let i = 0; i < 1500; i++) await engine.broker.publish({ channel: 'c', type: 't', payloadJson: '{}', idempotencyKey: `k${i}` });
    expect(engine.usage?.().idempotencyEarlyEvictions).toBe(500);
    expect(evicted.reduce((a, b) => a + b, 0)).toBe(500);
    // The oldest ids are the ones forgotten: a repeat of k0 publishes again, a repeat of k1499 does not.
    expect((await engine.broker.publish({ channel: 'c', type: 't', payloadJson: '{}', idempotencyKey: 'k0' })).duplicate).toBe(false);
    expect((await engine.broker.publish({ channel: 'c', type: 't', payloadJson: '{}', idempotencyKey: 'k1499' })).duplicate).toBe(true);
    await engine.close();
  });

  it("bounds the inbox's ids the same way, and counts them in its usage (an inbox kept every id for the window)", async () => {
    const evicted: number[] = [];
    const engine = createMemoryEngine({ idempotencyMaxKeys: 1000, onEarlyEviction: (n) => evicted.push(n) });
    await engine.start({ message: () => undefined, direct: () => false, disconnect: () => 0, inbox: () => undefined });
    const put = (i: number) =>
      engine.inbox.put(
        { user: `u${i % 7}`, type: 't', payloadJson: '{}', ttl: 60_000, receipt: false, idempotencyKey: `k${i}` },
        { max: 1000, idempotencyTtl: 300_000 },
      );
    for (let i = 0; i < 1500; i++) await put(i);
    expect(engine.usage?.()).toMatchObject({ idempotencyKeys: 1000, idempotencyEarlyEvictions: 500 });
    expect(evicted.reduce((a, b) => a + b, 0)).toBe(500);
    expect((await put(0)).duplicate).toBe(false);
    expect((await put(1499)).duplicate).toBe(true);
    await engine.close();
  });

  it('says so in the log, once a second with the count since the last time, when a gateway forgets ids early', async () => {
    const { logger, entries } = capturingLogger();
    const clock = new ManualClock();
    const engine = createMemoryEngine({ idempotencyMaxKeys: 1000, clock });
    await startGateway({ clock, engine, logger });
    const publishIds = async (from: number, n: number): Promise<void> => {
      for (let i = from; i < from + n; i++) await engine.broker.publish({ channel: 'c', type: 't', payloadJson: '{}', idempotencyKey: `k${i}` });
    };
    const said = () => entries.filter((e) => String(e['msg']).startsWith('publish ids forgotten'));
    await publishIds(0, 1200);
    clock.advance(1000);
    expect(said()).toEqual([expect.objectContaining({ level: 40, forgotten: 200, total: 200 })]);
    // Nothing new: nothing said; then 50 more, said with their own count.
    clock.advance(1000);
    expect(said()).toHaveLength(1);
    await publishIds(1200, 50);
    clock.advance(1000);
    expect(said()[1]).toMatchObject({ forgotten: 50, total: 250 });
  });
});
