import { describe, expect, it } from 'vitest';
import { createMemoryEngine } from '../src/engine/memory/engine.js';
import { MemoryOutbox } from '../src/engine/memory/outbox.js';
import type { OutboxJob } from '../src/engine/outbox.js';
import { engineContract } from './engine-contract.js';
import { api, ManualClock, publish, startGateway } from './helpers.js';

let clock = new ManualClock();

engineContract('memory', {
  make: (limits = {}) => {
    clock = new ManualClock();
    return Promise.resolve(createMemoryEngine({ clock, ...limits }));
  },
  advance: (ms) => {
    clock.advance(ms);
    return Promise.resolve();
  },
});

describe('memory engine: bounded state', () => {
  it('keeps nothing for channels that were only subscribed to, once their subscribers are gone', async () => {
    const c = new ManualClock();
    const engine = createMemoryEngine({ clock: c });
    await engine.start({ message: () => undefined, direct: () => false, disconnect: () => 0, inbox: () => undefined });
    // 10 000 channels subscribed to (each read for its position), as anonymous clients may.
    for (let i = 0; i < 10_000; i++) {
      await engine.broker.subscribe(`flood-${i}`);
      await engine.history.position(`flood-${i}`);
    }
    await engine.broker.publish({ channel: 'flood-0', type: 't', payloadJson: '{}' });
    expect(engine.usage?.().channels).toBe(10_000);
    for (let i = 0; i < 10_000; i++) await engine.broker.unsubscribe(`flood-${i}`);
    // Only the published one is left; a channel merely read by the API goes at the next sweep.
    expect(engine.usage?.().channels).toBe(1);
    await engine.history.position('api-read');
    expect(engine.usage?.().channels).toBe(2);
    c.advance(60_000);
    expect(engine.usage?.().channels).toBe(1);
    await engine.close();
  });

  it('keeps a channel record for presence only while someone is there, and counts from it with the publish', async () => {
    const c = new ManualClock();
    const engine = createMemoryEngine({ clock: c, historyTtl: 60_000, historyMetaTtl: 120_000 });
    await engine.start({ message: () => undefined, direct: () => false, disconnect: () => 0, inbox: () => undefined });
    const conn = (client: string, user: string | null) => ({ client, user });
    // 5000 users connect and join a room each, without subscribing or publishing: records for the user channel and the room.
    for (let i = 0; i < 5_000; i++) {
      await engine.presence.add(conn(`c${i}`, `u${i}`));
      await engine.presence.join(`room-${i}`, conn(`c${i}`, `u${i}`));
    }
    expect(engine.usage?.().channels).toBe(10_000);
    // A second connection of u0, and a publish to u0 and to room-0: the counts come from the records.
    await engine.presence.add(conn('c0b', 'u0'));
    expect(await engine.broker.publish({ channel: 'user:u0', type: 't', payloadJson: '{}', counts: true })).toMatchObject({ subscribers: 0, online: 2 });
    expect(await engine.broker.publish({ channel: 'room-0', type: 't', payloadJson: '{}', counts: true })).toMatchObject({ subscribers: 1 });
    expect((await engine.presence.online(['u0', 'u1', 'nobody'])).get('u0')).toBe(2);
    expect(await engine.presence.channels('room-', 100_000)).toHaveLength(5_000);
    // Everyone leaves: the records nothing was published to go at once, the two published ones stay, even past the
    // sweep while someone is still there, and are forgotten once idle and empty.
    for (let i = 0; i < 5_000; i++) {
      await engine.presence.leave(`room-${i}`, conn(`c${i}`, `u${i}`));
      if (i !== 0) await engine.presence.remove(conn(`c${i}`, `u${i}`));
    }
    expect(engine.usage?.().channels).toBe(2);
    c.advance(180_000);
    expect(engine.usage?.().channels).toBe(1);
    expect(await engine.presence.online(['u0'])).toEqual(new Map([['u0', 2]]));
    await engine.presence.remove(conn('c0', 'u0'));
    await engine.presence.remove(conn('c0b', 'u0'));
    expect(await engine.presence.online(['u0'])).toEqual(new Map([['u0', 0]]));
    c.advance(180_000);
    expect(engine.usage?.().channels).toBe(0);
    await engine.close();
  });

  it('bounds the history of the whole process by bytes, taking from the least recently published channels first', async () => {
    const engine = createMemoryEngine({ historyTotalBytes: 10_000 });
    await engine.start({ message: () => undefined, direct: () => false, disconnect: () => 0, inbox: () => undefined });
    const payload = JSON.stringify({ pad: 'x'.repeat(950) });
    for (const ch of ['old', 'mid', 'new']) for (let i = 0; i < 4; i++) await engine.broker.publish({ channel: ch, type: 't', payloadJson: payload });
    expect(engine.usage?.().historyBytes).toBeLessThanOrEqual(10_000);
    const kept = async (ch: string): Promise<number> => (await engine.history.read(ch, { limit: 100 })).messages.length;
    // 12 frames of ~1010 bytes over a 10 000-byte bound: the three to go are the oldest of 'old'.
    expect([await kept('old'), await kept('mid'), await kept('new')]).toEqual([1, 4, 4]);
    await engine.close();
  });
});

describe('memory engine: forgetting idle channels', () => {
  it('keeps seq and epoch while a node is subscribed, forgets them (new epoch) when idle and unsubscribed', async () => {
    const c = new ManualClock();
    const engine = createMemoryEngine({ clock: c, historyTtl: 60_000, historyMetaTtl: 120_000 });
    await engine.start({ message: () => undefined, direct: () => false, disconnect: () => 0, inbox: () => undefined });
    const kept = await engine.broker.publish({ channel: 'kept', type: 't', payloadJson: '{}' });
    const gone = await engine.broker.publish({ channel: 'gone', type: 't', payloadJson: '{}' });
    await engine.broker.subscribe('kept');
    c.advance(10 * 60_000);
    expect(await engine.history.position('kept')).toEqual({ seq: 1, epoch: kept.epoch });
    const fresh = await engine.history.position('gone');
    expect(fresh.seq).toBe(0);
    expect(fresh.epoch).not.toBe(gone.epoch);
    await engine.close();
  });
});

describe('historyMetaTtl (HERALD_HISTORY_META_TTL_MS)', () => {
  it('is how long a published channel is remembered on the gateway: its seq and epoch, then a fresh start', async () => {
    const gw = await startGateway({ historyTtl: 60_000, historyMetaTtl: 120_000 });
    const first = await publish(gw.http, { channel: 'job-1', type: 't', payload: {} });
    gw.clock.advance(110_000);
    expect((await api(gw.http, 'GET', '/api/channels/job-1')).body).toMatchObject({ seq: 1, epoch: first.results['job-1'].epoch });
    gw.clock.advance(130_000);
    const later = (await api(gw.http, 'GET', '/api/channels/job-1')).body;
    expect(later.seq).toBe(0);
    expect(later.epoch).not.toBe(first.results['job-1'].epoch);
  });

  it('is refused below historyTtl (seq and epoch outlive the history they number) and when not a positive integer', async () => {
    await expect(startGateway({ historyTtl: 60_000, historyMetaTtl: 59_999 })).rejects.toThrow(/historyMetaTtl.*at least historyTtl/);
    await expect(startGateway({ historyMetaTtl: 0 })).rejects.toThrow(/historyMetaTtl/);
  });
});

describe('memory engine: the webhook outbox', () => {
  const ev = (n: number): string => JSON.stringify({ id: `e${n}`, type: 'user.online', time: 0, data: { n } });
  const numberOf = (event: string): number => (JSON.parse(event) as { data: { n: number } }).data.n;

  it('hands out due jobs earliest first (due time, then event time, then queue order) through leases, retries and settles', async () => {
    let now = 1000;
    const outbox = new MemoryOutbox(() => now);
    await outbox.publish([ev(1), ev(2), ev(3)]);
    expect(await outbox.fanOut(() => ['a'], 2, now)).toBe(2);
    now = 2000;
    expect(await outbox.fanOut(() => ['a', 'b'], 10, now)).toBe(1);
    // Due at 1000 (e1, e2), then at 2000 (e3 to two endpoints, in route order).
    const first = await outbox.claim(now, 10_000, 3);
    expect(first.map((j) => [numberOf(j.event), j.endpoint])).toEqual([
      [1, 'a'],
      [2, 'a'],
      [3, 'a'],
    ]);
    const [j1, j2, j3] = first as [OutboxJob, OutboxJob, OutboxJob];
    // Leased: not due again until the lease ends, unless settled first.
    expect((await outbox.claim(now, 10_000, 10)).map((j) => [numberOf(j.event), j.endpoint])).toEqual([[3, 'b']]);
    await outbox.settle(j1, { kind: 'retry', due: 5000 }, now);
    await outbox.settle(j2, { kind: 'done' }, now);
    await outbox.settle(j3, { kind: 'retry', due: 4000 }, now);
    expect(await outbox.claim(3999, 10_000, 10)).toEqual([]);
    expect((await outbox.claim(5000, 10_000, 10)).map((j) => [numberOf(j.event), j.attempt])).toEqual([
      [3, 1],
      [1, 1],
    ]);
    // The leases end: e3's job for b (leased at 2000) first, then the two leased at 5000, the older event first; the
    // done one never comes back.
    expect((await outbox.claim(15_000, 10_000, 10)).map((j) => [numberOf(j.event), j.endpoint])).toEqual([
      [3, 'b'],
      [1, 'a'],
      [3, 'a'],
    ]);
    expect(await outbox.claim(15_000, 10_000, 10)).toEqual([]);
    expect(await outbox.stats()).toMatchObject({ queued: 3, held: 0 });
  });

  it('queues held events in due order, a replaced one at its new time and a cancelled one never', async () => {
    const outbox = new MemoryOutbox(() => 0);
    outbox.holdNow('k1', ev(1), 300);
    outbox.holdNow('k2', ev(2), 100);
    outbox.holdNow('k3', ev(3), 200);
    outbox.holdNow('k2', ev(4), 400);
    expect(outbox.cancelNow('k3')).toBe(true);
    expect(outbox.cancelNow('k3')).toBe(false);
    const routed: number[] = [];
    const route = (e: string): string[] => (routed.push(numberOf(e)), []);
    expect(await outbox.fanOut(route, 10, 299)).toBe(0);
    expect(await outbox.fanOut(route, 10, 1000)).toBe(2);
    expect(routed).toEqual([1, 4]);
    expect(await outbox.stats()).toMatchObject({ queued: 0, held: 0 });
  });

  it('keeps the order over many jobs rescheduled many times, while stale places in its heap are dropped', async () => {
    let now = 0;
    const outbox = new MemoryOutbox(() => now);
    await outbox.publish(Array.from({ length: 3000 }, (_, i) => ev(i)));
    while ((await outbox.fanOut(() => ['a'], 200, now)) > 0);
    // Every job leased, then retried at a time that reverses their order, five times over.
    for (let round = 1; round <= 5; round++) {
      const jobs = await outbox.claim(now, 1_000_000, 5000);
      expect(jobs).toHaveLength(3000);
      for (const j of jobs)
        await outbox.settle(j, { kind: 'retry', due: now + 10_000 - (round % 2 === 0 ? numberOf(j.event) : 3000 - numberOf(j.event)) }, now);
      now += 10_000;
    }
    const order = (await outbox.claim(now, 1000, 5000)).map((j) => numberOf(j.event));
    // The last round (odd) put e0 first, the reverse of the round before it.
    expect(order).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(await outbox.stats()).toMatchObject({ queued: 3000 });
  });
});
