/**
 * Lifecycle events for the webhooks, on both engines (one suite): `user.online` on a user's first connection
 * cluster-wide, `user.offline` after the hold-back (and none for a reload within it), `channel.occupied` and
 * `channel.vacated` for tracked channels only; on Redis also across nodes and for a node that died. Time is a
 * manual clock; events are read back from the outbox, as the webhook dispatcher reads them.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createMemoryEngine } from '../src/engine/memory/engine.js';
import type { LifecycleOptions } from '../src/engine/outbox.js';
import { createRedisEngine } from '../src/engine/redis/engine.js';
import type { Engine } from '../src/engine/types.js';
import { ManualClock } from './helpers.js';
import { cleanupRun, Recorder, REDIS_URL, testPrefix } from './redis-helpers.js';

afterAll(cleanupRun);

const LIFECYCLE: LifecycleOptions = { users: true, channels: true, channelPrefixes: ['room.'], offlineDelay: 5000 };

interface Factory {
  /** A started engine on `clock`; engines made with the same `shared` key see each other (Redis: one prefix). */
  make(clock: ManualClock, shared: string): Promise<Engine>;
}

/** Lets the Redis scripts that presence fires without waiting finish (they run in order on one connection). */
const settle = async (engine: Engine): Promise<void> => {
  await engine.presence.online(['-']);
};

/**
 * Moves time on by `ms` a second at a time, letting each second's Redis work (refresh, sweep) finish before the
 * next: a live node keeps its connections refreshed, as it would in real time.
 */
async function pass(engines: Engine[], clock: ManualClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 1000) {
    clock.advance(Math.min(1000, ms - t));
    for (const e of engines) await settle(e);
  }
}

/** Every lifecycle event queued so far, as `type data` strings (read once: fanned out to nowhere). */
async function drain(engine: Engine, clock: ManualClock): Promise<string[]> {
  await settle(engine);
  const out: string[] = [];
  while (
    (await engine.outbox.fanOut(
      (e) => {
        const v = JSON.parse(e) as { type: string; data: Record<string, string> };
        out.push(`${v.type} ${Object.values(v.data).join(',')}`);
        return [];
      },
      100,
      clock.now(),
    )) > 0
  );
  return out;
}

function suite(name: string, factory: Factory): void {
  describe(`lifecycle events: ${name}`, () => {
    it("says user.online at a user's first connection, user.offline once the last is gone for the hold-back", async () => {
      const clock = new ManualClock();
      const engine = await factory.make(clock, testPrefix());
      const a = { client: 'a', user: '42' };
      const b = { client: 'b', user: '42' };
      await engine.presence.add(a);
      await engine.presence.add(b);
      await engine.presence.add({ client: 'anon', user: null });
      expect(await drain(engine, clock)).toEqual(['user.online 42']);
      await engine.presence.remove(a);
      await engine.presence.remove(b);
      await pass([engine], clock, 4000);
      expect(await drain(engine, clock)).toEqual([]);
      await pass([engine], clock, 2000);
      expect(await drain(engine, clock)).toEqual(['user.offline 42']);
    });

    it('says nothing for a reload within the hold-back: no offline, no second online', async () => {
      const clock = new ManualClock();
      const engine = await factory.make(clock, testPrefix());
      await engine.presence.add({ client: 'tab1', user: '7' });
      expect(await drain(engine, clock)).toEqual(['user.online 7']);
      await engine.presence.remove({ client: 'tab1', user: '7' });
      await pass([engine], clock, 1500);
      await engine.presence.add({ client: 'tab2', user: '7' });
      await pass([engine], clock, 10_000);
      expect(await drain(engine, clock)).toEqual([]);
    });

    it('says channel.occupied and channel.vacated for tracked channels (prefix room.) only', async () => {
      const clock = new ManualClock();
      const engine = await factory.make(clock, testPrefix());
      const a = { client: 'a', user: null };
      const b = { client: 'b', user: null };
      await engine.presence.join('room.1', a);
      await engine.presence.join('room.1', b);
      await engine.presence.join('lobby', a);
      await engine.presence.leave('room.1', a);
      expect(await drain(engine, clock)).toEqual(['channel.occupied room.1']);
      await engine.presence.leave('room.1', b);
      await engine.presence.leave('lobby', a);
      expect(await drain(engine, clock)).toEqual(['channel.vacated room.1']);
    });
  });
}

suite('memory', {
  make: async (clock) => {
    const engine = createMemoryEngine({ clock, lifecycle: LIFECYCLE });
    await engine.start(new Recorder());
    onEnd(engine);
    return engine;
  },
});

const engines: Engine[] = [];
const onEnd = (e: Engine): void => void engines.push(e);
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
});

const redisNode = async (clock: ManualClock, prefix: string): Promise<Engine> => {
  const engine = createRedisEngine({ url: REDIS_URL, prefix, clock, presenceTtl: 3000, lifecycle: LIFECYCLE });
  await engine.start(new Recorder());
  onEnd(engine);
  return engine;
};

suite('redis', { make: redisNode });

describe('lifecycle events: redis, several nodes', () => {
  it('decides first and last across nodes: a user on two nodes is online once and offline once', async () => {
    const prefix = testPrefix();
    const clock = new ManualClock();
    const [n1, n2] = [await redisNode(clock, prefix), await redisNode(clock, prefix)] as [Engine, Engine];
    await n1.presence.add({ client: 'a', user: '42' });
    await settle(n1);
    await n2.presence.add({ client: 'b', user: '42' });
    await settle(n2);
    await n1.presence.remove({ client: 'a', user: '42' });
    await settle(n1);
    expect(await drain(n2, clock)).toEqual(['user.online 42']);
    await n2.presence.remove({ client: 'b', user: '42' });
    await settle(n2);
    await pass([n1, n2], clock, 7000);
    expect(await drain(n1, clock)).toEqual(['user.offline 42']);
  });

  it("says user.offline for a node that died: another node's sweep removes its connections after the presence TTL", async () => {
    const prefix = testPrefix();
    // The dead node's clock never moves again: it neither refreshes nor sweeps.
    const dead = await redisNode(new ManualClock(), prefix);
    const clock = new ManualClock();
    const alive = await redisNode(clock, prefix);
    await dead.presence.add({ client: 'ghost', user: '9' });
    await dead.presence.join('room.9', { client: 'ghost', user: '9' });
    await settle(dead);
    expect(await drain(alive, clock)).toEqual(['user.online 9', 'channel.occupied room.9']);
    await pass([alive], clock, 4000);
    expect(await drain(alive, clock)).toEqual(['channel.vacated room.9']);
    await pass([alive], clock, 6000);
    expect(await drain(alive, clock)).toEqual(['user.offline 9']);
  });
});
