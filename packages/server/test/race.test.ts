import { describe, expect, it } from 'vitest';
import { createMemoryEngine } from '../src/engine/memory/engine.js';
import type { Engine, EngineHandlers } from '../src/engine/types.js';
import { ManualClock, publish, startGateway, TestClient } from './helpers.js';

/** A latch the test opens; `reached` resolves when the engine is waiting on it. */
function latch() {
  let open!: () => void;
  let reachedResolve!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const reached = new Promise<void>((r) => (reachedResolve = r));
  return { open, opened, reached, arrive: reachedResolve };
}

describe('subscribe racing live publishes (slow engine)', () => {
  it('delivers messages that arrive before and after the history read exactly once, in order', async () => {
    const clock = new ManualClock();
    const base = createMemoryEngine({ clock });
    const beforeRead = latch();
    const afterRead = latch();
    // History reads take a while, as with a remote engine: publishes land before and after the read.
    const engine: Engine = {
      ...base,
      history: {
        ...base.history,
        async recover(channel, since, epoch) {
          beforeRead.arrive();
          await beforeRead.opened;
          const r = await base.history.recover(channel, since, epoch);
          afterRead.arrive();
          await afterRead.opened;
          return r;
        },
      },
    };
    const gw = await startGateway({ engine, clock });
    let epoch = '';
    for (let i = 1; i <= 5; i++) epoch = (await publish(gw.http, { channel: 'c', type: 'm', payload: { i } })).results.c.epoch;
    const { client } = await TestClient.connect(gw.ws);
    client.send({ type: 'subscribe', channel: 'c', since: 2, epoch });
    await beforeRead.reached;
    await publish(gw.http, { channel: 'c', type: 'm', payload: { i: 6 } }); // live, and in the history read too
    await publish(gw.http, { channel: 'c', type: 'm', payload: { i: 7 } });
    beforeRead.open();
    await afterRead.reached;
    await publish(gw.http, { channel: 'c', type: 'm', payload: { i: 8 } }); // live only
    await publish(gw.http, { channel: 'c', type: 'm', payload: { i: 9 } });
    afterRead.open();
    await publish(gw.http, { channel: 'c', type: 'm', payload: { i: 10 } });
    const got = await client.waitMessages('c', 8);
    expect(got.map((m) => m.seq)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    const subscribed = client.frames.findIndex((f) => f.type === 'subscribed');
    const firstMessage = client.frames.findIndex((f) => f.type === 'm');
    expect(subscribed).toBeLessThan(firstMessage);
    expect(client.frames[subscribed]).toMatchObject({ seq: 7, recovered: true });
  });

  it('gives a plain subscribe (no since) only messages after its position, even when they raced it', async () => {
    const clock = new ManualClock();
    const base = createMemoryEngine({ clock });
    const gate = latch();
    const engine: Engine = {
      ...base,
      history: {
        ...base.history,
        async position(channel) {
          gate.arrive();
          await gate.opened;
          return base.history.position(channel);
        },
      },
    };
    const gw = await startGateway({ engine, clock });
    await publish(gw.http, { channel: 'p', type: 'm', payload: {} });
    const c = await TestClient.open(gw.ws);
    c.send({ type: 'connect' });
    await c.nextOf('connected');
    c.send({ type: 'subscribe', channel: 'p' });
    await gate.reached;
    await publish(gw.http, { channel: 'p', type: 'm', payload: {} }); // seq 2: before the position read
    gate.open();
    const sub = await c.nextOf('subscribed');
    expect(sub).toMatchObject({ seq: 2, recovered: false });
    await publish(gw.http, { channel: 'p', type: 'm', payload: {} });
    expect((await c.waitMessages('p', 1)).map((m) => m.seq)).toEqual([3]);
  });

  it('tells every subscriber about a new epoch (history lost) before the first message of it', async () => {
    const clock = new ManualClock();
    const base = createMemoryEngine({ clock });
    let inject: EngineHandlers | undefined;
    const engine: Engine = {
      ...base,
      start(handlers) {
        inject = handlers;
        return base.start(handlers);
      },
    };
    const gw = await startGateway({ engine, clock });
    const a = await TestClient.connect(gw.ws, { subs: { w: {} } });
    const b = await TestClient.connect(gw.ws, { subs: { w: {} }, batch: true });
    for (let i = 1; i <= 3; i++) await publish(gw.http, { channel: 'w', type: 'm', payload: { i } });
    await a.client.waitMessages('w', 3);
    // As after a Redis that came back empty: the engine hands over seq 1, 2 of a new epoch.
    const frame = (seq: number) => Buffer.from(JSON.stringify({ type: 'm', channel: 'w', payload: { fresh: seq }, seq }));
    inject?.message({ channel: 'w', seq: 1, epoch: 'NEW', frame: frame(1) });
    inject?.message({ channel: 'w', seq: 2, epoch: 'NEW', frame: frame(2) });
    for (const c of [a.client, b.client]) {
      await c.waitMessages('w', 5);
      const tail = c.frames.slice(-3);
      expect(tail[0]).toEqual({ type: 'subscribed', channel: 'w', seq: 0, epoch: 'NEW', recovered: false });
      expect(tail.slice(1).map((f) => [f.seq, (f.payload as { fresh: number }).fresh])).toEqual([
        [1, 1],
        [2, 2],
      ]);
    }
    // A subscriber that learned another epoch (here the engine's own) is told again; the others are not.
    const late = await TestClient.connect(gw.ws);
    late.client.send({ type: 'subscribe', channel: 'w' });
    const sub = await late.client.nextOf('subscribed');
    expect(sub.epoch).not.toBe('NEW');
    inject?.message({ channel: 'w', seq: 3, epoch: 'NEW', frame: frame(3) });
    await a.client.waitMessages('w', 6);
    expect(await late.client.next()).toEqual({ type: 'subscribed', channel: 'w', seq: 2, epoch: 'NEW', recovered: false });
    expect(await late.client.next()).toMatchObject({ channel: 'w', seq: 3 });
    expect(a.client.frames.filter((f) => f.type === 'subscribed')).toHaveLength(1);
  });
});
