/**
 * The Redis engine: the shared engine contract, then what only a shared Redis can show (several nodes,
 * the Lua script as other languages call it, lost data, crashed nodes, Redis unreachable).
 * Needs a Redis (HERALD_TEST_REDIS_URL, default redis://127.0.0.1:6379); every key lives under a random
 * per-run prefix and is deleted afterwards.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EngineTimeoutError, EngineUnavailableError, HeraldError } from '../src/util/errors.js';
import { encodeMessage } from '../src/engine/message.js';
import type { Engine } from '../src/engine/types.js';
import { LuaScript } from '../src/engine/redis/client.js';
import { ENGINE_DEFAULTS } from '../src/engine/defaults.js';
import {
  createRedisEngine,
  redisVersionProblem,
  type EngineRedisOptions,
  type RedisEngine,
  type RedisEngineOptions,
  type RedisRole,
} from '../src/engine/redis/engine.js';
import { engineContract } from './engine-contract.js';
import { cleanupRun, rawClient, Recorder, REDIS_URL, RedisProxy, testPrefix, waitFor } from './redis-helpers.js';

afterAll(cleanupRun);

engineContract('redis', {
  make: (limits = {}) => Promise.resolve(createRedisEngine({ url: REDIS_URL, prefix: testPrefix(), ...limits })),
  // History age is judged in Redis server time (the clock that stamped the entries, whoever published
  // them), so time has to pass for real. The contract only asks for 1.5 s.
  advance: (ms) => new Promise((r) => setTimeout(r, ms)),
});

const PUBLISH_LUA = readFileSync(new URL('../lua/publish.lua', import.meta.url), 'utf8');

interface Node {
  engine: RedisEngine;
  rec: Recorder;
  /** The engine's own clients, to simulate failures. */
  clients: Partial<Record<RedisRole, Redis>>;
}

describe('redis engine', () => {
  const open: RedisEngine[] = [];
  afterEach(async () => {
    for (const e of open.splice(0)) await e.close();
  });

  /** A started engine ("a node") on `prefix`. */
  const node = async (prefix: string, opts: RedisEngineOptions = {}, url = REDIS_URL): Promise<Node> => {
    const clients: Partial<Record<RedisRole, Redis>> = {};
    const engine = createRedisEngine({
      prefix,
      redis: (role, defaults) => (clients[role] = new Redis(url, defaults)),
      ...opts,
    });
    open.push(engine);
    const rec = new Recorder();
    await engine.start(rec);
    return { engine, rec, clients };
  };

  /** Two nodes on one prefix; the second has `client`, registered in presence. */
  const nodesWithClientOnSecond = async (client: string): Promise<[Node, Node]> => {
    const prefix = testPrefix();
    const a = await node(prefix);
    const b = await node(prefix);
    b.rec.local.add(client);
    await b.engine.presence.add({ client, user: null });
    return [a, b];
  };

  const keysOf = (prefix: string, channel: string) => ({
    meta: `${prefix}:{${channel}}:meta`,
    stream: `${prefix}:{${channel}}:stream`,
    idem: (id: string) => `${prefix}:{${channel}}:idem:${id}`,
    pub: `${prefix}:{${channel}}:pub`,
  });

  describe('bounded state', () => {
    it('gives a channel only subscribed to a short-lived meta key (subscribers alone leave nothing lasting); a publish the full TTL', async () => {
      const prefix = testPrefix();
      const raw = rawClient();
      const { engine } = await node(prefix);
      for (let i = 0; i < 200; i++) {
        await engine.broker.subscribe(`flood-${i}`);
        await engine.history.position(`flood-${i}`);
      }
      await engine.broker.publish({ channel: 'flood-0', type: 't', payloadJson: '{}' });
      const ttl = async (ch: string): Promise<number> => raw.pttl(keysOf(prefix, ch).meta);
      expect(await ttl('flood-0')).toBeGreaterThan(ENGINE_DEFAULTS.emptyMetaTtl);
      for (const ch of ['flood-1', 'flood-199']) {
        expect(await ttl(ch)).toBeGreaterThan(0);
        expect(await ttl(ch)).toBeLessThanOrEqual(ENGINE_DEFAULTS.emptyMetaTtl);
      }
      // The periodic touch keeps subscribed channels alive without promoting the unpublished ones.
      await raw.pexpire(keysOf(prefix, 'flood-1').meta, 1000);
      await (engine as unknown as { history: { touch(c: Iterable<string>): Promise<void> } }).history.touch(['flood-0', 'flood-1', 'never-read']);
      expect(await ttl('flood-1')).toBeGreaterThan(1000);
      expect(await ttl('flood-1')).toBeLessThanOrEqual(ENGINE_DEFAULTS.emptyMetaTtl);
      expect(await raw.exists(keysOf(prefix, 'never-read').meta)).toBe(0);
      raw.disconnect();
    });
  });

  describe('lua/publish.lua, called directly as the PHP SDK does', () => {
    it('is loadable with SCRIPT LOAD and callable with EVALSHA and EVAL; returns seq, epoch and the duplicate flag', async () => {
      const prefix = testPrefix();
      const raw = rawClient();
      const k = keysOf(prefix, 'news');
      const sha = (await raw.script('LOAD', PUBLISH_LUA)) as string;
      expect(sha).toBe(createHash('sha1').update(PUBLISH_LUA).digest('hex'));
      const first = await raw.evalsha(sha, 2, k.meta, k.stream, 'news', 'update', '{"a":1}', 'epochA');
      expect(first).toEqual([1, 'epochA', 0]);
      const second = await raw.eval(PUBLISH_LUA, 3, k.meta, k.stream, k.idem('order-7'), 'news', 'update', '{"a":2}', 'ignored');
      expect(second).toEqual([2, 'epochA', 0]);
      const again = await raw.eval(PUBLISH_LUA, 3, k.meta, k.stream, k.idem('order-7'), 'news', 'update', '{"a":2}', 'ignored');
      expect(again).toEqual([2, 'epochA', 1]);
      // Defaults for every optional argument, including the epoch.
      expect(await raw.eval(PUBLISH_LUA, 2, k.meta, k.stream, 'news', 'update', '[1,2]')).toEqual([3, 'epochA', 0]);
      expect(await raw.xlen(k.stream)).toBe(3);
      const fresh = keysOf(prefix, 'fresh');
      const [, epoch] = (await raw.eval(PUBLISH_LUA, 2, fresh.meta, fresh.stream, 'fresh', 't', '{}')) as [number, string, number];
      expect(epoch).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    });

    it('stores and publishes frames byte-identical to encodeMessage()', async () => {
      const prefix = testPrefix();
      const raw = rawClient();
      const listener = rawClient();
      const k = keysOf(prefix, 'room:1');
      const got: Buffer[] = [];
      listener.on('messageBuffer', (_channel: Buffer, message: Buffer) => got.push(message));
      await listener.subscribe(k.pub);
      const payload = JSON.stringify({ t: 'héllo 😀 中文 "q" \\ \u2028' });
      await raw.eval(PUBLISH_LUA, 2, k.meta, k.stream, 'room:1', 'chat.message', payload, 'ep1');
      const frame = encodeMessage('chat.message', 'room:1', payload, 1);
      await waitFor(() => got.length === 1, 'the pub/sub message');
      expect(got[0]?.equals(Buffer.concat([Buffer.from('1:ep1:'), frame]))).toBe(true);
      const entries = await raw.xrangeBuffer(k.stream, '-', '+');
      expect(entries[0]?.[0].toString()).toBe('1-0');
      const fields = entries[0]?.[1] ?? [];
      expect(fields[0]?.toString()).toBe('f');
      expect(fields[1]?.equals(frame)).toBe(true);
      expect(fields[2]?.toString()).toBe('t');
      expect(Math.abs(Number(fields[3]?.toString()) - Date.now())).toBeLessThan(60_000);
    });

    it('rejects invalid channel and type names, reserved types and non-JSON-object payloads, writing nothing', async () => {
      const prefix = testPrefix();
      const raw = rawClient();
      const call = (channel: string, type: string, payload: string, keyChannel = channel) => {
        const k = keysOf(prefix, keyChannel);
        return raw.eval(PUBLISH_LUA, 2, k.meta, k.stream, channel, type, payload);
      };
      const code = (p: Promise<unknown>) =>
        p.then(
          () => 'ok',
          (err: Error) => err.message.split(' ')[0],
        );
      expect(await code(call('bad channel', 't', '{}'))).toBe('INVALID_CHANNEL');
      expect(await code(call('x'.repeat(201), 't', '{}'))).toBe('INVALID_CHANNEL');
      expect(await code(call('ch{x}', 't', '{}'))).toBe('INVALID_CHANNEL');
      expect(await code(call('ch', 'bad type', '{}'))).toBe('INVALID_TYPE');
      expect(await code(call('ch', 'a@b', '{}'))).toBe('INVALID_TYPE');
      expect(await code(call('ch', 'subscribed', '{}'))).toBe('RESERVED_TYPE');
      for (const payload of ['', '42', '"s"', 'null', '{"a":1', ' [1,2} ']) expect(await code(call('ch', 't', payload))).toBe('INVALID_PAYLOAD');
      expect(await code(call('ch', 't', '{}', 'other'))).toBe('INVALID_ARGUMENT');
      expect(await code(raw.eval(PUBLISH_LUA, 2, keysOf(prefix, 'ch').meta, 'wrong', 'ch', 't', '{}'))).toBe('INVALID_ARGUMENT');
      expect(await code(call('ch', 't', ' \n{"ok":true}\t'))).toBe('ok');
      expect(await raw.exists(keysOf(prefix, 'other').meta)).toBe(0);
      expect(await raw.hget(keysOf(prefix, 'ch').meta, 'seq')).toBe('1');
    });

    it('is documented in docs/redis.md: every ARGV and every error code', () => {
      const doc = readFileSync(new URL('../../../docs/redis.md', import.meta.url), 'utf8');
      const argv = [...new Set(PUBLISH_LUA.match(/ARGV\[\d+\]/g))];
      const codes = [...new Set([...PUBLISH_LUA.matchAll(/fail\('([A-Z_]+)'/g)].map((m) => m[1]))];
      expect(argv.length).toBeGreaterThanOrEqual(9);
      expect(codes.length).toBeGreaterThanOrEqual(5);
      for (const a of argv) expect(doc, `${a} in docs/redis.md`).toContain(`| \`${a}\``);
      for (const c of codes) expect(doc, `${c} in docs/redis.md`).toContain(`| \`${c}\``);
    });

    it('falls back from EVALSHA to EVAL when Redis does not have the script (a restart, SCRIPT FLUSH)', async () => {
      const raw = rawClient();
      // A source no Redis has seen: its first EVALSHA answers NOSCRIPT.
      const script = new LuaScript('probe', `${PUBLISH_LUA}\n-- ${testPrefix()}`);
      expect(await raw.script('EXISTS', script.sha)).toEqual([0]);
      const k = keysOf(testPrefix(), 'n');
      expect(await script.run(raw, [k.meta, k.stream], ['n', 't', '{}', 'e1'])).toEqual([1, 'e1', 0]);
      expect(await script.run(raw, [k.meta, k.stream], ['n', 't', '{}', 'e1'])).toEqual([2, 'e1', 0]);
    });

    it('a publish from outside the gateway reaches subscribed nodes and history', async () => {
      const prefix = testPrefix();
      const a = await node(prefix);
      await a.engine.broker.subscribe('ext');
      const k = keysOf(prefix, 'ext');
      const epoch = (await a.engine.history.position('ext')).epoch;
      await rawClient().eval(PUBLISH_LUA, 2, k.meta, k.stream, 'ext', 'php', '{"from":"php"}', 'unused');
      await a.rec.until((r) => r.messages.length === 1, 'the message');
      expect(a.rec.messages[0]).toMatchObject({ channel: 'ext', seq: 1, epoch });
      expect(a.rec.messages[0]?.frame.equals(encodeMessage('php', 'ext', '{"from":"php"}', 1))).toBe(true);
      expect((await a.engine.history.recover('ext', 0, epoch)).messages.map((m) => m.seq)).toEqual([1]);
    });
  });

  describe('several nodes on one prefix', () => {
    it('delivers a publish on node A to subscribers of node B exactly once and in order', async () => {
      const prefix = testPrefix();
      const a = await node(prefix);
      const b = await node(prefix);
      await b.engine.broker.subscribe('room');
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).engine.broker.publish({ channel: 'room', type: 't', payloadJson: `{"i":${i}}` })),
      );
      await b.rec.until((r) => r.messages.length >= 30, '30 messages');
      expect(b.rec.messages.map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(new Set(b.rec.messages.map((m) => m.epoch)).size).toBe(1);
      // A never subscribed: a marker on a channel A does subscribe to arrives, and nothing from `room`.
      await a.engine.broker.subscribe('marker');
      await b.engine.broker.publish({ channel: 'marker', type: 't', payloadJson: '{}' });
      await a.rec.until((r) => r.messages.length > 0, 'the marker');
      expect(a.rec.received).toEqual([['marker', 1]]);
      expect(b.rec.messages).toHaveLength(30);
    });

    it('stops delivering after unsubscribe, and delivers again after a new subscribe', async () => {
      const prefix = testPrefix();
      const a = await node(prefix);
      const b = await node(prefix);
      await b.engine.broker.subscribe('c');
      await b.engine.broker.subscribe('marker');
      await a.engine.broker.publish({ channel: 'c', type: 't', payloadJson: '{}' });
      await b.rec.until((r) => r.messages.length === 1, 'first message');
      await b.engine.broker.unsubscribe('c');
      await a.engine.broker.publish({ channel: 'c', type: 't', payloadJson: '{}' });
      // Pub/sub keeps the order of publishes on one connection: once the marker is in, `c` #2 would be too.
      await a.engine.broker.publish({ channel: 'marker', type: 't', payloadJson: '{}' });
      await b.rec.until((r) => r.messages.some((m) => m.channel === 'marker'), 'the marker');
      expect(b.rec.received).toEqual([
        ['c', 1],
        ['marker', 1],
      ]);
      await b.engine.broker.subscribe('c');
      await a.engine.broker.publish({ channel: 'c', type: 't', payloadJson: '{}' });
      await b.rec.until((r) => r.messages.length === 3, 'message after resubscribing');
      expect(b.rec.received[2]).toEqual(['c', 3]);
    });

    it('shares presence: online users and channel subscribers across nodes', async () => {
      const prefix = testPrefix();
      const a = await node(prefix);
      const b = await node(prefix);
      await a.engine.presence.add({ client: 'a1', user: 'u1' });
      await b.engine.presence.add({ client: 'b1', user: 'u1' });
      await b.engine.presence.add({ client: 'b2', user: 'u2' });
      await a.engine.presence.join('room', { client: 'a1', user: 'u1' });
      await b.engine.presence.join('room', { client: 'b2', user: 'u2' });
      for (const n of [a, b]) {
        expect(await n.engine.presence.online(['u1', 'u2', 'u3'])).toEqual(
          new Map([
            ['u1', 2],
            ['u2', 1],
            ['u3', 0],
          ]),
        );
        expect(await n.engine.presence.subscribers('room')).toBe(2);
      }
      // A graceful stop takes a node's connections out of presence at once.
      await a.engine.close();
      expect(await b.engine.presence.online(['u1'])).toEqual(new Map([['u1', 1]]));
      expect(await b.engine.presence.subscribers('room')).toBe(1);
    });

    it('routes direct messages to the node that has the client, once per idempotency key', async () => {
      const [a, b] = await nodesWithClientOnSecond('cb');
      expect(await a.engine.broker.publishDirect({ client: 'cb', type: 'd', payloadJson: '{"x":1}', idempotencyKey: 'k' })).toBe(true);
      expect(await a.engine.broker.publishDirect({ client: 'cb', type: 'd', payloadJson: '{"x":1}', idempotencyKey: 'k' })).toBe(true);
      expect(await a.engine.broker.publishDirect({ client: 'cb', type: 'd', payloadJson: '{"x":2}' })).toBe(true);
      await b.rec.until((r) => r.directs.length === 2, 'two direct messages');
      expect(b.rec.directs[0]?.frame.equals(encodeMessage('d', 'client:cb', '{"x":1}', 0))).toBe(true);
      expect(JSON.parse(b.rec.directs[1]?.frame.toString() ?? '')).toEqual({ type: 'd', channel: 'client:cb', payload: { x: 2 }, seq: 0 });
      expect(await a.engine.broker.publishDirect({ client: 'nobody', type: 'd', payloadJson: '{}' })).toBe(false);
      expect(a.rec.directs).toHaveLength(0);
    });

    it("keeps a connection's direct messages in the order they were answered, whichever node sends them", async () => {
      const [a, b] = await nodesWithClientOnSecond('cb');
      // B reads its pub/sub connection late: A's message, answered, is still on its way when B sends the next one.
      const sub = b.clients.subscriber?.stream;
      expect(sub).toBeDefined();
      sub?.pause();
      expect(await a.engine.broker.publishDirect({ client: 'cb', type: 'd', payloadJson: '{"k":1}' })).toBe(true);
      expect(await b.engine.broker.publishDirect({ client: 'cb', type: 'd', payloadJson: '{"k":2}' })).toBe(true);
      sub?.resume();
      await b.rec.until((r) => r.directs.length === 2, 'two direct messages');
      expect(b.rec.directs.map((d) => JSON.parse(d.frame.toString()).payload)).toEqual([{ k: 1 }, { k: 2 }]);
    });

    it('disconnects users and clients on every node, counting them first', async () => {
      const prefix = testPrefix();
      const a = await node(prefix);
      const b = await node(prefix);
      await b.engine.presence.add({ client: 'b1', user: 'u7' });
      await b.engine.presence.add({ client: 'b2', user: 'u7' });
      await a.engine.presence.add({ client: 'a1', user: 'u7' });
      expect(await a.engine.broker.disconnect({ user: 'u7', code: 4509, reason: 'bye' })).toBe(3);
      for (const n of [a, b]) await n.rec.until((r) => r.disconnects.length === 1, 'the disconnect on every node');
      expect(b.rec.disconnects[0]).toEqual({ user: 'u7', code: 4509, reason: 'bye' });
      expect(await a.engine.broker.disconnect({ client: 'b1', code: 4509, reason: 'x' })).toBe(1);
      expect(await a.engine.broker.disconnect({ client: 'ghost', code: 4509, reason: 'x' })).toBe(0);
      await b.rec.until((r) => r.disconnects.length === 3, 'client disconnects');
      expect(b.rec.disconnects[1]).toEqual({ client: 'b1', code: 4509, reason: 'x' });
    });

    it('works over sharded pub/sub (SPUBLISH/SSUBSCRIBE)', async () => {
      const prefix = testPrefix();
      const a = await node(prefix, { sharded: true });
      const b = await node(prefix, { sharded: true });
      await b.engine.broker.subscribe('s');
      await a.engine.broker.publish({ channel: 's', type: 't', payloadJson: '{}' });
      await a.engine.broker.publish({ channel: 's', type: 't', payloadJson: '{}' });
      await b.rec.until((r) => r.messages.length === 2, 'two messages');
      expect(b.rec.received).toEqual([
        ['s', 1],
        ['s', 2],
      ]);
      b.rec.local.add('cb');
      await b.engine.presence.add({ client: 'cb', user: null });
      expect(await a.engine.broker.publishDirect({ client: 'cb', type: 'd', payloadJson: '{}' })).toBe(true);
      await b.rec.until((r) => r.directs.length === 1, 'the direct message');
    });
  });

  describe('failures', () => {
    /** Nodes subscribed to the pub/sub channel of `channel` under `prefix` (PUBSUB NUMSUB). */
    const subscribersOf = async (prefix: string, channel: string): Promise<number> =>
      ((await rawClient().pubsub('NUMSUB', keysOf(prefix, channel).pub)) as [string, number])[1];
    /** Whether the engine passes its check: connected, and subscribed to everything it should be. */
    const inSync = (engine: Engine): Promise<boolean> =>
      engine.check().then(
        () => true,
        () => false,
      );

    it('presence refreshes while the node lives; a node that stops refreshing (kill -9) disappears within presenceTtl', async () => {
      const prefix = testPrefix();
      const ttl = 600;
      const dying = await node(prefix, { presenceTtl: ttl });
      const survivor = await node(prefix);
      const raw = rawClient();
      const userKey = `${prefix}:user:{u-dead}`;
      await dying.engine.presence.add({ client: 'd1', user: 'u-dead' });
      await dying.engine.presence.join('room', { client: 'd1', user: 'u-dead' });
      await survivor.engine.presence.add({ client: 's1', user: 'u-alive' });
      expect(await survivor.engine.presence.online(['u-dead'])).toEqual(new Map([['u-dead', 1]]));
      // The refresh moves the expiry forward while the node lives.
      const first = Number(await raw.zscore(userKey, 'd1'));
      await waitFor(async () => Number(await raw.zscore(userKey, 'd1')) > first, 'a presence refresh');

      // kill -9: the node's connections to Redis are gone, nothing is cleaned up.
      dying.clients.command?.disconnect();
      dying.clients.subscriber?.disconnect();
      const killedAt = Date.now();
      // The bound holds by construction: no entry of the dead node expires later than presenceTtl from now.
      const scores = (await raw.zrange(userKey, '0', '-1', 'WITHSCORES')).filter((_, i) => i % 2 === 1).map(Number);
      for (const s of scores) expect(s).toBeLessThanOrEqual(killedAt + ttl);
      await waitFor(async () => (await survivor.engine.presence.online(['u-dead'])).get('u-dead') === 0, 'the dead node to leave presence');
      await waitFor(async () => (await survivor.engine.presence.subscribers('room')) === 0, 'the dead node to leave the channel');
      await waitFor(async () => !(await survivor.engine.broker.publishDirect({ client: 'd1', type: 'd', payloadJson: '{}' })), 'direct routing to forget it');
      expect(await survivor.engine.presence.online(['u-alive'])).toEqual(new Map([['u-alive', 1]]));
      // Requests on the dead node fail as unavailable, never hang.
      await expect(dying.engine.broker.publish({ channel: 'x', type: 't', payloadJson: '{}' })).rejects.toBeInstanceOf(EngineUnavailableError);
    });

    it('fills from history what a node missed while its subscriber connection was down', async () => {
      const prefix = testPrefix();
      const a = await node(prefix);
      const b = await node(prefix);
      await b.engine.broker.subscribe('g');
      // `quiet` had no message yet when the connection drops: the node still knows where it was.
      await a.engine.broker.publish({ channel: 'quiet', type: 't', payloadJson: '{}' });
      await b.engine.broker.subscribe('quiet');
      await a.engine.broker.publish({ channel: 'g', type: 't', payloadJson: '{}' });
      await b.rec.until((r) => r.messages.length === 1, 'first message');
      const raw = rawClient();
      const list = (await raw.client('LIST')) as string;
      const id = /id=(\d+) .*name=herald-subscriber-(\S+)/.exec(
        list.split('\n').find((l) => l.includes(`name=herald-subscriber-${b.engine.nodeId} `)) ?? '',
      )?.[1];
      expect(id).toBeDefined();
      await raw.client('KILL', 'ID', id as string);
      for (let i = 0; i < 5; i++) await a.engine.broker.publish({ channel: 'g', type: 't', payloadJson: `{"i":${i}}` });
      await a.engine.broker.publish({ channel: 'quiet', type: 't', payloadJson: '{}' });
      await b.rec.until((r) => r.messages.length >= 7, 'every message');
      expect(b.rec.messages.filter((m) => m.channel === 'g').map((m) => m.seq)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(b.rec.messages.filter((m) => m.channel === 'quiet').map((m) => m.seq)).toEqual([2]);
      await waitFor(
        async () =>
          b.engine.check().then(
            () => true,
            () => false,
          ),
        'the node to be ready again',
      );
    });

    it('fills a gap from history, in order, when a message skips ahead', async () => {
      const prefix = testPrefix();
      const a = await node(prefix);
      const b = await node(prefix);
      await b.engine.broker.subscribe('gap');
      await a.engine.broker.publish({ channel: 'gap', type: 't', payloadJson: '{}' });
      await b.rec.until((r) => r.messages.length === 1, 'first message');
      // Behind the broker's back: Redis stops sending `gap` to node B for two publishes.
      const pub = keysOf(prefix, 'gap').pub;
      await b.clients.subscriber?.unsubscribe(pub);
      await a.engine.broker.publish({ channel: 'gap', type: 't', payloadJson: '{}' });
      await a.engine.broker.publish({ channel: 'gap', type: 't', payloadJson: '{}' });
      await b.clients.subscriber?.subscribe(pub);
      await a.engine.broker.publish({ channel: 'gap', type: 't', payloadJson: '{}' });
      await b.rec.until((r) => r.messages.length >= 4, 'four messages');
      expect(b.rec.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    });

    it('resumes when Redis comes back: rejects while down, then resubscribes, fills the gap and re-adds presence', async () => {
      const prefix = testPrefix();
      const proxy = new RedisProxy();
      await proxy.start();
      try {
        const a = await node(prefix, {}, proxy.url);
        const b = await node(prefix);
        await a.engine.broker.subscribe('r');
        await a.engine.presence.add({ client: 'a1', user: 'ua' });
        await b.engine.broker.publish({ channel: 'r', type: 't', payloadJson: '{}' });
        await a.rec.until((r) => r.messages.length === 1, 'first message');

        await proxy.stop();
        const rejects = () =>
          a.engine.broker.publish({ channel: 'r', type: 't', payloadJson: '{}' }).then(
            () => false,
            (e: unknown) => e instanceof EngineUnavailableError,
          );
        await waitFor(rejects, 'publish to fail while Redis is down');
        await waitFor(
          () =>
            a.engine.check().then(
              () => false,
              (e: unknown) => e instanceof EngineUnavailableError,
            ),
          'check() to fail',
        );
        await b.engine.broker.publish({ channel: 'r', type: 't', payloadJson: '{}' });
        await b.engine.broker.publish({ channel: 'r', type: 't', payloadJson: '{}' });
        // While it is down, this node's presence is lost on the Redis side (as in a restart without persistence).
        await rawClient().del(`${prefix}:user:{ua}`, `${prefix}:client:{a1}`);

        await proxy.start();
        await waitFor(
          () =>
            a.engine.check().then(
              () => true,
              () => false,
            ),
          'the node to be ready again',
        );
        await a.rec.until((r) => r.messages.length === 3, 'the messages published while it was down');
        await b.engine.broker.publish({ channel: 'r', type: 't', payloadJson: '{}' });
        await a.rec.until((r) => r.messages.length === 4, 'a live message');
        expect(a.rec.messages.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
        await waitFor(async () => (await b.engine.presence.online(['ua'])).get('ua') === 1, 'presence to come back');
        expect((await a.engine.broker.publish({ channel: 'r', type: 't', payloadJson: '{}' })).seq).toBe(5);
      } finally {
        await proxy.stop();
      }
    });

    it('fails within commandTimeout when Redis hangs (no RST): engine_timeout, and a publish that timed out may still run', async () => {
      const proxy = new RedisProxy();
      await proxy.start();
      try {
        const a = await node(testPrefix(), { commandTimeout: 300 }, proxy.url);
        proxy.pause();
        const started = Date.now();
        // Sent and not answered: the outcome is unknown (504 engine_timeout), not "nothing was accepted".
        await expect(a.engine.broker.publish({ channel: 'h', type: 't', payloadJson: '{}' })).rejects.toBeInstanceOf(EngineTimeoutError);
        await expect(a.engine.presence.online(['u'])).rejects.toBeInstanceOf(EngineTimeoutError);
        await expect(a.engine.check()).rejects.toBeInstanceOf(HeraldError);
        expect(Date.now() - started).toBeLessThan(5000);
        proxy.resume();
        await waitFor(() => inSync(a.engine), 'Redis to answer again');
        // The publish that timed out reached Redis once the connection moved again: why retries carry an id.
        expect((await a.engine.broker.publish({ channel: 'h', type: 't', payloadJson: '{}' })).seq).toBe(2);
      } finally {
        await proxy.stop();
      }
    });

    it('unsubscribes in Redis a SUBSCRIBE that timed out while Redis hung: the node does not keep the channel for good', async () => {
      const proxy = new RedisProxy();
      await proxy.start();
      try {
        const prefix = testPrefix();
        const a = await node(prefix, { commandTimeout: 300 }, proxy.url);
        const subscribers = (): Promise<number> => subscribersOf(prefix, 'stalled');
        proxy.pause();
        await expect(a.engine.broker.subscribe('stalled')).rejects.toBeInstanceOf(HeraldError);
        // The SUBSCRIBE is still on its way: Redis runs it once the connection moves again.
        proxy.resume();
        await waitFor(async () => (await subscribers()) === 0 && (await inSync(a.engine)), 'the stale subscription to go');
        // A subscriber that comes later gets the channel as usual, and its messages.
        await a.engine.broker.subscribe('stalled');
        expect(await subscribers()).toBe(1);
        await a.engine.broker.publish({ channel: 'stalled', type: 't', payloadJson: '{}' });
        await a.rec.until((r) => r.messages.length === 1, 'the message');
      } finally {
        await proxy.stop();
      }
    });

    it('keeps a stale channel that is subscribed again while the node resubscribes after a reconnection', async () => {
      const proxy = new RedisProxy();
      await proxy.start();
      try {
        const prefix = testPrefix();
        const a = await node(prefix, { commandTimeout: 300 }, proxy.url);
        // A stale channel: its SUBSCRIBE timed out while Redis hung.
        proxy.pause();
        await expect(a.engine.broker.subscribe('late')).rejects.toBeInstanceOf(HeraldError);
        // Redis goes away and comes back: the node resubscribes, and its SUBSCRIBE is held on the way.
        await proxy.stop();
        proxy.resume();
        const resubscribe = proxy.holdNext((chunk) => /\$9\r\nsubscribe\r\n/i.test(chunk.toString('latin1')) && chunk.includes(`${prefix}:control`));
        await proxy.start();
        await resubscribe.held;
        // Meanwhile a client subscribes to the stale channel again.
        const again = a.engine.broker.subscribe('late');
        resubscribe.release();
        await again;
        await waitFor(() => inSync(a.engine), 'the node to be in sync');
        expect(await subscribersOf(prefix, 'late')).toBe(1);
        await a.engine.broker.publish({ channel: 'late', type: 't', payloadJson: '{}' });
        await a.rec.until((r) => r.messages.some((m) => m.channel === 'late'), 'the message');
      } finally {
        await proxy.stop();
      }
    });

    it('gives a wiped channel (Redis lost its data) a new epoch; seq restarts at 1', async () => {
      const prefix = testPrefix();
      const a = await node(prefix);
      const raw = rawClient();
      const k = keysOf(prefix, 'w');
      await a.engine.broker.subscribe('w');
      let old = '';
      for (let i = 0; i < 3; i++) old = (await a.engine.broker.publish({ channel: 'w', type: 't', payloadJson: '{}' })).epoch;
      await raw.del(k.meta, k.stream);
      const p = await a.engine.history.position('w');
      expect(p.seq).toBe(0);
      expect(p.epoch).not.toBe(old);
      expect(await a.engine.broker.publish({ channel: 'w', type: 't', payloadJson: '{}' })).toMatchObject({ seq: 1, epoch: p.epoch });
      expect(await a.engine.history.recover('w', 3, old)).toMatchObject({ recovered: false, position: { seq: 1, epoch: p.epoch } });
      // Only the meta lost (evicted): the stream left behind belongs to no epoch and is dropped.
      await raw.del(k.meta);
      const again = await a.engine.broker.publish({ channel: 'w', type: 't', payloadJson: '{}' });
      expect(again.seq).toBe(1);
      expect(again.epoch).not.toBe(p.epoch);
      expect((await a.engine.history.read('w', { limit: 10 })).messages.map((m) => m.seq)).toEqual([1]);
      // A subscribed node gets the new epochs' messages as they come: the hub resets its clients on an epoch change.
      await a.rec.until((r) => r.messages.length === 5, 'every message');
      expect(a.rec.messages.map((m) => [m.seq, m.epoch])).toEqual([
        [1, old],
        [2, old],
        [3, old],
        [1, p.epoch],
        [1, again.epoch],
      ]);
    });

    it('sets TTLs on every key it writes', async () => {
      const prefix = testPrefix();
      const a = await node(prefix, { historyTtl: 60_000, historyMetaTtl: 120_000, idempotencyTtl: 30_000, presenceTtl: 9000 });
      const raw = rawClient();
      const k = keysOf(prefix, 'ttl');
      await a.engine.broker.publish({ channel: 'ttl', type: 't', payloadJson: '{}', idempotencyKey: 'i1' });
      await a.engine.presence.add({ client: 'c', user: 'u' });
      await a.engine.presence.join('ttl', { client: 'c', user: 'u' });
      const ttls = await Promise.all(
        [k.meta, k.stream, k.idem('i1'), `${prefix}:user:{u}`, `${prefix}:client:{c}`, `${prefix}:{ttl}:members`].map((key) => raw.pttl(key)),
      );
      const [meta, stream, idem, user, client, members] = ttls as [number, number, number, number, number, number];
      // Each TTL plus the renewal margin (a tenth of it: lua/publish.lua renews ahead).
      expect(meta).toBeGreaterThan(120_000);
      expect(meta).toBeLessThanOrEqual(132_000);
      expect(stream).toBeGreaterThan(60_000);
      expect(stream).toBeLessThanOrEqual(66_000);
      expect(idem).toBeGreaterThan(0);
      expect(idem).toBeLessThanOrEqual(30_000);
      for (const t of [user, client, members]) {
        expect(t).toBeGreaterThan(0);
        expect(t).toBeLessThanOrEqual(9000);
      }
    });

    it('fails fast with EngineUnavailableError while Redis is unreachable, and check() rejects', async () => {
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      try {
        const started = Date.now();
        const engine = createRedisEngine({ url: 'redis://127.0.0.1:1', prefix: testPrefix() });
        open.push(engine);
        await engine.start(new Recorder());
        const conn = { client: 'c', user: 'u' };
        const calls: Array<() => Promise<unknown>> = [
          () => engine.broker.publish({ channel: 'a', type: 't', payloadJson: '{}' }),
          () => engine.broker.publishDirect({ client: 'c', type: 't', payloadJson: '{}' }),
          () => engine.broker.subscribe('a'),
          () => engine.broker.disconnect({ user: 'u', code: 4509, reason: 'x' }),
          () => engine.history.position('a'),
          () => engine.history.recover('a', 1, 'e'),
          () => engine.history.read('a', { limit: 10 }),
          () => engine.presence.add(conn),
          () => engine.presence.join('a', conn),
          () => engine.presence.online(['u']),
          () => engine.presence.subscribers('a'),
          () => engine.check(),
        ];
        for (const call of calls) {
          const err = await call().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(EngineUnavailableError);
          expect((err as HeraldError).code).toBe('engine_unavailable');
        }
        expect(Date.now() - started).toBeLessThan(5000);
        await engine.close();
        await expect(engine.check()).rejects.toBeInstanceOf(EngineUnavailableError);
        // Give stray promises a chance to surface before looking.
        await new Promise((r) => setImmediate(r));
        expect(unhandled).toEqual([]);
      } finally {
        process.off('unhandledRejection', onUnhandled);
      }
    });

    it('maps input the script rejects to 400 errors, not to engine_unavailable', async () => {
      const a = await node(testPrefix());
      const err = await a.engine.broker.publish({ channel: 'c', type: 'ping', payloadJson: '{}' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HeraldError);
      expect((err as HeraldError).code).toBe('reserved_type');
      const bad = await a.engine.broker.publish({ channel: 'c', type: 't', payloadJson: '1' }).catch((e: unknown) => e);
      expect((bad as HeraldError).code).toBe('invalid_field');
    });

    it('refuses to start on a Redis older than 6.2 (lua/publish.lua needs XADD NOMKSTREAM), naming both versions', async () => {
      // The real Redis, whose INFO server answers an older version.
      const old = (_role: string, defaults: EngineRedisOptions): Redis => {
        const c = new Redis(REDIS_URL, defaults);
        const info = c.info.bind(c);
        c.info = (async (...args: unknown[]) =>
          (await (info as (...a: unknown[]) => Promise<string>)(...args)).replace(/^redis_version:.*$/m, 'redis_version:6.0.16')) as typeof c.info;
        return c;
      };
      const engine = createRedisEngine({ redis: old, prefix: testPrefix() });
      await expect(engine.start(new Recorder())).rejects.toThrow(/Redis 6\.0 is too old .* needs Redis 6\.2 or later/);
      await engine.close();
      // A Redis that will not say (INFO refused, as an ACL may) still starts.
      const mute = (_role: string, defaults: EngineRedisOptions): Redis => {
        const c = new Redis(REDIS_URL, defaults);
        c.info = (() => Promise.reject(new Error("NOPERM this user has no permissions to run the 'info' command"))) as typeof c.info;
        return c;
      };
      const started = createRedisEngine({ redis: mute, prefix: testPrefix() });
      await started.start(new Recorder());
      await started.close();
      expect(redisVersionProblem('# Server\r\nredis_version:6.2.0\r\n')).toBeUndefined();
      expect(redisVersionProblem('redis_version:7.0.15\r\n')).toBeUndefined();
      expect(redisVersionProblem('redis_version:10.0.0\r\n')).toBeUndefined();
      expect(redisVersionProblem('redis_version:5.0.7\r\n')).toMatch(/Redis 5\.0 is too old/);
      expect(redisVersionProblem('# Server\r\n')).toBeUndefined();
    });

    it('rejects invalid option combinations at construction', () => {
      expect(() => createRedisEngine({ historyTtl: 10_000, historyMetaTtl: 5000 })).toThrow(RangeError);
      expect(() => createRedisEngine({ prefix: 'a{b}' })).toThrow(RangeError);
      expect(() => createRedisEngine({ historySize: -1 })).toThrow(RangeError);
      // The error names the option, for callers that map it to a setting of their own (the gateway does).
      expect(() => createRedisEngine({ nodeId: ' ' })).toThrow(expect.objectContaining({ name: 'EngineOptionError', option: 'nodeId' }));
      expect(() => createRedisEngine({ presenceTtl: 5 })).toThrow(expect.objectContaining({ option: 'presenceTtl' }));
      // ioredis' keyPrefix would prefix some keys and not others (script arguments, pub/sub channels).
      const made: Redis[] = [];
      const prefixed = (_role: string, defaults: EngineRedisOptions): Redis => {
        const c = new Redis(REDIS_URL, { ...defaults, keyPrefix: 'app:' });
        made.push(c);
        return c;
      };
      expect(() => createRedisEngine({ redis: prefixed })).toThrow(/keyPrefix.*use the prefix option/);
      expect(made.map((c) => c.status)).toEqual(['end']);
    });
  });
});
