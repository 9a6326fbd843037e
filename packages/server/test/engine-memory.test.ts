import { describe, expect, it } from 'vitest';
import { createMemoryEngine } from '../src/engine/memory/engine.js';
import { engineContract } from './engine-contract.js';
import { ManualClock } from './helpers.js';

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
