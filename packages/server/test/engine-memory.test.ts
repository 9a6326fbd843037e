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

describe('memory engine: forgetting idle channels', () => {
  it('keeps seq and epoch while a node is subscribed, forgets them (new epoch) when idle and unsubscribed', async () => {
    const c = new ManualClock();
    const engine = createMemoryEngine({ clock: c, historyTtl: 60_000, historyMetaTtl: 120_000 });
    await engine.start({ message: () => undefined, direct: () => false, disconnect: () => 0 });
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
