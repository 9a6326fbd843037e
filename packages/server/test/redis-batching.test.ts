/**
 * The Redis engine batches by event-loop turn: the commands issued in one turn (publish scripts, their
 * counts, presence writes) leave on the command connection as one write, without changing what they do:
 * answers, order per channel, presence after disconnects, timeouts when Redis stalls. Counts the writes on
 * the engine's command connection. Needs a Redis (HERALD_TEST_REDIS_URL).
 */
import { Redis, type ChainableCommander } from 'ioredis';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { createRedisEngine, type EngineRedisOptions, type RedisEngine, type RedisEngineOptions } from '../src/engine/redis/engine.js';
import type { PublishOutcome } from '../src/engine/types.js';
import { LuaScript, RedisContext, sendCommand } from '../src/engine/redis/client.js';
import { TurnGate } from '../src/engine/redis/turns.js';
import { TURN_SCRIPT_OPS } from '../src/engine/redis/turn-script.js';
import { PUBLISH_BATCH_MAX, PublishBatch } from '../src/engine/redis/publish-batch.js';
import { REFRESH_CONNECTIONS } from '../src/engine/redis/presence.js';
import { RedisLifecycle } from '../src/engine/redis/lifecycle.js';
import { REFRESH_MEMBERS } from '../src/engine/redis/members.js';
import { EngineTimeoutError, EngineUnavailableError, HeraldError } from '../src/util/errors.js';
import { api, ManualClock, onCleanup, startGateway, TestClient, token } from './helpers.js';
import { cleanupRun, nodeOf, rawClient, Recorder, REDIS_URL, RedisProxy, testPrefix, waitFor } from './redis-helpers.js';

afterAll(cleanupRun);

/** Calls `seen` with every command `client` is handed (before it is sent). */
function onSend(client: Redis, seen: (command: Parameters<Redis['sendCommand']>[0]) => void): void {
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((...a: Parameters<typeof send>) => {
    seen(a[0]);
    return send(...a);
  }) as typeof client.sendCommand;
}

/** Resolves after the current turn and the auto-pipeline it scheduled (setImmediate) have run. */
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Resolves after `n` turns (a release scheduled from a microtask or a timer's check needs two or three). */
const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await nextTurn();
};

interface CountedNode {
  engine: RedisEngine;
  rec: Recorder;
  /** Writes on the command connection so far. */
  writes: () => number;
  /** Commands sent on the command connection so far. */
  commands: () => number;
  /** Writes on the subscriber connection so far. */
  subWrites: () => number;
}

describe('redis engine: one write per turn', () => {
  const open: RedisEngine[] = [];
  afterEach(async () => {
    for (const e of open.splice(0)) await e.close();
  });

  const node = async (opts: RedisEngineOptions = {}, url = REDIS_URL, clock = new ManualClock()): Promise<CountedNode> => {
    const writes = { command: 0, subscriber: 0 };
    let commands = 0;
    const factoryDefaults: EngineRedisOptions[] = [];
    const engine = createRedisEngine({
      prefix: testPrefix(),
      // A manual clock: no presence refresh or touch runs on its own while writes are counted.
      clock,
      redis: (role, defaults) => {
        factoryDefaults.push(defaults);
        const c = new Redis(url, defaults);
        if (role === 'command') {
          onSend(c, () => (commands += 1));
        }
        c.on('connect', () => {
          const s = c.stream;
          const write = s.write.bind(s) as (...a: unknown[]) => boolean;
          s.write = ((...a: unknown[]) => {
            writes[role] += 1;
            return write(...a);
          }) as typeof s.write;
        });
        return c;
      },
      ...opts,
    });
    open.push(engine);
    const rec = new Recorder();
    await engine.start(rec);
    // The first publishes and reads load the scripts, the plain publish, its batch form, the history read and the
    // turn script (a turn of two calls), when Redis does not have them (a restart, SCRIPT FLUSH: NOSCRIPT, then EVAL,
    // a later turn): not what is counted below, and a history read sent late would also move a new subscription's
    // position past messages.
    await engine.broker.publish({ channel: 'warm-up', type: 't', payloadJson: '{}' });
    await Promise.all([1, 2].map(() => engine.broker.publish({ channel: 'warm-up', type: 't', payloadJson: '{}' })));
    await engine.history.position('warm-up');
    await Promise.all([engine.history.position('warm-up-2'), engine.presence.online(['warm-up'])]);
    // The engine gathers each turn's commands itself: ioredis' auto-pipelining (a Pipeline object per turn, even for
    // one command) is off on both connections.
    expect(factoryDefaults.map((d) => d.enableAutoPipelining)).toEqual([undefined, undefined]);
    return { engine, rec, writes: () => writes.command, commands: () => commands, subWrites: () => writes.subscriber };
  };

  it('sends the publishes of one turn, with their counts, in one write', async () => {
    const { engine, writes } = await node();
    const before = writes();
    const outs = await Promise.all(
      Array.from({ length: 30 }, (_, i) => engine.broker.publish({ channel: `c${i % 3}`, type: 't', payloadJson: `{"i":${i}}`, counts: true })),
    );
    // 30 scripts and 30 subscriber counts: one write, one round trip.
    expect(writes() - before).toBe(1);
    expect(outs.map((o) => o.seq)).toEqual(Array.from({ length: 30 }, (_, i) => Math.floor(i / 3) + 1));
    expect(outs.every((o) => o.subscribers === 0 && o.online === undefined)).toBe(true);
  });

  it('answers online and subscribers for user channels from the publish script itself: one command for the turn', async () => {
    const { engine, writes, commands } = await node();
    await engine.presence.add({ client: 'a1', user: 'alice' });
    await engine.presence.add({ client: 'a2', user: 'alice' });
    await engine.presence.join('user:alice', { client: 'a1', user: 'alice' });
    const before = writes();
    const sent = commands();
    const [alice, bob, plain] = await Promise.all([
      engine.broker.publish({ channel: 'user:alice', type: 't', payloadJson: '{}', counts: true }),
      engine.broker.publish({ channel: 'user:bob', type: 't', payloadJson: '{}', counts: true }),
      engine.broker.publish({ channel: 'news', type: 't', payloadJson: '{}' }),
    ]);
    expect(writes() - before).toBe(1);
    // The script counts subscribers and the user's connections (no ZCOUNT of its own beside it), and the turn's
    // three publishes are one script call.
    expect(commands() - sent).toBe(1);
    expect(alice).toMatchObject({ seq: 1, duplicate: false, subscribers: 1, online: 2 });
    expect(bob).toMatchObject({ seq: 1, subscribers: 0, online: 0 });
    // Without `counts` nothing is counted.
    expect(plain.subscribers).toBeUndefined();
    expect(plain.online).toBeUndefined();
  });

  it("sends a turn's publishes as one script call, in order, each with its own answer or its own error", async () => {
    const prefix = testPrefix();
    const { engine, commands, rec } = await node({ prefix });
    // A channel whose meta key is not a hash: its publish fails inside Redis (WRONGTYPE), the others must not.
    await rawClient().set(`${prefix}:{broken}:meta`, 'not a hash');
    await engine.broker.subscribe('ok');
    // The subscription reads the channel's position with the next turn: not what is counted below.
    await nextTurn();
    const sent = commands();
    const outcomes = await Promise.allSettled([
      engine.broker.publish({ channel: 'ok', type: 't', payloadJson: '{"n":1}' }),
      engine.broker.publish({ channel: 'broken', type: 't', payloadJson: '{}' }),
      engine.broker.publish({ channel: 'ok', type: 'ping', payloadJson: '{}' }),
      engine.broker.publish({ channel: 'ok', type: 't', payloadJson: '{"n":2}', idempotencyKey: 'k1' }),
      engine.broker.publish({ channel: 'ok', type: 't', payloadJson: '{"n":3}', idempotencyKey: 'k1' }),
    ]);
    expect(commands() - sent).toBe(1);
    const [first, broken, reserved, second, repeat] = outcomes;
    expect(first).toMatchObject({ status: 'fulfilled', value: { seq: 1, duplicate: false } });
    expect(broken).toMatchObject({ status: 'rejected', reason: { code: 'engine_unavailable' } });
    expect(reserved).toMatchObject({ status: 'rejected', reason: { code: 'reserved_type' } });
    expect(second).toMatchObject({ status: 'fulfilled', value: { seq: 2, duplicate: false } });
    // The same idempotency key later in the same call: the first one's answer.
    expect(repeat).toMatchObject({ status: 'fulfilled', value: { seq: 2, duplicate: true } });
    await rec.until((r) => r.messages.filter((m) => m.channel === 'ok').length === 2, 'both messages back over pub/sub');
    expect(rec.messages.filter((m) => m.channel === 'ok').map((m) => m.frame.toString())).toEqual([
      '{"type":"t","channel":"ok","payload":{"n":1},"seq":1}',
      '{"type":"t","channel":"ok","payload":{"n":2},"seq":2}',
    ]);
  });

  it(`splits a turn of more than ${PUBLISH_BATCH_MAX} publishes into script calls of at most that many, keeping their order`, async () => {
    const { engine, commands } = await node();
    const n = PUBLISH_BATCH_MAX * 2 + 5;
    const sent = commands();
    const outs = await Promise.all(Array.from({ length: n }, (_, i) => engine.broker.publish({ channel: `s${i % 7}`, type: 't', payloadJson: `{"i":${i}}` })));
    expect(commands() - sent).toBe(3);
    expect(outs.map((o) => o.seq)).toEqual(Array.from({ length: n }, (_, i) => Math.floor(i / 7) + 1));
  });

  it('sends a broadcast made after publishes of the same turn after them', async () => {
    const { engine, rec } = await node();
    await engine.broker.subscribe('mixed');
    // The subscription reads the channel's position with the next turn, and a message at or below that position
    // counts as already seen. The broadcast below sends the publishes at once, ahead of that read: let it go first.
    await nextTurn();
    void engine.broker.publish({ channel: 'mixed', type: 't', payloadJson: '{"n":1}' });
    void engine.broker.publish({ channel: 'mixed', type: 't', payloadJson: '{"n":2}' });
    await engine.broker.broadcast({ channel: 'mixed', type: 'b', payloadJson: '{}' });
    await rec.until((r) => r.messages.filter((m) => m.channel === 'mixed').length === 3, 'three messages back over pub/sub');
    expect(rec.messages.filter((m) => m.channel === 'mixed').map((m) => m.seq)).toEqual([1, 2, 0]);
  });

  it('runs the batch form of a script Redis does not have yet (NOSCRIPT, then EVAL), and answers each publish', async () => {
    const prefix = testPrefix();
    const redis = rawClient();
    const ctx = new RedisContext(redis, new ManualClock());
    // A source Redis has never seen (a unique comment): its first EVALSHA is answered NOSCRIPT.
    const publish = LuaScript.load('publish');
    const batch = new PublishBatch(ctx, new LuaScript('publish', `-- ${prefix}\n${publish.source}`));
    const keys = (channel: string): string[] => [`${prefix}:{${channel}}:meta`, `${prefix}:{${channel}}:stream`];
    const args = (channel: string, type: string): string[] => [channel, type, '{}', 'e1', '10', '60000', '60000', '60000', '0', '', ''];
    const replies = await Promise.allSettled([
      batch.run(keys('fresh'), args('fresh', 't')),
      batch.run(keys('fresh'), args('fresh', 'bad type!')),
      batch.run(keys('fresh'), args('fresh', 't')),
    ]);
    expect(replies).toMatchObject([
      { status: 'fulfilled', value: [1, 'e1', 0] },
      { status: 'rejected', reason: { code: 'invalid_field', field: 'type' } },
      { status: 'fulfilled', value: [2, 'e1', 0] },
    ]);
  });

  it('sends a turn script Redis does not have yet as EVAL right after the NOSCRIPT answer: two commands, not three', async () => {
    const prefix = testPrefix();
    const redis = rawClient();
    // Connected and ready (its own INFO and CLIENT commands sent) before anything is counted.
    await redis.ping();
    let commands = 0;
    onSend(redis, () => (commands += 1));
    const ctx = new RedisContext(redis, new ManualClock());
    const history = LuaScript.load('history');
    const fresh = new LuaScript('history', `-- ${prefix}\n${history.source}`);
    const before = commands;
    const reply = await ctx.script('history read', fresh, [`${prefix}:{n}:meta`, `${prefix}:{n}:stream`], ['e1', 60000, 'pos', 0, 0, '', 10, 60000], true);
    expect(Array.isArray(reply) && reply[0]).toBe(0);
    // EVALSHA in the turn's pipeline (NOSCRIPT), then EVAL with the source.
    expect(commands - before).toBe(2);
    expect(await redis.script('EXISTS', fresh.sha)).toEqual([1]);
  });

  it('keeps each channel in order across turns, as sent', async () => {
    const { engine, rec } = await node();
    const channels = ['o1', 'o2', 'o3', 'o4'];
    for (const c of channels) await engine.broker.subscribe(c);
    // As the hub does: each subscriber reads its position once subscribed, in the read that sets the broker's
    // baseline or after it. Without it, a publish could land between SUBSCRIBE and that read: at or below the
    // baseline, it is then dropped as seen (the hub's subscribers read that position too, so they are not owed it),
    // and this count would miss it.
    for (const c of channels) await engine.history.position(c);
    const outs: Array<Promise<PublishOutcome>> = [];
    for (let turn = 0; turn < 10; turn++) {
      for (let i = 0; i < 12; i++) outs.push(engine.broker.publish({ channel: channels[i % 4] as string, type: 't', payloadJson: `{"t":${turn},"i":${i}}` }));
      await nextTurn();
    }
    const seqs = (await Promise.all(outs)).map((o) => o.seq);
    // Issue order is seq order on every channel.
    for (const k of channels.keys()) expect(seqs.filter((_, j) => j % 4 === k)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    await rec.until((r) => r.messages.length === 120, 'every message back over pub/sub');
    for (const c of channels) expect(rec.messages.filter((m) => m.channel === c).map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('sends the presence writes of one turn (many connections) in one write, and disconnects leave nothing behind', async () => {
    const { engine, writes } = await node();
    const raw = rawClient();
    const conns = Array.from({ length: 40 }, (_, i) => ({ client: `k${i}`, user: `u${i % 10}` }));
    let before = writes();
    await Promise.all(conns.flatMap((c) => [engine.presence.add(c), engine.presence.join('room', c)]));
    expect(writes() - before).toBe(1);
    expect(await engine.presence.subscribers('room')).toBe(40);
    expect([...(await engine.presence.online(['u0', 'u9', 'nobody'])).values()]).toEqual([4, 4, 0]);

    // Half leave and disconnect in one turn; one connection comes and goes in that same turn.
    before = writes();
    const extra = { client: 'brief', user: 'u0' };
    await Promise.all([
      ...conns.slice(0, 20).flatMap((c) => [engine.presence.leave('room', c), engine.presence.remove(c)]),
      engine.presence.add(extra),
      engine.presence.join('room', extra),
      engine.presence.leave('room', extra),
      engine.presence.remove(extra),
    ]);
    expect(writes() - before).toBe(1);
    expect(await engine.presence.subscribers('room')).toBe(20);
    expect([...(await engine.presence.online(['u0', 'u5'])).values()]).toEqual([2, 2]);
    expect(await nodeOf(raw, engine.prefix, 'k0')).toBeNull();
    expect(await nodeOf(raw, engine.prefix, 'brief')).toBeNull();
    expect(await nodeOf(raw, engine.prefix, 'k39')).toBe(engine.nodeId);
    // A disconnect without leaving first (a dropped socket) still takes the connection out of its channels.
    await Promise.all(conns.slice(20).map((c) => engine.presence.remove(c)));
    expect(await engine.presence.subscribers('room')).toBe(0);
    expect(await raw.exists(`${engine.prefix}:user:{u0}`, `${engine.prefix}:{room}:members`)).toBe(0);
  });

  it('sends what the connects of one turn do (presence writes, channel positions, inbox lists, members) as one command', async () => {
    const { engine, writes, commands } = await node();
    // Something to read back: a channel with two messages, a user with one inbox message.
    await engine.broker.publish({ channel: 'r0', type: 't', payloadJson: '{}' });
    await engine.broker.publish({ channel: 'r0', type: 't', payloadJson: '{}' });
    await engine.inbox.put({ user: 'v0', type: 't', payloadJson: '{"n":1}', ttl: 60_000, receipt: false }, { max: 10, idempotencyTtl: 60_000 });
    // A Redis that has not run a script yet answers NOSCRIPT and gets its source (writes not counted below).
    await Promise.all([engine.history.position('warm-up'), engine.inbox.list('warm-up', 1)]);
    await nextTurn();
    const before = writes();
    const commandsBefore = commands();
    // Each connection's frame is its own callback: immediates queued in one turn stand for the reads of one poll
    // (they all run in the next check phase; timers of 0 ms could straddle a millisecond and split in two turns).
    const reads = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) =>
          new Promise<[number, number]>((resolve, reject) =>
            setImmediate(() => {
              const conn = { client: `w${i}`, user: `v${i}` };
              Promise.all([
                engine.presence.add(conn),
                engine.presence.join(`r${i}`, conn),
                engine.history.position(`r${i}`),
                engine.inbox.list(`v${i}`, 10),
              ]).then(([, , pos, inbox]) => resolve([pos.seq, inbox.length]), reject);
            }),
          ),
      ),
    );
    // Scripts (positions, inbox lists) and plain commands (presence) share the turn's one script call.
    expect(writes() - before).toBe(1);
    expect(commands() - commandsBefore).toBe(1);
    expect(reads[0]).toEqual([2, 1]);
    expect(reads.slice(1).every(([seq, n]) => seq === 0 && n === 0)).toBe(true);
    expect(await engine.presence.subscribers('r3')).toBe(1);
  });

  it('refreshes presence a slice at a time: a publish made as a refresh of 1500 connections starts is answered before it ends, and a connection closed meanwhile stays gone', async () => {
    const clock = new ManualClock();
    const { engine } = await node({ presenceTtl: 30_000 }, REDIS_URL, clock);
    const raw = rawClient();
    // 1500 connections, each with a user and a channel of its own: about 10 000 commands per refresh.
    const conns = Array.from({ length: 1500 }, (_, i) => ({ client: `p${i}`, user: `pu${i}` }));
    await Promise.all(conns.flatMap((c, i) => [engine.presence.add(c), engine.presence.join(`pc${i}`, c)]));
    const lastKey = `${engine.prefix}:user:{pu1499}`;
    const before = Number(await raw.zscore(lastKey, 'p1499'));
    // The engine's tick (every third of the TTL) starts the refresh; a publish follows in the same turn.
    clock.advance(10_000);
    // A connection that closes while the refresh is under way is not put back by a later slice.
    const closed = conns[1498] as { client: string; user: string };
    const removed = engine.presence.remove(closed);
    await engine.broker.publish({ channel: 'during-refresh', type: 't', payloadJson: '{}' });
    // Sent all at once, every refresh command would have been answered before the publish; in slices, the
    // publish went out after the first slice and the last connection is not renewed yet.
    expect(Number(await raw.zscore(lastKey, 'p1499'))).toBe(before);
    await waitFor(async () => Number(await raw.zscore(lastKey, 'p1499')) === before + 10_000, 'the refresh of the last connection');
    await removed;
    expect(await engine.presence.subscribers('pc0')).toBe(1);
    expect(await engine.presence.subscribers('pc1498')).toBe(0);
    expect(await nodeOf(raw, engine.prefix, closed.client)).toBeNull();
    expect([...(await engine.presence.online([closed.user, 'pu1497'])).values()]).toEqual([0, 1]);
  });

  it(`refreshes presence with one command per ${REFRESH_CONNECTIONS} connections (lua/refresh.lua): every key renewed, expired entries trimmed`, async () => {
    const clock = new ManualClock();
    const ttl = 30_000;
    const { engine, commands } = await node({ presenceTtl: ttl }, REDIS_URL, clock);
    const raw = rawClient();
    const p = engine.prefix;
    const n = REFRESH_CONNECTIONS + 50;
    const conns = Array.from({ length: n }, (_, i) => ({ client: `r${i}`, user: `ru${i % 100}` }));
    await Promise.all(conns.flatMap((c, i) => [engine.presence.add(c), engine.presence.join(`rc${i % 3}`, c)]));
    const last = { user: `${p}:user:{ru${(n - 1) % 100}}`, members: `${p}:{rc${(n - 1) % 3}}:members`, client: `r${n - 1}` };
    /** The engine's tick (every third of the TTL) refreshes; resolves once the last connection's entries are renewed. */
    const tick = async (): Promise<void> => {
      clock.advance(ttl / 3);
      const renewed = async (key: string): Promise<boolean> => Number(await raw.zscore(key, last.client)) === clock.now() + ttl;
      await waitFor(async () => (await renewed(last.user)) && (await renewed(last.members)), 'the refresh of the last connection');
    };
    // The first refresh loads the script (NOSCRIPT, then EVAL): not what is counted.
    await tick();
    // What a node that died left behind: entries that expired.
    await raw.zadd(`${p}:user:{ru0}`, clock.now() - 1, 'dead');
    await raw.zadd(`${p}:{rc0}:members`, clock.now() - 1, 'dead');
    const before = commands();
    await tick();
    // Two refresh slices, and the members sweep's read of its index (every node, every tick).
    expect(commands() - before).toBe(3);
    for (const key of [`${p}:user:{ru0}`, `${p}:{rc0}:members`]) {
      expect(Number(await raw.zscore(key, 'r0'))).toBe(clock.now() + ttl);
      expect(await raw.zscore(key, 'dead')).toBeNull();
      expect(await raw.pttl(key)).toBeGreaterThan(ttl - 10_000);
    }
    expect(await raw.pttl(`${p}:client:{r0}`)).toBeGreaterThan(ttl - 10_000);
    expect(await nodeOf(raw, p, last.client)).toBe(engine.nodeId);
    expect(await engine.presence.subscribers('rc0')).toBe(50);
    expect([...(await engine.presence.online(['ru0', 'ru50'])).values()]).toEqual([2, 1]);
  });

  it(`renews the webhooks' lifecycle entries with the refresh, ${REFRESH_CONNECTIONS} connections at a time, not all in one turn`, async () => {
    const clock = new ManualClock();
    const ttl = 30_000;
    const lifecycle = { users: true, channels: true, channelPrefixes: [], offlineDelay: 5000 };
    const { engine } = await node({ presenceTtl: ttl, lifecycle }, REDIS_URL, clock);
    const fire = vi.spyOn(RedisLifecycle.prototype, 'fire');
    onCleanup(() => fire.mockRestore());
    const n = REFRESH_CONNECTIONS * 2 + 50;
    const conns = Array.from({ length: n }, (_, i) => ({ client: `l${i}`, user: `lu${i}` }));
    await Promise.all(conns.flatMap((c, i) => [engine.presence.add(c), engine.presence.join(`lc${i}`, c)]));
    const raw = rawClient();
    const tracked = `${engine.prefix}:{webhooks}:conns`;
    const entry = (i: number): Promise<string | null> => raw.zscore(tracked, `u\nlu${i}\nl${i}`);
    fire.mockClear();
    clock.advance(ttl / 3);
    // Renewed: the last connection's entries expire a refresh later than before.
    await waitFor(async () => Number(await entry(n - 1)) === clock.now() + ttl, "the last connection's lifecycle entry");
    expect(Number(await raw.zscore(tracked, `c\nlc0\nl0`))).toBe(clock.now() + ttl);
    const refreshes = fire.mock.calls.filter(([mode]) => mode === 'refresh').map(([, triples]) => (triples ?? []).length / 3);
    // A user and a channel per connection: two entries each, a slice of connections per call.
    expect(refreshes).toEqual([REFRESH_CONNECTIONS * 2, REFRESH_CONNECTIONS * 2, 50 * 2]);
  });

  it(`refreshes channel members (presence channels) about ${REFRESH_MEMBERS} members per round trip, every one of them`, async () => {
    const clock = new ManualClock();
    const ttl = 30_000;
    const { engine } = await node({ presenceTtl: ttl }, REDIS_URL, clock);
    const n = REFRESH_MEMBERS * 2 + 50;
    await Promise.all(Array.from({ length: n }, (_, i) => engine.members.join(`pm${i}`, `m${i}`, { user: `mu${i}`, infoJson: '{}' })));
    const script = vi.spyOn(RedisContext.prototype, 'script');
    onCleanup(() => script.mockRestore());
    const refreshes = (): number => script.mock.calls.filter(([operation]) => operation === 'members refresh').length;
    clock.advance(ttl / 3);
    // The tick started the refresh: its first slice is issued, the rest waits for its answer.
    expect(refreshes()).toBe(REFRESH_MEMBERS);
    const raw = rawClient();
    const renewed = async (i: number): Promise<boolean> => Number(await raw.zscore(`${engine.prefix}:{pm${i}}:pm:conns`, `m${i}`)) === clock.now() + ttl;
    await waitFor(() => renewed(n - 1), 'the last channel renewed');
    expect(refreshes()).toBe(n);
    expect(await renewed(0)).toBe(true);
    expect(await engine.members.count(`pm${n - 1}`)).toBe(1);
  });

  it('subscribes the channels of one turn with one SUBSCRIBE, keeping subscribe and unsubscribe in order', async () => {
    const { engine, rec, subWrites } = await node();
    const raw = rawClient();
    const numsub = async (channel: string): Promise<number> => Number(((await raw.pubsub('NUMSUB', `${engine.prefix}:{${channel}}:pub`)) as unknown[])[1]);
    const before = subWrites();
    await Promise.all(Array.from({ length: 20 }, (_, i) => engine.broker.subscribe(`t${i}`)));
    expect(subWrites() - before).toBe(1);
    expect(await numsub('t0')).toBe(1);
    expect(await numsub('t19')).toBe(1);
    // Subscribed and unsubscribed in one turn: gone; the other way round: there.
    const gone = engine.broker.subscribe('gone');
    await Promise.all([engine.broker.unsubscribe('gone'), engine.broker.unsubscribe('t1'), engine.broker.subscribe('t1'), gone]);
    expect(await numsub('gone')).toBe(0);
    expect(await numsub('t1')).toBe(1);
    await engine.broker.publish({ channel: 't1', type: 't', payloadJson: '{}' });
    await rec.until((r) => r.messages.some((m) => m.channel === 't1'), 'a message on t1');
  });

  it('holds the SUBSCRIBEs of the turns that follow while one is out, and sends them as one once it is answered', async () => {
    const proxy = new RedisProxy();
    await proxy.start();
    onCleanup(() => proxy.stop());
    const { engine, rec, subWrites } = await node({}, proxy.url);
    const before = subWrites();
    proxy.pause();
    const first = engine.broker.subscribe('h0');
    await nextTurn();
    expect(subWrites() - before).toBe(1);
    const later: Array<Promise<void>> = [];
    for (let i = 1; i <= 3; i++) {
      later.push(engine.broker.subscribe(`h${i}`));
      await nextTurn();
    }
    expect(subWrites() - before).toBe(1);
    proxy.resume();
    await Promise.all([first, ...later]);
    expect(subWrites() - before).toBe(2);
    // The broker reads each new subscription's position once it is active (a message at or below it counts as
    // seen): a read made now is answered after that one.
    await engine.history.position('h3');
    await engine.broker.publish({ channel: 'h3', type: 't', payloadJson: '{}' });
    await rec.until((r) => r.messages.some((m) => m.channel === 'h3'), 'a message on h3');
  });

  it('adds a connection and its channels as a one-connection refresh (lua/refresh.lua): TTLs set, expired entries trimmed, a join writes no client key', async () => {
    const clock = new ManualClock();
    const { engine, commands } = await node({ presenceTtl: 30_000 }, REDIS_URL, clock);
    const raw = rawClient();
    const { prefix } = engine;
    // A dead node's entry, expired a second ago, in the user's and the channel's ZSETs.
    await raw.zadd(`${prefix}:user:{pu}`, clock.now() - 1000, 'dead');
    await raw.zadd(`${prefix}:{pr}:members`, clock.now() - 1000, 'dead');
    const conn = { client: 'pc', user: 'pu' };
    const before = commands();
    await Promise.all([engine.presence.add(conn), engine.presence.join('pr', conn)]);
    expect(commands() - before).toBe(1);
    expect(await raw.zrange(`${prefix}:user:{pu}`, 0, -1, 'WITHSCORES')).toEqual(['pc', String(clock.now() + 30_000)]);
    expect(await raw.zrange(`${prefix}:{pr}:members`, 0, -1, 'WITHSCORES')).toEqual(['pc', String(clock.now() + 30_000)]);
    for (const key of [`${prefix}:client:{pc}`, `${prefix}:user:{pu}`, `${prefix}:{pr}:members`]) {
      const ttl = await raw.pttl(key);
      expect(ttl > 25_000 && ttl <= 30_000).toBe(true);
    }
    expect(await raw.get(`${prefix}:client:{pc}`)).toBe(engine.nodeId);
    // A join alone renews the channel, not the client key (its TTL is left as it was).
    await raw.pexpire(`${prefix}:client:{pc}`, 5000);
    await engine.presence.join('pr2', conn);
    expect(await raw.pttl(`${prefix}:client:{pc}`)).toBeLessThanOrEqual(5000);
    expect(await raw.exists('')).toBe(0);
    expect(await engine.presence.subscribers('pr2')).toBe(1);
    // An anonymous connection: its client key only.
    await engine.presence.add({ client: 'anon', user: null });
    expect(await raw.get(`${prefix}:client:{anon}`)).toBe(engine.nodeId);
  });

  it("reads a new subscription's position once for the broker and the first subscriber together", async () => {
    const { engine, writes } = await node();
    const before = writes();
    await engine.broker.subscribe('fresh');
    // As the hub does: the first subscriber reads the position in the turn the subscription became ready.
    const [p, again] = await Promise.all([engine.history.position('fresh'), engine.history.position('fresh')]);
    expect(writes() - before).toBe(1);
    expect(p).toEqual(again);
    expect(p.seq).toBe(0);
    const out = await engine.broker.publish({ channel: 'fresh', type: 't', payloadJson: '{}' });
    // A later turn reads anew.
    expect(await engine.history.position('fresh')).toEqual({ seq: 1, epoch: out.epoch });
  });

  it('does not hang when Redis stalls: every command of the stalled turn times out, and later ones work', async () => {
    const proxy = new RedisProxy();
    await proxy.start();
    try {
      const { engine } = await node({ commandTimeout: 300 }, proxy.url);
      proxy.pause();
      const settled = await Promise.allSettled([
        engine.broker.publish({ channel: 's', type: 't', payloadJson: '{}', counts: true }),
        engine.broker.publish({ channel: 's', type: 't', payloadJson: '{}' }),
        engine.presence.add({ client: 's1', user: 'su' }),
        engine.history.read('s', { limit: 10 }),
      ]);
      for (const s of settled) expect(s.status === 'rejected' && s.reason instanceof EngineTimeoutError).toBe(true);
      proxy.resume();
      await waitFor(
        () =>
          engine.check().then(
            () => true,
            () => false,
          ),
        'Redis to answer again',
      );
      // Neither the auto-pipeline nor the turn batch stays stuck: scripts with Buffer replies (history) too.
      const out = await engine.broker.publish({ channel: 's', type: 't', payloadJson: '{}', counts: true });
      expect(out.subscribers).toBe(0);
      const page = await engine.history.read('s', { limit: 10 });
      expect(page.messages.at(-1)?.seq).toBe(out.seq);
      await engine.presence.add({ client: 's2', user: 'su' });
      expect((await engine.presence.online(['su'])).get('su')).toBeGreaterThanOrEqual(1);
    } finally {
      await proxy.stop();
    }
  });
});

describe('redis engine through the gateway', () => {
  it("subscribes a connect's inbox and channels with one SUBSCRIBE: registering and subscribing start together", async () => {
    const subscribes: string[][] = [];
    const engine = createRedisEngine({
      url: REDIS_URL,
      prefix: testPrefix(),
      redis: (role, defaults) => {
        const c = new Redis(REDIS_URL, defaults);
        if (role === 'subscriber') {
          onSend(c, (command) => {
            if (command.name === 'subscribe') subscribes.push(command.args.map(String));
          });
        }
        return c;
      },
    });
    const gw = await startGateway({ engine });
    const before = subscribes.length;
    await TestClient.connect(gw.ws, { token: await token({ sub: 'carol' }), subs: { room: {} } });
    const sent = subscribes.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.map((pub) => pub.slice(engine.prefix.length + 1)).sort()).toEqual(['{room}:pub', '{user:carol}:inbox:pub', '{user:carol}:pub']);
  });

  it('answers online for user channels and hands a turn of pub/sub arrivals to one flush', async () => {
    const gw = await startGateway({ engine: createRedisEngine({ url: REDIS_URL, prefix: testPrefix() }) });
    const { client } = await TestClient.connect(gw.ws, { token: await token({ sub: 'alice' }), batch: true, subs: { room: {} } });
    const r = await api(gw.http, 'POST', '/api/publish', [
      { channel: 'user:alice', type: 'n', payload: {} },
      { channel: 'user:bob', type: 'n', payload: {} },
    ]);
    expect(r.status).toBe(200);
    expect(r.body[0].results['user:alice']).toMatchObject({ seq: 1, subscribers: 1, online: true });
    expect(r.body[1].results['user:bob']).toMatchObject({ seq: 1, subscribers: 0, online: false });
    await client.waitMessages('user:alice', 1);

    // Ten publishes in one turn: Redis answers them in one read of the subscriber connection, and the hub
    // flushes them together (a `batch` client gets them in one WebSocket message).
    const rawBefore = client.raw.length;
    await Promise.all(Array.from({ length: 10 }, (_, i) => gw.gateway.engine.broker.publish({ channel: 'room', type: 'n', payloadJson: `{"i":${i}}` })));
    await client.waitMessages('room', 10);
    expect(client.raw.length - rawBefore).toBe(1);
  });
});

/** A RedisContext on an auto-pipelined client of its own (closed after the test), and a key prefix. */
async function context(): Promise<{ prefix: string; redis: Redis; ctx: RedisContext }> {
  const redis = new Redis(REDIS_URL, { enableAutoPipelining: true });
  onCleanup(() => redis.disconnect());
  const ctx = new RedisContext(redis, new ManualClock());
  await ctx.whenReady(5000);
  return { prefix: testPrefix(), redis, ctx };
}

describe('RedisContext.pipeline: the calls of one turn in one pipeline', () => {
  it('gives each call its own results and its own failure, also across turn script calls split at TURN_SCRIPT_OPS', async () => {
    const { prefix, redis, ctx } = await context();
    await redis.set(`${prefix}:str`, 'x');
    const big = TURN_SCRIPT_OPS * 2 + 1;
    const [a, b, wrong, thrown, empty, c] = await Promise.allSettled([
      ctx.pipeline('a', (p) => {
        for (let i = 0; i < big; i++) p.incr(`${prefix}:a`);
      }),
      ctx.pipeline('b', (p) => {
        p.incr(`${prefix}:b`);
        p.incr(`${prefix}:b`);
      }),
      // WRONGTYPE: this call fails, the others of the turn do not.
      ctx.pipeline('wrong', (p) => {
        p.incr(`${prefix}:c`);
        p.zadd(`${prefix}:str`, 1, 'm');
      }),
      ctx.pipeline('thrown', () => {
        throw new Error('a bug in build');
      }),
      ctx.pipeline('empty', () => undefined),
      ctx.pipeline('c', (p) => p.incr(`${prefix}:c`)),
    ]);
    expect(a.status === 'fulfilled' && a.value.length === big && a.value.at(-1) === big).toBe(true);
    expect(b).toEqual({ status: 'fulfilled', value: [1, 2] });
    expect(wrong.status === 'rejected' && wrong.reason instanceof HeraldError).toBe(true);
    expect(thrown.status === 'rejected' && thrown.reason instanceof EngineUnavailableError).toBe(true);
    expect(empty).toEqual({ status: 'fulfilled', value: [] });
    // Order kept: the INCR of `wrong` ran before this one.
    expect(c).toEqual({ status: 'fulfilled', value: [2] });
    ctx.close();
    await expect(ctx.pipeline('closed', (p) => p.incr(`${prefix}:a`))).rejects.toBeInstanceOf(EngineUnavailableError);
  });

  it('runs scripts with the turn (EVALSHA), sending a script Redis does not have yet on its own (NOSCRIPT)', async () => {
    const { prefix, redis, ctx } = await context();
    // A source no Redis has seen: its first EVALSHA answers NOSCRIPT.
    const script = new LuaScript('probe', `return redis.call('INCR', KEYS[1]) .. ':' .. ARGV[1] -- ${prefix}`);
    expect(await redis.script('EXISTS', script.sha)).toEqual([0]);
    const key = `${prefix}:{probe}:n`;
    const first = await Promise.all([ctx.script('probe', script, [key], ['a']), ctx.script('probe', script, [key], ['b'])]);
    expect(first.map((r) => String(r).split(':')[0]).sort()).toEqual(['1', '2']);
    expect(first.map((r) => String(r).split(':')[1]).sort()).toEqual(['a', 'b']);
    expect(await ctx.script('probe', script, [key], ['c'], true)).toEqual(Buffer.from('3:c'));
    expect(await redis.script('EXISTS', script.sha)).toEqual([1]);
    // A script error keeps its meaning (not taken for a missing script).
    const failing = new LuaScript('probe-error', `return redis.error_reply('INVALID_CHANNEL no -- ${prefix}')`);
    await expect(ctx.script('probe-error', failing, [key], [])).rejects.toMatchObject({ code: 'invalid_channel' });
  });
});

/** A RedisContext counting the commands it hands its client. */
async function countedContext(): Promise<{ prefix: string; redis: Redis; ctx: RedisContext; sent: () => number }> {
  const redis = new Redis(REDIS_URL);
  onCleanup(() => redis.disconnect());
  let sent = 0;
  onSend(redis, () => (sent += 1));
  const ctx = new RedisContext(redis, new ManualClock());
  await ctx.whenReady(5000);
  return { prefix: testPrefix(), redis, ctx, sent: () => sent };
}

/** A RedisContext whose connection goes through a RedisProxy (pause it to keep a call out), ready. */
async function contextBehindProxy(clock: ManualClock): Promise<{ proxy: RedisProxy; redis: Redis; ctx: RedisContext }> {
  const proxy = new RedisProxy();
  await proxy.start();
  onCleanup(() => proxy.stop());
  const redis = new Redis(proxy.url);
  onCleanup(() => redis.disconnect());
  const ctx = new RedisContext(redis, clock);
  await ctx.whenReady(5000);
  return { proxy, redis, ctx };
}

describe('TurnGate: one batch out at a time', () => {
  it('sends at the end of the turn when nothing is out, and holds the next turns while a batch is out, answered or failed', async () => {
    let sends = 0;
    const clock = new ManualClock();
    const gate = new TurnGate(() => (sends += 1), clock, 20);
    gate.request();
    expect(sends).toBe(0);
    await nextTurn();
    expect(sends).toBe(1);
    let answer: (v: string) => void = () => undefined;
    const out = gate.track(new Promise<string>((resolve) => (answer = resolve)));
    gate.request();
    await nextTurn();
    gate.request();
    await nextTurn();
    expect(sends).toBe(1);
    answer('ok');
    expect(await out).toBe('ok');
    await turns(2);
    // The held requests of two turns: one send.
    expect(sends).toBe(2);
    let fail: (err: Error) => void = () => undefined;
    const failing = gate.track(new Promise<never>((_, reject) => (fail = reject)));
    gate.request();
    await nextTurn();
    expect(sends).toBe(2);
    fail(new Error('Command timed out'));
    await expect(failing).rejects.toThrow('Command timed out');
    await turns(2);
    expect(sends).toBe(3);
    // Two out: held until both are.
    const settle: Array<() => void> = [];
    void gate.track(new Promise<void>((resolve) => settle.push(resolve)));
    void gate.track(new Promise<void>((resolve) => settle.push(resolve)));
    gate.request();
    settle[0]?.();
    await turns(2);
    expect(sends).toBe(3);
    settle[1]?.();
    await turns(2);
    expect(sends).toBe(4);
    // Nothing held, nothing out: a request is sent at the end of its turn again.
    gate.request();
    await nextTurn();
    expect(sends).toBe(5);
    // A batch out for longer than maxHold (a stalled Redis) holds the next calls no longer than that.
    let late: () => void = () => undefined;
    void gate.track(new Promise<void>((resolve) => (late = resolve)));
    gate.request();
    clock.advance(19);
    await turns(2);
    expect(sends).toBe(5);
    clock.advance(1);
    await turns(2);
    expect(sends).toBe(6);
    // Its answer, later, sends nothing more: nothing is held.
    late();
    await turns(2);
    expect(sends).toBe(6);
    // The hold runs out in the same event-loop iteration as the answer is handled (a long iteration read it late):
    // the answer releases it, once; the timer's check, after the poll phase, finds nothing held.
    let answered: () => void = () => undefined;
    void gate.track(new Promise<void>((resolve) => (answered = resolve)));
    gate.request();
    clock.advance(20);
    answered();
    await turns(3);
    expect(sends).toBe(7);
  });

  it("releases only the hold its timer was set for: an old timer's check does not send a newer hold early", async () => {
    let sends = 0;
    const clock = new ManualClock();
    const gate = new TurnGate(() => (sends += 1), clock, 20);
    let answer: () => void = () => undefined;
    void gate.track(new Promise<void>((resolve) => (answer = resolve)));
    gate.request();
    // The hold runs out (its check waits for the next turn's check phase) and, before that check runs, the batch out
    // is answered (a release, one send due) and a new batch goes out with a new hold behind it.
    clock.advance(20);
    answer();
    await Promise.resolve();
    await Promise.resolve();
    let second: () => void = () => undefined;
    void gate.track(new Promise<void>((resolve) => (second = resolve)));
    gate.request();
    await turns(3);
    // The first hold's release sent once; the new hold waits for its own batch, not for the old timer.
    expect(sends).toBe(1);
    second();
    await turns(2);
    expect(sends).toBe(2);
  });

  it("holds a RedisContext's calls of the turns that follow while one is out, and sends them as one turn script call", async () => {
    const { proxy, redis, ctx } = await contextBehindProxy(new ManualClock());
    let sent = 0;
    onSend(redis, () => (sent += 1));
    const key = `${testPrefix()}:gate`;
    // The turn script loaded (a first call may answer NOSCRIPT, then EVAL): not what is counted.
    await Promise.all([ctx.pipeline('warm-up', (p) => p.get(key)), ctx.pipeline('warm-up', (p) => p.get(key))]);
    const before = sent;
    proxy.pause();
    const first = ctx.pipeline('first', (p) => p.incr(key));
    await nextTurn();
    expect(sent - before).toBe(1);
    const later = [ctx.pipeline('second', (p) => p.incr(key))];
    await nextTurn();
    later.push(ctx.pipeline('third', (p) => p.incr(key)));
    await nextTurn();
    expect(sent - before).toBe(1);
    proxy.resume();
    expect(await first).toEqual([1]);
    expect(await Promise.all(later)).toEqual([[2], [3]]);
    expect(sent - before).toBe(2);
  });

  it('rejects the calls held behind a batch out, and those of this turn, as soon as the engine closes', async () => {
    const clock = new ManualClock();
    const { proxy, redis, ctx } = await contextBehindProxy(clock);
    const key = `${testPrefix()}:gate-close`;
    await ctx.pipeline('warm-up', (p) => p.get(key));
    proxy.pause();
    const first = ctx.pipeline('first', (p) => p.incr(key));
    await nextTurn();
    const held = ctx.pipeline('held', (p) => p.incr(key));
    const outcomes: string[] = [];
    void held.catch((err: unknown) => outcomes.push(`held: ${err instanceof EngineUnavailableError ? 'unavailable' : String(err)}`));
    await nextTurn();
    const queued = ctx.pipeline('queued', (p) => p.incr(key));
    void queued.catch((err: unknown) => outcomes.push(`queued: ${err instanceof EngineUnavailableError ? 'unavailable' : String(err)}`));
    ctx.close();
    // Rejected in the microtasks of close(): not when the batch out lands (the proxy is still paused) nor after the hold.
    await Promise.resolve();
    await Promise.resolve();
    expect(outcomes).toEqual(['held: unavailable', 'queued: unavailable']);
    await expect(ctx.pipeline('after', (p) => p.get(key))).rejects.toBeInstanceOf(EngineUnavailableError);
    // The batch out is answered as it would have been; nothing held is sent after it.
    proxy.resume();
    expect(await first).toEqual([1]);
    await turns(2);
    clock.advance(1000);
    await turns(2);
    expect(await redis.get(key)).toBe('1');
  });
});

describe('RedisContext: the turn script', () => {
  it("runs a turn's commands and scripts as one command, each with the answer a pipeline gives it", async () => {
    const { prefix, redis, ctx, sent } = await countedContext();
    const script = new LuaScript('probe-turn', `return { KEYS[1], ARGV[1], redis.call('INCR', KEYS[1]) } -- ${prefix}`);
    const nothing = new LuaScript('probe-nil', `redis.call('INCR', KEYS[1]) -- ${prefix}`);
    await redis.rpush(`${prefix}:list`, 'a', 'b');
    // A turn script Redis does not have yet: NOSCRIPT, then EVAL (not what is counted below).
    await Promise.all([
      ctx.pipeline('warm', (p) => p.ping()),
      ctx.script('warm', script, [`${prefix}:w`], ['x']),
      ctx.script('warm', nothing, [`${prefix}:w`], []),
    ]);
    const before = sent();
    const [set, get, range, missing, run, runBuffers, none] = await Promise.all([
      ctx.pipeline('set', (p) => p.set(`${prefix}:s`, 'v', 'PX', 60_000)),
      ctx.pipeline('get', (p) => p.get(`${prefix}:s`)),
      ctx.pipeline('range', (p) => {
        p.lrange(`${prefix}:list`, 0, -1);
        p.llen(`${prefix}:list`);
      }),
      ctx.pipeline('missing', (p) => p.get(`${prefix}:none`)),
      ctx.script('run', script, [`${prefix}:n`], [7]),
      ctx.script('run', script, [`${prefix}:n`], ['é'], true),
      ctx.script('none', nothing, [`${prefix}:n`], []),
    ]);
    expect(sent() - before).toBe(1);
    expect(set).toEqual(['OK']);
    expect(get).toEqual(['v']);
    expect(range).toEqual([['a', 'b'], 2]);
    expect(missing).toEqual([null]);
    expect(run).toEqual([`${prefix}:n`, '7', 1]);
    expect(runBuffers).toEqual([Buffer.from(`${prefix}:n`), Buffer.from('é'), 2]);
    expect(none).toBeNull();
  });

  it('sends a call Lua cannot run (EVAL, a Buffer argument or reply) as a pipeline in its place, keeping the order', async () => {
    const { prefix, ctx } = await countedContext();
    const key = `${prefix}:n`;
    const [a, evaluated, b, buffer, c] = await Promise.all([
      ctx.pipeline('a', (p) => p.incr(key)),
      ctx.pipeline('eval', (p) => p.eval("return redis.call('GET', KEYS[1])", 1, key)),
      ctx.pipeline('b', (p) => p.incr(key)),
      ctx.pipeline('buffer', (p) => p.set(`${prefix}:b`, Buffer.from([0xff, 0x00, 0xfe]))),
      ctx.pipeline('c', (p) => {
        p.incr(key);
        p.getBuffer(`${prefix}:b`);
      }),
    ]);
    expect([a, evaluated, b, buffer]).toEqual([[1], ['1'], [2], ['OK']]);
    // A Buffer reply asked for (getBuffer) goes the pipeline's way too.
    expect(c).toEqual([3, Buffer.from([0xff, 0x00, 0xfe])]);
  });

  it('refuses a refresh whose connection list is malformed before writing anything for that connection', async () => {
    const { prefix, redis, ctx } = await countedContext();
    const refresh = LuaScript.load('refresh');
    const header = [1000, 31_000, 30_000, 'node-a'];
    // Says three ZSET keys, gives one.
    const call = ctx.script('refresh', refresh, [], [...header, 'c1', `${prefix}:client:{c1}`, 3, `${prefix}:user:{u1}`]);
    await expect(call).rejects.toMatchObject({ cause: { message: expect.stringMatching(/^INVALID_ARGUMENT connection c1/) as unknown } });
    expect(await redis.exists(`${prefix}:client:{c1}`, `${prefix}:user:{u1}`)).toBe(0);
    // A well-formed one renews what it names.
    await ctx.script('refresh', refresh, [], [...header, 'c2', `${prefix}:client:{c2}`, 1, `${prefix}:user:{u2}`]);
    expect(await redis.get(`${prefix}:client:{c2}`)).toBe('node-a');
    expect(await redis.zscore(`${prefix}:user:{u2}`, 'c2')).toBe('31000');
  });

  it("sends a turn's only call as one command whatever its size (a presence refresh slice), a lone script as its own EVALSHA", async () => {
    const { prefix, ctx, sent } = await countedContext();
    const script = new LuaScript('probe-lone', `return redis.call('INCR', KEYS[1]) -- ${prefix}`);
    await Promise.all([ctx.pipeline('warm', (p) => p.ping()), ctx.script('warm', script, [`${prefix}:w`], [])]);
    // Alone, the script goes by its own sha: NOSCRIPT, then EVAL, the first time.
    await ctx.script('warm', script, [`${prefix}:w`], []);
    let builds = 0;
    const incrs =
      (key: string, n: number) =>
      (p: ChainableCommander): void => {
        builds += 1;
        for (let i = 0; i < n; i++) p.incr(key);
      };
    for (const n of [1, 3, 700]) {
      const before = sent();
      expect(await ctx.pipeline('lone', incrs(`${prefix}:n${n}`, n))).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      expect(sent() - before).toBe(1);
    }
    let before = sent();
    expect(await ctx.script('lone script', script, [`${prefix}:s`], [])).toBe(1);
    expect(sent() - before).toBe(1);
    // A call Lua cannot run (a Buffer reply) goes as a pipeline; every builder ran once.
    before = sent();
    const mixed = await ctx.pipeline('mixed', (p) => {
      incrs(`${prefix}:mixed`, 3)(p);
      p.getBuffer(`${prefix}:mixed`);
    });
    expect(mixed).toEqual([1, 2, 3, Buffer.from('3')]);
    expect(sent() - before).toBe(4);
    expect(builds).toBe(4);
    // A failing command fails the lone call as it fails a pipeline; a throwing builder sends nothing.
    await expect(ctx.pipeline('wrong', (p) => [p.incr(`${prefix}:w`), p.zadd(`${prefix}:n1`, 1, 'm')])).rejects.toBeInstanceOf(HeraldError);
    await expect(ctx.script('wrong script', script, [`${prefix}:n1`], [])).resolves.toBe(2);
    before = sent();
    await expect(
      ctx.pipeline('thrown', (p) => {
        incrs(`${prefix}:t`, 2)(p);
        throw new Error('a bug in build');
      }),
    ).rejects.toBeInstanceOf(EngineUnavailableError);
    expect(sent() - before).toBe(0);
  });

  it('writes a lone UTF-16 surrogate as ioredis does (U+FFFD), and the other calls of the turn still run', async () => {
    const { prefix, redis, ctx } = await countedContext();
    const [lone, other] = await Promise.all([
      ctx.pipeline('lone', (p) => p.set(`${prefix}:lone`, 'a\ud800b')),
      ctx.pipeline('other', (p) => p.set(`${prefix}:other`, 'x\\u0041')),
    ]);
    expect([lone, other]).toEqual([['OK'], ['OK']]);
    await redis.set(`${prefix}:direct`, 'a\ud800b');
    expect(await redis.getBuffer(`${prefix}:lone`)).toEqual(await redis.getBuffer(`${prefix}:direct`));
    expect(await redis.get(`${prefix}:other`)).toBe('x\\u0041');
  });
});

describe('redis engine: sendCommand', () => {
  it('hands a command its arguments as they are, without copying them through Array.prototype.flat', async () => {
    const redis = rawClient();
    await redis.ping();
    const args = Array.from({ length: 1500 }, (_, i) => (i % 3 === 0 ? i : i % 3 === 1 ? `a${i}` : Buffer.from([0xff, i % 256])));
    // ioredis' Command constructor copies its arguments with flat(), which V8 runs at about 200 ns per element.
    const flat = vi.spyOn(Array.prototype, 'flat');
    try {
      const reply = await sendCommand(redis, 'eval', ['return {#ARGV, ARGV[1], ARGV[2], ARGV[3]}', 0, ...args]);
      expect(flat.mock.contexts.some((c) => Array.isArray(c) && c.length > 100)).toBe(false);
      // Numbers as their decimal text, strings and Buffers byte for byte.
      expect(reply).toEqual([1500, '0', 'a1', '\ufffd\u0002']);
    } finally {
      flat.mockRestore();
    }
    const asBuffers = await sendCommand(redis, 'eval', ['return ARGV[1]', 0, Buffer.from([0xff, 0x00])], true);
    expect(asBuffers).toEqual(Buffer.from([0xff, 0x00]));
  });

  it("applies a client's keyPrefix as ioredis' own commands do", async () => {
    const prefix = testPrefix();
    const prefixed = new Redis(REDIS_URL, { keyPrefix: `${prefix}:kp:` });
    onCleanup(() => prefixed.disconnect());
    await sendCommand(prefixed, 'set', ['k', 42]);
    expect(await rawClient().get(`${prefix}:kp:k`)).toBe('42');
  });
});
